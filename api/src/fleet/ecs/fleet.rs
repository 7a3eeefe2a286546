//! [`EcsFleet`]: the ECS provisioner and discovery, sharing one view of the tasks this
//! deployment runs.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use htsprep_shared::aws::AwsSettings;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::backoff::Backoff;
use super::classify::EcsFault;
use super::launch::{Purpose, run_task};
use super::poll::{
    Health, TaskView, describe, describe_with_missing, list_running, list_stopped, stop,
};
use super::settings::EcsSettings;
use crate::coalesce::Coalesce;
use crate::fleet::rate::RateLimiter;
use crate::fleet::{
    Discovery, Gone, Inspect, Member, ProvisionError, ProvisionRequest, Provisioner, Roster,
    Subscription, WorkerInfo, WorkerSet,
};

/// A task launched but not yet listed (`ListTasks` is eventually consistent) counts against the
/// maximum this long.
const UNSEEN_GRACE: Duration = Duration::from_secs(60);

/// An ECS client for the configured region and endpoint (`AWS_ENDPOINT_URL_ECS` before
/// `AWS_ENDPOINT_URL`). It does not retry by itself: the fleet backs off and retries (`RunTask`
/// stays idempotent through its `clientToken`).
pub async fn ecs_client(aws: &AwsSettings, ecs: &EcsSettings) -> aws_sdk_ecs::Client {
    let sdk = aws.sdk_config().await;
    let mut conf = aws_sdk_ecs::config::Builder::from(&sdk)
        .retry_config(aws_sdk_ecs::config::retry::RetryConfig::disabled());
    if let Some(url) = &ecs.endpoint_url {
        conf = conf.endpoint_url(url);
    }
    let conf = conf.build();
    aws_sdk_ecs::Client::from_conf(conf)
}

#[derive(Clone, Debug)]
pub struct EcsFleetConfig {
    pub settings: EcsSettings,
    /// Tasks running or starting at most.
    pub max_workers: usize,
    /// Environment overrides for the worker container (the API's heartbeat, idle timeout...).
    pub worker_env: Vec<(String, String)>,
    /// The first wait after a throttling or capacity error (doubles up to 30 s).
    pub backoff_base: Duration,
}

/// What one discovery pass saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollSummary {
    /// Tasks ECS wants running (any last status).
    pub tasks: usize,
    /// Of those, usable workers.
    pub workers: usize,
    /// Unhealthy tasks asked to stop.
    pub stopped: usize,
}

#[derive(Clone, Debug)]
pub struct EcsFleet {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: aws_sdk_ecs::Client,
    config: EcsFleetConfig,
    set: WorkerSet,
    run_limiter: RateLimiter,
    describe_limiter: RateLimiter,
    state: Mutex<State>,
    inflight: Coalesce<Result<(), ProvisionError>>,
    started: AtomicU64,
    polls_failed: AtomicU64,
    stop: CancellationToken,
    tracker: TaskTracker,
}

#[derive(Debug)]
struct State {
    /// Attempts already launched: client token → task ARN.
    launched: HashMap<String, String>,
    /// Tasks the last poll saw with desired status RUNNING.
    live: HashSet<String>,
    /// Tasks launched since, not yet seen by a poll.
    unseen: HashMap<String, Instant>,
    /// `RunTask` calls in flight.
    launching: usize,
    /// Unhealthy tasks already asked to stop.
    stopping: HashSet<String>,
    backoff: Backoff,
    /// What the last poll saw of every task, for the roster.
    seen: Vec<TaskView>,
    /// Warm-pool tasks this replica launched that no poll has seen yet.
    warm_unseen: HashSet<String>,
}

impl State {
    fn running_or_starting(&self) -> usize {
        self.live.len() + self.unseen.len() + self.launching
    }
}

/// Gives back a reserved launch slot however the launch ends (also when it is cancelled).
struct LaunchSlot<'a>(&'a Mutex<State>);

impl Drop for LaunchSlot<'_> {
    fn drop(&mut self) {
        self.0.lock().expect("ecs state lock").launching -= 1;
    }
}

