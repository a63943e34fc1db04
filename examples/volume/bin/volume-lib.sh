# Shared by the volume example's scripts (POSIX sh: busybox or dash). Sourced,
# never run. Settings come from the container's environment (docker-compose.yml).
# shellcheck disable=SC2034  # the variables are for the scripts that source this

VOLUME="${VOLUME:-vol}"                     # the volume's name (KV prefix, export name)
KV="volume/$VOLUME"                         # its state in Consul KV
REPLICAS="${VOLUME_REPLICAS:-3}"            # replicas the volume is configured with
THRESHOLD=$((REPLICAS / 2 + 1))             # quorum vote-threshold: a majority
SIZE="${VOLUME_SIZE:-256M}"                 # a replica's image size (truncate syntax)
CONSUL="${CONSUL:-consul:8500}"
# This container's name: autopilot's service IDs are <job>-<hostname>.
HOST="${HOSTNAME:-$(hostname)}"
# Where `autopilot kv` and `autopilot meta` find the agent.
export CONSUL_HTTP_ADDR="${CONSUL_HTTP_ADDR:-$CONSUL}"
NBD_PORT=10809                              # replicas and the controller serve NBD here
RUN=/run/volume
QMP_SOCK="$RUN/qmp.sock"

mkdir -p "$RUN"

say() { echo "$(basename "$0"): $*"; }
die() { echo "$(basename "$0"): ERROR: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }

# qmp COMMAND_JSON...: runs the QMP commands in order on one connection to
# qemu-storage-daemon and prints each answer's "return" value, one JSON line
# per command. Stops at the first error, prints its description on stderr
# and fails. (Asynchronous events on the connection are skipped.)
qmp() {
    [ -S "$QMP_SOCK" ] || { echo "qmp: no QMP socket at $QMP_SOCK (qemu-storage-daemon not running)" >&2; return 2; }
    out="$({ echo '{"execute":"qmp_capabilities"}'; for c in "$@"; do echo "$c"; done; } \
        | socat -t 10 - "UNIX-CONNECT:$QMP_SOCK")" || { echo "qmp: cannot talk to $QMP_SOCK" >&2; return 2; }
    # Drop the greeting and the capabilities answer; keep answers only.
    printf '%s\n' "$out" | jq -rs '[.[] | select(has("return") or has("error"))][1:]
        | if any(.[]; has("error"))
          then first(.[] | select(has("error"))) | "qmp: \(.error.desc)\n" | halt_error(1)
          else .[] | .return | tojson end'
}

# consul_put PATH JSON: a PUT to the local Consul agent's HTTP API.
consul_put() {
    curl -sS -f -m 5 -X PUT --data "$2" "http://$CONSUL$1" >/dev/null
}
