use std::io::Write;

use clap::Subcommand;
use htsprep_shared::domain::{JobId, JobStatus};
use htsprep_shared::jobstore::{JobStoreExt, ListQuery};

use crate::config::Config;
use crate::http::jobs::CANCELLED;
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
    /// Retry a failed job: its failure stops standing for the file, so the next request for
    /// the file prepares it again (`POST /jobs/{id}/retry` also starts it at once).
    Retry {
        #[arg(value_parser = parse_job_id)]
        job_id: JobId,
    },
    /// Cancel a pending or running job: it fails as cancelled, and its worker stops the running
    /// stage at its next heartbeat.
    Cancel {
        #[arg(value_parser = parse_job_id)]
        job_id: JobId,
    },
    /// Follow a job live: a progress bar (on a terminal), each event of its timeline as it
    /// happens; exits 0 when it completes, 1 when it fails, 130 on Ctrl-C (the job carries on).
    Watch {
        #[arg(value_parser = parse_job_id)]
        job_id: JobId,
        /// How often the job is read, in milliseconds.
        #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(10..=60_000))]
        every_ms: u64,
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
            JobsCommand::Retry { job_id } => {
                let job = store.request_retry(&job_id).await?;
                writeln!(out, "{}", serde_json::to_string(&job)?)?;
                eprintln!(
                    "job {job_id}: its failure no longer stands; the next request for {}/{} prepares it again",
                    job.dcc, job.local_id
                );
            }
            JobsCommand::Cancel { job_id } => {
                let job = store.cancel(&job_id, CANCELLED).await?;
                writeln!(out, "{}", serde_json::to_string(&job)?)?;
            }
            JobsCommand::Watch { job_id, every_ms } => {
                drop(out);
                let every = std::time::Duration::from_millis(every_ms);
                return super::watch::watch(store.as_ref(), &job_id, every).await;
            }
        }
        Ok(0)
    }
}
