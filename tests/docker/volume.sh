#!/usr/bin/env bash
# Docker test of examples/volume: a replicated block volume (3 qemu-nbd
# replicas, a qemu-storage-daemon quorum controller, a client) that
# orchestrates itself with autopilot, Consul watches and hooks.
#
#   bash tests/docker/volume.sh        (as root; about 3-5 minutes)
#   VOLUME_PREBUILT=1 bash tests/docker/volume.sh   (reuse the autopilot-volume image)
#
# 1. writes a pattern over the whole volume through the controller (found via
#    Consul) and reads it back;
# 2. SIGKILLs a replica under a concurrent writer: no write fails; restarts it:
#    it is re-attached and scrubbed while the writer runs, and after quiescing
#    the three replica images are byte-identical;
# 3. two replicas down: writes fail and the controller reports critical (Consul
#    check output, `autopilot status`); one back: writes work again;
# 4. kills the controller: restarted, it rebuilds the quorum from the in-sync
#    set in Consul KV, the client follows it, and everything written reads back;
# 5. stops the controller cleanly: the in-sync set is marked clean.
#
# It cleans up its containers, network and volumes even when it fails. Without
# a Docker engine it skips, except under CI=true, where it fails.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

EXAMPLE=examples/volume
PROJECT="autopilot_volume_test_$$"
COMPOSE=(docker-compose -f "$EXAMPLE/docker-compose.yml" -p "$PROJECT")
# Empty host ports: Docker picks free ones. A small volume keeps it quick.
export VOLUME_CONSUL_PORT="" VOLUME_NBD_PORT="" VOLUME_SIZE=64M
MIB=1048576
CHUNKS=64 # 1 MiB chunks of the volume; EXPECT[i] is the pattern chunk i must hold

# shellcheck source=tests/docker/lib.sh
. tests/docker/lib.sh
need_docker
trap compose_cleanup EXIT

# ------------------------------------------------------------------ helpers

ctr() { "${COMPOSE[@]}" ps -q "$1"; }
consul_get() { docker exec "$CONSUL_CTR" curl -sf "http://127.0.0.1:8500$1"; }
passing_count() { consul_get "/v1/health/service/$1?passing=1" | docker exec -i "$CONSUL_CTR" jq length; }
passing_is() { [ "$(passing_count "$1")" -eq "$2" ]; }
# The output of the controller's `volume-replicas` check: healthy / degraded / critical ...
level() { consul_get /v1/health/checks/volume | docker exec -i "$CONSUL_CTR" jq -r '.[] | select(.CheckID | startswith("volume-replicas-")) | .Output'; }
level_is() { local l; l="$(level)"; echo "level: $l"; [[ "$l" == "$1"* ]]; }
kv() { consul_get "/v1/kv/$1?raw"; }
vio() { docker exec "$CLIENT" volume-io "$@"; }
image_sums() { for r in "$R1" "$R2" "$R3"; do docker exec "$r" md5sum /data/volume.img | cut -d' ' -f1; done; }
ok_writes() { docker exec "$CLIENT" sh -c "grep -c '^ok' $1 || true"; }

# verify_all: every chunk reads back as EXPECT says, through the controller.
verify_all() {
    local cmds=() i
    for ((i = 0; i < CHUNKS; i++)); do cmds+=(-c "read -P ${EXPECT[$i]} $((i * MIB)) $MIB"); done
    local out
    out="$(vio qemu-io "${cmds[@]}" 2>&1)" || { grep -i -m5 fail <<<"$out"; return 1; }
    if grep -qi fail <<<"$out"; then grep -i -m5 fail <<<"$out"; return 1; fi
    [ "$(echo "$out" | grep -c '^read ')" -eq "$CHUNKS" ]
}

# Applies a writer's log to EXPECT: the last successful write of each chunk.
apply_writer_log() {
    local r chunk pattern
    while read -r r _ chunk pattern _; do
        if [ "$r" = ok ]; then EXPECT[chunk]="$pattern"; fi
    done < <(docker exec "$CLIENT" cat "$1")
}

start_writer() { docker exec -d "$CLIENT" volume-io writer "$1" "$2"; }
stop_writer() {
    docker exec "$CLIENT" touch "$1.stop"
    wait_for "the writer stopped" 60 docker exec "$CLIENT" grep -q '^stopped' "$1"
}
writes_after() { docker exec "$CLIENT" awk -v t="$2" '$1 == "ok" && $5 >= t' "$1" | grep -c . || true; }
now_ms() { date +%s%3N; }

# ------------------------------------------------------------------ images

# VOLUME_PREBUILT=1 uses the autopilot-volume image as it is (while working
# on the example's scripts).
if [ "${VOLUME_PREBUILT:-}" != 1 ]; then
    log "base images (scripts/docker-images.sh volume)"
    bash scripts/docker-images.sh volume
    # The image is cached by tag: one built before jq, socat and curl joined
    # its package list lacks what the hooks use.
    if ! docker run --rm autopilot-volume-base:bookworm sh -c 'command -v jq && command -v socat && command -v curl' >/dev/null; then
        log "autopilot-volume-base:bookworm lacks jq, socat or curl: rebuilding it"
        bash scripts/docker-images.sh --force volume
    fi
    build_autopilot_image
    log "docker-compose build"
    run_logged build-example "${COMPOSE[@]}" build
    docker images -q --filter dangling=true --filter label=org.autopilot.image=volume-demo \
        | xargs -r docker rmi >/dev/null 2>&1 || true
