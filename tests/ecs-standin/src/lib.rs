//! An ECS stand-in for tests, on loopback only.
//!
//! It speaks the real wire protocol (awsJson1_1) to the real SDK client: `RegisterTaskDefinition`,
//! `RunTask` (task-definition lookup, `clientToken` idempotency, `startedBy`, tags, container
//! overrides), `ListTasks` (paged, by cluster, `startedBy` and desired status), `DescribeTasks`
//! (with tags; unknown tasks as `MISSING` failures) and `StopTask`. Replies can be scripted per
//! operation (throttling, `failures[]`, permission errors) for what a healthy ECS never does.
//!
//! With images configured ([`StandInConfig::images`]), an agent runs every launched task as a
//! real process: each on a loopback address of its own, reported as the task's
//! `privateIPv4Address`, with the task metadata endpoint v4 served here
//! (`ECS_CONTAINER_METADATA_URI_V4`). Without images, tasks only move when the test moves them.
//!
//! What it does not prove: IAM (roles, `iam:PassRole`), ENIs, security groups and subnets,
//! image pulls, Fargate's timing and capacity. See `deploy/README.md`.

mod addresses;
mod agent;
mod metadata;
mod model;
mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::{get, post};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use model::{Call, ContainerDef, HealthCheck, Reply, Task, TaskDefinition};

/// How the agent runs one image on this host.
#[derive(Clone, Debug)]
pub struct Image {
    /// The host binary that stands for the image's entrypoint.
    pub binary: PathBuf,
    /// Where the entrypoint lives inside the image (e.g. `/usr/local/bin/htsprep-worker`): health
    /// check commands naming it run `binary` instead.
    pub path_in_image: String,
    /// The image's default command (`CMD`).
    pub command: Vec<String>,
    /// The image's environment (`ENV`); `{root}` is replaced by the task's own directory.
    pub env: Vec<(String, String)>,
}

#[derive(Clone, Debug, Default)]
pub struct StandInConfig {
    /// Image name → how to run it. Empty: no agent; tasks stay PROVISIONING until moved.
    pub images: HashMap<String, Image>,
    /// Secrets (`valueFrom` → value) that task definitions may name.
    pub secrets: HashMap<String, String>,
}

/// The stand-in's shared state: the model, the agent's bookkeeping, the server's address.
pub(crate) struct Shared {
    pub state: Mutex<model::State>,
    pub config: StandInConfig,
    pub addr: SocketAddr,
    pub addresses: addresses::Addresses,
    /// One per task the agent runs: cancelled by `StopTask`.
    stops: Mutex<HashMap<String, CancellationToken>>,
    /// Task directories.
    pub root: tempfile::TempDir,
    /// Cancelled when the stand-in stops.
    pub stop: CancellationToken,
    pub tracker: TaskTracker,
}

impl Shared {
    pub fn stop_token(&self, arn: &str) -> CancellationToken {
        self.stops
            .lock()
            .expect("stops")
            .entry(arn.to_owned())
            .or_default()
            .clone()
    }

    pub fn request_stop(&self, arn: &str) {
        if let Some(t) = self.stops.lock().expect("stops").get(arn) {
            t.cancel();
        }
    }
}

/// A running stand-in; stopping it (drop) kills every task process it started.
pub struct EcsStandIn {
    shared: Arc<Shared>,
}

