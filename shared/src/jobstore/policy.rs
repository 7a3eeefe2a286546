//! The job lifecycle's one policy: when a job's owner counts as gone, what taking the job from it
//! costs, and how many attempts a job gets. The claim path, the reconciler and the API's driver
//! all decide with it.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::JobChange;
use crate::domain::{JobRecord, JobStatus};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobPolicy {
    /// A job whose owner has not written for this long is taken from it: a queued job's
    /// dispatch lease (renewed by the API replica driving it) and a running job's heartbeat both
    /// expire after this.
    pub stale_after: Duration,
    /// Attempts (runs a worker accepted) per job before it fails for good.
    pub max_attempts: u32,
}

impl JobPolicy {
    /// Writes older than this are stale at `now`.
    pub fn stale_before(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - chrono::Duration::from_std(self.stale_after).unwrap_or_default()
    }

    /// Whether `job` is active and its owner has gone quiet.
    pub fn is_stale(&self, job: &JobRecord, now: DateTime<Utc>) -> bool {
        job.active && job.updated_at < self.stale_before(now)
    }

    /// How to take a stale job from its owner. A queued job (no worker accepted this attempt)
    /// is taken over with a new lease and the same attempt: waiting never costs an attempt. A
    /// running job is retried as attempt + 1, or failed after its last attempt.
    pub fn reclaim(
        &self,
        job: &JobRecord,
        now: DateTime<Utc>,
        driver: Option<&str>,
        by: &str,
    ) -> JobChange {
        let stale_before = self.stale_before(now);
        let quiet = self.stale_after.as_secs();
        if job.status == JobStatus::Pending {
            return JobChange::TakeOver {
                stale_before,
                driver: driver.map(str::to_owned),
                reason: format!(
                    "its dispatch lease expired ({quiet}s without renewal); taken over by {by}"
                ),
            };
        }
        JobChange::Abandon {
            stale_before,
            reason: format!(
                "no heartbeat for {quiet}s during attempt {} (reclaimed by {by})",
                job.attempt
            ),
            retry: job.attempt < self.max_attempts,
        }
    }

    /// How to take back a running job whose worker the fleet says is gone: the same attempt
    /// again when the loss does not count against the job, else the next attempt, or a failure
    /// after the last.
    pub fn lost(&self, job: &JobRecord, reason: &str, counts_attempt: bool) -> JobChange {
        if !counts_attempt {
            return JobChange::Requeue {
                reason: reason.to_owned(),
            };
        }
        if self.may_retry(job.attempt) {
            return JobChange::Reschedule {
                reason: reason.to_owned(),
            };
        }
        let mut f = crate::domain::JobFailure::new(format!(
            "gave up after {} attempt(s): {reason}",
            job.attempt
        ));
        f.retryable = true;
        JobChange::Fail(f)
    }

    /// Whether a job that has had `attempt` attempts may have another.
    pub fn may_retry(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }

    /// The pause before attempt `next` (2 s, doubling, at most a minute): a transient failure is
    /// not retried in a tight loop.
    pub fn backoff(&self, next: u32) -> Duration {
        let doublings = next.saturating_sub(2).min(5);
        Duration::from_secs(2u64 << doublings).min(Duration::from_secs(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Ident, JobRecord};

    fn job(status: JobStatus, attempt: u32) -> JobRecord {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut j = JobRecord::new_pending(
            "d/l/m/v1".into(),
            Ident::parse("d").unwrap(),
            Ident::parse("l").unwrap(),
            now,
        );
        j.status = status;
        j.attempt = attempt;
        j
    }

    #[test]
    fn staleness_is_measured_from_the_last_write() {
        let p = JobPolicy {
            stale_after: Duration::from_secs(60),
            max_attempts: 3,
        };
        let j = job(JobStatus::Running, 1);
        assert!(!p.is_stale(&j, j.updated_at + chrono::Duration::seconds(60)));
        assert!(p.is_stale(&j, j.updated_at + chrono::Duration::seconds(61)));
        let mut done = j.clone();
        done.active = false;
        assert!(!p.is_stale(&done, j.updated_at + chrono::Duration::days(9)));
    }

    #[test]
    fn a_queued_job_is_taken_over_and_a_running_one_costs_an_attempt() {
        let p = JobPolicy {
            stale_after: Duration::from_secs(60),
            max_attempts: 3,
        };
        let now = job(JobStatus::Pending, 1).updated_at;
        assert!(matches!(
            p.reclaim(&job(JobStatus::Pending, 1), now, Some("r2"), "replica r2"),
            JobChange::TakeOver { driver: Some(d), .. } if d == "r2"
        ));
        assert!(matches!(
            p.reclaim(&job(JobStatus::Running, 2), now, None, "the reconciler"),
            JobChange::Abandon { retry: true, .. }
        ));
        assert!(matches!(
            p.reclaim(&job(JobStatus::Running, 3), now, None, "the reconciler"),
            JobChange::Abandon { retry: false, .. }
        ));
        assert!(matches!(
            p.lost(&job(JobStatus::Running, 3), "task stopped", false),
            JobChange::Requeue { .. }
        ));
        assert!(matches!(
            p.lost(&job(JobStatus::Running, 2), "task stopped", true),
            JobChange::Reschedule { .. }
        ));
        assert!(matches!(
            p.lost(&job(JobStatus::Running, 3), "task stopped", true),
            JobChange::Fail(f) if f.retryable && f.message.contains("gave up after 3")
        ));
        assert_eq!(p.backoff(2), Duration::from_secs(2));
        assert_eq!(p.backoff(3), Duration::from_secs(4));
        assert_eq!(p.backoff(30), Duration::from_secs(60));
    }
}
