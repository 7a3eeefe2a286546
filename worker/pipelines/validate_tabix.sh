#!/usr/bin/env bash
# shellcheck disable=SC2015  # "[ a ] && [ b ] || die ..." is intended
# htsprep validation: a tabix-indexed artifact holds exactly the cleaned records.
#
# Usage:  validate_tabix.sh IN_GZ STATS
#   IN_GZ   BGZF artifact; its index IN_GZ.tbi or IN_GZ.csi must exist.
#   STATS   stats file of the clean stage (records=, header_lines=).
# Checks (all must agree, per contig):
#   a) records in STATS (counted while cleaning)
#   b) non-header lines in a full BGZF decompression (bgzip -cd also checks BGZF integrity)
#   c) lines returned by an index query of every contig listed by `tabix -l`
#   d) header lines from `tabix -H` == header_lines in STATS
# Stdout: "records=N contigs=C header_lines=H index=tbi|csi" on success.
# Env:    TMPDIR (existing per-job dir), THREADS (bgzip -@; default 1). LC_ALL=C is forced.
# Exit:   0 ok; 1 validation failed (reason on stderr); 2 usage/environment.
set -eu
set -o pipefail
export LC_ALL=C
die() { c=$1; shift; printf '%s: %s\n' "$0" "$*" >&2; exit "$c"; }

[ "$#" -eq 2 ] || die 2 "usage: $0 IN_GZ STATS (got $# arguments)"
[ -n "${TMPDIR:-}" ] && [ -d "$TMPDIR" ] && [ -w "$TMPDIR" ] || die 2 "TMPDIR is unset or not a writable directory"
[ -f "$1" ] || die 1 "artifact does not exist"
[ -f "$2" ] || die 2 "stats file does not exist"
gz=$1
if [ -f "$gz.csi" ]; then kind=csi; elif [ -f "$gz.tbi" ]; then kind=tbi; else die 1 "no .tbi or .csi index next to the artifact"; fi

stat_of() { awk -F= -v k="$1" '$1 == k { v = $2 } END { print v }' "$2"; }
want=$(stat_of records "$2"); want_h=$(stat_of header_lines "$2")
case "$want$want_h" in ''|*[!0-9]*) die 2 "stats file lacks numeric records/header_lines";; esac

err="$TMPDIR/validate_tabix.stderr"
contigs="$TMPDIR/validate_tabix.contigs"
by_scan="$TMPDIR/validate_tabix.scan"
by_index="$TMPDIR/validate_tabix.index"

# b) full decompression: per-contig counts of non-header lines
bgzip -@ "${THREADS:-1}" -cd -- "$gz" 2> "$err" | awk -F'\t' '!/^#/ { c[$1]++ } END { for (k in c) print k "\t" c[k] }' | sort > "$by_scan" \
  || { cat "$err" >&2; die 1 "artifact is not readable BGZF"; }

# c) index: list contigs, then query each whole contig ({name} protects names containing ':')
tabix -l -- "$gz" > "$contigs" 2> "$err" || { cat "$err" >&2; die 1 "index cannot be loaded"; }
[ -s "$err" ] && { cat "$err" >&2; die 1 "tabix -l reported problems"; }
awk '{ print "{" $0 "}" }' "$contigs" \
  | xargs -r -d '\n' tabix -- "$gz" 2> "$err" \
  | awk -F'\t' '{ c[$1]++ } END { for (k in c) print k "\t" c[k] }' | sort > "$by_index" \
  || { cat "$err" >&2; die 1 "region queries failed"; }
[ -s "$err" ] && { cat "$err" >&2; die 1 "tabix region queries reported problems"; }

# d) header
got_h=$(tabix -H -- "$gz" 2> "$err" | awk 'END { print NR }')
[ -s "$err" ] && { cat "$err" >&2; die 1 "tabix -H reported problems"; }

n_scan=$(awk -F'\t' '{ s += $2 } END { printf "%.0f\n", s }' "$by_scan")
n_index=$(awk -F'\t' '{ s += $2 } END { printf "%.0f\n", s }' "$by_index")
n_contigs=$(awk 'END { print NR }' "$contigs")

[ "$n_scan" = "$want" ] || die 1 "artifact holds $n_scan records but cleaning produced $want"
if ! cmp -s "$by_scan" "$by_index"; then
  diff "$by_scan" "$by_index" | head -20 >&2
  die 1 "index queries return $n_index records (per-contig counts differ from a full scan with $n_scan; < scan, > index)"
fi
[ "$(awk 'END { print NR }' "$by_scan")" = "$n_contigs" ] || die 1 "tabix -l lists $n_contigs contigs but the data has $(awk 'END { print NR }' "$by_scan")"
[ "$got_h" = "$want_h" ] || die 1 "artifact has $got_h header lines, expected $want_h"
echo "records=$n_index contigs=$n_contigs header_lines=$got_h index=$kind"
