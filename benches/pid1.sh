#!/usr/bin/env bash
# PID-1 figures for autopilot, next to tini and dumb-init run the same way.
# Figures, not pass/fail. Must run as root (each init runs as PID 1 of a fresh
# PID namespace: unshare --pid --fork --mount-proc).
#
#   bash benches/pid1.sh                 everything (about a minute)
#   RUNS=20 IDLE_SECS=10 ZOMBIES=200 bash benches/pid1.sh
#   AUTOPILOT_BIN=path/to/autopilot bash benches/pid1.sh   (skip the build)
#
# For each init:
#   rss       VmRSS of the init process, idle, supervising 10 `sleep infinity`
#             (autopilot: 10 jobs; tini/dumb-init: one sh that started 10 sleeps),
#             and its anonymous part (RssAnon: heap, stacks; the rest is mapped
#             pages of the binary and shared libraries); PSS (Pss from
#             /proc/PID/smaps_rollup: shared pages divided by their sharers);
#             and, for autopilot, where the resident pages are (per mapped file)
#   wakeups   context switches of the init (all its threads, voluntary +
#             involuntary, from /proc/PID/task/*/status) over IDLE_SECS, per second
#   exec      time from exec of `unshare` to the first job's main() (CLOCK_MONOTONIC
#             stamps from benches/pid1_helper.c), median of RUNS runs; includes
#             unshare and, for autopilot, reading and validating the config
#   zombie    how long an orphan stays a zombie before PID 1 reaps it (its last
#             stamp before _exit() to the moment kill(pid, 0) fails), median and
#             90th percentile of ZOMBIES orphans
#
# Targets for autopilot: RSS under 4 MB, zero idle wakeups, zombie lifetime
# within 2x of tini's.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS="${RUNS:-20}"
IDLE_SECS="${IDLE_SECS:-10}"
ZOMBIES="${ZOMBIES:-200}"
INITS=(autopilot tini dumb-init)

die() { echo "pid1.sh: ERROR: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (unshare --pid needs it)"
for tool in unshare tini dumb-init cc; do
    command -v "$tool" >/dev/null || die "$tool not found (bash scripts/install-deps.sh, or apt-get install -y tini dumb-init gcc)"
done

if [ -n "${AUTOPILOT_BIN:-}" ]; then
    AP="$AUTOPILOT_BIN" # a binary built elsewhere
else
    echo "building the release binary..." >&2
    cargo build --release --quiet
    AP="$PWD/target/release/autopilot"
fi

WORK="$(mktemp -d /tmp/autopilot-bench.XXXXXX)"
USH_PID=""
cleanup() {
    if [ -n "$USH_PID" ]; then kill -9 "$USH_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

HELPER="$WORK/pid1_helper"
cc -O2 -Wall -o "$HELPER" benches/pid1_helper.c

# Writes an autopilot config with one job per argument group; each job's exec
# is the words given (no quoting needed for the paths and words used here).
ap_config() {
    local file="$1" jobs="$2"; shift 2
    {
        echo '{ logging: {level: "ERROR"}, jobs: ['
        local i
        for i in $(seq "$jobs"); do
            printf '  {name: "job%s", exec: [' "$i"
            printf '"%s",' "$@"
            echo ']},'
        done
        echo ']}'
    } >"$file"
}

# Sets ARGV to run CMD... under init $1 (autopilot gets a one-job config).
argv_for() {
    local init="$1"; shift
    case "$init" in
    autopilot)
        local cfg="$WORK/config-$RANDOM$RANDOM.json5"
        ap_config "$cfg" 1 "$@"
        ARGV=("$AP" -config "$cfg")
        ;;
    tini) ARGV=(tini -- "$@") ;;
    dumb-init) ARGV=(dumb-init "$@") ;;
    esac
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) {print "nan"} else if (NR%2) {print a[(NR+1)/2]} else {print (a[NR/2]+a[NR/2+1])/2}}'; }
percentile() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int((NR*p+99)/100); if (i<1) i=1; print a[i]}'; }

