//! Opens the storage backends the configuration selects, with the context an operator needs.

use anyhow::Context;
use htsprep_shared::storage::Stores;

use crate::config::Config;

pub async fn open(config: &Config) -> anyhow::Result<Stores> {
    let s = &config.storage;
    let place = match &s.mongo {
        Some(m) => format!("MongoDB database {}", m.database),
        None => format!("{}", s.database_path().display()),
    };
    s.open_stores()
        .await
        .with_context(|| format!("open the job store and catalog in {place}"))
}
