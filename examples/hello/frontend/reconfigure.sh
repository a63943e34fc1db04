#!/bin/sh
# The frontend's onChange hook: takes the healthy `app` instances, writes them
# as nginx upstreams (and as a plain list served at /upstreams), and reloads
# nginx when it runs.
#
# autopilot hands the watch's data to the hook: CONTAINERPILOT_WATCH_APP_INSTANCES
# ("ip:port,ip:port") and CONTAINERPILOT_WATCH_APP_FILE (a JSON array of the
# instances, replaced atomically on every change). We read the file: it always
# holds the newest state, even in a run that started before a later change.
# Run by hand (no such variable), the script asks Consul itself.
set -eu
CONSUL="${CONSUL:-consul:8500}"
conf=/etc/nginx/hello/upstream.conf
list=/var/www/hello/upstreams.txt

# One run at a time: each run reads the instances after taking the lock, so
# the last run to finish wrote the newest state.
exec 9>/run/reconfigure.lock
flock 9

if [ -n "${CONTAINERPILOT_WATCH_APP_FILE:-}" ]; then
    json="$(cat "$CONTAINERPILOT_WATCH_APP_FILE")"
    from="the watch"
    filter='.[] | "\(.address):\(.port)"'
else
    json="$(busybox wget -q -O - "http://$CONSUL/v1/health/service/app?passing=1")"
    from="consul"
    filter='.[].Service | "\(.Address):\(.Port)"'
fi
# (Not in one pipeline: a failure must stop the script, not empty the list.)
servers="$(printf '%s' "$json" | jq -r "$filter")"
servers="$(printf '%s\n' "$servers" | grep . | sort || true)"

{
    echo "# written by /frontend/reconfigure.sh"
    echo "upstream app {"
    if [ -n "$servers" ]; then
        printf '%s\n' "$servers" | sed 's/.*/    server &;/'
    else
        echo "    server 127.0.0.1:9 down;"
    fi
    echo "}"
} >"$conf.new"
mv "$conf.new" "$conf"
if [ -n "$servers" ]; then printf '%s\n' "$servers"; fi >"$list.new"
chmod 644 "$list.new"
mv "$list.new" "$list"

count="$(grep -c . "$list" || true)"
if [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
    # (Quiet unless it fails: it always says "signal process started".)
    if ! out="$(nginx -s reload 2>&1)"; then
        echo "$out" >&2
        exit 1
    fi
fi
echo "frontend: $count app instance(s) from $from: $(printf '%s' "$servers" | tr '\n' ' ')"
