//! Change notification for the jobs this replica drives: the dispatch stream's updates and the
//! driver's own writes bump a job's version, so `?wait` awaits a change instead of polling the
//! store. Jobs another replica drives have no watch here (their waiters poll).

use std::collections::HashMap;
use std::sync::Mutex;

use htsprep_shared::domain::JobId;
use tokio::sync::watch;

#[derive(Debug, Default)]
pub(crate) struct Watches {
    jobs: Mutex<HashMap<JobId, watch::Sender<u64>>>,
}

/// The watch of a job being driven; dropping it wakes every waiter a last time.
pub(crate) struct Watched<'a> {
    watches: &'a Watches,
    id: JobId,
}

impl Watches {
    pub fn open(&self, id: &JobId) -> Watched<'_> {
        self.prepare(id);
        Watched {
            watches: self,
            id: id.clone(),
        }
    }

    /// Makes the job watchable before its driver opens the watch (see `Executor::drive`).
    pub fn prepare(&self, id: &JobId) {
        self.jobs
            .lock()
            .expect("watches lock")
            .entry(id.clone())
            .or_insert_with(|| watch::channel(0).0);
    }

    /// Tells the job's waiters it changed.
    pub fn bump(&self, id: &JobId) {
        if let Some(tx) = self.jobs.lock().expect("watches lock").get(id) {
            tx.send_modify(|v| *v += 1);
        }
    }

    pub fn subscribe(&self, id: &JobId) -> Option<watch::Receiver<u64>> {
        self.jobs
            .lock()
            .expect("watches lock")
            .get(id)
            .map(watch::Sender::subscribe)
    }
}

impl Drop for Watched<'_> {
    fn drop(&mut self) {
        // The sender goes: waiters see the channel close and read the job once more.
        self.watches
            .jobs
            .lock()
            .expect("watches lock")
            .remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn waiters_wake_on_a_change_and_when_driving_ends() {
        let w = Watches::default();
        let id = JobId::new();
        assert!(w.subscribe(&id).is_none(), "not driven here");
        let watched = w.open(&id);
        let mut rx = w.subscribe(&id).unwrap();
        w.bump(&id);
        tokio::time::timeout(Duration::from_secs(5), rx.changed())
            .await
            .unwrap()
            .unwrap();
        drop(watched);
        let closed = tokio::time::timeout(Duration::from_secs(5), rx.changed())
            .await
            .unwrap();
        assert!(closed.is_err(), "the end of driving wakes waiters");
        assert!(w.subscribe(&id).is_none());
    }

    /// A waiter taken between the claim and the driver's start still hears the job's end.
    #[tokio::test]
    async fn a_job_is_watchable_from_its_claim_before_its_driver_runs() {
        let w = Watches::default();
        let id = JobId::new();
        w.prepare(&id);
        let mut early = w.subscribe(&id).expect("watchable once prepared");
        let watched = w.open(&id);
        w.bump(&id);
        tokio::time::timeout(Duration::from_secs(5), early.changed())
            .await
            .unwrap()
            .unwrap();
        drop(watched);
        let closed = tokio::time::timeout(Duration::from_secs(5), early.changed())
            .await
            .unwrap();
        assert!(closed.is_err(), "the end of driving wakes the early waiter");
    }
}
