#!/usr/bin/env bash
# What it costs autopilot to start a hook (issue 14, "Scale"). Figures, not
# pass/fail. Best run as root: each autopilot is then PID 1 of its own PID
# namespace (unshare --pid --fork --mount-proc), as in a container.
#
#   bash benches/spawn.sh                          this tree's release build
#   bash benches/spawn.sh OLD_BIN NEW_BIN          compare builds, runs interleaved
#   RUNS=2000 ROUNDS=5 bash benches/spawn.sh ...
#
# Each run starts one autopilot with a job `app` (sleep infinity) and a job
# `hook` run on each SIGUSR2, whose exec is a tiny C program appending the
# time to a file (one exec, no shell). The bench sends SIGUSR2, waits for the
# hook's line, and sends the next one, RUNS times; it then prints, per binary
# (the median over ROUNDS rounds, builds taking turns so that a change in the
# machine's load hits them alike):
#   cpu      autopilot's utime + stime per hook run (the whole path: signal,
#            event, job, spawn, reaping), and the hook's own (cutime + cstime)
#   latency  SIGUSR2 sent -> hook started (the hook's own clock): p50, p99
#   rss      autopilot's VmRSS at the end
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh
command -v python3 >/dev/null || die "python3 not found"
if [ "$#" -eq 0 ]; then
    bench_autopilot_bin
    set -- "$BIN"
fi
for b in "$@"; do [ -x "$b" ] || die "$b is not an executable"; done
export RUNS="${RUNS:-1000}" ROUNDS="${ROUNDS:-3}"
bench_build_stamp
exec python3 - "$@" <<'PY'
import json, os, shutil, signal, statistics, subprocess, sys, tempfile, time

BINS = [os.path.abspath(b) for b in sys.argv[1:]]
RUNS, ROUNDS = int(os.environ["RUNS"]), int(os.environ["ROUNDS"])
ROOT = os.getuid() == 0
TICK = os.sysconf("SC_CLK_TCK")
work = tempfile.mkdtemp(prefix="autopilot-spawn-bench-")

STAMP = os.environ["STAMP"]

def stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()

def cpu(pid):
    """(own, reaped children's) CPU seconds of `pid`."""
    s = stat_fields(pid)
    return (int(s[11]) + int(s[12])) / TICK, (int(s[13]) + int(s[14])) / TICK

def count(path):
    try:
        return os.stat(path).st_size // 20
    except OSError:
        return 0

def wait_for(what, deadline, f):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        v = f()
        if v:
            return v
        time.sleep(0.0005)
    sys.exit(f"timed out waiting for {what}")

def one_round(bin, n):
    stamps = f"{work}/stamps"
    if os.path.exists(stamps):
        os.unlink(stamps)
    cfg = {
        "logging": {"level": "WARN"},
        "jobs": [
            {"name": "app", "exec": ["sleep", "infinity"]},
            {"name": "hook", "exec": [STAMP, stamps], "when": {"each": "SIGUSR2"}},
        ],
    }
    path = f"{work}/autopilot.json"
    with open(path, "w") as f:
        json.dump(cfg, f)
    env = dict(os.environ, AUTOPILOT_CONTROL_SOCKET=f"{work}/autopilot.sock")
    cmd = [bin, "-config", path]
    if ROOT:
        cmd = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"] + cmd
    log = open(f"{work}/autopilot.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        if ROOT:
            def child():
                try:
                    with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
                        kids = f.read().split()
                    return int(kids[0]) if kids else None
                except OSError:
                    return None
            pid = wait_for("autopilot under unshare", 10, child)
        else:
            pid = proc.pid
        # Ready once SIGUSR2 starts the hook (the handler is installed by then).
        def first():
            os.kill(pid, signal.SIGUSR2)
            end = time.monotonic() + 0.2
            while time.monotonic() < end:
                if count(stamps) >= 1:
                    return True
                time.sleep(0.001)
            return False
        wait_for("the first hook run", 30, first)
        c0, h0 = cpu(pid)
        t0 = time.monotonic()
        sent = []
        for k in range(n):
            sent.append(time.time_ns())
            os.kill(pid, signal.SIGUSR2)
            end = time.monotonic() + 10
            while count(stamps) < k + 2:
                if time.monotonic() > end:
                    sys.exit(f"hook run {k + 1} did not happen within 10 s; see {work}/autopilot.log")
                time.sleep(0.0002)
        elapsed = time.monotonic() - t0
        # The last hook has written its line; wait until it is reaped too.
        time.sleep(0.05)
        c1, h1 = cpu(pid)
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
        with open(stamps) as f:
            started = [int(l) for l in f.read().split()][1:]
        lat = sorted((s - t) / 1e6 for s, t in zip(started, sent))
        return {
            "autopilot CPU per hook run (ms)": (c1 - c0) / n * 1e3,
            "hook CPU per run (ms)": (h1 - h0) / n * 1e3,
            "signal -> hook start p50 (ms)": lat[len(lat) // 2],
            "signal -> hook start p99 (ms)": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
            "wall time per hook run (ms)": elapsed / n * 1e3,
            "autopilot RSS (MB)": rss,
        }
    finally:
        proc.kill()
        proc.wait()

results = {b: [] for b in BINS}
print(f"load average at the start: {open('/proc/loadavg').read().split()[0]}", file=sys.stderr)
for r in range(ROUNDS):
    for b in BINS:
        print(f"round {r + 1}/{ROUNDS}: {b} ({RUNS} hook runs)...", file=sys.stderr)
        results[b].append(one_round(b, RUNS))
print()
print(f"{RUNS} hook runs per round, median of {ROUNDS} rounds; {os.cpu_count()} CPUs, "
      f"load average {open('/proc/loadavg').read().split()[0]} at the end; "
      f"{'PID 1 of its own namespace' if ROOT else 'not PID 1 (not root)'}")
keys = list(results[BINS[0]][0].keys())
width = max(len(k) for k in keys)
for i, b in enumerate(BINS):
    print(f"[{i + 1}] {b}")
print(" " * width + "".join(f"{'[' + str(i + 1) + ']':>10}" for i in range(len(BINS))))
for k in keys:
    print(f"{k:<{width}}" + "".join(f"{statistics.median(x[k] for x in results[b]):10.3f}" for b in BINS))
shutil.rmtree(work, ignore_errors=True)
PY
