#!/usr/bin/env bash
# Consul watch figures for autopilot. Figures, not pass/fail. Needs `consul`
# (bash scripts/install-deps.sh) and python3; talks to loopback only.
#
#   bash benches/consul_latency.sh                 (about 90 s)
#   CHANGES=100 IDLE_SECS=60 bash benches/consul_latency.sh
#   AUTOPILOT_BIN=target/debug/autopilot bash benches/consul_latency.sh   (skip the build)
#
# latency   from the moment a watched service's TTL check is set to critical
#           through the agent API (PUT /v1/agent/check/update/...) to the start
#           of the onChange hook's process (the hook is `sh -c 'date +%s%N >> F'`,
#           so the figure includes starting sh and date, about 1-2 ms).
#           Median, p99 and max over CHANGES critical transitions; the service
#           is set passing again between two measurements (not measured). The
#           watch has `interval: "1ms"` and changes are 50 ms apart.
#           Target: p99 < 100 ms.
# requests  Consul HTTP requests per minute made by an idle autopilot with 5
#           service watches, counted by a small logging TCP proxy between
#           autopilot and the agent, over IDLE_SECS after a 3 s warm-up.
#           Expected: about 5 (one blocking query per watch per minute).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() { echo "consul_latency.sh: ERROR: $*" >&2; exit 1; }

command -v consul >/dev/null || die "consul not found (bash scripts/install-deps.sh)"
command -v python3 >/dev/null || die "python3 not found"

if [ -n "${AUTOPILOT_BIN:-}" ]; then
    BIN="$AUTOPILOT_BIN"
else
    echo "building autopilot (release)..." >&2
    cargo build --release --quiet --bin autopilot
    BIN="target/release/autopilot"
fi
[ -x "$BIN" ] || die "$BIN is not an executable"

export BIN CHANGES="${CHANGES:-100}" IDLE_SECS="${IDLE_SECS:-60}"
exec python3 - <<'PY'
import json, os, re, shutil, signal, socket, subprocess, sys, tempfile, threading, time
import urllib.request

BIN = os.path.abspath(os.environ["BIN"])
CHANGES = int(os.environ["CHANGES"])
IDLE_SECS = int(os.environ["IDLE_SECS"])
WARMUP = 3

work = tempfile.mkdtemp(prefix="autopilot-bench-")
procs = []

def free_ports(n):
    held, ports = [], []
    while len(ports) < n:
        t = socket.socket(); t.bind(("127.0.0.1", 0)); port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
        except OSError:
            t.close(); continue
        held += [t, u]; ports.append(port)
    for s in held: s.close()
    return ports

