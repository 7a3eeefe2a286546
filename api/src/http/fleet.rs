//! `GET /fleet` (admin): every worker or task the fleet knows, with what it is doing: the jobs
//! it runs (from the job store, so those of every API replica) or since when it has been idle,
//! and, for those that stopped lately, why.

use std::collections::HashMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use htsprep_shared::domain::{JobRecord, JobStatus};
use htsprep_shared::jobstore::ListQuery;

use super::AppState;
use super::admin::Admin;
use super::error::{AdminRefusal, ApiError, ErrorBody};
use crate::fleet::Member;
use crate::warm::WarmView;

/// The body of `POST /fleet/scale`.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Scale {
    /// Idle workers to keep ready, at most the worker maximum; 0 turns the pool off.
    min_idle: usize,
}

/// `POST /fleet/scale` (admin): the warm pool's minimum of idle workers, at run time (this
/// replica's, until it restarts; `HTSPREP_MIN_IDLE_WORKERS` sets it for good).
#[utoipa::path(post, operation_id = "scaleFleet", path = "/fleet/scale", tag = "operations", security(("admin" = [])),
    request_body = Scale,
    responses(
        (status = 200, description = "The pool with its new minimum", body = WarmView),
        (status = 400, description = "Not `{\"min_idle\": N}`, or N above the worker maximum", body = ErrorBody),
        AdminRefusal,
    ))]
pub(crate) async fn scale(
    State(state): State<AppState>,
    _: Admin,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let scale: Scale = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("expected {{\"min_idle\": N}}: {e}")))?;
    let warm = &state.fleet.warm;
    warm.set_min_idle(scale.min_idle)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    tracing::info!(min_idle = scale.min_idle, "warm pool minimum changed");
    Ok(axum::Json(warm.view()).into_response())
}

/// How many of the latest jobs are looked at for when an idle worker ran its last one.
const RECENT_JOBS: usize = 500;

async fn jobs(state: &AppState, status: Option<JobStatus>) -> Result<Vec<JobRecord>, ApiError> {
    Ok(state
        .store
        .list(&ListQuery {
            status,
            limit: Some(RECENT_JOBS),
            after: None,
        })
        .await?
        .jobs)
}

fn worker_of(job: &JobRecord) -> Option<&str> {
    job.worker.as_ref().map(|w| w.resource_id.as_str())
}

/// The body of `GET /fleet`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Fleet {
    /// `local` or `ecs`.
    #[schema(value_type = String)]
    provider: &'static str,
    max_workers: usize,
    /// The warm pool: its minimum of idle workers, and what its last round saw.
    warm: WarmView,
    workers: Vec<FleetWorker>,
}

/// A member of the fleet with its jobs and idle time.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct FleetWorker {
    #[serde(flatten)]
    member: Member,
    /// The jobs it runs now.
    jobs: Vec<String>,
    /// Since when it runs none (its last job's end, or its start); null while busy or stopped.
    idle_since: Option<chrono::DateTime<chrono::Utc>>,
}

/// A member with its jobs and idle time.
fn entry(m: Member, running: &HashMap<&str, Vec<String>>, recent: &[JobRecord]) -> FleetWorker {
    let jobs = running.get(m.id.as_str()).cloned().unwrap_or_default();
    // Idle since its last job ended (or it started), while it runs none.
    let idle_since = (jobs.is_empty() && m.stopped_reason.is_none()).then(|| {
        recent
            .iter()
            .filter(|j| worker_of(j) == Some(m.id.as_str()))
            .find_map(|j| j.finished_at)
            .or(m.started_at)
    });
    FleetWorker {
        member: m,
        jobs,
        idle_since: idle_since.flatten(),
    }
}

/// `GET /fleet` (admin): every worker or task, what it runs, and why the recent ones stopped.
#[utoipa::path(get, operation_id = "getFleet", path = "/fleet", tag = "operations", security(("admin" = [])), responses(
    (status = 200, body = Fleet),
    AdminRefusal,
    (status = 503, description = "The fleet or the job store does not answer", body = ErrorBody),
))]
pub(crate) async fn fleet(State(state): State<AppState>, _: Admin) -> Result<Response, ApiError> {
    let members = state
        .fleet
        .roster
        .roster()
        .await
        .map_err(|e| ApiError::Unavailable(htsprep_shared::error::Cause::msg(e)))?;
    let running_jobs = jobs(&state, Some(JobStatus::Running)).await?;
    let recent = jobs(&state, None).await?;
    let mut running: HashMap<&str, Vec<String>> = HashMap::new();
    for job in &running_jobs {
        if let Some(w) = worker_of(job) {
            running.entry(w).or_default().push(job.job_id.to_string());
        }
    }
    let workers = members
        .into_iter()
        .map(|m| entry(m, &running, &recent))
        .collect();
    Ok(axum::Json(Fleet {
        provider: state.fleet.provider,
        max_workers: state.fleet.max_workers,
        warm: state.fleet.warm.view(),
        workers,
    })
    .into_response())
}
