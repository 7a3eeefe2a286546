//! Liveness, readiness, metrics, and the JSON 404 for unknown paths.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use htsprep_shared::catalog::{Catalog, CatalogQuery};
use htsprep_shared::jobstore::ListQuery;

use super::AppState;
use super::admin::Admin;
use super::error::{AdminRefusal, ApiError, ErrorBody};

/// The body of `/healthz` and `/readyz`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    /// `ok` (alive) or `ready`.
    #[schema(value_type = String)]
    status: &'static str,
}

/// `GET /healthz`: the process answers.
#[utoipa::path(get, operation_id = "healthz", path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub(crate) async fn healthz() -> Response {
    axum::Json(Health { status: "ok" }).into_response()
}

/// `GET /readyz`: ready when the stores answer and the API is not draining.
#[utoipa::path(get, operation_id = "readyz", path = "/readyz", tag = "operations", responses(
    (status = 200, body = Health),
    (status = 503, description = "Draining, or a store does not answer (`Retry-After`)", body = ErrorBody),
))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Response, ApiError> {
    if state.executor.is_draining() {
        return Err(ApiError::Draining {
            retry_after: std::time::Duration::from_secs(5),
        });
    }
    state
        .catalog
        .list(&CatalogQuery {
            limit: Some(1),
            ..Default::default()
        })
        .await?;
    state
        .store
        .list(&ListQuery {
            limit: Some(1),
            ..Default::default()
        })
        .await?;
    Ok(axum::Json(Health { status: "ready" }).into_response())
}

/// `GET /metrics` (admin): the counters, in Prometheus text format.
#[utoipa::path(get, operation_id = "metrics", path = "/metrics", tag = "operations", security(("admin" = [])), responses(
    (status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain"),
    AdminRefusal,
))]
pub(crate) async fn metrics(State(state): State<AppState>, _: Admin) -> Result<Response, ApiError> {
    let m = &state.metrics;
    let e = state.executor.stats();
    let warm = state.fleet.warm.view();
    let lines = [
        (
            "htsprep_served_full_total",
            "counter",
            m.served_full.load(Ordering::Relaxed),
        ),
        (
            "htsprep_served_partial_total",
            "counter",
            m.served_partial.load(Ordering::Relaxed),
        ),
        (
            "htsprep_served_bytes_total",
            "counter",
            m.served_bytes.load(Ordering::Relaxed),
        ),
        (
            "htsprep_s3_redirects_total",
            "counter",
            m.redirects.load(Ordering::Relaxed),
        ),
        (
            "htsprep_htsget_layouts_loaded_total",
            "counter",
            state.layouts.loaded(),
        ),
        (
            "htsprep_range_not_satisfiable_total",
            "counter",
            m.not_satisfiable.load(Ordering::Relaxed),
        ),
        (
            "htsprep_cold_requests_total",
            "counter",
            m.cold_requests.load(Ordering::Relaxed),
        ),
        ("htsprep_jobs_created_total", "counter", e.claims_created),
        ("htsprep_dispatches_total", "counter", e.dispatches),
        (
            "htsprep_workers_started_total",
            "counter",
            e.workers_started,
        ),
        ("htsprep_jobs_driving", "gauge", e.driving as u64),
        (
            "htsprep_workers_available",
            "gauge",
            e.workers_available as u64,
        ),
        ("htsprep_warm_min_idle", "gauge", warm.min_idle as u64),
        ("htsprep_warm_idle_workers", "gauge", warm.idle as u64),
        ("htsprep_warm_launched_total", "counter", warm.launched),
    ];
    let mut text = String::new();
    for (name, kind, value) in lines {
        text.push_str(&format!("# TYPE {name} {kind}\n{name} {value}\n"));
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

pub(crate) async fn not_found(uri: Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(ErrorBody {
            error: "not_found",
            message: format!(
                "no route for {}; see /openapi.json (/data/{{dcc}}/{{local_id}}, /index/..., /jobs/{{id}}, /files)",
                uri.path()
            ),
            job_id: None,
            location: None,
        }),
    )
        .into_response()
}

/// `GET /ui`: the operators' dashboard (jobs with filters, a job's timeline with stage
/// durations, the fleet, the counters), one page with no build step. The page is public; what
/// it shows is read with the admin token the operator enters.
#[utoipa::path(get, operation_id = "dashboard", path = "/ui", tag = "operations", responses(
    (status = 200, description = "The dashboard page", content_type = "text/html"),
))]
pub(crate) async fn ui() -> Response {
    let mut resp = axum::response::Html(include_str!("ui.html")).into_response();
    let h = resp.headers_mut();
    // Only this API is reached from it, and nothing it shows runs as code.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        axum::http::HeaderValue::from_static(
            "default-src 'none'; connect-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
        ),
    );
    h.insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-cache"),
    );
    resp
}
