#!/usr/bin/env bash
# htsprep stage: decide whether a BAM (or SAM) is really coordinate-sorted.
# The @HD SO: tag is NOT trusted (real files carry SO:sorted, SO:unknown, or lie).
#
# Usage:  bam_check_sorted.sh IN
#   IN  BAM or SAM (SAM may be plain or gzip).
# Stdout: one word: "sorted"   -> run bam_index.sh on IN directly;
#                   "unsorted" -> run bam_sort.sh, then bam_index.sh on its output.
# "sorted" means what `samtools index` requires: records grouped by reference in @SQ order,
#   POS non-decreasing within a reference, all unplaced records (RNAME "*") at the end.
# The whole file is decoded (`samtools view`), which also proves it is not truncated/corrupt.
# Exit:   0 decided (see stdout); 1 input unreadable/corrupt/truncated (reason on stderr);
#         2 usage/environment.
set -eu
set -o pipefail
export LC_ALL=C
die() { c=$1; shift; printf '%s: %s\n' "$0" "$*" >&2; exit "$c"; }

[ "$#" -eq 1 ] || die 2 "usage: $0 IN (got $# arguments)"
[ -n "${TMPDIR:-}" ] && [ -d "$TMPDIR" ] && [ -w "$TMPDIR" ] || die 2 "TMPDIR is unset or not a writable directory"
[ -f "$1" ] && [ -r "$1" ] || die 1 "input file is missing or unreadable"

err="$TMPDIR/bam_check_sorted.stderr"
res="$TMPDIR/bam_check_sorted.verdict"
# awk reads to the end even after the verdict is known: exiting early would SIGPIPE samtools
# and make a corrupt tail indistinguishable from an early exit.
set +e
samtools view -h --no-PG -- "$1" 2> "$err" | awk -F'\t' '
  /^@/ {
    if ($1 == "@SQ") for (i = 2; i <= NF; i++) if (substr($i, 1, 3) == "SN:") tid[substr($i, 4)] = nsq++
    next
  }
  why != "" { next }
  {
    r++
    if ($3 == "*") { unplaced = 1; next }
    if (unplaced) { why = "record " r ": placed record after unplaced (RNAME *) records"; next }
    if (!($3 in tid)) { why = "record " r ": reference " $3 " not in @SQ header"; next }
    t = tid[$3]; p = $4 + 0
    if (t < last_t) why = "record " r ": reference " $3 " appears again after a later reference"
    else if (t == last_t && p < last_p) why = "record " r ": position " p " after " last_p " on " $3
    last_t = t; last_p = p
  }
  BEGIN { nsq = 0; r = 0; unplaced = 0; why = ""; last_t = -1; last_p = 0 }
  END { if (why == "") print "sorted"; else { print "unsorted"; print why > "/dev/stderr" } }' > "$res"
st=("${PIPESTATUS[@]}")
set -e
if [ "${st[0]}" != 0 ]; then
  head -c 2000 "$err" >&2
  die 1 "input is not a readable SAM/BAM (corrupt or truncated; samtools status ${st[0]})"
fi
[ "${st[1]}" = 0 ] || die 2 "awk failed (status ${st[1]})"
verdict=$(cat "$res")
case "$verdict" in sorted|unsorted) echo "$verdict";; *) die 2 "no verdict";; esac
