#!/bin/sh
# The demo app: serves "hello from <hostname>" on port 8000 until it is
# stopped. SIGTERM (docker stop) ends it with 0; /app/quit.sh N ends it with N.
set -u
mkdir -p /run/app/www
echo "hello from $(hostname)" >/run/app/www/index.html
rm -f /run/app/exit-code

busybox httpd -f -p 8000 -h /run/app/www &
httpd=$!
echo "$httpd" >/run/app/httpd.pid
trap 'kill "$httpd" 2>/dev/null; wait "$httpd"; echo "app: got SIGTERM, bye"; exit 0' TERM INT
echo "app: serving on :8000 as $(hostname)"

wait "$httpd"
code=$?
[ -f /run/app/exit-code ] && code=$(cat /run/app/exit-code)
echo "app: web server ended, exiting with $code"
exit "$code"
