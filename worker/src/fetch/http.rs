//! HTTP(S) downloads through the source policy's client, streamed to disk, retried with backoff
//! on transient failures.

use futures::StreamExt;
use htsprep_shared::domain::Md5;
use htsprep_shared::error::{Cause, chain};
pub(crate) use htsprep_shared::outbound::redact;
use htsprep_shared::outbound::{SourceClient, refusal_in};
use htsprep_shared::retry::{Retryable, backoff};
use url::Url;

use super::sink::{HashingFile, Target};
use super::{FetchError, FetchOptions};

/// A URL to GET, with any headers its resolver (DRS) asked for.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    pub url: Url,
    pub headers: Vec<(String, String)>,
}

pub(crate) async fn download(
    client: &SourceClient,
    options: &FetchOptions,
    url: &Url,
    target: &Target<'_>,
) -> Result<(u64, Md5), FetchError> {
    let resolved = Resolved {
        url: url.clone(),
        headers: Vec::new(),
    };
    download_resolved(client, options, &resolved, target).await
}

pub(crate) async fn download_resolved(
    client: &SourceClient,
    options: &FetchOptions,
    resolved: &Resolved,
    target: &Target<'_>,
) -> Result<(u64, Md5), FetchError> {
    (|| try_once(client, resolved, target))
        .retry(backoff(options.attempts, options.backoff))
        .when(FetchError::is_retryable)
        .notify(|e, wait| {
            tracing::warn!(url = %redact(&resolved.url), error = %chain(e), ?wait, "download failed; retrying")
        })
        .await
}

pub(crate) fn classify(url: &Url, e: reqwest::Error) -> FetchError {
    if let Some(refused) = refusal_in(&e) {
        return FetchError::Refused(refused.clone());
    }
    FetchError::Unreachable {
        url: redact(url),
        what: if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "connection failed"
        } else {
            "the transfer failed"
        },
        // The URL (and its signed query string) stays out of the message.
        source: Cause::new(e.without_url()),
    }
}

pub(crate) fn check_status(url: &Url, status: reqwest::StatusCode) -> Result<(), FetchError> {
    if status.is_success() {
        return Ok(());
    }
    if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
        return Err(FetchError::NotFound {
            url: redact(url),
            reason: format!("HTTP {}", status.as_u16()),
        });
    }
    Err(FetchError::HttpStatus {
        url: redact(url),
        status: status.as_u16(),
    })
}

async fn try_once(
    client: &SourceClient,
    resolved: &Resolved,
    target: &Target<'_>,
) -> Result<(u64, Md5), FetchError> {
    let mut req = client.request(reqwest::Method::GET, &resolved.url)?;
    for (k, v) in &resolved.headers {
        req = req.header(k, v);
    }
    let resp = req.send().await.map_err(|e| classify(&resolved.url, e))?;
    check_status(&resolved.url, resp.status())?;
    let mut out = HashingFile::create(target, redact(&resolved.url)).await?;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| classify(&resolved.url, e))?;
        out.write(&chunk).await?;
    }
    out.finish().await
}
