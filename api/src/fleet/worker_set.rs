//! The set of healthy workers, with change events that replay the current set to late
//! subscribers. Discovery implementations feed one of these.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use super::WorkerInfo;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkerEvent {
    Added(WorkerInfo),
    Dropped(String),
}

#[derive(Clone, Debug)]
pub struct WorkerSet {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    workers: BTreeMap<String, WorkerInfo>,
    events: broadcast::Sender<WorkerEvent>,
}

impl Default for WorkerSet {
    fn default() -> Self {
        Self::new()
    }
}

impl WorkerSet {
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            inner: Arc::new(Mutex::new(Inner {
                workers: BTreeMap::new(),
                events,
            })),
        }
    }

    /// Adds or updates a worker; announces it if it is new or changed.
    pub fn add(&self, w: WorkerInfo) {
        let mut inner = self.inner.lock().expect("worker set lock");
        if inner.workers.get(&w.id) != Some(&w) {
            inner.workers.insert(w.id.clone(), w.clone());
            let _ = inner.events.send(WorkerEvent::Added(w));
        }
    }

    pub fn drop_worker(&self, id: &str) {
        let mut inner = self.inner.lock().expect("worker set lock");
        if inner.workers.remove(id).is_some() {
            let _ = inner.events.send(WorkerEvent::Dropped(id.to_owned()));
        }
    }

    pub fn snapshot(&self) -> Vec<WorkerInfo> {
        self.inner
            .lock()
            .expect("worker set lock")
            .workers
            .values()
            .cloned()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.inner.lock().expect("worker set lock").workers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The current set (as `Added` events) followed by live changes, with nothing lost between.
    pub fn subscribe(&self) -> Subscription {
        let inner = self.inner.lock().expect("worker set lock");
        Subscription {
            replay: inner
                .workers
                .values()
                .cloned()
                .map(WorkerEvent::Added)
                .collect(),
            live: inner.events.subscribe(),
            set: self.clone(),
        }
    }
}

/// A stream of worker events.
pub struct Subscription {
    replay: std::collections::VecDeque<WorkerEvent>,
    live: broadcast::Receiver<WorkerEvent>,
    set: WorkerSet,
}

impl Subscription {
    /// The next event; after falling behind, the current set is replayed again.
    pub async fn next(&mut self) -> Option<WorkerEvent> {
        if let Some(e) = self.replay.pop_front() {
            return Some(e);
        }
        loop {
            match self.live.recv().await {
                Ok(e) => return Some(e),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let fresh = self.set.subscribe();
                    self.replay = fresh.replay;
                    self.live = fresh.live;
                    if let Some(e) = self.replay.pop_front() {
                        return Some(e);
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The workers known right now (for a dispatcher picking one).
    pub fn current(&self) -> Vec<WorkerInfo> {
        self.set.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(id: &str) -> WorkerInfo {
        WorkerInfo {
            id: id.into(),
            provider: "test".into(),
            address: format!("127.0.0.1:{}", id.len()),
            started_for: None,
        }
    }

    #[tokio::test]
    async fn late_subscribers_get_the_current_set_first() {
        let set = WorkerSet::new();
        set.add(w("a"));
        set.add(w("bb"));
        set.drop_worker("a");
        let mut sub = set.subscribe();
        assert_eq!(sub.next().await, Some(WorkerEvent::Added(w("bb"))));
        set.add(w("ccc"));
        set.add(w("ccc")); // unchanged: no event
        set.drop_worker("bb");
        assert_eq!(sub.next().await, Some(WorkerEvent::Added(w("ccc"))));
        assert_eq!(sub.next().await, Some(WorkerEvent::Dropped("bb".into())));
        assert_eq!(set.snapshot(), vec![w("ccc")]);
    }
}
