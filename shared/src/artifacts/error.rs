use super::{KeyError, RangeError};
use crate::error::Cause;

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
    #[error("the file to publish as artifact {key} ({path}) is unreadable")]
    Source {
        key: String,
        path: String,
        #[source]
        source: Cause,
    },
    #[error("artifact store unavailable: {context}")]
    Unavailable {
        context: String,
        #[source]
        source: Option<Cause>,
    },
    #[error("artifact store failed to {action} {key}: {source}")]
    Io {
        action: &'static str,
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("artifact store failed: {context}")]
    Backend {
        context: String,
        #[source]
        source: Option<Cause>,
    },
}

crate::store_error_constructors!(ArtifactError);
