use super::{KeyError, RangeError};

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("artifact {key} not found")]
    NotFound { key: String },
    /// A put found the key published already: published artifacts are never replaced.
    #[error("artifact {key} is published already and is never replaced")]
    AlreadyExists { key: String },
    #[error(transparent)]
    InvalidKey(#[from] KeyError),
    #[error(transparent)]
    Range(#[from] RangeError),
    #[error("source file for artifact {key} is unreadable: {reason}")]
    Source { key: String, reason: String },
    #[error("artifact store unavailable: {0}")]
    Unavailable(String),
    #[error("artifact store failed to {action} {key}: {source}")]
    Io {
        action: &'static str,
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("artifact store failed: {0}")]
    Backend(String),
}

impl ArtifactError {
    /// Whether retrying the same call cannot help.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, ArtifactError::Unavailable(_))
    }
}
