//! Domain to wire: the RunJob request for a job (the API's one place for it).

use htsprep_proto::v1 as pb;
use htsprep_shared::domain::{ArtifactKind, FileRecord, JobRecord, cache_key};

use crate::config::JobSettings;

pub(crate) fn run_job_request(
    file: &FileRecord,
    job: &JobRecord,
    s: &JobSettings,
) -> pb::RunJobRequest {
    let processor = file.format.processor();
    pb::RunJobRequest {
        job_id: job.job_id.to_string(),
        lease: job.lease.as_str().to_owned(),
        attempt: job.attempt,
        source: Some(pb::Source {
            dcc: file.dcc.to_string(),
            local_id: file.local_id.to_string(),
            url: file.access_url.to_string(),
            expected_md5: file.md5.to_string(),
            expected_size: file.size,
            format: file.format.name().to_owned(),
        }),
        processor: processor.name().to_owned(),
        processor_version: processor.version(),
        artifacts: [ArtifactKind::Data, ArtifactKind::Index]
            .into_iter()
            .map(|kind| pb::ArtifactTarget {
                kind: kind.name().to_owned(),
                key: cache_key(&file.dcc, &file.local_id, kind, processor, &file.md5),
            })
            .collect(),
        caps: Some(pb::ResourceCaps {
            sort_memory_bytes: s.sort_memory,
            samtools_sort_memory_bytes: s.samtools_sort_memory,
            threads: 1,
            duration_cap_seconds: s.duration_cap.as_secs(),
        }),
    }
}
