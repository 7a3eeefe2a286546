//! The cold-path operations, written once over the [`JobStore`] core.

use std::time::Duration;

use async_trait::async_trait;

use super::{Fence, JobChange, JobStore, JobStoreError};
use crate::domain::{ArtifactKind, EventKind, Ident, JobFailure, JobRecord, Progress, WorkerRef};

/// How many times a claim re-reads after losing a race before giving up.
const CLAIM_ROUNDS: usize = 8;

#[derive(Clone, Debug)]
pub struct ClaimRequest {
    pub workflow_key: String,
    pub dcc: Ident,
    pub local_id: Ident,
    /// An active job not written for this long is reclaimed.
    pub stale_after: Duration,
    /// A reclaimed job that has had this many attempts is failed, and a fresh job takes its place.
    pub max_attempts: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// A new job was inserted; the caller owns it and must get it run.
    Created,
    /// Another caller's active job was found; the caller only follows it.
    Attached,
    /// A stale job was taken over with a new lease; the caller owns it and must get it run.
    Reclaimed,
}

#[derive(Clone, Debug)]
pub struct Claim {
    pub job: JobRecord,
    pub outcome: ClaimOutcome,
}

impl Claim {
    /// Whether the caller now holds the job's lease.
    pub fn owns(&self) -> bool {
        self.outcome != ClaimOutcome::Attached
    }
}

#[async_trait]
pub trait JobStoreExt: JobStore {
    /// Inserts a pending job for the workflow, or attaches to the active one. A stale active job
    /// is reclaimed first (rescheduled, or failed after its last attempt).
    async fn claim(&self, req: &ClaimRequest) -> Result<Claim, JobStoreError> {
        for _ in 0..CLAIM_ROUNDS {
            let now = self.clock().now();
            if let Some(active) = self.find_active(&req.workflow_key).await? {
                let stale_before =
                    now - chrono::Duration::from_std(req.stale_after).unwrap_or_default();
                if active.updated_at >= stale_before {
                    return Ok(Claim {
                        job: active,
                        outcome: ClaimOutcome::Attached,
                    });
                }
                let retry = active.attempt < req.max_attempts;
                let reason = format!(
                    "no heartbeat for {}s (attempt {})",
                    req.stale_after.as_secs(),
                    active.attempt
                );
                match self
                    .update(
                        &Fence::of(&active),
                        JobChange::Abandon {
                            stale_before,
                            reason,
                            retry,
                        },
                    )
                    .await
                {
                    Ok(job) if retry => {
                        return Ok(Claim {
                            job,
                            outcome: ClaimOutcome::Reclaimed,
                        });
                    }
                    // Failed for good: fall through and insert a fresh job in the next round.
                    Ok(_) | Err(JobStoreError::LeaseLost { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
            let job = JobRecord::new_pending(
                req.workflow_key.clone(),
                req.dcc.clone(),
                req.local_id.clone(),
                now,
            );
            match self.insert(&job).await {
                Ok(()) => {
                    return Ok(Claim {
                        job,
                        outcome: ClaimOutcome::Created,
                    });
                }
                Err(JobStoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(JobStoreError::Unavailable(format!(
            "claim of {} kept losing races; try again",
            req.workflow_key
        )))
    }

    async fn mark_running(
        &self,
        fence: &Fence,
        worker: WorkerRef,
    ) -> Result<JobRecord, JobStoreError> {
        self.update(fence, JobChange::MarkRunning { worker }).await
    }

    async fn record_stage(
        &self,
        fence: &Fence,
        stage: &str,
        artifact: Option<(ArtifactKind, String)>,
    ) -> Result<JobRecord, JobStoreError> {
        self.update(
            fence,
            JobChange::RecordStage {
                stage: stage.to_owned(),
                artifact,
            },
        )
        .await
    }

    async fn append_event(
        &self,
        fence: &Fence,
        event: EventKind,
    ) -> Result<JobRecord, JobStoreError> {
        self.update(fence, JobChange::Event(event)).await
    }

    async fn heartbeat(
        &self,
        fence: &Fence,
        progress: Option<Progress>,
    ) -> Result<JobRecord, JobStoreError> {
        self.update(fence, JobChange::Heartbeat { progress }).await
    }

    async fn complete(&self, fence: &Fence) -> Result<JobRecord, JobStoreError> {
        self.update(fence, JobChange::Complete).await
    }

    async fn fail(&self, fence: &Fence, failure: JobFailure) -> Result<JobRecord, JobStoreError> {
        self.update(fence, JobChange::Fail(failure)).await
    }

    /// Hands the job back for another attempt (attempt + 1, new lease); the returned record
    /// carries the new lease.
    async fn reschedule(&self, fence: &Fence, reason: &str) -> Result<JobRecord, JobStoreError> {
        self.update(
            fence,
            JobChange::Reschedule {
                reason: reason.to_owned(),
            },
        )
        .await
    }
}

impl<T: JobStore + ?Sized> JobStoreExt for T {}
