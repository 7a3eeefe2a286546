//! The warm pool: keeps at least `min_idle` workers idle and ready, within the worker maximum,
//! so that a cold job finds a worker waiting instead of waiting for one to start (a Fargate task
//! takes tens of seconds). Every round it asks each worker how busy it is (`Status`), keeps the
//! first `min_idle` idle ones (by id, so every replica keeps the same ones) from stopping on
//! their idle timeout (`Status` with `keep_warm`), and starts the missing ones for no job
//! (`Provisioner::warm`). Workers beyond the minimum are let go: they stop once idle for their
//! timeout. Launches run beside the rounds (keeping workers warm never waits for one to start)
//! and back off after failures (a refusal, no capacity) and beyond a launch limit (workers that
//! do not stay up would otherwise be replaced without end). Each API
//! replica runs a pool over the whole fleet; the fleet keeps the largest minimum any replica asks
//! for (replicas that launch before seeing each other's new workers start a few too many, which
//! stop once idle for their timeout).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::join_all;
use htsprep_proto::v1 as pb;
use htsprep_proto::v1::worker_client::WorkerClient;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::executor::DialPolicy;
use crate::executor::dial::{Unconnected, authorized};
use crate::fleet::{Discovery, ProvisionError, Provisioner, WorkerInfo};

/// What the pool works with.
pub struct WarmParts {
    pub provisioner: Arc<dyn Provisioner>,
    pub discovery: Arc<dyn Discovery>,
    pub dial: DialPolicy,
    pub worker_token: String,
    pub max_workers: usize,
    /// `HTSPREP_MIN_IDLE_WORKERS`.
    pub min_idle: usize,
    /// How long an idle worker lives unless kept warm (`HTSPREP_WORKER_IDLE_SECONDS`): the pool
    /// calls well within it.
    pub idle_timeout: Duration,
}

#[derive(Clone)]
pub struct WarmPool {
    inner: Arc<Inner>,
}

struct Inner {
    parts: WarmParts,
    min_idle: AtomicUsize,
    changed: Notify,
    /// What the last round saw (the idle count is `idle`, which the executor reads).
    last: Mutex<Seen>,
    idle: IdleHint,
    launched: AtomicU64,
    /// A batch of launches runs (at most one at a time).
    launching: AtomicBool,
    launches: Mutex<Launches>,
}

/// The pool's launches: when recent ones happened, and until when to wait after failures.
#[derive(Default)]
struct Launches {
    recent: VecDeque<Instant>,
    failures: u32,
    not_before: Option<(Instant, String)>,
}

/// Of a round, what the view shows beside the idle count.
#[derive(Clone, Debug, Default)]
struct Seen {
    warming: usize,
    kept: Vec<String>,
}

/// The warm pool's last count of idle workers, for the executor: a cold job with fewer older
/// jobs ahead of it than that waits for one of them instead of starting a worker.
#[derive(Clone, Debug, Default)]
pub struct IdleHint(Arc<AtomicUsize>);

impl IdleHint {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// The pool as its last round saw it (`GET /fleet`, `/metrics`); rounds run while a minimum
/// is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct WarmView {
    /// The minimum of idle workers kept.
    pub min_idle: usize,
    /// Workers with no job, ready.
    pub idle: usize,
    /// Workers started for the pool and not ready yet.
    pub warming: usize,
    /// The idle workers kept from stopping.
    pub kept: Vec<String>,
    /// Workers this replica started for the pool.
    pub launched: u64,
    /// Why the pool starts no worker now, until when (after a failure).
    pub backoff: Option<String>,
}

/// A minimum the fleet cannot hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a warm pool of {asked} idle worker(s) exceeds the worker maximum of {max} (HTSPREP_MAX_WORKERS)"
)]
pub struct TooMany {
    pub asked: usize,
    pub max: usize,
}

/// How long a worker gets to answer `Status`.
const ASK_WITHIN: Duration = Duration::from_secs(3);
/// The pool starts at most twice its minimum plus two workers in this window.
const LAUNCH_WINDOW: Duration = Duration::from_secs(600);
/// The longest pause after failed launches.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

impl std::fmt::Debug for WarmPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarmPool")
            .field("min_idle", &self.min_idle())
            .finish_non_exhaustive()
    }
}

impl WarmPool {
    /// Refuses a minimum above the worker maximum.
    pub fn new(parts: WarmParts) -> Result<Self, TooMany> {
        check(parts.min_idle, parts.max_workers)?;
        Ok(Self {
            inner: Arc::new(Inner {
                min_idle: AtomicUsize::new(parts.min_idle),
                parts,
                changed: Notify::new(),
                last: Mutex::default(),
                idle: IdleHint::default(),
                launched: AtomicU64::new(0),
                launching: AtomicBool::new(false),
                launches: Mutex::default(),
            }),
        })
    }

