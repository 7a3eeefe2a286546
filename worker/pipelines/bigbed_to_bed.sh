#!/usr/bin/env bash
# shellcheck disable=SC2015  # "[ a ] && [ b ] || die ..." is intended
# htsprep stage: convert bigBed to plain BED (then run bed_clean_sort_bgzip.sh on OUT).
#
# Usage:  bigbed_to_bed.sh IN_BB OUT_BED
#   IN_BB    bigBed file.
#   OUT_BED  written: plain BED text, all bigBed fields (bigtools `bigbedtobed`).
# Checks: when `bigbedinfo` reports itemCount > 0, OUT_BED must have exactly that many lines.
# Never pipe bigbedtobed/bigbedinfo into a reader that stops early (`| head`): they panic on
#   a broken pipe. Both write to files here.
# Env:    TMPDIR (existing per-job dir; bigbedtobed puts per-thread temp files there).
# Exit:   0 ok; 1 not a (valid) bigBed (reason on stderr); 2 usage/environment.
# Output is removed on failure.
set -eu
set -o pipefail
export LC_ALL=C
die() { c=$1; shift; printf '%s: %s\n' "$0" "$*" >&2; exit "$c"; }

[ "$#" -eq 2 ] || die 2 "usage: $0 IN_BB OUT_BED (got $# arguments)"
[ -n "${TMPDIR:-}" ] && [ -d "$TMPDIR" ] && [ -w "$TMPDIR" ] || die 2 "TMPDIR is unset or not a writable directory"
[ -f "$1" ] && [ -r "$1" ] || die 1 "input file is missing or unreadable"
command -v bigbedtobed > /dev/null || die 2 "bigbedtobed (cargo install bigtools) is not on PATH"

in=$1 out=$2 ok=0
err="$TMPDIR/bigbed_to_bed.stderr"
info="$TMPDIR/bigbed_to_bed.info"
trap '[ "$ok" = 1 ] || rm -f -- "$out"' EXIT

if ! bigbedtobed -- "$in" "$out" 2> "$err"; then
  head -c 2000 "$err" >&2
  die 1 "bigbedtobed failed: input is not a valid bigBed or is truncated/corrupt"
fi
if bigbedinfo -- "$in" > "$info" 2> "$err"; then
  want=$(awk -F': *' '$1 == "itemCount" { gsub(/,/, "", $2); print $2 }' "$info")
  got=$(awk 'END { print NR }' "$out")
  case "$want" in
    ''|*[!0-9]*|0) ;;
    *) [ "$want" = "$got" ] || die 1 "bigBed header says $want items but $got were extracted (corrupt file?)";;
  esac
fi
ok=1
