# Shared by the Consul benches (consul_latency.sh, leader_handover.sh); sourced,
# not run. After `cd` to the repository root:
#
#   source benches/lib.sh
#   bench_require_consul          # or exit: consul and python3 on PATH
#   bench_autopilot_bin           # sets BIN: $AUTOPILOT_BIN or a fresh release build
#   export BIN ...
#   bench_python <<'PY'           # the bench's Python, after the helpers below
#   ...
#   PY

die() { echo "$(basename "$0"): ERROR: $*" >&2; exit 1; }

bench_require_consul() {
    command -v consul >/dev/null || die "consul not found (bash scripts/install-deps.sh)"
    command -v python3 >/dev/null || die "python3 not found"
}

bench_autopilot_bin() {
    if [ -n "${AUTOPILOT_BIN:-}" ]; then
        BIN="$AUTOPILOT_BIN"
    else
        echo "building autopilot (release)..." >&2
        cargo build --release --quiet --bin autopilot
        BIN="target/release/autopilot"
    fi
    [ -x "$BIN" ] || die "$BIN is not an executable"
}

# Compiles benches/stamp.c (a hook that appends the time to a file) into a
# scratch directory and exports its path as STAMP. Static when the C library
# allows it: no dynamic loading, the lightest hook.
bench_build_stamp() {
    command -v cc >/dev/null || die "cc not found (apt-get install -y gcc): the hook is a tiny C program"
    local dir
    dir=$(mktemp -d /tmp/autopilot-stamp.XXXXXX)
    export STAMP="$dir/stamp"
    cc -O2 -static -o "$STAMP" benches/stamp.c 2>/dev/null || cc -O2 -o "$STAMP" benches/stamp.c
}

# Replaces the shell with python3 running the Python helpers below followed by
# the program on stdin.
bench_python() {
    exec python3 -c "$(bench_python_helpers)"$'\n'"$(cat)"
}

# Python shared by the benches: the autopilot binary (env BIN), a scratch
# directory `work`, the started processes `procs` (the bench's own cleanup
# kills or stops them), a loopback dev Consul agent and a request-counting
# proxy in front of it.
bench_python_helpers() {
    cat <<'PY'
import json, os, re, shutil, signal, socket, subprocess, sys, tempfile, threading, time
import urllib.request

BIN = os.path.abspath(os.environ["BIN"])

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

def wait_for(what, deadline, f, pause=0.005):
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

def start_autopilot(name, text):
    """Starts autopilot as HOSTNAME `name` with config `text`; its output is
    appended to {work}/{name}.log (an instance started again keeps one log)."""
    path = f"{work}/{name}.json5"
    with open(path, "w") as f: f.write(text)
    env = dict(os.environ, HOSTNAME=name, AUTOPILOT_CONTROL_SOCKET=f"{work}/{name}.sock")
    log = open(f"{work}/{name}.log", "a")
    p = subprocess.Popen([BIN, "-config", path], env=env, stdout=log, stderr=subprocess.STDOUT)
    procs.append(p)
    return p

def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try: p.wait(10)
        except subprocess.TimeoutExpired: p.kill(); p.wait()

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

def print_by_path(requests):
    """Prints how many of `requests` (CountingProxy's) each method and path
    had, without the query string; session IDs read `<session>`."""
    paths = {}
    for _, method, path in requests:
        key = f"{method} {re.sub(r'/[0-9a-f-]{36}', '/<session>', path.split('?')[0])}"
        paths[key] = paths.get(key, 0) + 1
    for key, n in sorted(paths.items()):
        print(f"    {n:3d}  {key}")
PY
}
