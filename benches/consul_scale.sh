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
# servers' HTTP ports (through request-counting proxies, in a process of their
# own so the bench's polling does not slow them). Each watches one service
# (`interval: "10ms"`) whose onChange hook is a tiny C program that appends
# the time to a file (one exec, no shell, static when it can be). The bench then registers and
# deregisters an instance of that service FLIPS times, SPACING seconds apart,
# and prints:
#   latency   change (just before the catalog PUT) -> hook start, at every
#             watcher: p50, p99, max over N x FLIPS; and change -> Consul's
#             answer leaving the proxy (the first answer on each connection
#             after the change), to tell Consul's share from autopilot's
#   requests  Consul HTTP requests per second from all autopilots: idle (over
#             IDLE_SECS) and during the flips
#   cpu       CPU seconds during the flips: each Consul server, the
#             autopilots, their hooks, the proxies
#   rss       total VmRSS of the N autopilot processes, idle
# PROXY=0 connects the autopilots to the servers directly (no request counts,
# no answer times): what the proxies cost.
# Goal: p99 < 200 ms at 200 watchers with no request storm.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh
[ "$(id -u)" -eq 0 ] || die "must run as root (unshare --pid needs it)"
bench_require_consul
command -v unshare >/dev/null || die "unshare not found"
bench_autopilot_bin
bench_build_stamp
export BIN N="${N:-200}" FLIPS="${FLIPS:-50}" SPACING="${SPACING:-1}" IDLE_SECS="${IDLE_SECS:-10}" PROXY="${PROXY:-1}"
bench_python <<'PY'
import itertools, multiprocessing, resource
N, FLIPS, SPACING, IDLE_SECS = int(os.environ["N"]), int(os.environ["FLIPS"]), float(os.environ["SPACING"]), int(os.environ["IDLE_SECS"])
PROXY = os.environ["PROXY"] != "0"
print(f"load average at the start: {open('/proc/loadavg').read().split()[0]}", file=sys.stderr)
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

class TimedProxy(CountingProxy):
    """A CountingProxy that also notes when each answer starts coming back,
    with the number of the connection it came on."""
    ANSWER = re.compile(rb"HTTP/1\.[01] \d{3} ")

    def __init__(self, target):
        self.answers = []  # (time, connection)
        self.numbers = itertools.count()
        super().__init__(target)

    def accept(self):
        while True:
            c, _ = self.sock.accept()
            host, port = self.target.split(":")
            u = socket.create_connection((host, int(port)))
            number = next(self.numbers)
            threading.Thread(target=self.pump, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self.pump_answers, args=(u, c, number), daemon=True).start()

    def pump_answers(self, src, dst, number):
        pending = b""
        try:
            while True:
                data = src.recv(65536)
                if not data: break
                now = time.time()
                dst.sendall(data)
                pending += data
                while (m := self.ANSWER.search(pending)):
                    with self.lock:
                        self.answers.append((now, number))
                    pending = pending[m.end():]
                pending = pending[-64:]
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try: s.shutdown(socket.SHUT_RDWR)
                except OSError: pass

def run_proxies(targets, pipe):
    """In a process of its own: proxies to `targets`; sends their addresses,
    then on any message everything they saw, tagged by proxy."""
    ps = [TimedProxy(t) for t in targets]
    pipe.send([p.addr for p in ps])
    pipe.recv()
    pipe.send(([r for p in ps for r in p.requests],
               [(t, (i, c)) for i, p in enumerate(ps) for t, c in p.answers]))

