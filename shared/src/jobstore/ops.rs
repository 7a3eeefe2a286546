//! The cold-path operations, written once over the [`JobStore`] core.

use async_trait::async_trait;
use futures::future::BoxFuture;

use super::{Fence, JobChange, JobPolicy, JobStore, JobStoreError};
use crate::domain::{
    ArtifactKind, EventKind, Ident, JobFailure, JobId, JobRecord, JobStatus, Progress, WorkerRef,
};

/// A claim re-reads after every lost race; this many rounds without an answer means the store
/// is misbehaving, not contended.
const CLAIM_ROUNDS: usize = 1000;

#[derive(Clone, Debug)]
pub struct ClaimRequest {
    pub workflow_key: String,
    pub dcc: Ident,
    pub local_id: Ident,
    pub policy: JobPolicy,
    /// The API replica that will drive a job this claim creates or takes over.
    pub driver: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// A new job was inserted; the caller owns it and must get it run.
    Created,
    /// Another caller's active job was found; the caller only follows it.
    Attached,
    /// A running job whose worker went quiet was taken with a new lease and attempt; the caller
    /// owns it and must get it run.
    Reclaimed,
    /// A queued job whose driver went quiet was taken over (same attempt); the caller owns it
    /// and must get it run.
    TakenOver,
    /// The workflow's last job failed for a reason another attempt cannot fix (`job` is that
    /// job): its failure is the answer until the source changes or an operator retries it.
    Failed,
}

#[derive(Clone, Debug)]
pub struct Claim {
    pub job: JobRecord,
    pub outcome: ClaimOutcome,
}

impl Claim {
    /// Whether the caller now holds the job's lease.
    pub fn owns(&self) -> bool {
        matches!(
            self.outcome,
            ClaimOutcome::Created | ClaimOutcome::Reclaimed | ClaimOutcome::TakenOver
        )
    }
}

pub(crate) const ONLY_FAILED: &str = "only a failed job can be retried";
const ONLY_ACTIVE: &str = "only a pending or running job can be cancelled";

/// Answers whether the workflow's artifacts are published.
pub type PublishedProbe = dyn Fn() -> BoxFuture<'static, Result<bool, JobStoreError>> + Send + Sync;

/// Whether a finished job's failure stands as the workflow's answer.
pub fn failure_stands(job: &JobRecord) -> bool {
    job.status == JobStatus::Failed && job.error.as_ref().is_some_and(|e| !e.retryable)
}

#[async_trait]
pub trait JobStoreExt: JobStore {
    /// [`JobStoreExt::claim_unless_published`] for a workflow with nothing published.
    async fn claim(&self, req: &ClaimRequest) -> Result<Claim, JobStoreError> {
        let never: &PublishedProbe = &|| Box::pin(async { Ok(false) });
        Ok(self
            .claim_unless_published(req, never)
            .await?
            .expect("nothing is published"))
    }

    /// Attaches to the workflow's active job (taking it over first if its owner went quiet);
    /// with none, answers `None` if the workflow's artifacts are published, the failed job if
    /// its last job failed for good, and otherwise inserts a new pending job. A lost race
    /// re-reads. Because a job publishes before it finishes, a claim that finds no active job and
    /// nothing published cannot be overtaken by a completion.
    async fn claim_unless_published(
        &self,
        req: &ClaimRequest,
        published: &PublishedProbe,
    ) -> Result<Option<Claim>, JobStoreError> {
        for _ in 0..CLAIM_ROUNDS {
            let now = self.clock().now();
            if let Some(active) = self.find_active(&req.workflow_key).await? {
                if !req.policy.is_stale(&active, now) {
                    return Ok(Some(Claim {
                        job: active,
                        outcome: ClaimOutcome::Attached,
                    }));
                }
                let change =
                    req.policy
                        .reclaim(&active, now, req.driver.as_deref(), "a new request");
                let outcome = match &change {
                    JobChange::TakeOver { .. } => ClaimOutcome::TakenOver,
                    _ => ClaimOutcome::Reclaimed,
                };
                match self.update(&Fence::of(&active), change).await {
                    Ok(job) if job.active => return Ok(Some(Claim { job, outcome })),
                    // Failed for good, or someone else moved it on: read again.
                    Ok(_) | Err(JobStoreError::LeaseLost { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
            if published().await? {
                return Ok(None);
            }
            if let Some(last) = self.find_latest(&req.workflow_key).await?
                && failure_stands(&last)
            {
                return Ok(Some(Claim {
                    job: last,
                    outcome: ClaimOutcome::Failed,
                }));
            }
            let mut job = JobRecord::new_pending(
                req.workflow_key.clone(),
                req.dcc.clone(),
                req.local_id.clone(),
                now,
            );
            job.driver = req.driver.clone();
            match self.insert(&job).await {
                Ok(()) => {
                    return Ok(Some(Claim {
                        job,
                        outcome: ClaimOutcome::Created,
                    }));
                }
                Err(JobStoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(JobStoreError::Unavailable {
            context: format!(
                "claim of {} found no stable answer in {CLAIM_ROUNDS} reads; try again",
                req.workflow_key
            ),
            source: None,
        })
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

    /// Renews the driver's dispatch lease on a job waiting for a worker, with the reason.
    async fn waiting(&self, fence: &Fence, reason: &str) -> Result<JobRecord, JobStoreError> {
        self.update(
            fence,
            JobChange::Waiting {
                reason: reason.to_owned(),
            },
        )
        .await
    }

    async fn complete(&self, fence: &Fence) -> Result<JobRecord, JobStoreError> {
        self.update(fence, JobChange::Complete).await
    }

    async fn fail(&self, fence: &Fence, failure: JobFailure) -> Result<JobRecord, JobStoreError> {
        self.update(fence, JobChange::Fail(failure)).await
    }

    /// Stops an active job: it fails with `message` (retryable: cancelling is no verdict on the
    /// file), its lease is void, so its worker's next heartbeat cancels the running stage.
    async fn cancel(&self, job_id: &JobId, message: &str) -> Result<JobRecord, JobStoreError> {
        loop {
            let job = self.get(job_id).await?;
            if !job.active {
                return Err(JobStoreError::WrongStatus {
                    job_id: job_id.clone(),
                    status: job.status,
                    why: ONLY_ACTIVE,
                });
            }
            let mut failure = JobFailure::new(message);
            failure.retryable = true;
            match self.fail(&Fence::of(&job), failure).await {
                // The job moved on (a heartbeat does not change the lease; a reschedule does).
                Err(JobStoreError::LeaseLost { .. }) => continue,
                other => return other,
            }
        }
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