impl EcsFleet {
    /// A fleet that does not poll yet: call [`EcsFleet::start_polling`] (or
    /// [`EcsFleet::poll_once`] in tests).
    pub fn new(client: aws_sdk_ecs::Client, config: EcsFleetConfig) -> Self {
        let s = &config.settings;
        Self {
            inner: Arc::new(Inner {
                client,
                run_limiter: RateLimiter::per_second(
                    s.run_task_per_second,
                    s.run_task_per_second.ceil() as u32,
                ),
                describe_limiter: RateLimiter::per_second(s.describe_per_second, 1),
                state: Mutex::new(State {
                    launched: HashMap::new(),
                    live: HashSet::new(),
                    unseen: HashMap::new(),
                    launching: 0,
                    stopping: HashSet::new(),
                    seen: Vec::new(),
                    warm_unseen: HashSet::new(),
                    backoff: Backoff::new(config.backoff_base, Duration::from_secs(30)),
                }),
                config,
                set: WorkerSet::new(),
                inflight: Coalesce::default(),
                started: AtomicU64::new(0),
                polls_failed: AtomicU64::new(0),
                stop: CancellationToken::new(),
                tracker: TaskTracker::new(),
            }),
        }
    }

    pub fn settings(&self) -> &EcsSettings {
        &self.inner.config.settings
    }

