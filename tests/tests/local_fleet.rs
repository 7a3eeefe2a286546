//! The local fleet (worker processes on this host) runs the fleet conformance suite that the ECS
//! fleet also runs (api/tests/ecs_fleet.rs).

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
        TestFleet::of(fleet)
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

/// `GET /fleet` and `htsprep-api fleet status` show the local worker: its process, address,
/// health, start, that it is idle since its job ended; and once it exits, why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_view_shows_each_worker_its_jobs_and_why_it_exited() {
    let api = htsprep_tests::api::ApiProcess::start(&[]);
    api.register_testdata().await;
    let job = api.cold_get("/data/testdata/htslib_index.vcf").await;
    let done = api.wait_job(&job, Duration::from_secs(120)).await;
    assert_eq!(done["status"], "completed");

    let anonymous = api.http.get(api.url("/fleet")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let fleet = api.get_json("/fleet").await;
    assert_eq!(fleet["provider"], "local");
    assert_eq!(fleet["max_workers"], 2);
    let workers = fleet["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 1, "{fleet:#}");
    let w = &workers[0];
    let id = w["id"].as_str().unwrap().to_owned();
    assert_eq!(done["worker"]["resource_id"], id.as_str());
    assert!(id.starts_with("pid-"), "{w:#}");
    assert!(
        w["address"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{w:#}"
    );
    assert_eq!(
        (&w["health"], &w["last_status"]),
        (&"healthy".into(), &"RUNNING".into())
    );
    assert_eq!(w["jobs"], serde_json::json!([]));
    assert_eq!(
        w["idle_since"], done["finished_at"],
        "idle since its job ended"
    );
    assert!(w["started_at"].is_string() && w["stopped_reason"].is_null());

    let out = std::process::Command::new(htsprep_tests::bin("htsprep-api"))
        .args(["fleet", "status", "--api", &api.base])
        .env("HTSPREP_ADMIN_TOKEN", htsprep_tests::api::ADMIN)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        table.starts_with("local fleet, at most 2 workers, no warm pool\nID\tLAST_STATUS\t"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&format!("{id}\tRUNNING\thealthy\t127.0.0.1:"))),
        "{table}"
    );

    let pid: i32 = id.strip_prefix("pid-").unwrap().parse().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let fleet = api.get_json("/fleet").await;
        let w = &fleet["workers"][0];
        if w["last_status"] == "EXITED" {
            assert_eq!(w["id"], id.as_str());
            assert!(
                w["stopped_reason"]
                    .as_str()
                    .unwrap()
                    .contains("its process exited"),
                "{w:#}"
            );
            assert!(w["idle_since"].is_null());
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{fleet:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads with `read` until `ready` holds for what it read; panics with the last reading after
/// 60 s.
async fn until<T: std::fmt::Debug, F: Future<Output = T>>(
    what: &str,
    mut read: impl FnMut() -> F,
    ready: impl Fn(&T) -> bool,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = read().await;
        if ready(&got) {
            return got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within 60 s: {got:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `GET /fleet` until `ready` holds for it.
async fn fleet_until(
    api: &htsprep_tests::api::ApiProcess,
    what: &str,
    ready: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    until(what, || api.get_json("/fleet"), ready).await
}

fn running_ids(fleet: &serde_json::Value) -> Vec<String> {
    fleet["workers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["last_status"] == "RUNNING")
        .map(|w| w["id"].as_str().unwrap().to_owned())
        .collect()
}

fn fleet_cli(api: &htsprep_tests::api::ApiProcess, args: &[&str]) -> std::process::Output {
    std::process::Command::new(htsprep_tests::bin("htsprep-api"))
        .arg("fleet")
        .args(args)
        .args(["--api", &api.base])
        .env("HTSPREP_ADMIN_TOKEN", htsprep_tests::api::ADMIN)
        .output()
        .unwrap()
}

/// `HTSPREP_MIN_IDLE_WORKERS`: a worker is ready before any job, outlives its idle timeout while
/// the pool keeps it, and takes the first cold job; `fleet scale --min-idle` changes the pool at
/// run time (above the maximum refused), and at 0 the workers stop once idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_pool_keeps_idle_workers_ready_and_cold_jobs_run_on_them() {
    let api = htsprep_tests::api::ApiProcess::start(&[
        ("HTSPREP_MIN_IDLE_WORKERS", "1"),
        ("HTSPREP_WORKER_IDLE_SECONDS", "1"),
    ]);
    let fleet = fleet_until(&api, "one warm worker", |f| {
        f["warm"]["idle"] == 1 && running_ids(f).len() == 1
    })
    .await;
    assert_eq!(fleet["warm"]["min_idle"], 1);
    let warm = running_ids(&fleet)[0].clone();
    // Three idle timeouts later it is still the same process: the pool keeps it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let fleet = api.get_json("/fleet").await;
    assert_eq!(running_ids(&fleet), vec![warm.clone()], "{fleet:#}");
    assert_eq!(fleet["warm"]["launched"], 1, "{fleet:#}");

    api.register_testdata().await;
    let job = api.cold_get("/data/testdata/htslib_index.vcf").await;
    let done = api.wait_job(&job, Duration::from_secs(120)).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(
        done["worker"]["resource_id"],
        warm.as_str(),
        "the cold job ran on the warm worker"
    );
    // No worker was started for the job itself: every one came from the pool. While the job held
    // the warm worker the pool may have started another, counted as started a moment before the
    // pool counts it as launched, so the two agree once that launch is done; one started for the
    // job would keep them apart.
    until(
        "as many workers started as launched for the pool (started, launched)",
        || {
            api.metrics(&[
                "htsprep_workers_started_total",
                "htsprep_warm_launched_total",
            ])
        },
        |[started, launched]| started == launched,
    )
    .await;
    assert_eq!(api.metric("htsprep_warm_min_idle").await, 1);

    let out = fleet_cli(&api, &["scale", "--min-idle", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("warm pool: at least 2 idle worker(s)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    fleet_until(&api, "two warm workers", |f| {
        f["warm"]["idle"] == 2 && running_ids(f).len() == 2
    })
    .await;

    let out = fleet_cli(&api, &["scale", "--min-idle", "3"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("a warm pool of 3 idle worker(s) exceeds the worker maximum of 2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = api
        .http
        .post(api.url("/fleet/scale"))
        .bearer_auth(htsprep_tests::api::ADMIN)
        .body("{\"min_idle\": -1}")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let anonymous = api
        .http
        .post(api.url("/fleet/scale"))
        .body("{\"min_idle\": 0}")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        api.get_json("/fleet").await["warm"]["min_idle"],
        2,
        "unchanged"
    );

    let out = fleet_cli(&api, &["scale", "--min-idle", "0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fleet_until(&api, "let go, the idle workers stop", |f| {
        running_ids(f).is_empty()
    })
    .await;
}
