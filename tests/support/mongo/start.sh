#!/usr/bin/env bash
# Starts the `mongoeco` MongoDB wire-protocol stand-in for the usage-mongo integration tests.
#
# There is no mongod package and no Docker engine on the project's machines, so the tests run
# against mongoeco (PyPI), a MongoDB wire-protocol server written in Python. This script is
# idempotent: it reuses the virtual environment, and a stand-in that is already running.
#
# Usage:
#   eval "$(tests/support/mongo/start.sh)"   # exports USAGE_TEST_MONGODB_URI
#   tests/support/mongo/stop.sh               # stops it again
#   tests/support/mongo/start.sh --install-only   # only installs it, for tests that start
#                                                 # stand-ins of their own
#
# Environment:
#   USAGE_MONGO_VENV     virtual environment to use or create
#                        (default: $HOME/.cache/usage-service/mongoeco-venv)
#   USAGE_MONGO_RUN_DIR  where the pid, URI and log files live (default: /tmp/usage-mongo-standin)
#   USAGE_MONGO_PORT     port to listen on (default: 0, a free port chosen by the system)
#
# Only the `export ...` line goes to stdout; progress messages go to stderr.
set -euo pipefail

readonly MONGOECO_REQUIREMENT="mongoeco[wire]==4.11.0"
readonly MONGOECO_VERSION="4.11.0"
script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${USAGE_MONGO_VENV:-$HOME/.cache/usage-service/mongoeco-venv}"
run_dir="${USAGE_MONGO_RUN_DIR:-/tmp/usage-mongo-standin}"
port="${USAGE_MONGO_PORT:-0}"
pid_file="$run_dir/standin.pid"
uri_file="$run_dir/standin.uri"
log_file="$run_dir/standin.log"

say() { echo "start.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

# Prints a Python 3.13 or newer: the pyenv one the machine image ships, else any on PATH.
find_python() {
    local candidates=()
    if command -v pyenv >/dev/null 2>&1; then
        candidates+=("$(pyenv root)/versions/3.13.0/bin/python3")
    fi
    candidates+=(python3.14 python3.13 python3)
    local candidate
    for candidate in "${candidates[@]}"; do
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 13))' 2>/dev/null
        then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

ensure_venv() {
    if [[ ! -x "$venv/bin/python" ]]; then
        local python
        python="$(find_python)" || die "mongoeco needs Python 3.13 or newer, and none was found \
(looked for \$(pyenv root)/versions/3.13.0/bin/python3, python3.14, python3.13, python3)"
        say "creating virtual environment $venv with $python"
        mkdir -p "$(dirname "$venv")"
        "$python" -m venv "$venv" || die "could not create the virtual environment $venv"
    fi
    local installed
    installed="$("$venv/bin/python" -c \
        'import importlib.metadata as m; print(m.version("mongoeco"))' 2>/dev/null || true)"
    if [[ "$installed" != "$MONGOECO_VERSION" ]]; then
        say "installing $MONGOECO_REQUIREMENT into $venv"
        "$venv/bin/python" -m pip install --quiet "$MONGOECO_REQUIREMENT" >&2 \
            || die "pip could not install $MONGOECO_REQUIREMENT"
    fi
}

# Succeeds when a stand-in started by this script is still alive and answering.
already_running() {
    [[ -f "$pid_file" && -f "$uri_file" ]] || return 1
    kill -0 "$(cat "$pid_file")" 2>/dev/null || return 1
    answers "$(cat "$uri_file")"
}

# Succeeds when the server behind the URI answers a `ping` over the wire protocol.
answers() {
    "$venv/bin/python" "$script_dir/standin.py" --check "$1" >/dev/null 2>&1
}

start_standin() {
    rm -f "$pid_file" "$uri_file"
    say "starting the stand-in (log: $log_file)"
    nohup "$venv/bin/python" "$script_dir/standin.py" --port "$port" --uri-file "$uri_file" \
        >"$log_file" 2>&1 </dev/null &
    echo $! >"$pid_file"

    local waited=0
    until [[ -s "$uri_file" ]] && answers "$(cat "$uri_file")"; do
        if ! kill -0 "$(cat "$pid_file")" 2>/dev/null; then
            cat "$log_file" >&2 || true
            die "the stand-in exited during start-up; its log is above"
        fi
        if (( waited >= 300 )); then
            die "the stand-in did not answer within 30 seconds; see $log_file"
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
}

main() {
    if [[ "${1:-}" == "--install-only" ]]; then
        ensure_venv
        return 0
    fi
    mkdir -p "$run_dir"
    ensure_venv
    if already_running; then
        say "reusing the stand-in already running (pid $(cat "$pid_file"))"
    else
        start_standin
        say "stand-in running (pid $(cat "$pid_file"))"
    fi
    printf "export USAGE_TEST_MONGODB_URI='%s'\n" "$(cat "$uri_file")"
}

main "$@"
