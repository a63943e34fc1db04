//! The single integration-test binary: each feature's tests are a module here.
//! Shared helpers live in `common` (tests/common/mod.rs).

mod common;

mod it_cli;
mod it_cli_help;
mod it_consul;
mod it_control;
mod it_core;
mod it_exit_codes;
mod it_harness;
mod it_kv;
mod it_leader;
mod it_migrate;
mod it_operator;
mod it_panic;
mod it_reaping;
mod it_reload_watches;
mod it_robust;
mod it_running_config;
mod it_shutdown;
mod it_sidecar;
mod it_telemetry;
mod it_tini;
mod it_v2;
