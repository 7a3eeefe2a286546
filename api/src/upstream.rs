//! Reading a catalog source (or its upstream sidecar) by byte range, for passthrough formats,
//! `?raw=true` and upstream indexes, under the source policy (`htsprep_shared::outbound`).
//! `file://` is read directly from under the file roots; `http(s)://` forwards the Range and, if
//! the origin ignores it, slices the full response itself (a mid-file range never becomes a
//! 200).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use htsprep_shared::artifacts::{
    ArtifactError, ArtifactKey, ArtifactStore, GetRange, GetResult, ObjectMeta, S3ArtifactStore,
    read_file_range,
};
use htsprep_shared::domain::AccessUrl;
use htsprep_shared::error::chain;
use htsprep_shared::outbound::{SourceClient, redact, refusal_in};

use crate::http::error::ApiError;
use crate::http::serve::Opener;

pub struct UpstreamOpener<'a> {
    pub client: &'a SourceClient,
    /// For `s3://` sources.
    pub s3: &'a aws_sdk_s3::Client,
    pub url: &'a AccessUrl,
    /// A content-derived validator (the catalog md5) when one is known.
    pub etag: Option<String>,
}

fn upstream_err(url: &AccessUrl, e: impl std::fmt::Display) -> ApiError {
    ApiError::Upstream(format!(
        "the source {} could not be read: {e}",
        redact(url.as_url())
    ))
}

/// A failed request: the policy's refusal if that was the cause, else the error and its causes.
fn request_err(url: &AccessUrl, e: reqwest::Error) -> ApiError {
    if let Some(refused) = refusal_in(&e) {
        return ApiError::Upstream(refused.to_string());
    }
    if e.is_timeout() {
        return upstream_err(url, "timed out");
    }
    // Without the URL: a presigned one carries credentials in its query.
    upstream_err(url, chain(&e.without_url()))
}

fn with_etag(mut got: GetResult, etag: &Option<String>) -> GetResult {
    if let Some(e) = etag {
        got.meta.etag = e.clone();
    }
    got
}

fn parse_content_range(v: &str) -> Option<(u64, u64, u64)> {
    let rest = v.strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?, total.parse().ok()?))
}

