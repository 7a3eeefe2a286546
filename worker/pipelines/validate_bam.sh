#!/usr/bin/env bash
# shellcheck disable=SC2015  # "[ a ] && [ b ] || die ..." is intended
# htsprep validation: an indexed BAM artifact holds every record of its source.
#
# Usage:  validate_bam.sh SOURCE OUT_BAM
#   SOURCE   the original upload (SAM/BAM; may be OUT_BAM itself when it was already sorted).
#   OUT_BAM  artifact; OUT_BAM.bai or OUT_BAM.csi must exist.
# Checks (all must be equal):
#   a) samtools view -c SOURCE                       (all records, mapped or not)
#   b) samtools view -c OUT_BAM                      (full scan of the artifact)
#   c) sum of idxstats mapped+unmapped over all lines, including "*" (the index metadata)
#   d) samtools view -c with the index: every reference having reads (one BED region per
#      whole reference, --region-file), plus the "*" query for unplaced reads.
#   Unmapped reads placed at their mate's position are counted under that reference by
#   idxstats and returned by region queries; only RNAME "*" reads are in the "*" line.
# Stdout: "records=N placed=P unplaced=U index=bai|csi" on success.
# Env:    TMPDIR (existing per-job dir).
# Exit:   0 ok; 1 validation failed (reason on stderr); 2 usage/environment.
set -eu
set -o pipefail
export LC_ALL=C
die() { c=$1; shift; printf '%s: %s\n' "$0" "$*" >&2; exit "$c"; }

[ "$#" -eq 2 ] || die 2 "usage: $0 SOURCE OUT_BAM (got $# arguments)"
[ -n "${TMPDIR:-}" ] && [ -d "$TMPDIR" ] && [ -w "$TMPDIR" ] || die 2 "TMPDIR is unset or not a writable directory"
[ -f "$1" ] || die 2 "source file does not exist"
[ -f "$2" ] || die 1 "artifact does not exist"
src=$1 bam=$2
if [ -f "$bam.csi" ]; then kind=csi; elif [ -f "$bam.bai" ]; then kind=bai; else die 1 "no .bai or .csi index next to the artifact"; fi

err="$TMPDIR/validate_bam.stderr"
stats="$TMPDIR/validate_bam.idxstats"
regions="$TMPDIR/validate_bam.regions.bed"
count() { # count [samtools view args...] -> number on stdout; dies on any samtools error
  samtools view -c "$@" 2> "$err" || { cat "$err" >&2; die 1 "samtools view -c failed"; }
}

n_src=$(count -- "$src")
n_scan=$(count -- "$bam")
samtools idxstats -- "$bam" > "$stats" 2> "$err" || { cat "$err" >&2; die 1 "index cannot be loaded (idxstats)"; }
n_idx=$(awk -F'\t' '{ s += $3 + $4 } END { printf "%.0f\n", s }' "$stats")
idx_placed=$(awk -F'\t' '$1 != "*" { s += $3 + $4 } END { printf "%.0f\n", s }' "$stats")
idx_unplaced=$(awk -F'\t' '$1 == "*" { s += $3 + $4 } END { printf "%.0f\n", s }' "$stats")
awk -F'\t' -v OFS='\t' '$1 != "*" && $3 + $4 > 0 { print $1, 0, $2 }' "$stats" > "$regions"
if [ -s "$regions" ]; then
  q_placed=$(count -M --region-file "$regions" -- "$bam")
else
  q_placed=0
fi
q_unplaced=$(count -- "$bam" '*')

[ "$n_scan" = "$n_src" ] || die 1 "artifact has $n_scan records, source has $n_src"
[ "$n_idx" = "$n_src" ] || die 1 "index (idxstats) accounts for $n_idx records, source has $n_src"
[ "$q_placed" = "$idx_placed" ] || die 1 "region queries return $q_placed placed records, index metadata says $idx_placed"
[ "$q_unplaced" = "$idx_unplaced" ] || die 1 "query '*' returns $q_unplaced unplaced records, index metadata says $idx_unplaced"
echo "records=$n_src placed=$q_placed unplaced=$q_unplaced index=$kind"
