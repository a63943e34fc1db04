#!/usr/bin/env bash
# Figures of the examples/volume replicated block volume (not pass/fail): the
# docker-compose example with 256 MiB replicas, real QEMU tools and Consul.
#
#   bash benches/volume.sh            (as root, with Docker; about 5 minutes)
#   ROUNDS=5 IDLE_SECS=60 VOLUME_SIZE=256M bash benches/volume.sh
#   VOLUME_PREBUILT=1 bash benches/volume.sh   (reuse the autopilot-volume image)
#
# stall        a writer writes 1 MiB chunks through the controller; a replica
#              gets SIGKILL: the longest write around the kill (the quorum's
#              NBD children wait `reconnect-delay`, 1 s, for a lost replica).
# re-add       the killed replica is started again: from its first passing
#              health check in Consul (polled every 50 ms from the host) to
#              the controller's "attached" and "in sync" (after the scrub)
#              log lines; the writer keeps writing.
# restart      the controller gets SIGKILL and is started again: time from
#              `docker start` to the client's first successful read.
# idle         Consul HTTP requests per minute of the idle volume (Consul's
#              debug log, one line per request), by container.
# throughput   qemu-img bench (1 MiB requests, queue depth 8) through the
#              controller, and against a single qemu-nbd on a file in the
#              client container (same machine): the ratio is the price of
#              replication (quorum reads hit every replica).
#
# ROUNDS (default 3) kills and returns; medians and maxima are printed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

EXAMPLE=examples/volume
PROJECT="autopilot_volume_bench_$$"
COMPOSE=(docker-compose -f "$EXAMPLE/docker-compose.yml" -p "$PROJECT")
export VOLUME_CONSUL_PORT="" VOLUME_NBD_PORT="" VOLUME_SIZE="${VOLUME_SIZE:-256M}" VOLUME_CONSUL_LOG_LEVEL=debug
ROUNDS="${ROUNDS:-3}"
IDLE_SECS="${IDLE_SECS:-60}"
# shellcheck source=tests/docker/lib.sh
# shellcheck source=tests/docker/lib.sh
. tests/docker/lib.sh
need_docker
trap compose_cleanup EXIT

ctr() { "${COMPOSE[@]}" ps -q "$1"; }
now_ms() { date +%s%3N; }
consul() { curl -sf "http://$CONSUL_ADDR$1"; }
level_is() { consul /v1/health/checks/volume | jq -e --arg l "$1" 'any(.[]; (.CheckID | startswith("volume-replicas-")) and (.Output | startswith($l)))' >/dev/null; }
# ms since the epoch of the first controller log line (after $2 ms) matching $1
log_ms() {
    local line
    # (No early exit in the pipeline: pipefail would take SIGPIPE for a failure.)
    line="$(docker logs "$CONTROLLER" 2>&1 | grep -E "$1" | while read -r ts _; do
        t="$(date -d "$ts" +%s%3N)"; if [ "$t" -ge "$2" ]; then echo "$t"; fi; done | sed -n 1p)"
    echo "${line:-0}"
}
stats() { sort -n | awk '{a[NR] = $1} END {if (NR == 0) {print "n/a"; exit} printf "median %d ms, max %d ms (n=%d)", a[int((NR + 1) / 2)], a[NR], NR}'; }

if [ "${VOLUME_PREBUILT:-}" != 1 ]; then
    log "images"
    bash scripts/docker-images.sh volume >/dev/null
    build_autopilot_image
    run_logged build "${COMPOSE[@]}" build
fi
run_logged up "${COMPOSE[@]}" up -d
CONSUL_ADDR="$("${COMPOSE[@]}" port consul 8500)"
CONTROLLER="$(ctr controller)" CLIENT="$(ctr client)" R1="$(ctr replica1)"
wait_for "the volume is healthy" 120 level_is "healthy: 3 of 3"
wait_for "the client found the controller" 30 docker exec "$CLIENT" volume-io target
size="$(docker exec "$CLIENT" volume-io size)"
docker exec "$CLIENT" volume-io write 0x5a 0 "$size"
log "volume of $((size / 1048576)) MiB written with 0x5a; machine load: $(cut -d' ' -f1-3 /proc/loadavg)"

# ------------------------------------------------------------------ idle
log "idle: counting Consul requests for ${IDLE_SECS}s"
sleep 5
from="$(date -u +%s)"
sleep "$IDLE_SECS"
to="$(date -u +%s)"
declare -A NAME_OF
for c in $(docker ps -q --filter "label=com.docker.compose.project=$PROJECT"); do
    NAME_OF["$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$c")"]="$(docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}}' "$c")"
done
idle="$(docker logs --since "$from" --until "$to" "$(ctr consul)" 2>&1 | grep 'Request finished' \
    | sed -n 's/.*from=\([0-9.]*\):.*/\1/p' | sort | uniq -c)"
total=0
IDLE_LINES=""
while read -r n ip; do
    [ -n "${n:-}" ] || continue
    total=$((total + n))
    IDLE_LINES+="    ${NAME_OF[$ip]:-$ip}: $((n * 60 / IDLE_SECS))/min"$'\n'
done <<<"$idle"
IDLE_TOTAL=$((total * 60 / IDLE_SECS))

