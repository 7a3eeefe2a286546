//! `/data/{dcc}/{local_id}`, `/index/{dcc}/{local_id}` and `/data/{dcc}/{local_id}/status`: the
//! hot path (serve a published artifact by range) and the cold path (claim, 202, `?wait`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use htsprep_shared::artifacts::{ArtifactKey, ArtifactStore};
use htsprep_shared::domain::{
    AccessUrl, ArtifactKind, FileRecord, Format, Ident, JobId, JobRecord, JobStatus, Progress,
};
use htsprep_shared::error::Cause;
use htsprep_shared::jobstore::ClaimOutcome;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::openapi::FilePath;
use super::serve::{ArtifactOpener, serve};
use super::view::{JobView, job_location, one_line};
use crate::executor::{Ensured, ExecError};
use crate::served::{Keys, ServedFile, Target};
use crate::upstream::UpstreamOpener;

fn content_type(format: Format, kind: ArtifactKind, upstream: bool) -> &'static str {
    match (format, kind, upstream) {
        (Format::Csv, ArtifactKind::Data, true) => "text/csv",
        (Format::Tsv, ArtifactKind::Data, true) => "text/tab-separated-values",
        _ => "application/octet-stream",
    }
}

struct DataQuery {
    wait: Option<Duration>,
    raw: bool,
}

fn parse_query(q: &HashMap<String, String>, max_wait: Duration) -> Result<DataQuery, ApiError> {
    let wait = match q.get("wait") {
        None => None,
        Some(v) => {
            let secs: u64 = v.parse().map_err(|_| {
                ApiError::BadRequest(format!("wait={v:?} is not a whole number of seconds"))
            })?;
            Some(Duration::from_secs(secs).min(max_wait))
        }
    };
    let raw = match q.get("raw").map(String::as_str) {
        None | Some("false" | "0") => false,
        Some("true" | "1" | "") => true,
        Some(v) => {
            return Err(ApiError::BadRequest(format!(
                "raw={v:?} must be true or false"
            )));
        }
    };
    Ok(DataQuery { wait, raw })
}

pub(crate) async fn lookup(
    state: &AppState,
    dcc: &str,
    local_id: &str,
) -> Result<Arc<ServedFile>, ApiError> {
    let dcc = Ident::parse(dcc).map_err(|e| ApiError::BadRequest(format!("dcc: {e}")))?;
    let local_id =
        Ident::parse(local_id).map_err(|e| ApiError::BadRequest(format!("local_id: {e}")))?;
    Ok(state.catalog.served(&dcc, &local_id).await?)
}

/// Where a file's bytes come from, as the serving endpoints need it.
pub(crate) fn target(file: &ServedFile) -> Result<&Target, ApiError> {
    file.target().map_err(|e| ApiError::Internal(Cause::new(e)))
}

/// The query the serving endpoints read.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes what `parse_query` reads
pub(crate) struct ServeParams {
    /// Hold the request up to this many seconds (at most `HTSPREP_MAX_WAIT_SECONDS`) while a
    /// cold file is prepared, then serve it.
    wait: Option<u64>,
    /// The upstream source bytes (on `/index`, the upstream sidecar only).
    raw: Option<bool>,
}

/// What a serving endpoint reads from its request.
pub(crate) struct ServeRequest {
    method: Method,
    headers: HeaderMap,
    dcc: String,
    local_id: String,
    query: HashMap<String, String>,
}

/// Taken from the whole request (so axum keeps it the handler's last extractor): the request's
/// headers are moved into it, not copied.
impl axum::extract::FromRequest<AppState> for ServeRequest {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, _body) = req.into_parts();
        let Path((dcc, local_id)) = Path::<(String, String)>::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Query(query) = Query::<HashMap<String, String>>::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self {
            method: parts.method,
            headers: parts.headers,
            dcc,
            local_id,
            query,
        })
    }
}

