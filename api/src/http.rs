//! The HTTP API: data and index serving with exact Range semantics, the cold path, jobs, the
//! catalog, health and metrics. Errors become responses in one place (`error.rs`).

mod admin;
pub(crate) mod data;
pub mod error;
mod files;
mod fleet;
pub mod jobs;
mod ops;
pub mod range;
pub mod serve;
mod state;
mod view;

use axum::Router;
use axum::http::{Method, header};
use axum::routing::{get, post};
use tower::Layer;
use tower_http::cors::{Any, Cors, CorsLayer};

pub use state::{AppState, FleetView, Shared};

/// The whole API: the routes, with CORS around them once (not around each route: a route's
/// layers are copied for every request).
pub fn router(state: AppState) -> Cors<Router> {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::RANGE,
            header::IF_RANGE,
            header::IF_NONE_MATCH,
            header::IF_MODIFIED_SINCE,
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
        ])
        .expose_headers([
            header::CONTENT_RANGE,
            header::CONTENT_LENGTH,
            header::ACCEPT_RANGES,
            header::ETAG,
            header::LOCATION,
            header::RETRY_AFTER,
            header::LAST_MODIFIED,
        ])
        .max_age(std::time::Duration::from_secs(86_400));
    let routes = Router::new()
        .route("/data/{dcc}/{local_id}", get(data::data))
        .route("/data/{dcc}/{local_id}/status", get(data::status))
        .route("/index/{dcc}/{local_id}", get(data::index))
        .route("/jobs", get(jobs::list))
        .route("/jobs/{job_id}", get(jobs::get))
        .route("/jobs/{job_id}/retry", post(jobs::retry))
        .route("/jobs/{job_id}/cancel", post(jobs::cancel))
        .route("/files", get(files::list).post(files::import))
        .route(
            "/files/{dcc}/{local_id}",
            get(files::get).delete(files::delete),
        )
        .route("/htsget/reads/service-info", get(crate::htsget::reads_info))
        .route(
            "/htsget/variants/service-info",
            get(crate::htsget::variants_info),
        )
        .route("/htsget/reads/{dcc}/{local_id}", get(crate::htsget::reads))
        .route(
            "/htsget/variants/{dcc}/{local_id}",
            get(crate::htsget::variants),
        )
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/fleet", get(fleet::fleet))
        .route("/ui", get(ops::ui))
        .fallback(ops::not_found)
        .with_state(state);
    cors.layer(routes)
}
