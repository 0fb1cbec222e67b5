#!/usr/bin/env bash
# Stops the stand-in that start.sh started, found by the pid file it wrote.
set -euo pipefail

run_dir="${USAGE_MONGO_RUN_DIR:-/tmp/usage-mongo-standin}"
pid_file="$run_dir/standin.pid"

if [[ ! -f "$pid_file" ]]; then
    echo "stop.sh: no stand-in recorded in $pid_file" >&2
    exit 0
fi
pid="$(cat "$pid_file")"
if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "stop.sh: pid $pid ignored SIGTERM; sending SIGKILL" >&2
        kill -KILL "$pid"
    fi
    echo "stop.sh: stopped the stand-in (pid $pid)" >&2
fi
rm -f "$pid_file" "$run_dir/standin.uri"
