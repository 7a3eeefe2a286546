//! The warm pool: keeps at least `min_idle` workers idle and ready, within the worker maximum,
//! so that a cold job finds a worker waiting instead of waiting for one to start (a Fargate task
//! takes tens of seconds). Every round it asks each worker how busy it is (`Status`), keeps the
//! first `min_idle` idle ones (by id, so every replica keeps the same ones) from stopping on
//! their idle timeout (`Status` with `keep_warm`), and starts the missing ones for no job
//! (`Provisioner::warm`). Workers beyond the minimum are let go: they stop once idle for their
//! timeout. Each API replica runs a pool over the whole fleet; the fleet keeps the largest
//! minimum any replica asks for.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use htsprep_proto::v1 as pb;
use htsprep_proto::v1::worker_client::WorkerClient;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

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
    last: Mutex<WarmView>,
    launched: AtomicU64,
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
                launched: AtomicU64::new(0),
            }),
        })
    }

    pub fn min_idle(&self) -> usize {
        self.inner.min_idle.load(Ordering::SeqCst)
    }

    /// Changes the minimum at run time (this replica, until it restarts); the next round acts
    /// on it at once.
    pub fn set_min_idle(&self, n: usize) -> Result<(), TooMany> {
        check(n, self.inner.parts.max_workers)?;
        self.inner.min_idle.store(n, Ordering::SeqCst);
        self.inner.changed.notify_one();
        Ok(())
    }

    pub fn view(&self) -> WarmView {
        let mut view = self.inner.last.lock().expect("warm view lock").clone();
        view.min_idle = self.min_idle();
        view.launched = self.inner.launched.load(Ordering::Relaxed);
        view
    }

    /// How often a round runs: a few times within the workers' idle timeout, at most every 5 s.
    fn every(&self) -> Duration {
        (self.inner.parts.idle_timeout / 3)
            .clamp(Duration::from_millis(250), Duration::from_secs(5))
    }

    /// Runs rounds until `stop`: on a timer, when the fleet changes and when the minimum does.
    pub async fn run(self, stop: CancellationToken) {
        let mut fleet = self.inner.parts.discovery.subscribe();
        loop {
            let workers = fleet.current();
            // Without a minimum the pool leaves the fleet alone (the default).
            if self.min_idle() > 0 {
                tokio::select! {
                    () = self.round(&workers) => {}
                    () = stop.cancelled() => return,
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.every()) => {}
                () = self.inner.changed.notified() => {}
                _ = fleet.next() => {}
            }
        }
    }

    /// One round over `workers` (the ones discovery reports now).
    pub async fn round(&self, workers: &[WorkerInfo]) {
        let parts = &self.inner.parts;
        let statuses = join_all(workers.iter().map(|w| self.ask(w, false))).await;
        let mut idle: Vec<&WorkerInfo> = workers
            .iter()
            .zip(&statuses)
            .filter(|(_, s)| matches!(s, Ok(s) if s.in_flight == 0 && !s.draining))
            .map(|(w, _)| w)
            .collect();
        idle.sort_by(|a, b| a.id.cmp(&b.id));
        let min_idle = self.min_idle();
        let kept: Vec<&WorkerInfo> = idle.iter().copied().take(min_idle).collect();
        for (w, kept) in kept
            .iter()
            .zip(join_all(kept.iter().map(|w| self.ask(w, true))).await)
        {
            if let Err(e) = kept {
                tracing::debug!(worker = %w.id, error = %e, "could not keep the worker warm");
            }
        }
        let warming = parts.provisioner.warming();
        let missing = min_idle.saturating_sub(idle.len() + warming);
        let room = parts.max_workers.saturating_sub(workers.len() + warming);
        *self.inner.last.lock().expect("warm view lock") = WarmView {
            min_idle,
            idle: idle.len(),
            warming,
            kept: kept.iter().map(|w| w.id.clone()).collect(),
            launched: 0,
        };
        for _ in 0..missing.min(room) {
            let token = uuid::Uuid::new_v4().simple().to_string();
            match parts.provisioner.warm(&token).await {
                Ok(()) => {
                    self.inner.launched.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        min_idle,
                        idle = idle.len(),
                        "started a worker for the warm pool"
                    );
                }
                Err(e @ ProvisionError::Capacity { .. }) => {
                    tracing::info!(error = %e, "the warm pool waits for capacity");
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, "the warm pool cannot start workers");
                    break;
                }
            }
        }
    }

    /// Asks one worker how busy it is (and, with `keep_warm`, keeps it from stopping).
    async fn ask(
        &self,
        worker: &WorkerInfo,
        keep_warm: bool,
    ) -> Result<pb::StatusResponse, String> {
        let parts = &self.inner.parts;
        let asked = async {
            let channel = parts.dial.connect(worker).await.map_err(|e| match e {
                Unconnected::Refused(r) | Unconnected::Unreachable(r) => r,
            })?;
            let request = authorized(pb::StatusRequest { keep_warm }, &parts.worker_token)?;
            WorkerClient::new(channel)
                .status(request)
                .await
                .map(tonic::Response::into_inner)
                .map_err(|s| format!("worker {}: {}", worker.id, s.message()))
        };
        tokio::time::timeout(ASK_WITHIN, asked)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "worker {} did not answer within {ASK_WITHIN:?}",
                    worker.id
                ))
            })
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