fi

# ------------------------------------------------------------------ start

log "docker-compose up (project $PROJECT)"
run_logged up "${COMPOSE[@]}" up -d
CONSUL_CTR="$(ctr consul)" R1="$(ctr replica1)" R2="$(ctr replica2)" R3="$(ctr replica3)"
CONTROLLER="$(ctr controller)" CLIENT="$(ctr client)"
wait_for "consul has a leader" 60 sh -c "docker exec $CONSUL_CTR curl -sf http://127.0.0.1:8500/v1/status/leader | grep -q :"
wait_for "3 replicas passing in consul" 60 passing_is replica 3
wait_for "the controller passing in consul" 60 passing_is volume 1
wait_for "the controller reports healthy: 3 of 3" 120 level_is "healthy: 3 of 3"
wait_for "the client found the controller through consul" 30 vio target
size="$(vio size)"
[ "$size" -eq $((CHUNKS * MIB)) ] || fail "the volume is $size bytes, expected $((CHUNKS * MIB))"
ok "the volume is $((size / MIB)) MiB"

# ------------------------------------------------------------------ 1. pattern

vio write 0x5a 0 "$size" || fail "writing 0x5a over the whole volume"
vio read 0x5a 0 "$size" || fail "reading 0x5a back"
for ((i = 0; i < CHUNKS; i++)); do EXPECT[i]=0x5a; done
ok "wrote 0x5a over the whole volume through the controller and read it back"
sums="$(image_sums | sort -u)"
[ "$(echo "$sums" | grep -c .)" -eq 1 ] || fail "replica images differ after the first write: $sums"
ok "the three replica images are identical"

# ------------------------------------------------------------------ 2. replica killed, rebuilt

W1=/run/volume/writer1.log
start_writer "$W1" 16
wait_for "the writer is writing" 30 sh -c "[ \$(docker exec $CLIENT grep -c '^ok' $W1) -ge 10 ]"
epoch1="$(kv volume/vol/epoch/replica1)"
docker kill -s KILL "$R1" >/dev/null
t_kill="$(now_ms)"
log "SIGKILLed replica1 (epoch $epoch1)"
wait_for "the controller reports degraded: 2 of 3" 120 level_is "degraded: 2 of 3"
status_shows() { # JOB HEALTH...: `autopilot status` in the controller shows each JOB with its HEALTH
    local out
    out="$(docker exec "$CONTROLLER" autopilot status)"
    echo "$out"
    while [ $# -gt 0 ]; do
        echo "$out" | grep -E "^$1 +running .* $2 " >/dev/null || return 1
        shift 2
    done
}
wait_for "autopilot status: volume healthy, redundancy unhealthy" 30 status_shows volume healthy redundancy unhealthy
wait_for "10 more writes after the kill" 60 sh -c "[ \$(docker exec $CLIENT awk -v t=$t_kill '\$1 == \"ok\" && \$5 >= t' $W1 | grep -c .) -ge 10 ]"
if docker exec "$CLIENT" grep -q '^fail' "$W1"; then
    docker exec "$CLIENT" grep '^fail' "$W1" | head -5 >&2
    fail "a write failed while one replica was down"
fi
stall="$(docker exec "$CLIENT" awk -v t="$t_kill" '$1 == "ok" && $5 + $6 >= t {if ($6 > m) m = $6} END {print m + 0}' "$W1")"
ok "no write failed with a replica SIGKILLed (longest write around the kill: ${stall} ms)"
kv volume/vol/in-sync | grep "replica-replica1" >/dev/null && fail "replica1 is still in the in-sync set: $(kv volume/vol/in-sync)"
ok "replica1 marked out of the in-sync set in KV"

docker start "$R1" >/dev/null
t_start="$(now_ms)"
wait_for "replica1 back with a new epoch" 60 sh -c "[ \"\$(docker exec $CONSUL_CTR curl -sf http://127.0.0.1:8500/v1/kv/volume/vol/epoch/replica1?raw)\" -gt $epoch1 ]"
epoch1b="$(kv volume/vol/epoch/replica1)"
wait_for "the controller reports healthy: 3 of 3 again" 120 level_is "healthy: 3 of 3"
wait_for "autopilot status: volume healthy, redundancy healthy" 30 status_shows volume healthy redundancy healthy
t_sync="$(now_ms)"
kv volume/vol/in-sync | grep -x "replica-replica1 $epoch1b" >/dev/null || fail "in-sync set lacks replica1 epoch $epoch1b: $(kv volume/vol/in-sync)"
ok "replica1 (epoch $epoch1b) re-attached, scrubbed and marked in sync"
during="$(writes_after "$W1" "$t_start")"
wait_for "the writer goes on after the rebuild" 30 sh -c "[ \$(docker exec $CLIENT awk -v t=$t_sync '\$1 == \"ok\" && \$5 >= t' $W1 | grep -c .) -ge 5 ]"
stop_writer "$W1"
rebuild_writes="$(docker exec "$CLIENT" awk -v a="$t_start" -v b="$t_sync" '$1 == "ok" && $5 >= a && $5 <= b' "$W1" | grep -c . || true)"
[ "$rebuild_writes" -gt 0 ] || fail "no write happened while replica1 was being rebuilt"
if docker exec "$CLIENT" grep -q '^fail' "$W1"; then
    docker exec "$CLIENT" grep '^fail' "$W1" | head -5 >&2
    fail "a write failed during the rebuild"
fi
ok "$rebuild_writes writes during the rebuild, $(ok_writes "$W1") in all, none failed (at least $during after the restart)"
apply_writer_log "$W1"
sums="$(image_sums)"
[ "$(echo "$sums" | sort -u | grep -c .)" -eq 1 ] || fail "replica images differ after the rebuild: $(echo "$sums" | tr '\n' ' ')"
ok "the three replica images are byte-identical after quiescing ($(echo "$sums" | head -1))"
verify_all || fail "the volume does not read back what was written"
ok "all $CHUNKS chunks read back as written"

# ------------------------------------------------------------------ 3. two down, one back

docker kill -s KILL "$R2" "$R3" >/dev/null
log "SIGKILLed replica2 and replica3"
wait_for "the controller reports critical" 120 level_is "critical: 1 of 3"
wait_for "the controller is critical in consul" 120 passing_is volume 0
wait_for "autopilot status: volume unhealthy, redundancy unhealthy" 30 status_shows volume unhealthy redundancy unhealthy
if docker exec "$CLIENT" qemu-io -f raw "nbd://$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$CONTROLLER"):10809/vol" \
    -c "write -P 0x77 $((20 * MIB)) $MIB" >"$LOGS/refused.out" 2>&1 && ! grep -qi fail "$LOGS/refused.out"; then
    fail "a write to the controller succeeded below majority"
