#!/usr/bin/env bash
# Builds the service and the load driver in release mode, then measures ingest throughput,
# dashboard latency and peak memory on a fresh embedded store (see README, "Benchmarks").
# Extra arguments go to the driver, e.g. `--quick`, `--phases ingest` or
# `--database-url mongodb://127.0.0.1:27017/usage_bench`.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p usage-api -p usage-bench
exec target/release/usage-bench "$@"
