//! Downloads a source to a local file, hashing it on the way, and refuses it unless its md5 (and
//! size, when the catalog knows it) match and its compression is one the pipelines can read.

mod drs;
mod error;
mod http;
mod s3;
mod sink;
mod sniff;

use std::path::Path;
use std::time::Duration;

use htsprep_shared::domain::{AccessUrl, Md5};
use tokio_util::sync::CancellationToken;

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

#[derive(Clone, Debug)]
pub struct FetchOptions {
    pub connect_timeout: Duration,
    /// The longest silence allowed while reading a body.
    pub read_timeout: Duration,
    /// Attempts for transient failures (connection errors, timeouts, 5xx, 429).
    pub attempts: u32,
    pub backoff: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            attempts: 4,
            backoff: Duration::from_millis(500),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Fetcher {
    http: reqwest::Client,
    options: FetchOptions,
    /// For `s3://` sources; without it they fail with a clear reason.
    s3: Option<aws_sdk_s3::Client>,
}

impl Fetcher {
    pub fn new(options: FetchOptions) -> Result<Self, FetchError> {
        let http = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .user_agent(concat!("htsprep-worker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Setup(e.to_string()))?;
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
        let fetch = async {
            let (size, md5) = match url.scheme() {
                "file" => sink::copy_file(url, dest, progress).await?,
                "http" | "https" => {
                    http::download(&self.http, &self.options, url.as_url(), dest, progress).await?
                }
                "s3" => match &self.s3 {
                    Some(client) => s3::download(client, url.as_url(), dest, progress).await?,
                    None => {
                        return Err(FetchError::UnsupportedScheme {
                            url: url.to_string(),
                            scheme: "s3".into(),
                        });
                    }
                },
                "drs" => {
                    let resolved = drs::resolve(&self.http, &self.options, url.as_url()).await?;
                    http::download_resolved(&self.http, &self.options, &resolved, dest, progress)
                        .await?
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
