#!/usr/bin/env bash
# Failover figures of examples/mysql (figures, not pass/fail). Runs the docker
# test (tests/docker/mysql.sh) with more kills and, optionally, a large
# database, then prints a table from its "figure:" lines. As root, with Docker.
#
#   bash benches/mysql_failover.sh                  10 SIGKILLs, 4 writers
#   KILLS=3 FILL_MB=1024 bash benches/mysql_failover.sh   + snapshot/bootstrap of ~1 GB
#
# failover         SIGKILL of the primary -> first acknowledged insert on the new
#                  primary, as the writer in the client container saw it
#                  (detection, election, promotion, client re-pointing included)
# replica follows  SIGKILL -> the other replica replicates from the new primary
# rejoin           `docker start` of the killed primary -> it replicates again
# switchover       `docker stop` of the primary: the gap between the last
#                  acknowledged insert on it and the first on the new primary
# snapshot         mariadb-backup --backup + --prepare on the primary, KV record
# bootstrap        `docker-compose up db4` -> it replicates (restore included)
# lost / unknown   acknowledged inserts missing at the end / outcomes unknown
#                  (connection lost during COMMIT), over the whole run
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out="$(mktemp /tmp/mysql-bench.XXXXXX)"
trap 'rm -f "$out"' EXIT
echo "running tests/docker/mysql.sh with ${KILLS:-10} kills (several minutes)..." >&2
MYSQL_KILLS="${KILLS:-10}" MYSQL_FILL_MB="${FILL_MB:-0}" bash tests/docker/mysql.sh 2>&1 | tee "$out" >&2 || true

awk '
    /^figure: / { v[$2] = v[$2] " " $3 }
    function stats(name, label, unit,    a, n, i, j, t, sum) {
        n = split(v[name], a, " ")
        if (n == 0) { printf "| %-44s | %8s | %8s | %8s | %3d |\n", label, "-", "-", "-", 0; return }
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
        printf "| %-44s | %8.2f | %8.2f | %8.2f | %3d |\n", label, a[1] / unit, (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2) / unit, a[n] / unit, n
    }
    END {
        printf "| %-44s | %8s | %8s | %8s | %3s |\n", "measure (seconds unless said)", "min", "median", "max", "n"
        printf "|%s|%s|%s|%s|%s|\n", "----------------------------------------------", "----------", "----------", "----------", "-----"
        stats("failover_ms", "SIGKILL -> first acknowledged write", 1000)
        stats("replica_follows_ms", "SIGKILL -> other replica replicates again", 1000)
        stats("rejoin_ms", "killed primary restarted -> replicating", 1000)
        stats("switchover_unavailable_ms", "docker stop: write unavailability", 1000)
        stats("snapshot_ms", "snapshot (backup + prepare)", 1000)
        stats("bootstrap_ms", "new node from snapshot -> replicating", 1000)
        stats("fill_mb", "database size for the two rows above (MB)", 1)
        stats("acked", "acknowledged inserts (count)", 1)
        stats("lost", "acknowledged inserts lost (count)", 1)
        stats("unknown", "unknown outcomes, error 2013 (count)", 1)
        stats("max_poll_gap_ms", "longest gap between two polls of a live node", 1000)
    }' "$out"
grep -q '^docker-test: .* passed, 0 failed' "$out" || echo "(the test run failed: figures are partial)"
