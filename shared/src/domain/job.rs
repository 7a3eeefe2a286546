//! Job records: one attempt-counted, lease-fenced run of a workflow.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Ident;

/// A job identifier: a UUIDv7, so ids sort roughly by submission time.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// Parses an id from a URL or a wire message; only canonical UUIDs are accepted.
    pub fn parse(s: &str) -> Option<Self> {
        let u = uuid::Uuid::try_parse(s).ok()?;
        (u.to_string() == s).then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A fencing token. Every claim or reschedule issues a new one; a write carrying an old lease is
/// refused, so a late writer from a reclaimed attempt changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Lease(String);

impl Lease {
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    pub fn from_string(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Lease {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Running,
    Completed,
    Failed,
}

impl JobStatus {
    pub fn name(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Running, Self::Completed, Self::Failed]
            .into_iter()
            .find(|st| st.name() == s)
    }

    /// Pending and running jobs are active: they hold their workflow's mutex.
    pub fn is_active(self) -> bool {
        matches!(self, JobStatus::Pending | JobStatus::Running)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a job produces.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    /// The served data file (sorted BAM, BGZF VCF/GFF/BED).
    Data,
    /// Its index (BAI, TBI or CSI).
    Index,
}

impl ArtifactKind {
    pub fn name(self) -> &'static str {
        match self {
            ArtifactKind::Data => "data",
            ArtifactKind::Index => "index",
        }
    }
}

/// The worker that runs (or ran) a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkerRef {
    /// `local` or `ecs`.
    pub provider: String,
    /// A process id or an ECS task ARN.
    pub resource_id: String,
    /// The worker's gRPC address.
    pub address: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Progress {
    /// The stage being run.
    pub stage: String,
    /// 0.0 to 1.0 when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A finished stage and the artifact it published, if any.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StageDone {
    pub stage: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>, min_items = 2, max_items = 2)]
    pub artifact: Option<(ArtifactKind, String)>,
    pub finished_at: DateTime<Utc>,
}

/// Why a job failed, in terms a user can act on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobFailure {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_tail: Option<String>,
    /// Whether another attempt may succeed (a worker died, capacity) or not (a corrupt file).
    #[serde(default)]
    pub retryable: bool,
}

impl JobFailure {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            stage: None,
            command: None,
            exit_status: None,
            stderr_tail: None,
            retryable: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    Claimed,
    Reclaimed {
        reason: String,
    },
    Running {
        worker: WorkerRef,
    },
    StageStarted {
        stage: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command: Option<String>,
    },
    StageFinished {
        stage: String,
        exit_status: i32,
        duration_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stderr_tail: Option<String>,
    },
    StageSkipped {
        stage: String,
        reason: String,
    },
    Rescheduled {
        reason: String,
    },
    Completed,
    Failed {
        message: String,
    },
    /// Another owner took a queued job over (same attempt).
    TakenOver {
        reason: String,
    },
    /// An operator asked for the failure to be retried.
    RetryRequested,
    Note {
        message: String,
    },
}

/// One entry of a job's timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobEvent {
    pub at: DateTime<Utc>,
    pub attempt: u32,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The full job document, as stored by every job store backend.
///
/// Documents tolerate unknown and missing optional fields, so a record written by one version is
/// read by the next.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: JobId,
    pub workflow_key: String,
    pub dcc: Ident,
    pub local_id: Ident,
    pub status: JobStatus,
    /// True while pending or running; the store's partial unique index filters on it.
    pub active: bool,
    pub attempt: u32,
    pub lease: Lease,
    #[serde(default)]
    pub stages_done: Vec<StageDone>,
    #[serde(default)]
    pub artifacts: BTreeMap<ArtifactKind, String>,
    #[serde(default)]
    pub progress: Option<Progress>,
    #[serde(default)]
    pub error: Option<JobFailure>,
    #[serde(default)]
    pub worker: Option<WorkerRef>,
    pub submitted_at: DateTime<Utc>,
    /// The last write by the job's owner; the stale threshold is measured from it.
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub events: Vec<JobEvent>,
    /// Since when the current attempt waits for a worker to accept it (none once one has).
    #[serde(default)]
    pub queued_since: Option<DateTime<Utc>>,
    /// Why it waits (no worker free, the worker maximum, ECS capacity backoff).
    #[serde(default)]
    pub waiting_for: Option<String>,
    /// The API replica driving the job (holding its dispatch lease, renewed by its writes).
    #[serde(default)]
    pub driver: Option<String>,
}

impl JobRecord {
    /// A fresh pending job for a workflow.
    pub fn new_pending(
        workflow_key: String,
        dcc: Ident,
        local_id: Ident,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            job_id: JobId::new(),
            workflow_key,
            dcc,
            local_id,
            status: JobStatus::Pending,
            active: true,
            attempt: 1,
            lease: Lease::new(),
            stages_done: Vec::new(),
            artifacts: BTreeMap::new(),
            progress: None,
            error: None,
            worker: None,
            submitted_at: now,
            updated_at: now,
            started_at: None,
            finished_at: None,
            events: vec![JobEvent {
                at: now,
                attempt: 1,
                kind: EventKind::Claimed,
            }],
            queued_since: Some(now),
            waiting_for: None,
            driver: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_canonical_uuids() {
        let id = JobId::new();
        assert_eq!(JobId::parse(id.as_str()), Some(id));
        assert_eq!(JobId::parse("not-a-uuid"), None);
        assert_eq!(JobId::parse("../../etc/passwd"), None);
        assert_eq!(JobId::parse("0190F2A0-0000-7000-8000-000000000000"), None);
    }

    #[test]
    fn documents_tolerate_unknown_and_missing_optional_fields() {
        let json = r#"{"job_id":"0190f2a0-0000-7000-8000-000000000000","workflow_key":"d/l/m/v1",
            "dcc":"d","local_id":"l","status":"running","active":true,"attempt":2,"lease":"x",
            "submitted_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:01Z",
            "a_field_from_the_future":{"nested":[1,2,3]}}"#;
        let job: JobRecord = serde_json::from_str(json).unwrap();
        assert_eq!(job.status, JobStatus::Running);
        assert_eq!(job.attempt, 2);
        assert!(job.events.is_empty() && job.artifacts.is_empty() && job.error.is_none());
    }

    #[test]
    fn events_serialize_with_a_kind_tag() {
        let ev = JobEvent {
            at: DateTime::from_timestamp(0, 0).unwrap(),
            attempt: 1,
            kind: EventKind::StageFinished {
                stage: "sort".into(),
                exit_status: 0,
                duration_ms: 12,
                stderr_tail: None,
            },
        };
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["kind"], "stage_finished");
        assert_eq!(v["stage"], "sort");
        let back: JobEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, ev);
    }
}
