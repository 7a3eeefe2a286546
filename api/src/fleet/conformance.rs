//! The conformance suite every fleet (provisioner + discovery) runs: the local processes and ECS
//! (against the emulator). Use [`fleet_conformance!`](crate::fleet_conformance) with a
//! [`FleetHarness`].

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use htsprep_shared::domain::JobId;

use super::{
    Discovery, ProvisionError, ProvisionRequest, Provisioner, Roster, WorkerEvent, WorkerInfo,
};

/// A fleet under test.
pub struct TestFleet {
    pub provisioner: Arc<dyn Provisioner>,
    pub discovery: Arc<dyn Discovery>,
    pub roster: Arc<dyn Roster>,
}

impl TestFleet {
    /// A fleet that is all three.
    pub fn of<F: Provisioner + Discovery + Roster + Clone + 'static>(fleet: F) -> Self {
        Self {
            provisioner: Arc::new(fleet.clone()),
            discovery: Arc::new(fleet.clone()),
            roster: Arc::new(fleet),
        }
    }
}

#[async_trait]
pub trait FleetHarness: Send + Sync {
    /// A fresh fleet that runs at most `max_workers` workers, discovering them by itself.
    async fn fleet(&self, max_workers: usize) -> TestFleet;
    /// Ends a worker from outside the fleet (a process killed, a task stopped).
    async fn stop_worker(&self, worker: &WorkerInfo);
}

/// How long a test waits for discovery to catch up.
const SETTLE: Duration = Duration::from_secs(60);

fn request(key: &str) -> ProvisionRequest {
    ProvisionRequest {
        workflow_key: key.to_owned(),
        job_id: JobId::new(),
        attempt: 1,
    }
}

/// Waits until discovery reports exactly `n` workers; returns them.
async fn await_workers(fleet: &TestFleet, n: usize) -> Vec<WorkerInfo> {
    let mut sub = fleet.discovery.subscribe();
    let wait = async {
        loop {
            let now = sub.current();
            if now.len() == n {
                return now;
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), sub.next()).await;
        }
    };
    match tokio::time::timeout(SETTLE, wait).await {
        Ok(w) => w,
        Err(_) => panic!(
            "discovery did not report {n} worker(s) within {SETTLE:?}: {:?}",
            sub.current()
        ),
    }
}

pub async fn concurrent_requests_for_one_workflow_start_one_worker(h: &dyn FleetHarness) {
    let fleet = h.fleet(8).await;
    let req = request("dcc/one/0123456789abcdef0123456789abcdef/v1");
    let calls: Vec<_> = (0..100)
        .map(|_| {
            let p = Arc::clone(&fleet.provisioner);
            let r = req.clone();
            tokio::spawn(async move { p.provision(&r).await })
        })
        .collect();
    for c in calls {
        c.await.expect("provision task").expect("provision");
    }
    assert_eq!(
        fleet.provisioner.started(),
        1,
        "one worker for one workflow"
    );
    let workers = await_workers(&fleet, 1).await;
    assert!(!workers[0].address.is_empty() && workers[0].address.contains(':'));
    fleet.provisioner.shutdown().await;
}

pub async fn the_worker_maximum_is_respected(h: &dyn FleetHarness) {
    let fleet = h.fleet(2).await;
    let calls: Vec<_> = (0..5)
        .map(|i| {
            let p = Arc::clone(&fleet.provisioner);
            tokio::spawn(
                async move { p.provision(&request(&format!("dcc/file-{i}/md5/v1"))).await },
            )
        })
        .collect();
    for c in calls {
        match c.await.expect("provision task") {
            Ok(()) | Err(ProvisionError::Capacity { .. }) => {}
            Err(e) => panic!("a full fleet must answer with capacity, not {e}"),
        }
    }
    assert_eq!(fleet.provisioner.started(), 2);
    await_workers(&fleet, 2).await;
    // Still full: another workflow gets no new worker.
    let more = fleet
        .provisioner
        .provision(&request("dcc/file-9/md5/v1"))
        .await;
    assert!(
        matches!(more, Ok(()) | Err(ProvisionError::Capacity { .. })),
        "{more:?}"
    );
    assert_eq!(fleet.provisioner.started(), 2);
    fleet.provisioner.shutdown().await;
}

pub async fn late_subscribers_see_the_current_workers_and_stops_are_dropped(h: &dyn FleetHarness) {
    let fleet = h.fleet(4).await;
    let mut early = fleet.discovery.subscribe();
    for i in 0..2 {
        fleet
            .provisioner
            .provision(&request(&format!("dcc/late-{i}/md5/v1")))
            .await
            .expect("provision");
    }
    let workers = await_workers(&fleet, 2).await;
    let mut late = fleet.discovery.subscribe();
    let mut replayed = HashSet::new();
    for _ in 0..2 {
        match late.next().await {
            Some(WorkerEvent::Added(w)) => replayed.insert(w.id),
            other => panic!("a late subscriber starts with the current set, got {other:?}"),
        };
    }
    assert_eq!(replayed, workers.iter().map(|w| w.id.clone()).collect());

    h.stop_worker(&workers[0]).await;
    let dropped = async {
        loop {
            match early.next().await {
                Some(WorkerEvent::Dropped(id)) => return id,
                Some(_) => {}
                None => panic!("discovery closed"),
            }
        }
    };
    let id = tokio::time::timeout(SETTLE, dropped)
        .await
        .expect("a stopped worker is dropped");
    assert_eq!(id, workers[0].id);
    assert_eq!(
        fleet
            .discovery
            .subscribe()
            .current()
            .iter()
            .map(|w| &w.id)
            .collect::<Vec<_>>(),
        [&workers[1].id]
    );
    fleet.provisioner.shutdown().await;
}

