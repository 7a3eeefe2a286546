//! The embedded job store: a SQLite file whose partial unique index over active jobs is the
//! workflow mutex, the same idiom the MongoDB backend uses.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::change::retry_requested;
use super::ops::ONLY_FAILED;
use super::{Fence, JobChange, JobPage, JobStore, JobStoreError, ListQuery};
use crate::clock::Clock;
use crate::domain::{JobId, JobRecord, JobStatus};
use crate::error::Cause;
use crate::sqlite::{SqliteError, SqlitePool};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    job_id       TEXT PRIMARY KEY,
    workflow_key TEXT NOT NULL,
    status       TEXT NOT NULL,
    active       INTEGER NOT NULL,
    lease        TEXT NOT NULL,
    submitted_at INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    doc          TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_one_active_per_workflow ON jobs (workflow_key) WHERE active = 1;
CREATE INDEX IF NOT EXISTS jobs_newest ON jobs (submitted_at DESC, job_id DESC);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, submitted_at DESC, job_id DESC);
CREATE INDEX IF NOT EXISTS jobs_stale ON jobs (active, updated_at);
CREATE INDEX IF NOT EXISTS jobs_by_workflow ON jobs (workflow_key, submitted_at DESC);
";

#[derive(Debug, Clone)]
pub struct SqliteJobStore {
    pool: Arc<SqlitePool>,
    clock: Arc<dyn Clock>,
}

impl From<SqliteError> for JobStoreError {
    fn from(e: SqliteError) -> Self {
        e.into_store(JobStoreError::unavailable, JobStoreError::backend)
    }
}

impl SqliteJobStore {
    /// Opens or creates the job store in the SQLite file at `path`.
    pub async fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Self, JobStoreError> {
        let pool = SqlitePool::open(path, SCHEMA)
            .await
            .map_err(|e| JobStoreError::backend(format!("open job store {}", path.display()), e))?;
        Ok(Self { pool, clock })
    }

    pub fn path(&self) -> &Path {
        self.pool.path()
    }
}

fn decode(id: &str, doc: &str) -> Result<JobRecord, JobStoreError> {
    serde_json::from_str(doc).map_err(|e| JobStoreError::Corrupt {
        id: id.to_owned(),
        source: Cause::new(e),
    })
}

fn encode(job: &JobRecord) -> Result<String, JobStoreError> {
    serde_json::to_string(job).map_err(|e| JobStoreError::backend("encode a job", e))
}

