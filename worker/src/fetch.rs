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
use std::time::{Duration, Instant};

use htsprep_shared::domain::{AccessUrl, Md5};
use htsprep_shared::outbound::{SourceClient, SourcePolicy};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use sink::Target;

pub use error::FetchError;
pub use sniff::{Compression, sniff_compression};

/// A source on local disk, its compression known and its checksum verified, or being verified
/// while the stages read it: [`Fetched::verified`] says how that ended.
#[derive(Debug)]
pub struct Fetched {
    pub size: u64,
    pub compression: Compression,
    checksum: Checksum,
}

#[derive(Debug)]
enum Checksum {
    Verified(Md5),
    /// A local source linked where it is, being read once to hash it.
    Pending(AbortOnDropHandle<sink::Hashed>),
}

impl Fetched {
    /// Whether the checksum is still being computed.
    pub fn is_pending(&self) -> bool {
        matches!(self.checksum, Checksum::Pending(_))
    }

    /// The source's md5 once it is known to match `expected`, and when that was known.
    pub async fn verified(self, expected: &Expected) -> (Result<Md5, FetchError>, Instant) {
        match self.checksum {
            Checksum::Verified(md5) => (Ok(md5), Instant::now()),
            Checksum::Pending(hash) => match hash.await {
                Ok((hashed, at)) => (hashed.and_then(|(size, md5)| expected.check(size, md5)), at),
                Err(e) => {
                    let e = FetchError::Io {
                        action: "hash",
                        source: std::io::Error::other(e),
                    };
                    (Err(e), Instant::now())
                }
            },
        }
    }
}

/// What the caller expects the source to be.
#[derive(Clone, Debug)]
pub struct Expected {
    pub md5: Md5,
    /// 0 when unknown.
    pub size: u64,
}

impl Expected {
    /// `md5` if it and `size` are what the catalog says.
    fn check(&self, size: u64, md5: Md5) -> Result<Md5, FetchError> {
        if md5 != self.md5 {
            return Err(FetchError::Md5Mismatch {
                expected: self.md5.to_string(),
                actual: md5.to_string(),
                size,
            });
        }
        self.check_size(size)?;
        Ok(md5)
    }

    fn check_size(&self, size: u64) -> Result<(), FetchError> {
        if self.size != 0 && size != self.size {
            return Err(FetchError::SizeMismatch {
                expected: self.size,
                actual: size,
            });
        }
        Ok(())
    }
}

/// How a source reached the work directory.
enum Arrived {
    Downloaded(u64, Md5),
    Linked(sink::LocalHash),
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

    /// Fetches `url` into `dest` and verifies it (a local source: links it and starts hashing it,
    /// to be awaited with [`Fetched::verified`]). `progress` is told the bytes received so far.
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
                "file" => {
                    let local = sink::link_file(url, self.http.policy(), target).await?;
                    return Ok(Arrived::Linked(local));
                }
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
            Ok::<_, FetchError>(Arrived::Downloaded(size, md5))
        };
        let arrived = tokio::select! {
            r = fetch => r?,
            () = cancel.cancelled() => return Err(FetchError::Cancelled),
        };
        let (size, checksum) = match arrived {
            Arrived::Downloaded(size, md5) => {
                (size, Checksum::Verified(expected.check(size, md5)?))
            }
            Arrived::Linked(local) => {
                expected.check_size(local.size)?;
                (local.size, Checksum::Pending(local.spawn(cancel.clone())))
            }
        };
        let compression = sniff_compression(dest).await.map_err(|e| FetchError::Io {
            action: "read back",
            source: e,
        })?;
        if let Some(name) = compression.unsupported() {
            return Err(FetchError::UnsupportedCompression { kind: name });
        }
        Ok(Fetched {
            size,
            compression,
            checksum,
        })
    }
}
