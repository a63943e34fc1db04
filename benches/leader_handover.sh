#!/usr/bin/env bash
# Leader election figures for autopilot. Figures, not pass/fail. Needs `consul`
# (bash scripts/install-deps.sh) and python3; talks to loopback only.
#
#   bash benches/leader_handover.sh                    (about 4 minutes)
#   RUNS=5 IDLE_SECS=30 bash benches/leader_handover.sh
#   AUTOPILOT_BIN=target/debug/autopilot bash benches/leader_handover.sh   (skip the build)
#
# Two autopilot instances (HOSTNAME a and b) compete for one key with
# `leader: {ttl: TTL, lockDelay: LOCK_DELAY}` (defaults 10s and 1s); the job's
# health check runs every 500 ms with a Consul TTL of HEALTH_TTL (default 5s).
#
# check fails  the leader's health check starts failing (a file appears);
#              measured to the moment the other instance is elected, as
#              autopilot records it (status `sinceMs`), and, inside that, the
#              hand-over proper: old leader deposed -> new leader elected
#              (about the lock-delay). Median and max over RUNS hand-overs.
# killed       the leader's autopilot and its job get SIGKILL (a container
#              dying): its check's TTL (HEALTH_TTL) or the session TTL (Consul
#              waits up to twice TTL) frees the key, then the lock-delay.
#              Median and max over RUNS; the killed instance is started again
#              between runs.
# idle         Consul HTTP requests per minute made by an idle elected leader
#              (health every 10s with a 30s TTL here, as in production), counted by a
#              small logging TCP proxy, over IDLE_SECS after a warm-up, by path.
#              Expected: 12 session renewals (TTL 10s) + 1 blocking read of the
#              key + the service's own TTL updates (6 with a 10s interval).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

source benches/lib.sh
bench_require_consul
bench_autopilot_bin

export BIN RUNS="${RUNS:-10}" IDLE_SECS="${IDLE_SECS:-60}" TTL="${TTL:-10}" \
    LOCK_DELAY="${LOCK_DELAY:-1}" HEALTH_TTL="${HEALTH_TTL:-5}"
bench_python <<'PY'
import statistics

RUNS = int(os.environ["RUNS"])
IDLE_SECS = int(os.environ["IDLE_SECS"])
TTL, LOCK_DELAY, HEALTH_TTL = (int(os.environ[k]) for k in ("TTL", "LOCK_DELAY", "HEALTH_TTL"))
WARMUP = 5
KEY = "service/db/leader"

def config(consul, health_interval="500ms", health_ttl=HEALTH_TTL):
    return json.dumps({
        "consul": consul,
        "jobs": [{
            "name": "db", "exec": "sleep 100000", "port": 5432, "interfaces": ["lo"],
            "health": {"exec": ["sh", "-c", f"test ! -f {work}/sick-$HOSTNAME"],
                       "interval": health_interval, "ttl": health_ttl},
            "leader": {"key": KEY, "ttl": TTL, "lockDelay": LOCK_DELAY},
        }],
    })

def status(name):
    """The `db` job of instance `name` (its control socket), or None."""
    try:
        s = socket.socket(socket.AF_UNIX); s.settimeout(2)
        s.connect(f"{work}/{name}.sock")
        s.sendall(b"GET /v3/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = b""
        while (chunk := s.recv(65536)): raw += chunk
        s.close()
        body = json.loads(raw.split(b"\r\n\r\n", 1)[1])
        return next(j for j in body["jobs"] if j["name"] == "db")
    except (OSError, ValueError, StopIteration, IndexError):
        return None

def role(name):
    j = status(name)
    return (j or {}).get("leader", {}).get("role")

def leader_of(names):
    leaders = [n for n in names if role(n) == "leader"]
    return leaders[0] if len(leaders) == 1 else None

def summary(label, values):
    s = sorted(values)
    print(f"  {label:<44} median {statistics.median(s):6.2f} s   max {s[-1]:6.2f} s   min {s[0]:6.2f} s")

def check_fails(consul):
    names = ["a", "b"]
    aps = {n: start_autopilot(n, config(consul)) for n in names}
    leader = wait_for("a first leader", 30, lambda: leader_of(names))
    total, handover = [], []
    for i in range(RUNS):
        other = "b" if leader == "a" else "a"
        deposed_since = None
        t0 = time.time()
        open(f"{work}/sick-{leader}", "w").close()
        new = wait_for(f"hand-over {i}", TTL + LOCK_DELAY + 10, lambda: role(other) == "leader" and other)
        elected_ms = status(new)["leader"]["sinceMs"]
        old = status(leader)["leader"]
        deposed_since = old["sinceMs"] if old["role"] != "leader" else None
        total.append(elected_ms / 1000 - t0)
        if deposed_since:
            handover.append((elected_ms - deposed_since) / 1000)
        os.remove(f"{work}/sick-{leader}")
        wait_for("the old leader to compete again", 15, lambda: role(leader) == "candidate")
        leader = new
    for p in aps.values(): stop(p)
    print(f"check fails (ttl {TTL}s, lockDelay {LOCK_DELAY}s, health every 0.5s), {RUNS} hand-overs:")
    summary("check starts failing -> new leader elected", total)
    if handover:
        summary("old leader deposed -> new leader elected", handover)

def killed(consul):
    names = ["c", "d"]
    aps = {n: start_autopilot(n, config(consul)) for n in names}
    leader = wait_for("a first leader", 30, lambda: leader_of(names))
    took = []
    for i in range(RUNS):
        other = "d" if leader == "c" else "c"
        job_pid = status(leader)["pid"]
        t0 = time.time()
        aps[leader].kill(); aps[leader].wait()
        try: os.kill(job_pid, signal.SIGKILL)
        except (OSError, TypeError): pass
        wait_for(f"hand-over after kill {i}", 2 * TTL + LOCK_DELAY + 15, lambda: role(other) == "leader")
        took.append(status(other)["leader"]["sinceMs"] / 1000 - t0)
        aps[leader] = start_autopilot(leader, config(consul))
        wait_for("the killed instance back as a candidate", 30, lambda: role(leader) == "candidate")
        leader = other
    for p in aps.values(): stop(p)
    print(f"killed (SIGKILL; health ttl {HEALTH_TTL}s, session ttl {TTL}s, lockDelay {LOCK_DELAY}s), {RUNS} hand-overs:")
    summary("leader killed -> new leader elected", took)

def idle(consul):
    proxy = CountingProxy(consul)
    ap = start_autopilot("idle", config(proxy.addr, health_interval="10s", health_ttl=30))
    wait_for("the idle instance to lead", 40, lambda: role("idle") == "leader", 0.05)
    time.sleep(WARMUP)
    t0 = time.time()
    time.sleep(IDLE_SECS)
    t1 = time.time()
    stop(ap)
    with proxy.lock:
        window = [r for r in proxy.requests if t0 <= r[0] < t1]
    per_min = len(window) * 60.0 / (t1 - t0)
    election = [r for r in window if r[2].startswith(("/v1/session/", "/v1/kv/"))]
    print(f"idle elected leader (health every 10s): {per_min:.1f} Consul requests/min, "
          f"{len(election) * 60.0 / (t1 - t0):.1f}/min for the election ({len(window)} in {t1 - t0:.0f} s)")
    print_by_path(window)

try:
    consul = start_consul()
    check_fails(consul)
    killed(consul)
    idle(consul)
finally:
    # SIGTERM first: autopilot stops its own jobs (consul last).
    for p in reversed(procs):
        stop(p)
    shutil.rmtree(work, ignore_errors=True)
PY
