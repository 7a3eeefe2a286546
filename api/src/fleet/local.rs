//! The local fleet: `htsprep-worker` processes on this host, on loopback ports of their own, up
//! to a maximum. A worker is reported only after its health check passes, and dropped when its
//! process exits (idle workers stop themselves).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio_util::task::TaskTracker;

use super::{
    Discovery, Gone, Inspect, ProvisionError, ProvisionRequest, Provisioner, Subscription,
    WorkerInfo, WorkerSet,
};
use crate::coalesce::Coalesce;

#[derive(Clone, Debug)]
pub struct LocalFleetConfig {
    /// The `htsprep-worker` binary.
    pub worker_bin: PathBuf,
    /// Passed to workers as `HTSPREP_DATA_DIR` (so they share the embedded stores).
    pub data_dir: PathBuf,
    pub max_workers: usize,
    /// Jobs one worker runs at once (`HTSPREP_WORKER_MAX_JOBS`).
    pub jobs_per_worker: usize,
    pub idle_timeout: Duration,
    pub heartbeat: Duration,
    pub drain_grace: Duration,
    /// The gRPC token workers require.
    pub token: String,
    /// How long a new worker gets to become healthy.
    pub start_timeout: Duration,
}

#[derive(Clone, Debug)]
pub struct LocalFleet {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: LocalFleetConfig,
    set: WorkerSet,
    /// Live worker processes by id.
    children: Mutex<HashMap<String, u32>>,
    inflight: Coalesce<Result<(), ProvisionError>>,
    spawn_lock: tokio::sync::Mutex<()>,
    started: AtomicU64,
    tracker: TaskTracker,
}

impl LocalFleet {
    pub fn new(config: LocalFleetConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                set: WorkerSet::new(),
                children: Mutex::new(HashMap::new()),
                inflight: Coalesce::default(),
                spawn_lock: tokio::sync::Mutex::new(()),
                started: AtomicU64::new(0),
                tracker: TaskTracker::new(),
            }),
        }
    }

    /// Live worker processes.
    pub fn live(&self) -> usize {
        self.inner.children.lock().expect("children lock").len()
    }

    async fn ensure_capacity(self) -> Result<(), ProvisionError> {
        let _guard = self.inner.spawn_lock.lock().await;
        let cfg = &self.inner.config;
        if self.live() >= cfg.max_workers {
            return Ok(());
        }
        self.spawn_worker().await
    }

    async fn spawn_worker(&self) -> Result<(), ProvisionError> {
        let cfg = &self.inner.config;
        let fail = |what: String| ProvisionError::Capacity {
            message: what,
            retry_after: Duration::from_secs(2),
        };
        let mut child = Command::new(&cfg.worker_bin)
            .env("HTSPREP_DATA_DIR", &cfg.data_dir)
            .env("HTSPREP_WORKER_LISTEN", "127.0.0.1:0")
            .env("HTSPREP_WORKER_HEALTH_LISTEN", "127.0.0.1:0")
            .env("HTSPREP_WORKER_TOKEN", &cfg.token)
            .env("HTSPREP_WORKER_MAX_JOBS", cfg.jobs_per_worker.to_string())
            .env(
                "HTSPREP_WORKER_IDLE_TIMEOUT_SECONDS",
                cfg.idle_timeout.as_secs().max(1).to_string(),
            )
            .env(
                "HTSPREP_WORKER_DRAIN_GRACE_SECONDS",
                cfg.drain_grace.as_secs().to_string(),
            )
            .env(
                "HTSPREP_HEARTBEAT_SECONDS",
                cfg.heartbeat.as_secs().max(1).to_string(),
            )
            .env("HTSPREP_WORKER_PROVIDER", "local")
            .env_remove("HTSPREP_WORKER_RESOURCE_ID")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .map_err(|e| {
                ProvisionError::Permanent(format!(
                    "could not start {}: {e}",
                    cfg.worker_bin.display()
                ))
            })?;
        let pid = child.id().unwrap_or_default();
        let id = format!("pid-{pid}");
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let ready = tokio::time::timeout(cfg.start_timeout, lines.next_line()).await;
        let line = match ready {
            Ok(Ok(Some(line))) => line,
            other => {
                let _ = child.kill().await;
                return Err(fail(format!("worker {id} did not start: {other:?}")));
            }
        };
        // Keep reading so the worker never writes to a closed pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .map(str::to_owned)
        };
        let (Some(grpc), Some(health)) = (field("grpc="), field("health=")) else {
            let _ = child.kill().await;
            return Err(fail(format!(
                "worker {id} printed an unexpected first line: {line:?}"
            )));
        };
        if let Err(e) = wait_healthy(&health, cfg.start_timeout).await {
            let _ = child.kill().await;
            return Err(fail(format!("worker {id} never became healthy: {e}")));
        }
        self.inner.started.fetch_add(1, Ordering::SeqCst);
        self.inner
            .children
            .lock()
            .expect("children lock")
            .insert(id.clone(), pid);
        self.inner.set.add(WorkerInfo {
            id: id.clone(),
            provider: "local".into(),
            address: grpc.clone(),
            started_for: None,
        });
        tracing::info!(worker = %id, %grpc, "local worker started");
        let inner = Arc::clone(&self.inner);
        self.inner.tracker.spawn(async move {
            let status = child.wait().await;
            inner.set.drop_worker(&id);
            inner.children.lock().expect("children lock").remove(&id);
            tracing::info!(worker = %id, ?status, "local worker exited");
        });
        Ok(())
    }
}

