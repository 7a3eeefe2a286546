//! Serving one object with exact Range semantics (RFC 9110): 206 with `Content-Range` for a
//! satisfiable range (end clamped to the size), `multipart/byteranges` for several, 416 with
//! `bytes */N` when nothing is satisfiable, 200 without Range, conditional requests with
//! `If-None-Match` and `If-Range`. Never a 200 for a mid-file range.

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use htsprep_shared::artifacts::{
    ArtifactError, ArtifactKey, ArtifactStore, GetRange, GetResult, ObjectMeta,
};

use super::error::ApiError;
use super::range::parse_range_header;

/// Something that can be read by range: an artifact, or an upstream source.
#[async_trait]
pub trait Opener: Send + Sync {
    async fn head(&self) -> Result<ObjectMeta, ApiError>;
    async fn get(&self, range: Option<GetRange>) -> Result<GetResult, ApiError>;
}

/// An artifact in the artifact store.
pub struct ArtifactOpener<'a> {
    pub store: &'a dyn ArtifactStore,
    pub key: &'a ArtifactKey,
}

#[async_trait]
impl Opener for ArtifactOpener<'_> {
    async fn head(&self) -> Result<ObjectMeta, ApiError> {
        Ok(self.store.head(self.key).await?)
    }

    async fn get(&self, range: Option<GetRange>) -> Result<GetResult, ApiError> {
        Ok(self.store.get(self.key, range).await?)
    }
}

fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// Whether an `If-None-Match` value matches (weak comparison).
fn none_match(value: &str, etag: &str) -> bool {
    value
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == quoted(etag))
}

/// Whether an `If-Range` value still describes the representation (strong comparison for
/// entity tags, exact match for dates).
fn if_range_holds(value: &str, meta: &ObjectMeta) -> bool {
    let value = value.trim();
    if value.starts_with('"') {
        return value == quoted(&meta.etag);
    }
    if value.starts_with("W/") {
        return false;
    }
    match httpdate::parse_http_date(value) {
        Ok(date) => {
            let lm: std::time::SystemTime = meta.last_modified.into();
            let secs = |t: std::time::SystemTime| {
                t.duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
            };
            secs(date) == secs(lm)
        }
        Err(_) => false,
    }
}

fn base_headers(h: &mut HeaderMap, meta: &ObjectMeta, content_type: &'static str) {
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&quoted(&meta.etag)) {
        h.insert(header::ETAG, v);
    }
    let lm: std::time::SystemTime = meta.last_modified.into();
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(lm)) {
        h.insert(header::LAST_MODIFIED, v);
    }
}

fn body_of(method: &Method, got: GetResult) -> Body {
    if method == Method::HEAD {
        return Body::empty();
    }
    Body::from_stream(got.stream.map(|r| r.map_err(std::io::Error::other)))
}

/// Serves `opener` for a GET or HEAD request.
pub async fn serve(
    method: &Method,
    headers: &HeaderMap,
    content_type: &'static str,
    opener: &dyn Opener,
) -> Result<Response, ApiError> {
    let ranges = match headers.get(header::RANGE) {
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| ApiError::BadRequest("Range header is not ASCII".into()))?;
            Some(parse_range_header(v)?)
        }
        None => None,
    };
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    let if_range = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok());

    match ranges {
        // The hot path: one range, one open.
        Some(ranges) if ranges.len() == 1 => {
            let range = ranges.into_iter().next().expect("one range");
            let got = match opener.get(Some(range)).await {
                Err(ApiError::RangeNotSatisfiable { size }) => {
                    // A stale If-Range means "send everything" even if the range misses.
                    if let Some(ir) = if_range {
                        let meta = opener.head().await?;
                        if !if_range_holds(ir, &meta) {
                            return full(method, content_type, opener, if_none_match).await;
                        }
                    }
                    return Err(ApiError::RangeNotSatisfiable { size });
                }
                other => other?,
            };
            if let Some(inm) = if_none_match
                && none_match(inm, &got.meta.etag)
            {
                return Ok(not_modified(&got.meta, content_type));
            }
            if let Some(ir) = if_range
                && !if_range_holds(ir, &got.meta)
            {
                drop(got);
                return full(method, content_type, opener, if_none_match).await;
            }
            Ok(partial(method, content_type, got))
        }
        Some(ranges) => {
            multi(
                method,
                content_type,
                opener,
                ranges,
                if_none_match,
                if_range,
            )
            .await
        }
        None => full(method, content_type, opener, if_none_match).await,
    }
}

