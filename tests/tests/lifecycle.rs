//! The job lifecycle with real processes: waiting for a worker costs no attempt, a replica's
//! queued jobs are taken over when it dies, a failure that another attempt cannot fix stands
//! until an operator retries it, operators cancel jobs, and a storm of requests for a file that
//! finishes quickly still makes one job.

use std::collections::BTreeSet;
use std::time::Duration;

use htsprep_tests::api::{ADMIN, ApiProcess};
use htsprep_tests::slow_http::SlowServer;
use htsprep_tests::{bin, http_row, testdata, testdata_manifest};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(120);

fn event_kinds(job: &Value) -> Vec<String> {
    job["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

/// A slow source (about ten seconds) registered as `e2e/slow`, and three small real files.
async fn slow_and_small(api: &ApiProcess) -> (SlowServer, [&'static str; 3]) {
    let body = std::fs::read(testdata().join("ctcf_trackline.bed")).unwrap();
    let slow = SlowServer::start(body.clone(), 40, Duration::from_millis(250));
    api.register(&http_row("slow", "BED", &slow.url("slow.bed"), &body))
        .await;
    let dir = tempfile::tempdir().unwrap();
    api.register(&testdata_manifest("testdata", &dir.path().join("m.jsonl")))
        .await;
    (slow, ["test.broadPeak", "vega_x.gff3", "htslib_index.vcf"])
}

const ONE_WORKER: [(&str, &str); 5] = [
    ("HTSPREP_MAX_WORKERS", "1"),
    ("HTSPREP_WORKER_JOBS", "1"),
    ("HTSPREP_STALE_AFTER_SECONDS", "6"),
    ("HTSPREP_HEARTBEAT_SECONDS", "1"),
    ("HTSPREP_RECONCILE_SECONDS", "1"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_queued_behind_a_busy_fleet_complete_on_their_first_attempt() {
    let api = ApiProcess::start(&ONE_WORKER);
    let (_slow, small) = slow_and_small(&api).await;
    let slow_job = api.cold_get("/data/e2e/slow").await;
    api.wait_running(&slow_job, LONG).await;
    let mut queued = Vec::new();
    for id in small {
        queued.push(api.cold_get(&format!("/data/testdata/{id}")).await);
    }
    // While they wait, they say since when and why.
    let job = api.get_json(&format!("/jobs/{}", queued[0])).await;
    assert_eq!(job["status"], "pending", "{job:#}");
    assert!(job["queued_since"].is_string(), "{job:#}");
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        // The oldest waits for the busy worker.
        let job = api.get_json(&format!("/jobs/{}", queued[0])).await;
        if job["waiting_for"]
            .as_str()
            .is_some_and(|why| why.contains("worker"))
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{job:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The youngest says how many wait ahead of it.
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let job = api.get_json(&format!("/jobs/{}", queued[2])).await;
        if job["waiting_for"]
            .as_str()
            .is_some_and(|w| w.contains("2 older job(s) ahead"))
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{job:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut started = Vec::new();
    for job_id in queued.iter().chain([&slow_job]) {
        let job = api.wait_job(job_id, LONG).await;
        assert_eq!(job["status"], "completed", "{job:#}");
        assert_eq!(job["attempt"], 1, "waiting cost no attempt: {job:#}");
        assert!(
            !event_kinds(&job).iter().any(|k| k == "rescheduled"),
            "{job:#}"
        );
        assert!(job["queued_since"].is_null() && job["waiting_for"].is_null());
        started.push(job["started_at"].as_str().unwrap().to_owned());
    }
    assert!(
        started[0] < started[1] && started[1] < started[2],
        "the queued jobs ran oldest first: {started:?}"
    );
}

async fn a_dead_replicas_queued_jobs_are_taken_over(extra: &[(&str, &str)]) {
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().to_str().unwrap();
    let mut env: Vec<(&str, &str)> = ONE_WORKER.to_vec();
    env.push(("HTSPREP_DATA_DIR", dir));
    env.extend_from_slice(extra);
    let mut a = ApiProcess::start(&env);
    let b = ApiProcess::start(&env);
    let (_slow, small) = slow_and_small(&a).await;
    let slow_job = a.cold_get("/data/e2e/slow").await;
    a.wait_running(&slow_job, LONG).await;
    let mut queued = Vec::new();
    for id in small {
        queued.push(a.cold_get(&format!("/data/testdata/{id}")).await);
    }
    a.child.kill().unwrap(); // SIGKILL
    a.child.wait().unwrap();
    for job_id in &queued {
        let job = b.wait_job(job_id, LONG).await;
        assert_eq!(job["status"], "completed", "{job:#}");
        assert_eq!(
            job["attempt"], 1,
            "taken over at no attempt's cost: {job:#}"
        );
        let kinds = event_kinds(&job);
        assert!(kinds.iter().any(|k| k == "taken_over"), "{job:#}");
        assert_eq!(
            kinds.iter().filter(|k| *k == "running").count(),
            1,
            "it ran once: {job:#}"
        );
    }
    let job = b.wait_job(&slow_job, LONG).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    stop_workers_using(shared.path());
}

/// Stops the worker processes a killed API left behind (they would stop when idle).
fn stop_workers_using(data_dir: &std::path::Path) {
    for pid in workers_using(data_dir) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

/// The worker processes on this host whose data directory is `data_dir`.
fn workers_using(data_dir: &std::path::Path) -> Vec<i32> {
    let needle = format!("HTSPREP_DATA_DIR={}", data_dir.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path().join("exe")).is_ok_and(|x| x.ends_with("htsprep-worker"))
                && std::fs::read(e.path().join("environ"))
                    .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == needle.as_bytes()))
        })
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_replicas_queued_jobs_are_taken_over_on_sqlite() {
    a_dead_replicas_queued_jobs_are_taken_over(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_replicas_queued_jobs_are_taken_over_on_mongodb() {
    let mongo = htsprep_shared::mongo::testing::TestMongo::start().await;
    let database = format!("takeover_{}", std::process::id());
    a_dead_replicas_queued_jobs_are_taken_over(&[
        ("MONGODB_URI", &mongo.uri),
        ("MONGODB_DATABASE", &database),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_lost_with_its_api_is_found_by_asking_the_fleet_and_its_job_completes() {
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().to_str().unwrap();
    // Staleness alone would take ten minutes.
    let env = [
        ("HTSPREP_DATA_DIR", dir),
        ("HTSPREP_STALE_AFTER_SECONDS", "600"),
        ("HTSPREP_RECONCILE_SECONDS", "1"),
    ];
    let mut a = ApiProcess::start(&env);
    let b = ApiProcess::start(&env);
    let body = std::fs::read(testdata().join("ctcf_trackline.bed")).unwrap();
    let slow = SlowServer::start(body.clone(), 40, Duration::from_millis(100));
    a.register(&http_row("lost", "BED", &slow.url("lost.bed"), &body))
        .await;
    let job_id = a.cold_get("/data/e2e/lost").await;
    let job = a.wait_running(&job_id, LONG).await;
    let worker = job["worker"]["resource_id"].as_str().unwrap().to_owned();
    let pid: i32 = worker.strip_prefix("pid-").unwrap().parse().unwrap();
    // The API driving the job and the worker running it die together.
    let killed_at = chrono::Utc::now();
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let job = b.wait_job(&job_id, LONG).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(job["attempt"], 2, "{job:#}");
    let reasons: Vec<&str> = job["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "rescheduled")
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        [format!("its worker process {worker} is gone").as_str()],
        "{job:#}"
    );
    htsprep_tests::report_reclaim(&job, killed_at);
    stop_workers_using(shared.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_api_adopts_the_workers_it_left_and_the_maximum_holds() {
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().to_str().unwrap();
    let env = [("HTSPREP_DATA_DIR", dir), ("HTSPREP_MAX_WORKERS", "1")];
    let mut a = ApiProcess::start(&env);
    let manifest = tempfile::tempdir().unwrap();
    a.register(&testdata_manifest(
        "testdata",
        &manifest.path().join("m.jsonl"),
    ))
    .await;
    let first = a.cold_get("/data/testdata/test.broadPeak").await;
    let job = a.wait_job(&first, LONG).await;
    assert_eq!(job["status"], "completed");
    let worker = job["worker"]["resource_id"].as_str().unwrap().to_owned();
    a.child.kill().unwrap(); // SIGKILL: its worker runs on
    a.child.wait().unwrap();
    assert_eq!(workers_using(shared.path()).len(), 1);

    let b = ApiProcess::start(&env);
    let second = b.cold_get("/data/testdata/ctcf_trackline.bed").await;
    let job = b.wait_job(&second, LONG).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(
        job["worker"]["resource_id"],
        worker.as_str(),
        "the adopted worker ran it"
    );
    assert_eq!(b.metric("htsprep_workers_started_total").await, 0);
    assert_eq!(b.metric("htsprep_workers_available").await, 1);
    assert_eq!(workers_using(shared.path()).len(), 1, "the maximum holds");
    drop(b); // stops its workers, the adopted one included
    let deadline = tokio::time::Instant::now() + LONG;
    while !workers_using(shared.path()).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the adopted worker was not stopped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broken_file_fails_once_and_its_failure_stands_until_retried() {
    let api = ApiProcess::start(&[]);
    let source = url::Url::from_file_path(testdata().join("test.broadPeak")).unwrap();
    let bad = format!(
        "{{\"dcc\":\"e2e\",\"local_id\":\"bad-md5\",\"md5\":\"00000000000000000000000000000000\",\"size\":0,\"format\":\"BED\",\"access_url\":\"{source}\"}}\n"
    );
    api.register(&bad).await;
    let mut failed_ids = BTreeSet::new();
    for path in [
        "/data/e2e/bad-md5?wait=30",
        "/data/e2e/bad-md5?wait=30",
        "/index/e2e/bad-md5?wait=30",
        "/data/e2e/bad-md5",
    ] {
        let resp = api.http.get(api.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 502, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["message"].as_str().unwrap().contains("md5 mismatch"),
            "{body}"
        );
        failed_ids.insert(body["job_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(failed_ids.len(), 1, "one job, one download: {failed_ids:?}");
    assert_eq!(api.metric("htsprep_jobs_created_total").await, 1);
    let first = failed_ids.pop_first().unwrap();

    // An operator retries it over HTTP: a new job starts at once (and fails the same way).
    let retry = |id: String| {
        api.http
            .post(api.url(&format!("/jobs/{id}/retry")))
            .bearer_auth(ADMIN)
            .send()
    };
    let unauthorized = api
        .http
        .post(api.url(&format!("/jobs/{first}/retry")))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    let resp = retry(first.clone()).await.unwrap();
    assert_eq!(resp.status(), 202);
    let second = resp.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(second, first);
    let job = api.wait_job(&second, LONG).await;
    assert_eq!(job["status"], "failed");
    let old = api.get_json(&format!("/jobs/{first}")).await;
    assert!(event_kinds(&old).iter().any(|k| k == "retry_requested"));
    // Or with the command: the next request prepares it again.
    let out = std::process::Command::new(bin("htsprep-api"))
        .args(["jobs", "retry", &second])
        .env("HTSPREP_DATA_DIR", api.data_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let third = api.cold_get("/data/e2e/bad-md5").await;
    assert!(third != first && third != second);
    assert_eq!(api.metric("htsprep_jobs_created_total").await, 3);
    // Only a failed job can be retried.
    api.wait_job(&third, LONG).await;
    let dir = tempfile::tempdir().unwrap();
    api.register(&testdata_manifest("testdata", &dir.path().join("m.jsonl")))
        .await;
    let good = api.cold_get("/data/testdata/test.broadPeak").await;
    assert_eq!(api.wait_job(&good, LONG).await["status"], "completed");
    let resp = retry(good).await.unwrap();
    assert_eq!(resp.status(), 409);
}

/// A failed file that has since been registered with its own index is served from its source:
/// retrying its failed job prepares nothing and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retrying_a_file_now_served_from_its_source_is_refused_and_starts_nothing() {
    let api = ApiProcess::start(&[]);
    let source = url::Url::from_file_path(testdata().join("test.broadPeak")).unwrap();
    let record = |sidecars: &str| {
        format!(
            "{{\"dcc\":\"e2e\",\"local_id\":\"indexed-later\",\"md5\":\"00000000000000000000000000000000\",\"size\":0,\"format\":\"BED\",\"access_url\":\"{source}\"{sidecars}}}\n"
        )
    };
    api.register(&record("")).await;
    let resp = api
        .http
        .get(api.url("/data/e2e/indexed-later?wait=30"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    let failed = resp.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The catalog maintainer registers it again, now with the index its source comes with.
    let report = api
        .register(&record(&format!(
            ",\"sidecars\":{{\"tbi\":\"{source}.tbi\"}}"
        )))
        .await;
    assert_eq!(report["updated"], 1, "{report}");

    let resp = api
        .http
        .post(api.url(&format!("/jobs/{failed}/retry")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("e2e/indexed-later is served from its source: nothing to prepare"),
        "{body}"
    );
    assert_eq!(
        api.metric("htsprep_jobs_created_total").await,
        1,
        "no job for a file with nothing to prepare"
    );
    let job = api.get_json(&format!("/jobs/{failed}")).await;
    assert_eq!(job["status"], "failed", "{job:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_cancels_a_running_job_and_the_next_request_starts_again() {
    let api = ApiProcess::start(&[("HTSPREP_HEARTBEAT_SECONDS", "1")]);
    let body = std::fs::read(testdata().join("ctcf_trackline.bed")).unwrap();
    let slow = SlowServer::start(body.clone(), 40, Duration::from_millis(250));
    api.register(&http_row("slow", "BED", &slow.url("slow.bed"), &body))
        .await;
    let job_id = api.cold_get("/data/e2e/slow").await;
    api.wait_running(&job_id, LONG).await;
    let cancel = |auth: bool| {
        let req = api.http.post(api.url(&format!("/jobs/{job_id}/cancel")));
        if auth { req.bearer_auth(ADMIN) } else { req }.send()
    };
    assert_eq!(cancel(false).await.unwrap().status(), 401);
    let resp = cancel(true).await.unwrap();
    assert_eq!(resp.status(), 200);
    let job: Value = resp.json().await.unwrap();
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"]["message"], "cancelled by an operator");
    assert_eq!(cancel(true).await.unwrap().status(), 409, "already ended");
    // The worker notices at its next heartbeat, stops the job and removes its work directory
    // long before the download could have finished; nothing is published.
    let work = api.data_dir().join("work");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while std::fs::read_dir(&work).is_ok_and(|mut d| d.next().is_some()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the job kept running"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let job = api.get_json(&format!("/jobs/{job_id}")).await;
    assert_eq!(job["status"], "failed");
    assert!(job["artifacts"].as_object().unwrap().is_empty(), "{job:#}");
    // A cancel is no verdict on the file.
    let next = api.cold_get("/data/e2e/slow").await;
    assert_ne!(next, job_id);
    assert_eq!(api.wait_job(&next, LONG).await["status"], "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn storms_for_files_that_finish_quickly_make_one_job_each_on_mongodb() {
    let mongo = htsprep_shared::mongo::testing::TestMongo::start().await;
    let database = format!("storm_{}", std::process::id());
    storms(&ApiProcess::start(&[
        ("MONGODB_URI", &mongo.uri),
        ("MONGODB_DATABASE", &database),
    ]))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn storms_for_files_that_finish_quickly_make_one_job_each_on_sqlite() {
    storms(&ApiProcess::start(&[])).await;
}

/// 200 concurrent cold GETs for each of three small files, one file after the other.
async fn storms(api: &ApiProcess) {
    let dir = tempfile::tempdir().unwrap();
    api.register(&testdata_manifest("testdata", &dir.path().join("m.jsonl")))
        .await;
    for (round, id) in ["test.broadPeak", "ctcf_trackline.bed", "vega_x.gff3"]
        .into_iter()
        .enumerate()
    {
        let gets: Vec<_> = (0..200)
            .map(|_| {
                let (http, url) = (api.http.clone(), api.url(&format!("/data/testdata/{id}")));
                tokio::spawn(async move { http.get(url).send().await.unwrap().status().as_u16() })
            })
            .collect();
        let mut statuses = Vec::new();
        for g in gets {
            statuses.push(g.await.unwrap());
        }
        assert!(
            statuses.iter().all(|s| *s == 202 || *s == 200),
            "{id}: every answer is 202 (being prepared) or 200 (ready): {statuses:?}"
        );
        assert_eq!(
            api.metric("htsprep_jobs_created_total").await,
            round as u64 + 1,
            "{id}: one job"
        );
        let resp = api
            .http
            .get(api.url(&format!("/data/testdata/{id}?wait=60")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn progress_reaches_the_job_as_it_happens_not_at_the_next_heartbeat() {
    // Heartbeats every 30 s; the download takes about 5 s.
    let api = ApiProcess::start(&[
        ("HTSPREP_HEARTBEAT_SECONDS", "30"),
        ("HTSPREP_STALE_AFTER_SECONDS", "120"),
    ]);
    let body = std::fs::read(testdata().join("ctcf_trackline.bed")).unwrap();
    let slow = SlowServer::start(body.clone(), 20, Duration::from_millis(250));
    api.register(&http_row("slow", "BED", &slow.url("slow.bed"), &body))
        .await;
    let job_id = api.cold_get("/data/e2e/slow").await;
    let mut seen = BTreeSet::new();
    loop {
        let job = api.get_json(&format!("/jobs/{job_id}")).await;
        if job["status"] == "completed" {
            break;
        }
        assert_ne!(job["status"], "failed", "{job:#}");
        if let Some(stage) = job["progress"]["stage"].as_str() {
            seen.insert(format!("{stage} {}", job["progress"]["fraction"]));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fetch = seen.iter().filter(|s| s.starts_with("fetch")).count();
    assert!(
        fetch >= 3,
        "the download's progress was seen moving, not only at heartbeats: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_waiting_past_the_queue_deadline_fails_saying_what_it_waited_for() {
    let mut env = ONE_WORKER.to_vec();
    env.push(("HTSPREP_QUEUE_DEADLINE_SECONDS", "2"));
    let api = ApiProcess::start(&env);
    let (_slow, small) = slow_and_small(&api).await;
    let slow_job = api.cold_get("/data/e2e/slow").await;
    api.wait_running(&slow_job, LONG).await;
    let queued = api.cold_get(&format!("/data/testdata/{}", small[0])).await;
    let job = api.wait_job(&queued, LONG).await;
    assert_eq!(job["status"], "failed", "{job:#}");
    assert_eq!(job["attempt"], 1, "waiting cost no attempt");
    let message = job["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("queue deadline of 2s") && message.contains("worker"),
        "{message}"
    );
    assert_eq!(
        job["error"]["retryable"], true,
        "a capacity failure does not stand"
    );
    // The running job was not disturbed, and the file can be asked for again.
    assert_eq!(api.wait_job(&slow_job, LONG).await["status"], "completed");
    let again = api.cold_get(&format!("/data/testdata/{}", small[0])).await;
    assert_ne!(again, queued);
    assert_eq!(api.wait_job(&again, LONG).await["status"], "completed");
}

/// `htsprep-api jobs watch ID` follows a job to its end: the timeline as it happens, and the
/// outcome as the exit status (0 completed, 1 failed, with the reason).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_watch_follows_a_job_to_its_end_and_exits_with_its_outcome() {
    let api = ApiProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    api.register(&testdata_manifest("testdata", &dir.path().join("m.jsonl")))
        .await;
    let source = url::Url::from_file_path(testdata().join("test.broadPeak")).unwrap();
    api.register(&format!(
        "{{\"dcc\":\"e2e\",\"local_id\":\"bad-md5\",\"md5\":\"00000000000000000000000000000000\",\"size\":0,\"format\":\"BED\",\"access_url\":\"{source}\"}}\n"
    ))
    .await;
    let watch = |id: &str| {
        std::process::Command::new(bin("htsprep-api"))
            .args(["jobs", "watch", id, "--every-ms", "50"])
            .env("HTSPREP_DATA_DIR", api.data_dir())
            .output()
            .unwrap()
    };

    let good = api.cold_get("/data/testdata/phix_unsorted.sam").await;
    let out = watch(&good);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let at = |what: &str| {
        lines
            .iter()
            .position(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no {what:?} in\n{stdout}"))
    };
    assert!(at("claimed") < at("running on 127.0.0.1:"));
    assert!(at("running on") < at("sort finished in"));
    assert!(at("sort finished in") < at("index finished in"));
    assert_eq!(at("completed"), lines.len() - 1, "{stdout}");
    let job = api.get_json(&format!("/jobs/{good}")).await;
    assert_eq!(job["status"], "completed");
    assert_eq!(
        lines.len(),
        job["events"].as_array().unwrap().len(),
        "every event, once"
    );

    let bad = api.cold_get("/data/e2e/bad-md5").await;
    let out = watch(&bad);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("failed: "));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("md5 mismatch"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = watch("0199a8f2-0000-7000-8000-000000000000");
    assert_ne!(out.status.code(), Some(0));
    assert!(!out.stderr.is_empty());
}

/// `htsprep-api prepare` readies a catalog through the running API ahead of its users: only
/// the files asked for, one job each, a summary with the failures' reasons, and a second run
/// that finds everything ready and starts nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prepare_readies_the_catalog_ahead_of_users_and_a_second_run_starts_nothing() {
    let api = ApiProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = testdata_manifest("testdata", &dir.path().join("m.jsonl"));
    api.register(&manifest).await;
    let source = url::Url::from_file_path(testdata().join("test.broadPeak")).unwrap();
    api.register(&format!(
        "{{\"dcc\":\"e2e\",\"local_id\":\"bad-md5\",\"md5\":\"00000000000000000000000000000000\",\"size\":0,\"format\":\"BED\",\"access_url\":\"{source}\"}}\n"
    ))
    .await;
    let prepare = |args: &[&str]| {
        let out = std::process::Command::new(bin("htsprep-api"))
            .arg("prepare")
            .args(args)
            .args(["--api", &api.base])
            .env("HTSPREP_DATA_DIR", api.data_dir())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code(), stdout)
    };
    let ids: Vec<String> = manifest
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["local_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut ready_before = 0;
    for id in &ids {
        let s = api.get_json(&format!("/data/testdata/{id}/status")).await;
        ready_before += usize::from(s["ready"] == true); // served as they are (bigWig, ...)
    }
    let to_prepare = ids.len() - ready_before;
    assert!(to_prepare >= 6, "{ids:?}");

    // One format first: only the VCF.
    let (code, out) = prepare(&["--dcc", "testdata", "--format", "vcf", "--parallel", "2"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out.trim(), "prepared 1, already ready 0, failed 0");
    assert_eq!(api.metric("htsprep_jobs_created_total").await, 1);

    let (code, out) = prepare(&["--dcc", "testdata", "--parallel", "3"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        out.trim(),
        format!(
            "prepared {}, already ready {}, failed 0",
            to_prepare - 1,
            ready_before + 1
        )
    );
    for id in &ids {
        let s = api.get_json(&format!("/data/testdata/{id}/status")).await;
        assert_eq!(s["ready"], true, "{id}: {s}");
    }
    let jobs = api.metric("htsprep_jobs_created_total").await;
    assert_eq!(jobs, to_prepare as u64, "one job per file");

    let (code, out) = prepare(&["--dcc", "testdata"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        out.trim(),
        format!("prepared 0, already ready {}, failed 0", ids.len())
    );
    assert_eq!(api.metric("htsprep_jobs_created_total").await, jobs);

    // A file that cannot be prepared: the summary says why, and the exit status is 1.
    let (code, out) = prepare(&["--dcc", "e2e"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.starts_with("prepared 0, already ready 0, failed 1\n"),
        "{out}"
    );
    assert!(
        out.contains("failed: e2e/bad-md5: HTTP 502: ") && out.contains("md5 mismatch"),
        "{out}"
    );

    // No API at the address: a clear error, nothing started.
    let out = std::process::Command::new(bin("htsprep-api"))
        .args(["prepare", "--api", "http://127.0.0.1:9"])
        .env("HTSPREP_DATA_DIR", api.data_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no htsprep API answers at http://127.0.0.1:9"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The dashboard at `/ui` in headless Chromium: with the admin token it shows the counters, the
/// fleet, the jobs (filtered as asked) and a job's timeline with stage durations. The
/// screenshot is kept as a test output (`target/tmp/dashboard.png`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_jobs_a_timeline_the_fleet_and_the_counters() {
    let api = ApiProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    api.register(&testdata_manifest("testdata", &dir.path().join("m.jsonl")))
        .await;
    let job = api.cold_get("/data/testdata/phix_unsorted.sam").await;
    assert_eq!(api.wait_job(&job, LONG).await["status"], "completed");

    let page = api.http.get(api.url("/ui")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("connect-src 'self'")
    );

    let browser = htsprep_tests::repo_root().join("tests/browser");
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let out = std::process::Command::new("node")
        .arg(browser.join("ui.mjs"))
        .arg(&api.base)
        .arg(ADMIN)
        .arg(&shot)
        .current_dir(&browser)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ui.mjs: {log}");
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["error"], "", "{shown:#}");
    let rows = |k: &str| shown[k].as_array().unwrap().clone();
    assert!(
        rows("counters")
            .iter()
            .any(|r| r[0] == "htsprep_jobs_created_total" && r[1] == "1"),
        "{shown:#}"
    );
    let worker = api.get_json(&format!("/jobs/{job}")).await["worker"]["resource_id"].clone();
    assert!(rows("fleet").iter().any(|r| r[0] == worker), "{shown:#}");
    let jobs = rows("jobs");
    assert_eq!(jobs.len(), 1, "{shown:#}");
    assert_eq!(
        (&jobs[0][0], &jobs[0][1], &jobs[0][2]),
        (
            &Value::from(job.as_str()),
            &"testdata/phix_unsorted.sam".into(),
            &"completed".into()
        )
    );
    let timeline = rows("timeline");
    let stages: Vec<&str> = timeline
        .iter()
        .filter(|r| r[2] == "stage_finished")
        .map(|r| r[3].as_str().unwrap())
        .collect();
    assert!(
        stages.contains(&"sort") && stages.contains(&"index"),
        "{shown:#}"
    );
    assert!(
        rows("timeline")
            .iter()
            .filter(|r| r[2] == "stage_finished")
            .all(|r| r[4].as_str().unwrap().ends_with(" s")),
        "every finished stage shows its duration: {shown:#}"
    );
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
}
