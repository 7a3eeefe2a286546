//! The `htsprep-api` command line: the server and the operators' admin commands.

mod files;
mod fleet;
mod jobs;
mod prepare;
mod watch;

use clap::{Parser, Subcommand};

pub use files::FilesCommand;
pub use fleet::FleetCommand;
pub use jobs::JobsCommand;
pub use prepare::PrepareCommand;

#[derive(Debug, Parser)]
#[command(
    name = "htsprep-api",
    version,
    about = "htsprep control plane and admin commands"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (with the local worker fleet) until SIGTERM or SIGINT.
    Serve,
    /// Catalog maintenance: import, list and show registered source files.
    #[command(subcommand)]
    Files(FilesCommand),
    /// Inspect jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// The worker fleet, from the running API: every worker or task, its health, status, jobs
    /// or idle time, and why the ones that stopped lately did.
    #[command(subcommand)]
    Fleet(FleetCommand),
    /// Prepare every matching catalog file ahead of its users, through the running API, with a
    /// progress bar and a closing summary (prepared, already ready, failed with reasons); exit
    /// status 1 if any failed, 130 when interrupted (run it again to go on).
    Prepare(PrepareCommand),
    /// Create the MongoDB indexes (idempotent) and list them: the unique index over active
    /// workflows, unique job ids, the stale scan, the finished-job TTL and the catalog's unique
    /// (dcc, local_id). Needs MONGODB_URI.
    CreateIndexes,
    /// Print the HTTP API's OpenAPI 3.1 document (what `GET /openapi.json` serves), e.g. to
    /// generate a client.
    Openapi,
}

/// `htsprep-api create-indexes`.
pub async fn create_indexes(config: &crate::config::Config) -> anyhow::Result<i32> {
    use anyhow::Context;
    let Some(settings) = &config.storage.mongo else {
        anyhow::bail!(
            "create-indexes needs MONGODB_URI: the embedded SQLite store creates its own indexes"
        );
    };
    let db = htsprep_shared::mongo::MongoDb::connect(settings).await?;
    db.create_indexes().await.context("create indexes")?;
    for (collection, model) in db.list_indexes().await? {
        let opts = model.options.unwrap_or_default();
        let mut extra = Vec::new();
        if opts.unique == Some(true) {
            extra.push("unique".to_owned());
        }
        if let Some(f) = opts.partial_filter_expression {
            extra.push(format!("partial {f}"));
        }
        if let Some(t) = opts.expire_after {
            extra.push(format!("expires after {}s", t.as_secs()));
        }
        println!(
            "{collection}.{} {} {}",
            opts.name.unwrap_or_default(),
            model.keys,
            extra.join(", ")
        );
    }
    Ok(0)
}

/// The running API's base URL for the commands that talk to it: `--api`, else
/// `http://HTSPREP_LISTEN` (on 127.0.0.1 when it listens on every address).
fn api_base(config: &crate::config::Config, api: Option<url::Url>) -> String {
    let base = match api {
        Some(url) => url.to_string(),
        None => {
            let mut addr = config.listen;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}")
        }
    };
    base.trim_end_matches('/').to_owned()
}
