#!/usr/bin/env bash
# THE test command for autopilot (CI runs exactly this via .ci/run).
#
#   bash scripts/test.sh            deps, fmt, clippy, build, all tests
#   bash scripts/test.sh --quick    skip fmt and clippy
#   bash scripts/test.sh -- ARGS    pass ARGS to `cargo test` (e.g. a test name filter)
#
# Must run as root: the integration tests run autopilot as PID 1 in a fresh PID
# namespace (unshare --pid --fork --mount-proc), and install-deps uses apt.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

QUICK=0
TEST_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --) shift; TEST_ARGS=("$@"); break ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

# Plain logs in CI (rustfmt's diff colours ignore CARGO_TERM_COLOR).
FMT_ARGS=()
if [ "${CI:-}" = "true" ]; then
    export CARGO_TERM_COLOR=never
    FMT_ARGS=(-- --color never)
fi

# Fail loudly rather than letting root-only tests skip or fail obscurely.
if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: ERROR: must run as root (integration tests use unshare --pid --fork --mount-proc; install-deps uses apt-get)." >&2
    exit 1
fi

START=$SECONDS
step() { echo; echo "==> $* ($((SECONDS - START))s)"; }

step "install test dependencies"
bash scripts/install-deps.sh
# install-deps puts consul and promtool here.
case ":$PATH:" in *":/usr/local/bin:"*) ;; *) export PATH="/usr/local/bin:$PATH" ;; esac

if [ "$QUICK" -eq 0 ]; then
    step "cargo fmt --check"
    cargo fmt --check ${FMT_ARGS[@]+"${FMT_ARGS[@]}"}
    step "cargo clippy --all-targets -- -D warnings"
    cargo clippy --all-targets -- -D warnings
fi

# Integration tests run the debug binary (CARGO_BIN_EXE_autopilot).
step "cargo build"
cargo build

# Output is also kept in a log so the closing line can add up every runner's counts.
TEST_LOG=$(mktemp)
trap 'rm -f "$TEST_LOG"' EXIT

step "cargo test"
cargo test ${TEST_ARGS[@]+"${TEST_ARGS[@]}"} 2>&1 | tee "$TEST_LOG"

# The image and the examples, each with real Docker containers: the hello demo,
# the MariaDB cluster (examples/mysql), the replicated block volume (examples/volume).
for docker_test in hello mysql volume; do
    step "docker: tests/docker/$docker_test.sh"
    bash "tests/docker/$docker_test.sh" 2>&1 | tee -a "$TEST_LOG"
done

step "all checks passed"
# One closing line for the whole run: cargo's "test result: ok. N passed; M failed"
# lines plus each docker test's "docker-test: N passed, M failed".
awk '/^test result:/ { p += $4; f += $6 }
     /^docker-test: [0-9]+ passed, [0-9]+ failed$/ { p += $2; f += $4 }
     END { printf "all: %d passed, %d failed\n", p, f }' "$TEST_LOG"
