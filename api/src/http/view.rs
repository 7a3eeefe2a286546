//! Domain to JSON for HTTP clients (the API's one place for it). The lease, a fencing token, is
//! never shown.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use htsprep_shared::domain::{
    JobEvent, JobFailure, JobRecord, JobStatus, Progress, StageDone, WorkerRef,
};
use serde::Serialize;

#[derive(Serialize)]
pub struct JobView {
    pub job_id: String,
    pub status: JobStatus,
    pub dcc: String,
    pub local_id: String,
    pub workflow_key: String,
    pub attempt: u32,
    pub stages_done: Vec<StageDone>,
    pub artifacts: BTreeMap<String, String>,
    pub progress: Option<Progress>,
    pub error: Option<JobFailure>,
    pub worker: Option<WorkerRef>,
    pub submitted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub events: Vec<JobEvent>,
    /// While no worker has accepted the current attempt: since when it waits, and why.
    pub queued_since: Option<DateTime<Utc>>,
    pub waiting_for: Option<String>,
    /// Where to poll.
    pub location: String,
}

impl From<JobRecord> for JobView {
    fn from(j: JobRecord) -> Self {
        Self {
            location: format!("/jobs/{}", j.job_id),
            job_id: j.job_id.to_string(),
            status: j.status,
            dcc: j.dcc.to_string(),
            local_id: j.local_id.to_string(),
            workflow_key: j.workflow_key,
            attempt: j.attempt,
            stages_done: j.stages_done,
            artifacts: j
                .artifacts
                .into_iter()
                .map(|(k, v)| (k.name().to_owned(), v))
                .collect(),
            progress: j.progress,
            error: j.error,
            worker: j.worker,
            submitted_at: j.submitted_at,
            updated_at: j.updated_at,
            started_at: j.started_at,
            finished_at: j.finished_at,
            events: j.events,
            queued_since: j.queued_since,
            waiting_for: j.waiting_for,
        }
    }
}
