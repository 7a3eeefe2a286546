//! Serving one object with exact Range semantics (RFC 9110): 206 with `Content-Range` for a
//! satisfiable range (end clamped to the size), `multipart/byteranges` for several (coalesced;
//! the whole representation instead when the parts would outweigh it), 416 with `bytes */N`
//! when nothing is satisfiable, 200 without Range or with a unit other than bytes, conditional
//! requests with `If-None-Match` and `If-Range`. Never a 200 for a mid-file range alone.

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use headers::{ETag, HeaderMapExt, IfNoneMatch, IfRange, LastModified};
use htsprep_shared::artifacts::{
    ArtifactError, ArtifactKey, ArtifactStore, GetRange, GetResult, ObjectMeta,
};

use super::error::ApiError;
use super::range::{Plan, parse_range_header, plan};

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
    let mut q = String::with_capacity(etag.len() + 2);
    q.push('"');
    q.push_str(etag);
    q.push('"');
    q
}

/// The object's validator as a typed entity tag.
fn etag_of(meta: &ObjectMeta) -> Option<ETag> {
    quoted(&meta.etag).parse().ok()
}

/// Whether `If-None-Match` matches the object (weak comparison): answer 304.
fn none_match(inm: &IfNoneMatch, meta: &ObjectMeta) -> bool {
    etag_of(meta).is_some_and(|e| !inm.precondition_passes(&e))
}

/// Whether `If-Range` still describes the object (strong comparison for entity tags; a date at
/// or after its Last-Modified): serve the range, else the whole object.
fn if_range_holds(ir: &IfRange, meta: &ObjectMeta) -> bool {
    let modified: std::time::SystemTime = meta.last_modified.into();
    !ir.is_modified(etag_of(meta).as_ref(), Some(&LastModified::from(modified)))
}

