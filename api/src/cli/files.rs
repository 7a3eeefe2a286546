use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use htsprep_shared::catalog::{CatalogQuery, import_manifest};
use htsprep_shared::domain::Ident;

use crate::config::Config;
use crate::stores;

#[derive(Debug, Subcommand)]
pub enum FilesCommand {
    /// Import file records from a JSON Lines manifest (one record per line). Bad rows are
    /// reported with their line number and skipped; the exit status is 1 if any row was bad.
    Import {
        /// The manifest; `-` reads standard input.
        manifest: PathBuf,
    },
    /// List registered files as JSON Lines.
    List {
        /// Only files of this DCC.
        #[arg(long)]
        dcc: Option<Ident>,
    },
    /// Show one registered file as JSON.
    Get { dcc: Ident, local_id: Ident },
}

impl FilesCommand {
    /// Runs the command; returns the process exit code.
    pub async fn run(self, config: &Config) -> anyhow::Result<i32> {
        let catalog = stores::open(config).await?.catalog;
        let mut out = std::io::stdout().lock();
        match self {
            FilesCommand::Import { manifest } => {
                let report = if manifest.as_os_str() == "-" {
                    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
                    import_manifest(catalog.as_ref(), stdin).await?
                } else {
                    let file = tokio::fs::File::open(&manifest)
                        .await
                        .with_context(|| format!("open manifest {}", manifest.display()))?;
                    import_manifest(catalog.as_ref(), tokio::io::BufReader::new(file)).await?
                };
                for row in &report.rejected {
                    eprintln!("{}: rejected {row}", manifest.display());
                }
                writeln!(
                    out,
                    "imported {} file(s) ({} new, {} updated, {} unchanged); rejected {} row(s)",
                    report.imported(),
                    report.inserted,
                    report.updated,
                    report.unchanged,
                    report.rejected.len()
                )?;
                Ok(if report.rejected.is_empty() { 0 } else { 1 })
            }
            FilesCommand::List { dcc } => {
                let mut query = CatalogQuery {
                    dcc,
                    limit: Some(1000),
                    after: None,
                };
                loop {
                    let page = catalog.list(&query).await?;
                    for f in &page.files {
                        writeln!(out, "{}", serde_json::to_string(f)?)?;
                    }
                    match page.next {
                        Some(next) => query.after = Some(next),
                        None => break,
                    }
                }
                Ok(0)
            }
            FilesCommand::Get { dcc, local_id } => {
                let f = catalog.get(&dcc, &local_id).await?;
                writeln!(out, "{}", serde_json::to_string_pretty(&f)?)?;
                Ok(0)
            }
        }
    }
}
