#!/bin/sh
# Stop hooks: a line in `docker logs` (through autopilot) and in a file.
line="hello-hook: $1 on $(hostname)"
echo "$line"
echo "$(date +%T) $line" >>/var/log/hello-hooks.log