/// The answers of `/data` and `/index` (GET and HEAD; a GET also takes the cold path,
/// `ColdAnswer`; a HEAD never starts work). A HEAD gets the same status and headers, no body.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // describes what `handle` answers
pub(crate) enum ServeAnswer {
    /// The whole artifact (no `Range`, a `Range` of another unit, or parts that would weigh
    /// more than the whole).
    #[response(status = 200, content_type = "application/octet-stream")]
    Whole,
    /// The range asked for (`Content-Range`), or several as `multipart/byteranges`.
    #[response(status = 206, content_type = "application/octet-stream")]
    Partial,
    /// With `HTSPREP_S3_REDIRECT`: a presigned S3 URL (`Location`); the `Range` follows it.
    #[response(status = 307)]
    Redirect,
    /// A malformed byte range or query, or a bad identifier.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No such file in the catalog (or, for an index, the format has none); for a HEAD, also
    /// not prepared yet.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// No range satisfiable (`Content-Range: bytes */N`).
    #[response(status = 416)]
    NotSatisfiable(ErrorBody),
}

/// The cold path's answers (`prepare`), on every endpoint that prepares a file it is asked for.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // describes what `prepare` answers
pub(crate) enum ColdAnswer {
    /// Not prepared yet (or not within `?wait`): its job (`Location: /jobs/{id}`,
    /// `Retry-After`).
    #[response(status = 202)]
    Pending(Accepted<'static>),
    /// Too many workflows are being prepared (`Retry-After`).
    #[response(status = 429)]
    TooBusy(ErrorBody),
    /// Preparing the file failed (its job's id and error), or the upstream source failed.
    #[response(status = 502)]
    Failed(ErrorBody),
    /// Shutting down, or storage unavailable (`Retry-After`).
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// `GET /data/{dcc}/{local_id}`: the prepared artifact (BAM, BGZF VCF/GFF3/BED, or a
/// passthrough source) by range; the cold path for a file not prepared yet.
#[utoipa::path(get, operation_id = "getData", path = "/data/{dcc}/{local_id}", tag = "data",
    params(FilePath, ServeParams, ("Range" = Option<String>, Header, description = RANGE)),
    responses(ServeAnswer, ColdAnswer))]
pub(crate) async fn data(
    State(state): State<AppState>,
    r: ServeRequest,
) -> Result<Response, ApiError> {
    handle(&state, &r, ArtifactKind::Data).await
}

/// `HEAD /data/{dcc}/{local_id}`: the headers of a ready artifact.
#[utoipa::path(head, operation_id = "headData", path = "/data/{dcc}/{local_id}", tag = "data",
    params(FilePath, ServeParams, ("Range" = Option<String>, Header, description = RANGE)),
    responses(ServeAnswer))]
pub(crate) async fn data_head(
    State(state): State<AppState>,
    r: ServeRequest,
) -> Result<Response, ApiError> {
    handle(&state, &r, ArtifactKind::Data).await
}

/// `GET /index/{dcc}/{local_id}`: the artifact's index (BAI, TBI or CSI), the same way.
#[utoipa::path(get, operation_id = "getIndex", path = "/index/{dcc}/{local_id}", tag = "data",
    params(FilePath, ServeParams, ("Range" = Option<String>, Header, description = RANGE)),
    responses(ServeAnswer, ColdAnswer))]
pub(crate) async fn index(
    State(state): State<AppState>,
    r: ServeRequest,
) -> Result<Response, ApiError> {
    handle(&state, &r, ArtifactKind::Index).await
}

/// `HEAD /index/{dcc}/{local_id}`: the headers of a ready index.
#[utoipa::path(head, operation_id = "headIndex", path = "/index/{dcc}/{local_id}", tag = "data",
    params(FilePath, ServeParams, ("Range" = Option<String>, Header, description = RANGE)),
    responses(ServeAnswer))]
pub(crate) async fn index_head(
    State(state): State<AppState>,
    r: ServeRequest,
) -> Result<Response, ApiError> {
    handle(&state, &r, ArtifactKind::Index).await
}

const RANGE: &str = "`bytes=a-b`, `bytes=a-`, `bytes=-n`, or several comma-separated (at most 32)";

