//! Domain to JSON for HTTP clients (the API's one place for it). The lease, a fencing token, is
//! never shown; worker addresses, task ARNs, commands, stderr and source URLs' query strings
//! only to the admin.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use htsprep_shared::domain::{
    AccessUrl, FileRecord, JobEvent, JobFailure, JobRecord, JobStatus, Progress, StageDone,
    WorkerRef,
};
use htsprep_shared::outbound::redact;
use serde::Serialize;

use super::admin::Viewer;

/// A job as the API shows it (the admin sees the worker, the events and the whole error).
#[derive(Serialize, utoipa::ToSchema)]
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

/// Where a job is polled: `/jobs/{id}`.
pub(crate) fn job_location(id: &impl std::fmt::Display) -> String {
    format!("/jobs/{id}")
}

/// The first line of a failure, at most 300 characters: what the public sees of it.
pub fn one_line(failure: &JobFailure) -> String {
    let line = failure.message.lines().next().unwrap_or_default();
    match line.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

impl JobView {
    pub(crate) fn for_viewer(job: JobRecord, viewer: Viewer) -> Self {
        match viewer {
            Viewer::Admin => Self::from(job),
            Viewer::Public => Self::public(job),
        }
    }

    /// What anyone may see: status, stages, progress, a one-line error and the queue.
    pub fn public(job: JobRecord) -> Self {
        let error = job.error.as_ref().map(|e| JobFailure {
            message: one_line(e),
            stage: e.stage.clone(),
            command: None,
            exit_status: None,
            stderr_tail: None,
            retryable: e.retryable,
        });
        Self {
            error,
            worker: None,
            events: Vec::new(),
            ..Self::from(job)
        }
    }
}

/// A catalog record as `viewer` may see it: the public view drops URLs' query strings and
/// passwords (presigned URLs carry credentials there).
pub(crate) fn file_view(mut file: FileRecord, viewer: Viewer) -> FileRecord {
    if viewer == Viewer::Public {
        let hide = |u: &AccessUrl| AccessUrl::parse(&redact(u.as_url())).unwrap_or(u.clone());
        file.access_url = hide(&file.access_url);
        for url in file.sidecars.values_mut() {
            *url = hide(url);
        }
    }
    file
}

impl From<JobRecord> for JobView {
    fn from(j: JobRecord) -> Self {
        Self {
            location: job_location(&j.job_id),
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
