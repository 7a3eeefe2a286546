use crate::domain::{JobId, JobStatus};
use crate::error::Cause;

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
    #[error("job store unavailable: {context}")]
    Unavailable {
        context: String,
        #[source]
        source: Option<Cause>,
    },
    #[error("job store document for {id} is unreadable")]
    Corrupt {
        id: String,
        #[source]
        source: Cause,
    },
    #[error("job store failed: {context}")]
    Backend {
        context: String,
        #[source]
        source: Option<Cause>,
    },
}

crate::store_error_constructors!(JobStoreError);
