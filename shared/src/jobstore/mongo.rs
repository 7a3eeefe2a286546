//! The MongoDB job store. The workflow mutex is MongoDB's own: a unique index on `workflow_key`
//! filtered on `{active: true}`. Every owner write is one `find_one_and_update` whose filter
//! names the job, `active: true`, the lease and the attempt; the change itself is expressed with
//! update operators (`$set`, `$push` with `$slice`, `$inc`, `$min`), never read-modify-write.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::Collection;
use mongodb::bson::{self, Bson, Document, doc};
use mongodb::options::ReturnDocument;
use serde::{Deserialize, Serialize};

use super::{Fence, JobChange, JobPage, JobStore, JobStoreError, ListQuery, MAX_EVENTS};
use crate::clock::Clock;
use crate::domain::{
    ArtifactKind, EventKind, Ident, JobEvent, JobFailure, JobId, JobRecord, JobStatus, Lease,
    Progress, StageDone, WorkerRef,
};
use crate::mongo::{JOBS, MongoDb, is_duplicate_key, retrying};

/// The stored form of a job: the record, with timestamps as BSON dates so they can be compared
/// in queries and expired by the TTL index. Unknown fields are ignored and missing optional ones
/// default, so documents survive schema changes in both directions.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct JobDoc {
    job_id: JobId,
    workflow_key: String,
    dcc: Ident,
    local_id: Ident,
    status: JobStatus,
    active: bool,
    attempt: u32,
    lease: Lease,
    #[serde(default)]
    stages_done: Vec<StageDone>,
    #[serde(default)]
    artifacts: Artifacts,
    #[serde(default)]
    progress: Option<Progress>,
    #[serde(default)]
    error: Option<JobFailure>,
    #[serde(default)]
    worker: Option<WorkerRef>,
    submitted_at: bson::DateTime,
    updated_at: bson::DateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    started_at: Option<bson::DateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    finished_at: Option<bson::DateTime>,
    #[serde(default)]
    events: Vec<JobEvent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    queued_since: Option<bson::DateTime>,
    #[serde(default)]
    waiting_for: Option<String>,
    #[serde(default)]
    driver: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Artifacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    index: Option<String>,
}

fn to_b(t: DateTime<Utc>) -> bson::DateTime {
    bson::DateTime::from_chrono(t)
}

impl From<&JobRecord> for JobDoc {
    fn from(j: &JobRecord) -> Self {
        Self {
            job_id: j.job_id.clone(),
            workflow_key: j.workflow_key.clone(),
            dcc: j.dcc.clone(),
            local_id: j.local_id.clone(),
            status: j.status,
            active: j.active,
            attempt: j.attempt,
            lease: j.lease.clone(),
            stages_done: j.stages_done.clone(),
            artifacts: Artifacts {
                data: j.artifacts.get(&ArtifactKind::Data).cloned(),
                index: j.artifacts.get(&ArtifactKind::Index).cloned(),
            },
            progress: j.progress.clone(),
            error: j.error.clone(),
            worker: j.worker.clone(),
            submitted_at: to_b(j.submitted_at),
            updated_at: to_b(j.updated_at),
            started_at: j.started_at.map(to_b),
            finished_at: j.finished_at.map(to_b),
            events: j.events.clone(),
            queued_since: j.queued_since.map(to_b),
            waiting_for: j.waiting_for.clone(),
            driver: j.driver.clone(),
        }
    }
}

