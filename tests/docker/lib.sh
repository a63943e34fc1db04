# Shared helpers of the docker tests (tests/docker/*.sh); source it after
# setting PROJECT (the compose project name) and COMPOSE (the compose command).
#
#   log/ok/fail        one line each, with the seconds since the start; ok counts
#   run_logged NAME CMD...   output kept in $LOGS/NAME.log, shown on failure
#   wait_for WHAT SECS CMD...   polls CMD every 0.5 s until it succeeds
#   need_docker        skips (or fails under CI=true) without a Docker engine;
#                      installs docker-compose when missing
#   build_autopilot_image   autopilot:latest from ./Dockerfile and the current source
#   finish             prints the closing "docker-test: N passed, 0 failed" line
#
# Every script is unique per run (PROJECT carries $$), so it never touches a
# demo or another run on this machine.

START=$SECONDS
PASSED=0
LOGS="$(mktemp -d /tmp/autopilot-docker-test.XXXXXX)"
TEST_NAME="${TEST_NAME:-docker-test}"

log() { echo "docker-test: $* ($((SECONDS - START))s)"; }
ok() { PASSED=$((PASSED + 1)); log "ok: $*"; }
fail() { echo "docker-test: FAIL: $* ($((SECONDS - START))s)" >&2; exit 1; }

# run_logged NAME CMD...: runs CMD with its output in a file, shown on failure.
run_logged() {
    local name="$1"
    shift
    if ! "$@" >"$LOGS/$name.log" 2>&1; then
        tail -n 40 "$LOGS/$name.log" >&2
        fail "$name: $*"
    fi
}

# wait_for WHAT SECONDS CMD...: polls CMD until it succeeds; fails at the deadline.
wait_for() {
    local what="$1" secs="$2"
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >"$LOGS/wait.out" 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "docker-test: last attempt of '$*' said:" >&2
            tail -n 20 "$LOGS/wait.out" >&2
            fail "timed out after ${secs}s waiting for: $what"
        fi
        sleep 0.5
    done
    ok "$what"
}

# Root (debootstrap), a Docker engine and docker-compose, or a clear word why not.
need_docker() {
    if [ "$(id -u)" -ne 0 ]; then
        fail "must run as root (scripts/docker-images.sh uses debootstrap)"
    fi
    if ! docker info >/dev/null 2>&1; then
        if [ "${CI:-}" = "true" ]; then
            fail "no Docker engine (docker info failed): CI must run the docker test"
        fi
        log "SKIP: no Docker engine (docker info failed)"
        exit 0
    fi
    if ! command -v docker-compose >/dev/null 2>&1; then
        log "apt-get install docker-compose"
        if ! { apt-get -q update >/dev/null && apt-get -q install -y --no-install-recommends docker-compose >/dev/null; }; then
            fail "docker-compose is missing and could not be installed"
        fi
    fi
}

# autopilot:latest from ./Dockerfile, as the README tells users to build it.
# Docker's layer cache makes a second build of the same source quick.
build_autopilot_image() {
    # Containers here cannot reach crates.io: give the build its crates (see the
    # Dockerfile), and remove them afterwards so a later hand-made `docker build`
    # never sees stale ones.
    log "cargo vendor -> target/docker-vendor"
    run_logged vendor cargo vendor --locked target/docker-vendor
    log "docker build -t autopilot:latest ."
    run_logged build-autopilot docker build --force-rm -t autopilot:latest .
    rm -rf target/docker-vendor
    # The build stage is left behind as an untagged image; keep only the newest
    # (the layer cache of the next build), drop older ones, and earlier autopilot
    # images this build untagged.
    docker images -q --filter dangling=true --filter label=org.autopilot.stage=build \
        | tail -n +2 | xargs -r docker rmi >/dev/null 2>&1 || true
    docker images -q --filter dangling=true --filter label=org.opencontainers.image.title=autopilot \
        | xargs -r docker rmi >/dev/null 2>&1 || true
}

# Tears down the compose project (containers, networks, volumes) and LOGS;
# shows the last log lines of every service when the test failed.
compose_cleanup() {
    local rc=$?
    set +e
    if [ "$rc" -ne 0 ]; then
        echo "docker-test: --- last lines of the project's logs ---" >&2
        "${COMPOSE[@]}" logs --no-color --tail=60 >&2 2>&1
    fi
    "${COMPOSE[@]}" down -v --remove-orphans -t 10 >/dev/null 2>&1
    # In case compose itself failed half-way.
    docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" | xargs -r docker rm -f >/dev/null 2>&1
    docker network ls -q --filter "label=com.docker.compose.project=$PROJECT" | xargs -r docker network rm >/dev/null 2>&1
    docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | xargs -r docker volume rm >/dev/null 2>&1
    rm -rf "$LOGS" target/docker-vendor
    exit "$rc"
}

finish() {
    log "all docker checks passed"
    echo "docker-test: $PASSED passed, 0 failed"
}
