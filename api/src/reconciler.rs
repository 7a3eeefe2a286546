//! The reconciler: at start and on an interval, jobs whose owner stopped writing are taken from
//! it by the job policy (a queued job whose driver died is taken over at no attempt's cost; a
//! running job whose worker went quiet is retried, or failed after its last attempt), and it asks
//! the fleet about the workers of running jobs, taking back at once a job whose worker is gone;
//! this replica drives them on.

use std::sync::Arc;

use htsprep_shared::catalog::Catalog;
use htsprep_shared::domain::{JobRecord, JobStatus};
use htsprep_shared::jobstore::{Fence, JobStore, JobStoreError, ListQuery, MAX_PAGE};
use tokio_util::sync::CancellationToken;

use crate::executor::Executor;

/// Runs one pass; returns how many jobs it moved on.
pub async fn reconcile_once(
    store: &Arc<dyn JobStore>,
    catalog: &Arc<dyn Catalog>,
    executor: &Executor,
) -> Result<usize, JobStoreError> {
    let policy = executor.settings().policy();
    let now = store.clock().now();
    let mut moved = 0;
    for job in store.find_stale(policy.stale_before(now), 100).await? {
        let change = policy.reclaim(&job, now, Some(executor.replica()), "the reconciler");
        let next = match store.update(&Fence::of(&job), change).await {
            Ok(next) => next,
            // Someone else got there first, or it came back to life.
            Err(JobStoreError::LeaseLost { .. } | JobStoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        moved += 1;
        drive_on(catalog, executor, next).await;
    }
    Ok(moved)
}

/// Running jobs whose worker the fleet says is gone are taken back at once (the same attempt
/// again after a Spot interruption, else the next, or a failure after the last), with the
/// fleet's reason; this replica drives them on. Returns how many it moved on.
pub async fn reclaim_lost(
    store: &Arc<dyn JobStore>,
    catalog: &Arc<dyn Catalog>,
    executor: &Executor,
) -> Result<usize, JobStoreError> {
    let policy = executor.settings().policy();
    let mut running = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list(&ListQuery {
                status: Some(JobStatus::Running),
                limit: Some(MAX_PAGE),
                after,
            })
            .await?;
        running.extend(page.jobs);
        match page.next {
            Some(next) if running.len() < 10 * MAX_PAGE => after = Some(next),
            _ => break,
        }
    }
    let ids: Vec<String> = running
        .iter()
        .filter_map(|j| j.worker.as_ref().map(|w| w.resource_id.clone()))
        .collect();
    if ids.is_empty() {
        return Ok(0);
    }
    let gone = match executor.inspect().gone(&ids).await {
        Ok(gone) => gone,
        Err(e) => {
            tracing::warn!(error = %e, "could not ask the fleet about running jobs' workers");
            return Ok(0);
        }
    };
    let mut moved = 0;
    for g in gone {
        for job in running
            .iter()
            .filter(|j| j.worker.as_ref().is_some_and(|w| w.resource_id == g.id))
        {
            let change = policy.lost(job, &g.reason, g.counts_attempt);
            let next = match store.update(&Fence::of(job), change).await {
                Ok(next) => next,
                Err(JobStoreError::LeaseLost { .. } | JobStoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            moved += 1;
            tracing::warn!(job_id = %job.job_id, worker = %g.id, reason = %g.reason, "took back a job whose worker is gone");
            drive_on(catalog, executor, next).await;
        }
    }
    Ok(moved)
}

async fn drive_on(catalog: &Arc<dyn Catalog>, executor: &Executor, job: JobRecord) {
    if !job.active {
        return;
    }
    match catalog.get(&job.dcc, &job.local_id).await {
        Ok(file) => executor.drive(file, job),
        Err(e) => {
            tracing::warn!(job_id = %job.job_id, error = %htsprep_shared::error::chain(&e), "reclaimed job's file is gone from the catalog")
        }
    }
}

/// Reconciles until `stop` fires.
pub async fn run(
    store: Arc<dyn JobStore>,
    catalog: Arc<dyn Catalog>,
    executor: Executor,
    stop: CancellationToken,
) {
    let every = executor.settings().reconcile_every;
    loop {
        match reconcile_once(&store, &catalog, &executor).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "reconciler reclaimed stale jobs"),
            Err(e) => {
                tracing::warn!(error = %htsprep_shared::error::chain(&e), "reconciler pass failed")
            }
        }
        match reclaim_lost(&store, &catalog, &executor).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "reconciler took back jobs whose worker is gone"),
            Err(e) => {
                tracing::warn!(error = %htsprep_shared::error::chain(&e), "reconciler pass over running jobs failed")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => return,
        }
    }
}
