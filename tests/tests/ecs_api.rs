//! The production path on ECS, end to end and on loopback only: the API with `ECS_CLUSTER`
//! launches Fargate tasks through the ECS stand-in, which runs each as a real `htsprep-worker`
//! process on a loopback address of its own; discovery finds them by `ListTasks`/`DescribeTasks`
//! and their health checks; jobs go RunTask → task → worker → S3 → served, with jobs in MongoDB.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_trait::async_trait;
use htsprep_api::fleet::conformance::{FleetHarness, TestFleet};
use htsprep_api::fleet::ecs::{TAG_ATTEMPT, TAG_WARM};
use htsprep_api::fleet::{EcsFleet, EcsFleetConfig, WorkerInfo};
use htsprep_ecs_standin::EcsStandIn;
use htsprep_tests::api::ApiProcess;
use htsprep_tests::ecs::EcsWorld;
use htsprep_tests::gmod::{check_bam, check_tabix};
use htsprep_tests::slow_http::SlowServer;
use htsprep_tests::{bin, http_row, testdata, testdata_manifest};
use nix::sys::signal::Signal;
use serde_json::Value;
use tokio::sync::OnceCell;

const MINUTES: Duration = Duration::from_secs(180);

/// Waits until the job is running on a task; returns that task's ARN.
async fn running_task(api: &ApiProcess, job_id: &str) -> String {
    let job = api.wait_running(job_id, MINUTES).await;
    job["worker"]["resource_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_real_file_goes_cold_to_served_through_one_ecs_task_per_workflow() {
    let world = EcsWorld::start().await;
    let api = world.start_api(&[("HTSPREP_MAX_WORKERS", "16"), ("HTSPREP_WORKER_JOBS", "1")]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = testdata_manifest("testdata", &dir.path().join("m.jsonl"));
    api.register(&manifest).await;
    let mut jobs = BTreeMap::new();
    for row in manifest.lines() {
        let f: Value = serde_json::from_str(row).unwrap();
        if matches!(f["format"].as_str().unwrap(), "bigWig" | "TSV") {
            continue; // served as they are, no job
        }
        let id = f["local_id"].as_str().unwrap().to_owned();
        let job_id = api.cold_get(&format!("/data/testdata/{id}")).await;
        jobs.insert(id, job_id);
    }
    assert!(jobs.len() >= 9, "every processed format is exercised");

    for (id, job_id) in &jobs {
        let job = api.wait_job(job_id, MINUTES).await;
        assert_eq!(job["status"], "completed", "{id}: {job:#}");
        assert_eq!(job["attempt"], 1, "{id}: {job:#}");
        // One task was launched for the workflow, tagged with its job and attempt.
        let tasks = world.tasks_for(job_id);
        assert_eq!(tasks.len(), 1, "{id}: one task per workflow: {tasks:#?}");
        assert_eq!(
            EcsStandIn::tag(&tasks[0], TAG_ATTEMPT).as_deref(),
            Some("1")
        );
        // The job record names the ECS task that ran it (from the task metadata endpoint).
        assert_eq!(job["worker"]["provider"], "ecs", "{job:#}");
        let ran_on = job["worker"]["resource_id"].as_str().unwrap();
        let task = world.standin.task(ran_on);
        assert_eq!(
            job["worker"]["address"],
            format!("{}:50051", task.ip).as_str(),
            "{job:#}"
        );

        // The bytes served by range are the bytes the worker published to S3.
        let data_key = job["artifacts"]["data"].as_str().unwrap();
        let data = world.object(data_key).await;
        let path = format!("/data/testdata/{id}");
        let mut start = 0usize;
        while start < data.len() {
            let end = (start + 65_536).min(data.len()) - 1;
            let resp = api
                .http
                .get(api.url(&path))
                .header("range", format!("bytes={start}-{end}"))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 206, "{id}");
            assert_eq!(
                resp.headers()["content-range"],
                format!("bytes {start}-{end}/{}", data.len()).as_str()
            );
            assert_eq!(resp.bytes().await.unwrap().to_vec(), &data[start..=end]);
            start = end + 1;
        }
        let index = world
            .object(job["artifacts"]["index"].as_str().unwrap())
            .await;
        let resp = api
            .http
            .get(api.url(&format!("/index/testdata/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.bytes().await.unwrap().to_vec(), index, "{id} index");
    }
    let launched = world.standin.calls("RunTask").len();
    assert_eq!(
        world.standin.tasks().len(),
        jobs.len(),
        "{launched} RunTask calls"
    );

    // Gosling's readers read the results through the API, as htslib reads them.
    check_bam(
        &api,
        "gstt1_sample.bam",
        &[("chr22", 24_376_180, 24_376_300)],
    )
    .await;
    check_bam(&api, "phix_unsorted.sam", &[("phix", 3000, 4000)]).await;
    check_tabix(&api, "htslib_index.vcf", &[("1", 10_000_000, 10_000_500)]).await;
    check_tabix(&api, "vega_x.gff3", &[("X", 2_930_000, 2_950_000)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_cold_gets_launch_one_task() {
    let world = EcsWorld::start().await;
    let api = world.start_api(&[]);
    api.register_testdata().await;
    let gets: Vec<_> = (0..100)
        .map(|_| {
            let (http, url) = (
                api.http.clone(),
                api.url("/data/testdata/ctcf_trackline.bed"),
            );
            tokio::spawn(async move { http.get(url).send().await.unwrap() })
        })
        .collect();
    let mut job_ids = BTreeSet::new();
    for g in gets {
        let resp = g.await.unwrap();
        assert_eq!(resp.status(), 202);
        job_ids.insert(
            resp.json::<Value>().await.unwrap()["job_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(job_ids.len(), 1, "one job for one file");
    let job_id = job_ids.pop_first().unwrap();
    let job = api.wait_job(&job_id, MINUTES).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(world.standin.tasks().len(), 1, "one task");
    assert_eq!(world.standin.calls("RunTask").len(), 1, "one RunTask");
    assert_eq!(api.metric("htsprep_workers_started_total").await, 1);
    let resp = api
        .http
        .get(api.url("/data/testdata/ctcf_trackline.bed"))
        .header("range", "bytes=0-1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), [0x1f, 0x8b], "BGZF");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_killed_mid_stage_is_replaced_and_its_job_completes() {
    let world = EcsWorld::start().await;
    let api = world.start_api(&[]);
    let body = std::fs::read(testdata().join("ctcf_trackline.bed")).unwrap();
    let slow = SlowServer::start(body.clone(), 30, Duration::from_millis(100));
    api.register(&http_row("victim", "BED", &slow.url("victim.bed"), &body))
        .await;
    let job_id = api.cold_get("/data/e2e/victim").await;
    let first = running_task(&api, &job_id).await;
    let killed_at = chrono::Utc::now();
    assert!(world.standin.signal(&first, Signal::SIGKILL));

    let job = api.wait_job(&job_id, MINUTES).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(job["attempt"], 2, "{job:#}");
    htsprep_tests::report_reclaim(&job, killed_at);
    let killed = world
        .wait_task(&first, MINUTES, "stopped", |t| t.last_status == "STOPPED")
        .await;
    assert_eq!(killed.exit_code, Some(137), "{killed:#?}");
    assert_eq!(
        killed.stopped_reason.as_deref(),
        Some("Essential container in task exited")
    );
    let tasks = world.tasks_for(&job_id);
    assert_eq!(tasks.len(), 2, "a new task for the new attempt: {tasks:#?}");
    assert_eq!(
        EcsStandIn::tag(&tasks[1], TAG_ATTEMPT).as_deref(),
        Some("2")
    );
    assert_ne!(job["worker"]["resource_id"], first.as_str());
    let resp = api
        .http
        .get(api.url("/data/e2e/victim"))
        .header("range", "bytes=0-15")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_task_turns_unhealthy_is_stopped_by_the_api_and_its_job_completes_elsewhere() {
    let world = EcsWorld::start().await;
    let api = world.start_api(&[("HTSPREP_STALE_AFTER_SECONDS", "60")]);
    let body = std::fs::read(testdata().join("ctcf_trackline.bed")).unwrap();
    let slow = SlowServer::start(body.clone(), 40, Duration::from_millis(100));
    api.register(&http_row("hung", "BED", &slow.url("hung.bed"), &body))
        .await;
    let job_id = api.cold_get("/data/e2e/hung").await;
    let first = running_task(&api, &job_id).await;
    world
        .wait_task(&first, MINUTES, "healthy", |t| {
            t.health.as_deref() == Some("HEALTHY")
        })
        .await;
    // The worker hangs: its health check times out, ECS marks it UNHEALTHY, the API stops it.
    assert!(world.standin.signal(&first, Signal::SIGSTOP));
    let stopped = world
        .wait_task(&first, MINUTES, "stopped", |t| t.last_status == "STOPPED")
        .await;
    assert_eq!(stopped.health.as_deref(), Some("UNHEALTHY"), "{stopped:#?}");
    assert_eq!(stopped.stop_code.as_deref(), Some("UserInitiated"));
    assert!(
        stopped
            .stopped_reason
            .as_deref()
            .is_some_and(|r| r.contains("health check")),
        "{stopped:#?}"
    );
    // A stopped process ignores SIGTERM: SIGKILL came after the stop timeout.
    assert_eq!(stopped.exit_code, Some(137));
    let stops = world.standin.calls("StopTask");
    assert_eq!(stops.len(), 1, "one StopTask");
    assert_eq!(stops[0].body["task"], first.as_str());

    let job = api.wait_job(&job_id, MINUTES).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_ne!(job["worker"]["resource_id"], first.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_lost_with_its_api_is_found_by_asking_ecs_and_its_job_completes() {
    let world = EcsWorld::start().await;
    // Staleness alone would take ten minutes.
    let settings = [
        ("HTSPREP_STALE_AFTER_SECONDS", "600"),
        ("HTSPREP_RECONCILE_SECONDS", "1"),
    ];
    let mut a = world.start_api(&settings);
    let b = world.start_api(&settings);
    let body = std::fs::read(testdata().join("ctcf_trackline.bed")).unwrap();
    let slow = SlowServer::start(body.clone(), 30, Duration::from_millis(100));
    a.register(&http_row("lost", "BED", &slow.url("lost.bed"), &body))
        .await;
    let job_id = a.cold_get("/data/e2e/lost").await;
    let first = running_task(&a, &job_id).await;
    // The API driving the job and the task running it die together.
    let killed_at = chrono::Utc::now();
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    assert!(world.standin.signal(&first, Signal::SIGKILL));

    let job = b.wait_job(&job_id, MINUTES).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(job["attempt"], 2, "{job:#}");
    let reason = htsprep_tests::rescheduled_reason(&job);
    assert!(
        reason.contains("stopped: Essential container in task exited (exit code 137)"),
        "the reason is ECS's: {reason}"
    );
    assert_ne!(job["worker"]["resource_id"], first.as_str());
    htsprep_tests::report_reclaim(&job, killed_at);
}

/// The warm pool on ECS: a task tagged `htsprep:warm` is started before any job, kept past its
/// idle timeout, and runs the first cold job without a task launched for it; let go, it stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_warm_task_runs_the_first_cold_job_without_a_launch_for_it() {
    let world = EcsWorld::start().await;
    let api = world.start_api(&[
        ("HTSPREP_MIN_IDLE_WORKERS", "1"),
        ("HTSPREP_WORKER_IDLE_SECONDS", "2"),
    ]);
    let deadline = tokio::time::Instant::now() + MINUTES;
    let warm = loop {
        let fleet = api.get_json("/fleet").await;
        if fleet["warm"]["idle"] == 1 {
            let tasks = world.standin.tasks();
            assert_eq!(tasks.len(), 1, "{tasks:#?}");
            assert_eq!(
                EcsStandIn::tag(&tasks[0], TAG_WARM).as_deref(),
                Some("true")
            );
            break tasks[0].arn.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "{fleet:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Past two idle timeouts it still runs: the pool keeps it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(world.standin.task(&warm).last_status, "RUNNING");

    api.register_testdata().await;
    let job_id = api.cold_get("/data/testdata/test.broadPeak").await;
    let job = api.wait_job(&job_id, MINUTES).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(job["worker"]["resource_id"], warm.as_str(), "{job:#}");
    assert!(
        world.tasks_for(&job_id).is_empty(),
        "no task was launched for the job"
    );

    htsprep_tests::run(
        std::process::Command::new(bin("htsprep-api"))
            .args(["fleet", "scale", "--min-idle", "0", "--api", &api.base])
            .env("HTSPREP_ADMIN_TOKEN", htsprep_tests::api::ADMIN),
    );
    world
        .wait_task(&warm, MINUTES, "stopped once let go", |t| {
            t.last_status == "STOPPED"
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_workers_stop_themselves_and_their_tasks_go_stopped() {
    let world = EcsWorld::start().await;
    let api = world.start_api(&[("HTSPREP_WORKER_IDLE_SECONDS", "2")]);
    api.register_testdata().await;
    let job_id = api.cold_get("/data/testdata/test.broadPeak").await;
    let job = api.wait_job(&job_id, MINUTES).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    let arn = job["worker"]["resource_id"].as_str().unwrap().to_owned();
    let task = world
        .wait_task(&arn, MINUTES, "stopped", |t| t.last_status == "STOPPED")
        .await;
    assert_eq!(task.exit_code, Some(0), "{task:#?}");
    assert_eq!(task.stop_code.as_deref(), Some("EssentialContainerExited"));
    // ECS lists it no more, and discovery drops it.
    let listed = world
        .ecs_client()
        .list_tasks()
        .cluster(htsprep_tests::ecs::CLUSTER)
        .send()
        .await
        .unwrap();
    assert!(listed.task_arns().is_empty(), "{listed:?}");
    let deadline = tokio::time::Instant::now() + MINUTES;
    while api.metric("htsprep_workers_available").await != 0 {
        assert!(tokio::time::Instant::now() < deadline, "still listed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The fleet view shows the stopped task and why ECS stopped it.
    let fleet = api.get_json("/fleet").await;
    assert_eq!(fleet["provider"], "ecs");
    let member = fleet["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == arn.as_str())
        .unwrap_or_else(|| panic!("{arn} in {fleet:#}"))
        .clone();
    assert_eq!(member["last_status"], "STOPPED", "{member:#}");
    assert_eq!(member["started_for"], job_id.as_str(), "{member:#}");
    let why = member["stopped_reason"].as_str().unwrap();
    assert!(
        why.contains("Essential container in task exited") && why.ends_with("(exit code 0)"),
        "{member:#}"
    );
    assert!(member["started_at"].is_string() && member["idle_since"].is_null());
    // A later request starts a new task.
    let resp = api
        .http
        .get(api.url("/data/testdata/test.broadPeak?wait=60"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "already prepared: served from S3");
    let next = api.cold_get("/data/testdata/ctcf_trackline.bed").await;
    assert_eq!(api.wait_job(&next, MINUTES).await["status"], "completed");
    assert_eq!(world.standin.tasks().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_worker_maximum_holds_under_a_burst_of_twenty_files() {
    let world = EcsWorld::start().await;
    let api = world.start_api(&[
        ("HTSPREP_MAX_WORKERS", "3"),
        ("HTSPREP_WORKER_JOBS", "2"),
        ("HTSPREP_STALE_AFTER_SECONDS", "120"),
        ("HTSPREP_QUEUE_DEADLINE_SECONDS", "600"),
    ]);
    let body = std::fs::read(testdata().join("test.broadPeak")).unwrap();
    let source = url::Url::from_file_path(testdata().join("test.broadPeak")).unwrap();
    let manifest: String = (0..20)
        .map(|i| {
            http_row(
                &format!("burst-{i:02}"),
                "broadPeak",
                source.as_str(),
                &body,
            )
        })
        .collect();
    api.register(&manifest).await;
    let mut jobs = Vec::new();
    for i in 0..20 {
        jobs.push(api.cold_get(&format!("/data/e2e/burst-{i:02}")).await);
    }
    let mut ran_on = BTreeSet::new();
    for job_id in &jobs {
        let job = api.wait_job(job_id, MINUTES).await;
        assert_eq!(job["status"], "completed", "{job:#}");
        ran_on.insert(job["worker"]["resource_id"].as_str().unwrap().to_owned());
    }
    let peak = world.standin.peak_active();
    assert!(peak <= 3, "at most 3 tasks at once, saw {peak}");
    let launched: BTreeSet<String> = world.standin.tasks().into_iter().map(|t| t.arn).collect();
    assert!(
        ran_on.is_subset(&launched),
        "every job ran on a task of this cluster: {ran_on:?} / {launched:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_outside_loopback_fails_its_job_without_being_dialed() {
    // Tasks run nothing here: the test moves the launched task to RUNNING and HEALTHY at an
    // address like the ones an emulator invents.
    let world = EcsWorld::without_agent().await;
    let api = world.start_api(&[]);
    api.register_testdata().await;
    let job_id = api.cold_get("/data/testdata/test.broadPeak").await;
    let deadline = tokio::time::Instant::now() + MINUTES;
    let arn = loop {
        if let Some(t) = world.tasks_for(&job_id).first() {
            break t.arn.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no task launched");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    world.standin.set_task_ip(&arn, "10.0.3.7");
    world.standin.set_task(&arn, "RUNNING", Some("HEALTHY"));
    let job = api.wait_job(&job_id, MINUTES).await;
    assert_eq!(job["status"], "failed", "{job:#}");
    let message = job["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("refused to dial 10.0.3.7:50051")
            && message.contains("HTSPREP_LOOPBACK_ONLY")
            && message.contains("no connection was attempted"),
        "{job:#}"
    );
    assert_eq!(
        job["attempt"], 1,
        "not retried: another attempt would be refused too"
    );
}

#[test]
fn incomplete_ecs_settings_are_all_reported_at_start() {
    let out = std::process::Command::new(bin("htsprep-api"))
        .arg("serve")
        .env("ECS_CLUSTER", "htsprep")
        .env("ECS_WORKER_ASSIGN_PUBLIC_IP", "sometimes")
        .env("AWS_ENDPOINT_URL_ECS", "ecs.local")
        .env_remove("MONGODB_URI")
        .env_remove("WORKFLOW_S3_BUCKET")
        .env_remove("HTSPREP_WORKER_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for var in [
        "ECS_WORKER_TASK_DEFINITION",
        "ECS_WORKER_SUBNETS",
        "ECS_WORKER_SECURITY_GROUPS",
        "ECS_WORKER_ASSIGN_PUBLIC_IP",
        "AWS_ENDPOINT_URL_ECS",
        "HTSPREP_WORKER_TOKEN",
        "WORKFLOW_S3_BUCKET",
        "MONGODB_URI",
    ] {
        assert!(err.contains(var), "{var} missing from:\n{err}");
    }
}

/// The fleet conformance suite against the stand-in, every worker a real process.
struct StandInHarness {
    world: OnceCell<EcsWorld>,
}

impl StandInHarness {
    fn new() -> Self {
        Self {
            world: OnceCell::new(),
        }
    }

    async fn world(&self) -> &EcsWorld {
        self.world.get_or_init(EcsWorld::start).await
    }
}

#[async_trait]
impl FleetHarness for StandInHarness {
    async fn fleet(&self, max_workers: usize) -> TestFleet {
        let world = self.world().await;
        let fleet = EcsFleet::new(
            world.ecs_client(),
            EcsFleetConfig {
                settings: world.fleet_settings(),
                max_workers,
                worker_env: htsprep_ecs_standin::env(&[
                    ("HTSPREP_WORKER_LISTEN", "0.0.0.0:50051"),
                    ("HTSPREP_WORKER_IDLE_TIMEOUT_SECONDS", "120"),
                ]),
                backoff_base: Duration::from_millis(200),
            },
        );
        fleet.start_polling();
        TestFleet::of(fleet)
    }

    async fn stop_worker(&self, worker: &WorkerInfo) {
        let world = self.world().await;
        world
            .ecs_client()
            .stop_task()
            .cluster(htsprep_tests::ecs::CLUSTER)
            .task(&worker.id)
            .send()
            .await
            .expect("StopTask");
        // The worker drains and exits on SIGTERM; the task stops.
        world
            .wait_task(&worker.id, MINUTES, "stopped", |t| {
                t.last_status == "STOPPED"
            })
            .await;
        assert_eq!(world.standin.task(&worker.id).exit_code, Some(0));
    }
}

mod standin_conformance {
    htsprep_api::fleet_conformance!(super::StandInHarness::new());
}
