//! The executor: claims a workflow (or attaches to its active job), and for the jobs it owns gets
//! a worker from the fleet, dispatches over gRPC and follows the job to its end, retrying when a
//! worker dies. Many concurrent requests for one source converge on one job.

mod dial;
mod dispatch;
mod drive;
mod request;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use htsprep_shared::domain::{FileRecord, JobId, JobRecord, workflow_key};
use htsprep_shared::jobstore::{
    Claim, ClaimOutcome, ClaimRequest, JobStore, JobStoreError, JobStoreExt,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::JobSettings;
use crate::fleet::{Discovery, Provisioner};

pub use dial::DialPolicy;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("too many workflows are being prepared ({0} active)")]
    TooBusy(usize),
    #[error("the service is shutting down")]
    Draining,
    #[error(transparent)]
    Store(#[from] JobStoreError),
}

#[derive(Clone, Debug)]
pub struct Executor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn JobStore>,
    provisioner: Arc<dyn Provisioner>,
    discovery: Arc<dyn Discovery>,
    settings: JobSettings,
    worker_token: String,
    dial: DialPolicy,
    driving: Mutex<HashSet<JobId>>,
    tracker: TaskTracker,
    /// Cancelled when new cold requests must be refused.
    draining: CancellationToken,
    /// Cancelled when in-flight drives must stop.
    shutdown: CancellationToken,
    claims_created: AtomicU64,
    dispatches: AtomicU64,
}

/// Counters for `/metrics`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExecStats {
    pub driving: usize,
    pub claims_created: u64,
    pub dispatches: u64,
    pub workers_started: u64,
    /// Workers discovery reports usable now.
    pub workers_available: usize,
}

impl Executor {
    pub fn new(
        store: Arc<dyn JobStore>,
        provisioner: Arc<dyn Provisioner>,
        discovery: Arc<dyn Discovery>,
        settings: JobSettings,
        worker_token: String,
        dial: DialPolicy,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                provisioner,
                discovery,
                settings,
                worker_token,
                dial,
                driving: Mutex::new(HashSet::new()),
                tracker: TaskTracker::new(),
                draining: CancellationToken::new(),
                shutdown: CancellationToken::new(),
                claims_created: AtomicU64::new(0),
                dispatches: AtomicU64::new(0),
            }),
        }
    }

    pub fn settings(&self) -> &JobSettings {
        &self.inner.settings
    }

    pub fn stats(&self) -> ExecStats {
        ExecStats {
            driving: self.inner.driving.lock().expect("driving lock").len(),
            claims_created: self.inner.claims_created.load(Ordering::Relaxed),
            dispatches: self.inner.dispatches.load(Ordering::Relaxed),
            workers_started: self.inner.provisioner.started(),
            workers_available: self.inner.discovery.subscribe().current().len(),
        }
    }

    pub fn is_draining(&self) -> bool {
        self.inner.draining.is_cancelled() || self.inner.shutdown.is_cancelled()
    }

    fn claim_request(&self, file: &FileRecord) -> ClaimRequest {
        ClaimRequest {
            workflow_key: workflow_key(file),
            dcc: file.dcc.clone(),
            local_id: file.local_id.clone(),
            stale_after: self.inner.settings.stale_after,
            max_attempts: self.inner.settings.max_attempts,
        }
    }

    /// Claims the file's workflow or attaches to its active job; a job this call owns is driven
    /// in the background.
    pub async fn ensure(&self, file: &FileRecord) -> Result<Claim, ExecError> {
        if self.is_draining() {
            return Err(ExecError::Draining);
        }
        let req = self.claim_request(file);
        let stale_before = self.inner.store.clock().now()
            - chrono::Duration::from_std(req.stale_after).unwrap_or_default();
        if let Some(active) = self.inner.store.find_active(&req.workflow_key).await?
            && active.updated_at >= stale_before
        {
            return Ok(Claim {
                job: active,
                outcome: ClaimOutcome::Attached,
            });
        }
        let driving = self.inner.driving.lock().expect("driving lock").len();
        if driving >= self.inner.settings.max_active {
            return Err(ExecError::TooBusy(driving));
        }
        let claim = self.inner.store.claim(&req).await?;
        if claim.owns() {
            if claim.outcome == ClaimOutcome::Created {
                self.inner.claims_created.fetch_add(1, Ordering::Relaxed);
            }
            self.drive(file.clone(), claim.job.clone());
        }
        Ok(claim)
    }

    /// Follows a job this API owns (a fresh claim, a reclaimed or handed-back job) to its end.
    pub fn drive(&self, file: FileRecord, job: JobRecord) {
        if !self
            .inner
            .driving
            .lock()
            .expect("driving lock")
            .insert(job.job_id.clone())
        {
            return;
        }
        let this = self.clone();
        self.inner.tracker.spawn(async move {
            let id = job.job_id.clone();
            drive::drive(&this, file, job).await;
            this.inner.driving.lock().expect("driving lock").remove(&id);
        });
    }

    /// Stops taking work; in-flight dispatches get `grace` to finish, then are abandoned (their
    /// jobs stay active and are reclaimed later).
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.tracker.close();
        if tokio::time::timeout(grace, self.inner.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace over; leaving in-flight jobs to be reclaimed");
        }
        self.inner.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.inner.tracker.wait()).await;
    }

    /// Refuses new cold requests from now on; jobs already being driven carry on.
    pub fn begin_drain_soft(&self) {
        self.inner.draining.cancel();
    }
}
