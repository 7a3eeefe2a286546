//! The layouts of prepared files (index, reference names, where records begin), kept between
//! tickets: a genome browser asks for a ticket at every move, and reading the index each time
//! (a whole object, from S3 in production) would cost every one of them. Artifact keys are
//! content-addressed, so a layout never goes stale; concurrent first tickets share one load.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use htsprep_shared::artifacts::ArtifactKey;

use super::layout::Layout;
use crate::coalesce::Coalesce;
use crate::http::error::ApiError;

/// Layouts kept (the oldest goes first).
const KEPT: usize = 64;

/// The kept layouts, and the order they came in.
#[derive(Default)]
struct Kept {
    map: HashMap<ArtifactKey, Arc<Layout>>,
    order: VecDeque<ArtifactKey>,
}

#[derive(Default)]
pub struct Layouts {
    kept: Mutex<Kept>,
    loads: Coalesce<Result<Arc<Layout>, ApiError>>,
    loaded: AtomicU64,
}

impl std::fmt::Debug for Layouts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layouts")
            .field("loaded", &self.loaded())
            .finish_non_exhaustive()
    }
}

impl Layouts {
    /// Layouts read from storage so far (`htsprep_htsget_layouts_loaded_total`).
    pub fn loaded(&self) -> u64 {
        self.loaded.load(Ordering::Relaxed)
    }

    /// The layout of the file whose index is `index`, loaded by `load` the first time.
    pub async fn get(
        &self,
        index: &ArtifactKey,
        load: impl FnOnce() -> futures::future::BoxFuture<'static, Result<Layout, ApiError>>,
    ) -> Result<Arc<Layout>, ApiError> {
        if let Some(l) = self.kept.lock().expect("layouts lock").map.get(index) {
            return Ok(Arc::clone(l));
        }
        let layout = self
            .loads
            .run(index.as_str(), || {
                let loading = load();
                Box::pin(async move { loading.await.map(Arc::new) })
            })
            .await?;
        let mut kept = self.kept.lock().expect("layouts lock");
        let Kept { map, order } = &mut *kept;
        if map.insert(index.clone(), Arc::clone(&layout)).is_none() {
            self.loaded.fetch_add(1, Ordering::Relaxed);
            order.push_back(index.clone());
            while order.len() > KEPT {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
        Ok(layout)
    }
}
