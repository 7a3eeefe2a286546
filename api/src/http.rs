//! The HTTP API: data and index serving with exact Range semantics, the cold path, jobs, the
//! catalog, health and metrics. Errors become responses in one place (`error.rs`).

mod admin;
pub(crate) mod data;
pub mod error;
mod files;
mod fleet;
pub mod jobs;
pub mod openapi;
mod ops;
pub mod range;
pub mod serve;
mod state;
mod view;

use axum::http::{Method, header};
use tower::Layer;
use tower_http::cors::{Any, Cors, CorsLayer};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use state::{AppState, FleetView, Shared};

/// Every route with its handler, each described by its `#[utoipa::path]` (the OpenAPI
/// document is built from this same list).
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(data::data, data::data_head))
        .routes(routes!(data::status))
        .routes(routes!(data::index, data::index_head))
        .routes(routes!(jobs::list))
        .routes(routes!(jobs::get))
        .routes(routes!(jobs::retry))
        .routes(routes!(jobs::cancel))
        .routes(routes!(files::list, files::import))
        .routes(routes!(files::get, files::delete))
        .routes(routes!(crate::htsget::reads_info))
        .routes(routes!(crate::htsget::variants_info))
        .routes(routes!(crate::htsget::reads))
        .routes(routes!(crate::htsget::variants))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(fleet::fleet))
        .routes(routes!(fleet::scale))
        .routes(routes!(ops::ui))
        .routes(routes!(openapi::openapi_json))
}

/// The whole API: the routes, with CORS around them once (not around each route: a route's
/// layers are copied for every request).
pub fn router(state: AppState) -> Cors<axum::Router> {
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
        .max_age(std::time::Duration::from_secs(86_400))
        // No `Vary`: every answer allows any origin (`*`) and the same methods and headers, so
        // none differs with the request's Origin or preflight headers, and a cache keeps one
        // copy for every site (tower-http's default would also build the header per request).
        .vary([]);
    let (routes, _) = routes().split_for_parts();
    let routes = routes.fallback(ops::not_found).with_state(state);
    cors.layer(routes)
}
