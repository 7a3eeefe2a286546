//! Following one job through its attempts. While a job waits for a worker it is queued: this
//! replica renews its dispatch lease (saying why it waits), and waiting costs no attempt; an
//! attempt is spent only once a worker has accepted the job and it then fails or is lost.

use std::sync::atomic::Ordering;
use std::time::Duration;

use htsprep_shared::domain::{EventKind, FileRecord, JobFailure, JobId, JobRecord};
use htsprep_shared::jobstore::{Fence, JobStoreError, JobStoreExt};
use tokio::time::Instant;

use super::Executor;
use super::dispatch::{Dispatch, dispatch};
use super::request::run_job_request;
use crate::fleet::{ProvisionError, ProvisionRequest, WorkerInfo};

/// How one attempt ended, from the API's side.
enum Attempt {
    /// A worker took the job and reported its end (the job store has the outcome).
    Followed,
    /// A worker took the job and was lost: another attempt may work.
    Retry(String),
    /// It cannot work, on any worker: the failure stands.
    Fatal(String),
    /// No worker accepted it within the queue deadline.
    Expired(String),
    /// This replica no longer drives it (taken over, or shutting down): leave it.
    Left,
}

pub(super) async fn drive(exec: &Executor, file: FileRecord, mut job: JobRecord) {
    let inner = &exec.inner;
    let policy = inner.settings.policy();
    loop {
        if inner.shutdown.is_cancelled() {
            return;
        }
        let attempt = run_attempt(exec, &file, &job).await;
        if matches!(attempt, Attempt::Left) {
            return;
        }
        let current = match inner.store.get(&job.job_id).await {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(job_id = %job.job_id, error = %htsprep_shared::error::chain(&e), "cannot read the job back; another replica will take it over");
                return;
            }
        };
        if !current.active {
            return;
        }
        let fence = Fence::of(&job);
        let reason = match attempt {
            Attempt::Left => return,
            Attempt::Followed if current.lease == job.lease => {
                "the worker ended the job without releasing it".to_owned()
            }
            Attempt::Followed => {
                // The worker handed the job back (a new lease, attempt + 1): drive that attempt.
                if current.attempt > policy.max_attempts {
                    let why = last_reschedule(&current)
                        .unwrap_or_else(|| "the job was handed back too often".into());
                    give_up(exec, &Fence::of(&current), &current, &why).await;
                    return;
                }
                job = current;
                inner.driving.refreshed(&job, None);
                continue;
            }
            Attempt::Retry(reason) => reason,
            Attempt::Fatal(reason) => {
                end(exec, &fence, JobFailure::new(reason)).await;
                return;
            }
            Attempt::Expired(reason) => {
                let mut f = JobFailure::new(reason);
                f.retryable = true;
                end(exec, &fence, f).await;
                return;
            }
        };
        if current.lease != job.lease {
            // Someone else (a worker's hand-back, the reconciler) moved the job on.
            job = current;
            inner.driving.refreshed(&job, None);
            continue;
        }
        if !policy.may_retry(current.attempt) {
            give_up(exec, &fence, &current, &reason).await;
            return;
        }
        tracing::warn!(job_id = %job.job_id, attempt = current.attempt, %reason, "retrying the job");
        match inner.store.reschedule(&fence, &reason).await {
            Ok(next) => {
                job = next;
                inner.driving.refreshed(&job, None);
                exec.note_change(&job);
            }
            Err(e) => {
                tracing::warn!(job_id = %job.job_id, error = %htsprep_shared::error::chain(&e), "could not reschedule; another replica will take it over");
                return;
            }
        }
    }
}

/// Why the job was last handed back, from its timeline.
fn last_reschedule(job: &JobRecord) -> Option<String> {
    job.events.iter().rev().find_map(|e| match &e.kind {
        EventKind::Rescheduled { reason } => Some(reason.clone()),
        _ => None,
    })
}

async fn end(exec: &Executor, fence: &Fence, failure: JobFailure) {
    if let Err(e) = exec.inner.store.fail(fence, failure).await {
        tracing::warn!(job_id = %fence.job_id, error = %htsprep_shared::error::chain(&e), "could not fail the job");
    }
    exec.inner.watches.bump(&fence.job_id);
}

async fn give_up(exec: &Executor, fence: &Fence, job: &JobRecord, reason: &str) {
    let mut f = JobFailure::new(format!(
        "gave up after {} attempt(s): {reason}",
        job.attempt.min(exec.inner.settings.max_attempts)
    ));
    f.retryable = true;
    end(exec, fence, f).await;
}

/// The worker started for this job first (ECS starts one per attempt), then the others as
/// discovery lists them.
fn offer_order(mut workers: Vec<WorkerInfo>, job_id: &JobId) -> Vec<WorkerInfo> {
    workers.sort_by_key(|w| w.started_for.as_deref() != Some(job_id.as_str()));
    workers
}

/// How long until `job` has waited `limit` since it was queued.
fn remaining(exec: &Executor, job: &JobRecord, limit: Duration) -> Duration {
    let since = job.queued_since.unwrap_or(job.submitted_at);
    let waited = (exec.inner.store.clock().now() - since)
        .to_std()
        .unwrap_or_default();
    limit.saturating_sub(waited)
}

