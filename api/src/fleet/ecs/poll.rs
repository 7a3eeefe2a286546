//! One discovery pass: `ListTasks` (every page) for the tasks this deployment started that ECS
//! wants running, `DescribeTasks` in batches of 100, each call through the describe rate limiter.

use aws_sdk_ecs::types::{DesiredStatus, HealthStatus, Task, TaskField};

use super::classify::{EcsFault, classify};
use super::launch::{TAG_JOB, TAG_WARM};
use super::settings::EcsSettings;
use crate::fleet::rate::RateLimiter;

/// ECS's largest `ListTasks` page and `DescribeTasks` batch.
const PAGE: usize = 100;

/// What discovery needs to know of one task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskView {
    pub arn: String,
    /// `PROVISIONING`, `PENDING`, `ACTIVATING`, `RUNNING`, `DEACTIVATING`, `STOPPING`, `STOPPED`...
    pub last_status: String,
    pub health: Health,
    /// The awsvpc ENI's private IPv4 address, once it has one.
    pub private_ip: Option<String>,
    /// The job it was launched for (its `htsprep:job-id` tag).
    pub job_id: Option<String>,
    /// Started by a warm pool (its `htsprep:warm` tag), for no job.
    pub warm: bool,
    pub desired_status: String,
    /// When its containers started (`startedAt`), once they have.
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Why it stopped (`stoppedReason`), and its container's exit code, once it has.
    pub stopped_reason: Option<String>,
    pub exit_code: Option<i32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Unhealthy,
    Unknown,
}

impl TaskView {
    fn from_task(t: &Task) -> Option<Self> {
        let arn = t.task_arn()?.to_owned();
        let private_ip = t
            .attachments()
            .iter()
            .filter(|a| a.r#type() == Some("ElasticNetworkInterface"))
            .flat_map(|a| a.details())
            .find(|d| d.name() == Some("privateIPv4Address"))
            .and_then(|d| d.value())
            .map(str::to_owned)
            .or_else(|| {
                t.containers()
                    .iter()
                    .flat_map(|c| c.network_interfaces())
                    .find_map(|n| n.private_ipv4_address())
                    .map(str::to_owned)
            });
        let health = match t.health_status() {
            Some(HealthStatus::Healthy) => Health::Healthy,
            Some(HealthStatus::Unhealthy) => Health::Unhealthy,
            _ => Health::Unknown,
        };
        let job_id = t
            .tags()
            .iter()
            .find(|tag| tag.key() == Some(TAG_JOB))
            .and_then(|tag| tag.value())
            .map(str::to_owned);
        let warm = t.tags().iter().any(|tag| tag.key() == Some(TAG_WARM));
        Some(Self {
            arn,
            warm,
            last_status: t.last_status().unwrap_or("UNKNOWN").to_owned(),
            health,
            private_ip,
            job_id,
            desired_status: t.desired_status().unwrap_or("UNKNOWN").to_owned(),
            started_at: t
                .started_at()
                .and_then(|d| chrono::DateTime::from_timestamp(d.secs(), d.subsec_nanos())),
            stopped_reason: t.stopped_reason().map(str::to_owned),
            exit_code: t.containers().iter().find_map(|c| c.exit_code()),
        })
    }
}

/// The ARNs of every task `startedBy` this deployment whose desired status is `RUNNING`.
pub async fn list_running(
    client: &aws_sdk_ecs::Client,
    settings: &EcsSettings,
    limiter: &RateLimiter,
) -> Result<Vec<String>, EcsFault> {
    list(
        client,
        settings,
        limiter,
        DesiredStatus::Running,
        usize::MAX,
    )
    .await
}

/// The ARNs of (at most a page of) the tasks `startedBy` this deployment that ECS stopped
/// lately (it keeps them for about an hour): one `ListTasks` call, so a dashboard refreshing
/// the fleet view does not take discovery's call budget.
pub async fn list_stopped(
    client: &aws_sdk_ecs::Client,
    settings: &EcsSettings,
    limiter: &RateLimiter,
) -> Result<Vec<String>, EcsFault> {
    list(client, settings, limiter, DesiredStatus::Stopped, PAGE).await
}

/// Lists tasks by desired status, page by page, until `at_most` ARNs.
async fn list(
    client: &aws_sdk_ecs::Client,
    settings: &EcsSettings,
    limiter: &RateLimiter,
    desired: DesiredStatus,
    at_most: usize,
) -> Result<Vec<String>, EcsFault> {
    let mut arns = Vec::new();
    let mut next: Option<String> = None;
    loop {
        limiter.acquire().await;
        let page = client
            .list_tasks()
            .cluster(&settings.cluster)
            .started_by(&settings.started_by)
            .desired_status(desired.clone())
            .max_results(PAGE as i32)
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| classify("ListTasks", &e))?;
        arns.extend(page.task_arns().iter().cloned());
        match page.next_token() {
            Some(t) if !t.is_empty() && arns.len() < at_most => next = Some(t.to_owned()),
            _ => {
                arns.truncate(at_most);
                return Ok(arns);
            }
        }
    }
}

/// Describes the tasks, 100 at a time. Tasks ECS no longer knows are left out.
pub async fn describe(
    client: &aws_sdk_ecs::Client,
    settings: &EcsSettings,
    limiter: &RateLimiter,
    arns: &[String],
) -> Result<Vec<TaskView>, EcsFault> {
    Ok(describe_with_missing(client, settings, limiter, arns)
        .await?
        .0)
}

/// Describes the tasks, 100 at a time; also returns the ARNs ECS answered `MISSING` for.
pub async fn describe_with_missing(
    client: &aws_sdk_ecs::Client,
    settings: &EcsSettings,
    limiter: &RateLimiter,
    arns: &[String],
) -> Result<(Vec<TaskView>, Vec<String>), EcsFault> {
    let mut views = Vec::with_capacity(arns.len());
    let mut missing = Vec::new();
    for batch in arns.chunks(PAGE) {
        limiter.acquire().await;
        let out = client
            .describe_tasks()
            .cluster(&settings.cluster)
            .set_tasks(Some(batch.to_vec()))
            .include(TaskField::Tags)
            .send()
            .await
            .map_err(|e| classify("DescribeTasks", &e))?;
        views.extend(out.tasks().iter().filter_map(TaskView::from_task));
        missing.extend(
            out.failures()
                .iter()
                .filter(|f| f.reason() == Some("MISSING"))
                .filter_map(|f| f.arn().map(str::to_owned)),
        );
    }
    Ok((views, missing))
}

/// Asks ECS to stop a task.
pub async fn stop(
    client: &aws_sdk_ecs::Client,
    settings: &EcsSettings,
    limiter: &RateLimiter,
    arn: &str,
    reason: &str,
) -> Result<(), EcsFault> {
    limiter.acquire().await;
    client
        .stop_task()
        .cluster(&settings.cluster)
        .task(arn)
        .reason(reason)
        .send()
        .await
        .map_err(|e| classify("StopTask", &e))?;
    Ok(())
}
