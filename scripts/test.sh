#!/usr/bin/env bash
# Runs every test: installs what is missing, builds the binaries the end-to-end tests start,
# then runs the whole workspace's tests (nextest when present, else cargo test).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/setup.sh
cargo build --workspace --bins --locked

# One MongoDB-wire server for the whole run (each test uses a database of its own); tests run
# alone start their own.
mongo_log=$(mktemp)
scripts/mongo-test-server.sh --port 0 > "$mongo_log" &
mongo_pid=$!
trap 'kill "$mongo_pid" 2>/dev/null; wait "$mongo_pid" 2>/dev/null; rm -f "$mongo_log"' EXIT
for _ in $(seq 1 100); do grep -q "listening on" "$mongo_log" && break; sleep 0.1; done
addr=$(sed -n 's/^mongoeco listening on //p' "$mongo_log")
[ -n "$addr" ] || { echo "the MongoDB-wire test server did not start" >&2; exit 1; }
export HTSPREP_TEST_MONGODB_URI="mongodb://$addr/?directConnection=true&retryWrites=false"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
else
  cargo test --workspace --locked --no-fail-fast "$@"
fi
