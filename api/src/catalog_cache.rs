//! A read-through cache in front of the catalog, so the hot path does not query the store on
//! every Range request. Entries live for a short TTL: a record changed elsewhere (another
//! replica, the admin CLI) is seen within it; changes made through this API are seen at once.
//! It keeps each record as its requests use it ([`ServedFile`]: with its keys derived), and
//! that a file is not registered, for the same TTL: asking again for a file nobody registered
//! asks the store once per TTL, not once per request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::FutureExt;
use htsprep_shared::catalog::{Catalog, CatalogError, CatalogPage, CatalogQuery, PutOutcome};
use htsprep_shared::domain::{FileRecord, Ident};

use crate::coalesce::Coalesce;
use crate::served::ServedFile;

const MAX_ENTRIES: usize = 100_000;

/// When a file was read, and what was found (`None`: it is not registered).
type Entry = (Instant, Option<Arc<ServedFile>>);

#[derive(Debug)]
pub struct CachedCatalog {
    inner: Arc<dyn Catalog>,
    ttl: Duration,
    entries: RwLock<HashMap<(Ident, Ident), Entry>>,
    /// Concurrent misses of one file share one read: a thousand requests for a file nobody asked
    /// for before make one catalog read, not a thousand (each a database connection and a
    /// blocking thread).
    loads: Coalesce<Result<Arc<ServedFile>, CatalogError>>,
    /// Bumped by every change: a read that began before one is not cached.
    changes: AtomicU64,
}

/// Identifiers have no `/`: one key per file.
fn load_key(dcc: &Ident, local_id: &Ident) -> String {
    format!("{dcc}/{local_id}")
}

impl CachedCatalog {
    /// Reads run on the runtime this is made on (panics outside a Tokio runtime), not on the
    /// serving thread of the request that missed.
    pub fn new(inner: Arc<dyn Catalog>, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            entries: RwLock::new(HashMap::new()),
            loads: Coalesce::on(tokio::runtime::Handle::current()),
            changes: AtomicU64::new(0),
        }
    }

    /// After a change: no cached record, no read in flight that began before it, and no such
    /// read cached when it ends.
    fn forget(&self, dcc: &Ident, local_id: &Ident) {
        self.changes.fetch_add(1, Ordering::SeqCst);
        self.loads.forget(&load_key(dcc, local_id));
        self.entries
            .write()
            .expect("cache lock")
            .remove(&(dcc.clone(), local_id.clone()));
    }

    /// The file's record, with what its requests need of it.
    pub async fn served(
        &self,
        dcc: &Ident,
        local_id: &Ident,
    ) -> Result<Arc<ServedFile>, CatalogError> {
        let key = (dcc.clone(), local_id.clone());
        let changes = self.changes.load(Ordering::SeqCst);
        if let Some((at, found)) = self.entries.read().expect("cache lock").get(&key)
            && at.elapsed() < self.ttl
        {
            return found
                .clone()
                .ok_or_else(|| CatalogError::not_found(dcc, local_id));
        }
        let inner = Arc::clone(&self.inner);
        let (d, l) = (dcc.clone(), local_id.clone());
        let read =
            move || async move { Ok(Arc::new(ServedFile::new(inner.get(&d, &l).await?))) }.boxed();
        let read = self.loads.run(&load_key(dcc, local_id), read).await;
        let found = match &read {
            Ok(file) => Some(Some(Arc::clone(file))),
            Err(CatalogError::NotFound { .. }) => Some(None),
            // A store that failed says nothing about the file: asked again next time.
            Err(_) => None,
        };
        if let Some(found) = found
            && !self.ttl.is_zero()
            && self.changes.load(Ordering::SeqCst) == changes
        {
            let mut entries = self.entries.write().expect("cache lock");
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(key, (Instant::now(), found));
        }
        read
    }
}

