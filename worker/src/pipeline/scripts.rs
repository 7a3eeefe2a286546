//! The stage scripts, embedded at build time.

pub(crate) const BAM_SORT: &str = include_str!("../../pipelines/bam_sort.sh");
pub(crate) const BAM_INDEX: &str = include_str!("../../pipelines/bam_index.sh");
pub(crate) const VALIDATE_BAM: &str = include_str!("../../pipelines/validate_bam.sh");
pub(crate) const VCF_CLEAN: &str = include_str!("../../pipelines/vcf_clean_sort_bgzip.sh");
pub(crate) const GFF_CLEAN: &str = include_str!("../../pipelines/gff_clean_sort_bgzip.sh");
pub(crate) const BED_CLEAN: &str = include_str!("../../pipelines/bed_clean_sort_bgzip.sh");
pub(crate) const GTF_TO_GFF3: &str = include_str!("../../pipelines/gtf_to_gff3.sh");
pub(crate) const BIGBED_TO_BED: &str = include_str!("../../pipelines/bigbed_to_bed.sh");
pub(crate) const TABIX_INDEX: &str = include_str!("../../pipelines/tabix_index.sh");
pub(crate) const STATS_FROM_BGZF: &str = include_str!("../../pipelines/stats_from_bgzf.sh");