def http(addr, method, path, body=None):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(f"http://{addr}{path}", data=data, method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read()

def wait_for(what, deadline, f, pause=0.0005):
    end = time.time() + deadline
    while time.time() < end:
        v = f()
        if v: return v
        time.sleep(pause)
    sys.exit(f"timed out waiting for {what}")

def start_consul():
    p = free_ports(6)
    cfg = {"ports": {"http": p[0], "dns": p[1], "serf_lan": p[2], "serf_wan": p[3], "server": p[4], "grpc": p[5]},
           "disable_update_check": True, "disable_host_node_id": True}
    with open(f"{work}/consul.json", "w") as f: json.dump(cfg, f)
    log = open(f"{work}/consul.log", "w")
    procs.append(subprocess.Popen(["consul", "agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
        "-data-dir", f"{work}/consul-data", "-config-file", f"{work}/consul.json"],
        stdout=log, stderr=subprocess.STDOUT))
    addr = f"127.0.0.1:{p[0]}"
    def ready():
        try:
            return http(addr, "GET", "/v1/status/leader")[1].strip(b'"\n') != b""
        except OSError:
            return False
    wait_for("consul to elect a leader", 30, ready, 0.05)
    return addr

def start_autopilot(name, config):
    path = f"{work}/{name}.json5"
    with open(path, "w") as f: f.write(config)
    env = dict(os.environ, HOSTNAME=name, AUTOPILOT_CONTROL_SOCKET=f"{work}/{name}.sock")
    log = open(f"{work}/{name}.log", "w")
    p = subprocess.Popen([BIN, "-config", path], env=env, stdout=log, stderr=subprocess.STDOUT)
    procs.append(p)
    return p

def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try: p.wait(10)
        except subprocess.TimeoutExpired: p.kill(); p.wait()

def percentile(sorted_values, q):
    # nearest rank
    k = max(0, min(len(sorted_values) - 1, int(-(-q * len(sorted_values) // 100)) - 1))
    return sorted_values[k]

def register(addr, sid, name, port, ttl=None):
    body = {"ID": sid, "Name": name, "Address": "127.0.0.1", "Port": port}
    if ttl:
        body["Check"] = {"TTL": ttl, "Status": "passing"}
    http(addr, "PUT", "/v1/agent/service/register", body)

def latency(consul):
    register(consul, "bench-up-1", "bench-up", 9999, ttl="1h")
    hits = f"{work}/hook-times"
    ap = start_autopilot("latency", """{
      consul: "%s",
      watches: [{name: "bench-up", interval: "1ms"}],
      jobs: [
        {name: "keeper", exec: "sleep 100000"},
        {name: "on-change", exec: ["sh", "-c", "date +%%s%%N >> %s"],
         when: {source: "watch.bench-up", each: "changed"}},
      ],
    }""" % (consul, hits))
    def count():
        try:
            with open(hits) as f: return f.read().count("\n")
        except FileNotFoundError:
            return 0
    def last_stamp():
        with open(hits) as f: return int(f.read().split()[-1])
    wait_for("the startup publication", 15, lambda: count() >= 1, 0.01)
    time.sleep(0.2)
    check = "/v1/agent/check/update/service:bench-up-1"
    samples = []
    for i in range(CHANGES):
        n = count()
        t0 = time.time_ns()
        http(consul, "PUT", check, {"Status": "critical"})
        wait_for(f"the hook for change {i}", 10, lambda: count() > n)
        samples.append((last_stamp() - t0) / 1e6)
        time.sleep(0.05)
        n = count()
        http(consul, "PUT", check, {"Status": "passing"})
        wait_for(f"the hook after restoring {i}", 10, lambda: count() > n)
        time.sleep(0.05)
    stop(ap)
    s = sorted(samples)
    print(f"latency (consul change -> onChange hook process start), {len(s)} changes:")
    print(f"  median {percentile(s, 50):7.2f} ms   p99 {percentile(s, 99):7.2f} ms   "
          f"max {s[-1]:7.2f} ms   min {s[0]:7.2f} ms   (target p99 < 100 ms)")

class CountingProxy:
    """Forwards TCP to consul and records every HTTP request line it sees."""
    REQ = re.compile(rb"(GET|PUT|POST|DELETE) (/\S*) HTTP/1\.[01]\r\n")

    def __init__(self, target):
        self.target = target
        self.requests = []  # (time, method, path)
        self.lock = threading.Lock()
        self.sock = socket.socket(); self.sock.bind(("127.0.0.1", 0)); self.sock.listen(64)
        self.addr = f"127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            c, _ = self.sock.accept()
            host, port = self.target.split(":")
            u = socket.create_connection((host, int(port)))
            threading.Thread(target=self.pump, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self.pump, args=(u, c, False), daemon=True).start()

    def pump(self, src, dst, count):
        pending = b""
        try:
            while True:
                data = src.recv(65536)
                if not data: break
                dst.sendall(data)
                if count:
                    pending += data
                    while (m := self.REQ.search(pending)):
                        with self.lock:
                            self.requests.append((time.time(), m.group(1).decode(), m.group(2).decode()))
                        pending = pending[m.end():]
                    pending = pending[-512:]
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try: s.shutdown(socket.SHUT_RDWR)
                except OSError: pass

def idle_requests(consul):
    proxy = CountingProxy(consul)
    names = [f"idle-{i}" for i in range(1, 6)]
    for i, name in enumerate(names):
        register(consul, f"{name}-1", name, 10000 + i)
    watches = ",\n".join('{name: "%s", interval: 10}' % n for n in names)
    ap = start_autopilot("idle", """{
      consul: "%s",
      watches: [%s],
      jobs: [{name: "keeper", exec: "sleep 100000"}],
    }""" % (proxy.addr, watches))
    time.sleep(WARMUP)
    t0 = time.time()
    time.sleep(IDLE_SECS)
    t1 = time.time()
    stop(ap)
    with proxy.lock:
        window = [r for r in proxy.requests if t0 <= r[0] < t1]
        startup = [r for r in proxy.requests if r[0] < t0]
    per_min = len(window) * 60.0 / (t1 - t0)
    print(f"idle autopilot with 5 watches: {per_min:.1f} Consul requests/min "
          f"({len(window)} in {t1 - t0:.0f} s after a {WARMUP} s warm-up; {len(startup)} at startup)")
    paths = {}
    for _, method, path in window:
        key = f"{method} {path.split('?')[0]}"
        paths[key] = paths.get(key, 0) + 1
    for key, n in sorted(paths.items()):
        print(f"    {n:3d}  {key}")

try:
    consul = start_consul()
    latency(consul)
    idle_requests(consul)
finally:
    for p in procs:
        if p.poll() is None:
            p.kill(); p.wait()
    shutil.rmtree(work, ignore_errors=True)
PY
