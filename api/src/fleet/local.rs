//! The local fleet: `htsprep-worker` processes on this host, on loopback ports of their own, up
//! to a maximum. A worker is reported only after its health check passes, and dropped when its
//! process exits (idle workers stop themselves). Every worker is registered in
//! `{data dir}/workers/`, so an API restarted after a crash adopts the workers it left (they run
//! on, count against the maximum, and take jobs) instead of starting more beside them.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use htsprep_shared::retry::{Retryable, polling};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio_util::task::TaskTracker;

use super::{
    Discovery, Gone, Inspect, Member, ProvisionError, ProvisionRequest, Provisioner, Roster,
    Subscription, WorkerInfo, WorkerSet,
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
    /// The niceness workers run at (through coreutils `nice`; 0: as the API).
    pub nice: u8,
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
    /// The worker processes: the live ones (by id, with their pid), and those that exited lately.
    members: Mutex<Members>,
    inflight: Coalesce<Result<(), ProvisionError>>,
    /// The latest warm-pool tokens served, so each starts at most one worker.
    warmed: Mutex<std::collections::VecDeque<String>>,
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
                members: Mutex::new(Members::default()),
                inflight: Coalesce::default(),
                warmed: Mutex::default(),
                spawn_lock: tokio::sync::Mutex::new(()),
                started: AtomicU64::new(0),
                tracker: TaskTracker::new(),
            }),
        }
    }

    /// Live worker processes.
    pub fn live(&self) -> usize {
        self.inner.members.lock().expect("members lock").live.len()
    }

    /// One more worker unless the fleet is at its maximum; whether one was started.
    async fn ensure_capacity(self) -> Result<bool, ProvisionError> {
        let _guard = self.inner.spawn_lock.lock().await;
        self.adopt_orphans().await;
        let cfg = &self.inner.config;
        if self.live() >= cfg.max_workers {
            return Ok(false);
        }
        self.spawn_worker().await.map(|()| true)
    }

    async fn spawn_worker(&self) -> Result<(), ProvisionError> {
        let cfg = &self.inner.config;
        let fail = |what: String| ProvisionError::Capacity {
            message: what,
            retry_after: Duration::from_secs(2),
        };
        let mut command = if cfg.nice > 0 {
            let mut nice = Command::new("nice");
            nice.arg("-n")
                .arg(cfg.nice.to_string())
                .arg(&cfg.worker_bin);
            nice
        } else {
            Command::new(&cfg.worker_bin)
        };
        let mut child = command
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
        let entry = Registered {
            pid,
            grpc: grpc.clone(),
            health,
        };
        self.register(&id, &entry);
        self.inner
            .member_started(&id, pid, &grpc, Some(chrono::Utc::now()));
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
            let why = match &status {
                Ok(s) => format!("its process exited ({s})"),
                Err(e) => format!("its process could not be waited for: {e}"),
            };
            inner.forget(&id, why);
            tracing::info!(worker = %id, ?status, "local worker exited");
        });
        Ok(())
    }

    /// One worker for the warm pool's `token`, unless that token was served (calls with one
    /// token run one at a time, through `inflight`); a capacity error at the maximum.
    async fn warm_once(self, token: String) -> Result<(), ProvisionError> {
        if self
            .inner
            .warmed
            .lock()
            .expect("warmed lock")
            .contains(&token)
        {
            return Ok(());
        }
        if !self.clone().ensure_capacity().await? {
            return Err(ProvisionError::Capacity {
                message: format!(
                    "{} local workers run, the maximum",
                    self.inner.config.max_workers
                ),
                retry_after: Duration::from_secs(2),
            });
        }
        let mut warmed = self.inner.warmed.lock().expect("warmed lock");
        warmed.push_back(token);
        if warmed.len() > 64 {
            warmed.pop_front();
        }
        Ok(())
    }

    fn registry(&self) -> PathBuf {
        self.inner.config.data_dir.join("workers")
    }

    fn register(&self, id: &str, entry: &Registered) {
        let dir = self.registry();
        let written = std::fs::create_dir_all(&dir).and_then(|()| {
            std::fs::write(
                dir.join(format!("{id}.json")),
                serde_json::to_vec(entry).unwrap_or_default(),
            )
        });
        if let Err(e) = written {
            tracing::warn!(worker = %id, error = %htsprep_shared::error::chain(&e), "could not register the worker; a restarted API will not adopt it");
        }
    }

    /// Adopts the registered workers whose API is gone: alive, running the worker binary, not a
    /// child of a live `htsprep-api`, and healthy. Registrations of dead workers are removed.
    pub async fn adopt_orphans(&self) {
        let Ok(entries) = std::fs::read_dir(self.registry()) else {
            return;
        };
        for path in entries.flatten().map(|e| e.path()) {
            let Some(id) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
                continue;
            };
            if self
                .inner
                .members
                .lock()
                .expect("members lock")
                .live
                .contains_key(&id)
            {
                continue;
            }
            let entry: Option<Registered> = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            let Some(entry) = entry.filter(|e| id == format!("pid-{}", e.pid)) else {
                let _ = std::fs::remove_file(&path);
                continue;
            };
            if !runs_binary(entry.pid, &self.inner.config.worker_bin) {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            if parent_is_live_api(entry.pid) {
                continue; // another API process's worker
            }
            if wait_healthy(&entry.health, Duration::from_secs(2))
                .await
                .is_err()
            {
                continue; // draining or stuck: it stops by itself, or the stale threshold acts
            }
            self.inner.member_started(&id, entry.pid, &entry.grpc, None);
            self.inner.set.add(WorkerInfo {
                id: id.clone(),
                provider: "local".into(),
                address: entry.grpc.clone(),
                started_for: None,
            });
            tracing::info!(worker = %id, grpc = %entry.grpc, "adopted a worker a previous API process left");
            let inner = Arc::clone(&self.inner);
            let bin = self.inner.config.worker_bin.clone();
            let pid = entry.pid;
            self.inner.tracker.spawn(async move {
                // Not our child: watch for its exit.
                while runs_binary(pid, &bin) {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                inner.forget(&id, "its process exited".into());
                tracing::info!(worker = %id, "adopted local worker exited");
            });
        }
    }
}

