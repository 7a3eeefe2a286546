#!/usr/bin/env bash
# shellcheck disable=SC2015  # "[ a ] && [ b ] || die ..." is intended
# htsprep stage: recompute the STATS of an already published, sorted BGZF artifact, so a resumed
# job can index and validate it without the source (the artifact was validated when published).
#
# Usage:  stats_from_bgzf.sh PRESET IN_GZ STATS COUNTS
#   PRESET  one of: vcf | gff | bed (decides which column holds the end coordinate)
#   IN_GZ   BGZF artifact written by a *_clean_sort_bgzip.sh stage
#   STATS   written: "records=N", "header_lines=H", "max_end=M", as the clean stages write it
#   COUNTS  written: "NAME<TAB>records" per sequence name, as the clean stages write it
# Env:    TMPDIR (existing per-job dir). LC_ALL=C is forced.
# Exit:   0 ok; 1 the artifact is unreadable; 2 usage/environment.
set -eu
set -o pipefail
export LC_ALL=C
die() { c=$1; shift; printf '%s: %s\n' "$0" "$*" >&2; exit "$c"; }

[ "$#" -eq 4 ] || die 2 "usage: $0 vcf|gff|bed IN_GZ STATS COUNTS (got $# arguments)"
case "$1" in vcf|gff|bed) ;; *) die 2 "unknown preset (expected vcf, gff or bed)";; esac
[ -n "${TMPDIR:-}" ] && [ -d "$TMPDIR" ] && [ -w "$TMPDIR" ] || die 2 "TMPDIR is unset or not a writable directory"
[ -f "$2" ] && [ -r "$2" ] || die 1 "artifact is missing or unreadable"

preset=$1 gz=$2 stats=$3 counts=$4 ok=0
trap '[ "$ok" = 1 ] || rm -f -- "$stats" "$counts"' EXIT

bgzip -cd < "$gz" \
| PRESET="$preset" COUNTS="$counts" awk '
  BEGIN { FS = "\t"; n = 0; h = 0; maxend = 0 }
  /^#/ { h++; next }
  {
    p = ENVIRON["PRESET"]
    if (p == "bed") e = $3 + 0
    else if (p == "gff") e = $5 + 0
    else {
      e = $2 + length($4) - 1
      if (index($8, "END=") && match($8, /(^|;)END=[0-9]+(;|$)/)) {
        v = substr($8, RSTART, RLENGTH); gsub(/[^0-9]/, "", v); if (v + 0 > e) e = v + 0
      }
    }
    if (e > maxend) maxend = e
    n++
    per[$1]++
  }
  END {
    printf "records=%.0f\nheader_lines=%.0f\nmax_end=%.0f\n", n, h, maxend
    printf "" > ENVIRON["COUNTS"]
    for (k in per) printf "%s\t%.0f\n", k, per[k] > ENVIRON["COUNTS"]
    close(ENVIRON["COUNTS"])
  }' > "$stats" \
  || die 1 "could not read the artifact (corrupt BGZF?)"
ok=1
