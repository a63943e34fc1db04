#!/usr/bin/env bash
# One Consul cluster, many autopilots (issue 14, "Scale"). Figures, not
# pass/fail. Must run as root (each autopilot is PID 1 of its own PID
# namespace: unshare --pid --fork --mount-proc). Talks to loopback only.
#
#   bash benches/consul_scale.sh                       200 autopilots, 50 flips
#   N=50 FLIPS=20 bash benches/consul_scale.sh
#   AUTOPILOT_BIN=target/debug/autopilot bash benches/consul_scale.sh  (skip the build)
#
# Starts a three-server Consul cluster on loopback and N autopilots, each PID 1
# of its own namespace with its own control socket, spread over the three
# servers' HTTP ports (through request-counting proxies). Each watches one
# service (`interval: "10ms"`) whose onChange hook stamps the time. The bench
# then registers and deregisters an instance of that service FLIPS times,
# SPACING seconds apart, and prints:
#   latency   change (just before the catalog PUT) -> hook start, at every
#             watcher: p50, p99, max over N x FLIPS
#   requests  Consul HTTP requests per second from all autopilots: idle (over
#             IDLE_SECS) and during the flips
#   rss       total VmRSS of the N autopilot processes, idle
# Goal: p99 < 200 ms at 200 watchers with no request storm.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh
[ "$(id -u)" -eq 0 ] || die "must run as root (unshare --pid needs it)"
bench_require_consul
command -v unshare >/dev/null || die "unshare not found"
bench_autopilot_bin
export BIN N="${N:-200}" FLIPS="${FLIPS:-50}" SPACING="${SPACING:-1}" IDLE_SECS="${IDLE_SECS:-10}"
bench_python <<'PY'
import resource
N, FLIPS, SPACING, IDLE_SECS = int(os.environ["N"]), int(os.environ["FLIPS"]), float(os.environ["SPACING"]), int(os.environ["IDLE_SECS"])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8 * N + 1024)), hard))

def start_cluster():
    """Three servers on loopback; returns their HTTP addresses once a leader is elected."""
    ports = [free_ports(5) for _ in range(3)]
    serf = [p[2] for p in ports]
    addrs = []
    for i, p in enumerate(ports):
        cfg = {"ports": {"http": p[0], "dns": p[1], "serf_lan": p[2], "server": p[3], "serf_wan": p[4], "grpc": -1},
               "server": True, "bootstrap_expect": 3, "node_name": f"server{i}",
               "data_dir": f"{work}/consul{i}", "bind_addr": "127.0.0.1", "client_addr": "127.0.0.1",
               "retry_join": [f"127.0.0.1:{s}" for j, s in enumerate(serf) if j != i],
               "performance": {"raft_multiplier": 1},
               "disable_update_check": True, "disable_host_node_id": True, "log_level": "warn"}
        with open(f"{work}/consul{i}.json", "w") as f: json.dump(cfg, f)
        log = open(f"{work}/consul{i}.log", "w")
        procs.append(subprocess.Popen(["consul", "agent", "-config-file", f"{work}/consul{i}.json"],
                                      stdout=log, stderr=subprocess.STDOUT))
        addrs.append(f"127.0.0.1:{p[0]}")
    def ready():
        try:
            return all(http(a, "GET", "/v1/status/leader")[1].strip(b'"\n') != b"" for a in addrs)
        except OSError:
            return False
    wait_for("the three servers to elect a leader", 60, ready, 0.1)
    return addrs

servers = start_cluster()
proxies = [CountingProxy(a) for a in servers]
SERVICE = "flipper"

def flip(on):
    body = {"Node": "external", "Address": "127.0.0.1"}
    if on:
        body["Service"] = {"ID": "flipper-1", "Service": SERVICE, "Port": 5000}
        http(servers[0], "PUT", "/v1/catalog/register", body)
    else:
        body["ServiceID"] = "flipper-1"
        http(servers[0], "PUT", "/v1/catalog/deregister", body)

