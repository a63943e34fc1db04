#!/usr/bin/env bash
# `autopilot -- CMD` (tini mode) next to `tini -- CMD` and `dumb-init CMD`, each
# as PID 1 of a fresh PID namespace. Figures, not pass/fail. Must run as root.
#
#   bash benches/tini_mode.sh                 (about 30 s after the build)
#   RUNS=50 bash benches/tini_mode.sh
#   AUTOPILOT_BIN=target/debug/autopilot bash benches/tini_mode.sh   (skip the build)
#
# run      wall time of `unshare --pid --fork --mount-proc INIT -- true`, from
#          start to exit: the init's start-up, one fork/exec, reaping, exit.
#          Median and max over RUNS runs.
# rss      VmRSS of the init while its command (`sleep 30`) runs.
# stop     SIGTERM to the init until it has exited, with `sh -c 'trap "exit 0"
#          TERM; sleep 30 & wait'` as the command (so the figure is the init's
#          forwarding, not the command's shutdown). Median of RUNS/5 runs.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS="${RUNS:-20}"
# shellcheck source=benches/lib.sh
source benches/lib.sh
[ "$(id -u)" -eq 0 ] || die "must run as root (unshare --pid needs it)"
for tool in unshare tini dumb-init python3; do
    command -v "$tool" >/dev/null || die "$tool not found (bash scripts/install-deps.sh)"
done
bench_autopilot_bin
export BIN RUNS
SOCKDIR=$(mktemp -d)
trap 'rm -rf "$SOCKDIR"' EXIT
export AUTOPILOT_CONTROL_SOCKET="$SOCKDIR/control.sock" READY="$SOCKDIR/ready"

exec python3 - <<'PY'
import os, signal, statistics, subprocess, time

BIN, RUNS, READY = os.environ["BIN"], int(os.environ["RUNS"]), os.environ["READY"]
INITS = {
    "autopilot": [BIN, "--"],
    "tini": ["tini", "--"],
    "dumb-init": ["dumb-init"],
}

def ns(cmd):
    return ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"] + cmd

def child_of(pid, deadline=5.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                kids = f.read().split()
            if kids:
                return int(kids[0])
        except FileNotFoundError:
            pass
        time.sleep(0.005)
    raise SystemExit(f"no child of {pid}")

def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

print(f"RUNS={RUNS}; figures from a shared, loaded machine are slower than idle ones")
print(f"{'init':<10} {'run median':>11} {'run max':>9} {'rss':>8} {'stop median':>12}")
for name, init in INITS.items():
    runs = []
    for _ in range(RUNS):
        t = time.monotonic()
        subprocess.run(ns(init + ["true"]), check=True)
        runs.append(time.monotonic() - t)
    p = subprocess.Popen(ns(init + ["sleep", "30"]))
    pid = child_of(p.pid)
    time.sleep(0.5)
    rss = rss_kb(pid)
    p.kill(); p.wait()
    stops = []
    for _ in range(max(1, RUNS // 5)):
        p = subprocess.Popen(ns(init + ["sh", "-c", f"trap 'exit 0' TERM; touch {READY}; sleep 30 & wait"]))
        pid = child_of(p.pid)
        end = time.monotonic() + 5
        while not os.path.exists(READY) and time.monotonic() < end:
            time.sleep(0.005)
        os.unlink(READY)
        t = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        p.wait()
        stops.append(time.monotonic() - t)
    print(f"{name:<10} {statistics.median(runs)*1000:>9.1f}ms {max(runs)*1000:>7.1f}ms "
          f"{rss/1024:>6.1f}MB {statistics.median(stops)*1000:>10.1f}ms")
PY
