//! The fenced writes an owner can make to its job, and their effect on the document.
//!
//! Document backends may translate a change into native atomic update operators instead of
//! calling [`JobChange::apply`]; the conformance suite holds them to the same result.

use chrono::{DateTime, Utc};

use crate::domain::{
    ArtifactKind, EventKind, JobEvent, JobFailure, JobRecord, JobStatus, Lease, Progress,
    StageDone, WorkerRef,
};

/// A job keeps at most this many timeline events (the newest).
pub const MAX_EVENTS: usize = 200;

#[derive(Clone, Debug, PartialEq)]
pub enum JobChange {
    /// A worker accepted the job.
    MarkRunning { worker: WorkerRef },
    /// A stage finished, possibly publishing an artifact.
    RecordStage {
        stage: String,
        artifact: Option<(ArtifactKind, String)>,
    },
    /// Appends a timeline event.
    Event(EventKind),
    /// Proof of life, with optional progress.
    Heartbeat { progress: Option<Progress> },
    /// Terminal success.
    Complete,
    /// Terminal failure.
    Fail(JobFailure),
    /// Hands the job back for another attempt: attempt + 1, a new lease, pending again.
    Reschedule { reason: String },
    /// Runs the same attempt again (a new lease, pending again): its worker was lost through no
    /// fault of the job (a Fargate Spot interruption).
    Requeue { reason: String },
    /// The driving replica renews its dispatch lease while the job waits for a worker, saying why
    /// it waits.
    Waiting { reason: String },
    /// A queued job (pending) whose driver stopped renewing is taken over: a new lease and
    /// driver, the same attempt. Applies only if it is pending and was last written before
    /// `stale_before`.
    TakeOver {
        stale_before: DateTime<Utc>,
        driver: Option<String>,
        reason: String,
    },
    /// Taken from an owner that stopped writing: applies only if the job was last written before
    /// `stale_before`. Retries (as [`JobChange::Reschedule`]) when `retry`, else fails the job.
    Abandon {
        stale_before: DateTime<Utc>,
        reason: String,
        retry: bool,
    },
}

impl JobChange {
    /// Whether this change may be applied to `job` (the lease has been checked already).
    pub fn guard_holds(&self, job: &JobRecord) -> bool {
        match self {
            JobChange::Abandon { stale_before, .. } => job.updated_at < *stale_before,
            JobChange::TakeOver { stale_before, .. } => {
                job.status == JobStatus::Pending && job.updated_at < *stale_before
            }
            _ => true,
        }
    }

    /// Applies the change to a document at `now`.
    pub fn apply(self, job: &mut JobRecord, now: DateTime<Utc>) {
        job.updated_at = now;
        let attempt = job.attempt;
        let mut push = |job: &mut JobRecord, kind: EventKind| {
            job.events.push(JobEvent {
                at: now,
                attempt,
                kind,
            });
            if job.events.len() > MAX_EVENTS {
                let excess = job.events.len() - MAX_EVENTS;
                job.events.drain(..excess);
            }
        };
        match self {
            JobChange::MarkRunning { worker } => {
                job.status = JobStatus::Running;
                job.started_at.get_or_insert(now);
                job.worker = Some(worker.clone());
                job.queued_since = None;
                job.waiting_for = None;
                push(job, EventKind::Running { worker });
            }
            JobChange::RecordStage { stage, artifact } => {
                if let Some((kind, key)) = &artifact {
                    job.artifacts.insert(*kind, key.clone());
                }
                job.stages_done.push(StageDone {
                    stage,
                    artifact,
                    finished_at: now,
                });
            }
            JobChange::Event(kind) => push(job, kind),
            JobChange::Heartbeat { progress } => {
                if progress.is_some() {
                    job.progress = progress;
                }
            }
            JobChange::Complete => {
                job.status = JobStatus::Completed;
                job.active = false;
                job.finished_at = Some(now);
                job.progress = None;
                push(job, EventKind::Completed);
            }
            JobChange::Fail(failure) => fail(job, failure, now, &mut push),
            JobChange::Reschedule { reason } => reschedule(job, reason, now, &mut push),
            JobChange::Requeue { reason } => {
                reschedule(job, reason, now, &mut push);
                job.attempt -= 1;
            }
            JobChange::Waiting { reason } => job.waiting_for = Some(reason),
            JobChange::TakeOver { driver, reason, .. } => {
                job.lease = Lease::new();
                job.driver = driver;
                push(job, EventKind::TakenOver { reason });
            }
            JobChange::Abandon { reason, retry, .. } => {
                if retry {
                    reschedule(job, reason, now, &mut push);
                } else {
                    let mut failure = JobFailure::new(reason);
                    failure.retryable = true;
                    fail(job, failure, now, &mut push);
                }
            }
        }
    }
}

fn fail(
    job: &mut JobRecord,
    failure: JobFailure,
    now: DateTime<Utc>,
    push: &mut impl FnMut(&mut JobRecord, EventKind),
) {
    job.status = JobStatus::Failed;
    job.active = false;
    job.finished_at = Some(now);
    job.progress = None;
    push(
        job,
        EventKind::Failed {
            message: failure.message.clone(),
        },
    );
    job.error = Some(failure);
}

fn reschedule(
    job: &mut JobRecord,
    reason: String,
    now: DateTime<Utc>,
    push: &mut impl FnMut(&mut JobRecord, EventKind),
) {
    push(job, EventKind::Rescheduled { reason });
    job.status = JobStatus::Pending;
    job.attempt += 1;
    job.lease = Lease::new();
    job.worker = None;
    job.progress = None;
    job.queued_since = Some(now);
    job.waiting_for = None;
}

/// An operator's retry of a failed job: the failure becomes retryable, with an event saying so.
pub(crate) fn retry_requested(job: &mut JobRecord, now: DateTime<Utc>) {
    if let Some(e) = &mut job.error {
        e.retryable = true;
    }
    job.events.push(JobEvent {
        at: now,
        attempt: job.attempt,
        kind: EventKind::RetryRequested,
    });
    if job.events.len() > MAX_EVENTS {
        let excess = job.events.len() - MAX_EVENTS;
        job.events.drain(..excess);
    }
}
