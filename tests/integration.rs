//! The single integration-test binary: each feature's tests are a module here.
//! Shared helpers live in `common` (tests/common/mod.rs).

mod common;

mod it_harness;
