#!/usr/bin/env bash
# The README's first command. On a fresh machine: installs what is missing, builds htsprep,
# starts the API on its embedded defaults (SQLite job store and catalog, local artifact directory
# and local worker processes, all under ./data), registers the real sample files in testdata/,
# and shows cold requests becoming served, indexed artifacts. The service then keeps running
# until Ctrl-C (DEMO_EXIT=1 stops it after the walkthrough).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/setup.sh
cargo build --workspace --bins --release --quiet
api=target/release/htsprep-api
export HTSPREP_DATA_DIR=${HTSPREP_DATA_DIR:-./data}
export HTSPREP_LISTEN=${HTSPREP_LISTEN:-127.0.0.1:8080}
# file:// sources are read only from under these directories.
export HTSPREP_FILE_ROOTS=${HTSPREP_FILE_ROOTS:-$PWD/testdata}
base="http://$HTSPREP_LISTEN"
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

echo "== registering the sample files in testdata/ (catalog: $HTSPREP_DATA_DIR/htsprep.db)"
mkdir -p "$HTSPREP_DATA_DIR"
scripts/testdata-manifest.sh > "$HTSPREP_DATA_DIR/testdata.manifest.jsonl"
"$api" files import "$HTSPREP_DATA_DIR/testdata.manifest.jsonl"

echo "== starting htsprep-api on $base"
RUST_LOG=${RUST_LOG:-warn} "$api" serve &
api_pid=$!
trap 'kill "$api_pid" 2>/dev/null; wait "$api_pid" 2>/dev/null' EXIT
for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done

echo "== cold requests: every GET /data/... on an unprepared file answers 202 with a job"
declare -A jobs=()
while read -r id; do
  code=$(curl -s -o /tmp/htsprep-demo.json -w '%{http_code}' "$base/data/testdata/$id")
  case "$code" in
    202) jobs[$id]=$(json 'd["job_id"]' < /tmp/htsprep-demo.json); echo "  $id: 202 Accepted, Location: /jobs/${jobs[$id]}" ;;
    200) echo "  $id: 200 (already prepared, or served as it is)" ;;
    *) echo "  $id: HTTP $code: $(cat /tmp/htsprep-demo.json)" ;;
  esac
done < <(curl -s "$base/files?dcc=testdata" | json '"\n".join(f["local_id"] for f in d["files"])')

echo "== following the jobs (GET /jobs/{id})"
for id in "${!jobs[@]}"; do
  job=${jobs[$id]}
  while :; do
    curl -s "$base/jobs/$job" > /tmp/htsprep-demo.json
    status=$(json 'd["status"]' < /tmp/htsprep-demo.json)
    stage=$(json '(d.get("progress") or {}).get("stage", "")' < /tmp/htsprep-demo.json)
    printf '\r\033[K  %-32s %-10s %-20s' "$id" "$status" "$stage"
    [ "$status" = completed ] || [ "$status" = failed ] && break
    sleep 0.2
  done
  stages=$(json '" -> ".join(e["stage"] for e in d["events"] if e["kind"] == "stage_finished")' < /tmp/htsprep-demo.json)
  printf '\r\033[K  %-32s %-10s %s\n' "$id" "$status" "$stages"
done

echo "== serving with Range, as Gosling's readers do"
for id in phix_unsorted.sam htslib_index.vcf ctcf_trackline.bed; do
  echo "  GET /data/testdata/$id  Range: bytes=0-65535"
  curl -s -o /dev/null -D - -H 'Range: bytes=0-65535' "$base/data/testdata/$id" \
    | grep -iE '^(HTTP|content-range|content-length|etag)' | sed 's/^/    /'
  echo "  GET /index/testdata/$id"
  curl -s -o /dev/null -D - "$base/index/testdata/$id" | grep -iE '^(HTTP|content-length)' | sed 's/^/    /'
done
echo "  GET /data/testdata/pybigwig_test.bw  Range: bytes=-100  (bigWig is served as it is)"
curl -s -o /dev/null -D - -H 'Range: bytes=-100' "$base/data/testdata/pybigwig_test.bw" \
  | grep -iE '^(HTTP|content-range)' | sed 's/^/    /'

echo "== htsget: samtools and bcftools read a region through a ticket"
url="$base/htsget/reads/testdata/phix_unsorted.sam?referenceName=phix&start=3600&end=3800"
echo "  samtools view -c '$url'"
echo "    $(samtools view -c "$url") reads in the ticket's blocks"
url="$base/htsget/variants/testdata/htslib_index.vcf?referenceName=1"
echo "  bcftools view -H '$url'"
echo "    $(bcftools view -H "$url" | wc -l) records"

if [ "${DEMO_EXIT:-0}" = 1 ]; then
  echo "== done"
  exit 0
fi
echo
echo "htsprep is serving on $base (Ctrl-C to stop). Try:"
echo "  curl -H 'Range: bytes=0-99' $base/data/testdata/vega_x.gff3 | bgzip -d | head"
echo "  curl $base/files?dcc=testdata"
echo "  samtools view '$base/htsget/reads/testdata/gstt1_sample.bam?referenceName=chr22&start=24376180&end=24376300'"
wait "$api_pid"
