#!/usr/bin/env bash
# How fast /live, /metrics and a control-socket ping answer while many idle
# clients hold connections (issue 14, defect 6). Figures, not pass/fail; the
# goal is under 100 ms. The test it_robust::probes_and_the_control_socket_...
# asserts the same with a generous 2 s deadline.
#
#   bash benches/idle_clients.sh                    500 idle clients on each
#   IDLE=1000 ROUNDS=200 bash benches/idle_clients.sh
#   AUTOPILOT_BIN=target/debug/autopilot bash benches/idle_clients.sh  (skip the build)
#
# Prints, for 0 idle clients and for IDLE idle TCP + IDLE idle unix clients
# (plus 20 stuck half-way through their headers): p50, p99 and max of ROUNDS
# requests of each kind, each on a new connection.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/lib.sh
command -v python3 >/dev/null || die "python3 not found"
bench_autopilot_bin
export BIN IDLE="${IDLE:-500}" ROUNDS="${ROUNDS:-100}"
bench_python <<'PY'
import resource
IDLE, ROUNDS = int(os.environ["IDLE"]), int(os.environ["ROUNDS"])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * IDLE + 256)), hard))

port = free_ports(1)[0]
sock = os.path.join(work, "control.sock")
cfg = os.path.join(work, "autopilot.json")
with open(cfg, "w") as f:
    json.dump({"telemetry": {"port": port, "interfaces": ["lo"]},
               "jobs": [{"name": "app", "exec": ["sleep", "1000"]}]}, f)
env = dict(os.environ, AUTOPILOT_CONTROL_SOCKET=sock)
ap = subprocess.Popen([BIN, "-config", cfg], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
procs.append(ap)

def exchange(s, request):
    s.settimeout(10)
    s.sendall(request)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk: break
        data += chunk
    s.close()
    return data.split(b" ", 2)[1] == b"200"

def live():
    return exchange(socket.create_connection(("127.0.0.1", port)), b"GET /live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")

def metrics():
    return exchange(socket.create_connection(("127.0.0.1", port)), b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")

def ping():
    s = socket.socket(socket.AF_UNIX); s.connect(sock)
    return exchange(s, b"GET /v3/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")

def ready():
    try: return live() and ping()
    except OSError: return False
wait_for("autopilot to serve", 10, ready, 0.05)

def measure(label):
    for name, f in [("/live", live), ("/metrics", metrics), ("ping", ping)]:
        times, failed = [], 0
        for _ in range(ROUNDS):
            t = time.perf_counter()
            try:
                ok = f()
            except OSError:
                ok = False
            times.append((time.perf_counter() - t) * 1000)
            failed += not ok
        times.sort()
        p = lambda q: times[min(len(times) - 1, int(q * len(times)))]
        print(f"{label:<28} {name:<9} p50 {p(0.5):7.2f} ms  p99 {p(0.99):7.2f} ms  max {times[-1]:7.2f} ms  failed {failed}/{ROUNDS}")

try:
    measure("no idle clients")
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(IDLE)]
    for _ in range(IDLE):
        s = socket.socket(socket.AF_UNIX); s.connect(sock); held.append(s)
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", port)); s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"); held.append(s)
    measure(f"{IDLE}+{IDLE} idle, 20 slow")
finally:
    ap.terminate(); ap.wait()
    shutil.rmtree(work, ignore_errors=True)
PY
