//! Downloads a source to a local file, hashing it on the way, and refuses it unless its md5 (and
//! size, when the catalog knows it) match and its compression is one the pipelines can read.
//! Every request follows the source policy (`htsprep_shared::outbound`); a body longer than the
//! catalog size is cut off as soon as it passes it.

mod drs;
mod error;
mod http;
mod s3;
mod sink;
mod sniff;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use htsprep_shared::domain::{AccessUrl, Md5};
use htsprep_shared::outbound::{SourceClient, SourcePolicy};
use tokio_util::sync::CancellationToken;

use sink::Target;

pub use error::FetchError;
pub use sniff::{Compression, sniff_compression};

/// A verified local copy of a source.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub size: u64,
    pub md5: Md5,
    pub compression: Compression,
}

/// What the caller expects the source to be.
#[derive(Clone, Debug)]
pub struct Expected {
    pub md5: Md5,
    /// 0 when unknown.
    pub size: u64,
}

/// Retries of transient failures; timeouts and what may be fetched are the source policy's.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// Attempts for transient failures (connection errors, timeouts, 5xx, 429).
    pub attempts: u32,
    pub backoff: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            attempts: 4,
            backoff: Duration::from_millis(500),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Fetcher {
    http: SourceClient,
    options: FetchOptions,
    /// For `s3://` sources; without it they fail with a clear reason.
    s3: Option<aws_sdk_s3::Client>,
}

impl Fetcher {
    pub fn new(policy: Arc<SourcePolicy>, options: FetchOptions) -> Result<Self, FetchError> {
        let http = policy
            .client(concat!("htsprep-worker/", env!("CARGO_PKG_VERSION")))
            .map_err(FetchError::Setup)?;
        Ok(Self {
            http,
            options,
            s3: None,
        })
    }

    /// Enables `s3://` sources.
    pub fn with_s3(mut self, client: aws_sdk_s3::Client) -> Self {
        self.s3 = Some(client);
        self
    }

    /// Fetches `url` into `dest` and verifies it. `progress` is told the bytes received so far.
    pub async fn fetch(
        &self,
        url: &AccessUrl,
        dest: &Path,
        expected: &Expected,
        progress: &(dyn Fn(u64) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<Fetched, FetchError> {
        let target = Target {
            dest,
            max_size: (expected.size != 0).then_some(expected.size),
            progress,
        };
        let target = &target;
        let fetch = async {
            let (size, md5) = match url.scheme() {
                "file" => sink::link_file(url, self.http.policy(), target).await?,
                "http" | "https" => {
                    http::download(&self.http, &self.options, url.as_url(), target).await?
                }
                "s3" => match &self.s3 {
                    Some(client) => s3::download(client, url.as_url(), target).await?,
                    None => {
                        return Err(FetchError::UnsupportedScheme {
                            url: url.to_string(),
                            scheme: "s3".into(),
                        });
                    }
                },
                "drs" => {
                    let resolved = drs::resolve(&self.http, &self.options, url.as_url()).await?;
                    http::download_resolved(&self.http, &self.options, &resolved, target).await?
                }
                other => {
                    return Err(FetchError::UnsupportedScheme {
                        url: url.to_string(),
                        scheme: other.to_owned(),
                    });
                }
            };
            Ok::<_, FetchError>((size, md5))
        };
        let (size, md5) = tokio::select! {
            r = fetch => r?,
            () = cancel.cancelled() => return Err(FetchError::Cancelled),
        };
        if md5 != expected.md5 {
            return Err(FetchError::Md5Mismatch {
                expected: expected.md5.to_string(),
                actual: md5.to_string(),
                size,
            });
        }
        if expected.size != 0 && size != expected.size {
            return Err(FetchError::SizeMismatch {
                expected: expected.size,
                actual: size,
            });
        }
        let compression = sniff_compression(dest).await.map_err(|e| FetchError::Io {
            action: "read back",
            source: e,
        })?;
        if let Some(name) = compression.unsupported() {
            return Err(FetchError::UnsupportedCompression { kind: name });
        }
        Ok(Fetched {
            size,
            md5,
            compression,
        })
    }
}
