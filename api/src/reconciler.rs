//! The reconciler: at start and on an interval, jobs whose owner stopped writing (no heartbeat
//! for the stale threshold) are retried with a new lease and driven again, or failed after their
//! last attempt.

use std::sync::Arc;

use htsprep_shared::catalog::Catalog;
use htsprep_shared::jobstore::{Fence, JobChange, JobStore, JobStoreError};
use tokio_util::sync::CancellationToken;

use crate::executor::Executor;

/// Runs one pass; returns how many jobs it moved on.
pub async fn reconcile_once(
    store: &Arc<dyn JobStore>,
    catalog: &Arc<dyn Catalog>,
    executor: &Executor,
) -> Result<usize, JobStoreError> {
    let settings = executor.settings();
    let stale_after = chrono::Duration::from_std(settings.stale_after).unwrap_or_default();
    let cutoff = store.clock().now() - stale_after;
    let mut moved = 0;
    for job in store.find_stale(cutoff, 100).await? {
        let retry = job.attempt < settings.max_attempts;
        let reason = format!(
            "no heartbeat for {}s during attempt {} (reclaimed by the reconciler)",
            settings.stale_after.as_secs(),
            job.attempt
        );
        let change = JobChange::Abandon {
            stale_before: cutoff,
            reason,
            retry,
        };
        let next = match store.update(&Fence::of(&job), change).await {
            Ok(next) => next,
            // Someone else got there first, or it came back to life.
            Err(JobStoreError::LeaseLost { .. } | JobStoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        moved += 1;
        if next.active {
            match catalog.get(&next.dcc, &next.local_id).await {
                Ok(file) => executor.drive(file, next),
                Err(e) => {
                    tracing::warn!(job_id = %next.job_id, error = %e, "reclaimed job's file is gone from the catalog")
                }
            }
        }
    }
    Ok(moved)
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
            Err(e) => tracing::warn!(error = %e, "reconciler pass failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => return,
        }
    }
}