    /// Polls on the configured interval until [`Provisioner::shutdown`]; after failed polls the
    /// interval doubles (up to a minute) and the known workers are kept.
    pub fn start_polling(&self) {
        let fleet = self.clone();
        self.inner.tracker.spawn(async move {
            let every = fleet.settings().poll_every;
            let mut failures: u32 = 0;
            loop {
                let polled = tokio::select! {
                    r = fleet.poll_once() => r,
                    () = fleet.inner.stop.cancelled() => return,
                };
                match polled {
                    Ok(_) => failures = 0,
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        fleet.inner.polls_failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e.message(), failures, "ECS discovery poll failed; keeping the known workers");
                    }
                }
                let wait = (every * 2u32.pow(failures.min(4))).min(Duration::from_secs(60));
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = fleet.inner.stop.cancelled() => return,
                }
            }
        });
    }

    /// Failed discovery polls so far.
    pub fn polls_failed(&self) -> u64 {
        self.inner.polls_failed.load(Ordering::Relaxed)
    }

    /// One discovery pass. On error nothing changes.
    pub async fn poll_once(&self) -> Result<PollSummary, EcsFault> {
        let inner = &self.inner;
        let s = &inner.config.settings;
        let arns = list_running(&inner.client, s, &inner.describe_limiter).await?;
        let views = describe(&inner.client, s, &inner.describe_limiter, &arns).await?;
        let (mut summary, to_stop) = self.apply(&views);
        for arn in to_stop {
            let reason = "htsprep: the worker's health check failed";
            match stop(&inner.client, s, &inner.describe_limiter, &arn, reason).await {
                Ok(()) => {
                    summary.stopped += 1;
                    tracing::warn!(task = %arn, "stopped an unhealthy worker task");
                }
                Err(e) => {
                    tracing::warn!(task = %arn, error = %e.message(), "could not stop an unhealthy worker task; will retry");
                    inner
                        .state
                        .lock()
                        .expect("ecs state lock")
                        .stopping
                        .remove(&arn);
                }
            }
        }
        Ok(summary)
    }

    /// Brings the worker set in line with what ECS reported; returns the tasks to stop.
    fn apply(&self, views: &[TaskView]) -> (PollSummary, Vec<String>) {
        let s = &self.inner.config.settings;
        let seen: HashSet<String> = views.iter().map(|v| v.arn.clone()).collect();
        let mut to_stop = Vec::new();
        let mut workers = 0;
        let mut state = self.inner.state.lock().expect("ecs state lock");
        for v in views {
            let healthy = match v.health {
                Health::Healthy => true,
                Health::Unknown => !s.require_healthy,
                Health::Unhealthy => false,
            };
            match (&v.private_ip, v.last_status.as_str(), healthy) {
                (Some(ip), "RUNNING", true) => {
                    workers += 1;
                    self.inner.set.add(WorkerInfo {
                        id: v.arn.clone(),
                        provider: "ecs".into(),
                        address: format!("{ip}:{}", s.grpc_port),
                        started_for: v.job_id.clone(),
                    });
                }
                _ => self.inner.set.drop_worker(&v.arn),
            }
            // ECS does not replace an unhealthy task started by RunTask: stop it.
            if v.health == Health::Unhealthy && state.stopping.insert(v.arn.clone()) {
                to_stop.push(v.arn.clone());
            }
        }
        for w in self.inner.set.snapshot() {
            if !seen.contains(&w.id) {
                self.inner.set.drop_worker(&w.id);
            }
        }
        state
            .unseen
            .retain(|arn, at| !seen.contains(arn) && at.elapsed() < UNSEEN_GRACE);
        let State {
            launched,
            unseen,
            stopping,
            warm_unseen,
            ..
        } = &mut *state;
        launched.retain(|_, arn| seen.contains(arn) || unseen.contains_key(arn));
        warm_unseen.retain(|arn| !seen.contains(arn) && unseen.contains_key(arn));
        stopping.retain(|arn| seen.contains(arn));
        state.live = seen;
        state.seen = views.to_vec();
        (
            PollSummary {
                tasks: views.len(),
                workers,
                stopped: 0,
            },
            to_stop,
        )
    }

    async fn launch(self, purpose: Purpose) -> Result<(), ProvisionError> {
        let inner = &self.inner;
        let token = purpose.client_token();
        let max = inner.config.max_workers;
        let _slot = {
            let mut state = inner.state.lock().expect("ecs state lock");
            if state.launched.contains_key(&token) {
                return Ok(());
            }
            if let Some((wait, why)) = state.backoff.remaining() {
                return Err(ProvisionError::Capacity {
                    message: format!("backing off after: {why}"),
                    retry_after: wait,
                });
            }
            let busy = state.running_or_starting();
            if busy >= max {
                return Err(ProvisionError::Capacity {
                    message: format!(
                        "{busy} of at most {max} worker tasks are running or starting"
                    ),
                    retry_after: inner.config.settings.poll_every,
                });
            }
            state.launching += 1;
            LaunchSlot(&inner.state)
        };
        inner.run_limiter.acquire().await;
        let result = run_task(
            &inner.client,
            &inner.config.settings,
            &inner.config.worker_env,
            &purpose,
        )
        .await;
        let mut state = inner.state.lock().expect("ecs state lock");
        match result {
            Ok(arn) => {
                state.backoff.reset();
                state.launched.insert(token, arn.clone());
                state.unseen.insert(arn.clone(), Instant::now());
                if matches!(purpose, Purpose::Warm { .. }) {
                    state.warm_unseen.insert(arn.clone());
                }
                inner.started.fetch_add(1, Ordering::SeqCst);
                tracing::info!(task = %arn, for = %purpose, "worker task launched");
                Ok(())
            }
            Err(EcsFault::Permanent(m)) => {
                tracing::error!(for = %purpose, error = %m, "RunTask refused");
                Err(ProvisionError::Permanent(m))
            }
            Err(fault) => {
                let wait = state.backoff.fail(fault.message());
                tracing::warn!(for = %purpose, error = %fault.message(), retry_in = ?wait, "no worker task now; backing off");
                Err(ProvisionError::Capacity {
                    message: fault.message().to_owned(),
                    retry_after: wait,
                })
            }
        }
    }
}

#[async_trait]
impl Provisioner for EcsFleet {
    async fn provision(&self, req: &ProvisionRequest) -> Result<(), ProvisionError> {
        let (fleet, req) = (self.clone(), req.clone());
        let key = req.workflow_key.clone();
        self.inner
            .inflight
            .run(&key, move || fleet.launch(Purpose::Job(req)).boxed())
            .await
    }

    async fn warm(&self, token: &str) -> Result<(), ProvisionError> {
        let (fleet, purpose) = (
            self.clone(),
            Purpose::Warm {
                token: token.to_owned(),
            },
        );
        self.inner
            .inflight
            .run(&purpose.client_token(), move || {
                fleet.launch(purpose).boxed()
            })
            .await
    }

