//! This replica's dispatch queue: the jobs it drives that wait for a worker, oldest first. A
//! worker shared by many jobs is offered to the oldest job ready for one; a worker started for
//! one job (ECS) goes to that job whatever its place.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use htsprep_shared::domain::JobId;
use tokio::sync::Notify;
use tokio::time::Instant;

type Key = (DateTime<Utc>, JobId);

#[derive(Debug, Default)]
pub(crate) struct Queue {
    /// Waiting jobs by when they were queued, with when each may be offered a worker (a job
    /// pausing after a failed attempt does not hold up the others).
    waiting: Mutex<BTreeMap<Key, Instant>>,
    /// Woken whenever a job leaves the queue.
    left: Notify,
}

/// A job's place in the queue, given up when dropped.
pub(crate) struct Place<'a> {
    queue: &'a Queue,
    key: Key,
}

impl Queue {
    pub fn join(&self, since: DateTime<Utc>, job: JobId, ready_at: Instant) -> Place<'_> {
        let key = (since, job);
        self.waiting
            .lock()
            .expect("queue lock")
            .insert(key.clone(), ready_at);
        Place { queue: self, key }
    }

    /// Resolves when a job leaves the queue (the one ahead may have been served).
    pub async fn changed(&self) {
        self.left.notified().await;
    }
}

impl Place<'_> {
    /// How many older jobs that may be offered a worker now wait ahead of this one.
    pub fn ahead(&self) -> usize {
        let now = Instant::now();
        self.queue
            .waiting
            .lock()
            .expect("queue lock")
            .range(..self.key.clone())
            .filter(|(_, ready_at)| **ready_at <= now)
            .count()
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.queue
            .waiting
            .lock()
            .expect("queue lock")
            .remove(&self.key);
        self.queue.left.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_oldest_ready_job_is_first() {
        let q = Queue::default();
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let now = Instant::now();
        let old = q.join(t0, JobId::new(), now);
        let pausing = q.join(
            t0 + chrono::Duration::seconds(1),
            JobId::new(),
            now + Duration::from_secs(60),
        );
        let young = q.join(t0 + chrono::Duration::seconds(2), JobId::new(), now);
        assert_eq!(old.ahead(), 0);
        assert_eq!(pausing.ahead(), 1);
        assert_eq!(
            young.ahead(),
            1,
            "a job pausing after a failure holds no one up"
        );
        drop(old);
        assert_eq!(young.ahead(), 0);
    }
}
