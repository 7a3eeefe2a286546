#!/usr/bin/env bash
# Cold-path benchmark: one unsorted source per format (VCF, SAM, BED, GFF3; RECORDS records each)
# prepared by the bare single-threaded pipeline (sort | bgzip; tabix, or samtools sort; index) and
# by htsprep (job created -> completed, release build, embedded defaults, a file:// source), in
# the same run. Prints both, the ratio, the goal (htsprep <= 1.10 x bare + 0.3 s) and htsprep's
# per-stage times.
#   bench/cold-path.sh                 (defaults: 1,000,000 records per format)
#   RECORDS=200000 FORMATS="VCF BED" bench/cold-path.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${RECORDS:-1000000} FORMATS=${FORMATS:-"VCF SAM BED GFF3"}
export LC_ALL=C

for tool in samtools tabix bgzip python3 curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/setup.sh first" >&2; exit 2; }
done
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init cold

# Unsorted synthetic sources over 22 contigs, from a fixed seed.
gen() {
  local format=$1 out=$2
  awk -v n="$RECORDS" -v f="$format" 'BEGIN {
    srand(42); OFS = "\t"
    split("ACGTACGTTGCAAGCTTAGCCGATCGGATCCATGCATGCAAGCTTGGCACTGGCCGTCGTTTTACAACGTCGTGACTGGGAAAACCCTGGCGTTACCCAA", s, "")
    seq = ""; for (i = 1; i <= 100; i++) seq = seq s[i]
    qual = ""; for (i = 1; i <= 100; i++) qual = qual "I"
    if (f == "VCF") {
      print "##fileformat=VCFv4.2"
      for (c = 1; c <= 22; c++) print "##contig=<ID=chr" c ",length=250000000>"
      print "##INFO=<ID=DP,Number=1,Type=Integer,Description=\"Depth\">"
      print "#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"
    } else if (f == "SAM") {
      print "@HD", "VN:1.6", "SO:unsorted"
      for (c = 1; c <= 22; c++) print "@SQ", "SN:chr" c, "LN:250000000"
    } else if (f == "GFF3") {
      print "##gff-version 3"
    }
    for (i = 1; i <= n; i++) {
      c = "chr" int(1 + rand() * 22); p = int(1 + rand() * 249000000)
      if (f == "VCF") print c, p, ".", "A", "C", 50, "PASS", "DP=" int(rand() * 100)
      else if (f == "SAM") print "r" i, 0, c, p, 60, "100M", "*", 0, 0, seq, qual
      else if (f == "BED") print c, p, p + int(rand() * 1000) + 1, "peak" i, int(rand() * 1000), "+"
      else print c, "bench", "gene", p, p + int(rand() * 5000) + 1, ".", "+", ".", "ID=g" i
    }
  }' > "$out"
}

# The bare pipeline, single-threaded, as a user would write it by hand.
bare() {
  local format=$1 in=$2 out=$work/bare
  rm -rf "$out" && mkdir -p "$out"
  case $format in
    VCF) { grep '^#' "$in"; grep -v '^#' "$in" | sort -t $'\t' -k1,1 -k2,2n -S 512M -T "$out"; } \
           | bgzip -c > "$out/a.vcf.gz" && tabix -p vcf "$out/a.vcf.gz" ;;
    SAM) samtools sort -m 512M -T "$out/s" -o "$out/a.bam" "$in" 2>/dev/null && samtools index "$out/a.bam" ;;
    BED) sort -t $'\t' -k1,1 -k2,2n -S 512M -T "$out" "$in" | bgzip -c > "$out/a.bed.gz" \
           && tabix -p bed "$out/a.bed.gz" ;;
    GFF3) { grep '^#' "$in"; grep -v '^#' "$in" | sort -t $'\t' -k1,1 -k4,4n -S 512M -T "$out"; } \
           | bgzip -c > "$out/a.gff.gz" && tabix -p gff "$out/a.gff.gz" ;;
  esac
}

export HTSPREP_DATA_DIR=$work/data HTSPREP_LISTEN=127.0.0.1:18082 HTSPREP_LOOPBACK_ONLY=true
export HTSPREP_FILE_ROOTS=$work HTSPREP_ADMIN_TOKEN=bench-admin-token-0123456789 RUST_LOG=warn
base=http://$HTSPREP_LISTEN
manifest=$work/manifest.jsonl
: > "$manifest"
for f in $FORMATS; do
  gen "$f" "$work/src.$f"
  printf '{"dcc":"bench","local_id":"%s","md5":"%s","size":%s,"format":"%s","access_url":"file://%s"}\n' \
    "$f" "$(md5sum < "$work/src.$f" | cut -d' ' -f1)" "$(stat -c %s "$work/src.$f")" "$f" "$work/src.$f" >> "$manifest"
done
target/release/htsprep-api files import "$manifest" >/dev/null
start_api

printf '%-5s %9s %10s %12s %8s %12s  %s\n' format records "bare (s)" "htsprep (s)" ratio "goal (s)" "htsprep stages"
for f in $FORMATS; do
  # Page cache warm for both: each reads the source once before it is timed.
  cat "$work/src.$f" > /dev/null
  t0=$(date +%s.%N); bare "$f" "$work/src.$f"; t1=$(date +%s.%N)
  bare_s=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
  # The user's view: one request that waits for the file (?wait) and reads its first 64 KiB;
  # nothing polls meanwhile (a poller would take CPU from the job on a 2-core machine).
  t0=$(date +%s.%N)
  curl -fs -o /dev/null -r 0-65535 "$base/data/bench/$f?wait=600"
  t1=$(date +%s.%N)
  took=$(python3 -c "print($t1 - $t0)")
  job=$(curl -fs -H "Authorization: Bearer $HTSPREP_ADMIN_TOKEN" "$base/jobs?limit=100" \
        | python3 -c 'import json,sys; print(next(j["job_id"] for j in json.load(sys.stdin)["jobs"] if j["local_id"] == sys.argv[1]))' "$f")
  out=$(curl -fs -H "Authorization: Bearer $HTSPREP_ADMIN_TOKEN" "$base/jobs/$job")
  python3 - "$out" "$f" "$RECORDS" "$bare_s" "$took" <<'PY'
import json, sys
job, fmt, records, bare, took = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
if job["status"] != "completed":
    sys.exit(f"{fmt}: job failed: {job['error']}")
stages = ", ".join(f"{e['stage']} {e['duration_ms'] / 1000:.2f}" for e in job["events"] if e["kind"] == "stage_finished")
goal = 1.10 * bare + 0.3
print(f"{fmt:<5} {records:>9} {bare:>10.2f} {took:>12.2f} {took / bare:>7.2f}x {goal:>8.2f} {'ok' if took <= goal else 'over'}  {stages}")
PY
done