/// The roster names every worker discovery reports, at its address; a worker stopped from
/// outside is no longer a healthy running one there.
pub async fn the_roster_names_every_worker_and_no_stopped_one_as_running(h: &dyn FleetHarness) {
    let fleet = h.fleet(2).await;
    for i in 0..2 {
        fleet
            .provisioner
            .provision(&request(&format!("dcc/roster-{i}/md5/v1")))
            .await
            .expect("provision");
    }
    let workers = await_workers(&fleet, 2).await;
    let roster = fleet.roster.roster().await.expect("the roster");
    for w in &workers {
        let m = roster
            .iter()
            .find(|m| m.id == w.id)
            .unwrap_or_else(|| panic!("{} is not in the roster {roster:#?}", w.id));
        assert_eq!(m.address.as_deref(), Some(w.address.as_str()));
        // Healthy, or unknown where the backend reports no health (a worker is usable then).
        assert_ne!(m.health, "unhealthy", "{m:?}");
        assert_eq!(m.stopped_reason, None, "{m:?}");
        assert_eq!(m.provider, w.provider);
    }
    h.stop_worker(&workers[0]).await;
    await_workers(&fleet, 1).await;
    let still_running = |roster: &[super::Member]| {
        roster.iter().any(|m| {
            m.id == workers[0].id && m.stopped_reason.is_none() && m.last_status == "RUNNING"
        })
    };
    let settled = async {
        while still_running(&fleet.roster.roster().await.expect("the roster")) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(SETTLE, settled)
        .await
        .expect("the stopped worker leaves the roster's running ones");
    fleet.provisioner.shutdown().await;
}

/// The warm pool's launches: a worker for no job (offered any job: no `started_for`), one per
/// token however often it is asked for, within the maximum, and counted as warming only until
/// discovery reports it.
pub async fn warm_workers_start_for_no_job_once_per_token_within_the_maximum(h: &dyn FleetHarness) {
    let fleet = h.fleet(2).await;
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let p = Arc::clone(&fleet.provisioner);
            tokio::spawn(async move { p.warm("pool-a").await })
        })
        .collect();
    for c in calls {
        c.await.expect("warm task").expect("warm");
    }
    assert_eq!(fleet.provisioner.started(), 1, "one worker for one token");
    let workers = await_workers(&fleet, 1).await;
    assert_eq!(workers[0].started_for, None, "a warm worker is for any job");
    fleet.provisioner.warm("pool-b").await.expect("warm");
    await_workers(&fleet, 2).await;
    match fleet.provisioner.warm("pool-c").await {
        Ok(()) | Err(ProvisionError::Capacity { .. }) => {}
        Err(e) => panic!("a full fleet must answer with capacity, not {e}"),
    }
    assert_eq!(
        fleet.provisioner.started(),
        2,
        "the maximum holds for warm workers"
    );
    let settled = async {
        while fleet.provisioner.warming() > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(SETTLE, settled)
        .await
        .expect("discovered warm workers are no longer counted as warming");
    let roster = fleet.roster.roster().await.expect("the roster");
    for w in &await_workers(&fleet, 2).await {
        let m = roster.iter().find(|m| m.id == w.id).expect("in the roster");
        assert_eq!(m.started_for, None, "{m:?}");
    }
    fleet.provisioner.shutdown().await;
}

/// Instantiates every conformance case for a harness expression.
#[macro_export]
macro_rules! fleet_conformance {
    ($harness:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_requests_for_one_workflow_start_one_worker() {
            let h = $harness;
            $crate::fleet::conformance::concurrent_requests_for_one_workflow_start_one_worker(&h)
                .await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn the_worker_maximum_is_respected() {
            let h = $harness;
            $crate::fleet::conformance::the_worker_maximum_is_respected(&h).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn the_roster_names_every_worker_and_no_stopped_one_as_running() {
            let h = $harness;
            $crate::fleet::conformance::the_roster_names_every_worker_and_no_stopped_one_as_running(&h)
                .await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn warm_workers_start_for_no_job_once_per_token_within_the_maximum() {
            let h = $harness;
            $crate::fleet::conformance::warm_workers_start_for_no_job_once_per_token_within_the_maximum(&h)
                .await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn late_subscribers_see_the_current_workers_and_stops_are_dropped() {
            let h = $harness;
            $crate::fleet::conformance::late_subscribers_see_the_current_workers_and_stops_are_dropped(&h)
                .await;
        }
    };
}
