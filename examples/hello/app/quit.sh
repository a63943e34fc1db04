#!/bin/sh
# Makes the app exit with code $1 (default 1), to show that the container's
# exit code is the main job's:  docker exec CONTAINER /app/quit.sh 3
set -eu
echo "${1:-1}" >/run/app/exit-code
kill "$(cat /run/app/httpd.pid)"
