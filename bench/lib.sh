# Shared by the bench scripts (sourced from the repository root; bash).
#
# bench_init NAME [COMMAND ...]  installs each missing COMMAND with apt (the package has its
#                                name), builds the release binaries, and makes $work, removed at
#                                exit along with the API and nginx started from it.
# start_api                      runs `htsprep-api serve` with the current environment in the
#                                background ($api_pid) and waits until /healthz answers on
#                                $HTSPREP_LISTEN (loopback), failing if the API exits first.
# nginx_workers N                prints the pids of the N workers of the nginx started from
#                                $work (its $work/nginx.pid), one per line, once all are forked.

bench_init() {
  local name=$1 cmd
  shift
  export PATH="$HOME/.cargo/bin:$PATH"
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$cmd" >/dev/null; }
  done
  cargo build --release --bins --quiet
  work=$(mktemp -d "/tmp/htsprep-$name.XXXXXX")
  trap bench_cleanup EXIT
}

bench_cleanup() {
  [ -n "${api_pid:-}" ] && kill "$api_pid" 2>/dev/null && wait "$api_pid" 2>/dev/null
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
  rm -rf "$work"
}

start_api() {
  target/release/htsprep-api serve >/dev/null &
  api_pid=$!
  until curl -fs "http://$HTSPREP_LISTEN/healthz" >/dev/null; do
    kill -0 "$api_pid" 2>/dev/null || { echo "htsprep-api exited before answering /healthz" >&2; exit 1; }
    sleep 0.1
  done
  # Not another server on the same address: ours is still running once something answered.
  sleep 0.2
  kill -0 "$api_pid" 2>/dev/null || { echo "htsprep-api exited (is $HTSPREP_LISTEN taken?)" >&2; exit 1; }
}

nginx_workers() {
  local n=$1 pids
  for _ in $(seq 100); do
    if [ -s "$work/nginx.pid" ]; then
      pids=$(pgrep -P "$(cat "$work/nginx.pid")" || true)
      [ "$(printf '%s' "$pids" | grep -c .)" -ge "$n" ] && { printf '%s\n' "$pids"; return; }
    fi
    sleep 0.1
  done
  echo "nginx's $n workers did not start (see $work/nginx.err)" >&2
  return 1
}
