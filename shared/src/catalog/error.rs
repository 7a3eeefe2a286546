#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("file {dcc}/{local_id} is not registered")]
    NotFound { dcc: String, local_id: String },
    #[error("catalog unavailable: {0}")]
    Unavailable(String),
    #[error("catalog record {id} is unreadable: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("catalog failed: {0}")]
    Backend(String),
}

impl CatalogError {
    /// Whether retrying the same call cannot help.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, CatalogError::Unavailable(_))
    }
}