async fn wait_healthy(health: &str, within: Duration) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!("http://{health}/health");
    let deadline = tokio::time::Instant::now() + within;
    let mut last = String::new();
    while tokio::time::Instant::now() < deadline {
        match client.get(&url).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = format!("HTTP {}", r.status()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(last)
}

#[async_trait]
impl Provisioner for LocalFleet {
    async fn provision(&self, req: &ProvisionRequest) -> Result<(), ProvisionError> {
        let fleet = self.clone();
        self.inner
            .inflight
            .run(&req.workflow_key, move || fleet.ensure_capacity().boxed())
            .await
    }

    fn started(&self) -> u64 {
        self.inner.started.load(Ordering::SeqCst)
    }

    async fn shutdown(&self) {
        let pids: Vec<u32> = self
            .inner
            .children
            .lock()
            .expect("children lock")
            .values()
            .copied()
            .collect();
        for pid in &pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        self.inner.tracker.close();
        let grace = self.inner.config.drain_grace + Duration::from_secs(5);
        if tokio::time::timeout(grace, self.inner.tracker.wait())
            .await
            .is_err()
        {
            for pid in self.inner.children.lock().expect("children lock").values() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            self.inner.tracker.wait().await;
        }
    }
}

impl Discovery for LocalFleet {
    fn subscribe(&self) -> Subscription {
        self.inner.set.subscribe()
    }
}

#[async_trait]
impl Inspect for LocalFleet {
    /// Worker processes (`pid-N`) that no longer run the worker binary on this host, whichever
    /// API process started them (the local fleet is one host's).
    async fn gone(&self, ids: &[String]) -> Result<Vec<Gone>, String> {
        let binary = self
            .inner
            .config
            .worker_bin
            .file_name()
            .map(|n| n.to_owned())
            .unwrap_or_default();
        Ok(ids
            .iter()
            .filter_map(|id| {
                let pid = id.strip_prefix("pid-")?.parse::<u32>().ok()?;
                let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
                // A binary rebuilt under a running worker reads "name (deleted)".
                let alive = exe.is_some_and(|e| {
                    e.file_name().is_some_and(|n| {
                        n.to_string_lossy().trim_end_matches(" (deleted)")
                            == binary.to_string_lossy()
                    })
                });
                (!alive).then(|| Gone {
                    id: id.clone(),
                    reason: format!("its worker process {id} is gone"),
                    counts_attempt: true,
                })
            })
            .collect())
    }
}
