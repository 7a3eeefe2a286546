//! Listing jobs newest first, a page at a time.

use chrono::{DateTime, Utc};

use crate::domain::{JobId, JobRecord, JobStatus};

pub const MAX_PAGE: usize = 500;

#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub status: Option<JobStatus>,
    /// Page size; clamped to 1..=500 (default 50).
    pub limit: Option<usize>,
    /// Continue after this cursor (from a previous page's `next`).
    pub after: Option<PageCursor>,
}

impl ListQuery {
    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(50).clamp(1, MAX_PAGE)
    }
}

/// Where a page ended: the `(submitted_at, job_id)` of its last job. Rendered as an opaque
/// string for HTTP clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageCursor {
    pub submitted_at_ms: i64,
    pub job_id: JobId,
}

impl PageCursor {
    pub fn of(job: &JobRecord) -> Self {
        Self {
            submitted_at_ms: job.submitted_at.timestamp_millis(),
            job_id: job.job_id.clone(),
        }
    }

    pub fn encode(&self) -> String {
        format!("{}_{}", self.submitted_at_ms, self.job_id)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (ms, id) = s.split_once('_')?;
        Some(Self {
            submitted_at_ms: ms.parse().ok()?,
            job_id: JobId::parse(id)?,
        })
    }

    pub fn submitted_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.submitted_at_ms).unwrap_or_default()
    }
}

#[derive(Clone, Debug)]
pub struct JobPage {
    pub jobs: Vec<JobRecord>,
    /// Present when more jobs may follow.
    pub next: Option<PageCursor>,
}

impl JobPage {
    /// Builds a page from up to `limit + 1` rows fetched in order.
    pub fn from_rows(mut jobs: Vec<JobRecord>, limit: usize) -> Self {
        let more = jobs.len() > limit;
        jobs.truncate(limit);
        let next = if more {
            jobs.last().map(PageCursor::of)
        } else {
            None
        };
        Self { jobs, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = PageCursor {
            submitted_at_ms: 1_767_225_600_123,
            job_id: JobId::new(),
        };
        assert_eq!(PageCursor::decode(&c.encode()), Some(c));
        assert_eq!(PageCursor::decode("x_y"), None);
        assert_eq!(PageCursor::decode("12"), None);
    }
}
