use crate::domain::{JobId, JobStatus};

#[derive(Clone, Debug, thiserror::Error)]
pub enum JobStoreError {
    #[error("job {job_id} not found")]
    NotFound { job_id: JobId },
    #[error("an active job already exists for workflow {workflow_key}")]
    Conflict { workflow_key: String },
    #[error("job {job_id} is no longer held by this lease (it was reclaimed or has finished)")]
    LeaseLost { job_id: JobId },
    /// The operation does not apply to a job in this status.
    #[error("job {job_id} is {status}: {why}")]
    WrongStatus {
        job_id: JobId,
        status: JobStatus,
        why: &'static str,
    },
    #[error("job store unavailable: {0}")]
    Unavailable(String),
    #[error("job store document for {id} is unreadable: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("job store failed: {0}")]
    Backend(String),
}

impl JobStoreError {
    /// Whether retrying the same call cannot help.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, JobStoreError::Unavailable(_))
    }
}
