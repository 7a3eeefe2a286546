//! The `htsprep-api` command line: the server and the operators' admin commands.

mod files;
mod jobs;

use clap::{Parser, Subcommand};

pub use files::FilesCommand;
pub use jobs::JobsCommand;

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
}
