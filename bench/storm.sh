#!/usr/bin/env bash
# Storm benchmark: CONNS concurrent cold GETs of one file not prepared yet, against nginx
# answering the same 202 from its config, in the same run. Each run uses a new file (so every
# request is cold) and a new nginx round; prints p50/p99/max time to the status line for both,
# the ratio of the p99s and how many jobs htsprep created (the goal: exactly one per file).
# Every run starts on a quiet machine: the next run waits until this run's job is done.
#   bench/storm.sh                   (defaults: 1000 connections, 3 runs)
#   CONNS=1000 RUNS=3 bench/storm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${CONNS:-1000} RUNS=${RUNS:-3}
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init storm nginx
ulimit -n "$(ulimit -Hn)"

# The files: the same unsorted BED of 500,000 records (its job takes about a second, so every
# answer during the storm is the 202 of a file still being prepared) under RUNS names, each cold
# once.
src=$work/storm.bed
awk 'BEGIN { srand(7); OFS = "\t"
  for (i = 1; i <= 500000; i++) { p = int(rand() * 2e8); print "chr" int(1 + rand() * 22), p, p + 500, "r" i } }' > "$src"
md5=$(md5sum < "$src" | cut -d' ' -f1)
size=$(stat -c %s "$src")
for i in $(seq 1 "$RUNS"); do
  printf '{"dcc":"storm","local_id":"f%s","md5":"%s","size":%s,"format":"BED","access_url":"file://%s"}\n' \
    "$i" "$md5" "$size" "$src"
done > "$work/manifest.jsonl"
export HTSPREP_DATA_DIR=$work/data HTSPREP_LISTEN=127.0.0.1:18083 HTSPREP_LOOPBACK_ONLY=true
export HTSPREP_FILE_ROOTS=$work HTSPREP_ADMIN_TOKEN=bench-admin-token-0123456789 RUST_LOG=warn
target/release/htsprep-api files import "$work/manifest.jsonl" >/dev/null
# Written back now, not during a round (the kernel flushes dirty pages about 30 s later).
sync
start_api

cat > "$work/nginx.conf" <<NGINX
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_timeout 0;
  server {
    listen 127.0.0.1:18084 backlog=4096;
    location / {
      add_header Location /jobs/01a23044-92f5-7010-8550-a2e9ab028ffd always;
      add_header Retry-After 2 always;
      default_type application/json;
      return 202 '{"job_id":"01a23044-92f5-7010-8550-a2e9ab028ffd","status":"pending","attempt":1,"progress":null,"location":"/jobs/01a23044-92f5-7010-8550-a2e9ab028ffd"}';
    }
  }
}
NGINX
nginx -c "$work/nginx.conf"

# CONNS connections opened first, then every request sent at once; the time from sending to the
# status line, per request, and the CPU time the server's threads (of the processes $3, comma
# separated) spent from the moment the requests were let go until every answer was read, per
# request (a steadier figure than the p99). The client is compiled and runs on one thread
# (bench/storm-client): a Python client spent several times either server's CPU on the same
# two cores, and its own scheduling made most of the p99 it reported.
storm() {
  target/release/htsprep-storm-client "$1" "$2" "$CONNS" "$3"
}

# nginx's workers (their CPU time is nginx's).
nginx_pids=$(nginx_workers 2 | paste -sd,)
printf '%-4s %-26s %-26s %9s %5s  %s\n' run "nginx p50/p99/max (ms)" "htsprep p50/p99/max (ms)" "p99 ratio" jobs \
  "server CPU per request (µs)"
for i in $(seq 1 "$RUNS"); do
  read -r n50 n99 nmax ncpu ncodes < <(storm 127.0.0.1:18084 "/data/storm/f$i" "$nginx_pids")
  read -r h50 h99 hmax hcpu hcodes < <(storm "$HTSPREP_LISTEN" "/data/storm/f$i" "$api_pid")
  jobs=$(curl -fs -H "Authorization: Bearer $HTSPREP_ADMIN_TOKEN" "http://$HTSPREP_LISTEN/jobs?limit=100" \
    | python3 -c "import json,sys; print(sum(1 for j in json.load(sys.stdin)['jobs'] if j['local_id'] == 'f$i'))")
  printf '%-4s %-26s %-26s %8.2fx %5s  nginx %s, htsprep %s (codes: nginx %s, htsprep %s)\n' "$i" \
    "$n50 / $n99 / $nmax" "$h50 / $h99 / $hmax" "$(python3 -c "print($h99 / $n99)")" "$jobs" \
    "$ncpu" "$hcpu" "$ncodes" "$hcodes"
  # The next run starts on a quiet machine, as this one did: its nginx round is not measured
  # while this run's job still prepares the file.
  curl -fs -o /dev/null -r 0-0 "http://$HTSPREP_LISTEN/data/storm/f$i?wait=120"
done
