//! Warm-pool benchmark (`bench/warm-pool.sh`): what a warm pool saves a cold request, on the
//! local fleet and on ECS through the stand-in (tasks PROVISIONING → PENDING → RUNNING, health
//! checks every second, discovery polls every second), loopback only. For each fleet, RUNS cold
//! GETs with `?wait` of one small real file (each under a fresh id, so each is a new workflow),
//! first with no pool (workers idle out between runs: every request starts one), then with
//! `HTSPREP_MIN_IDLE_WORKERS=1` in the same run. Prints every run, the medians, the ratio and
//! the saving. `cargo run --release -p htsprep-tests --example warm_pool [RUNS]`.

use std::time::{Duration, Instant};

use htsprep_tests::api::ApiProcess;
use htsprep_tests::ecs::EcsWorld;
use htsprep_tests::testdata_manifest;

const FILE: &str = "ctcf_trackline.bed";
const IDLE_SECONDS: &str = "2";

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The manifest row of the test file (its md5 and size computed once), as a template.
fn template() -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let manifest = testdata_manifest("bench", &dir.path().join("m.jsonl"));
    manifest
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["local_id"] == FILE)
        .expect("the test file is in the manifest")
}

async fn until(api: &ApiProcess, what: &str, ready: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let fleet = api.get_json("/fleet").await;
        if ready(&fleet) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {fleet:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn running(fleet: &serde_json::Value) -> usize {
    fleet["workers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["last_status"] == "RUNNING" || w["last_status"] == "PENDING")
        .count()
}

/// RUNS cold requests against `api`; with a pool, each starts once one worker is idle and ready,
/// without, once no worker runs.
async fn measure(
    api: &ApiProcess,
    row: &serde_json::Value,
    label: &str,
    pool: bool,
    runs: usize,
) -> Vec<f64> {
    let mut times = Vec::new();
    for i in 0..runs {
        if pool {
            until(api, "one idle warm worker", |f| f["warm"]["idle"] == 1).await;
        } else {
            until(api, "no worker left", |f| running(f) == 0).await;
        }
        let id = format!("{label}-{}-{i}", if pool { "pool" } else { "nopool" });
        let mut row = row.clone();
        row["local_id"] = id.as_str().into();
        api.register(&row.to_string()).await;
        let start = Instant::now();
        let resp = api
            .http
            .get(api.url(&format!("/data/bench/{id}?wait=120")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{id}");
        resp.bytes().await.unwrap();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "  {label:<11} {:<8} run {}: {secs:.2} s",
            if pool { "pool 1" } else { "no pool" },
            i + 1
        );
        times.push(secs);
    }
    println!(
        "  {label:<11} {:<8} workers started: {} (for the pool: {})",
        if pool { "pool 1" } else { "no pool" },
        api.metric("htsprep_workers_started_total").await,
        api.metric("htsprep_warm_launched_total").await
    );
    times
}

async fn compare(label: &str, start: impl Fn(&[(&str, &str)]) -> ApiProcess, runs: usize) {
    let row = template();
    let cold = {
        let api = start(&[("HTSPREP_WORKER_IDLE_SECONDS", IDLE_SECONDS)]);
        measure(&api, &row, label, false, runs).await
    };
    let warm = {
        let api = start(&[
            ("HTSPREP_WORKER_IDLE_SECONDS", IDLE_SECONDS),
            ("HTSPREP_MIN_IDLE_WORKERS", "1"),
        ]);
        measure(&api, &row, label, true, runs).await
    };
    let (c, w) = (median(&cold), median(&warm));
    println!(
        "{label}: cold GET → 200, median of {runs}: no pool {c:.2} s, warm pool {w:.2} s: ratio {:.2}, saving {:.2} s",
        w / c,
        c - w
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|r| r.parse().expect("RUNS is a number"))
        .unwrap_or(5);
    println!(
        "{FILE} (BED, 2,264 records) requested cold with ?wait; workers idle out after {IDLE_SECONDS} s"
    );
    compare("local", ApiProcess::start, runs).await;
    let world = EcsWorld::start().await;
    compare("ecs-standin", |extra| world.start_api(extra), runs).await;
}