async fn handle(
    state: &AppState,
    r: &ServeRequest,
    kind: ArtifactKind,
) -> Result<Response, ApiError> {
    let (method, headers, dcc, local_id) = (&r.method, &r.headers, &r.dcc, &r.local_id);
    let q = parse_query(&r.query, state.executor.settings().max_wait)?;
    let served = lookup(state, dcc, local_id).await?;
    let file = &served.record;
    if q.raw {
        let url = match kind {
            ArtifactKind::Data => Some(file.access_url.clone()),
            ArtifactKind::Index => file.sidecars.values().next().cloned(),
        };
        let url = url.ok_or_else(|| {
            ApiError::NotFound(format!(
                "{dcc}/{local_id} has no upstream index; drop raw=true to get the prepared one"
            ))
        })?;
        return serve_upstream(state, method, headers, file, kind, &url).await;
    }
    match target(&served)? {
        Target::Upstream { index } => {
            let url = match kind {
                ArtifactKind::Data => file.access_url.clone(),
                ArtifactKind::Index => index.clone().ok_or_else(|| {
                    ApiError::NotFound(format!(
                        "{} files have no index; fetch /data/{dcc}/{local_id}",
                        file.format
                    ))
                })?,
            };
            serve_upstream(state, method, headers, file, kind, &url).await
        }
        Target::Artifacts(keys) => {
            let key = match kind {
                ArtifactKind::Data => &keys.data,
                ArtifactKind::Index => &keys.index,
            };
            if is_ready(state, keys, Probe::Shared).await? {
                if let Some(resp) = redirect(state, key).await? {
                    return Ok(resp);
                }
                match serve_artifact(state, method, headers, key).await {
                    Err(ApiError::NotFound(_)) => {
                        // Deleted behind our back: forget it and prepare it again.
                        state.ready.write().expect("ready lock").remove(&keys.index);
                    }
                    other => return other,
                }
            }
            if *method == Method::HEAD {
                return Err(ApiError::NotReady(format!(
                    "{dcc}/{local_id} is not prepared yet; a GET starts preparing it"
                )));
            }
            cold(state, method, headers, file, key, keys, q.wait).await
        }
    }
}

/// How fresh a readiness probe must be.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// One already in flight for the file will do: concurrent requests share it (a storm of
    /// GETs for a file nobody prepared yet asks the store once, not once per request). While
    /// this replica drives the file's job none is needed: that job publishes it, and its drive
    /// ends once it has.
    Shared,
    /// Started now: after the job was seen completed, a probe begun before it published would
    /// say "not yet".
    New,
}

pub(crate) async fn is_ready(
    state: &AppState,
    keys: &Keys,
    probe: Probe,
) -> Result<bool, ApiError> {
    let index = &keys.index;
    if state.ready.read().expect("ready lock").contains(index) {
        return Ok(true);
    }
    if probe == Probe::Shared && state.executor.drives(&keys.workflow) {
        return Ok(false);
    }
    let exists = match (state.artifacts.exists_now(index), probe) {
        // A local store answers at once: no call to share, no task to wait on.
        (Some(answer), _) => answer?,
        (None, Probe::Shared) => {
            let artifacts = Arc::clone(&state.artifacts);
            let key = index.clone();
            let ask =
                move || async move { artifacts.exists(&key).await.map_err(ApiError::from) }.boxed();
            state.probes.run(index.as_str(), ask).await?
        }
        (None, Probe::New) => state.artifacts.exists(index).await?,
    };
    if exists {
        state
            .ready
            .write()
            .expect("ready lock")
            .insert(index.clone());
    }
    Ok(exists)
}

/// With `HTSPREP_S3_REDIRECT`, a ready artifact's answer: `307` to a presigned URL of the
/// object, which the client's `Range` follows (the method and headers carry over a 307).
async fn redirect(state: &AppState, key: &ArtifactKey) -> Result<Option<Response>, ApiError> {
    let Some(url) = presigned(state, key).await? else {
        return Ok(None);
    };
    let location = HeaderValue::from_str(&url)
        .map_err(|e| ApiError::Internal(Cause::msg(format!("a presigned URL: {e}"))))?;
    state.metrics.redirects.fetch_add(1, Ordering::Relaxed);
    let mut resp = StatusCode::TEMPORARY_REDIRECT.into_response();
    let h = resp.headers_mut();
    h.insert(header::LOCATION, location);
    // The URL expires: nothing may keep the redirect.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(Some(resp))
}

