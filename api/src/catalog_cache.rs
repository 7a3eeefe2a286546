//! A read-through cache in front of the catalog, so the hot path does not query the store on
//! every Range request. Entries live for a short TTL: a record changed elsewhere (another
//! replica, the admin CLI) is seen within it; changes made through this API are seen at once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use htsprep_shared::catalog::{Catalog, CatalogError, CatalogPage, CatalogQuery, PutOutcome};
use htsprep_shared::domain::{FileRecord, Ident};

const MAX_ENTRIES: usize = 100_000;

#[derive(Debug)]
pub struct CachedCatalog {
    inner: Arc<dyn Catalog>,
    ttl: Duration,
    entries: RwLock<HashMap<(Ident, Ident), (Instant, FileRecord)>>,
}

impl CachedCatalog {
    pub fn new(inner: Arc<dyn Catalog>, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    fn forget(&self, dcc: &Ident, local_id: &Ident) {
        self.entries
            .write()
            .expect("cache lock")
            .remove(&(dcc.clone(), local_id.clone()));
    }
}

#[async_trait]
impl Catalog for CachedCatalog {
    async fn get(&self, dcc: &Ident, local_id: &Ident) -> Result<FileRecord, CatalogError> {
        let key = (dcc.clone(), local_id.clone());
        if let Some((at, rec)) = self.entries.read().expect("cache lock").get(&key)
            && at.elapsed() < self.ttl
        {
            return Ok(rec.clone());
        }
        let rec = self.inner.get(dcc, local_id).await?;
        if !self.ttl.is_zero() {
            let mut entries = self.entries.write().expect("cache lock");
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(key, (Instant::now(), rec.clone()));
        }
        Ok(rec)
    }

    async fn put(&self, record: &FileRecord) -> Result<PutOutcome, CatalogError> {
        let out = self.inner.put(record).await;
        self.forget(&record.dcc, &record.local_id);
        out
    }

    async fn list(&self, query: &CatalogQuery) -> Result<CatalogPage, CatalogError> {
        self.inner.list(query).await
    }

    async fn delete(&self, dcc: &Ident, local_id: &Ident) -> Result<bool, CatalogError> {
        let out = self.inner.delete(dcc, local_id).await;
        self.forget(dcc, local_id);
        out
    }
}

#[cfg(test)]
mod tests {
    use htsprep_shared::catalog::SqliteCatalog;

    use super::*;

    async fn make() -> (Arc<dyn Catalog>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let inner = SqliteCatalog::open(&dir.path().join("c.db")).await.unwrap();
        (
            Arc::new(CachedCatalog::new(Arc::new(inner), Duration::from_secs(60))),
            dir,
        )
    }

    // The cache is a catalog too: it must behave like one.
    htsprep_shared::catalog_conformance!(make);
}