impl EcsStandIn {
    /// Starts the stand-in on a loopback port.
    pub async fn start(config: StandInConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the ECS stand-in on loopback");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            config,
            addr,
            addresses: addresses::Addresses::new(),
            stops: Mutex::default(),
            root: tempfile::tempdir().expect("task directories"),
            stop: CancellationToken::new(),
            tracker: TaskTracker::new(),
        });
        let app = Router::new()
            .route("/", post(wire::handle))
            .route("/v4/{id}", get(metadata::container))
            .route("/v4/{id}/task", get(metadata::task))
            .with_state(Arc::clone(&shared));
        let stop = shared.stop.clone();
        shared.tracker.spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        Self { shared }
    }

    /// The endpoint to give the SDK (`AWS_ENDPOINT_URL_ECS`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// Registers a task definition (as `RegisterTaskDefinition` would); returns its ARN.
    pub fn register(&self, family: &str, containers: Vec<ContainerDef>) -> String {
        self.lock().register(family, containers).arn
    }

    /// The next calls of `op` get these replies, in order; later calls are served normally.
    pub fn script(&self, op: &str, replies: impl IntoIterator<Item = Reply>) {
        self.lock()
            .scripts
            .entry(op.to_owned())
            .or_default()
            .extend(replies);
    }

    /// The calls of `op` received so far.
    pub fn calls(&self, op: &str) -> Vec<Call> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.op == op)
            .cloned()
            .collect()
    }

    /// Adds a task as if ECS had started it (no process runs it); returns its ARN.
    pub fn add_task(
        &self,
        cluster: &str,
        started_by: &str,
        last_status: &str,
        health: Option<&str>,
    ) -> String {
        let ip = self.shared.addresses.next();
        self.lock().add_task(Task {
            arn: String::new(),
            id: String::new(),
            cluster: model::cluster_name(cluster).to_owned(),
            task_definition: None,
            started_by: started_by.into(),
            tags: Vec::new(),
            ip,
            last_status: last_status.into(),
            desired_status: "RUNNING".into(),
            health: health.map(str::to_owned),
            created_at: model::now_epoch(),
            started_at: None,
            stopped_at: None,
            stopped_reason: None,
            stop_code: None,
            exit_code: None,
            env_overrides: Vec::new(),
            command_override: None,
            pid: None,
            capacity_provider: None,
        })
    }

    /// Changes a task as ECS would report it (for tasks no process runs).
    pub fn set_task(&self, arn: &str, last_status: &str, health: Option<&str>) {
        let mut s = self.lock();
        let t = s.tasks.get_mut(arn).expect("known task");
        t.last_status = last_status.into();
        t.health = health.map(str::to_owned);
        if last_status == "STOPPED" {
            t.desired_status = "STOPPED".into();
        }
    }

    /// Stops a task (no process runs it) as ECS would report it: `stoppedReason` and exit code.
    pub fn set_stopped(&self, arn: &str, reason: &str, exit_code: Option<i32>) {
        let mut s = self.lock();
        let t = s.tasks.get_mut(arn).expect("known task");
        t.last_status = "STOPPED".into();
        t.desired_status = "STOPPED".into();
        t.stopped_reason = Some(reason.into());
        t.exit_code = exit_code;
        t.stopped_at = Some(model::now_epoch());
    }

    /// Reports this address for the task instead of its own (to test what dials it).
    pub fn set_task_ip(&self, arn: &str, ip: &str) {
        self.lock().tasks.get_mut(arn).expect("known task").ip = ip.into();
    }

    pub fn task(&self, arn: &str) -> Task {
        self.lock().tasks[arn].clone()
    }

    /// Every task, stopped ones included, oldest first.
    pub fn tasks(&self) -> Vec<Task> {
        let mut tasks: Vec<Task> = self.lock().tasks.values().cloned().collect();
        tasks.sort_by(|a, b| a.created_at.total_cmp(&b.created_at));
        tasks
    }

    /// The value of tag `key` on a task.
    pub fn tag(task: &Task, key: &str) -> Option<String> {
        task.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    /// The most tasks that were not stopped at any one time.
    pub fn peak_active(&self) -> usize {
        self.lock().peak_active
    }

    /// Sends a signal to the process running a task (`SIGKILL`: the container dies; `SIGSTOP`:
    /// it hangs). Returns false if no process runs it.
    pub fn signal(&self, arn: &str, signal: Signal) -> bool {
        match self.lock().tasks.get(arn).and_then(|t| t.pid) {
            Some(pid) => kill(Pid::from_raw(pid as i32), signal).is_ok(),
            None => false,
        }
    }

    /// The task's own directory (its container's filesystem).
    pub fn task_dir(&self, arn: &str) -> PathBuf {
        self.shared.root.path().join(&self.task(arn).id)
    }

    /// The task as `DescribeTasks` would answer (for assertions on the wire shape).
    pub fn describe(&self, arn: &str) -> Value {
        self.lock().tasks[arn].json(true)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, model::State> {
        self.shared.state.lock().expect("stand-in state")
    }
}

impl Drop for EcsStandIn {
    fn drop(&mut self) {
        self.shared.stop.cancel();
        let running: Vec<(u32, String)> = self
            .lock()
            .tasks
            .values()
            .filter_map(|t| t.pid.map(|p| (p, t.id.clone())))
            .collect();
        for (pid, id) in running {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            agent::reap(&self.shared.root.path().join(id));
        }
    }
}

/// A container definition with ECS's defaults, to fill in.
pub fn container(name: &str, image: &str) -> ContainerDef {
    ContainerDef {
        name: name.into(),
        image: image.into(),
        command: Vec::new(),
        environment: Vec::new(),
        secrets: Vec::new(),
        health_check: None,
        stop_timeout: std::time::Duration::from_secs(30),
    }
}

/// Environment pairs from `(&str, &str)`s.
pub fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
