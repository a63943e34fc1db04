#!/usr/bin/env bash
# Docker test of the image and the examples/hello docker-compose demo.
#
#   bash tests/docker/hello.sh        (as root; scripts/test.sh runs it)
#
# 1. builds the base images when missing (scripts/docker-images.sh), the
#    autopilot image from ./Dockerfile, and the demo's images;
# 2. starts the demo, checks that the app and the frontend register in Consul;
# 3. scales the app 1 -> 3 -> 2 and checks that the frontend's nginx upstreams
#    follow (and that it really balances over them);
# 4. `docker stop`s an app container: checks that its stop hooks ran in order,
#    that it left Consul, and that it exited 0 within Docker's stop window;
# 5. makes the last app's main job exit 3 and checks the container's exit code.
#
# It cleans up its containers and network even when it fails. Without a Docker
# engine it skips, except under CI=true, where it fails.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

HELLO=examples/hello
# Unique per run, so it never touches a demo or another run on this machine.
PROJECT="autopilot_hello_test_$$"
COMPOSE=(docker-compose -f "$HELLO/docker-compose.yml" -p "$PROJECT")
# Empty host ports: Docker picks free ones (see the compose file).
export HELLO_CONSUL_PORT="" HELLO_FRONTEND_PORT=""

# shellcheck source=tests/docker/lib.sh
. tests/docker/lib.sh
need_docker

# ------------------------------------------------------------------ helpers

trap compose_cleanup EXIT

# Consul's HTTP API, from inside the consul container.
consul_get() { docker exec "$CONSUL_CTR" busybox wget -q -O - "http://127.0.0.1:8500$1"; }
# jq inside the consul container: jq_consul PATH FILTER
jq_consul() { consul_get "$1" | docker exec -i "$CONSUL_CTR" jq -r "$2"; }

# "address:port" of every passing instance of service $1, sorted.
passing() { jq_consul "/v1/health/service/$1?passing=1" '.[].Service | "\(.Address):\(.Port)"' | sort; }
passing_count_is() { [ "$(passing "$1" | grep -c .)" -eq "$2" ]; }
# Whether service ID $1 is in the catalog at all (passing or not).
in_catalog() { jq_consul /v1/catalog/service/app '.[].ServiceID' | grep -qx "$1"; }
not_in_catalog() { ! in_catalog "$1"; }

frontend_get() { docker exec "$FRONTEND_CTR" busybox wget -q -O - "http://127.0.0.1$1"; }
# The frontend's upstreams are exactly Consul's $1 passing app instances.
frontend_follows() {
    local want have
    want="$(passing app)"
    have="$(frontend_get /upstreams | sort)"
    echo "consul: [$want] frontend: [$have]"
    [ "$(printf '%s' "$want" | grep -c .)" -eq "$1" ] && [ "$want" = "$have" ]
}