fn not_modified(meta: &ObjectMeta, content_type: &'static str) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::NOT_MODIFIED;
    base_headers(resp.headers_mut(), meta, content_type);
    resp.headers_mut().remove(header::CONTENT_TYPE);
    resp
}

async fn full(
    method: &Method,
    content_type: &'static str,
    opener: &dyn Opener,
    if_none_match: Option<&str>,
) -> Result<Response, ApiError> {
    let got = opener.get(None).await?;
    if let Some(inm) = if_none_match
        && none_match(inm, &got.meta.etag)
    {
        return Ok(not_modified(&got.meta, content_type));
    }
    let meta = got.meta.clone();
    let mut resp = Response::new(body_of(method, got));
    base_headers(resp.headers_mut(), &meta, content_type);
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(meta.size));
    Ok(resp)
}

fn partial(method: &Method, content_type: &'static str, got: GetResult) -> Response {
    let meta = got.meta.clone();
    let r = got.range.clone();
    let mut resp = Response::new(body_of(method, got));
    *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    let h = resp.headers_mut();
    base_headers(h, &meta, content_type);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(r.end - r.start));
    h.insert(
        header::CONTENT_RANGE,
        HeaderValue::from_str(&format!("bytes {}-{}/{}", r.start, r.end - 1, meta.size))
            .expect("ascii"),
    );
    resp
}

async fn multi(
    method: &Method,
    content_type: &'static str,
    opener: &dyn Opener,
    ranges: Vec<GetRange>,
    if_none_match: Option<&str>,
    if_range: Option<&str>,
) -> Result<Response, ApiError> {
    let meta = opener.head().await?;
    if let Some(inm) = if_none_match
        && none_match(inm, &meta.etag)
    {
        return Ok(not_modified(&meta, content_type));
    }
    if let Some(ir) = if_range
        && !if_range_holds(ir, &meta)
    {
        return full(method, content_type, opener, None).await;
    }
    // Unsatisfiable members are dropped; if none is left the whole request is.
    let mut resolved = Vec::new();
    for r in ranges {
        match r.as_range(meta.size) {
            Ok(rr) => resolved.push(rr),
            Err(htsprep_shared::artifacts::RangeError::NotSatisfiable { .. }) => {}
            Err(e) => return Err(ApiError::BadRequest(e.to_string())),
        }
    }
    match resolved.len() {
        0 => return Err(ApiError::RangeNotSatisfiable { size: meta.size }),
        1 => {
            let r = resolved.remove(0);
            let got = opener.get(Some(GetRange::Bounded(r))).await?;
            return Ok(partial(method, content_type, got));
        }
        _ => {}
    }
    let boundary = format!("htsprep-{}", uuid_like(&meta));
    let part_head = |r: &std::ops::Range<u64>| {
        format!(
            "\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {}-{}/{}\r\n\r\n",
            r.start,
            r.end - 1,
            meta.size
        )
    };
    let closing = format!("\r\n--{boundary}--\r\n");
    let length: u64 = resolved
        .iter()
        .map(|r| part_head(r).len() as u64 + (r.end - r.start))
        .sum::<u64>()
        + closing.len() as u64;

    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    let h = resp.headers_mut();
    base_headers(h, &meta, content_type);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&format!("multipart/byteranges; boundary={boundary}"))
            .expect("ascii"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if method == Method::HEAD {
        return Ok(resp);
    }
    let mut parts = Vec::with_capacity(resolved.len());
    for r in &resolved {
        let got = opener.get(Some(GetRange::Bounded(r.clone()))).await?;
        parts.push((Bytes::from(part_head(r)), got.stream));
    }
    let stream = futures::stream::iter(parts)
        .flat_map(|(head, body)| {
            futures::stream::once(async move { Ok::<Bytes, ArtifactError>(head) }).chain(body)
        })
        .chain(futures::stream::once(
            async move { Ok(Bytes::from(closing)) },
        ))
        .map(|r| r.map_err(std::io::Error::other));
    *resp.body_mut() = Body::from_stream(stream);
    Ok(resp)
}

/// A boundary that cannot occur by accident: derived from the object's validator.
fn uuid_like(meta: &ObjectMeta) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in meta.etag.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    format!("{h:016x}{:x}", meta.size)
}