impl From<JobDoc> for JobRecord {
    fn from(d: JobDoc) -> Self {
        let mut artifacts = BTreeMap::new();
        if let Some(k) = d.artifacts.data {
            artifacts.insert(ArtifactKind::Data, k);
        }
        if let Some(k) = d.artifacts.index {
            artifacts.insert(ArtifactKind::Index, k);
        }
        Self {
            job_id: d.job_id,
            workflow_key: d.workflow_key,
            dcc: d.dcc,
            local_id: d.local_id,
            status: d.status,
            active: d.active,
            attempt: d.attempt,
            lease: d.lease,
            stages_done: d.stages_done,
            artifacts,
            progress: d.progress,
            error: d.error,
            worker: d.worker,
            submitted_at: d.submitted_at.to_chrono(),
            updated_at: d.updated_at.to_chrono(),
            started_at: d.started_at.map(|t| t.to_chrono()),
            finished_at: d.finished_at.map(|t| t.to_chrono()),
            events: d.events,
            queued_since: d.queued_since.map(|t| t.to_chrono()),
            waiting_for: d.waiting_for,
            driver: d.driver,
        }
    }
}

#[derive(Clone, Debug)]
pub struct MongoJobStore {
    jobs: Collection<JobDoc>,
    clock: Arc<dyn Clock>,
}

fn backend(what: &str, e: mongodb::error::Error) -> JobStoreError {
    if crate::mongo::is_transient(&e) {
        JobStoreError::unavailable(what, e)
    } else {
        JobStoreError::backend(what, e)
    }
}

fn encode<T: Serialize>(v: &T) -> Result<Bson, JobStoreError> {
    bson::to_bson(v).map_err(|e| JobStoreError::backend("encode a document", e))
}

/// The update operators for one change, and any extra filter it needs.
fn translate(
    change: &JobChange,
    fence: &Fence,
    now: DateTime<Utc>,
) -> Result<(Document, Document), JobStoreError> {
    let mut filter = Document::new();
    let mut set = doc! {"updated_at": to_b(now)};
    let mut events: Vec<Bson> = Vec::new();
    let mut push = Document::new();
    let mut inc = Document::new();
    let mut min = Document::new();
    let event = |kind: EventKind| {
        encode(&JobEvent {
            at: now,
            attempt: fence.attempt,
            kind,
        })
    };
    let finish = |set: &mut Document, status: JobStatus| {
        set.insert("status", status.name());
        set.insert("active", false);
        set.insert("finished_at", to_b(now));
        set.insert("progress", Bson::Null);
    };
    let reschedule = |set: &mut Document, inc: &mut Document| {
        set.insert("status", JobStatus::Pending.name());
        set.insert("lease", Lease::new().as_str());
        set.insert("worker", Bson::Null);
        set.insert("progress", Bson::Null);
        set.insert("queued_since", to_b(now));
        set.insert("waiting_for", Bson::Null);
        inc.insert("attempt", 1);
    };
    match change {
        JobChange::MarkRunning { worker } => {
            set.insert("status", JobStatus::Running.name());
            set.insert("worker", encode(worker)?);
            set.insert("queued_since", Bson::Null);
            set.insert("waiting_for", Bson::Null);
            min.insert("started_at", to_b(now));
            events.push(event(EventKind::Running {
                worker: worker.clone(),
            })?);
        }
        JobChange::RecordStage { stage, artifact } => {
            let done = StageDone {
                stage: stage.clone(),
                artifact: artifact.clone(),
                finished_at: now,
            };
            push.insert("stages_done", encode(&done)?);
            if let Some((kind, key)) = artifact {
                set.insert(format!("artifacts.{}", kind.name()), key.as_str());
            }
        }
        JobChange::Event(kind) => events.push(event(kind.clone())?),
        JobChange::Heartbeat { progress } => {
            if let Some(p) = progress {
                set.insert("progress", encode(p)?);
            }
        }
        JobChange::Complete => {
            finish(&mut set, JobStatus::Completed);
            events.push(event(EventKind::Completed)?);
        }
        JobChange::Fail(failure) => {
            finish(&mut set, JobStatus::Failed);
            set.insert("error", encode(failure)?);
            events.push(event(EventKind::Failed {
                message: failure.message.clone(),
            })?);
        }
        JobChange::Reschedule { reason } => {
            events.push(event(EventKind::Rescheduled {
                reason: reason.clone(),
            })?);
            reschedule(&mut set, &mut inc);
        }
        JobChange::Requeue { reason } => {
            events.push(event(EventKind::Rescheduled {
                reason: reason.clone(),
            })?);
            reschedule(&mut set, &mut inc);
            inc.remove("attempt");
        }
        JobChange::Waiting { reason } => {
            set.insert("waiting_for", reason.as_str());
        }
        JobChange::TakeOver {
            stale_before,
            driver,
            reason,
        } => {
            filter.insert("status", JobStatus::Pending.name());
            filter.insert("updated_at", doc! {"$lt": to_b(*stale_before)});
            set.insert("lease", Lease::new().as_str());
            set.insert("driver", driver.as_deref().map_or(Bson::Null, Bson::from));
            events.push(event(EventKind::TakenOver {
                reason: reason.clone(),
            })?);
        }
        JobChange::Abandon {
            stale_before,
            reason,
            retry,
        } => {
            filter.insert("updated_at", doc! {"$lt": to_b(*stale_before)});
            if *retry {
                events.push(event(EventKind::Rescheduled {
                    reason: reason.clone(),
                })?);
                reschedule(&mut set, &mut inc);
            } else {
                let mut failure = JobFailure::new(reason.clone());
                failure.retryable = true;
                finish(&mut set, JobStatus::Failed);
                set.insert("error", encode(&failure)?);
                events.push(event(EventKind::Failed {
                    message: reason.clone(),
                })?);
            }
        }
    }
    if !events.is_empty() {
        // mongoeco (and strict servers) want $slice as a 32-bit integer.
        push.insert(
            "events",
            doc! {"$each": events, "$slice": -(MAX_EVENTS as i32)},
        );
    }
    let mut update = doc! {"$set": set};
    if !push.is_empty() {
        update.insert("$push", push);
    }
    if !inc.is_empty() {
        update.insert("$inc", inc);
    }
    if !min.is_empty() {
        update.insert("$min", min);
    }
    Ok((filter, update))
}

