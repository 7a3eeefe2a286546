//! Opens the storage backends the configuration selects, with the context an operator needs.

use std::sync::Arc;

use anyhow::Context;
use htsprep_shared::catalog::Catalog;
use htsprep_shared::jobstore::JobStore;

use crate::config::Config;

pub async fn open_catalog(config: &Config) -> anyhow::Result<Arc<dyn Catalog>> {
    config
        .storage
        .open_catalog()
        .await
        .with_context(|| format!("open the catalog in {}", config.storage.data_dir.display()))
}

pub async fn open_job_store(config: &Config) -> anyhow::Result<Arc<dyn JobStore>> {
    config.storage.open_job_store().await.with_context(|| {
        format!(
            "open the job store in {}",
            config.storage.data_dir.display()
        )
    })
}
