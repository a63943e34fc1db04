# Shared by the hooks of examples/mysql (sourced, POSIX sh). Hooks talk to the
# local mysqld as root over the socket (admin statements only: a root write
# on a replica would be an errant GTID, P8), to other nodes as the
# replication user, and to Consul through autopilot's own subcommands.

DATADIR=/var/lib/mysql
# Markers that must survive a mysqld restart (container filesystem):
#   eligible     this node may become primary (it has replicated, or was primary)
#   was-primary  it was primary: it may hold unacknowledged transactions, so it
#                restarts with --init-rpl-role=SLAVE and rejoins with DEMOTE (P4, P6)
#   reclone      it diverged: the next start restores the latest snapshot (P5)
#   restore-gtid the position of a just-restored snapshot, applied after start (P7)
STATE=/var/lib/autopilot-mysql
SNAPSHOTS=/snapshots
LEADER_KEY=service/mysql/primary
REPL_USER="${MYSQL_REPL_USER:-repl}"
REPL_PASSWORD="${MYSQL_REPL_PASSWORD:-repl-secret}"
APP_USER="${MYSQL_APP_USER:-app}"
APP_PASSWORD="${MYSQL_APP_PASSWORD:-app-secret}"
# This node's service ID in Consul (autopilot's <job>-<hostname>).
SELF_ID="mysql-${HOSTNAME:-$(hostname)}"

log() { echo "${0##*/}: $*" >&2; }

# sql STATEMENTS: on the local mysqld, tab-separated values without headers.
sql() { mariadb -uroot --connect-timeout=2 -N -B -e "$1"; }

# sql_at HOST STATEMENTS: on another node, as the replication user.
sql_at() { mariadb -h "$1" -u"$REPL_USER" -p"$REPL_PASSWORD" --connect-timeout=2 -N -B -e "$2"; }

# field NAME: a field of the vertical output on stdin (SHOW SLAVE STATUS\G).
field() { sed -n "s/^ *$1: //p" | head -n 1; }

slave_status() { mariadb -uroot --connect-timeout=2 -e 'SHOW SLAVE STATUS\G'; }
slave_status_at() { mariadb -h "$1" -u"$REPL_USER" -p"$REPL_PASSWORD" --connect-timeout=2 -e 'SHOW SLAVE STATUS\G'; }

# gtid_seq GTID_LIST: the sequence number of domain 0 (0 when absent).
gtid_seq() {
    echo "$1" | tr ',' '\n' | sed -n 's/^ *0-[0-9]*-\([0-9]*\) *$/\1/p' | head -n 1 | grep . || echo 0
}

# wait_ready SECONDS: until the local mysqld answers.
wait_ready() {
    _deadline=$(($(date +%s) + $1))
    until mariadb-admin -uroot --connect-timeout=1 ping >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$_deadline" ] || return 1
        sleep 0.1
    done
}

# The file of autopilot's `mysql` watch (every passing node, with tags): from
# the hook's environment, else (mysql-start began before the first event)
# from autopilot's run directory.
watch_file() {
    if [ -n "${CONTAINERPILOT_WATCH_MYSQL_FILE:-}" ] && [ -f "$CONTAINERPILOT_WATCH_MYSQL_FILE" ]; then
        echo "$CONTAINERPILOT_WATCH_MYSQL_FILE"
    else
        ls /run/autopilot-*/watch-mysql.json /tmp/autopilot-*/watch-mysql.json 2>/dev/null | head -n 1
    fi
}

# instances: "address port primary|replica" per passing node, from the watch
# file (pretty-printed JSON, one field a line).
instances() {
    _f="$(watch_file)"
    [ -n "$_f" ] || return 0
    awk '
        /"id":/      { if (addr != "") print addr, port, role; addr = ""; port = ""; role = "replica" }
        /"address":/ { gsub(/[",]/, "", $2); addr = $2 }
        /"port":/    { gsub(/,/, "", $2); port = $2 }
        /^ *"primary",? *$/ { role = "primary" }
        END          { if (addr != "") print addr, port, role }
    ' "$_f"
}

# primary: "address port" of the node tagged primary that also holds the
# leader key. The tag alone is not enough: a killed primary's agent, started
# again, can show its old registration (tag included) for a moment.
primary() {
    _leader="$(autopilot kv get "$LEADER_KEY" 2>/dev/null | sed -n 's/.*"address": *"\([^"]*\)".*/\1/p')"
    [ -n "$_leader" ] || return 0
    instances | awk -v leader="$_leader" '$3 == "primary" && $1 == leader { print $1, $2; exit }'
}

my_ip() {
    if [ -n "${CONTAINERPILOT_MYSQL_IP:-}" ]; then echo "$CONTAINERPILOT_MYSQL_IP"; else hostname -i | awk '{print $1}'; fi
}

# Whether this node holds the leader key right now (asks Consul).
is_leader() { [ "$(autopilot lock holder "$LEADER_KEY" 2>/dev/null)" = "$SELF_ID" ]; }

# drain: stop fetching from the current primary and apply everything already
# fetched (the relay log), so nothing received is thrown away on re-pointing.
# Few mariadb calls: on a loaded machine each one costs 0.1-0.3 s.
drain() {
    _t="$(date +%s%3N)"
    _st="$(slave_status)" || return 1
    [ -n "$(echo "$_st" | field Master_Host)" ] || return 0
    if [ "$(echo "$_st" | field Slave_IO_Running)" != No ]; then
        sql "STOP SLAVE IO_THREAD" || return 1
        _st="$(slave_status)"
    fi
    _io="$(echo "$_st" | field Gtid_IO_Pos)"
    [ "$(echo "$_st" | field Slave_SQL_Running)" = Yes ] || return 0
    _r="$(sql "SELECT MASTER_GTID_WAIT('$_io', 10); STOP SLAVE")"
    [ "$_r" = 0 ] || log "relay log not applied within 10 s (MASTER_GTID_WAIT=$_r) up to $_io"
    log "drained up to $_io ($(($(date +%s%3N) - _t)) ms)"
}

# serialize: one hook at a time changes replication on this node.
serialize() {
    exec 9>"$STATE/hooks.lock"
    flock -w "${1:-120}" 9 || { log "another hook held the lock for ${1:-120}s"; exit 1; }
}
