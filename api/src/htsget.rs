//! GA4GH htsget 1.3 over the prepared files: `/htsget/reads/{dcc}/{local_id}` (SAM and BAM,
//! served as BAM) and `/htsget/variants/{dcc}/{local_id}` (VCF), each with its `service-info`.
//! A ticket lists `/data/...` URLs with the `Range` of the blocks the file's index says can hold
//! the region (merged), the header as its own part and the BGZF end-of-file block inline. A
//! file nobody prepared yet is prepared first: the request waits like `?wait` (up to
//! `HTSPREP_MAX_WAIT_SECONDS`), then answers the ticket or `202` with the job.

mod bgzf;
mod cache;
mod error;
mod layout;
mod query;
mod ticket;

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use std::sync::Arc;

use htsprep_shared::artifacts::{ArtifactKey, ArtifactStore};
use htsprep_shared::domain::{FileRecord, Format};
use htsprep_shared::error::Cause;

pub use cache::Layouts;
pub(crate) use error::{Body as ErrorBodySchema, Detail as ErrorDetailSchema};
pub use error::{HtsgetError, Kind};
pub use query::Endpoint;

use crate::http::AppState;
use crate::http::data::ColdAnswer;
use crate::http::data::{Prepared, Probe, accepted, is_ready, lookup, prepare, presigned, target};
use crate::http::error::ApiError;
use crate::http::openapi::FilePath;
use crate::http::serve::{ArtifactOpener, Opener};
use crate::served::Target;
use crate::upstream::UpstreamOpener;
use layout::Layout;
use ticket::{Class, Source};

/// An htsget ticket.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Ticket {
    htsget: TicketBody,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct TicketBody {
    /// `BAM` or `VCF`.
    #[schema(value_type = String)]
    format: &'static str,
    /// Concatenated in order, the parts make the file (or the region's records, whole).
    urls: Vec<TicketUrl>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct TicketUrl {
    /// This server's `/data/...` (or a presigned URL), or a `data:` URI inlining a block.
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<TicketHeaders>,
    /// `header` or `body`.
    #[schema(value_type = String)]
    class: &'static str,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct TicketHeaders {
    #[serde(rename = "Range")]
    range: String,
}

/// The query of an htsget ticket request.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes what `query::parse` reads
pub(crate) struct TicketQuery {
    /// `BAM` (reads) or `VCF` (variants); CRAM and BCF are refused.
    format: Option<String>,
    /// A reference sequence name, or `*` for unplaced unmapped reads.
    #[param(rename = "referenceName")]
    reference_name: Option<String>,
    /// 0-based start (needs `referenceName`).
    start: Option<u64>,
    /// 0-based end, excluded.
    end: Option<u64>,
    /// `header`: the header only.
    class: Option<String>,
}

/// The answers of both ticket endpoints (beside the cold path's, `ColdAnswer`).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // describes what `answer` answers
pub(crate) enum TicketAnswer {
    /// The ticket.
    #[response(
        status = 200,
        content_type = "application/vnd.ga4gh.htsget.v1.3.0+json"
    )]
    Ticket(Ticket),
    /// `InvalidInput`, `InvalidRange`, `UnsupportedFormat`.
    #[response(status = 400)]
    Invalid(error::Body),
    /// `NotFound`: no such file, not this endpoint's format, no such reference sequence.
    #[response(status = 404)]
    NotFound(error::Body),
}

/// `GET /htsget/reads/{dcc}/{local_id}`: a ticket for a SAM/BAM file (as BAM).
#[utoipa::path(
    get,
    operation_id = "htsgetReads",
    path = "/htsget/reads/{dcc}/{local_id}",
    tag = "htsget",
    params(FilePath, TicketQuery),
    responses(TicketAnswer, ColdAnswer)
)]
pub(crate) async fn reads(
    state: State<AppState>,
    headers: HeaderMap,
    Path((dcc, local_id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    answer(&state, &headers, Endpoint::Reads, &dcc, &local_id, &q)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `GET /htsget/variants/{dcc}/{local_id}`: a ticket for a VCF file.
#[utoipa::path(
    get,
    operation_id = "htsgetVariants",
    path = "/htsget/variants/{dcc}/{local_id}",
    tag = "htsget",
    params(FilePath, TicketQuery),
    responses(TicketAnswer, ColdAnswer)
)]
pub(crate) async fn variants(
    state: State<AppState>,
    headers: HeaderMap,
    Path((dcc, local_id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    answer(&state, &headers, Endpoint::Variants, &dcc, &local_id, &q)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// GA4GH service-info of the reads endpoint.
#[utoipa::path(get, operation_id = "htsgetReadsServiceInfo", path = "/htsget/reads/service-info", tag = "htsget",
    responses((status = 200, description = "`org.ga4gh:htsget:1.3.0`, format BAM", body = Object)))]
pub(crate) async fn reads_info() -> Response {
    service_info(Endpoint::Reads)
}

/// GA4GH service-info of the variants endpoint.
#[utoipa::path(get, operation_id = "htsgetVariantsServiceInfo", path = "/htsget/variants/service-info", tag = "htsget",
    responses((status = 200, description = "`org.ga4gh:htsget:1.3.0`, format VCF", body = Object)))]
pub(crate) async fn variants_info() -> Response {
    service_info(Endpoint::Variants)
}