fn base_headers(h: &mut HeaderMap, meta: &ObjectMeta, content_type: &'static str) {
    // Room for these five, the length and range, and CORS's three, allocated once rather than
    // at the first header and again past the sixth; no larger than that growth ends at (16
    // slots, 12 entries), which adds up at 4,096 connections.
    h.reserve(10);
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::try_from(quoted(&meta.etag)) {
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
            parse_range_header(v)?
        }
        None => None,
    };
    // Malformed conditionals are ignored, as if absent (RFC 9110 §13.1).
    let if_none_match: Option<IfNoneMatch> = headers.typed_get();
    let if_range: Option<IfRange> = headers.typed_get();
    let (if_none_match, if_range) = (if_none_match.as_ref(), if_range.as_ref());

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
                && none_match(inm, &got.meta)
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
    if_none_match: Option<&IfNoneMatch>,
) -> Result<Response, ApiError> {
    let got = opener.get(None).await?;
    if let Some(inm) = if_none_match
        && none_match(inm, &got.meta)
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
    if_none_match: Option<&IfNoneMatch>,
    if_range: Option<&IfRange>,
) -> Result<Response, ApiError> {
    let meta = opener.head().await?;
    if let Some(inm) = if_none_match
        && none_match(inm, &meta)
    {
        return Ok(not_modified(&meta, content_type));
    }
    if let Some(ir) = if_range
        && !if_range_holds(ir, &meta)
    {
        return full(method, content_type, opener, None).await;
    }
    let mut parts = match plan(&ranges, meta.size) {
        Plan::Unsatisfiable => return Err(ApiError::RangeNotSatisfiable { size: meta.size }),
        Plan::Parts(parts) => parts,
    };
    if parts.len() == 1 {
        let got = opener.get(Some(GetRange::Bounded(parts.remove(0)))).await?;
        return Ok(partial(method, content_type, got));
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
    let length: u64 = parts
        .iter()
        .map(|r| part_head(r).len() as u64 + (r.end - r.start))
        .sum::<u64>()
        + closing.len() as u64;

    if length > meta.size {
        // The part headers would outweigh what they save: send the representation once.
        return full(method, content_type, opener, None).await;
    }

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
    let mut bodies = Vec::with_capacity(parts.len());
    for r in &parts {
        let got = opener.get(Some(GetRange::Bounded(r.clone()))).await?;
        bodies.push((Bytes::from(part_head(r)), got.stream));
    }
    let stream = futures::stream::iter(bodies)
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

#[cfg(test)]
mod tests {
    use super::*;
    use htsprep_shared::artifacts::RangeError;
    use proptest::prelude::*;

    /// An object in memory, served in chunks of `chunk` bytes.
    struct Mem {
        data: Bytes,
        chunk: usize,
    }

    impl Mem {
        fn meta(&self) -> ObjectMeta {
            ObjectMeta {
                size: self.data.len() as u64,
                etag: "e1".into(),
                last_modified: chrono::DateTime::<chrono::Utc>::default(),
            }
        }
    }

    #[async_trait]
    impl Opener for Mem {
        async fn head(&self) -> Result<ObjectMeta, ApiError> {
            Ok(self.meta())
        }
        async fn get(&self, range: Option<GetRange>) -> Result<GetResult, ApiError> {
            let meta = self.meta();
            let r = match range {
                None => 0..meta.size,
                Some(r) => r.as_range(meta.size).map_err(|e| match e {
                    RangeError::NotSatisfiable { size, .. } => {
                        ApiError::RangeNotSatisfiable { size }
                    }
                    other => ApiError::BadRequest(other.to_string()),
                })?,
            };
            let bytes = self.data.slice(r.start as usize..r.end as usize);
            let chunks: Vec<Result<Bytes, ArtifactError>> = (0..bytes.len())
                .step_by(self.chunk)
                .map(|i| Ok(bytes.slice(i..(i + self.chunk).min(bytes.len()))))
                .collect();
            Ok(GetResult {
                meta,
                range: r,
                stream: futures::stream::iter(chunks).boxed(),
            })
        }
    }

    /// Splits a `multipart/byteranges` body into (Content-Range, payload) pairs.
    fn parts_of(body: &[u8], boundary: &str) -> Vec<(String, Vec<u8>)> {
        let delim = format!("\r\n--{boundary}");
        let text = body;
        let mut out = Vec::new();
        let mut pos = 0;
        let find = |from: usize, pat: &[u8]| {
            text[from..]
                .windows(pat.len())
                .position(|w| w == pat)
                .map(|i| i + from)
        };
        while let Some(start) = find(pos, delim.as_bytes()) {
            let after = start + delim.len();
            if text[after..].starts_with(b"--") {
                break;
            }
            let head_end = find(after, b"\r\n\r\n").expect("part headers end");
            let head = String::from_utf8(text[after..head_end].to_vec()).unwrap();
            let range = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Range: "))
                .expect("Content-Range")
                .to_owned();
            let payload_start = head_end + 4;
            let next = find(payload_start, delim.as_bytes()).expect("next delimiter");
            out.push((range, text[payload_start..next].to_vec()));
            pos = next;
        }
        out
    }

    fn content_range(v: &str) -> (u64, u64, u64) {
        let rest = v.strip_prefix("bytes ").unwrap();
        let (r, total) = rest.split_once('/').unwrap();
        let (a, b) = r.split_once('-').unwrap();
        (
            a.parse().unwrap(),
            b.parse().unwrap(),
            total.parse().unwrap(),
        )
    }

    async fn answer(mem: &Mem, range: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(range).unwrap());
        let resp = serve(&Method::GET, &h, "application/octet-stream", mem)
            .await
            .unwrap_or_else(axum::response::IntoResponse::into_response);
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (parts.status, parts.headers, bytes.to_vec())
    }

    fn spec(size: u64) -> impl Strategy<Value = String> {
        prop_oneof![
            (0..size + 10, 0..size).prop_map(|(a, len)| format!("{a}-{}", a + len)),
            (0..size + 10).prop_map(|a| format!("{a}-")),
            (1..size + 10).prop_map(|n| format!("-{n}")),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Whatever the ranges, every byte asked for comes back at its offset, the answer is
        /// never much larger than the object, and the declared length is the length sent.
        #[test]
        fn multipart_parts_reread_equal_the_ranges_asked(
            (size, specs) in (1u64..3000).prop_flat_map(|n| (Just(n), prop::collection::vec(spec(n), 2..12))),
            chunk in 1usize..700,
        ) {
            let data: Bytes = (0..size).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>().into();
            let mem = Mem { data: data.clone(), chunk };
            let header = format!("bytes={}", specs.join(","));
            let asked: Vec<std::ops::Range<u64>> = parse_range_header(&header)
                .unwrap()
                .unwrap()
                .iter()
                .filter_map(|r| r.as_range(size).ok())
                .collect();
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let (status, headers, body) = rt.block_on(answer(&mem, &header));
            if status != StatusCode::RANGE_NOT_SATISFIABLE {
                let declared: usize =
                    headers[header::CONTENT_LENGTH].to_str().unwrap().parse().unwrap();
                prop_assert_eq!(declared, body.len());
            }
            let served: Vec<(u64, Vec<u8>)> = match status {
                StatusCode::RANGE_NOT_SATISFIABLE => {
                    prop_assert!(asked.is_empty());
                    return Ok(());
                }
                StatusCode::OK => {
                    prop_assert_eq!(&body[..], &data[..]);
                    vec![(0, body)]
                }
                StatusCode::PARTIAL_CONTENT => {
                    let ct = headers[header::CONTENT_TYPE].to_str().unwrap().to_owned();
                    if let Some(b) = ct.strip_prefix("multipart/byteranges; boundary=") {
                        prop_assert!(body.len() as u64 <= size, "{} > {size}", body.len());
                        let parts = parts_of(&body, b);
                        prop_assert!(parts.len() >= 2);
                        parts.into_iter().map(|(cr, payload)| {
                            let (a, b, total) = content_range(&cr);
                            assert_eq!(total, size);
                            assert_eq!(payload.len() as u64, b - a + 1);
                            (a, payload)
                        }).collect()
                    } else {
                        let cr = headers[header::CONTENT_RANGE].to_str().unwrap();
                        let (a, b, total) = content_range(cr);
                        prop_assert_eq!(total, size);
                        prop_assert_eq!(body.len() as u64, b - a + 1);
                        vec![(a, body)]
                    }
                }
                other => return Err(TestCaseError::fail(format!("status {other}"))),
            };
            for (a, payload) in &served {
                prop_assert_eq!(&payload[..], &data[*a as usize..*a as usize + payload.len()]);
            }
            for w in &asked {
                prop_assert!(
                    served.iter().any(|(a, p)| *a <= w.start && w.end <= a + p.len() as u64),
                    "range {:?} not served", w
                );
            }
        }
    }
}