impl MongoJobStore {
    /// The job store in `db`. The workflow mutex depends on the partial unique index: it is
    /// created here when `create_indexes`, and otherwise must already exist.
    pub async fn open(
        db: &MongoDb,
        clock: Arc<dyn Clock>,
        create_indexes: bool,
    ) -> Result<Self, JobStoreError> {
        if create_indexes {
            db.create_indexes()
                .await
                .map_err(|e| JobStoreError::backend("create indexes", e))?;
        } else {
            let indexes = db
                .list_indexes()
                .await
                .map_err(|e| JobStoreError::backend("list indexes", e))?;
            let has_mutex = indexes.iter().any(|(coll, m)| {
                coll == JOBS
                    && m.options.as_ref().and_then(|o| o.name.as_deref())
                        == Some("one_active_job_per_workflow")
            });
            if !has_mutex {
                return Err(JobStoreError::Backend {
                    context: "the jobs collection lacks its unique index over active workflows; run `htsprep-api create-indexes`".into(),
                    source: None,
                });
            }
        }
        Ok(Self {
            jobs: db.collection(JOBS),
            clock,
        })
    }

    async fn find_many(
        &self,
        filter: Document,
        sort: Document,
        limit: i64,
    ) -> Result<Vec<JobRecord>, JobStoreError> {
        let docs: Vec<JobDoc> = retrying(|| async {
            self.jobs
                .find(filter.clone())
                .sort(sort.clone())
                .limit(limit)
                .batch_size(200)
                .await?
                .try_collect()
                .await
        })
        .await
        .map_err(|e| backend("list jobs", e))?;
        Ok(docs.into_iter().map(JobRecord::from).collect())
    }
}

