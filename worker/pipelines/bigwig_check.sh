#!/usr/bin/env bash
# htsprep stage: sanity-check a bigWig before it is passed through unchanged.
# bigWig needs no processing (it is served as uploaded); this only rejects non-bigWig uploads.
#
# Usage:  bigwig_check.sh IN_BW
#   IN_BW  bigWig file. Nothing is written.
# Checks: `bigwiginfo` reads the header, and (little-endian files) every section offset in the
#   header (chrom tree, data, index, each zoom level's data and index) lies inside the file,
#   which catches truncated uploads without decoding the data. Corruption inside the data
#   blocks is not detected (that would need a full `bigwigtobedgraph` decode).
# Stdout: the `bigwiginfo` summary (version, zoom levels, chromosome count, ...).
# Env:    TMPDIR (existing per-job dir).
# Exit:   0 readable bigWig header; 1 not a bigWig (reason on stderr); 2 usage/environment.
set -eu
set -o pipefail
export LC_ALL=C
die() { c=$1; shift; printf '%s: %s\n' "$0" "$*" >&2; exit "$c"; }

[ "$#" -eq 1 ] || die 2 "usage: $0 IN_BW (got $# arguments)"
[ -n "${TMPDIR:-}" ] && [ -d "$TMPDIR" ] && [ -w "$TMPDIR" ] || die 2 "TMPDIR is unset or not a writable directory"
[ -f "$1" ] && [ -r "$1" ] || die 1 "input file is missing or unreadable"
command -v bigwiginfo > /dev/null || die 2 "bigwiginfo (cargo install bigtools) is not on PATH"

info="$TMPDIR/bigwig_check.info"
err="$TMPDIR/bigwig_check.stderr"
# bigwiginfo panics on a broken pipe: write to a file, never to `| head`.
if ! bigwiginfo -- "$1" > "$info" 2> "$err"; then
  head -c 2000 "$err" >&2
  die 1 "not a valid bigWig (bigwiginfo failed)"
fi
size=$(wc -c < "$1")
magic=$(od -An -t x4 -N4 < "$1" | tr -d ' \n')
if [ "$magic" = 888ffc26 ]; then   # little-endian file on this little-endian host
  zooms=$(od -An -t u2 -j6 -N2 < "$1" | tr -d ' \n')
  case "$zooms" in ''|*[!0-9]*) die 1 "unreadable bigWig header";; esac
  offsets=$(od -An -t u8 -j8 -N24 < "$1")
  i=0
  while [ "$i" -lt "$zooms" ]; do
    offsets="$offsets $(od -An -t u8 -j $((64 + 24 * i + 8)) -N16 < "$1")"
    i=$((i + 1))
  done
  for o in $offsets; do
    [ "$o" -lt "$size" ] || die 1 "truncated bigWig: header points to byte $o but the file has $size bytes"
  done
fi
cat "$info"
