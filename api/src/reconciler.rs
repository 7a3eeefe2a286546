//! The reconciler: at start and on an interval, jobs whose owner stopped writing are taken from
//! it by the job policy (a queued job whose driver died is taken over at no attempt's cost; a
//! running job whose worker went quiet is retried, or failed after its last attempt), and this
//! replica drives them on.

use std::sync::Arc;

use htsprep_shared::catalog::Catalog;
use htsprep_shared::jobstore::{Fence, JobStore, JobStoreError};
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