/// A presigned URL of the artifact when redirects are on and the store hands them out.
pub(crate) async fn presigned(
    state: &AppState,
    key: &ArtifactKey,
) -> Result<Option<String>, ApiError> {
    match state.redirect {
        Some(lasts) => Ok(state.artifacts.presign_get(key, lasts).await?),
        None => Ok(None),
    }
}

async fn serve_artifact(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    key: &ArtifactKey,
) -> Result<Response, ApiError> {
    let opener = ArtifactOpener {
        store: state.artifacts.as_ref() as &dyn ArtifactStore,
        key,
    };
    let resp = serve(method, headers, "application/octet-stream", &opener).await;
    count(state, method, &resp);
    resp
}

async fn serve_upstream(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    file: &FileRecord,
    kind: ArtifactKind,
    url: &AccessUrl,
) -> Result<Response, ApiError> {
    let opener = UpstreamOpener {
        client: &state.http,
        s3: &state.s3,
        url,
        etag: (kind == ArtifactKind::Data && url == &file.access_url).then(|| file.md5.to_string()),
    };
    let resp = serve(
        method,
        headers,
        content_type(file.format, kind, true),
        &opener,
    )
    .await;
    count(state, method, &resp);
    resp
}

fn count(state: &AppState, method: &Method, resp: &Result<Response, ApiError>) {
    let m = &state.metrics;
    if let Ok(r) = resp
        && *method == Method::GET
        && let Some(len) = r
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
    {
        m.served_bytes.fetch_add(len, Ordering::Relaxed);
    }
    match resp {
        Ok(r) if r.status() == StatusCode::PARTIAL_CONTENT => {
            m.served_partial.fetch_add(1, Ordering::Relaxed)
        }
        Ok(_) => m.served_full.fetch_add(1, Ordering::Relaxed),
        Err(ApiError::RangeNotSatisfiable { .. }) => {
            m.not_satisfiable.fetch_add(1, Ordering::Relaxed)
        }
        Err(_) => 0,
    };
}

/// The `202` body of a file being prepared.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Accepted<'a> {
    #[schema(value_type = String)]
    job_id: &'a JobId,
    status: JobStatus,
    attempt: u32,
    progress: Option<&'a Progress>,
    /// Where to poll: `/jobs/{job_id}`.
    location: &'a str,
}

/// The `202` of a file being prepared: its job's public state and where to poll it. Asked for
/// by every request of a storm on a cold file, so built straight from the record.
pub(crate) fn accepted(job: &JobRecord) -> Response {
    let location = job_location(&job.job_id);
    let body = Accepted {
        job_id: &job.job_id,
        status: job.status,
        attempt: job.attempt,
        progress: job.progress.as_ref(),
        location: &location,
    };
    let mut resp = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::try_from(location) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    resp
}

/// Serves a file that was not ready when the request came: prepared meanwhile, or its job.
async fn cold(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    file: &FileRecord,
    key: &ArtifactKey,
    keys: &Keys,
    wait: Option<Duration>,
) -> Result<Response, ApiError> {
    match prepare(state, file, keys, wait).await? {
        Prepared::Ready => match redirect(state, key).await? {
            Some(resp) => Ok(resp),
            None => serve_artifact(state, method, headers, key).await,
        },
        Prepared::Pending(job) => Ok(accepted(&job)),
    }
}

/// A file's preparation, once asked for.
pub(crate) enum Prepared {
    /// Its artifacts are published.
    Ready,
    /// Its job is still on the way (or waiting was not asked for): answer `202` with it.
    Pending(Arc<JobRecord>),
}