    pub fn min_idle(&self) -> usize {
        self.inner.min_idle.load(Ordering::SeqCst)
    }

    /// The count the executor reads (see [`IdleHint`]).
    pub fn idle_hint(&self) -> IdleHint {
        self.inner.idle.clone()
    }

    /// Changes the minimum at run time (this replica, until it restarts); the next round acts
    /// on it at once. At 0 the pool forgets what it saw and lets every worker go.
    pub fn set_min_idle(&self, n: usize) -> Result<(), TooMany> {
        check(n, self.inner.parts.max_workers)?;
        self.inner.min_idle.store(n, Ordering::SeqCst);
        if n == 0 {
            self.forget();
        }
        *self.inner.launches.lock().expect("launches lock") = Launches::default();
        self.inner.changed.notify_one();
        Ok(())
    }

    fn forget(&self) {
        *self.inner.last.lock().expect("warm view lock") = Seen::default();
        self.inner.idle.0.store(0, Ordering::Relaxed);
    }

    pub fn view(&self) -> WarmView {
        let seen = self.inner.last.lock().expect("warm view lock").clone();
        let backoff = self
            .inner
            .launches
            .lock()
            .expect("launches lock")
            .not_before
            .as_ref()
            .filter(|(until, _)| *until > Instant::now())
            .map(|(until, why)| {
                format!(
                    "{why}; next try in {}s",
                    (*until - Instant::now()).as_secs().max(1)
                )
            });
        WarmView {
            min_idle: self.min_idle(),
            idle: self.inner.idle.get(),
            warming: seen.warming,
            kept: seen.kept,
            launched: self.inner.launched.load(Ordering::Relaxed),
            backoff,
        }
    }

    /// How often a round runs: a few times within the workers' idle timeout, at most every 5 s.
    fn every(&self) -> Duration {
        (self.inner.parts.idle_timeout / 3)
            .clamp(Duration::from_millis(250), Duration::from_secs(5))
    }

    /// Runs rounds until `stop`: on a timer, when the fleet changes and when the minimum does.
    pub async fn run(self, stop: CancellationToken) {
        let mut fleet = self.inner.parts.discovery.subscribe();
        let launches = tokio_util::task::TaskTracker::new();
        loop {
            // Without a minimum the pool leaves the fleet alone (the default).
            if self.min_idle() > 0 {
                let workers = fleet.current();
                tokio::select! {
                    () = self.round(&workers, &launches) => {}
                    () = stop.cancelled() => break,
                }
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(self.every()) => {}
                () = self.inner.changed.notified() => {}
                _ = fleet.next() => {
                    // One round for a burst of changes (a subscription starts with every worker).
                    while let Some(Some(_)) = fleet.next().now_or_never() {}
                }
            }
        }
        // A launch in progress finishes (a local worker half started would be left running).
        launches.close();
        launches.wait().await;
    }

    /// One round over `workers` (the ones discovery reports now); launches go to `launches`.
    async fn round(&self, workers: &[WorkerInfo], launches: &tokio_util::task::TaskTracker) {
        let parts = &self.inner.parts;
        let asked = join_all(workers.iter().map(|w| self.ask(w))).await;
        let mut idle: Vec<(&WorkerInfo, Channel)> = workers
            .iter()
            .zip(asked)
            .filter_map(|(w, asked)| match asked {
                Ok((channel, s)) if s.in_flight == 0 && !s.draining => Some((w, channel)),
                _ => None,
            })
            .collect();
        idle.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        let min_idle = self.min_idle();
        if min_idle == 0 {
            return self.forget(); // set to 0 while this round asked
        }
        let kept = &idle[..idle.len().min(min_idle)];
        let answers = join_all(
            kept.iter()
                .map(|(w, channel)| self.status(w, channel.clone(), true)),
        )
        .await;
        for ((w, _), answer) in kept.iter().zip(answers) {
            if let Err(e) = answer {
                tracing::debug!(worker = %w.id, error = %e, "could not keep the worker warm");
            }
        }
        let warming = parts.provisioner.warming();
        self.inner.idle.0.store(idle.len(), Ordering::Relaxed);
        *self.inner.last.lock().expect("warm view lock") = Seen {
            warming,
            kept: kept.iter().map(|(w, _)| w.id.clone()).collect(),
        };
        let missing = min_idle.saturating_sub(idle.len() + warming);
        let room = parts.max_workers.saturating_sub(workers.len() + warming);
        let wanted = missing.min(room);
        if wanted > 0
            && self.may_launch(min_idle)
            && !self.inner.launching.swap(true, Ordering::SeqCst)
        {
            let pool = self.clone();
            launches.spawn(async move {
                pool.launch(wanted).await;
                pool.inner.launching.store(false, Ordering::SeqCst);
                pool.inner.changed.notify_one();
            });
        }
    }

