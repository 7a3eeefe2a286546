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
pub use error::{HtsgetError, Kind};
pub use query::Endpoint;

use crate::http::AppState;
use crate::http::data::{
    Prepared, Probe, Target, accepted, is_ready, lookup, prepare, presigned, target,
};
use crate::http::error::ApiError;
use crate::http::serve::{ArtifactOpener, Opener};
use crate::upstream::UpstreamOpener;
use layout::Layout;
use ticket::{Class, Source};

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

pub(crate) async fn reads_info() -> Response {
    service_info(Endpoint::Reads)
}

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
    let file = lookup(state, dcc, local_id).await?;
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
    let target = target(&file)?;
    let (data, layout, url): (Box<dyn Opener + '_>, Arc<Layout>, Option<String>) = match &target {
        Target::Artifacts { data, index } => {
            if !is_ready(state, index, Probe::Shared).await? {
                let wait = Some(state.executor.settings().max_wait);
                if let Prepared::Pending(job) = prepare(state, &file, index, wait).await? {
                    return Ok(accepted(*job));
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
        None => data_url(headers, &file)?,
    };
    let parts = ticket::plan(&layout, &query.select, data.as_ref()).await?;
    let urls: Vec<serde_json::Value> = parts
        .into_iter()
        .map(|p| {
            let class = match p.class {
                Class::Header => "header",
                Class::Body => "body",
            };
            match p.source {
                Source::Range(r) => serde_json::json!({
                    "url": url,
                    "headers": {"Range": format!("bytes={}-{}", r.start, r.end - 1)},
                    "class": class,
                }),
                Source::Inline(bytes) => serde_json::json!({
                    "url": format!(
                        "data:application/octet-stream;base64,{}",
                        base64::engine::general_purpose::STANDARD.encode(bytes)
                    ),
                    "class": class,
                }),
            }
        })
        .collect();
    let mut resp = axum::Json(serde_json::json!({
        "htsget": {"format": endpoint.format(), "urls": urls}
    }))
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
