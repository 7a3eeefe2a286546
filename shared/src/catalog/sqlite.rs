//! The embedded catalog: a `files` table in the same SQLite file as the job store.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::{Catalog, CatalogError, CatalogPage, CatalogQuery, PutOutcome};
use crate::domain::{FileRecord, Ident};
use crate::error::Cause;
use crate::sqlite::{SqliteError, SqlitePool};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS files (
    dcc      TEXT NOT NULL,
    local_id TEXT NOT NULL,
    doc      TEXT NOT NULL,
    PRIMARY KEY (dcc, local_id)
);
";

#[derive(Debug, Clone)]
pub struct SqliteCatalog {
    pool: Arc<SqlitePool>,
}

impl From<SqliteError> for CatalogError {
    fn from(e: SqliteError) -> Self {
        e.into_store(CatalogError::unavailable, CatalogError::backend)
    }
}

fn decode(id: &str, doc: &str) -> Result<FileRecord, CatalogError> {
    serde_json::from_str(doc).map_err(|e| CatalogError::Corrupt {
        id: id.to_owned(),
        source: Cause::new(e),
    })
}

impl SqliteCatalog {
    pub async fn open(path: &Path) -> Result<Self, CatalogError> {
        let pool = SqlitePool::open(path, SCHEMA)
            .await
            .map_err(|e| CatalogError::backend(format!("open catalog {}", path.display()), e))?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl Catalog for SqliteCatalog {
    async fn get(&self, dcc: &Ident, local_id: &Ident) -> Result<FileRecord, CatalogError> {
        let (d, l) = (dcc.to_string(), local_id.to_string());
        let doc: Option<String> = self
            .pool
            .run(move |conn| {
                conn.query_row(
                    "SELECT doc FROM files WHERE dcc = ?1 AND local_id = ?2",
                    [d, l],
                    |r| r.get(0),
                )
                .optional()
            })
            .await?;
        match doc {
            Some(doc) => decode(&format!("{dcc}/{local_id}"), &doc),
            None => Err(CatalogError::not_found(dcc, local_id)),
        }
    }

    async fn put(&self, record: &FileRecord) -> Result<PutOutcome, CatalogError> {
        let doc = serde_json::to_string(record)
            .map_err(|e| CatalogError::backend("encode a file record", e))?;
        let (d, l) = (record.dcc.to_string(), record.local_id.to_string());
        Ok(self
            .pool
            .write(move |tx| {
                let old: Option<String> = tx
                    .query_row(
                        "SELECT doc FROM files WHERE dcc = ?1 AND local_id = ?2",
                        [&d, &l],
                        |r| r.get(0),
                    )
                    .optional()?;
                let outcome = match old {
                    Some(old) if old == doc => return Ok(PutOutcome::Unchanged),
                    Some(_) => PutOutcome::Updated,
                    None => PutOutcome::Inserted,
                };
                tx.execute(
                    "INSERT INTO files (dcc, local_id, doc) VALUES (?1, ?2, ?3)
                     ON CONFLICT (dcc, local_id) DO UPDATE SET doc = excluded.doc",
                    params![d, l, doc],
                )?;
                Ok(outcome)
            })
            .await?)
    }

    async fn list(&self, query: &CatalogQuery) -> Result<CatalogPage, CatalogError> {
        let limit = query.limit();
        let dcc = query.dcc.as_ref().map(Ident::to_string);
        let (ad, al) = match &query.after {
            Some((d, l)) => (Some(d.to_string()), l.to_string()),
            None => (None, String::new()),
        };
        let rows: Vec<(String, String, String)> = self
            .pool
            .run(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT dcc, local_id, doc FROM files
                     WHERE (?1 IS NULL OR dcc = ?1)
                       AND (?2 IS NULL OR dcc > ?2 OR (dcc = ?2 AND local_id > ?3))
                     ORDER BY dcc, local_id LIMIT ?4",
                )?;
                let rows = stmt
                    .query_map(params![dcc, ad, al, (limit + 1) as i64], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await?;
        let files = rows
            .iter()
            .map(|(d, l, doc)| decode(&format!("{d}/{l}"), doc))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CatalogPage::from_rows(files, limit))
    }

    async fn delete(&self, dcc: &Ident, local_id: &Ident) -> Result<bool, CatalogError> {
        let (d, l) = (dcc.to_string(), local_id.to_string());
        let n = self
            .pool
            .run(move |conn| {
                conn.execute("DELETE FROM files WHERE dcc = ?1 AND local_id = ?2", [d, l])
            })
            .await?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn make() -> (Arc<dyn Catalog>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let catalog = SqliteCatalog::open(&dir.path().join("catalog.db"))
            .await
            .unwrap();
        (Arc::new(catalog), dir)
    }

    crate::catalog_conformance!(make);
}