/// GA4GH service-info, with htsget's own fields.
fn service_info(endpoint: Endpoint) -> Response {
    axum::Json(serde_json::json!({
        "id": format!("org.htsprep.htsget.{}", endpoint.name()),
        "name": format!("htsprep htsget {}", endpoint.name()),
        "type": {"group": "org.ga4gh", "artifact": "htsget", "version": "1.3.0"},
        "description": "Genomic files prepared on demand (sorted, compressed, indexed) and served by htsget.",
        "organization": {"name": "htsprep", "url": "https://github.com/htsprep/htsprep"},
        "version": env!("CARGO_PKG_VERSION"),
        "htsget": {
            "datatype": endpoint.name(),
            "formats": [endpoint.format()],
            "fieldsParameterEffective": false,
            "tagsParametersEffective": false,
        },
    }))
    .into_response()
}

/// Whether the endpoint serves this catalog format.
fn serves(endpoint: Endpoint, format: Format) -> bool {
    match endpoint {
        Endpoint::Reads => matches!(format, Format::Sam | Format::Bam),
        Endpoint::Variants => format == Format::Vcf,
    }
}

/// The URL the ticket's parts name: this server's `/data/...`, as the client reached it.
fn data_url(headers: &HeaderMap, file: &FileRecord) -> Result<String, HtsgetError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| HtsgetError::spec(Kind::InvalidInput, "the request has no Host header"))?;
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .map(|p| p.split(',').next().unwrap_or_default().trim())
    {
        Some("https") => "https",
        _ => "http",
    };
    Ok(format!(
        "{scheme}://{host}/data/{}/{}",
        file.dcc, file.local_id
    ))
}

async fn answer(
    state: &AppState,
    headers: &HeaderMap,
    endpoint: Endpoint,
    dcc: &str,
    local_id: &str,
    q: &HashMap<String, String>,
) -> Result<Response, HtsgetError> {
    let query = query::parse(endpoint, q)?;
    let served = lookup(state, dcc, local_id).await?;
    let file = &served.record;
    if !serves(endpoint, file.format) {
        return Err(HtsgetError::spec(
            Kind::NotFound,
            format!(
                "{dcc}/{local_id} is {}, not served by /htsget/{}",
                file.format,
                endpoint.name()
            ),
        ));
    }
    // The data to cut blocks from, its layout, and the URL the ticket's ranges name.
    let target = target(&served)?;
    let (data, layout, url): (Box<dyn Opener + '_>, Arc<Layout>, Option<String>) = match target {
        Target::Artifacts(keys) => {
            let (data, index) = (&keys.data, &keys.index);
            if !is_ready(state, keys, Probe::Shared).await? {
                let wait = Some(state.executor.settings().max_wait);
                if let Prepared::Pending(job) = prepare(state, file, keys, wait).await? {
                    return Ok(accepted(&job));
                }
            }
            // Content-addressed: the layout is read once and kept.
            let store = Arc::clone(&state.artifacts);
            let (d, i) = (data.clone(), index.clone());
            let layout = state
                .layouts
                .get(index, move || {
                    Box::pin(async move {
                        let (d, i) = (artifact(store.as_ref(), &d), artifact(store.as_ref(), &i));
                        Layout::load(endpoint, &d, &i).await
                    })
                })
                .await?;
            // With redirects on, the artifact in S3 itself.
            let url = presigned(state, data).await?;
            let opener = artifact(state.artifacts.as_ref(), data);
            (Box::new(opener), layout, url)
        }
        Target::Upstream { index: Some(index) } => {
            let upstream = |url| UpstreamOpener {
                client: &state.http,
                s3: &state.s3,
                url,
                etag: None,
            };
            let data = upstream(&file.access_url);
            let layout = Layout::load(endpoint, &data, &upstream(index)).await?;
            (Box::new(data), Arc::new(layout), None)
        }
        Target::Upstream { index: None } => {
            return Err(ApiError::Internal(Cause::msg(format!(
                "{dcc}/{local_id} is served without an index"
            )))
            .into());
        }
    };
    let url = match url {
        Some(url) => url,
        None => data_url(headers, file)?,
    };
    let parts = ticket::plan(&layout, &query.select, data.as_ref()).await?;
    let urls = parts
        .into_iter()
        .map(|p| {
            let class = match p.class {
                Class::Header => "header",
                Class::Body => "body",
            };
            match p.source {
                Source::Range(r) => TicketUrl {
                    url: url.clone(),
                    headers: Some(TicketHeaders {
                        range: format!("bytes={}-{}", r.start, r.end - 1),
                    }),
                    class,
                },
                Source::Inline(bytes) => TicketUrl {
                    url: format!(
                        "data:application/octet-stream;base64,{}",
                        base64::engine::general_purpose::STANDARD.encode(bytes)
                    ),
                    headers: None,
                    class,
                },
            }
        })
        .collect();
    let mut resp = axum::Json(Ticket {
        htsget: TicketBody {
            format: endpoint.format(),
            urls,
        },
    })
    .into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/vnd.ga4gh.htsget.v1.3.0+json; charset=utf-8"),
    );
    Ok(resp)
}

fn artifact<'a>(store: &'a dyn ArtifactStore, key: &'a ArtifactKey) -> ArtifactOpener<'a> {
    ArtifactOpener { store, key }
}
