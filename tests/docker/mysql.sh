#!/usr/bin/env bash
# Docker test of examples/mysql: real MariaDB 10.11 nodes, three real Consul
# servers, autopilot as every container's PID 1.
#
#   bash tests/docker/mysql.sh           (as root; about 6-8 minutes)
#   MYSQL_KILLS=10 bash tests/docker/mysql.sh    more SIGKILL rounds
#
# 1. the cluster forms: one writable primary holding the leader key, two
#    replicas replicating from it, semi-sync ON with 2 clients;
# 2. a writer in the client container (4 connections, the address from the
#    client's watch) records acknowledged inserts and, apart, unknown
#    outcomes; pollers ask every node for @@read_only throughout;
# 3. MYSQL_KILLS (default 3) rounds: `docker kill` the primary; a new one
#    takes writes through the Consul-discovered address; the other replica
#    follows it; the killed node restarts and rejoins as a replica;
# 4. one Consul server (the raft leader) is killed: nothing fails over;
# 5. `docker stop` of the primary: a planned switchover;
# 6. binlogs purged on the primary, a snapshot taken: a 4th node bootstraps
#    from it and catches up;
# 7. at the end: every acknowledged insert is on the primary, no GTID errant
#    anywhere (all nodes at the primary's position), CHECKSUM TABLE equal on
#    every node, never two writable nodes at once.
#
# Lines "figure: NAME VALUE" are read by benches/mysql_failover.sh.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

EX=examples/mysql
PROJECT="autopilot_mysql_test_$$"
COMPOSE=(docker-compose -f "$EX/docker-compose.yml" -p "$PROJECT")
# Empty host port: Docker picks a free one. Snapshots only when asked here.
export MYSQL_CONSUL_PORT="" MYSQL_BACKUP_INTERVAL="24h"
KILLS="${MYSQL_KILLS:-3}"

# shellcheck source=tests/docker/lib.sh
. tests/docker/lib.sh
need_docker
trap compose_cleanup EXIT

# ------------------------------------------------------------------ helpers

