#!/usr/bin/env bash
# Writes a catalog manifest (JSON Lines) for the files in a directory (default: testdata/), with
# file:// URLs, sizes and md5 sums computed from the files themselves.
#   scripts/testdata-manifest.sh [DIR] [DCC] > manifest.jsonl
set -euo pipefail
dir=$(cd "${1:-$(dirname "$0")/../testdata}" && pwd)
dcc=${2:-testdata}
format_of() {
  case "$1" in
    *.sam) echo SAM ;; *.bam) echo BAM ;; *.vcf|*.vcf.gz) echo VCF ;;
    *.gff3|*.gff) echo GFF3 ;; *.gtf) echo GTF ;; *.broadPeak) echo broadPeak ;;
    *.narrowPeak) echo narrowPeak ;; *.bed|*.bed.gz) echo BED ;; *.bigBed|*.bb) echo bigBed ;;
    *.bw|*.bigWig) echo bigWig ;; *.csv) echo CSV ;; *.tsv) echo TSV ;; *) echo "" ;;
  esac
}
for f in "$dir"/*; do
  name=$(basename "$f")
  fmt=$(format_of "$name")
  [ -n "$fmt" ] || continue
  id=$name
  md5=$(md5sum "$f" | cut -d' ' -f1)
  size=$(stat -c %s "$f")
  printf '{"dcc":"%s","local_id":"%s","md5":"%s","size":%s,"format":"%s","access_url":"file://%s"}\n' \
    "$dcc" "$id" "$md5" "$size" "$fmt" "$f"
done
