# Runs real stage scripts on files from testdata/ the way the worker runs them (bash -o pipefail
# -c SCRIPT STAGE ARGS, with only these variables) and prints what they produced. Run inside the
# worker image and on the host with the same arguments; the two outputs must agree.
# Usage: bash stages.sh PIPELINES_DIR TESTDATA_DIR WORK_DIR [WORKER_BINARY]
# (WORKER_BINARY: the htsprep-worker whose tools the stages run; default: the one on PATH)
set -u
P=$1 IN=$2 J=$3 W=${4:-$(command -v htsprep-worker)}
stage() {
  s=$1; shift
  env -i PATH="$PATH" LC_ALL=C SORT_MEM=64M SAMTOOLS_SORT_MEM=64M THREADS=2 TMPDIR="$J" HTSPREP_WORKER="$W" \
    bash -o pipefail -c "$(cat "$P/$s.sh")" "$s" "$@"
  echo "[$s rc=$?]"
}
# bigBed → BED → cleaned, sorted BGZF + the TBI written in the same pass (as the worker runs it)
stage bigbed_to_bed "$IN/pybigwig_test.bigBed" "$J/bb.bed"
stage bed_clean_sort_bgzip "$J/bb.bed" "$J/bb.bed.gz" "$J/bb.stats" "$J/bb.counts"
echo "index written while compressing: $([ -s "$J/bb.bed.gz.tbi" ] && echo yes || echo no)"
cat "$J/bb.stats"; sort "$J/bb.counts"
echo "contigs: $(tabix -l "$J/bb.bed.gz" | tr '\n' ' ')"
# a BED with a track line
stage bed_clean_sort_bgzip "$IN/ctcf_trackline.bed" "$J/ctcf.bed.gz" "$J/ctcf.stats" "$J/ctcf.counts"
stage tabix_index bed "$J/ctcf.bed.gz" "$J/ctcf.stats"
echo "chr2L:1-1000000: $(tabix "$J/ctcf.bed.gz" chr2L:1-1000000 | wc -l) records"
echo "records: $(zcat "$J/ctcf.bed.gz" | md5sum)"
# a sorted BAM, indexed
cp "$IN/gstt1_sample.bam" "$J/g.bam"
stage bam_index "$J/g.bam"
echo "chr22: $(samtools view -c "$J/g.bam" chr22) reads"