/// Makes sure `file` is being prepared (one job per workflow) and waits up to `wait` for it:
/// the cold path of every endpoint that serves prepared artifacts.
pub(crate) async fn prepare(
    state: &AppState,
    file: &FileRecord,
    keys: &Keys,
    wait: Option<Duration>,
) -> Result<Prepared, ApiError> {
    state.metrics.cold_requests.fetch_add(1, Ordering::Relaxed);
    let ensured = state
        .executor
        .ensure(file, keys)
        .await
        .map_err(exec_error)?;
    let (job, outcome) = match ensured {
        // Prepared since this request looked.
        Ensured::Ready => return Ok(Prepared::Ready),
        Ensured::Job { job, outcome } => (job, outcome),
    };
    if outcome == ClaimOutcome::Failed {
        return Err(failed(file, &job));
    }
    let Some(wait) = wait else {
        return Ok(Prepared::Pending(job));
    };
    let mut job_id = job.job_id.clone();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Watch first, then read: a change in between still wakes the wait below.
        let waiter = state.executor.waiter(&job_id);
        let job = state.store.get(&job_id).await?;
        if state.executor.is_stale(&job) {
            // Its owner is gone (a replica died while driving it): take it over and wait on.
            match state
                .executor
                .ensure(file, keys)
                .await
                .map_err(exec_error)?
            {
                Ensured::Ready => return Ok(Prepared::Ready),
                Ensured::Job { job, .. } => {
                    job_id = job.job_id.clone();
                    continue;
                }
            }
        }
        match job.status {
            JobStatus::Completed => {
                if is_ready(state, keys, Probe::New).await? {
                    return Ok(Prepared::Ready);
                }
                return Err(ApiError::Internal(Cause::msg(format!(
                    "job {job_id} completed but its index is missing"
                ))));
            }
            JobStatus::Failed => return Err(failed(file, &job)),
            _ => {}
        }
        // Shutting down: answer now (the job carries on; the client polls its Location).
        if tokio::time::Instant::now() >= deadline || state.executor.is_draining() {
            return Ok(Prepared::Pending(Arc::new(job)));
        }
        waiter.changed(deadline).await;
    }
}

/// The executor's refusals as HTTP answers.
pub(crate) fn exec_error(e: ExecError) -> ApiError {
    match e {
        ExecError::TooBusy(_) => ApiError::TooBusy {
            retry_after: Duration::from_secs(10),
        },
        ExecError::Draining => ApiError::Draining {
            retry_after: Duration::from_secs(5),
        },
        ExecError::Store(e) => e.into(),
    }
}

fn failed(file: &FileRecord, job: &JobRecord) -> ApiError {
    let reason = job.error.as_ref().map(one_line).unwrap_or_default();
    ApiError::JobFailed {
        job_id: job.job_id.to_string(),
        message: format!("preparing {}/{} failed: {reason}", file.dcc, file.local_id),
    }
}

/// The body of `/data/{dcc}/{local_id}/status`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct FileStatus {
    dcc: Ident,
    local_id: Ident,
    format: Format,
    /// Whether its artifacts are published (a passthrough file always is).
    ready: bool,
    /// Its active job, if one runs.
    job: Option<JobView>,
}

/// `GET /data/{dcc}/{local_id}/status`: whether a file is ready, and its active job.
#[utoipa::path(get, operation_id = "getFileStatus", path = "/data/{dcc}/{local_id}/status", tag = "data", params(FilePath),
    responses(
        (status = 200, body = FileStatus),
        (status = 400, description = "A bad identifier", body = ErrorBody),
        (status = 404, description = "No such file", body = ErrorBody),
        (status = 503, description = "Storage unavailable", body = ErrorBody),
    ))]
pub(crate) async fn status(
    State(state): State<AppState>,
    Path((dcc, local_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let served = lookup(&state, &dcc, &local_id).await?;
    let (ready, active) = match target(&served)? {
        Target::Upstream { .. } => (true, None),
        Target::Artifacts(keys) => {
            let ready = is_ready(&state, keys, Probe::Shared).await?;
            let active = state
                .store
                .find_active(&keys.workflow)
                .await?
                .map(JobView::public);
            (ready, active)
        }
    };
    let file = &served.record;
    Ok(axum::Json(FileStatus {
        dcc: file.dcc.clone(),
        local_id: file.local_id.clone(),
        format: file.format,
        ready,
        job: active,
    })
    .into_response())
}
