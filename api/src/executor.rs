//! The executor: claims a workflow (or attaches to its active job, or finds it already prepared,
//! or finds its failure standing), and for the jobs it owns gets a worker from the fleet,
//! dispatches over gRPC and follows the job to its end. Concurrent requests for one workflow in
//! this replica share one claim; many replicas converge on one job through the store.

pub(crate) mod dial;
mod dispatch;
mod drive;
mod driving;
mod queue;
mod request;
mod watch;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt;
use htsprep_shared::artifacts::ArtifactStore;
use htsprep_shared::domain::{FileRecord, JobId, JobRecord};
use htsprep_shared::jobstore::{
    Claim, ClaimOutcome, ClaimRequest, JobStore, JobStoreError, JobStoreExt, PublishedProbe,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::coalesce::Coalesce;
use crate::config::JobSettings;
use crate::fleet::{Discovery, Inspect, Provisioner};
use crate::served::Keys;

pub use dial::DialPolicy;

#[derive(Clone, Debug, thiserror::Error)]
pub enum ExecError {
    #[error("too many workflows are being prepared ({0} active)")]
    TooBusy(usize),
    #[error("the service is shutting down")]
    Draining,
    #[error(transparent)]
    Store(#[from] JobStoreError),
}

/// What asking for a file's workflow found.
#[derive(Clone, Debug)]
pub enum Ensured {
    /// Its artifacts are published: serve them.
    Ready,
    /// A job: one this replica now drives, another's it follows, or a failure that stands.
    Job {
        /// As last read (shared: a storm's requests are answered from one record).
        job: Arc<JobRecord>,
        outcome: ClaimOutcome,
    },
}

impl From<Claim> for Ensured {
    fn from(claim: Claim) -> Self {
        Self::Job {
            job: Arc::new(claim.job),
            outcome: claim.outcome,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Executor {
    inner: Arc<Inner>,
}

/// What the executor works with.
pub struct Parts {
    pub store: Arc<dyn JobStore>,
    pub artifacts: Arc<dyn ArtifactStore>,
    pub provisioner: Arc<dyn Provisioner>,
    pub discovery: Arc<dyn Discovery>,
    pub inspect: Arc<dyn Inspect>,
    pub settings: JobSettings,
    pub worker_token: String,
    pub dial: DialPolicy,
    /// The warm pool's count of idle workers (0 without a pool).
    pub idle: crate::warm::IdleHint,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn JobStore>,
    artifacts: Arc<dyn ArtifactStore>,
    provisioner: Arc<dyn Provisioner>,
    discovery: Arc<dyn Discovery>,
    inspect: Arc<dyn Inspect>,
    settings: JobSettings,
    worker_token: String,
    dial: DialPolicy,
    idle: crate::warm::IdleHint,
    /// This API replica, as job records name their driver.
    replica: String,
    driving: driving::Driving,
    /// Re-reads of driven jobs that changed, shared by the requests of that moment.
    rereads: Coalesce<Result<JobRecord, ExecError>>,
    queue: queue::Queue,
    watches: watch::Watches,
    claims: Coalesce<Result<Ensured, ExecError>>,
    tracker: TaskTracker,
    /// Where jobs are driven: the runtime the executor was made on, not the serving thread of
    /// the request that claimed the job (those stop when the HTTP server has drained).
    runtime: tokio::runtime::Handle,
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

impl std::fmt::Debug for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parts").finish_non_exhaustive()
    }
}

impl Executor {
    /// Made on the runtime that drives its jobs (panics outside a Tokio runtime).
    pub fn new(parts: Parts) -> Self {
        let runtime = tokio::runtime::Handle::current();
        let replica = format!(
            "api-{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Self {
            inner: Arc::new(Inner {
                store: parts.store,
                artifacts: parts.artifacts,
                provisioner: parts.provisioner,
                discovery: parts.discovery,
                inspect: parts.inspect,
                settings: parts.settings,
                worker_token: parts.worker_token,
                dial: parts.dial,
                idle: parts.idle,
                replica,
                driving: driving::Driving::default(),
                rereads: Coalesce::on(runtime.clone()),
                queue: queue::Queue::default(),
                watches: watch::Watches::default(),
                claims: Coalesce::on(runtime.clone()),
                tracker: TaskTracker::new(),
                runtime,
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

    /// This replica's id, as job records name their driver.
    pub fn replica(&self) -> &str {
        &self.inner.replica
    }

    /// The fleet, asked directly about the workers running jobs.
    pub fn inspect(&self) -> &dyn Inspect {
        self.inner.inspect.as_ref()
    }

    pub fn stats(&self) -> ExecStats {
        ExecStats {
            driving: self.inner.driving.len(),
            claims_created: self.inner.claims_created.load(Ordering::Relaxed),
            dispatches: self.inner.dispatches.load(Ordering::Relaxed),
            workers_started: self.inner.provisioner.started(),
            workers_available: self.inner.discovery.subscribe().current().len(),
        }
    }

    pub fn is_draining(&self) -> bool {
        self.inner.draining.is_cancelled() || self.inner.shutdown.is_cancelled()
    }

    fn claim_request(&self, file: &FileRecord, keys: &Keys) -> ClaimRequest {
        ClaimRequest {
            workflow_key: keys.workflow.clone(),
            dcc: file.dcc.clone(),
            local_id: file.local_id.clone(),
            policy: self.inner.settings.policy(),
            driver: Some(self.inner.replica.clone()),
        }
    }

    /// Finds what the file's workflow needs: nothing (published), a job to follow, a standing
    /// failure, or a new or reclaimed job, which this replica then drives. Concurrent calls for
    /// one workflow share one claim. `keys` are the file's ([`Keys::of`]).
    pub async fn ensure(&self, file: &FileRecord, keys: &Keys) -> Result<Ensured, ExecError> {
        if self.is_draining() {
            return Err(ExecError::Draining);
        }
        if let Some(held) = self.inner.driving.get(&keys.workflow) {
            // Driven here: answered from what the drive holds, read again only after a change
            // (and asked for properly once that read finds the job ended).
            let job = match held.stale {
                None => held.record,
                Some(changes) => {
                    let this = self.clone();
                    let id = held.record.job_id.clone();
                    let read = move || async move { Ok(this.inner.store.get(&id).await?) }.boxed();
                    let job = self
                        .inner
                        .rereads
                        .run(held.record.job_id.as_str(), read)
                        .await?;
                    self.inner.driving.refreshed(&job, Some(changes));
                    Arc::new(job)
                }
            };
            if job.active {
                return Ok(Ensured::Job {
                    job,
                    outcome: ClaimOutcome::Attached,
                });
            }
        }
        let (this, file, owned) = (self.clone(), file.clone(), keys.clone());
        self.inner
            .claims
            .run(&keys.workflow, move || {
                async move { this.claim(&file, &owned).await }.boxed()
            })
            .await
    }

    /// Whether this replica drives the job of `workflow_key` (its artifacts are published only
    /// when that job completes).
    pub fn drives(&self, workflow_key: &str) -> bool {
        self.inner.driving.contains(workflow_key)
    }

    /// The driven `job` changed: waiters wake, and the next request reads it again.
    fn note_change(&self, job: &JobRecord) {
        self.inner.driving.changed(job);
        self.inner.watches.bump(&job.job_id);
    }

    async fn claim(&self, file: &FileRecord, keys: &Keys) -> Result<Ensured, ExecError> {
        let inner = &self.inner;
        let req = self.claim_request(file, keys);
        let driving = inner.driving.len();
        if driving >= inner.settings.max_active {
            // Following a job is always possible; starting one needs room.
            return match inner.store.find_active(&req.workflow_key).await? {
                Some(job) if !req.policy.is_stale(&job, inner.store.clock().now()) => Ok(Claim {
                    job,
                    outcome: ClaimOutcome::Attached,
                }
                .into()),
                _ => Err(ExecError::TooBusy(driving)),
            };
        }
        let index = keys.index.clone();
        let artifacts = Arc::clone(&inner.artifacts);
        let published: &PublishedProbe = &move || {
            let (artifacts, index) = (Arc::clone(&artifacts), index.clone());
            async move {
                artifacts
                    .exists(&index)
                    .await
                    .map_err(|e| JobStoreError::unavailable("ask the artifact store", e))
            }
            .boxed()
        };
        let Some(claim) = inner.store.claim_unless_published(&req, published).await? else {
            return Ok(Ensured::Ready);
        };
        if claim.owns() {
            if claim.outcome == ClaimOutcome::Created {
                inner.claims_created.fetch_add(1, Ordering::Relaxed);
            }
            self.drive(file.clone(), claim.job.clone());
        }
        Ok(claim.into())
    }

    /// Follows a job this API owns (a fresh claim, a reclaimed or taken-over job) to its end.
    pub fn drive(&self, file: FileRecord, job: JobRecord) {
        if !self.inner.driving.start(&job) {
            return;
        }
        // Watchable from now, before the task runs: a `?wait` that looks right after the claim
        // must find the watch (else it would poll).
        self.inner.watches.prepare(&job.job_id);
        let this = self.clone();
        let driven = async move {
            let (id, key) = (job.job_id.clone(), job.workflow_key.clone());
            {
                let _watched = this.inner.watches.open(&id);
                drive::drive(&this, file, job).await;
            }
            this.inner.driving.stop(&id, &key);
        };
        self.inner.tracker.spawn_on(driven, &self.inner.runtime);
    }

    /// Whether `job` is active but its owner has gone quiet (asking [`Executor::ensure`] again
    /// takes it over).
    pub fn is_stale(&self, job: &JobRecord) -> bool {
        self.inner
            .settings
            .policy()
            .is_stale(job, self.inner.store.clock().now())
    }

    /// A wait for `job_id` to change, from now: take it *before* reading the job, so that a
    /// change (or the end of driving) between the read and the wait is not missed.
    pub fn waiter(&self, job_id: &JobId) -> Waiter<'_> {
        Waiter {
            exec: self,
            rx: self.inner.watches.subscribe(job_id),
        }
    }
}

/// See [`Executor::waiter`].
pub struct Waiter<'a> {
    exec: &'a Executor,
    /// The job's watch while this replica drives it; `None`: another replica does (poll).
    rx: Option<tokio::sync::watch::Receiver<u64>>,
}

impl Waiter<'_> {
    /// Resolves when the job changed since the waiter was taken (or driving it ended here), at
    /// `until`, or when the API drains (a waiting request is answered then, not at its
    /// deadline). Jobs another replica drives are polled.
    pub async fn changed(self, until: tokio::time::Instant) {
        const POLL: Duration = Duration::from_millis(500);
        let draining = self.exec.inner.draining.cancelled();
        match self.rx {
            Some(mut rx) => {
                tokio::select! {
                    _ = rx.changed() => {}
                    () = tokio::time::sleep_until(until) => {}
                    () = draining => {}
                }
            }
            None => {
                tokio::select! {
                    () = tokio::time::sleep_until(until.min(tokio::time::Instant::now() + POLL)) => {}
                    () = draining => {}
                }
            }
        }
    }
}

impl Executor {
    /// Stops taking work; in-flight dispatches get `grace` to finish, then are abandoned (their
    /// jobs stay active: another replica, or this one restarted, takes them over).
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.tracker.close();
        if tokio::time::timeout(grace, self.inner.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace over; leaving in-flight jobs to be taken over");
        }
        self.inner.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.inner.tracker.wait()).await;
    }

    /// Refuses new cold requests from now on; jobs already being driven carry on.
    pub fn begin_drain_soft(&self) {
        self.inner.draining.cancel();
    }
}
