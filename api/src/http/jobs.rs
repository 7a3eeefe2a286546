//! `/jobs/{id}` (public: clients poll it) and `/jobs` (admin: operators list jobs).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use htsprep_shared::domain::{JobId, JobStatus};
use htsprep_shared::jobstore::{ListQuery, PageCursor};

use super::AppState;
use super::admin::require_admin;
use super::error::{ApiError, page_limit};
use super::view::JobView;

pub(crate) async fn get(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = JobId::parse(&job_id)
        .ok_or_else(|| ApiError::BadRequest(format!("{job_id:?} is not a job id")))?;
    let job = state.store.get(&id).await?;
    Ok(axum::Json(JobView::from(job)).into_response())
}

pub(crate) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let status = match q.get("status") {
        None => None,
        Some(s) => Some(JobStatus::parse(s).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "status={s:?}: expected pending, running, completed or failed"
            ))
        })?),
    };
    let limit = page_limit(&q)?;
    let after = match q.get("after") {
        None => None,
        Some(a) => Some(PageCursor::decode(a).ok_or_else(|| {
            ApiError::BadRequest(format!("after={a:?} is not a cursor from a previous page"))
        })?),
    };
    let page = state
        .store
        .list(&ListQuery {
            status,
            limit,
            after,
        })
        .await?;
    let jobs: Vec<JobView> = page.jobs.into_iter().map(JobView::from).collect();
    Ok(
        axum::Json(serde_json::json!({"jobs": jobs, "next": page.next.map(|c| c.encode())}))
            .into_response(),
    )
}
