//! The local fleet (worker processes on this host) runs the fleet conformance suite that the ECS
//! fleet also runs (api/tests/ecs_fleet.rs).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use htsprep_api::fleet::conformance::{FleetHarness, TestFleet};
use htsprep_api::fleet::{LocalFleet, LocalFleetConfig, WorkerInfo};

struct LocalHarness {
    dir: tempfile::TempDir,
}

impl LocalHarness {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
}

#[async_trait]
impl FleetHarness for LocalHarness {
    async fn fleet(&self, max_workers: usize) -> TestFleet {
        let fleet = LocalFleet::new(LocalFleetConfig {
            worker_bin: htsprep_tests::bin("htsprep-worker"),
            data_dir: self.dir.path().to_owned(),
            max_workers,
            jobs_per_worker: 1,
            idle_timeout: Duration::from_secs(300),
            nice: 10,
            heartbeat: Duration::from_secs(5),
            drain_grace: Duration::from_secs(2),
            token: "conformance-token-0123456789".into(),
            start_timeout: Duration::from_secs(30),
        });
        TestFleet {
            provisioner: Arc::new(fleet.clone()),
            discovery: Arc::new(fleet),
        }
    }

    async fn stop_worker(&self, worker: &WorkerInfo) {
        let pid: i32 = worker
            .id
            .strip_prefix("pid-")
            .and_then(|p| p.parse().ok())
            .expect("local worker ids are pid-N");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("kill the worker");
    }
}

htsprep_api::fleet_conformance!(LocalHarness::new());

/// On a machine shared with the API, workers (and the stages they run) yield the CPU to it.
#[tokio::test]
async fn local_workers_run_at_the_configured_niceness() {
    let h = LocalHarness::new();
    let fleet = h.fleet(1).await;
    let req = htsprep_api::fleet::ProvisionRequest {
        workflow_key: "dcc/nice/0123456789abcdef0123456789abcdef/v1".into(),
        job_id: htsprep_shared::domain::JobId::new(),
        attempt: 1,
    };
    fleet.provisioner.provision(&req).await.expect("provision");
    let mut sub = fleet.discovery.subscribe();
    let worker = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Some(w) = sub.current().into_iter().next() {
                return w;
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), sub.next()).await;
        }
    })
    .await
    .expect("a worker within a minute");
    let pid = worker.id.strip_prefix("pid-").expect("pid-N");
    // Field 19 of /proc/PID/stat, counted after the command name's closing parenthesis.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let nice: i32 = after_name.split(' ').nth(16).unwrap().parse().unwrap();
    assert_eq!(nice, 10, "{stat}");
    h.stop_worker(&worker).await;
}
