//! Opens the storage backends the configuration selects.

use std::sync::Arc;

use anyhow::Context;
use htsprep_shared::SystemClock;
use htsprep_shared::catalog::{Catalog, SqliteCatalog};
use htsprep_shared::jobstore::{JobStore, SqliteJobStore};

use crate::config::Config;

pub async fn open_catalog(config: &Config) -> anyhow::Result<Arc<dyn Catalog>> {
    let path = config.database_path();
    let catalog = SqliteCatalog::open(&path)
        .await
        .with_context(|| format!("open the embedded catalog at {}", path.display()))?;
    Ok(Arc::new(catalog))
}

pub async fn open_job_store(config: &Config) -> anyhow::Result<Arc<dyn JobStore>> {
    let path = config.database_path();
    let store = SqliteJobStore::open(&path, Arc::new(SystemClock))
        .await
        .with_context(|| format!("open the embedded job store at {}", path.display()))?;
    Ok(Arc::new(store))
}
