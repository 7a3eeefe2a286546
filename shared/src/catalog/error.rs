use crate::error::Cause;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("file {dcc}/{local_id} is not registered")]
    NotFound { dcc: String, local_id: String },
    #[error("catalog unavailable: {context}")]
    Unavailable {
        context: String,
        #[source]
        source: Option<Cause>,
    },
    #[error("catalog record {id} is unreadable")]
    Corrupt {
        id: String,
        #[source]
        source: Cause,
    },
    #[error("catalog failed: {context}")]
    Backend {
        context: String,
        #[source]
        source: Option<Cause>,
    },
}

impl CatalogError {
    /// Whether retrying the same call cannot help.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, CatalogError::Unavailable { .. })
    }

    /// The catalog could not be reached doing `context`; retrying may help.
    pub fn unavailable(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Unavailable {
            context: context.into(),
            source: Some(Cause::new(source)),
        }
    }

    /// The catalog failed doing `context`; retrying will not help.
    pub fn backend(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Backend {
            context: context.into(),
            source: Some(Cause::new(source)),
        }
    }
}
