//! `/jobs/{id}` (public: clients poll it), `/jobs` (admin: operators list jobs), and
//! `/jobs/{id}/retry`, `/jobs/{id}/cancel` (admin: operators steer them).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use htsprep_shared::domain::{JobId, JobStatus};
use htsprep_shared::jobstore::{JobStoreExt, ListQuery, PageCursor};

use super::AppState;
use super::admin::{Admin, Viewer};
use super::data::{exec_error, target};
use super::error::{AdminRefusal, ApiError, ErrorBody, page_limit};
use super::openapi::JobPath;
use super::view::JobView;
use crate::executor::Ensured;
use crate::served::Target;

fn parse_id(job_id: &str) -> Result<JobId, ApiError> {
    JobId::parse(job_id).ok_or_else(|| ApiError::BadRequest(format!("{job_id:?} is not a job id")))
}

/// The operator's view with the admin token; otherwise the public one (status, stages,
/// progress, a one-line error).
/// `GET /jobs/{job_id}`: a job (the admin's view with the token).
#[utoipa::path(get, operation_id = "getJob", path = "/jobs/{job_id}", tag = "jobs", params(JobPath),
    security((), ("admin" = [])),
    responses(
        (status = 200, body = JobView),
        (status = 400, description = "Not a job id", body = ErrorBody),
        (status = 401, description = "A wrong admin token (none: the public view)", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
    ))]
pub(crate) async fn get(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(job_id): Path<String>,
) -> Result<Response, ApiError> {
    let job = state.store.get(&parse_id(&job_id)?).await?;
    Ok(axum::Json(JobView::for_viewer(job, viewer)).into_response())
}

/// Retries a failed job: its failure stops standing for the file, and the file is prepared
/// again at once (`202` with the new job, or `200` if it is already prepared).
/// `POST /jobs/{job_id}/retry` (admin): a failed job's failure stops standing; the file is
/// prepared again at once.
#[utoipa::path(post, operation_id = "retryJob", path = "/jobs/{job_id}/retry", tag = "jobs", params(JobPath),
    security(("admin" = [])),
    responses(
        (status = 202, description = "The new job (`Location`)", body = JobView),
        (status = 200, description = "The file was prepared meanwhile: `{\"ready\": true}`"),
        AdminRefusal,
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job did not fail", body = ErrorBody),
    ))]
pub(crate) async fn retry(
    State(state): State<AppState>,
    _: Admin,
    Path(job_id): Path<String>,
) -> Result<Response, ApiError> {
    let failed = state.store.request_retry(&parse_id(&job_id)?).await?;
    let file = state.catalog.served(&failed.dcc, &failed.local_id).await?;
    let Target::Artifacts(keys) = target(&file)? else {
        return Err(ApiError::Conflict(format!(
            "{}/{} is served from its source: nothing to prepare",
            failed.dcc, failed.local_id
        )));
    };
    match state
        .executor
        .ensure(&file.record, keys)
        .await
        .map_err(exec_error)?
    {
        Ensured::Ready => Ok(axum::Json(serde_json::json!({"ready": true})).into_response()),
        Ensured::Job { job, .. } => {
            let view = JobView::from(Arc::unwrap_or_clone(job));
            let mut resp = (StatusCode::ACCEPTED, axum::Json(&view)).into_response();
            if let Ok(v) = HeaderValue::from_str(&view.location) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            Ok(resp)
        }
    }
}

/// Stops an active job: it fails as cancelled, and its worker stops the running stage at its
/// next heartbeat.
/// `POST /jobs/{job_id}/cancel` (admin): a pending or running job fails as cancelled.
#[utoipa::path(post, operation_id = "cancelJob", path = "/jobs/{job_id}/cancel", tag = "jobs", params(JobPath),
    security(("admin" = [])),
    responses(
        (status = 200, description = "The cancelled job", body = JobView),
        AdminRefusal,
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job is not active", body = ErrorBody),
    ))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    _: Admin,
    Path(job_id): Path<String>,
) -> Result<Response, ApiError> {
    let job = state.store.cancel(&parse_id(&job_id)?, CANCELLED).await?;
    Ok(axum::Json(JobView::from(job)).into_response())
}

/// The failure of a cancelled job.
pub const CANCELLED: &str = "cancelled by an operator";

/// A page of jobs, newest first.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct JobPage {
    jobs: Vec<JobView>,
    /// The cursor of the next page (`?after=`), if there is one.
    next: Option<String>,
}

/// The query of `GET /jobs`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes what `list` reads
pub(crate) struct JobQuery {
    /// `pending`, `running`, `completed` or `failed`.
    status: Option<JobStatus>,
    /// Jobs per page.
    limit: Option<usize>,
    /// The `next` cursor of the previous page.
    after: Option<String>,
}

/// `GET /jobs` (admin): jobs, newest first, a page at a time.
#[utoipa::path(get, operation_id = "listJobs", path = "/jobs", tag = "jobs", params(JobQuery),
    security(("admin" = [])),
    responses(
        (status = 200, body = JobPage),
        (status = 400, description = "A bad status, limit or cursor", body = ErrorBody),
        AdminRefusal,
    ))]
pub(crate) async fn list(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
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
    Ok(axum::Json(JobPage {
        jobs,
        next: page.next.map(|c| c.encode()),
    })
    .into_response())
}