fi
ok "a write below majority fails: $(grep -i -m1 -E 'fail|error' "$LOGS/refused.out" || head -1 "$LOGS/refused.out")"
vio write 0x77 $((20 * MIB)) $MIB 2>/dev/null && fail "the client could write below majority"
ok "the client cannot write either"

docker start "$R2" >/dev/null
wait_for "the controller reports degraded: 2 of 3" 120 level_is "degraded: 2 of 3"
wait_for "the controller passing again" 60 passing_is volume 1
wait_for "the client writes again" 30 vio write 0x77 $((20 * MIB)) $MIB
EXPECT[20]=0x77
docker start "$R3" >/dev/null
wait_for "the controller reports healthy: 3 of 3" 120 level_is "healthy: 3 of 3"
verify_all || fail "the volume does not read back what was written"
ok "all $CHUNKS chunks read back as written"
sums="$(image_sums)"
[ "$(echo "$sums" | sort -u | grep -c .)" -eq 1 ] || fail "replica images differ: $(echo "$sums" | tr '\n' ' ')"
ok "the three replica images are byte-identical"

# ------------------------------------------------------------------ 4. controller killed

insync="$(kv volume/vol/in-sync)"
docker kill -s KILL "$CONTROLLER" >/dev/null
log "SIGKILLed the controller; in-sync set in KV: $(echo "$insync" | tr '\n' ',')"
wait_for "the client lost the controller" 30 sh -c "! docker exec $CLIENT volume-io target"
docker start "$CONTROLLER" >/dev/null
t_restart="$(now_ms)"
wait_for "the client found the restarted controller" 60 vio target
target="$(vio target)"
ip="$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$CONTROLLER")"
[ "$target" = "$ip:10809" ] || fail "the client resolved $target, the controller is at $ip:10809"
wait_for "the first read after the restart" 60 vio read "${EXPECT[0]}" 0 $MIB
ok "first I/O $(($(now_ms) - t_restart)) ms after the controller restarted, at $target"
docker logs "$CONTROLLER" >"$LOGS/controller.log" 2>&1
grep -q "quorum of 3 replicas built" "$LOGS/controller.log" \
    || fail "the restarted controller did not rebuild its quorum from the in-sync set"
ok "the restarted controller built its quorum from the in-sync set"
verify_all || fail "the volume does not read back what was written before the controller died"
ok "every pattern written before reads back"
wait_for "the controller reports healthy: 3 of 3" 120 level_is "healthy: 3 of 3"

# ------------------------------------------------------------------ 5. clean stop

run_logged stop-controller "${COMPOSE[@]}" stop -t 15 controller
code="$(docker inspect -f '{{.State.ExitCode}}' "$CONTROLLER")"
[ "$code" -eq 0 ] || fail "the controller exited $code on docker stop"
[ "$(kv volume/vol/clean)" = yes ] || fail "no clean mark in KV after a clean stop"
ok "a clean stop of the controller exits 0 and marks the in-sync set clean"

finish
