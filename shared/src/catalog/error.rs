use crate::error::Cause;

#[derive(Clone, Debug, thiserror::Error)]
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

crate::store_error_constructors!(CatalogError);

impl CatalogError {
    /// No file `dcc/local_id` in the catalog.
    pub fn not_found(dcc: &crate::domain::Ident, local_id: &crate::domain::Ident) -> Self {
        Self::NotFound {
            dcc: dcc.to_string(),
            local_id: local_id.to_string(),
        }
    }
}