#[async_trait]
impl JobStore for MongoJobStore {
    fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    async fn insert(&self, job: &JobRecord) -> Result<(), JobStoreError> {
        // Not retried: a retried insert that had succeeded would look like a lost race.
        match self.jobs.insert_one(JobDoc::from(job)).await {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate_key(&e) => Err(JobStoreError::Conflict {
                workflow_key: job.workflow_key.clone(),
            }),
            Err(e) => Err(backend("insert job", e)),
        }
    }

    async fn get(&self, job_id: &JobId) -> Result<JobRecord, JobStoreError> {
        let found =
            retrying(|| async { self.jobs.find_one(doc! {"job_id": job_id.as_str()}).await })
                .await
                .map_err(|e| backend("get job", e))?;
        found
            .map(JobRecord::from)
            .ok_or_else(|| JobStoreError::NotFound {
                job_id: job_id.clone(),
            })
    }

    async fn find_active(&self, workflow_key: &str) -> Result<Option<JobRecord>, JobStoreError> {
        let found = retrying(|| async {
            self.jobs
                .find_one(doc! {"workflow_key": workflow_key, "active": true})
                .await
        })
        .await
        .map_err(|e| backend("find active job", e))?;
        Ok(found.map(JobRecord::from))
    }

    async fn find_latest(&self, workflow_key: &str) -> Result<Option<JobRecord>, JobStoreError> {
        let found = retrying(|| async {
            self.jobs
                .find_one(doc! {"workflow_key": workflow_key})
                .sort(doc! {"submitted_at": -1, "job_id": -1})
                .await
        })
        .await
        .map_err(|e| backend("find the latest job", e))?;
        Ok(found.map(JobRecord::from))
    }

    async fn request_retry(&self, job_id: &JobId) -> Result<JobRecord, JobStoreError> {
        let not_failed = |job: JobRecord| JobStoreError::WrongStatus {
            job_id: job_id.clone(),
            status: job.status,
            why: super::ops::ONLY_FAILED,
        };
        let current = self.get(job_id).await?;
        if current.status != JobStatus::Failed {
            return Err(not_failed(current));
        }
        let event = encode(&JobEvent {
            at: self.clock.now(),
            attempt: current.attempt,
            kind: EventKind::RetryRequested,
        })?;
        let updated = self
            .jobs
            .find_one_and_update(
                doc! {"job_id": job_id.as_str(), "status": JobStatus::Failed.name()},
                doc! {
                    "$set": {"error.retryable": true},
                    "$push": {"events": {"$each": [event], "$slice": -(MAX_EVENTS as i32)}},
                },
            )
            .return_document(ReturnDocument::After)
            .await
            .map_err(|e| backend("request a retry", e))?;
        match updated {
            Some(doc) => Ok(doc.into()),
            None => Err(not_failed(self.get(job_id).await?)),
        }
    }

    async fn update(&self, fence: &Fence, change: JobChange) -> Result<JobRecord, JobStoreError> {
        let now = self.clock.now();
        let (extra, update) = translate(&change, fence, now)?;
        let mut filter = doc! {
            "job_id": fence.job_id.as_str(),
            "active": true,
            "lease": fence.lease.as_str(),
            "attempt": i64::from(fence.attempt),
        };
        filter.extend(extra);
        let run = || {
            self.jobs
                .find_one_and_update(filter.clone(), update.clone())
                .return_document(ReturnDocument::After)
        };
        // Only a heartbeat is safe to send twice.
        let result = if matches!(change, JobChange::Heartbeat { .. }) {
            retrying(|| async { run().await }).await
        } else {
            run().await
        };
        match result.map_err(|e| backend("update job", e))? {
            Some(doc) => Ok(doc.into()),
            None => match self.get(&fence.job_id).await {
                Ok(_) => Err(JobStoreError::LeaseLost {
                    job_id: fence.job_id.clone(),
                }),
                Err(e) => Err(e),
            },
        }
    }