impl UpstreamOpener<'_> {
    async fn http_get(&self, range: Option<GetRange>) -> Result<GetResult, ApiError> {
        let mut req = self
            .client
            .request(reqwest::Method::GET, self.url.as_url())?;
        if let Some(r) = &range {
            req = req.header(reqwest::header::RANGE, r.to_string());
        }
        let resp = req.send().await.map_err(|e| request_err(self.url, e))?;
        let status = resp.status();
        let last_modified = resp
            .headers()
            .get(reqwest::header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .map(DateTime::<Utc>::from)
            .unwrap_or_default();
        let origin_etag = resp
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim_start_matches("W/").trim_matches('"').to_owned());
        let content_range = resp
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if status == reqwest::StatusCode::RANGE_NOT_SATISFIABLE {
            let size = content_range
                .as_deref()
                .and_then(|v| v.strip_prefix("bytes */"))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            return Err(ApiError::RangeNotSatisfiable { size });
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(ApiError::Upstream(format!(
                "the source {} answered 404",
                self.url
            )));
        }
        if !status.is_success() {
            return Err(upstream_err(self.url, format!("HTTP {status}")));
        }
        let url = redact(self.url.as_url());
        let stream = resp
            .bytes_stream()
            .map_err(move |e| ArtifactError::unavailable(format!("read the source {url}"), e));
        let (size, served) = if status == reqwest::StatusCode::PARTIAL_CONTENT {
            let (a, b, total) = content_range
                .as_deref()
                .and_then(parse_content_range)
                .ok_or_else(|| upstream_err(self.url, "206 without a usable Content-Range"))?;
            (total, a..b + 1)
        } else {
            // A full 200: slice it ourselves if a range was asked for.
            return self
                .slice_full(range, stream, last_modified, origin_etag)
                .await;
        };
        let meta = ObjectMeta {
            size,
            etag: self
                .etag
                .clone()
                .or(origin_etag)
                .unwrap_or_else(|| format!("{size:x}")),
            last_modified,
        };
        Ok(GetResult {
            meta,
            range: served,
            stream: stream.boxed(),
        })
    }

    async fn slice_full(
        &self,
        range: Option<GetRange>,
        stream: impl futures::Stream<Item = Result<bytes::Bytes, ArtifactError>> + Send + 'static,
        last_modified: DateTime<Utc>,
        origin_etag: Option<String>,
    ) -> Result<GetResult, ApiError> {
        // Without a known size the range cannot be resolved: fetch the size with HEAD.
        let head = self
            .client
            .request(reqwest::Method::HEAD, self.url.as_url())?
            .send()
            .await
            .map_err(|e| request_err(self.url, e))?;
        let size = head
            .headers()
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| upstream_err(self.url, "no Content-Length"))?;
        let wanted = match range {
            Some(r) => r.as_range(size).map_err(ArtifactError::from)?,
            None => 0..size,
        };
        let (skip, take) = (wanted.start, wanted.end - wanted.start);
        let sliced = stream
            .scan((0u64, skip, take), |(pos, skip, take), chunk| {
                let out = chunk.map(|c| {
                    let start = (*skip).saturating_sub(*pos).min(c.len() as u64) as usize;
                    let end = ((*skip + *take).saturating_sub(*pos)).min(c.len() as u64) as usize;
                    *pos += c.len() as u64;
                    c.slice(start..end.max(start))
                });
                std::future::ready(Some(out))
            })
            .try_filter(|c| std::future::ready(!c.is_empty()));
        Ok(GetResult {
            meta: ObjectMeta {
                size,
                etag: self
                    .etag
                    .clone()
                    .or(origin_etag)
                    .unwrap_or_else(|| format!("{size:x}")),
                last_modified,
            },
            range: wanted,
            stream: sliced.boxed(),
        })
    }
}

#[async_trait]
impl Opener for UpstreamOpener<'_> {
    async fn head(&self) -> Result<ObjectMeta, ApiError> {
        Ok(self
            .get(Some(GetRange::Bounded(0..1)))
            .await
            .map(|g| g.meta)
            .or_else(|e| match e {
                ApiError::RangeNotSatisfiable { size } => Ok(ObjectMeta {
                    size,
                    etag: self.etag.clone().unwrap_or_else(|| format!("{size:x}")),
                    last_modified: DateTime::<Utc>::default(),
                }),
                other => Err(other),
            })?)
    }

    async fn get(&self, range: Option<GetRange>) -> Result<GetResult, ApiError> {
        match self.url.scheme() {
            "file" => {
                let path = self.client.policy().check_file(self.url.as_url())?;
                let got = read_file_range(&path, self.url.as_str(), range)
                    .await
                    .map_err(|e| match e {
                        ArtifactError::NotFound { .. } => {
                            ApiError::Upstream(format!("the source {} does not exist", self.url))
                        }
                        other => ApiError::from(other),
                    })?;
                Ok(with_etag(got, &self.etag))
            }
            "http" | "https" => self.http_get(range).await,
            "s3" => {
                // An s3:// source is read like an artifact of a store rooted at its bucket.
                let url = self.url.as_url();
                let bucket = url.host_str().unwrap_or_default();
                let key = ArtifactKey::parse(url.path().trim_start_matches('/')).map_err(|e| {
                    ApiError::Unsupported(format!(
                        "the source key of {} cannot be served directly: {e}",
                        self.url
                    ))
                })?;
                let store = S3ArtifactStore::new(self.s3.clone(), bucket, "");
                let got = store.get(&key, range).await.map_err(|e| match e {
                    ArtifactError::NotFound { .. } => {
                        ApiError::Upstream(format!("the source {} does not exist", self.url))
                    }
                    other => ApiError::from(other),
                })?;
                Ok(with_etag(got, &self.etag))
            }
            other => Err(ApiError::Unsupported(format!(
                "serving {other}:// sources directly is not supported; register a file://, https:// or s3:// access_url"
            ))),
        }
    }
}
