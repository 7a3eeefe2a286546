#!/usr/bin/env bash
# shellcheck disable=SC2015  # "[ a ] && [ b ] || die ..." is intended
# htsprep stage: split VCF header/body, sort the body, BGZF-compress header + body.
#
# Usage:  vcf_clean_sort_bgzip.sh IN OUT_VCF_GZ STATS COUNTS
#   IN          VCF; plain, gzip or BGZF (decompressed with gzip -cdf). Header-only is valid.
#   OUT_VCF_GZ  written: BGZF VCF, header first, body sorted by (CHROM, POS numeric).
#   STATS       written: "records=N", "header_lines=H", "max_end=M"
#               (M = largest POS+len(REF)-1 or INFO END=, the end tabix indexes).
#   COUNTS      written: one line per sequence name, "NAME<TAB>records" (validation compares
#               them with the index).
# Checks: first header line is ##fileformat=VCF..., a #CHROM line exists, no header line
#   after data, data rows have >= 8 tab-separated columns and an integer POS.
#   CRLF -> LF; blank lines dropped.
# Env:    SORT_MEM (sort -S, e.g. 256M), TMPDIR (existing per-job dir), THREADS (sort --parallel
#         and compression threads; default 1), HTSPREP_WORKER (the htsprep-worker binary: its
#         clean applies the rules above and counts the records, worker/src/clean.rs; its
#         bgzip-tabix compresses and writes OUT.tbi in the same pass, unless a record lies past
#         a TBI's reach). LC_ALL=C is forced.
# Exit:   0 ok; 1 bad input (reason on stderr); 2 usage/environment; 3 tool/system failure.
# Outputs are removed on failure.
set -eu
set -o pipefail
export LC_ALL=C
die() { c=$1; shift; printf '%s: %s\n' "$0" "$*" >&2; exit "$c"; }

[ "$#" -eq 4 ] || die 2 "usage: $0 IN OUT_VCF_GZ STATS COUNTS (got $# arguments)"
[ -n "${TMPDIR:-}" ] && [ -d "$TMPDIR" ] && [ -w "$TMPDIR" ] || die 2 "TMPDIR is unset or not a writable directory"
case "${SORT_MEM:-}" in ''|*[!0-9KMGTkmgtb%]*) die 2 "SORT_MEM is unset or invalid (e.g. 256M)";; esac
[ -x "${HTSPREP_WORKER:-}" ] || die 2 "HTSPREP_WORKER is not the htsprep-worker binary"
[ -f "$1" ] && [ -r "$1" ] || die 1 "input file is missing or unreadable"

gzerr="$TMPDIR/vcf_clean_sort_bgzip.gzip.stderr"
in=$1 out=$2 stats=$3 counts=$4 ok=0
hdr="$TMPDIR/vcf_clean_sort_bgzip.header"
: > "$hdr"
trap '[ "$ok" = 1 ] || rm -f -- "$out" "$out.tbi" "$stats" "$counts"; rm -f -- "$hdr"' EXIT

# Header lines go to $hdr, body lines to stdout -> sort. The header is re-inserted after the
# sort: sort emits its first line only after the cleaning step has exited, having written $hdr.
# No grep: `grep -v '^#'` exits 1 on a header-only VCF and breaks pipefail.
set +e
gzip -cdf < "$in" 2> "$gzerr" \
| "$HTSPREP_WORKER" clean vcf --header "$hdr" --stats "$stats" --counts "$counts" \
| sort -t $'\t' -k1,1 -k2,2n -S "$SORT_MEM" -T "$TMPDIR" --parallel="${THREADS:-1}" \
| "$HTSPREP_WORKER" bgzip-tabix vcf --header "$hdr" --threads "${THREADS:-1}" -- "$out"
st=("${PIPESTATUS[@]}")
set -e
# If the caller ignores SIGPIPE (inherited), gzip fails with EPIPE instead of dying of SIGPIPE.
[ "${st[0]}" != 0 ] && grep -q 'Broken pipe' "$gzerr" && st[0]=141

# Root cause = the first command that failed on its own: 141 means killed by SIGPIPE because a
# later command died first; gzip status 2 is only a warning (e.g. trailing zero padding).
root() { i=0; for s in "${st[@]}"; do
  if [ "$s" != 0 ] && [ "$s" != 141 ] && ! { [ "$i" = 0 ] && [ "$s" = 2 ]; }; then echo "$i"; return; fi
  i=$((i + 1)); done
  for s in "${st[@]}"; do [ "$s" = 0 ] || { echo x; return; }; done; echo ok; }
case "$(root)" in
  ok) ;;
  0) cat "$gzerr" >&2; die 1 "could not decompress input (corrupt or truncated gzip/BGZF?)";;
  1) [ "${st[1]}" = 1 ] && die 1 "input is not a valid VCF (details above)"
     die 3 "cleaning step failed (status ${st[1]})";;
  2) die 3 "sort failed (status ${st[2]}; TMPDIR full or SORT_MEM too large?)";;
  3) [ "${st[3]}" = 1 ] && die 1 "input could not be indexed (details above)"
     die 3 "compression failed (status ${st[3]}; output disk full?)";;
  *) die 3 "pipeline interrupted (statuses ${st[*]})";;
esac
[ -s "$stats" ] && [ -f "$counts" ] || die 3 "stats or counts file was not written"
ok=1
