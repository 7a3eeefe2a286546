//! The catalog seam: registered source files by `(dcc, local_id)`, and import from a JSON Lines
//! manifest.

mod error;
mod manifest;
mod mongo;
mod sqlite;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

use async_trait::async_trait;

use crate::domain::{FileRecord, Ident};

pub use error::CatalogError;
pub use manifest::{ImportError, ImportReport, RowError, import_manifest, parse_manifest_line};
pub use mongo::MongoCatalog;
pub use sqlite::SqliteCatalog;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    Inserted,
    Updated,
    Unchanged,
}

#[derive(Clone, Debug, Default)]
pub struct CatalogQuery {
    /// Only files of this DCC.
    pub dcc: Option<Ident>,
    /// Page size; clamped to 1..=1000 (default 100).
    pub limit: Option<usize>,
    /// Continue after this `(dcc, local_id)`.
    pub after: Option<(Ident, Ident)>,
}

impl CatalogQuery {
    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(100).clamp(1, 1000)
    }
}

#[derive(Clone, Debug)]
pub struct CatalogPage {
    /// Files ordered by `(dcc, local_id)`.
    pub files: Vec<FileRecord>,
    /// Where the next page starts, when more may follow.
    pub next: Option<(Ident, Ident)>,
}

impl CatalogPage {
    /// Builds a page from up to `limit + 1` files fetched in order.
    pub fn from_rows(mut files: Vec<FileRecord>, limit: usize) -> Self {
        let more = files.len() > limit;
        files.truncate(limit);
        let next = if more {
            files.last().map(|f| (f.dcc.clone(), f.local_id.clone()))
        } else {
            None
        };
        Self { files, next }
    }
}

#[async_trait]
pub trait Catalog: Send + Sync + std::fmt::Debug {
    async fn get(&self, dcc: &Ident, local_id: &Ident) -> Result<FileRecord, CatalogError>;

    /// Registers a file, replacing an earlier record with the same `(dcc, local_id)`.
    async fn put(&self, record: &FileRecord) -> Result<PutOutcome, CatalogError>;

    async fn list(&self, query: &CatalogQuery) -> Result<CatalogPage, CatalogError>;

    /// Removes a file; returns whether it was registered.
    async fn delete(&self, dcc: &Ident, local_id: &Ident) -> Result<bool, CatalogError>;
}
