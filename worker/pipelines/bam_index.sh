#!/usr/bin/env bash
# shellcheck disable=SC2015  # "[ a ] && [ b ] || die ..." is intended
# htsprep stage: index a coordinate-sorted BAM.
#
# Usage:  bam_index.sh IN_BAM
#   IN_BAM  a BAM, possibly unsorted (the worker tries it as it is) or made by bam_sort.sh.
#           The index is written next to it: IN_BAM.bai, or IN_BAM.csi when any @SQ LN is
#           > 2^29 (536870912), the largest coordinate a BAI can hold.
# Stdout: one word, "bai" or "csi".
# samtools index also refuses unsorted input ("Unsorted positions", "NO_COOR reads not in a
#   single block", "Chromosome blocks not continuous") and then leaves a partial index file
#   behind; it is removed here.
# Env:    TMPDIR (existing per-job dir), THREADS (samtools index -@; default 1).
# Exit:   0 ok; 1 input corrupt/truncated/not BAM (reason on stderr); 2 usage/environment;
#         4 input is not coordinate-sorted (the caller then runs bam_sort.sh + bam_index.sh:
#         htslib checks order while indexing and stops at the first out-of-order record).
set -eu
set -o pipefail
export LC_ALL=C
die() { c=$1; shift; printf '%s: %s\n' "$0" "$*" >&2; exit "$c"; }

[ "$#" -eq 1 ] || die 2 "usage: $0 IN_BAM (got $# arguments)"
[ -n "${TMPDIR:-}" ] && [ -d "$TMPDIR" ] && [ -w "$TMPDIR" ] || die 2 "TMPDIR is unset or not a writable directory"
[ -f "$1" ] && [ -r "$1" ] || die 1 "input file is missing or unreadable"

bam=$1 ok=0
err="$TMPDIR/bam_index.stderr"
samtools quickcheck -- "$bam" 2> "$err" || { cat "$err" >&2; die 1 "not a valid BAM (samtools quickcheck failed: bad header or missing EOF block)"; }
maxlen=$(samtools view -H --no-PG -- "$bam" 2> "$err" | awk -F'\t' '
  $1 == "@SQ" { for (i = 2; i <= NF; i++) if ($i ~ /^LN:[0-9]+$/ && substr($i, 4) + 0 > m) m = substr($i, 4) + 0 }
  END { printf "%.0f\n", m + 0 }') || { cat "$err" >&2; die 1 "cannot read the BAM header"; }
if [ "${#maxlen}" -gt 15 ] || [ "$maxlen" -gt 536870912 ]; then kind=csi; else kind=bai; fi

rm -f -- "$bam.bai" "$bam.csi"
trap '[ "$ok" = 1 ] || rm -f -- "$bam.bai" "$bam.csi"' EXIT
if [ "$kind" = csi ]; then
  samtools index -@ "${THREADS:-1}" -c -- "$bam" 2> "$err" || rc=$?
else
  samtools index -@ "${THREADS:-1}" -b -- "$bam" 2> "$err" || rc=$?
fi
if [ "${rc:-0}" != 0 ] || [ -s "$err" ]; then
  head -c 4000 "$err" >&2
  if grep -q -e 'Unsorted positions' -e 'NO_COOR reads not in a single block' -e 'blocks not continuous' "$err"; then
    die 4 "BAM is not coordinate-sorted (sort it with bam_sort.sh first)"
  fi
  die 1 "samtools index failed (corrupt or truncated BAM?)"
fi
[ -s "$bam.$kind" ] || die 1 "samtools index wrote no $kind file"
ok=1
echo "$kind"
