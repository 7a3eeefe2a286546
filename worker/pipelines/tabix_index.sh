#!/usr/bin/env bash
# shellcheck disable=SC2015  # "[ a ] && [ b ] || die ..." is intended
# htsprep stage: tabix-index a sorted BGZF file produced by *_clean_sort_bgzip.sh.
#
# Usage:  tabix_index.sh PRESET IN_GZ STATS
#   PRESET  one of: vcf | gff | bed
#   IN_GZ   sorted BGZF file; the index is written next to it as IN_GZ.tbi or IN_GZ.csi
#   STATS   stats file of the clean stage; its max_end decides the index type:
#           max_end > 2^29 (536870912) -> CSI (tabix -C), else TBI.
# Stdout: one word, "tbi" or "csi" (the index written: IN_GZ.tbi / IN_GZ.csi).
# tabix 1.16 exits 0 on lines it cannot parse, so ANY tabix stderr output is a failure.
# Env:    TMPDIR (existing per-job dir). LC_ALL=C is forced.
# Exit:   0 ok; 1 tabix rejected the data (its messages on stderr); 2 usage/environment.
set -eu
set -o pipefail
export LC_ALL=C
die() { c=$1; shift; printf '%s: %s\n' "$0" "$*" >&2; exit "$c"; }

[ "$#" -eq 3 ] || die 2 "usage: $0 vcf|gff|bed IN_GZ STATS (got $# arguments)"
case "$1" in vcf|gff|bed) ;; *) die 2 "unknown preset (expected vcf, gff or bed)";; esac
[ -n "${TMPDIR:-}" ] && [ -d "$TMPDIR" ] && [ -w "$TMPDIR" ] || die 2 "TMPDIR is unset or not a writable directory"
[ -f "$2" ] || die 2 "BGZF file to index does not exist"
[ -f "$3" ] || die 2 "stats file does not exist"

preset=$1 gz=$2 ok=0
err="$TMPDIR/tabix_index.stderr"
max_end=$(awk -F= '$1 == "max_end" { v = $2 } END { print v }' "$3")
case "$max_end" in ''|*[!0-9]*) die 2 "stats file has no numeric max_end";; esac

# 2^29 is the largest end coordinate a TBI (or BAI) index can hold; guard long strings first.
if [ "${#max_end}" -gt 15 ] || [ "$max_end" -gt 536870912 ]; then kind=csi; else kind=tbi; fi

rm -f -- "$gz.tbi" "$gz.csi"
trap '[ "$ok" = 1 ] || rm -f -- "$gz.tbi" "$gz.csi"' EXIT
set +e
if [ "$kind" = csi ]; then
  tabix -f -C -p "$preset" -- "$gz" 2> "$err"
else
  tabix -f -p "$preset" -- "$gz" 2> "$err"
fi
rc=$?
set -e
if [ "$rc" != 0 ] || [ -s "$err" ]; then
  head -c 4000 "$err" >&2
  die 1 "tabix could not index the file (status $rc; messages above)"
fi
[ -s "$gz.$kind" ] || die 1 "tabix did not write $kind index"
ok=1
echo "$kind"
