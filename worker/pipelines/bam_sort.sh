#!/usr/bin/env bash
# shellcheck disable=SC2015  # "[ a ] && [ b ] || die ..." is intended
# htsprep stage: coordinate-sort SAM/BAM into BAM (then run bam_index.sh on OUT).
#
# Usage:  bam_sort.sh IN OUT_BAM
#   IN       SAM (plain or gzip) or BAM, any order.
#   OUT_BAM  written: coordinate-sorted BAM (no @PG line added).
# Memory: SAMTOOLS_SORT_MEM is the whole budget: samtools sort -m is per thread, so each of the
#   THREADS threads (default 1; fewer if each would get < 1M) gets its share; temporary files
#   "$TMPDIR/bam_sort.NNNN.bam" (removed at the end in every case).
# Env:    SAMTOOLS_SORT_MEM (e.g. 256M, >= 1M), TMPDIR (existing per-job dir), THREADS.
# Exit:   0 ok; 1 input unreadable/corrupt/truncated (samtools messages on stderr);
#         2 usage/environment. Output is removed on failure.
set -eu
set -o pipefail
export LC_ALL=C
die() { c=$1; shift; printf '%s: %s\n' "$0" "$*" >&2; exit "$c"; }

[ "$#" -eq 2 ] || die 2 "usage: $0 IN OUT_BAM (got $# arguments)"
[ -n "${TMPDIR:-}" ] && [ -d "$TMPDIR" ] && [ -w "$TMPDIR" ] || die 2 "TMPDIR is unset or not a writable directory"
[ -f "$1" ] && [ -r "$1" ] || die 1 "input file is missing or unreadable"
mem=${SAMTOOLS_SORT_MEM:-}
case "$mem" in
  [1-9]*[MmGg]|[1-9]*[Kk]) ;;
  *) die 2 "SAMTOOLS_SORT_MEM is unset or invalid (e.g. 256M; must be >= 1M)";;
esac
case "${mem%?}" in *[!0-9]*) die 2 "SAMTOOLS_SORT_MEM is invalid (e.g. 256M)";; esac
case "$mem" in [0-9]*[Kk]) [ "${mem%?}" -ge 1024 ] || die 2 "SAMTOOLS_SORT_MEM must be >= 1M";; esac

case "$mem" in
  *[Kk]) kb=${mem%?};;
  *[Mm]) kb=$(( ${mem%?} * 1024 ));;
  *) kb=$(( ${mem%?} * 1048576 ));;
esac
threads=${THREADS:-1}
case "$threads" in ''|*[!0-9]*|0) die 2 "THREADS is invalid (a positive integer)";; esac
while [ "$threads" -gt 1 ] && [ $(( kb / threads )) -lt 1024 ]; do threads=$(( threads - 1 )); done
per_thread="$(( kb / threads ))K"

in=$1 out=$2 ok=0
err="$TMPDIR/bam_sort.stderr"
trap '[ "$ok" = 1 ] || rm -f -- "$out"; rm -f -- "$TMPDIR"/bam_sort.[0-9]*.bam' EXIT

if ! samtools sort -@ "$threads" -m "$per_thread" -T "$TMPDIR/bam_sort" -O bam --no-PG -o "$out" -- "$in" 2> "$err"; then
  head -c 4000 "$err" >&2
  die 1 "samtools sort failed: input is not a valid SAM/BAM, or is truncated/corrupt (or TMPDIR is full)"
fi
samtools quickcheck -- "$out" 2> "$err" || { cat "$err" >&2; die 1 "sorted BAM failed samtools quickcheck"; }
ok=1