def cpu_seconds(pid, children=False):
    """utime + stime of `pid` (with children: of its reaped children)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    first = 13 if children else 11  # cutime, cstime / utime, stime (after the name)
    return (int(fields[first]) + int(fields[first + 1])) / os.sysconf("SC_CLK_TCK")

servers = start_cluster()
consul_pids = [p.pid for p in procs]
if PROXY:
    mp = multiprocessing.get_context("fork")
    here, there = mp.Pipe()
    proxy_proc = mp.Process(target=run_proxies, args=(servers, there), daemon=True)
    proxy_proc.start()
    addrs = here.recv()
else:
    addrs = servers
SERVICE = "flipper"
STAMP = os.environ["STAMP"]

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
        "consul": addrs[i % 3],
        "logging": {"level": "WARN"},
        "watches": [{"name": SERVICE, "interval": "10ms"}],
        "jobs": [
            {"name": "app", "exec": ["sleep", "infinity"]},
            {"name": "on-change", "exec": [STAMP, stamps[i]],
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

def count(path):
    """Stamps in `path`, from its size alone (20 bytes each): cheap enough to
    poll N files every 10 ms."""
    try:
        return os.stat(path).st_size // 20
    except OSError:
        return 0

# Every watcher publishes its first state (no instance) once.
wait_for("every watcher's first event", 300, lambda: all(count(s) >= 1 for s in stamps), 0.2)

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
aps = autopilot_pids()
def cpu_now():
    return ([cpu_seconds(p) for p in consul_pids], sum(cpu_seconds(p) for p in aps),
            sum(cpu_seconds(p, children=True) for p in aps), cpu_seconds(proxy_proc.pid) if PROXY else 0.0)
idle = (time.time(), time.time() + IDLE_SECS)
cpu_idle = cpu_now()
time.sleep(IDLE_SECS)
cpu_idle = (cpu_idle, cpu_now())
rss_kb = 0
for pid in autopilot_pids():
    try:
        with open(f"/proc/{pid}/status") as f:
            rss_kb += next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
    except OSError:
        pass

print(f"flipping {SERVICE} {FLIPS} times...", file=sys.stderr)
changes = []
cpu0 = cpu_now()
t1 = time.time()
for k in range(FLIPS):
    changes.append(time.time_ns())
    flip(k % 2 == 0)
    want = k + 2
    end = time.time() + 30
    while time.time() < end and not all(count(s) >= want for s in stamps):
        time.sleep(0.01)
    time.sleep(max(0, changes[-1] / 1e9 + SPACING - time.time()))
t2 = time.time()
cpu1 = cpu_now()
requests, answers = [], []
if PROXY:
    here.send("dump")
    requests, answers = here.recv()
def rate(a, b):
    return sum(1 for r in requests if a <= r[0] < b) / (b - a)

latencies, missing = [], 0
for s in stamps:
    got = lines(s)[1:]
    for k, at in enumerate(changes):
        if k < len(got):
            latencies.append((got[k] - at) / 1e6)
        else:
            missing += 1
latencies.sort()
# Consul's share: per flip, the first answer on each connection after the change.
consul_ms = []
bounds = [c / 1e9 for c in changes] + [float("inf")]
answers.sort()
for k in range(FLIPS):
    first = {}
    for t, conn in answers:
        if bounds[k] <= t < bounds[k + 1] and conn not in first:
            first[conn] = (t - bounds[k]) * 1e3
    consul_ms += first.values()
consul_ms.sort()
def pct(q, xs=None):
    xs = latencies if xs is None else xs
    return xs[max(0, min(len(xs) - 1, int(-(-q * len(xs) // 100)) - 1))] if xs else float("nan")

print()
print(f"{N} autopilots (each PID 1 of its own namespace), one service watch each, on a 3-server Consul cluster on loopback")
print(f"machine: {os.cpu_count()} CPUs, load average {open('/proc/loadavg').read().split()[0]} at the end")
print(f"change -> hook start over {len(latencies)} hook runs ({FLIPS} flips x {N} watchers, {missing} missing):")
print(f"    p50 {pct(50):8.1f} ms   p99 {pct(99):8.1f} ms   max {latencies[-1] if latencies else float('nan'):8.1f} ms")
if PROXY:
    print(f"change -> Consul's answer leaving the proxy, over {len(consul_ms)} answers:")
    print(f"    p50 {pct(50, consul_ms):8.1f} ms   p99 {pct(99, consul_ms):8.1f} ms   max {pct(100, consul_ms):8.1f} ms")
    print(f"Consul requests/s from all autopilots: idle {rate(*idle):.1f}, during the flips {rate(t1, t2):.1f}")
def print_cpu(what, span, before, after):
    used = lambda a, b: b - a
    print(f"CPU seconds {what} ({span:.0f} s; {os.cpu_count()} CPUs = {os.cpu_count() * span:.0f} s):")
    print(f"    consul servers {' + '.join(f'{used(a, b):.2f}' for a, b in zip(before[0], after[0]))}, autopilots {used(before[1], after[1]):.2f}, "
          f"their hooks {used(before[2], after[2]):.2f}, proxies {used(before[3], after[3]):.2f}")
print_cpu("while idle", IDLE_SECS, *cpu_idle)
print_cpu("during the flips", t2 - t1, cpu0, cpu1)
print(f"    per change and watcher: autopilot {(cpu1[1] - cpu0[1]) / max(1, len(latencies)) * 1e3:.2f} ms, "
      f"hook {(cpu1[2] - cpu0[2]) / max(1, len(latencies)) * 1e3:.2f} ms")
print(f"total autopilot RSS, idle: {rss_kb / 1024:.1f} MB ({rss_kb / 1024 / max(1, N):.2f} MB each)")
if PROXY:
    print("requests by path during the whole run:")
    print_by_path(requests)
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
