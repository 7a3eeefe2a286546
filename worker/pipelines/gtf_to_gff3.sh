#!/usr/bin/env bash
# shellcheck disable=SC2015  # "[ a ] && [ b ] || die ..." is intended
# htsprep stage: convert GTF to GFF3 with gffread (then run gff_clean_sort_bgzip.sh on OUT).
#
# Usage:  gtf_to_gff3.sh IN OUT_GFF3
#   IN        GTF; plain, gzip or BGZF (decompressed with gzip -cdf).
#   OUT_GFF3  written: plain-text GFF3 from `gffread --keep-genes -F` (unsorted).
# Before gffread: rows must have 9 tab-separated columns; CRLF -> LF; and an empty `transcript_id "";` attribute (NCBI gene rows) is
#   removed from column 9; gffread 0.12.7 aborts on it ("no valid ID found for GFF record"),
#   while without it the gene row is kept as a gene (--keep-genes; -F keeps its attributes).
# gffread reads stdin (never the file name: it switches to BED parsing for names *.bed*).
# gffread keeps genes, transcripts, exons and CDS; start/stop codons and UTR rows are absorbed,
#   so the record count of OUT differs from the GTF row count.
# Env:    TMPDIR (existing per-job dir). LC_ALL=C is forced.
# Exit:   0 ok; 1 bad input (reason on stderr); 2 usage/environment; 3 tool/system failure.
set -eu
set -o pipefail
export LC_ALL=C
die() { c=$1; shift; printf '%s: %s\n' "$0" "$*" >&2; exit "$c"; }

[ "$#" -eq 2 ] || die 2 "usage: $0 IN OUT_GFF3 (got $# arguments)"
[ -n "${TMPDIR:-}" ] && [ -d "$TMPDIR" ] && [ -w "$TMPDIR" ] || die 2 "TMPDIR is unset or not a writable directory"
[ -f "$1" ] && [ -r "$1" ] || die 1 "input file is missing or unreadable"
command -v gffread > /dev/null || die 2 "gffread is not installed"

gzerr="$TMPDIR/gtf_to_gff3.gzip.stderr"
in=$1 out=$2 ok=0
err="$TMPDIR/gtf_to_gff3.stderr"
cnt="$TMPDIR/gtf_to_gff3.count"
trap '[ "$ok" = 1 ] || rm -f -- "$out"' EXIT

set +e
gzip -cdf < "$in" 2> "$gzerr" \
| CNT="$cnt" awk '
  BEGIN { FS = "\t"; OFS = "\t"; n = 0 }
  { sub(/\r$/, "") }
  function bad(msg,   s) {
    s = substr($0, 1, 80); gsub(/[^ -~\t]/, "?", s); gsub(/\t/, "<TAB>", s)
    printf "line %d: %s: \"%s\"\n", FNR, msg, s > "/dev/stderr"; failed = 1; exit 3
  }
  /^#/ || /^[ \t]*$/ { print; next }
  {
    if (NF != 9) bad("expected 9 tab-separated GTF columns, found " NF)
    n++
    if ($9 ~ /transcript_id ""/) {
      gsub(/transcript_id "";? */, "", $9); sub(/; *$/, ";", $9)
    }
  }
  { print }
  END { if (failed) exit 3; print n > ENVIRON["CNT"]; close(ENVIRON["CNT"]) }' \
| gffread --keep-genes -F -o "$out" 2> "$err"
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
  1) [ "${st[1]}" = 3 ] && die 1 "input is not valid GTF (details above)"
     die 3 "awk pre-filter failed (status ${st[1]})";;
  2) head -c 4000 "$err" >&2
     die 1 "gffread could not convert the GTF (status ${st[2]}; messages above)";;
  *) die 3 "pipeline interrupted (statuses ${st[*]})";;
esac
[ -f "$out" ] || die 3 "gffread wrote no output"
rows=$(cat "$cnt")
feats=$(awk -F'\t' '!/^#/ && NF >= 8 { n++ } END { print n + 0 }' "$out")
if [ "$rows" -gt 0 ] && [ "$feats" = 0 ]; then
  head -c 4000 "$err" >&2
  die 1 "gffread produced no features from $rows GTF rows (no transcript_id/gene_id attributes? not GTF?)"
fi
ok=1
