use std::io::Write;

use clap::Subcommand;
use htsprep_shared::domain::{JobId, JobStatus};
use htsprep_shared::jobstore::ListQuery;

use crate::config::Config;
use crate::stores;

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs newest first as JSON Lines.
    List {
        /// pending, running, completed or failed.
        #[arg(long, value_parser = parse_status)]
        status: Option<JobStatus>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show one job, with its timeline, as JSON.
    Get {
        #[arg(value_parser = parse_job_id)]
        job_id: JobId,
    },
}

fn parse_status(s: &str) -> Result<JobStatus, String> {
    JobStatus::parse(s)
        .ok_or_else(|| format!("{s:?} is not one of pending, running, completed, failed"))
}

fn parse_job_id(s: &str) -> Result<JobId, String> {
    JobId::parse(s).ok_or_else(|| format!("{s:?} is not a job id (a UUID)"))
}

impl JobsCommand {
    pub async fn run(self, config: &Config) -> anyhow::Result<i32> {
        let store = stores::open(config).await?.jobs;
        let mut out = std::io::stdout().lock();
        match self {
            JobsCommand::List { status, limit } => {
                let page = store
                    .list(&ListQuery {
                        status,
                        limit: Some(limit),
                        after: None,
                    })
                    .await?;
                for job in &page.jobs {
                    writeln!(out, "{}", serde_json::to_string(job)?)?;
                }
            }
            JobsCommand::Get { job_id } => {
                let job = store.get(&job_id).await?;
                writeln!(out, "{}", serde_json::to_string_pretty(&job)?)?;
            }
        }
        Ok(0)
    }
}
