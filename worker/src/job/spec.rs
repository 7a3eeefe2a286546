//! What a worker is asked to do, and what it reports back, in domain terms.

use std::collections::BTreeMap;
use std::time::Duration;

use htsprep_shared::artifacts::ArtifactKey;
use htsprep_shared::domain::{
    AccessUrl, ArtifactKind, Format, Ident, JobFailure, JobId, Lease, Md5, Processor,
};

/// Resource limits for one job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caps {
    /// `sort -S`, e.g. `256M`.
    pub sort_mem: String,
    /// `samtools sort -m` (per thread; at least 1M).
    pub samtools_sort_mem: String,
    /// The job is killed after this long.
    pub duration_cap: Duration,
}

impl Caps {
    /// Memory in bytes as a `sort`/`samtools` size argument (whole MiB, at least 1M).
    pub fn mem_arg(bytes: u64) -> String {
        format!("{}M", (bytes / (1024 * 1024)).max(1))
    }
}

#[derive(Clone, Debug)]
pub struct JobSpec {
    pub job_id: JobId,
    pub lease: Lease,
    pub attempt: u32,
    pub dcc: Ident,
    pub local_id: Ident,
    pub source_url: AccessUrl,
    pub md5: Md5,
    pub size: u64,
    pub format: Format,
    pub processor: Processor,
    pub artifacts: BTreeMap<ArtifactKind, ArtifactKey>,
    pub caps: Caps,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid job request: {field}: {reason}")]
pub struct SpecError {
    pub field: &'static str,
    pub reason: String,
}

impl JobSpec {
    /// Checks that the request asks for what its processor makes.
    pub fn check(&self) -> Result<(), SpecError> {
        if !self.processor.runs_job() {
            return Err(SpecError {
                field: "processor",
                reason: format!("{} runs no job", self.processor),
            });
        }
        if self.format.processor() != self.processor {
            return Err(SpecError {
                field: "processor",
                reason: format!(
                    "format {} is prepared by {}, not {}",
                    self.format,
                    self.format.processor(),
                    self.processor
                ),
            });
        }
        for kind in [ArtifactKind::Data, ArtifactKind::Index] {
            if !self.artifacts.contains_key(&kind) {
                return Err(SpecError {
                    field: "artifacts",
                    reason: format!("no key for the {} artifact", kind.name()),
                });
            }
        }
        Ok(())
    }
}

/// What a running job reports to whoever dispatched it.
#[derive(Clone, Debug, PartialEq)]
pub enum JobUpdate {
    Accepted,
    StageStarted {
        stage: String,
        command: String,
    },
    StageFinished {
        stage: String,
        exit_status: i32,
        duration_ms: u64,
        skipped: bool,
        stderr_tail: String,
    },
    Progress {
        stage: String,
        fraction: Option<f64>,
        message: String,
    },
    Completed {
        artifacts: BTreeMap<ArtifactKind, ArtifactKey>,
    },
    Failed(JobFailure),
}
