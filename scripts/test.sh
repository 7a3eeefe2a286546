#!/usr/bin/env bash
# Runs every test: installs what is missing, builds the binaries the end-to-end tests start,
# then runs the whole workspace's tests (nextest when present, else cargo test).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/setup.sh --for-tests
cargo build --workspace --bins --locked

# One MongoDB-wire server and one AWS emulator for the whole run (each test uses a database or
# bucket of its own); a test run on its own starts its own servers.
logs=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$logs"' EXIT
start_server() { # NAME SCRIPT: starts it in the background, remembering its pid
  "$2" --port 0 > "$logs/$1.out" 2> "$logs/$1.err" &
  pids+=($!)
}
address_of() { # NAME: waits for "... listening on ADDR" and prints ADDR
  for _ in $(seq 1 300); do grep -q "listening on" "$logs/$1.out" && break; sleep 0.1; done
  sed -n 's/^.* listening on //p' "$logs/$1.out"
}
start_server mongo scripts/mongo-test-server.sh
start_server aws scripts/aws-test-server.sh
mongo_addr=$(address_of mongo)
aws_addr=$(address_of aws)
[ -n "$mongo_addr" ] || { echo "the MongoDB-wire test server did not start: $(cat "$logs/mongo.err")" >&2; exit 1; }
[ -n "$aws_addr" ] || { echo "the AWS emulator did not start: $(cat "$logs/aws.err")" >&2; exit 1; }
export HTSPREP_TEST_MONGODB_URI="mongodb://$mongo_addr/?directConnection=true&retryWrites=false"
export HTSPREP_TEST_AWS_ENDPOINT="http://$aws_addr"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
else
  cargo test --workspace --locked --no-fail-fast "$@"
fi