now_ms() { date +%s%3N; }
cid() { docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=$1" | head -n 1; }
ip_of() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(cid "$1")"; }
running() { [ "$(docker inspect -f '{{.State.Running}}' "$(cid "$1")" 2>/dev/null)" = true ]; }
# sql NODE STATEMENTS: on that node as root (reads and admin only).
sql() { docker exec "$(cid "$1")" mariadb -uroot --connect-timeout=2 -N -B -e "$2"; }
slave() { docker exec "$(cid "$1")" mariadb -uroot -e 'SHOW SLAVE STATUS\G' | sed -n "s/^ *$2: //p"; }
client() { docker exec "$CLIENT" "$@"; }
NODES="db1 db2 db3"

# The node holding the leader key (from its value's "id": "mysql-<node>").
leader_node() { client autopilot kv get service/mysql/primary 2>/dev/null | sed -n 's/.*"id": *"mysql-\([^"]*\)".*/\1/p'; }
leader_holds() { [ "$(client autopilot lock holder service/mysql/primary 2>/dev/null)" = "mysql-$(leader_node)" ]; }

# The writable primary: holds the key, read_only=0, tagged and semi-sync on.
is_primary() {
    local n="$1"
    running "$n" && leader_holds && [ "$(leader_node)" = "$n" ] \
        && [ "$(sql "$n" 'SELECT @@read_only')" = 0 ] \
        && [ "$(sql "$n" "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'" | cut -f2)" = ON ]
}
# NODE replicates from PRIMARY: both threads running, no error.
replicates_from() {
    local n="$1" p="$2"
    running "$n" || return 1
    echo "$n: Master_Host=$(slave "$n" Master_Host) IO=$(slave "$n" Slave_IO_Running) SQL=$(slave "$n" Slave_SQL_Running) $(slave "$n" Last_IO_Error)$(slave "$n" Last_SQL_Error)"
    [ "$(slave "$n" Master_Host)" = "$(ip_of "$p")" ] && [ "$(slave "$n" Slave_IO_Running)" = Yes ] \
        && [ "$(slave "$n" Slave_SQL_Running)" = Yes ] && [ "$(sql "$n" 'SELECT @@read_only')" = 1 ]
}
semi_sync_clients() { sql "$1" "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'" | cut -f2; }

# Every node of $NODES but the primary $1 replicates from it, and it has one
# semi-sync client per replica.
cluster_formed() {
    local p="$1" n count=0
    is_primary "$p" || { echo "$p is not the writable primary (leader: $(leader_node))"; return 1; }
    for n in $NODES; do
        [ "$n" = "$p" ] && continue
        replicates_from "$n" "$p" || return 1
        count=$((count + 1))
    done
    echo "semi-sync clients on $p: $(semi_sync_clients "$p"), want $count"
    [ "$(semi_sync_clients "$p")" = "$count" ]
}
# Whoever holds the key forms a cluster with the others.
any_cluster_formed() {
    local p
    p="$(leader_node)"
    [ -n "$p" ] || { echo "no leader yet"; return 1; }
    cluster_formed "$p"
}

# Three Consul servers alive in the client's agent view, and a raft leader.
consul_ok() {
    client consul members
    [ "$(client consul members | awk '$4 == "server" && $3 == "alive"' | wc -l)" = 3 ] \
        && [ "$(client consul operator raft list-peers | awk '$4 == "leader"' | wc -l)" = 1 ]
}
raft_leader_is_not() { [ "$(client consul operator raft list-peers | awk -v old="$1" '$4 == "leader" && $1 != old' | wc -l)" = 1 ]; }

client_primary() { client cat /run/mysql-primary 2>/dev/null; }
client_follows() { [ "$(client_primary)" = "$(ip_of "$1")" ]; }

# Writer output (in the client container).
W=/tmp/writes
acked_lines() { client sh -c "cat $W/acked.* 2>/dev/null" || true; }
acked_count() { acked_lines | wc -l; }
# first_ack_on IP AFTER_MS: the first acknowledged insert at IP after a moment.
first_ack_on() { acked_lines | awk -v ip="$1" -v t="$2" '$3 == ip && $1 > t { print $1 }' | sort -n | head -n 1; }
acked_on_since() { [ -n "$(first_ack_on "$(ip_of "$1")" "$2")" ]; }
last_ack_before() { acked_lines | awk -v t="$1" '$1 <= t { print $1 }' | sort -n | tail -n 1; }
writes_flow() { local before; before="$(acked_count)"; [ "$before" -gt "$1" ]; }

start_pollers() {
    local n
    for n in "$@"; do docker exec -d "$CLIENT" mysql-rw-poller "$W" "$n"; done
}

# kill_round N: SIGKILL the primary, measure, restart it, wait for its rejoin.
kill_round() {
    local round="$1" old new other t_kill t_ack n
    old="$(leader_node)"
    is_primary "$old" || fail "round $round: $old is not the writable primary"
    wait_for "round $round: writes flow to $old" 60 acked_on_since "$old" "$(now_ms)"
    t_kill="$(now_ms)"
    docker kill "$(cid "$old")" >/dev/null
    log "round $round: docker kill $old (the primary)"
    new_primary_not() { local p; p="$(leader_node)"; [ -n "$p" ] && [ "$p" != "$1" ] && is_primary "$p"; }
    wait_for "round $round: a new writable primary" 60 new_primary_not "$old"
    new="$(leader_node)"
    wait_for "round $round: acknowledged writes on $new through the client's Consul watch" 60 acked_on_since "$new" "$t_kill"
    t_ack="$(first_ack_on "$(ip_of "$new")" "$t_kill")"
    echo "figure: failover_ms $((t_ack - t_kill))"
    log "round $round: first acknowledged write on $new $((t_ack - t_kill)) ms after the SIGKILL"
    for n in $NODES; do
        [ "$n" = "$old" ] || [ "$n" = "$new" ] && continue
        wait_for "round $round: $n replicates from $new" 60 replicates_from "$n" "$new"
        # When its hook saw it replicate (the test's own polling is slower).
        t_f="$(docker logs "$(cid "$n")" 2>&1 | grep "mysql-follow: replicating from $(ip_of "$new") " | tail -n 1 | cut -d' ' -f1)"
        [ -n "$t_f" ] && echo "figure: replica_follows_ms $(($(date -d "$t_f" +%s%3N) - t_kill))"
    done
    client_follows "$new" || fail "round $round: the client points at $(client_primary), not $new"
    ok "round $round: the client's watch re-pointed it to $new ($(ip_of "$new"))"

    local t_start
    t_start="$(now_ms)"
    docker start "$(cid "$old")" >/dev/null
    wait_for "round $round: the killed $old rejoins as a replica of $new" 180 replicates_from "$old" "$new"
    echo "figure: rejoin_ms $(($(now_ms) - t_start))"
    wait_for "round $round: $new has a semi-sync client per replica again" 60 cluster_formed "$new"
}

# No errant GTID and no loss: every node at the primary's position, the same
# CHECKSUM, every acknowledged insert present.
check_consistency() {
    local p="$1" pos n sum want
    pos="$(sql "$p" 'SELECT @@gtid_binlog_pos')"
    want="$(sql "$p" 'CHECKSUM TABLE app.writes' | cut -f2)"
    for n in $NODES; do
        [ "$n" = "$p" ] && continue
        [ "$(sql "$n" "SELECT MASTER_GTID_WAIT('$pos', 300)")" = 0 ] || fail "$n did not reach $p's position $pos"
        [ "$(sql "$n" 'SELECT @@gtid_current_pos')" = "$pos" ] \
            || fail "$n is at $(sql "$n" 'SELECT @@gtid_current_pos'), the primary at $pos: errant GTID"
        sum="$(sql "$n" 'CHECKSUM TABLE app.writes' | cut -f2)"
        [ "$sum" = "$want" ] || fail "CHECKSUM TABLE app.writes: $n has $sum, $p has $want"
    done
    ok "every node at $p's GTID $pos with CHECKSUM $want (no errant GTID)"
    acked_lines | awk '{ print $2 }' | sort -u >"$LOGS/acked"
    sql "$p" 'SELECT id FROM app.writes' | sort -u >"$LOGS/present"
    local missing
    missing="$(comm -23 "$LOGS/acked" "$LOGS/present" | wc -l)"
    local unknown failed
    unknown="$(client sh -c "cat $W/unknown.* 2>/dev/null | wc -l")"
    failed="$(client sh -c "cat $W/failed.* 2>/dev/null | wc -l")"
    echo "figure: acked $(wc -l <"$LOGS/acked")"
    echo "figure: lost $missing"
    echo "figure: unknown $unknown"
    [ "$missing" = 0 ] || fail "$missing acknowledged inserts are missing on $p: $(comm -23 "$LOGS/acked" "$LOGS/present" | head -n 5 | tr '\n' ' ')"
    ok "all $(wc -l <"$LOGS/acked") acknowledged inserts are on $p ($unknown unknown outcomes, $failed refused)"
}

# Never two writable nodes: from each node's poll log, the spans during which
# it answered read_only=0 (to its next other answer); no two nodes' overlap.
check_single_writer() {
    client sh -c "cat $W/poll.*" | sort -n >"$LOGS/polls"
    awk '
        { t = $1; h = $2; v = $3
          # Poll spacing, between two answers of a live node (a dead one
          # costs the 1 s connect timeout and cannot be writable anyway).
          if ((h in last) && v != "down" && lastv[h] != "down") { gap = t - last[h]; if (gap > maxgap) maxgap = gap }
          last[h] = t; lastv[h] = v
          if (v == "0") { if (!(h in from)) from[h] = t }
          else if (h in from) { n++; s[n] = from[h]; e[n] = t; who[n] = h; delete from[h] } }
        END {
          for (h in from) { n++; s[n] = from[h]; e[n] = last[h]; who[n] = h }
          bad = 0
          for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
            if (who[i] != who[j] && s[i] < e[j] && s[j] < e[i]) {
              printf "two writable nodes: %s %d..%d and %s %d..%d\n", who[i], s[i], e[i], who[j], s[j], e[j]; bad = 1 }
          printf "figure: max_poll_gap_ms %d\n", maxgap
          printf "figure: writable_spans %d\n", n
          exit bad
        }' "$LOGS/polls" || fail "two nodes were writable at the same time (polls in $LOGS/polls)"
    ok "never two writable nodes ($(wc -l <"$LOGS/polls") polls of every node)"
}

# ------------------------------------------------------------------ images

log "base image (scripts/docker-images.sh mysql)"
bash scripts/docker-images.sh mysql
# MYSQL_REUSE_AUTOPILOT_IMAGE=1 keeps an existing autopilot:latest (for quick
# reruns while editing the example; CI always builds it).
if [ "${MYSQL_REUSE_AUTOPILOT_IMAGE:-}" != 1 ] || ! docker image inspect autopilot:latest >/dev/null 2>&1; then
    build_autopilot_image
fi
log "docker-compose build"
run_logged build-example "${COMPOSE[@]}" build consul1
docker images -q --filter dangling=true --filter label=org.autopilot.image=mysql-example \
    | xargs -r docker rmi >/dev/null 2>&1 || true

# ------------------------------------------------------------------ 1. formation

log "docker-compose up (project $PROJECT)"
run_logged up "${COMPOSE[@]}" up -d --no-build consul1 consul2 consul3 db1 db2 db3 client
CLIENT="$(cid client)"
wait_for "three Consul servers alive with a raft leader" 90 consul_ok
wait_for "one primary, two replicas replicating from it, semi-sync ON with 2 clients" 240 any_cluster_formed
P="$(leader_node)"
n_writable=0
for n in $NODES; do [ "$(sql "$n" 'SELECT @@read_only')" = 0 ] && n_writable=$((n_writable + 1)); done
[ "$n_writable" = 1 ] || fail "$n_writable writable nodes, expected only $P"
ok "exactly one writable node: $P"
wait_for "the client's watch points it at $P" 30 client_follows "$P"
docker exec "$(cid "$P")" autopilot status >"$LOGS/status"
grep -q 'leader' "$LOGS/status" || { cat "$LOGS/status" >&2; fail "autopilot status on $P does not show leader"; }
ok "autopilot status on $P shows it leads"
wait_for "the founding primary took the first snapshot" 60 client autopilot kv get mysql/snapshots/latest

# ------------------------------------------------------------------ 2-3. kills

docker exec -d "$CLIENT" mysql-writer "$W" 4
start_pollers $NODES
wait_for "the writer's inserts are acknowledged" 60 writes_flow 50

for round in $(seq 1 "$KILLS"); do
    kill_round "$round"
    if [ "$round" = 1 ]; then
        # ---------------------------------------------- 4. a Consul server dies
        P="$(leader_node)"
        raft_leader="$(client consul operator raft list-peers | awk '$4 == "leader" { print $1 }')"
        [ -n "$raft_leader" ] || fail "no raft leader in: $(client consul operator raft list-peers)"
        docker kill "$(cid "$raft_leader")" >/dev/null
        log "docker kill $raft_leader (the Consul raft leader)"
        t0="$(now_ms)"
        wait_for "the two other Consul servers elect a raft leader" 60 raft_leader_is_not "$raft_leader"
        # Database-level (Consul reads may fail while raft elects): P stays
        # writable and keeps acknowledging; the logs tell below whether any
        # node was elected.
        steady() { [ "$(sql "$P" 'SELECT @@read_only')" = 0 ] && acked_on_since "$P" "$(($(now_ms) - 3000))"; }
        deadline=$((SECONDS + 20))
        while [ "$SECONDS" -lt "$deadline" ]; do
            steady || fail "after losing Consul server $raft_leader, $P is no longer a writable primary taking writes"
        done
        grep_elected="$(for n in $NODES; do docker logs --since "$(((t0 / 1000) - 1))" "$(cid "$n")" 2>&1 | grep -c 'elected: promoting' || true; done | awk '{ s += $1 } END { print s + 0 }')"
        [ "$grep_elected" = 0 ] || fail "an election happened after the Consul server died"
        ok "20 s without $raft_leader: $P stays primary, writes flow, no election"
        docker start "$(cid "$raft_leader")" >/dev/null
        wait_for "$raft_leader rejoins the Consul cluster" 90 consul_ok
    fi
done

# ------------------------------------------------------------------ 5. docker stop

P="$(leader_node)"
wait_for "writes flow to $P" 60 acked_on_since "$P" "$(now_ms)"
pip="$(ip_of "$P")"
t_stop="$(now_ms)"
docker stop -t 10 "$(cid "$P")" >/dev/null
log "docker stop $P (planned switchover) took $(($(now_ms) - t_stop)) ms"
code="$(docker inspect -f '{{.State.ExitCode}}' "$(cid "$P")")"
[ "$code" = 0 ] || fail "docker stop $P: exit code $code, expected 0 (137: it was SIGKILLed)"
newp() { local p; p="$(leader_node)"; [ -n "$p" ] && [ "$p" != "$P" ] && is_primary "$p"; }
wait_for "a new primary after the planned switchover" 60 newp
N="$(leader_node)"
wait_for "acknowledged writes on $N" 60 acked_on_since "$N" "$t_stop"
t_first="$(first_ack_on "$(ip_of "$N")" "$t_stop")"
t_last="$(acked_lines | awk -v ip="$pip" '$3 == ip { print $1 }' | sort -n | tail -n 1)"
echo "figure: switchover_unavailable_ms $((t_first - t_last))"
log "planned switchover: no acknowledged write for $((t_first - t_last)) ms"
docker start "$(cid "$P")" >/dev/null
wait_for "$P rejoins as a replica of $N" 180 replicates_from "$P" "$N"
wait_for "$N has two semi-sync replicas" 60 cluster_formed "$N"

# ------------------------------------------------------------------ 6. snapshot, 4th node

P="$N"
if [ "${MYSQL_FILL_MB:-0}" -gt 0 ]; then
    # Benchmark only: grow the database by ~MYSQL_FILL_MB (100 MB a statement).
    log "filling app.big with ${MYSQL_FILL_MB} MB on $P"
    sql "$P" "CREATE TABLE app.big (id BIGINT AUTO_INCREMENT PRIMARY KEY, pad VARCHAR(1000)) ENGINE=InnoDB"
    for _ in $(seq 1 $(((MYSQL_FILL_MB + 99) / 100))); do
        sql "$P" "INSERT INTO app.big (pad) SELECT REPEAT('x', 1000) FROM app.seq_1_to_100000"
    done
    echo "figure: fill_mb $(sql "$P" "SELECT ROUND(SUM(data_length + index_length) / 1048576) FROM information_schema.tables WHERE table_schema = 'app'")"
fi
sql "$P" 'FLUSH BINARY LOGS'
purged() {
    local cur
    cur="$(sql "$P" 'SHOW MASTER STATUS' | cut -f1)"
    sql "$P" "PURGE BINARY LOGS TO '$cur'"
    [ "$(sql "$P" 'SHOW BINARY LOGS' | wc -l)" = 1 ]
}
wait_for "binary logs purged on $P (one left)" 60 purged
t0="$(now_ms)"
docker exec "$(cid "$P")" mysql-backup || fail "mysql-backup on $P failed"
echo "figure: snapshot_ms $(($(now_ms) - t0))"
snap="$(client autopilot kv get mysql/snapshots/latest)"
info="$(client autopilot kv get "mysql/snapshots/$snap")"
echo "$info" | grep -q '^gtid=0-' || fail "snapshot $snap recorded in KV as: $info"
ok "snapshot $snap in KV: $info"
wait_for "the writer's inserts keep being acknowledged" 30 acked_on_since "$P" "$(now_ms)"
t0="$(now_ms)"
run_logged up-db4 "${COMPOSE[@]}" up -d --no-build --no-deps db4
NODES="db1 db2 db3 db4"
start_pollers db4
wait_for "db4 restores the snapshot and replicates from $P" 180 replicates_from db4 "$P"
echo "figure: bootstrap_ms $(($(now_ms) - t0))"
docker logs "$(cid db4)" >"$LOGS/db4.log" 2>&1
grep -q "restored snapshot $snap" "$LOGS/db4.log" || fail "db4 did not restore snapshot $snap"
ok "db4 bootstrapped from snapshot $snap"
wait_for "$P has three semi-sync replicas" 180 cluster_formed "$P"

# ------------------------------------------------------------------ 7. checks

client touch "$W/stop"
wait_for "the writer and pollers stop" 30 sh -c "! docker exec $CLIENT pgrep -f 'mysql-writer|mysql-rw-poller' >/dev/null"
check_consistency "$P"
check_single_writer
docker exec "$CLIENT" mysql-cluster-status >"$LOGS/cluster-status" 2>&1 || true
cat "$LOGS/cluster-status"
grep -q primary "$LOGS/cluster-status" || fail "mysql-cluster-status shows no primary"
ok "mysql-cluster-status shows the cluster"

finish
