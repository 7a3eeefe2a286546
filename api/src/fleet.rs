//! The fleet seams: a [`Provisioner`] starts workers for workflows, a [`Discovery`] reports the
//! healthy ones as they come and go. The local fleet (worker processes on this host) implements
//! both; ECS implements them with `RunTask` and `ListTasks`/`DescribeTasks`.

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod ecs;
mod local;
mod rate;
mod worker_set;

use std::time::Duration;

use async_trait::async_trait;
use htsprep_shared::domain::JobId;

pub use ecs::{EcsFleet, EcsFleetConfig};
pub use local::{LocalFleet, LocalFleetConfig};
pub use rate::RateLimiter;
pub use worker_set::{Subscription, WorkerEvent, WorkerSet};

/// A worker that can take jobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Unique within its provider (a process id, a task ARN).
    pub id: String,
    /// `local` or `ecs`.
    pub provider: String,
    /// The gRPC address, `host:port`.
    pub address: String,
    /// The job it was started for, when the fleet starts one worker per job attempt (ECS): the
    /// executor offers that job to it first.
    pub started_for: Option<String>,
}

/// A request for capacity to run one attempt of one workflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvisionRequest {
    pub workflow_key: String,
    pub job_id: JobId,
    pub attempt: u32,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProvisionError {
    /// No capacity now (a worker maximum, a cloud capacity error, throttling): try again later.
    #[error("no worker capacity: {message}")]
    Capacity {
        message: String,
        retry_after: Duration,
    },
    /// Retrying cannot help (bad configuration, missing permissions).
    #[error("cannot start workers: {0}")]
    Permanent(String),
}

impl ProvisionError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, ProvisionError::Capacity { .. })
    }
}

#[async_trait]
pub trait Provisioner: Send + Sync + std::fmt::Debug {
    /// Makes sure a worker will be available for this request. Concurrent requests for the same
    /// workflow key share one call and its result.
    async fn provision(&self, req: &ProvisionRequest) -> Result<(), ProvisionError>;

    /// Starts one worker for no job, for the warm pool (the executor offers it any job). `token`
    /// names this launch: calls with the same token start at most one worker. Within the
    /// worker maximum, like `provision`.
    async fn warm(&self, token: &str) -> Result<(), ProvisionError>;

    /// Workers started by `warm` that are not usable yet (still starting): the warm pool counts
    /// them as on their way.
    fn warming(&self) -> usize;

    /// How many workers this provisioner has started (for metrics and tests).
    fn started(&self) -> u64;

    /// Stops every worker it started and waits for them (on shutdown).
    async fn shutdown(&self);
}

pub trait Discovery: Send + Sync + std::fmt::Debug {
    /// The healthy workers now, then every change. Late subscribers get the current set first.
    fn subscribe(&self) -> Subscription;
}

/// A worker that ran a job and is gone (exited, stopped, vanished, unhealthy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gone {
    /// Its id (`resource_id` in job records: a task ARN, `pid-N`).
    pub id: String,
    /// What the fleet says happened (ECS `stoppedReason` and exit code, a process gone).
    pub reason: String,
    /// False when the loss was no fault of the job (a Fargate Spot interruption): its attempt
    /// is run again without counting.
    pub counts_attempt: bool,
}

/// One worker (a process, a task) as its fleet sees it, for operators (`GET /fleet`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Member {
    /// `local` or `ecs`.
    pub provider: String,
    /// A task ARN or `pid-N`.
    pub id: String,
    /// Its gRPC address, once it has one.
    pub address: Option<String>,
    /// `healthy`, `unhealthy`, or `unknown` (not reported yet).
    pub health: String,
    /// The provider's status: ECS `lastStatus`; `RUNNING` or `EXITED` for a process.
    pub last_status: String,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The job it was started for (ECS starts one task per job attempt).
    pub started_for: Option<String>,
    /// Why it stopped, for one that did (ECS `stoppedReason` and exit code; a process's exit).
    pub stopped_reason: Option<String>,
}

/// The fleet's workers for operators: the current ones, then those that stopped recently.
#[async_trait]
pub trait Roster: Send + Sync + std::fmt::Debug {
    async fn roster(&self) -> Result<Vec<Member>, String>;
}

/// The fleet asked directly about the workers running jobs, so a lost worker's job is taken
/// back at once instead of after the stale threshold.
#[async_trait]
pub trait Inspect: Send + Sync + std::fmt::Debug {
    /// Of these worker ids, the ones this fleet knows to be gone. Ids it cannot judge (another
    /// fleet's) are left out. An error means it could not tell now.
    async fn gone(&self, ids: &[String]) -> Result<Vec<Gone>, String>;
}