app_ctrs() { docker ps -q --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=app"; }
hostname_of() { docker inspect -f '{{.Config.Hostname}}' "$1"; }
ip_of() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1"; }
not_running() { [ "$(docker inspect -f '{{.State.Running}}' "$1")" = "false" ]; }

# Through the published port, as a user would: N requests answered by N different apps.
balances_over() {
    local n="$1" _ seen
    seen="$(for _ in $(seq $((2 * n))); do curl -fsS --max-time 2 "http://$FRONTEND_ADDR/"; done | sort -u)"
    echo "$seen"
    [ "$(printf '%s\n' "$seen" | grep -c '^hello from ')" -eq "$n" ]
}

scale_app() { run_logged "scale-$1" "${COMPOSE[@]}" up -d --no-recreate --scale "app=$1"; }

# ------------------------------------------------------------------ images

log "base images (scripts/docker-images.sh)"
bash scripts/docker-images.sh

build_autopilot_image

version="$(docker run --rm autopilot:latest -version)"
[[ "$version" == autopilot* ]] || fail "autopilot -version in the image printed: $version"
ok "the FROM scratch image runs the static binary: $version"
# The image is the static binary alone. Its budget: 4.94 MB on 2026-12-07
# (see Cargo.toml's [profile.release]) plus about 10% for Rust and crate
# updates; a new dependency of reqwest's size (0.7 MB) fails it.
size="$(docker image inspect -f '{{.Size}}' autopilot:latest)"
[ "$size" -le 5500000 ] || fail "autopilot image is $size bytes, over its 5.5 MB budget (see Cargo.toml)"
ok "autopilot image is $((size / 1000)) kB (budget 5500 kB)"

log "docker-compose build"
run_logged build-demo "${COMPOSE[@]}" build
# Earlier builds of the demo images, untagged by this one.
docker images -q --filter dangling=true --filter label=org.autopilot.image=hello-demo \
    | xargs -r docker rmi >/dev/null 2>&1 || true

# ------------------------------------------------------------------ registration

log "docker-compose up (project $PROJECT)"
run_logged up "${COMPOSE[@]}" up -d --scale app=1
CONSUL_CTR="$("${COMPOSE[@]}" ps -q consul)"
FRONTEND_CTR="$("${COMPOSE[@]}" ps -q frontend)"
FRONTEND_ADDR="$("${COMPOSE[@]}" port frontend 80)"
if [ -z "$CONSUL_CTR" ] || [ -z "$FRONTEND_CTR" ] || [ -z "$FRONTEND_ADDR" ]; then
    fail "demo containers did not start"
fi

wait_for "consul has a leader" 60 sh -c "docker exec $CONSUL_CTR busybox wget -q -O - http://127.0.0.1:8500/v1/status/leader | grep -q :"
wait_for "1 app instance passing in consul" 60 passing_count_is app 1
wait_for "the frontend registered and passing in consul" 60 passing_count_is frontend 1

app1="$(app_ctrs)"
id1="app-$(hostname_of "$app1")"
in_catalog "$id1" || fail "no service ID $id1 in consul: $(jq_consul /v1/catalog/service/app '.[].ServiceID')"
[ "$(passing app)" = "$(ip_of "$app1"):8000" ] || fail "app registered as $(passing app), expected $(ip_of "$app1"):8000"
ok "app registered as $id1 at $(passing app)"
wait_for "the frontend follows: 1 upstream" 30 frontend_follows 1

# ------------------------------------------------------------------ scaling

scale_app 3
wait_for "3 app instances passing in consul" 60 passing_count_is app 3
[ "$(jq_consul /v1/catalog/service/app '.[].ServiceID' | sort -u | grep -c .)" -eq 3 ] \
    || fail "service IDs collide: $(jq_consul /v1/catalog/service/app '.[].ServiceID')"
ok "3 distinct service IDs"
wait_for "the frontend follows: 3 upstreams" 30 frontend_follows 3
wait_for "the frontend (curl $FRONTEND_ADDR) balances over 3 apps" 20 balances_over 3

before="$(jq_consul /v1/catalog/service/app '.[].ServiceID' | sort)"
scale_app 2
wait_for "2 app instances passing in consul" 60 passing_count_is app 2
after="$(jq_consul /v1/catalog/service/app '.[].ServiceID' | sort)"
[ "$(comm -23 <(echo "$before") <(echo "$after") | grep -c .)" -eq 1 ] \
    || fail "scaling down should deregister one ID; before: [$before] after: [$after]"
ok "scaling down deregistered $(comm -23 <(echo "$before") <(echo "$after"))"
wait_for "the frontend follows: 2 upstreams" 30 frontend_follows 2

# ------------------------------------------------------------------ docker stop

victim="$(app_ctrs | head -1)"
vhost="$(hostname_of "$victim")"
vid="app-$vhost"
in_catalog "$vid" || fail "$vid is not registered"
t0=$SECONDS
docker stop -t 10 "$victim" >/dev/null
took=$((SECONDS - t0))
code="$(docker inspect -f '{{.State.ExitCode}}' "$victim")"
[ "$code" -eq 0 ] || fail "docker stop: exit code $code, expected 0 (137 means Docker had to SIGKILL)"
[ "$took" -lt 10 ] || fail "docker stop took ${took}s: autopilot did not finish within Docker's stop window"
ok "docker stop: exit code 0 after ${took}s"
# Deregistration comes before the app's SIGTERM, so it is done by now.
not_in_catalog "$vid" || fail "$vid is still in consul after docker stop"
ok "$vid deregistered from consul"
docker logs "$victim" >"$LOGS/victim.log" 2>&1
pre="$(grep -n "hello-hook: preStop on $vhost" "$LOGS/victim.log" | head -1 | cut -d: -f1)"
post="$(grep -n "hello-hook: postStop on $vhost" "$LOGS/victim.log" | head -1 | cut -d: -f1)"
term="$(grep -n "app: got SIGTERM" "$LOGS/victim.log" | head -1 | cut -d: -f1)"
if [ -z "$pre" ] || [ -z "$post" ] || [ -z "$term" ] || [ "$pre" -gt "$term" ] || [ "$term" -gt "$post" ]; then
    tail -n 30 "$LOGS/victim.log" >&2
    fail "stop hooks: expected preStop, then the app's SIGTERM, then postStop in docker logs"
fi
ok "stop hooks ran in order: preStop, app got SIGTERM, postStop"
wait_for "the frontend follows: 1 upstream" 30 frontend_follows 1

# ------------------------------------------------------------------ exit code

last="$(app_ctrs)"
[ "$(echo "$last" | grep -c .)" -eq 1 ] || fail "expected one running app container, have: $last"
lid="app-$(hostname_of "$last")"
docker exec "$last" /app/quit.sh 3
wait_for "the app container exits by itself" 30 not_running "$last"
code="$(docker inspect -f '{{.State.ExitCode}}' "$last")"
[ "$code" -eq 3 ] || fail "the main job exited 3 but the container's exit code is $code"
ok "container exit code is the main job's: 3"
wait_for "$lid deregistered after its main job ended" 30 not_in_catalog "$lid"
wait_for "the frontend follows: 0 upstreams" 30 frontend_follows 0

finish
