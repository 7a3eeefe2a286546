//! Wire types to domain types and back: the worker's one place for it.

use std::collections::BTreeMap;
use std::time::Duration;

use htsprep_proto::v1 as pb;
use htsprep_shared::artifacts::ArtifactKey;
use htsprep_shared::domain::{
    AccessUrl, ArtifactKind, Format, Ident, JobId, Lease, Md5, Processor,
};

use crate::job::{Caps, JobSpec, JobUpdate, SpecError};

fn bad(field: &'static str, reason: impl ToString) -> SpecError {
    SpecError {
        field,
        reason: reason.to_string(),
    }
}

/// The smallest memory cap the pipelines accept (samtools needs at least 1M per thread).
const MIN_MEM: u64 = 1 << 20;

pub fn spec_from_proto(req: pb::RunJobRequest) -> Result<JobSpec, SpecError> {
    let job_id = JobId::parse(&req.job_id).ok_or_else(|| bad("job_id", "not a job id"))?;
    if req.lease.is_empty() {
        return Err(bad("lease", "missing"));
    }
    let source = req.source.ok_or_else(|| bad("source", "missing"))?;
    let format = Format::parse(&source.format).map_err(|e| bad("source.format", e))?;
    let processor = Processor::parse(&req.processor).ok_or_else(|| {
        bad(
            "processor",
            format!("unknown processor {:?}", req.processor),
        )
    })?;
    if processor.version() != req.processor_version {
        return Err(bad(
            "processor_version",
            format!(
                "this worker runs {} v{}, not v{}",
                processor,
                processor.version(),
                req.processor_version
            ),
        ));
    }
    let mut artifacts = BTreeMap::new();
    for a in req.artifacts {
        let kind = match a.kind.as_str() {
            "data" => ArtifactKind::Data,
            "index" => ArtifactKind::Index,
            other => return Err(bad("artifacts.kind", format!("unknown kind {other:?}"))),
        };
        artifacts.insert(
            kind,
            ArtifactKey::parse(&a.key).map_err(|e| bad("artifacts.key", e))?,
        );
    }
    let caps = req.caps.unwrap_or_default();
    if caps.sort_memory_bytes < MIN_MEM || caps.samtools_sort_memory_bytes < MIN_MEM {
        return Err(bad("caps", "sort memory caps must be at least 1 MiB"));
    }
    if caps.duration_cap_seconds == 0 {
        return Err(bad("caps.duration_cap_seconds", "must be at least 1"));
    }
    let spec = JobSpec {
        job_id,
        lease: Lease::from_string(req.lease),
        attempt: req.attempt,
        dcc: Ident::parse(&source.dcc).map_err(|e| bad("source.dcc", e))?,
        local_id: Ident::parse(&source.local_id).map_err(|e| bad("source.local_id", e))?,
        source_url: AccessUrl::parse(&source.url).map_err(|e| bad("source.url", e))?,
        md5: Md5::parse(&source.expected_md5).map_err(|e| bad("source.expected_md5", e))?,
        size: source.expected_size,
        format,
        processor,
        artifacts,
        caps: Caps {
            sort_mem: Caps::mem_arg(caps.sort_memory_bytes),
            samtools_sort_mem: Caps::mem_arg(caps.samtools_sort_memory_bytes),
            duration_cap: Duration::from_secs(caps.duration_cap_seconds),
        },
    };
    spec.check()?;
    Ok(spec)
}

pub fn update_to_proto(u: JobUpdate, worker_id: &str) -> pb::JobUpdate {
    use pb::job_update::Update;
    let update = match u {
        JobUpdate::Accepted => Update::Accepted(pb::Accepted {
            worker_id: worker_id.to_owned(),
        }),
        JobUpdate::StageStarted { stage, command } => {
            Update::StageStarted(pb::StageStarted { stage, command })
        }
        JobUpdate::StageFinished {
            stage,
            exit_status,
            duration_ms,
            skipped,
            stderr_tail,
        } => Update::StageFinished(pb::StageFinished {
            stage,
            exit_status,
            duration_ms,
            skipped,
            stderr_tail,
        }),
        JobUpdate::Progress {
            stage,
            fraction,
            message,
        } => Update::Progress(pb::Progress {
            stage,
            fraction: fraction.unwrap_or(-1.0),
            message,
        }),
        JobUpdate::Completed { artifacts } => Update::Completed(pb::Completed {
            artifacts: artifacts
                .into_iter()
                .map(|(k, key)| pb::ArtifactTarget {
                    kind: k.name().to_owned(),
                    key: key.to_string(),
                })
                .collect(),
        }),
        JobUpdate::Failed(f) => Update::Failed(pb::Failed {
            message: f.message,
            stage: f.stage.unwrap_or_default(),
            command: f.command.unwrap_or_default(),
            exit_status: f.exit_status.unwrap_or_default(),
            stderr_tail: f.stderr_tail.unwrap_or_default(),
            retryable: f.retryable,
        }),
    };
    pb::JobUpdate {
        update: Some(update),
    }
}