    async fn list(&self, query: &ListQuery) -> Result<JobPage, JobStoreError> {
        let limit = query.limit();
        let mut filter = Document::new();
        if let Some(st) = query.status {
            filter.insert("status", st.name());
        }
        if let Some(c) = &query.after {
            let t = to_b(c.submitted_at());
            filter.insert(
                "$or",
                vec![
                    doc! {"submitted_at": {"$lt": t}},
                    doc! {"submitted_at": t, "job_id": {"$lt": c.job_id.as_str()}},
                ],
            );
        }
        let jobs = self
            .find_many(
                filter,
                doc! {"submitted_at": -1, "job_id": -1},
                limit as i64 + 1,
            )
            .await?;
        Ok(JobPage::from_rows(jobs, limit))
    }

    async fn find_stale(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<JobRecord>, JobStoreError> {
        let filter = doc! {
            "status": {"$in": [JobStatus::Pending.name(), JobStatus::Running.name()]},
            "updated_at": {"$lt": to_b(cutoff)},
        };
        self.find_many(filter, doc! {"updated_at": 1}, limit as i64)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::mongo::testing::TestMongo;

    async fn make() -> (Arc<dyn JobStore>, Arc<ManualClock>, TestMongo) {
        let server = TestMongo::start().await;
        let db = server.fresh_database().await;
        let clock = Arc::new(ManualClock::at_epoch_2026());
        let store = MongoJobStore::open(&db, clock.clone(), true).await.unwrap();
        (Arc::new(store), clock, server)
    }

    crate::jobstore_conformance!(make);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn documents_tolerate_added_and_missing_fields() {
        let server = TestMongo::start().await;
        let db = server.fresh_database().await;
        let clock = Arc::new(ManualClock::at_epoch_2026());
        let store = MongoJobStore::open(&db, clock.clone(), true).await.unwrap();
        let job = JobRecord::new_pending(
            "d/l/0123456789abcdef0123456789abcdef/v1".into(),
            Ident::parse("d").unwrap(),
            Ident::parse("l").unwrap(),
            clock.now(),
        );
        store.insert(&job).await.unwrap();
        // A later version adds a field; an older one never wrote `events` or `stages_done`.
        let raw: Collection<Document> = db.collection(JOBS);
        raw.update_one(
            doc! {"job_id": job.job_id.as_str()},
            doc! {"$set": {"added_by_a_newer_version": {"x": 1}}, "$unset": {"events": "", "stages_done": ""}},
        )
        .await
        .unwrap();
        let read = store.get(&job.job_id).await.unwrap();
        assert_eq!(read.workflow_key, job.workflow_key);
        assert!(read.events.is_empty() && read.stages_done.is_empty());
        // And it can still be written with the fenced operations.
        let done = store
            .update(&Fence::of(&read), JobChange::Complete)
            .await
            .unwrap();
        assert_eq!(done.status, JobStatus::Completed);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_mutex_index_is_required() {
        let server = TestMongo::start().await;
        let db = server.fresh_database().await;
        let err = MongoJobStore::open(&db, Arc::new(crate::clock::SystemClock), false)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("htsprep-api create-indexes"),
            "{err}"
        );
        db.create_indexes().await.unwrap();
        db.create_indexes().await.unwrap();
        MongoJobStore::open(&db, Arc::new(crate::clock::SystemClock), false)
            .await
            .unwrap();
        let names: Vec<String> = db
            .list_indexes()
            .await
            .unwrap()
            .into_iter()
            .map(|(c, m)| format!("{c}.{}", m.options.and_then(|o| o.name).unwrap_or_default()))
            .collect();
        assert_eq!(
            names,
            [
                "jobs._id_",
                "jobs.one_active_job_per_workflow",
                "jobs.job_id_unique",
                "jobs.latest_per_workflow",
                "jobs.stale_scan",
                "jobs.finished_ttl",
                "files._id_",
                "files.file_unique"
            ]
        );
    }
}
