//! The MongoDB catalog: one document per file, unique on `(dcc, local_id)`.

use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::Collection;
use mongodb::bson::{Document, doc};
use mongodb::options::ReturnDocument;
use serde::{Deserialize, Serialize};

use super::{Catalog, CatalogError, CatalogPage, CatalogQuery, PutOutcome};
use crate::domain::{AccessUrl, FileRecord, Format, Ident, Md5, SidecarKind};
use crate::mongo::{FILES, MongoDb, retrying};

/// The stored form of a file record (unknown fields ignored, missing optional ones defaulted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct FileDoc {
    dcc: Ident,
    local_id: Ident,
    md5: Md5,
    size: i64,
    format: Format,
    access_url: AccessUrl,
    #[serde(default)]
    sidecars: Sidecars,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Sidecars {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bai: Option<AccessUrl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tbi: Option<AccessUrl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    csi: Option<AccessUrl>,
}

impl From<&FileRecord> for FileDoc {
    fn from(r: &FileRecord) -> Self {
        Self {
            dcc: r.dcc.clone(),
            local_id: r.local_id.clone(),
            md5: r.md5.clone(),
            size: i64::try_from(r.size).unwrap_or(i64::MAX),
            format: r.format,
            access_url: r.access_url.clone(),
            sidecars: Sidecars {
                bai: r.sidecars.get(&SidecarKind::Bai).cloned(),
                tbi: r.sidecars.get(&SidecarKind::Tbi).cloned(),
                csi: r.sidecars.get(&SidecarKind::Csi).cloned(),
            },
        }
    }
}

impl From<FileDoc> for FileRecord {
    fn from(d: FileDoc) -> Self {
        let sidecars = [
            (SidecarKind::Bai, d.sidecars.bai),
            (SidecarKind::Tbi, d.sidecars.tbi),
            (SidecarKind::Csi, d.sidecars.csi),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        Self {
            dcc: d.dcc,
            local_id: d.local_id,
            md5: d.md5,
            size: u64::try_from(d.size).unwrap_or_default(),
            format: d.format,
            access_url: d.access_url,
            sidecars,
        }
    }
}

#[derive(Clone, Debug)]
pub struct MongoCatalog {
    files: Collection<FileDoc>,
}

fn backend(what: &str, e: mongodb::error::Error) -> CatalogError {
    if crate::mongo::is_transient(&e) {
        CatalogError::unavailable(what, e)
    } else {
        CatalogError::backend(what, e)
    }
}

impl MongoCatalog {
    pub fn new(db: &MongoDb) -> Self {
        Self {
            files: db.collection(FILES),
        }
    }
}

#[async_trait]
impl Catalog for MongoCatalog {
    async fn get(&self, dcc: &Ident, local_id: &Ident) -> Result<FileRecord, CatalogError> {
        let filter = doc! {"dcc": dcc.as_str(), "local_id": local_id.as_str()};
        let found = retrying(|| async { self.files.find_one(filter.clone()).await })
            .await
            .map_err(|e| backend("get file", e))?;
        found
            .map(FileRecord::from)
            .ok_or_else(|| CatalogError::not_found(dcc, local_id))
    }

    async fn put(&self, record: &FileRecord) -> Result<PutOutcome, CatalogError> {
        let new = FileDoc::from(record);
        let filter = doc! {"dcc": record.dcc.as_str(), "local_id": record.local_id.as_str()};
        // One atomic replace-or-insert; the document it replaced says what changed. Idempotent,
        // so it is retried on transient errors.
        let old = retrying(|| async {
            self.files
                .find_one_and_replace(filter.clone(), new.clone())
                .upsert(true)
                .return_document(ReturnDocument::Before)
                .await
        })
        .await
        .map_err(|e| backend("register file", e))?;
        Ok(match old {
            None => PutOutcome::Inserted,
            Some(old) if old == new => PutOutcome::Unchanged,
            Some(_) => PutOutcome::Updated,
        })
    }

    async fn list(&self, query: &CatalogQuery) -> Result<CatalogPage, CatalogError> {
        let limit = query.limit();
        let mut filter = Document::new();
        if let Some(dcc) = &query.dcc {
            filter.insert("dcc", dcc.as_str());
        }
        if let Some((d, l)) = &query.after {
            filter.insert(
                "$or",
                vec![
                    doc! {"dcc": {"$gt": d.as_str()}},
                    doc! {"dcc": d.as_str(), "local_id": {"$gt": l.as_str()}},
                ],
            );
        }
        let docs: Vec<FileDoc> = retrying(|| async {
            self.files
                .find(filter.clone())
                .sort(doc! {"dcc": 1, "local_id": 1})
                .limit(limit as i64 + 1)
                .batch_size(500)
                .await?
                .try_collect()
                .await
        })
        .await
        .map_err(|e| backend("list files", e))?;
        let files: Vec<FileRecord> = docs.into_iter().map(FileRecord::from).collect();
        Ok(CatalogPage::from_rows(files, limit))
    }

    async fn delete(&self, dcc: &Ident, local_id: &Ident) -> Result<bool, CatalogError> {
        let filter = doc! {"dcc": dcc.as_str(), "local_id": local_id.as_str()};
        let res = retrying(|| async { self.files.delete_one(filter.clone()).await })
            .await
            .map_err(|e| backend("delete file", e))?;
        Ok(res.deleted_count > 0)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::mongo::testing::TestMongo;

    async fn make() -> (Arc<dyn Catalog>, TestMongo) {
        let server = TestMongo::start().await;
        let db = server.fresh_database().await;
        db.create_indexes().await.unwrap();
        (Arc::new(MongoCatalog::new(&db)), server)
    }

    crate::catalog_conformance!(make);
}
