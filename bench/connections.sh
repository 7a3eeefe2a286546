#!/usr/bin/env bash
# Connections benchmark: the hot path with 4,096 connections streaming random 64 KiB ranges of an
# 11 MiB artifact (a browser opens about six: some 700 viewers on one replica), against nginx in
# the same run. Goal (#15): htsprep's anonymous memory <= 64 MiB, no timeouts, p99 <= 1.5 x nginx.
#   bench/connections.sh                     (defaults: 4096 connections, 20 s per server)
#   CONNS=4096 DURATION=20s SIZE_MIB=11 bench/connections.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CONNS=${CONNS:-4096} DURATION=${DURATION:-20s} SIZE_MIB=${SIZE_MIB:-11} THREADS=${THREADS:-2}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
bench/hot-path.sh | tee "$out"
anon_kb=$(awk '/peak anonymous memory/ { print $(NF - 1) }' "$out")
p99=$(awk '/^htsprep \/ nginx/ { print $NF }' "$out")
timeouts=$(awk '/^timeouts:/ { print $5 }' "$out")
awk -v kb="$anon_kb" -v p="$p99" -v t="${timeouts:-0}" 'BEGIN {
  printf "goal: anonymous memory %.1f MiB (<= 64: %s), p99 %.2f x nginx (<= 1.5: %s), timeouts %d (none: %s)\n",
    kb / 1024, kb / 1024 <= 64 ? "ok" : "over", p, p <= 1.5 ? "ok" : "over", t, t == 0 ? "ok" : "over" }'
