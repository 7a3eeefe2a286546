//! The jobs this replica drives, by workflow key, with the latest record the drive holds of each.
//! A cold request for a file whose job is driven here is answered from it: no store operation
//! while nothing changed, however many requests arrive (a storm of GETs for a file nobody
//! prepared yet), and one read, shared by the requests of that moment, after a change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use htsprep_shared::domain::JobRecord;

#[derive(Debug, Default)]
pub(super) struct Driving {
    jobs: Mutex<HashMap<String, Held>>,
}

#[derive(Debug)]
struct Held {
    /// Shared with the requests answered from it (a storm's thousand answers, one record).
    record: Arc<JobRecord>,
    /// Changes reported so far (a worker's update, a new attempt).
    changes: u64,
    /// `changes` when `record` was read.
    seen: u64,
}

/// What is held of a driven job.
#[derive(Debug)]
pub(super) struct Snapshot {
    pub record: Arc<JobRecord>,
    /// `Some(changes)` when the job changed since the record was read: read it again and
    /// [`Driving::refreshed`] it with that number.
    pub stale: Option<u64>,
}

impl Driving {
    /// Starts driving `job`; false if this replica drives it already.
    pub(super) fn start(&self, job: &JobRecord) -> bool {
        let mut jobs = self.jobs.lock().expect("driving lock");
        if jobs
            .get(&job.workflow_key)
            .is_some_and(|h| h.record.job_id == job.job_id)
        {
            return false;
        }
        let held = Held {
            record: Arc::new(job.clone()),
            changes: 0,
            seen: 0,
        };
        jobs.insert(job.workflow_key.clone(), held);
        true
    }

    /// What is held of the job driven here for `workflow_key`.
    pub(super) fn get(&self, workflow_key: &str) -> Option<Snapshot> {
        let jobs = self.jobs.lock().expect("driving lock");
        let held = jobs.get(workflow_key)?;
        Some(Snapshot {
            record: Arc::clone(&held.record),
            stale: (held.changes > held.seen).then_some(held.changes),
        })
    }

    /// The job changed (its record in the store is newer than the one held).
    pub(super) fn changed(&self, job: &JobRecord) {
        if let Some(held) = self.held(&mut self.jobs.lock().expect("driving lock"), job) {
            held.changes += 1;
        }
    }

    /// Holds `job` as read when `changes` changes had been reported (from [`Snapshot::stale`]),
    /// or as the drive holds it now (`None`).
    pub(super) fn refreshed(&self, job: &JobRecord, changes: Option<u64>) {
        let mut jobs = self.jobs.lock().expect("driving lock");
        if let Some(held) = self.held(&mut jobs, job) {
            held.record = Arc::new(job.clone());
            held.seen = changes.unwrap_or(held.changes).max(held.seen);
        }
    }

    /// This replica no longer drives `job`.
    pub(super) fn stop(&self, job_id: &htsprep_shared::domain::JobId, workflow_key: &str) {
        let mut jobs = self.jobs.lock().expect("driving lock");
        if jobs
            .get(workflow_key)
            .is_some_and(|h| &h.record.job_id == job_id)
        {
            jobs.remove(workflow_key);
        }
    }

    /// Whether this replica drives the job of `workflow_key`.
    pub(super) fn contains(&self, workflow_key: &str) -> bool {
        self.jobs
            .lock()
            .expect("driving lock")
            .contains_key(workflow_key)
    }

    pub(super) fn len(&self) -> usize {
        self.jobs.lock().expect("driving lock").len()
    }

    fn held<'a>(
        &self,
        jobs: &'a mut HashMap<String, Held>,
        job: &JobRecord,
    ) -> Option<&'a mut Held> {
        jobs.get_mut(&job.workflow_key)
            .filter(|h| h.record.job_id == job.job_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(workflow: &str) -> JobRecord {
        let ident = |s| htsprep_shared::domain::Ident::parse(s).unwrap();
        JobRecord::new_pending(workflow.into(), ident("d"), ident("l"), chrono::Utc::now())
    }

    #[test]
    fn a_change_makes_the_held_record_stale_until_a_later_read() {
        let d = Driving::default();
        let a = job("w1");
        assert!(d.start(&a));
        assert!(!d.start(&a), "driven once");
        assert!(d.contains("w1") && !d.contains("w2"));
        assert!(d.get("w1").unwrap().stale.is_none());
        d.changed(&a);
        let seen = d.get("w1").unwrap().stale.expect("stale after a change");
        d.changed(&a); // while the read is in flight
        let mut newer = a.clone();
        newer.attempt = 2;
        d.refreshed(&newer, Some(seen));
        let s = d.get("w1").unwrap();
        assert_eq!(s.record.attempt, 2);
        assert!(s.stale.is_some(), "a change during the read keeps it stale");
        d.refreshed(&newer, None);
        assert!(d.get("w1").unwrap().stale.is_none());
        d.stop(&a.job_id, "w1");
        assert!(d.get("w1").is_none());
        assert!(!d.contains("w1"));
        assert_eq!(d.len(), 0);
    }
}