/// Offers the job to `workers` in turn; how the attempt ended once one took it (or refused the
/// job for good), or `None` when each declined (`reason` says why the last did).
async fn offer(
    exec: &Executor,
    job: &JobRecord,
    request: &htsprep_proto::v1::RunJobRequest,
    place: &mut Option<super::queue::Place<'_>>,
    workers: Vec<WorkerInfo>,
    reason: &mut String,
) -> Option<Attempt> {
    let inner = &exec.inner;
    for worker in workers {
        inner.dispatches.fetch_add(1, Ordering::Relaxed);
        let mut accepted = || drop(place.take());
        let updated = || exec.note_change(job);
        let offered = dispatch(
            &worker,
            inner.dial,
            &inner.worker_token,
            request.clone(),
            &mut accepted,
            &updated,
        );
        match offered.await {
            Dispatch::Followed => return Some(Attempt::Followed),
            Dispatch::Broken(r) => return Some(Attempt::Retry(r)),
            Dispatch::Rejected(r) => return Some(Attempt::Fatal(r)),
            Dispatch::Declined(r) => *reason = r,
        }
    }
    None
}

/// A waiting job's reason is rewritten at most this often.
const RESAY: Duration = Duration::from_secs(1);

async fn run_attempt(exec: &Executor, file: &FileRecord, job: &JobRecord) -> Attempt {
    let inner = &exec.inner;
    let policy = inner.settings.policy();
    let fence = Fence::of(job);
    let deadline = Instant::now() + remaining(exec, job, inner.settings.queue_deadline);
    // After a failed attempt, wait before the next (the job stays queued meanwhile).
    let not_before = if job.attempt > 1 {
        Instant::now() + remaining(exec, job, policy.backoff(job.attempt))
    } else {
        Instant::now()
    };
    let renew_every = (policy.stale_after / 4).max(Duration::from_secs(1));
    let req = ProvisionRequest {
        workflow_key: job.workflow_key.clone(),
        job_id: job.job_id.clone(),
        attempt: job.attempt,
    };
    let mut subscription = inner.discovery.subscribe();
    let request = run_job_request(file, job, &inner.settings);
    // This job's place in the queue, given up once a worker accepts it.
    let mut place = Some(inner.queue.join(
        job.queued_since.unwrap_or(job.submitted_at),
        job.job_id.clone(),
        not_before,
    ));
    let mut reason = String::from("waiting for a worker");
    let mut renewed: Option<(Instant, String)> = None;
    loop {
        let mut pause = Duration::from_millis(250);
        if Instant::now() < not_before {
            reason = format!(
                "pausing before attempt {} (after a failed attempt)",
                job.attempt
            );
            pause = not_before - Instant::now();
        } else {
            // Workers there first: this job's own (ECS starts one per attempt) and those for any
            // job (a warm pool's, local ones); shared ones go to the oldest job first.
            let ahead = place.as_ref().map_or(0, |p| p.ahead());
            if ahead > 0 {
                reason = format!("{ahead} older job(s) ahead in the queue");
            }
            let own = |w: &WorkerInfo| w.started_for.as_deref() == Some(job.job_id.as_str());
            let current = offer_order(subscription.current(), &job.job_id);
            let (free, foreign): (Vec<WorkerInfo>, Vec<WorkerInfo>) = current
                .into_iter()
                .filter(|w| ahead == 0 || own(w))
                .partition(|w| w.started_for.is_none() || own(w));
            if let Some(end) = offer(exec, job, &request, &mut place, free, &mut reason).await {
                return end;
            }
            // None took it: make sure one is on its way, unless idle workers the jobs ahead
            // have not taken yet will come to it (a warm pool's, by its last count).
            if ahead == 0 || ahead >= inner.idle.get() {
                // Idempotent per attempt: a fleet at its maximum or backing off says so, and
                // the workers it has are tried again next time round (one may free a slot).
                match inner.provisioner.provision(&req).await {
                    Ok(()) => {}
                    Err(ProvisionError::Permanent(m)) => {
                        return Attempt::Fatal(format!("cannot start a worker: {m}"));
                    }
                    Err(e @ ProvisionError::Capacity { retry_after, .. }) => {
                        reason = e.to_string();
                        pause = retry_after.clamp(pause, Duration::from_secs(5));
                    }
                }
                // Only now a worker started for another job: that job's own worker is on its
                // way, and this one's too, whichever takes which.
                if let Some(end) =
                    offer(exec, job, &request, &mut place, foreign, &mut reason).await
                {
                    return end;
                }
            }
        }
        if Instant::now() >= deadline {
            return Attempt::Expired(format!(
                "no worker accepted the job within the queue deadline of {}s (HTSPREP_QUEUE_DEADLINE_SECONDS); last: {reason}",
                inner.settings.queue_deadline.as_secs()
            ));
        }
        // Renew the dispatch lease, and say why the job waits when that changes (at most once
        // a second).
        let due = renewed.as_ref().is_none_or(|(at, said)| {
            at.elapsed() >= renew_every || (*said != reason && at.elapsed() >= RESAY)
        });
        if due {
            match inner.store.waiting(&fence, &reason).await {
                Ok(_) => {
                    renewed = Some((Instant::now(), reason.clone()));
                    exec.note_change(job);
                }
                Err(JobStoreError::LeaseLost { .. }) => {
                    tracing::info!(job_id = %job.job_id, "the job moved on (taken over, cancelled or finished); no longer driving it");
                    return Attempt::Left;
                }
                Err(e) => {
                    tracing::warn!(job_id = %job.job_id, error = %htsprep_shared::error::chain(&e), "could not renew the dispatch lease; trying again")
                }
            }
        }
        // Wait for the fleet to change, or retry busy workers (and the provisioner) shortly.
        let pause = pause.min(renew_every).min(deadline - Instant::now());
        tokio::select! {
            _ = subscription.next() => {}
            () = inner.queue.changed() => {}
            () = tokio::time::sleep(pause) => {}
            () = inner.shutdown.cancelled() => return Attempt::Left,
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
