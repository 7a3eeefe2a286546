#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("could not set up the HTTP client: {0}")]
    Setup(#[source] reqwest::Error),
    /// The source policy refused the URL, a redirect or an address before any connection.
    #[error(transparent)]
    Refused(#[from] htsprep_shared::outbound::Refused),
    #[error(
        "source {url} sent more than the {max} bytes the catalog gives as its size; the download \
         was stopped"
    )]
    TooLarge { url: String, max: u64 },
    #[error("cannot fetch {url}: scheme {scheme:?} is not supported by this worker")]
    UnsupportedScheme { url: String, scheme: String },
    #[error("source {url} was not found ({reason})")]
    NotFound { url: String, reason: String },
    #[error("source {url} cannot be opened")]
    Open {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("source {url} is unreachable: {what}")]
    Unreachable {
        url: String,
        /// `timed out`, `connection failed`, `the transfer failed`.
        what: &'static str,
        #[source]
        source: htsprep_shared::error::Cause,
    },
    #[error("source {url} answered HTTP {status}")]
    HttpStatus { url: String, status: u16 },
    #[error("DRS object {url} could not be resolved: {reason}")]
    Drs { url: String, reason: String },
    #[error(
        "md5 mismatch: the catalog says {expected} but the downloaded file ({size} bytes) has \
         {actual}; the source changed upstream or the catalog entry is wrong"
    )]
    Md5Mismatch {
        expected: String,
        actual: String,
        size: u64,
    },
    #[error("size mismatch: the catalog says {expected} bytes but the source has {actual}")]
    SizeMismatch { expected: u64, actual: u64 },
    #[error(
        "the source is compressed with {kind}, which is not supported; provide it plain, gzip or \
         bgzip-compressed"
    )]
    UnsupportedCompression { kind: &'static str },
    #[error("could not {action} the downloaded source: {source}")]
    Io {
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the download was cancelled")]
    Cancelled,
}

impl FetchError {
    /// Whether another attempt later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Unreachable { .. } | FetchError::Io { .. } => true,
            FetchError::HttpStatus { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}