/// What a worker's registration says of it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Registered {
    pid: u32,
    grpc: String,
    health: String,
}

/// How many exited workers the roster keeps.
const EXITED_KEPT: usize = 20;

/// The roster's records: one owner, the fleet's `Inner`.
#[derive(Debug, Default)]
struct Members {
    /// By id: the process id, and the worker as the roster shows it.
    live: std::collections::BTreeMap<String, (u32, Member)>,
    /// Newest first.
    exited: std::collections::VecDeque<Member>,
}

impl Inner {
    /// A healthy worker joined the fleet (started, or adopted with its start time unknown).
    fn member_started(
        &self,
        id: &str,
        pid: u32,
        grpc: &str,
        at: Option<chrono::DateTime<chrono::Utc>>,
    ) {
        let member = Member {
            provider: "local".into(),
            id: id.to_owned(),
            address: Some(grpc.to_owned()),
            health: "healthy".into(),
            last_status: "RUNNING".into(),
            started_at: at,
            started_for: None,
            stopped_reason: None,
        };
        self.members
            .lock()
            .expect("members lock")
            .live
            .insert(id.to_owned(), (pid, member));
    }

    /// The process ids of the live workers.
    fn pids(&self) -> Vec<u32> {
        let members = self.members.lock().expect("members lock");
        members.live.values().map(|(pid, _)| *pid).collect()
    }

    /// A worker that exited, and why: out of the set, the live workers and the registry.
    fn forget(&self, id: &str, why: String) {
        self.set.drop_worker(id);
        {
            let mut members = self.members.lock().expect("members lock");
            if let Some((_, mut m)) = members.live.remove(id) {
                m.last_status = "EXITED".into();
                m.health = "unknown".into();
                m.stopped_reason = Some(why);
                members.exited.push_front(m);
                members.exited.truncate(EXITED_KEPT);
            }
        }
        let _ = std::fs::remove_file(
            self.config
                .data_dir
                .join("workers")
                .join(format!("{id}.json")),
        );
    }
}

/// Whether process `pid` runs `binary` (a binary rebuilt under it reads "name (deleted)").
fn runs_binary(pid: u32, binary: &std::path::Path) -> bool {
    let Some(name) = binary.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return false;
    };
    std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| {
        exe.file_name()
            .is_some_and(|n| n.to_string_lossy().trim_end_matches(" (deleted)") == name)
    })
}

/// Whether `pid`'s parent is a running `htsprep-api` (whose fleet owns it).
fn parent_is_live_api(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis.
    let ppid = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
        .and_then(|p| p.parse::<u32>().ok());
    ppid.is_some_and(|ppid| {
        std::fs::read_link(format!("/proc/{ppid}/exe")).is_ok_and(|exe| {
            exe.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("htsprep-api"))
        })
    })
}

async fn wait_healthy(health: &str, within: Duration) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!("http://{health}/health");
    let probe = || async {
        match client.get(&url).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("HTTP {}", r.status())),
            Err(e) => Err(e.to_string()),
        }
    };
    let polled = probe.retry(polling(Duration::from_millis(50), within));
    match tokio::time::timeout(within, polled).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer from {url} within {within:?}")),
    }
}

#[async_trait]
impl Provisioner for LocalFleet {
    async fn provision(&self, req: &ProvisionRequest) -> Result<(), ProvisionError> {
        let fleet = self.clone();
        self.inner
            .inflight
            .run(&req.workflow_key, move || {
                // At the maximum the job waits for a slot on the workers there.
                fleet.ensure_capacity().map(|r| r.map(|_| ())).boxed()
            })
            .await
    }

    /// Local workers take any job: one more worker, under the same lock and maximum.
    async fn warm(&self, token: &str) -> Result<(), ProvisionError> {
        let (fleet, token) = (self.clone(), token.to_owned());
        self.inner
            .inflight
            .run(&format!("warm.{token}"), move || {
                fleet.warm_once(token).boxed()
            })
            .await
    }

    /// None: `warm` returns once its worker is healthy and discovered.
    fn warming(&self) -> usize {
        0
    }

    fn started(&self) -> u64 {
        self.inner.started.load(Ordering::SeqCst)
    }

    async fn shutdown(&self) {
        for pid in self.inner.pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        self.inner.tracker.close();
        let grace = self.inner.config.drain_grace + Duration::from_secs(5);
        if tokio::time::timeout(grace, self.inner.tracker.wait())
            .await
            .is_err()
        {
            for pid in self.inner.pids() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            self.inner.tracker.wait().await;
        }
    }
}

#[async_trait]
impl Roster for LocalFleet {
    async fn roster(&self) -> Result<Vec<Member>, String> {
        let members = self.inner.members.lock().expect("members lock");
        Ok(members
            .live
            .values()
            .map(|(_, m)| m)
            .chain(members.exited.iter())
            .cloned()
            .collect())
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