/// Reads a job inside a write transaction, lets `change` check and change it, and writes it
/// back with its indexed columns; a refusal from `change` writes nothing.
fn change_in(
    tx: &rusqlite::Transaction<'_>,
    job_id: &JobId,
    change: impl FnOnce(&mut JobRecord) -> Result<(), JobStoreError>,
) -> Result<Result<JobRecord, JobStoreError>, rusqlite::Error> {
    let doc: Option<String> = tx
        .query_row(
            "SELECT doc FROM jobs WHERE job_id = ?1",
            [job_id.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    let Some(doc) = doc else {
        return Ok(Err(JobStoreError::NotFound {
            job_id: job_id.clone(),
        }));
    };
    let job = match decode(job_id.as_str(), &doc).and_then(|mut job| {
        change(&mut job)?;
        Ok(job)
    }) {
        Ok(job) => job,
        Err(e) => return Ok(Err(e)),
    };
    let doc = match encode(&job) {
        Ok(doc) => doc,
        Err(e) => return Ok(Err(e)),
    };
    tx.execute(
        "UPDATE jobs SET status = ?2, active = ?3, lease = ?4, updated_at = ?5, doc = ?6
         WHERE job_id = ?1",
        params![
            job.job_id.as_str(),
            job.status.name(),
            job.active,
            job.lease.as_str(),
            job.updated_at.timestamp_millis(),
            doc
        ],
    )?;
    Ok(Ok(job))
}

fn decode_rows(rows: Vec<(String, String)>) -> Result<Vec<JobRecord>, JobStoreError> {
    rows.iter().map(|(id, doc)| decode(id, doc)).collect()
}

#[async_trait]
impl JobStore for SqliteJobStore {
    fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    async fn insert(&self, job: &JobRecord) -> Result<(), JobStoreError> {
        let doc = encode(job)?;
        let j = job.clone();
        let res = self
            .pool
            .run(move |conn| {
                conn.execute(
                    "INSERT INTO jobs (job_id, workflow_key, status, active, lease, submitted_at, updated_at, doc)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        j.job_id.as_str(),
                        j.workflow_key,
                        j.status.name(),
                        j.active,
                        j.lease.as_str(),
                        j.submitted_at.timestamp_millis(),
                        j.updated_at.timestamp_millis(),
                        doc
                    ],
                )
            })
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(SqliteError::Unique(_)) => Err(JobStoreError::Conflict {
                workflow_key: job.workflow_key.clone(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    async fn get(&self, job_id: &JobId) -> Result<JobRecord, JobStoreError> {
        let id = job_id.as_str().to_owned();
        let doc: Option<String> = self
            .pool
            .run(move |conn| {
                conn.query_row("SELECT doc FROM jobs WHERE job_id = ?1", [id], |r| r.get(0))
                    .optional()
            })
            .await?;
        match doc {
            Some(doc) => decode(job_id.as_str(), &doc),
            None => Err(JobStoreError::NotFound {
                job_id: job_id.clone(),
            }),
        }
    }

    async fn find_active(&self, workflow_key: &str) -> Result<Option<JobRecord>, JobStoreError> {
        let key = workflow_key.to_owned();
        let row: Option<(String, String)> = self
            .pool
            .run(move |conn| {
                conn.query_row(
                    "SELECT job_id, doc FROM jobs WHERE workflow_key = ?1 AND active = 1",
                    [key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
            })
            .await?;
        row.map(|(id, doc)| decode(&id, &doc)).transpose()
    }

    async fn find_latest(&self, workflow_key: &str) -> Result<Option<JobRecord>, JobStoreError> {
        let key = workflow_key.to_owned();
        let row: Option<(String, String)> = self
            .pool
            .run(move |conn| {
                conn.query_row(
                    "SELECT job_id, doc FROM jobs WHERE workflow_key = ?1
                     ORDER BY submitted_at DESC, job_id DESC LIMIT 1",
                    [key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
            })
            .await?;
        row.map(|(id, doc)| decode(&id, &doc)).transpose()
    }

    async fn request_retry(&self, job_id: &JobId) -> Result<JobRecord, JobStoreError> {
        let now = self.clock.now();
        let job_id = job_id.clone();
        self.pool
            .write(move |tx| {
                change_in(tx, &job_id, |job| {
                    if job.status != JobStatus::Failed {
                        return Err(JobStoreError::WrongStatus {
                            job_id: job_id.clone(),
                            status: job.status,
                            why: ONLY_FAILED,
                        });
                    }
                    retry_requested(job, now);
                    Ok(())
                })
            })
            .await?
    }

    async fn update(&self, fence: &Fence, change: JobChange) -> Result<JobRecord, JobStoreError> {
        let now = self.clock.now();
        let fence = fence.clone();
        self.pool
            .write(move |tx| {
                change_in(tx, &fence.job_id, |job| {
                    if !fence.holds(job) || !change.guard_holds(job) {
                        return Err(JobStoreError::LeaseLost {
                            job_id: fence.job_id.clone(),
                        });
                    }
                    change.apply(job, now);
                    Ok(())
                })
            })
            .await?
    }

    async fn list(&self, query: &ListQuery) -> Result<JobPage, JobStoreError> {
        let limit = query.limit();
        let status = query.status.map(|s| s.name().to_owned());
        let (after_ms, after_id) = match &query.after {
            Some(c) => (c.submitted_at_ms, c.job_id.as_str().to_owned()),
            None => (i64::MAX, String::new()),
        };
        let first_page = query.after.is_none();
        let rows: Vec<(String, String)> = self
            .pool
            .run(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT job_id, doc FROM jobs
                     WHERE (?1 IS NULL OR status = ?1)
                       AND (?4 OR submitted_at < ?2 OR (submitted_at = ?2 AND job_id < ?3))
                     ORDER BY submitted_at DESC, job_id DESC
                     LIMIT ?5",
                )?;
                let rows = stmt
                    .query_map(
                        params![status, after_ms, after_id, first_page, (limit + 1) as i64],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await?;
        Ok(JobPage::from_rows(decode_rows(rows)?, limit))
    }

    async fn find_stale(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<JobRecord>, JobStoreError> {
        let cutoff = cutoff.timestamp_millis();
        let rows: Vec<(String, String)> = self
            .pool
            .run(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT job_id, doc FROM jobs WHERE active = 1 AND updated_at < ?1
                     ORDER BY updated_at ASC LIMIT ?2",
                )?;
                let rows = stmt
                    .query_map(params![cutoff, limit as i64], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await?;
        decode_rows(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    async fn make() -> (Arc<dyn JobStore>, Arc<ManualClock>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::at_epoch_2026());
        let store = SqliteJobStore::open(&dir.path().join("jobs.db"), clock.clone())
            .await
            .unwrap();
        (Arc::new(store), clock, dir)
    }

    crate::jobstore_conformance!(make);

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_handles_on_one_file_share_the_mutex() {
        // Two independent stores (separate connection pools, as two processes would have) on
        // the same file still converge on one job.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::at_epoch_2026());
        let a: Arc<dyn JobStore> =
            Arc::new(SqliteJobStore::open(&path, clock.clone()).await.unwrap());
        let b: Arc<dyn JobStore> = Arc::new(SqliteJobStore::open(&path, clock).await.unwrap());
        super::super::conformance::racing_claims_across(&[a, b], 40).await;
    }
}
