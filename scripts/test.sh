#!/usr/bin/env bash
# Runs every test: installs what is missing and builds the binaries and test binaries (the only
# steps that need the package registries), then runs the whole workspace's tests inside a private
# network namespace where only loopback is up: a test that tried to reach anything outside
# 127.0.0.0/8 fails at once ("Network is unreachable") and nothing leaves the machine.
# Arguments go to the test runner (nextest when present, else cargo test).
# HTSPREP_TEST_NETNS=off runs on the host's network instead (for machines without namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

run_tests() {
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked "$@"
  else
    cargo test --workspace --locked "$@"
  fi
}

if [ "${HTSPREP_TEST_NETNS:-}" != inside ]; then
  scripts/setup.sh --for-tests
  cargo build --workspace --bins --locked
  run_tests --no-run "$@"
  if [ "${HTSPREP_TEST_NETNS:-}" = off ]; then
    echo "test: HTSPREP_TEST_NETNS=off: running on the host's network" >&2
  else
    ns=(unshare --net)
    [ "$(id -u)" -eq 0 ] || ns=(unshare --user --map-root-user --net)
    "${ns[@]}" -- true 2>/dev/null || {
      echo "test: cannot create a network namespace (${ns[*]}); run as root, enable user namespaces, or set HTSPREP_TEST_NETNS=off" >&2
      exit 1
    }
    echo "test: running the tests in a private network namespace (loopback only)" >&2
    exec "${ns[@]}" -- env HTSPREP_TEST_NETNS=inside CARGO_NET_OFFLINE=true \
      bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "$@"
  fi
fi

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
run_tests --no-fail-fast "$@"