# ------------------------------------------------------------------ stall, re-add
STALLS=() ADDS=() SYNCS=() SCRUBS=()
for round in $(seq "$ROUNDS"); do
    W=/run/volume/bench-writer.log
    docker exec "$CLIENT" rm -f "$W.stop"
    docker exec -d "$CLIENT" volume-io writer "$W" 64
    wait_for "round $round: the writer writes" 30 sh -c "[ \$(docker exec $CLIENT grep -c '^ok' $W) -ge 5 ]"
    epoch="$(consul /v1/kv/volume/vol/epoch/replica1?raw)"
    docker kill -s KILL "$R1" >/dev/null
    t_kill="$(now_ms)"
    wait_for "round $round: degraded" 30 level_is "degraded: 2 of 3"
    wait_for "round $round: 5 writes after the kill" 60 sh -c "[ \$(docker exec $CLIENT awk -v t=$t_kill '\$1 == \"ok\" && \$5 >= t' $W | grep -c .) -ge 5 ]"
    STALLS+=("$(docker exec "$CLIENT" awk -v t="$t_kill" '$5 + $6 >= t - 100 {if ($6 > m) m = $6} END {print m + 0}' "$W")")
    docker start "$R1" >/dev/null
    t_pass=0
    for _ in $(seq 1200); do
        if consul "/v1/health/service/replica?passing=1" | jq -e --arg e "$epoch" 'any(.[]; .Service.ID == "replica-replica1" and .Service.Meta.epoch != $e)' >/dev/null; then
            t_pass="$(now_ms)"; break
        fi
        sleep 0.05
    done
    wait_for "round $round: healthy again" 120 level_is "healthy: 3 of 3"
    t_add="$(log_ms 'attached r-replica1-' "$((t_pass - 2000))")"
    t_sync="$(log_ms 'replica-replica1 .epoch [0-9]+. in sync' "$((t_pass - 2000))")"
    ADDS+=("$((t_add - t_pass))")
    SYNCS+=("$((t_sync - t_pass))")
    SCRUBS+=("$((t_sync - t_add))")
    docker exec "$CLIENT" touch "$W.stop"
    wait_for "round $round: the writer stopped" 60 docker exec "$CLIENT" grep -q '^stopped' "$W"
    fails="$(docker exec "$CLIENT" grep -c '^fail' "$W" || true)"
    log "round $round: stall ${STALLS[-1]} ms, re-added $((t_add - t_pass)) ms and in sync $((t_sync - t_pass)) ms after passing; failed writes: $fails"
done

# ------------------------------------------------------------------ controller restart
RESTARTS=()
for round in $(seq "$ROUNDS"); do
    docker kill -s KILL "$CONTROLLER" >/dev/null
    wait_for "round $round: the client lost the controller" 30 sh -c "! docker exec $CLIENT volume-io target"
    docker start "$CONTROLLER" >/dev/null
    t0="$(now_ms)"
    until docker exec "$CLIENT" volume-io read 0x5a $((100 * 1048576)) 4096 >/dev/null 2>&1; do
        [ $(($(now_ms) - t0)) -lt 120000 ] || fail "no I/O 120 s after the controller restarted"
        sleep 0.1
    done
    RESTARTS+=("$(($(now_ms) - t0))")
    log "round $round: first I/O ${RESTARTS[-1]} ms after the controller restarted"
done
wait_for "healthy" 60 level_is "healthy: 3 of 3"

# ------------------------------------------------------------------ throughput
target="$(docker exec "$CLIENT" volume-io target)"
n=$((size / 1048576))
bench() { docker exec "$CLIENT" qemu-img bench -f raw -c "$n" -s 1M -d 8 "$@" 2>&1 | sed -n 's/.*Run completed in \([0-9.]*\) seconds.*/\1/p'; }
mibs() { awk -v n="$n" -v t="$1" 'BEGIN {printf "%.0f MiB/s", n / t}'; }
w_vol="$(bench -w "nbd://$target/vol")"
r_vol="$(bench "nbd://$target/vol")"
docker exec "$CLIENT" sh -c "rm -f /tmp/single.img && truncate -s $size /tmp/single.img && (qemu-nbd -t -x single -f raw -p 10810 /tmp/single.img >/dev/null 2>&1 &)"
until docker exec "$CLIENT" nbdinfo --size nbd://127.0.0.1:10810/single >/dev/null 2>&1; do sleep 0.1; done
w_one="$(bench -w nbd://127.0.0.1:10810/single)"
r_one="$(bench nbd://127.0.0.1:10810/single)"

echo
echo "volume bench: $((size / 1048576)) MiB replicas, $ROUNDS rounds, QEMU $(docker exec "$CLIENT" qemu-nbd --version | head -1 | cut -d' ' -f2), load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
echo "  write stall when a replica dies:          $(printf '%s\n' "${STALLS[@]}" | stats)   (target < 1500 ms)"
echo "  replica passing -> re-added:              $(printf '%s\n' "${ADDS[@]}" | stats)   (target < 1000 ms)"
echo "  replica passing -> in sync ($((size / 1048576)) MiB):    $(printf '%s\n' "${SYNCS[@]}" | stats)   (target < 3000 ms)"
echo "    of which attach -> in sync (scrub):     $(printf '%s\n' "${SCRUBS[@]}" | stats)"
echo "  controller restart -> first I/O:          $(printf '%s\n' "${RESTARTS[@]}" | stats)   (target < 10000 ms)"
echo "  idle Consul requests per minute:          $IDLE_TOTAL (over ${IDLE_SECS}s)"
printf '%s' "$IDLE_LINES"
echo "  throughput, write: through the controller $(mibs "$w_vol"), single qemu-nbd $(mibs "$w_one")"
echo "  throughput, read:  through the controller $(mibs "$r_vol"), single qemu-nbd $(mibs "$r_one")"
