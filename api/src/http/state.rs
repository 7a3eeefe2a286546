use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

use htsprep_shared::artifacts::{ArtifactKey, ArtifactStore};
use htsprep_shared::jobstore::JobStore;
use htsprep_shared::outbound::SourceClient;

use super::error::ApiError;
use crate::catalog_cache::CachedCatalog;
use crate::coalesce::Coalesce;
use crate::executor::Executor;

/// What every handler shares: one reference-counted [`Shared`], so a request's copy of it is
/// one counter increment.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

impl From<Shared> for AppState {
    fn from(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fleet as `GET /fleet` shows it.
#[derive(Debug)]
pub struct FleetView {
    pub roster: Arc<dyn crate::fleet::Roster>,
    /// `local` or `ecs`.
    pub provider: &'static str,
    pub max_workers: usize,
    /// The warm pool (`POST /fleet/scale` changes its minimum).
    pub warm: crate::warm::WarmPool,
}

#[derive(Debug)]
pub struct Shared {
    pub fleet: FleetView,
    /// The catalog, cached (its records kept as the serving endpoints use them).
    pub catalog: Arc<CachedCatalog>,
    pub store: Arc<dyn JobStore>,
    pub artifacts: Arc<dyn ArtifactStore>,
    pub executor: Executor,
    /// Reads upstream sources under the source policy.
    pub http: SourceClient,
    /// Reads `s3://` sources (passthrough formats, `?raw=true`, sidecars).
    pub s3: aws_sdk_s3::Client,
    pub admin_token: Option<Arc<str>>,
    /// Index keys known to be published. Keys are content-addressed, so once an index exists the
    /// workflow is ready for good (an operator deleting artifacts is noticed on the next read).
    pub ready: Arc<RwLock<HashSet<ArtifactKey>>>,
    /// Readiness probes in flight, by index key: concurrent requests share one.
    pub probes: Coalesce<Result<bool, ApiError>>,
    pub metrics: Arc<Metrics>,
    /// htsget layouts of prepared files, kept between tickets.
    pub layouts: crate::htsget::Layouts,
    /// `HTSPREP_S3_REDIRECT`: how long the presigned URLs ready artifacts are redirected to
    /// last; `None`: the API serves the bytes itself.
    pub redirect: Option<std::time::Duration>,
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub served_full: AtomicU64,
    pub served_partial: AtomicU64,
    pub cold_requests: AtomicU64,
    pub not_satisfiable: AtomicU64,
    /// Body bytes of the 200 and 206 answers to GETs (artifacts and upstream sources).
    pub served_bytes: AtomicU64,
    /// Ready artifacts answered with a redirect to a presigned URL.
    pub redirects: AtomicU64,
}
