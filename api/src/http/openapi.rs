//! The OpenAPI 3.1 document at `/openapi.json`: the routes come from the handlers' own
//! `#[utoipa::path]` attributes as the router registers them (`router()` builds both at once),
//! so a route cannot be served without being described.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi};

/// The document's fixed parts; `router()` adds every path.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "htsprep",
        description = "Genomic source files prepared on demand (sorted, compressed, indexed) and \
                       served with HTTP Range requests; GA4GH htsget tickets for reads and variants.",
        license(name = "MIT", identifier = "MIT"),
    ),
    modifiers(&AdminToken),
    // Bodies named only by `IntoResponses` enums (their references are not collected).
    components(schemas(
        super::data::Accepted,
        super::error::ErrorBody,
        crate::htsget::Ticket,
        crate::htsget::TicketBody,
        crate::htsget::TicketUrl,
        crate::htsget::TicketHeaders,
        crate::htsget::ErrorBodySchema,
        crate::htsget::ErrorDetailSchema,
    )),
    tags(
        (name = "data", description = "Prepared artifacts and their indexes, by range; the cold path"),
        (name = "jobs", description = "Preparation jobs"),
        (name = "files", description = "The catalog of source files"),
        (name = "htsget", description = "GA4GH htsget 1.3"),
        (name = "operations", description = "Health, metrics, the fleet, the dashboard"),
    )
)]
pub(crate) struct ApiDoc;

/// The security scheme admin operations name (`security(("admin" = []))`).
struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("HTSPREP_ADMIN_TOKEN"))
                    .build(),
            ),
        );
    }
}

/// A catalog file, in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // describes the path the handlers read as a tuple
pub(crate) struct FilePath {
    /// The data coordinating center (catalog namespace).
    dcc: String,
    /// The file's id within its DCC.
    local_id: String,
}

/// A job, in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct JobPath {
    /// The job id (a UUID).
    job_id: String,
}

/// The whole document: the fixed parts and every route `super::routes()` registers.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, paths) = super::routes().split_for_parts();
    let mut doc = ApiDoc::openapi();
    doc.merge(paths);
    doc
}

/// `GET /openapi.json`.
#[utoipa::path(get, operation_id = "openapi", path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json")))]
pub(crate) async fn openapi_json() -> Response {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| document().to_json().expect("the document serializes"));
    ([(header::CONTENT_TYPE, "application/json")], json.as_str()).into_response()
}
