//! Following one job through its attempts.

use std::sync::atomic::Ordering;
use std::time::Duration;

use htsprep_shared::domain::{FileRecord, JobFailure, JobId, JobRecord};
use htsprep_shared::jobstore::{Fence, JobStoreExt};

use super::Executor;
use super::dispatch::{Dispatch, dispatch};
use super::request::run_job_request;
use crate::fleet::{ProvisionError, ProvisionRequest, WorkerInfo};

/// How one attempt ended, from the API's side.
enum Attempt {
    /// A worker took the job and reported its end (the job store has the outcome).
    Followed,
    /// It may work on another attempt.
    Retry(String),
    /// It cannot work.
    Fatal(String),
}

pub(super) async fn drive(exec: &Executor, file: FileRecord, mut job: JobRecord) {
    let inner = &exec.inner;
    loop {
        if inner.shutdown.is_cancelled() {
            return;
        }
        let attempt = run_attempt(exec, &file, &job).await;
        let current = match inner.store.get(&job.job_id).await {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(job_id = %job.job_id, error = %e, "cannot read the job back; the reconciler will pick it up");
                return;
            }
        };
        if !current.active {
            return;
        }
        let fence = Fence::of(&job);
        let reason = match attempt {
            Attempt::Followed if current.lease == job.lease => {
                "the worker ended the job without releasing it".to_owned()
            }
            Attempt::Followed => {
                // The worker handed the job back (a new lease, attempt + 1): drive that attempt.
                if current.attempt > inner.settings.max_attempts {
                    give_up(
                        exec,
                        &Fence::of(&current),
                        &current,
                        "the job was handed back too often",
                    )
                    .await;
                    return;
                }
                job = current;
                continue;
            }
            Attempt::Retry(reason) => reason,
            Attempt::Fatal(reason) => {
                let mut f = JobFailure::new(reason);
                f.retryable = false;
                if let Err(e) = inner.store.fail(&fence, f).await {
                    tracing::warn!(job_id = %job.job_id, error = %e, "could not fail the job");
                }
                return;
            }
        };
        if current.lease != job.lease {
            // Someone else (a worker's hand-back, the reconciler) moved the job on.
            job = current;
            continue;
        }
        if current.attempt >= inner.settings.max_attempts {
            give_up(exec, &fence, &current, &reason).await;
            return;
        }
        tracing::warn!(job_id = %job.job_id, attempt = current.attempt, %reason, "retrying the job");
        match inner.store.reschedule(&fence, &reason).await {
            Ok(next) => job = next,
            Err(e) => {
                tracing::warn!(job_id = %job.job_id, error = %e, "could not reschedule; leaving it to the reconciler");
                return;
            }
        }
    }
}

async fn give_up(exec: &Executor, fence: &Fence, job: &JobRecord, reason: &str) {
    let mut f = JobFailure::new(format!(
        "gave up after {} attempt(s): {reason}",
        job.attempt
    ));
    f.retryable = true;
    if let Err(e) = exec.inner.store.fail(fence, f).await {
        tracing::warn!(job_id = %job.job_id, error = %e, "could not fail the job");
    }
}

/// The worker started for this job first (ECS starts one per attempt), then the others as
/// discovery lists them.
fn offer_order(mut workers: Vec<WorkerInfo>, job_id: &JobId) -> Vec<WorkerInfo> {
    workers.sort_by_key(|w| w.started_for.as_deref() != Some(job_id.as_str()));
    workers
}

async fn run_attempt(exec: &Executor, file: &FileRecord, job: &JobRecord) -> Attempt {
    let inner = &exec.inner;
    let deadline = tokio::time::Instant::now() + inner.settings.worker_wait;
    let req = ProvisionRequest {
        workflow_key: job.workflow_key.clone(),
        job_id: job.job_id.clone(),
        attempt: job.attempt,
    };
    let mut subscription = inner.discovery.subscribe();
    let request = run_job_request(file, job, &inner.settings);
    let mut last_decline = String::from("no worker is available");
    loop {
        // Idempotent per attempt: a fleet at its maximum or backing off says so, and the
        // workers it already has are still tried (one may have a free slot).
        let mut pause = Duration::from_millis(250);
        match inner.provisioner.provision(&req).await {
            Ok(()) => {}
            Err(ProvisionError::Permanent(m)) => {
                return Attempt::Fatal(format!("cannot start a worker: {m}"));
            }
            Err(e @ ProvisionError::Capacity { retry_after, .. }) => {
                last_decline = e.to_string();
                pause = retry_after.clamp(pause, Duration::from_secs(5));
            }
        }
        for worker in offer_order(subscription.current(), &job.job_id) {
            inner.dispatches.fetch_add(1, Ordering::Relaxed);
            match dispatch(&worker, inner.dial, &inner.worker_token, request.clone()).await {
                Dispatch::Followed => return Attempt::Followed,
                Dispatch::Broken(reason) => return Attempt::Retry(reason),
                Dispatch::Rejected(reason) => return Attempt::Fatal(reason),
                Dispatch::Declined(reason) => last_decline = reason,
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Attempt::Retry(format!(
                "no worker accepted the job within {}s ({last_decline})",
                inner.settings.worker_wait.as_secs()
            ));
        }
        // Wait for the fleet to change, or retry busy workers (and the provisioner) shortly.
        tokio::select! {
            _ = subscription.next() => {}
            () = tokio::time::sleep(pause) => {}
            () = inner.shutdown.cancelled() => return Attempt::Retry("the API is shutting down".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(id: &str, started_for: Option<&JobId>) -> WorkerInfo {
        WorkerInfo {
            id: id.into(),
            provider: "ecs".into(),
            address: format!("10.0.0.1:{}", id.len()),
            started_for: started_for.map(|j| j.as_str().to_owned()),
        }
    }

    #[test]
    fn the_worker_started_for_the_job_is_offered_it_first() {
        let (mine, other) = (JobId::new(), JobId::new());
        let order = offer_order(
            vec![
                w("a", Some(&other)),
                w("b", None),
                w("c", Some(&mine)),
                w("d", None),
            ],
            &mine,
        );
        let ids: Vec<&str> = order.iter().map(|w| w.id.as_str()).collect();
        assert_eq!(ids, ["c", "a", "b", "d"]);
    }
}