#[async_trait]
impl Catalog for CachedCatalog {
    async fn get(&self, dcc: &Ident, local_id: &Ident) -> Result<FileRecord, CatalogError> {
        Ok(self.served(dcc, local_id).await?.record.clone())
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

    /// The real catalog, with its reads counted and, while `holding`, held after reading until
    /// the test lets them go.
    #[derive(Debug)]
    struct Held {
        inner: SqliteCatalog,
        gets: std::sync::atomic::AtomicUsize,
        holding: std::sync::atomic::AtomicBool,
        gate: tokio::sync::Semaphore,
        /// While set, reads fail as a store that does not answer.
        failing: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl Catalog for Held {
        async fn get(&self, dcc: &Ident, local_id: &Ident) -> Result<FileRecord, CatalogError> {
            self.gets.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(CatalogError::Unavailable {
                    context: "the store does not answer".into(),
                    source: None,
                });
            }
            let hold = self.holding.load(std::sync::atomic::Ordering::SeqCst);
            let read = self.inner.get(dcc, local_id).await;
            if hold {
                // One pass per read: the gate is closed again behind it.
                self.gate.acquire().await.expect("gate open").forget();
            }
            read
        }
        async fn put(&self, record: &FileRecord) -> Result<PutOutcome, CatalogError> {
            self.inner.put(record).await
        }
        async fn list(&self, query: &CatalogQuery) -> Result<CatalogPage, CatalogError> {
            self.inner.list(query).await
        }
        async fn delete(&self, dcc: &Ident, local_id: &Ident) -> Result<bool, CatalogError> {
            self.inner.delete(dcc, local_id).await
        }
    }

    impl Held {
        fn reads(&self) -> usize {
            self.gets.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    /// 200 callers for one file, all waiting, then the reads they started are let go: how many
    /// reads started, and what each caller got. This runtime has one thread: a task counts
    /// itself in and calls in one poll, so once all 200 are counted, each waits in the catalog
    /// or on another caller's read.
    async fn storm(
        cache: &Arc<CachedCatalog>,
        held: &Held,
        dcc: &Ident,
        id: &'static str,
    ) -> (usize, Vec<Result<FileRecord, CatalogError>>) {
        let arrived = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let before = held.reads();
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let (cache, arrived, dcc) = (Arc::clone(cache), Arc::clone(&arrived), dcc.clone());
                tokio::spawn(async move {
                    arrived.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    cache.get(&dcc, &Ident::parse(id).unwrap()).await
                })
            })
            .collect();
        while arrived.load(std::sync::atomic::Ordering::SeqCst) < 200 {
            tokio::task::yield_now().await;
        }
        let started = held.reads() - before;
        held.gate.add_permits(started);
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap());
        }
        (started, got)
    }

    /// A cache over a held catalog with one file registered through it.
    async fn held_cache() -> (Arc<Held>, Arc<CachedCatalog>, FileRecord, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let held = Arc::new(Held {
            inner: SqliteCatalog::open(&dir.path().join("c.db")).await.unwrap(),
            gets: Default::default(),
            holding: true.into(),
            gate: tokio::sync::Semaphore::new(0),
            failing: false.into(),
        });
        let cache = Arc::new(CachedCatalog::new(
            Arc::clone(&held) as Arc<dyn Catalog>,
            Duration::from_secs(60),
        ));
        let record = FileRecord {
            dcc: Ident::parse("d").unwrap(),
            local_id: Ident::parse("f").unwrap(),
            md5: htsprep_shared::domain::Md5::parse("0123456789abcdef0123456789abcdef").unwrap(),
            size: 42,
            format: htsprep_shared::domain::Format::Bed,
            access_url: htsprep_shared::domain::AccessUrl::parse("https://example.org/f").unwrap(),
            sidecars: Default::default(),
        };
        cache.put(&record).await.unwrap();
        (held, cache, record, dir)
    }

    #[tokio::test]
    async fn concurrent_misses_of_one_file_make_one_read() {
        let (held, cache, record, _dir) = held_cache().await;
        let (started, got) = storm(&cache, &held, &record.dcc, "f").await;
        assert_eq!(started, 1, "one read while all 200 wait");
        assert!(got.iter().all(|r| r.as_ref().ok() == Some(&record)));
        assert_eq!(held.reads(), 1);
        // Misses that find nothing share their read too, and each caller gets the error.
        let (started, got) = storm(&cache, &held, &record.dcc, "unknown").await;
        assert_eq!(started, 1, "one read while all 200 wait");
        assert!(
            got.iter()
                .all(|r| matches!(r, Err(CatalogError::NotFound { .. })))
        );
        assert_eq!(held.reads(), 2);
        // Once cached, no read at all: of the file, nor of the one not registered.
        cache.get(&record.dcc, &record.local_id).await.unwrap();
        let unknown = Ident::parse("unknown").unwrap();
        let err = cache.get(&record.dcc, &unknown).await.unwrap_err();
        assert_eq!(err.to_string(), "file d/unknown is not registered");
        assert_eq!(held.reads(), 2);
        // Registered through the cache, it is found at once.
        held.holding
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let registered = FileRecord {
            local_id: unknown.clone(),
            ..record.clone()
        };
        cache.put(&registered).await.unwrap();
        assert_eq!(cache.get(&record.dcc, &unknown).await.unwrap(), registered);
    }

    #[tokio::test]
    async fn a_failed_read_is_not_kept() {
        let (held, cache, record, _dir) = held_cache().await;
        held.holding
            .store(false, std::sync::atomic::Ordering::SeqCst);
        held.failing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let err = cache.get(&record.dcc, &record.local_id).await.unwrap_err();
        assert!(matches!(err, CatalogError::Unavailable { .. }), "{err:?}");
        // The store is back: the file is read, not answered from the failure.
        held.failing
            .store(false, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            cache.get(&record.dcc, &record.local_id).await.unwrap(),
            record
        );
        assert_eq!(held.reads(), 2);
    }

    #[tokio::test]
    async fn a_read_that_began_before_a_change_is_not_kept() {
        let (held, cache, v1, _dir) = held_cache().await;
        // A read of v1, held once it has read.
        let first = {
            let (cache, dcc, id) = (Arc::clone(&cache), v1.dcc.clone(), v1.local_id.clone());
            tokio::spawn(async move { cache.get(&dcc, &id).await })
        };
        while held.reads() < 1 {
            tokio::task::yield_now().await;
        }
        held.holding
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let v2 = FileRecord {
            size: 43,
            ..v1.clone()
        };
        cache.put(&v2).await.unwrap();
        // The next caller reads again (it does not join the read from before the change).
        assert_eq!(cache.get(&v1.dcc, &v1.local_id).await.unwrap(), v2);
        assert_eq!(held.reads(), 2);
        // The old read answers its caller, and is not kept.
        held.gate.add_permits(1);
        first.await.unwrap().unwrap();
        assert_eq!(cache.get(&v1.dcc, &v1.local_id).await.unwrap(), v2);
    }
}