ctx_switches() {
    local pid="$1" total=0 f v
    for f in /proc/"$pid"/task/*/status; do
        v=$(awk '/^(voluntary|nonvoluntary)_ctxt_switches/ {s+=$2} END {print s+0}' "$f" 2>/dev/null || echo 0)
        total=$((total + v))
    done
    echo "$total"
}

# Count processes in the PID namespace of $1 whose command line is `sleep infinity`.
sleeps_in_ns() {
    local ns p n=0
    ns=$(readlink /proc/"$1"/ns/pid) || { echo 0; return; }
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$ns" ] || continue
        [ "$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)" = "sleep infinity " ] && n=$((n + 1))
    done
    echo "$n"
}

wait_for() { # DESCRIPTION SECONDS COMMAND...
    local what="$1" secs="$2"; shift 2
    local end=$((SECONDS + secs))
    until "$@"; do
        [ "$SECONDS" -lt "$end" ] || die "timed out waiting for $what"
        sleep 0.05
    done
}

declare -A RSS ANON PSS WAKE EXEC ZMED ZP90 THREADS
RSS_BY_MAPPING=""

# Resident KiB per mapped file (and [anon], [heap], [stack]) of pid $1, largest first.
rss_by_mapping() {
    awk '/^[0-9a-f]+-[0-9a-f]+ / {name = (NF >= 6 ? $6 : "[anon]")}
         /^Rss:/ {rss[name] += $2}
         END {for (n in rss) if (rss[n] > 0) printf "%8d KiB  %s\n", rss[n], n}' /proc/"$1"/smaps | sort -rn
}

measure_idle() {
    local init="$1"
    case "$init" in
    autopilot)
        ap_config "$WORK/idle.json5" 10 sleep infinity
        ARGV=("$AP" -config "$WORK/idle.json5")
        ;;
    *) argv_for "$init" sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do sleep infinity & done; wait' ;;
    esac
    unshare --pid --fork --mount-proc --kill-child "${ARGV[@]}" >/dev/null 2>&1 &
    USH_PID=$!
    local pid=""
    get_pid() { pid=$(ps -o pid= --ppid "$USH_PID" | awk 'NR==1 {print $1}'); [ -n "$pid" ]; }
    wait_for "$init to start" 10 get_pid
    ten_sleeps() { [ "$(sleeps_in_ns "$pid")" -eq 10 ]; }
    wait_for "10 sleeps under $init" 20 ten_sleeps
    sleep 1 # let start-up work settle before measuring "idle"
    RSS[$init]=$(awk '/^VmRSS/ {printf "%.2f", $2/1024}' /proc/"$pid"/status)
    ANON[$init]=$(awk '/^RssAnon/ {printf "%.2f", $2/1024}' /proc/"$pid"/status)
    THREADS[$init]=$(awk '/^Threads/ {print $2}' /proc/"$pid"/status)
    PSS[$init]=$(awk '/^Pss:/ {printf "%.2f", $2/1024}' /proc/"$pid"/smaps_rollup)
    if [ "$init" = autopilot ]; then RSS_BY_MAPPING=$(rss_by_mapping "$pid"); fi
    local c0 c1
    c0=$(ctx_switches "$pid")
    sleep "$IDLE_SECS"
    c1=$(ctx_switches "$pid")
    WAKE[$init]=$(awk -v a="$c0" -v b="$c1" -v s="$IDLE_SECS" 'BEGIN {printf "%.2f", (b-a)/s}')
    kill -TERM "$pid" 2>/dev/null || true
    local end=$((SECONDS + 10))
    while kill -0 "$USH_PID" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do sleep 0.05; done
    kill -9 "$USH_PID" 2>/dev/null || true
    wait "$USH_PID" 2>/dev/null || true
    USH_PID=""
}

measure_exec() {
    local init="$1" i
    local t0="$WORK/t0" t1="$WORK/t1" out="$WORK/exec-$init"
    : >"$out"
    argv_for "$init" "$HELPER" stamp "$t1"
    for i in $(seq "$RUNS"); do
        rm -f "$t0" "$t1"
        "$HELPER" launch "$t0" unshare --pid --fork --mount-proc --kill-child "${ARGV[@]}" >/dev/null 2>&1 ||
            die "$init: the stamp run failed"
        [ -s "$t1" ] || die "$init: the job never ran"
        echo $(( $(cat "$t1") - $(cat "$t0") )) >>"$out"
    done
    EXEC[$init]=$(median <"$out" | awk '{printf "%.2f", $1/1e6}')
}

# One round: ZOMBIES/ROUNDS orphans under init $1, appended to its results.
zombie_round() {
    local init="$1" n="$2" out="$WORK/zombies-$1"
    argv_for "$init" "$HELPER" zombies "$n" "$out"
    unshare --pid --fork --mount-proc --kill-child "${ARGV[@]}" >/dev/null 2>&1 ||
        die "$init: the zombie run failed"
}

summarize_zombies() {
    local init="$1" out="$WORK/zombies-$1"
    [ "$(wc -l <"$out")" -eq "$ZOMBIES" ] || die "$init: expected $ZOMBIES measurements"
    ZMED[$init]=$(median <"$out" | awk '{printf "%.1f", $1/1e3}')
    ZP90[$init]=$(percentile 90 <"$out" | awk '{printf "%.1f", $1/1e3}')
}

for init in "${INITS[@]}"; do
    echo "measuring $init..." >&2
    measure_idle "$init"
    measure_exec "$init"
done
# Zombie lifetimes are microseconds, so background load matters: interleave
# the inits in rounds so each sees the same conditions.
echo "measuring orphan-zombie lifetimes..." >&2
ROUNDS=10
for init in "${INITS[@]}"; do : >"$WORK/zombies-$init"; done
for round in $(seq "$ROUNDS"); do
    for init in "${INITS[@]}"; do
        zombie_round "$init" $(( ZOMBIES / ROUNDS + (round <= ZOMBIES % ROUNDS ? 1 : 0) ))
    done
done
for init in "${INITS[@]}"; do summarize_zombies "$init"; done

echo
echo "PID 1 figures ($(nproc) CPUs, kernel $(uname -r); autopilot $("$AP" -version | awk '{print $2}'), $(tini --version 2>&1 | head -1), dumb-init $(dumb-init --version 2>&1 | awk '{print $2}'))"
echo
printf '%-34s %12s %12s %12s   %s\n' "figure" "autopilot" "tini" "dumb-init" "target (autopilot)"
printf '%-34s %12s %12s %12s   %s\n' "----------------------------------" "------------" "------------" "------------" "------------------"
row() { printf '%-34s %12s %12s %12s   %s\n' "$1" "$2" "$3" "$4" "$5"; }
row "idle RSS, 10 children (MB)" "${RSS[autopilot]}" "${RSS[tini]}" "${RSS[dumb-init]}" "< 4 MB"
row "  of which anonymous (MB)" "${ANON[autopilot]}" "${ANON[tini]}" "${ANON[dumb-init]}" ""
row "idle PSS, 10 children (MB)" "${PSS[autopilot]}" "${PSS[tini]}" "${PSS[dumb-init]}" ""
row "threads" "${THREADS[autopilot]}" "${THREADS[tini]}" "${THREADS[dumb-init]}" ""
row "idle wakeups (ctx switches/s)" "${WAKE[autopilot]}" "${WAKE[tini]}" "${WAKE[dumb-init]}" "0"
row "start -> first exec, median (ms)" "${EXEC[autopilot]}" "${EXEC[tini]}" "${EXEC[dumb-init]}" ""
row "orphan zombie lifetime, median (us)" "${ZMED[autopilot]}" "${ZMED[tini]}" "${ZMED[dumb-init]}" "<= 2x tini"
row "orphan zombie lifetime, p90 (us)" "${ZP90[autopilot]}" "${ZP90[tini]}" "${ZP90[dumb-init]}" ""
echo
echo "runs: exec median of $RUNS; zombies: $ZOMBIES orphans in $ROUNDS interleaved rounds; idle window: ${IDLE_SECS}s"
echo "binary size: autopilot $(($(stat -c %s "$AP") / 1024)) KiB, tini $(($(stat -c %s "$(command -v tini)") / 1024)) KiB, dumb-init $(($(stat -c %s "$(command -v dumb-init)") / 1024)) KiB"
echo
echo "autopilot's resident pages by mapping (idle, 10 jobs):"
echo "$RSS_BY_MAPPING"
