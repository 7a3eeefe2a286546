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
use super::error::ApiError;
use crate::fleet::Member;

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

/// A member with its jobs and idle time.
fn entry(
    m: Member,
    running: &HashMap<&str, Vec<String>>,
    recent: &[JobRecord],
) -> serde_json::Value {
    let jobs = running.get(m.id.as_str()).cloned().unwrap_or_default();
    // Idle since its last job ended (or it started), while it runs none.
    let idle_since = (jobs.is_empty() && m.stopped_reason.is_none()).then(|| {
        recent
            .iter()
            .filter(|j| worker_of(j) == Some(m.id.as_str()))
            .find_map(|j| j.finished_at)
            .or(m.started_at)
    });
    let mut v = serde_json::to_value(&m).expect("a member serializes");
    v["jobs"] = serde_json::json!(jobs);
    v["idle_since"] = serde_json::json!(idle_since.flatten());
    v
}

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
    let workers: Vec<serde_json::Value> = members
        .into_iter()
        .map(|m| entry(m, &running, &recent))
        .collect();
    Ok(axum::Json(serde_json::json!({
        "provider": state.fleet.provider,
        "max_workers": state.fleet.max_workers,
        "workers": workers,
    }))
    .into_response())
}
