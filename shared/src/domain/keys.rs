//! Pure, content-addressed keys. A new upstream md5 or a processor version bump yields new keys,
//! so stale artifacts are never served and nothing needs purging.

use super::{ArtifactKind, FileRecord, Ident, Md5, Processor};

/// The key of one workflow: `{dcc}/{local_id}/{md5}/v{pipeline_version}`. At most one active job
/// exists per workflow key.
pub fn workflow_key(file: &FileRecord) -> String {
    let processor = file.format.processor();
    format!(
        "{}/{}/{}/v{}",
        file.dcc,
        file.local_id,
        file.md5,
        processor.version()
    )
}

/// The artifact store key of one artifact:
/// `{dcc}/{local_id}/{kind}/{processor}/{md5}-v{version}`.
pub fn cache_key(
    dcc: &Ident,
    local_id: &Ident,
    kind: ArtifactKind,
    processor: Processor,
    md5: &Md5,
) -> String {
    format!(
        "{dcc}/{local_id}/{}/{}/{md5}-v{}",
        kind.name(),
        processor.name(),
        processor.version()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccessUrl, Format};

    fn record(md5: &str, format: Format) -> FileRecord {
        FileRecord {
            dcc: Ident::parse("encode").unwrap(),
            local_id: Ident::parse("ENCFF001").unwrap(),
            md5: Md5::parse(md5).unwrap(),
            size: 1,
            format,
            access_url: AccessUrl::parse("file:///x").unwrap(),
            sidecars: Default::default(),
        }
    }

    const A: &str = "0123456789abcdef0123456789abcdef";
    const B: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn workflow_key_is_content_addressed() {
        assert_eq!(
            workflow_key(&record(A, Format::Bam)),
            format!("encode/ENCFF001/{A}/v1")
        );
        assert_ne!(
            workflow_key(&record(A, Format::Bam)),
            workflow_key(&record(B, Format::Bam))
        );
    }

    #[test]
    fn cache_key_names_kind_processor_md5_and_version() {
        let r = record(A, Format::Vcf);
        let key = cache_key(
            &r.dcc,
            &r.local_id,
            ArtifactKind::Index,
            Processor::TabixVcf,
            &r.md5,
        );
        assert_eq!(key, format!("encode/ENCFF001/index/tabix-vcf/{A}-v1"));
        let data = cache_key(
            &r.dcc,
            &r.local_id,
            ArtifactKind::Data,
            Processor::TabixVcf,
            &r.md5,
        );
        assert_ne!(key, data);
        let other = cache_key(
            &r.dcc,
            &r.local_id,
            ArtifactKind::Data,
            Processor::TabixVcf,
            &Md5::parse(B).unwrap(),
        );
        assert_ne!(data, other);
    }

    #[test]
    fn keys_are_deterministic() {
        let r = record(A, Format::Gtf);
        assert_eq!(workflow_key(&r), workflow_key(&r.clone()));
    }
}