    /// Whether launches may go ahead: not backing off after a failure, and under the pool's
    /// launch limit (a pool whose workers keep dying must not start tasks without end; under
    /// load, jobs start their own workers meanwhile).
    fn may_launch(&self, min_idle: usize) -> bool {
        let mut l = self.inner.launches.lock().expect("launches lock");
        let now = Instant::now();
        if l.not_before.as_ref().is_some_and(|(until, _)| *until > now) {
            return false;
        }
        while l.recent.front().is_some_and(|at| now - *at > LAUNCH_WINDOW) {
            l.recent.pop_front();
        }
        let limit = 2 * min_idle + 2;
        if l.recent.len() >= limit {
            let why = format!(
                "the pool started {limit} workers in the last {} min, its limit",
                LAUNCH_WINDOW.as_secs() / 60
            );
            tracing::warn!("warm pool: {why}; waiting");
            let until = l.recent.front().map_or(now, |at| *at + LAUNCH_WINDOW);
            l.not_before = Some((until, why));
            return false;
        }
        true
    }

    /// Starts up to `n` workers, one after another; stops at the first failure and backs off.
    async fn launch(&self, n: usize) {
        for _ in 0..n {
            let token = uuid::Uuid::new_v4().simple().to_string();
            let result = self.inner.parts.provisioner.warm(&token).await;
            let mut l = self.inner.launches.lock().expect("launches lock");
            match result {
                Ok(()) => {
                    l.recent.push_back(Instant::now());
                    l.failures = 0;
                    l.not_before = None;
                    self.inner.launched.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        min_idle = self.min_idle(),
                        "started a worker for the warm pool"
                    );
                }
                Err(e) => {
                    let retry_after = match &e {
                        ProvisionError::Capacity { retry_after, .. } => Some(*retry_after),
                        ProvisionError::Permanent(_) => None,
                    };
                    tracing::warn!(error = %e, "the warm pool could not start a worker; backing off");
                    l.fail(e.to_string(), retry_after);
                    return;
                }
            }
        }
    }

    /// Asks one worker how busy it is; the channel serves the keep-warm call after.
    async fn ask(&self, worker: &WorkerInfo) -> Result<(Channel, pb::StatusResponse), String> {
        let channel = tokio::time::timeout(ASK_WITHIN, self.inner.parts.dial.connect(worker))
            .await
            .map_err(|_| format!("worker {} did not answer within {ASK_WITHIN:?}", worker.id))?
            .map_err(|e| match e {
                Unconnected::Refused(r) | Unconnected::Unreachable(r) => r,
            })?;
        let status = self.status(worker, channel.clone(), false).await?;
        Ok((channel, status))
    }

    /// `Status` over `channel` (with `keep_warm`, the worker does not stop on its idle timeout).
    async fn status(
        &self,
        worker: &WorkerInfo,
        channel: Channel,
        keep_warm: bool,
    ) -> Result<pb::StatusResponse, String> {
        let request = authorized(
            pb::StatusRequest { keep_warm },
            &self.inner.parts.worker_token,
        )?;
        match tokio::time::timeout(ASK_WITHIN, WorkerClient::new(channel).status(request)).await {
            Ok(Ok(answer)) => Ok(answer.into_inner()),
            Ok(Err(s)) => Err(format!("worker {}: {}", worker.id, s.message())),
            Err(_) => Err(format!(
                "worker {} did not answer within {ASK_WITHIN:?}",
                worker.id
            )),
        }
    }
}

impl Launches {
    /// A failure: wait `retry_after` (capacity), else 30 s doubling per failure up to 10 min.
    fn fail(&mut self, why: String, retry_after: Option<Duration>) {
        self.failures += 1;
        let doubling = Duration::from_secs(30)
            .saturating_mul(1 << (self.failures - 1).min(5))
            .min(MAX_BACKOFF);
        let wait = retry_after.unwrap_or(doubling);
        self.not_before = Some((Instant::now() + wait, why));
    }
}

/// The one rule for a minimum: the pool is part of the fleet.
pub(crate) fn check(asked: usize, max: usize) -> Result<(), TooMany> {
    if asked > max {
        Err(TooMany { asked, max })
    } else {
        Ok(())
    }
}
