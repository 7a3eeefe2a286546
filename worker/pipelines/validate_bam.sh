#!/usr/bin/env bash
# shellcheck disable=SC2015  # "[ a ] && [ b ] || die ..." is intended
# htsprep validation: an indexed BAM artifact holds every record of its source.
#
# Usage:  validate_bam.sh SOURCE OUT_BAM
#   SOURCE   the original upload (SAM/BAM; may be OUT_BAM itself when it was already sorted).
#   OUT_BAM  artifact; OUT_BAM.bai or OUT_BAM.csi must exist.
# Checks (must be equal):
#   a) samtools view -c SOURCE                       (all records, mapped or not; when SOURCE is
#                                                     OUT_BAM, a full scan of the artifact)
#   b) sum of idxstats mapped+unmapped over all lines, including "*": the counts htslib kept in
#      the index while it read every record of OUT_BAM to index it. A record lost by the sort,
#      or one the index does not place, makes them differ.
#   Unmapped reads placed at their mate's position are counted under that reference by
#   idxstats; only RNAME "*" reads are in the "*" line.
# Stdout: "records=N placed=P unplaced=U index=bai|csi" on success.
# Env:    TMPDIR (existing per-job dir), THREADS (samtools view -@; default 1).
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
n_src=$(samtools view -c -@ "${THREADS:-1}" -- "$src" 2> "$err") || { cat "$err" >&2; die 1 "samtools view -c failed"; }
samtools idxstats -- "$bam" > "$stats" 2> "$err" || { cat "$err" >&2; die 1 "index cannot be loaded (idxstats)"; }
placed=$(awk -F'\t' '$1 != "*" { s += $3 + $4 } END { printf "%.0f\n", s }' "$stats")
unplaced=$(awk -F'\t' '$1 == "*" { s += $3 + $4 } END { printf "%.0f\n", s }' "$stats")

[ "$((placed + unplaced))" = "$n_src" ] || die 1 "index (idxstats) accounts for $((placed + unplaced)) records, source has $n_src"
echo "records=$n_src placed=$placed unplaced=$unplaced index=$kind"
