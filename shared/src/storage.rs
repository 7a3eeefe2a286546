//! Which storage backends a process uses, chosen by configuration, and opening them. Both
//! binaries (the API and its workers) read the same variables, so they always agree.

use std::path::PathBuf;
use std::sync::Arc;

use crate::artifacts::{ArtifactError, ArtifactStore, LocalArtifactStore};
use crate::catalog::{Catalog, CatalogError, SqliteCatalog};
use crate::clock::SystemClock;
use crate::jobstore::{JobStore, JobStoreError, SqliteJobStore};
use crate::settings::EnvReader;

pub const DEFAULT_DATA_DIR: &str = "./data";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageConfig {
    /// `HTSPREP_DATA_DIR`: the embedded job store and catalog (`htsprep.db`) and the local
    /// artifact directory (`artifacts/`).
    pub data_dir: PathBuf,
}

impl StorageConfig {
    pub fn read(env: &mut EnvReader<'_>) -> Self {
        let data_dir = env.parse_with("HTSPREP_DATA_DIR", PathBuf::from(DEFAULT_DATA_DIR), |s| {
            Ok(PathBuf::from(s))
        });
        Self { data_dir }
    }

    /// The embedded SQLite database (job store and catalog).
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("htsprep.db")
    }

    /// The local artifact directory.
    pub fn artifacts_dir(&self) -> PathBuf {
        self.data_dir.join("artifacts")
    }

    pub async fn open_job_store(&self) -> Result<Arc<dyn JobStore>, JobStoreError> {
        Ok(Arc::new(
            SqliteJobStore::open(&self.database_path(), Arc::new(SystemClock)).await?,
        ))
    }

    pub async fn open_catalog(&self) -> Result<Arc<dyn Catalog>, CatalogError> {
        Ok(Arc::new(SqliteCatalog::open(&self.database_path()).await?))
    }

    pub fn open_artifact_store(&self) -> Result<Arc<dyn ArtifactStore>, ArtifactError> {
        Ok(Arc::new(LocalArtifactStore::open(&self.artifacts_dir())?))
    }
}
