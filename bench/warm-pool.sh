#!/usr/bin/env bash
# Warm-pool benchmark: a cold GET (?wait) of a small real file with no warm pool (every request
# starts a worker) and with HTSPREP_MIN_IDLE_WORKERS=1, on the local fleet and on ECS through
# the stand-in (loopback only; the AWS emulator and the MongoDB-wire server are started for
# it), in the same run. Prints every run, the medians, the ratio and the saving.
#   bench/warm-pool.sh [RUNS]        (default 5 runs per case)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/setup.sh --for-tests >/dev/null
cargo build --release --bins --quiet
cargo run --release --quiet -p htsprep-tests --example warm_pool -- "${1:-5}"