stamps = [f"{work}/stamps-{i}" for i in range(N)]
pids = []
print(f"starting {N} autopilots...", file=sys.stderr)
for i in range(N):
    cfg = {
        "consul": proxies[i % 3].addr,
        "logging": {"level": "WARN"},
        "watches": [{"name": SERVICE, "interval": "10ms"}],
        "jobs": [
            {"name": "app", "exec": ["sleep", "infinity"]},
            {"name": "on-change", "exec": ["sh", "-c", f"date +%s%N >> {stamps[i]}"],
             "when": {"source": f"watch.{SERVICE}", "each": "changed"}},
        ],
    }
    path = f"{work}/ap{i}.json"
    with open(path, "w") as f: json.dump(cfg, f)
    env = dict(os.environ, HOSTNAME=f"ap{i}", AUTOPILOT_CONTROL_SOCKET=f"{work}/ap{i}.sock")
    log = open(f"{work}/ap{i}.log", "w")
    procs.append(subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", BIN, "-config", path],
                                  env=env, stdout=log, stderr=subprocess.STDOUT))

def lines(path):
    try:
        with open(path) as f: return [int(l) for l in f.read().split()]
    except (OSError, ValueError):
        return []

# Every watcher publishes its first state (no instance) once.
wait_for("every watcher's first event", 120, lambda: all(len(lines(s)) >= 1 for s in stamps), 0.2)

def autopilot_pids():
    out = []
    for p in procs:
        if p.args[0] != "unshare": continue
        try:
            with open(f"/proc/{p.pid}/task/{p.pid}/children") as f: out += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out

time.sleep(3)  # warm-up over: measure idle
t0, n0 = time.time(), sum(len(p.requests) for p in proxies)
time.sleep(IDLE_SECS)
idle_rate = (sum(len(p.requests) for p in proxies) - n0) / (time.time() - t0)
rss_kb = 0
for pid in autopilot_pids():
    try:
        with open(f"/proc/{pid}/status") as f:
            rss_kb += next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
    except OSError:
        pass

print(f"flipping {SERVICE} {FLIPS} times...", file=sys.stderr)
changes = []
t1, n1 = time.time(), sum(len(p.requests) for p in proxies)
for k in range(FLIPS):
    changes.append(time.time_ns())
    flip(k % 2 == 0)
    want = k + 2
    end = time.time() + 30
    while time.time() < end and not all(len(lines(s)) >= want for s in stamps):
        time.sleep(0.01)
    time.sleep(max(0, changes[-1] / 1e9 + SPACING - time.time()))
flip_rate = (sum(len(p.requests) for p in proxies) - n1) / (time.time() - t1)

latencies, missing = [], 0
for s in stamps:
    got = lines(s)[1:]
    for k, at in enumerate(changes):
        if k < len(got):
            latencies.append((got[k] - at) / 1e6)
        else:
            missing += 1
latencies.sort()
def pct(q):
    return latencies[max(0, min(len(latencies) - 1, int(-(-q * len(latencies) // 100)) - 1))] if latencies else float("nan")

print()
print(f"{N} autopilots (each PID 1 of its own namespace), one service watch each, on a 3-server Consul cluster on loopback")
print(f"machine: {os.cpu_count()} CPUs, load average {open('/proc/loadavg').read().split()[0]} at the end")
print(f"change -> hook start over {len(latencies)} hook runs ({FLIPS} flips x {N} watchers, {missing} missing):")
print(f"    p50 {pct(50):8.1f} ms   p99 {pct(99):8.1f} ms   max {latencies[-1] if latencies else float('nan'):8.1f} ms")
print(f"Consul requests/s from all autopilots: idle {idle_rate:.1f}, during the flips {flip_rate:.1f}")
print(f"total autopilot RSS, idle: {rss_kb / 1024:.1f} MB ({rss_kb / 1024 / max(1, N):.2f} MB each)")
print("requests by path during the whole run:")
print_by_path([r for p in proxies for r in p.requests])
for p in procs:
    if p.args[0] == "unshare" and p.poll() is None:
        p.kill()
for p in procs:
    if p.poll() is None:
        p.terminate()
        try: p.wait(10)
        except subprocess.TimeoutExpired: p.kill()
shutil.rmtree(work, ignore_errors=True)
PY
