#!/usr/bin/env bash
# The cost of autopilot's logging design against the alternative the project
# weighed. Figures, not pass/fail. Builds two tiny programs in a temp dir with
# autopilot's release profile (needs crates.io for tracing-subscriber and
# tracing-appender), then runs each once:
#
#   bash benches/log_backends.sh          (about 2 minutes on a loaded 2-core box)
#
# with_log      the `log` facade and a bounded queue (4096 lines) drained by one
#               writer thread: what src/logging.rs does.
# with_tracing  `tracing` + tracing-subscriber's fmt layer + tracing-appender's
#               non_blocking writer (its default: lossy, 128k-line buffer).
# Each logs 100000 INFO lines to /dev/null. Printed: stripped binary size and
# maximum RSS (GNU time).
set -euo pipefail

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/bin"
cat > "$work/Cargo.toml" <<'TOML'
[package]
name = "logbench"
version = "0.1.0"
edition = "2024"

[dependencies]
log = { version = "0.4", features = ["std"] }
tracing = { version = "0.1", optional = true }
tracing-subscriber = { version = "0.3", optional = true, default-features = false, features = ["fmt", "std"] }
tracing-appender = { version = "0.2", optional = true }

[features]
tracing = ["dep:tracing", "dep:tracing-subscriber", "dep:tracing-appender"]

[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
panic = "abort"
strip = true
TOML
cat > "$work/src/bin/with_log.rs" <<'RS'
use std::io::Write;
use std::sync::mpsc::{SyncSender, sync_channel};
struct Queue(SyncSender<String>);
impl log::Log for Queue {
    fn enabled(&self, _: &log::Metadata) -> bool { true }
    fn log(&self, r: &log::Record) {
        let _ = self.0.try_send(format!("{} {}\n", r.level(), r.args()));
    }
    fn flush(&self) {}
}
fn main() {
    let (tx, rx) = sync_channel::<String>(4096);
    std::thread::spawn(move || {
        let mut out = std::io::stdout().lock();
        for line in rx { let _ = out.write_all(line.as_bytes()); }
    });
    log::set_boxed_logger(Box::new(Queue(tx))).unwrap();
    log::set_max_level(log::LevelFilter::Info);
    for i in 0..100_000 { log::info!("line {i}"); }
}
RS
cat > "$work/src/bin/with_tracing.rs" <<'RS'
#[cfg(feature = "tracing")]
fn main() {
    let (writer, _guard) = tracing_appender::non_blocking(std::io::stdout());
    tracing_subscriber::fmt().with_writer(writer).init();
    for i in 0..100_000 { tracing::info!("line {i}"); }
}
#[cfg(not(feature = "tracing"))]
fn main() {}
RS
(cd "$work" && cargo build -q --release --bin with_log && cargo build -q --release --features tracing --bin with_tracing)
for bin in with_log with_tracing; do
    size=$(stat -c %s "$work/target/release/$bin")
    rss=$(/usr/bin/time -f %M "$work/target/release/$bin" 2>&1 >/dev/null | tail -1)
    printf '%-13s binary %4d KiB   max RSS %5d KiB\n' "$bin" $((size / 1024)) "$rss"
done
