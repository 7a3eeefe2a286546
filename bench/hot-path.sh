#!/usr/bin/env bash
# Hot-path benchmark: random 64 KiB Range requests against one cached artifact (1 GiB by
# default), served by htsprep and by nginx from the same file in the same run, driven by wrk.
#   bench/hot-path.sh            (defaults: 64 connections, 2 threads, 20 s per server)
#   CONNS=64 THREADS=2 DURATION=20s SIZE_MIB=1024 bench/hot-path.sh
#   SIZE_MIB=11 bench/hot-path.sh                 (a small artifact, all of it hot)
# Prints requests/s, p50/p99 latency, socket errors (timeouts among them) for both, the ratios
# (goal #15: req/s >= 0.9 x nginx, p99 <= 1.2 x nginx) and the API's peak anonymous memory.
# bench/connections.sh runs it with 4,096 connections.
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${CONNS:-64} THREADS=${THREADS:-2} DURATION=${DURATION:-20s} SIZE_MIB=${SIZE_MIB:-1024}
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init bench nginx wrk
ulimit -n "$(ulimit -Hn)"

# A cached artifact: the catalog says the file is a BAM with this md5, and its data and index
# artifacts are already published under the content-addressed keys.
md5=00000000000000000000000000000001
data_key="bench/big/data/samtools-bam/$md5-v1"
index_key="bench/big/index/samtools-bam/$md5-v1"
objects="$work/data/artifacts/objects"
mkdir -p "$objects/$(dirname "$data_key")" "$objects/$(dirname "$index_key")"
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom > "$objects/$data_key"
head -c 4096 /dev/urandom > "$objects/$index_key"
size=$(stat -c %s "$objects/$data_key")
# Written back now, not during a round: the kernel flushes dirty pages about 30 s after they
# were written, which is the second round (htsprep's), and with 1 GiB that is its tail.
sync
chmod -R a+rX "$work"  # nginx workers run unprivileged
printf '{"dcc":"bench","local_id":"big","md5":"%s","size":%s,"format":"BAM","access_url":"file:///nonexistent.bam"}\n' \
  "$md5" "$size" > "$work/manifest.jsonl"
export HTSPREP_DATA_DIR=$work/data HTSPREP_LISTEN=127.0.0.1:18081 HTSPREP_LOOPBACK_ONLY=true RUST_LOG=warn
target/release/htsprep-api files import "$work/manifest.jsonl" >/dev/null
start_api
cat > "$work/nginx.conf" <<NGINX
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 16384; }
http {
  access_log off;
  sendfile on;
  tcp_nopush off;
  keepalive_requests 1000000;
  client_body_temp_path $work/nginx-tmp;
  proxy_temp_path $work/nginx-tmp;
  fastcgi_temp_path $work/nginx-tmp;
  uwsgi_temp_path $work/nginx-tmp;
  scgi_temp_path $work/nginx-tmp;
  server {
    listen 127.0.0.1:18082;
    location /data/bench/big { alias $objects/$data_key; }
  }
}
NGINX
mkdir -p "$work/nginx-tmp"
nginx -c "$work/nginx.conf"
for url in http://127.0.0.1:18081/data/bench/big http://127.0.0.1:18082/data/bench/big; do
  for _ in $(seq 1 100); do curl -sf -o /dev/null -H 'Range: bytes=0-0' "$url" && break; sleep 0.1; done
  curl -sf -o /dev/null -H 'Range: bytes=0-0' "$url" || { echo "server at $url did not come up" >&2; exit 1; }
done
# Both answer the same range with the same bytes.
cmp <(curl -s -H 'Range: bytes=1000-66535' http://127.0.0.1:18081/data/bench/big) \
    <(curl -s -H 'Range: bytes=1000-66535' http://127.0.0.1:18082/data/bench/big)

# sample PID/status... > FILE: the peak anonymous memory (RssAnon, kB) of the processes,
# summed, every 0.2 s until killed or the first of them is gone. It runs during both rounds:
# its own CPU (an awk every 0.2 s) weighs on both servers alike.
sample() {
  local peak=0 a
  while [ -r "/proc/$1" ]; do
    a=$(cat "${@/#//proc/}" 2>/dev/null | awk '/^RssAnon/ { s += $2 } END { print s + 0 }')
    [ "$a" -gt "$peak" ] && peak=$a && echo "$peak"
    sleep 0.2
  done
}

run() {
  SIZE=$size wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s bench/range.lua "$1" > "$work/wrk.txt"
  rps=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$work/wrk.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.txt")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' "$work/wrk.txt" | tr '\n' ' ')
  printf '%-8s %10s req/s   p50 %8s   p99 %8s   %s\n' "$2" "$rps" "$p50" "$p99" "${errors:-no errors}"
  echo "$rps" > "$work/$2.rps"
  # wrk prints latencies as 812.00us, 4.10ms or 1.20s: in ms.
  awk -v v="$p99" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/) n *= 1000; print n }' > "$work/$2.p99"
  awk '/Socket errors/ { for (i = 1; i <= NF; i++) if ($i == "timeout") print $(i + 1) + 0 }' "$work/wrk.txt" > "$work/$2.timeouts"
}
echo "file: $size bytes; $CONNS connections, $THREADS wrk threads, $DURATION each, random 64 KiB ranges"
# Each server's anonymous (heap) memory while it serves; file-backed pages of the mapped
# artifact count in the API's RSS too, but they are page cache shared with the kernel, not the
# API's own.
mapfile -t nginx_pids < <(nginx_workers 2)
sample "${nginx_pids[@]/%//status}" > "$work/nginx.anon" &
sampler=$!
run http://127.0.0.1:18082/data/bench/big nginx
kill "$sampler" 2>/dev/null || true
sample "$api_pid/status" > "$work/anon.peak" &
sampler=$!
run http://127.0.0.1:18081/data/bench/big htsprep
kill "$sampler" 2>/dev/null || true
echo "nginx workers' anonymous memory (RssAnon, sampled, summed): $(tail -1 "$work/nginx.anon" 2>/dev/null || echo '?') kB"
echo "htsprep peak RSS (VmHWM, including mapped artifact pages): $(awk '/VmHWM/ {print $2, $3}' "/proc/$api_pid/status")"
echo "htsprep peak anonymous memory (RssAnon, sampled): $(tail -1 "$work/anon.peak" 2>/dev/null || echo '?') kB"
awk -v a="$(cat "$work/htsprep.rps")" -v b="$(cat "$work/nginx.rps")" \
  -v pa="$(cat "$work/htsprep.p99")" -v pb="$(cat "$work/nginx.p99")" \
  'BEGIN { printf "htsprep / nginx: req/s %.2f (goal >= 0.90), p99 %.2f\n", a / b, pa / pb }'
echo "timeouts: nginx $(cat "$work/nginx.timeouts" 2>/dev/null || echo 0), htsprep $(cat "$work/htsprep.timeouts" 2>/dev/null || echo 0)"
