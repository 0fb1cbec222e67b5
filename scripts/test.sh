#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: formatting, lints, and every test on both
# stores. It installs and starts the MongoDB wire-protocol stand-in unless
# USAGE_TEST_MONGODB_URI already names a server (a real MongoDB, say).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

step "formatting (cargo fmt --check)"
cargo fmt --all -- --check

step "lints (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# The crash test that kills the database server too runs a stand-in of its own, whatever
# server the other tests use, so the stand-in is installed in every case.
step "installing the MongoDB wire-protocol stand-in"
bash tests/support/mongo/start.sh --install-only

# The MongoDB server for the tests, in order of preference: the one USAGE_TEST_MONGODB_URI
# names; a throwaway MongoDB container when a Docker engine answers; else the stand-in.
cleanup=()
stop_servers() {
    for command in "${cleanup[@]}"; do eval "$command" >&2 || true; done
}
trap stop_servers EXIT
if [[ -n "${USAGE_TEST_MONGODB_URI:-}" ]]; then
    step "using the MongoDB server of USAGE_TEST_MONGODB_URI"
elif docker info >/dev/null 2>&1; then
    step "starting a MongoDB container"
    container=$(docker run -d --rm -p 127.0.0.1::27017 mongo:7)
    cleanup+=("docker stop $container")
    port=$(docker port "$container" 27017/tcp | head -n 1 | sed 's/.*://')
    for _ in $(seq 60); do
        docker exec "$container" mongosh --quiet --eval 'db.runCommand({ping: 1})' \
            >/dev/null 2>&1 && break
        sleep 1
    done
    export USAGE_TEST_MONGODB_URI="mongodb://127.0.0.1:$port/?directConnection=true"
else
    step "starting the MongoDB wire-protocol stand-in (no Docker engine answers here)"
    eval "$(bash tests/support/mongo/start.sh)"
    cleanup+=("bash tests/support/mongo/stop.sh")
fi
export USAGE_TEST_MONGODB_URI

step "tests (MongoDB tests against $USAGE_TEST_MONGODB_URI)"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
else
    cargo test --workspace --locked --no-fail-fast
fi
