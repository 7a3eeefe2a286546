//! The job store seam: one record per job, at most one active job per workflow key, and every
//! owner write fenced by job id + active status + lease.
//!
//! Backends implement the small [`JobStore`] core; the cold-path operations (claim, mark running,
//! heartbeat, release, ...) are written once in [`JobStoreExt`] on top of it, so every backend
//! follows the same algorithm and the [`conformance`] suite checks them all.

mod change;
mod error;
mod mongo;
mod ops;
mod policy;
mod query;
mod sqlite;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::domain::{JobId, JobRecord, Lease};

pub use change::{JobChange, MAX_EVENTS};
pub use error::JobStoreError;
pub use mongo::MongoJobStore;
pub use ops::{Claim, ClaimOutcome, ClaimRequest, JobStoreExt, PublishedProbe, failure_stands};
pub use policy::JobPolicy;
pub use query::{JobPage, ListQuery, MAX_PAGE, PageCursor};
pub use sqlite::SqliteJobStore;

/// What a writer must present to change a job: the job, and the lease and attempt it was given
/// (each attempt has its own lease).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    pub job_id: JobId,
    pub lease: Lease,
    pub attempt: u32,
}

impl Fence {
    pub fn of(job: &JobRecord) -> Self {
        Self {
            job_id: job.job_id.clone(),
            lease: job.lease.clone(),
            attempt: job.attempt,
        }
    }

    /// Whether `job` is still held by this fence.
    pub fn holds(&self, job: &JobRecord) -> bool {
        job.active && job.lease == self.lease && job.attempt == self.attempt
    }
}

#[async_trait]
pub trait JobStore: Send + Sync + std::fmt::Debug {
    /// The clock every timestamp and staleness decision of this store uses.
    fn clock(&self) -> &dyn Clock;

    /// Inserts a new pending job. Fails with [`JobStoreError::Conflict`] when an active job for
    /// the same workflow key exists: the store's unique index over active jobs is the mutex.
    async fn insert(&self, job: &JobRecord) -> Result<(), JobStoreError>;

    async fn get(&self, job_id: &JobId) -> Result<JobRecord, JobStoreError>;

    /// The active (pending or running) job of a workflow, if any.
    async fn find_active(&self, workflow_key: &str) -> Result<Option<JobRecord>, JobStoreError>;

    /// The workflow's newest job, whatever its status.
    async fn find_latest(&self, workflow_key: &str) -> Result<Option<JobRecord>, JobStoreError>;

    /// An operator's retry of a failed job: its failure no longer stands as the workflow's
    /// answer (it becomes retryable), so the next request prepares the file again. Fails with
    /// [`JobStoreError::WrongStatus`] if the job has not failed.
    async fn request_retry(&self, job_id: &JobId) -> Result<JobRecord, JobStoreError>;

    /// Applies `change` atomically if and only if the job is active and holds `fence.lease`
    /// (and, for [`JobChange::Abandon`], has not been written since its cutoff). Otherwise nothing
    /// changes and the writer is told with [`JobStoreError::LeaseLost`].
    async fn update(&self, fence: &Fence, change: JobChange) -> Result<JobRecord, JobStoreError>;

    /// Jobs newest first, optionally of one status, a page at a time.
    async fn list(&self, query: &ListQuery) -> Result<JobPage, JobStoreError>;

    /// Active jobs whose last write is older than `cutoff`, oldest first.
    async fn find_stale(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<JobRecord>, JobStoreError>;
}