    /// Warm tasks (any replica's: their tag) ECS wants running that are not usable workers yet,
    /// and this replica's launched since the last poll.
    fn warming(&self) -> usize {
        let ready: HashSet<String> = self
            .inner
            .set
            .snapshot()
            .into_iter()
            .map(|w| w.id)
            .collect();
        let state = self.inner.state.lock().expect("ecs state lock");
        let polled = state
            .seen
            .iter()
            .filter(|v| v.warm && v.desired_status == "RUNNING" && !ready.contains(&v.arn))
            .count();
        polled + state.warm_unseen.len()
    }

    fn started(&self) -> u64 {
        self.inner.started.load(Ordering::SeqCst)
    }

    /// Stops polling. Worker tasks are left to finish their jobs and stop when idle: another API
    /// replica may be following them.
    async fn shutdown(&self) {
        self.inner.stop.cancel();
        self.inner.tracker.close();
        self.inner.tracker.wait().await;
    }
}

impl Discovery for EcsFleet {
    fn subscribe(&self) -> Subscription {
        self.inner.set.subscribe()
    }
}

impl EcsFleet {
    /// A task as the roster shows it.
    fn member(&self, v: &TaskView) -> Member {
        let health = match v.health {
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
            Health::Unknown => "unknown",
        };
        Member {
            provider: "ecs".into(),
            id: v.arn.clone(),
            address: v
                .private_ip
                .as_ref()
                .map(|ip| format!("{ip}:{}", self.settings().grpc_port)),
            health: health.into(),
            last_status: v.last_status.clone(),
            started_at: v.started_at,
            started_for: v.job_id.clone(),
            stopped_reason: v
                .stopped_reason
                .as_ref()
                .filter(|why| !why.is_empty())
                .map(|why| match v.exit_code {
                    Some(code) => format!("{why} (exit code {code})"),
                    None => why.clone(),
                }),
        }
    }
}

#[async_trait]
impl Roster for EcsFleet {
    /// The tasks the last poll saw, then the ones ECS stopped lately (asked now).
    async fn roster(&self) -> Result<Vec<Member>, String> {
        let inner = &self.inner;
        let s = &inner.config.settings;
        let live: Vec<Member> = {
            let state = inner.state.lock().expect("ecs state lock");
            state.seen.iter().map(|v| self.member(v)).collect()
        };
        let stopped = list_stopped(&inner.client, s, &inner.describe_limiter)
            .await
            .map_err(|e| e.message().to_owned())?;
        let stopped = describe(&inner.client, s, &inner.describe_limiter, &stopped)
            .await
            .map_err(|e| e.message().to_owned())?;
        Ok(live
            .into_iter()
            .chain(stopped.iter().map(|v| self.member(v)))
            .collect())
    }
}

/// Whether ECS stopped the task for a Fargate Spot interruption (no fault of the job).
fn spot_interruption(reason: &str) -> bool {
    reason.contains("Spot") && reason.contains("interrupted")
}

#[async_trait]
impl Inspect for EcsFleet {
    /// Tasks ECS reports STOPPED (with `stoppedReason` and the exit code) or no longer knows.
    /// A task still stopping is not gone yet: its worker drains and hands its jobs back.
    async fn gone(&self, ids: &[String]) -> Result<Vec<Gone>, String> {
        let arns: Vec<String> = ids
            .iter()
            .filter(|id| id.starts_with("arn:") && id.contains(":task/"))
            .cloned()
            .collect();
        if arns.is_empty() {
            return Ok(Vec::new());
        }
        let inner = &self.inner;
        let (views, missing) = describe_with_missing(
            &inner.client,
            &inner.config.settings,
            &inner.describe_limiter,
            &arns,
        )
        .await
        .map_err(|e| e.message().to_owned())?;
        let mut gone: Vec<Gone> = missing
            .into_iter()
            .map(|id| Gone {
                id,
                reason: "ECS no longer knows its task".into(),
                counts_attempt: true,
            })
            .collect();
        for v in views.into_iter().filter(|v| v.last_status == "STOPPED") {
            let why = v
                .stopped_reason
                .clone()
                .unwrap_or_else(|| "no reason given".into());
            let code = v
                .exit_code
                .map_or_else(|| "no exit code".to_owned(), |c| format!("exit code {c}"));
            gone.push(Gone {
                counts_attempt: !spot_interruption(&why),
                reason: format!("its task {} stopped: {why} ({code})", v.arn),
                id: v.arn,
            });
        }
        Ok(gone)
    }
}
