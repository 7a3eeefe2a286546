//! The product's main job, end to end: the API process with its local fleet of worker processes
//! turns every real test file into served, indexed artifacts.

use std::time::Duration;

use htsprep_tests::api::ApiProcess;
use htsprep_tests::slow_http::SlowServer;
use htsprep_tests::{http_row, testdata, testdata_manifest};

async fn get(api: &ApiProcess, path: &str, range: Option<&str>) -> reqwest::Response {
    let mut req = api.http.get(api.url(path));
    if let Some(r) = range {
        req = req.header("range", r);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_real_file_goes_from_cold_to_served() {
    cold_to_served(&ApiProcess::start(&[])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_real_file_goes_from_cold_to_served_with_mongodb() {
    let mongo = htsprep_shared::mongo::testing::TestMongo::start().await;
    let database = format!("e2e_{}", std::process::id());
    let api = ApiProcess::start(&[("MONGODB_URI", &mongo.uri), ("MONGODB_DATABASE", &database)]);
    cold_to_served(&api).await;
    // The jobs are in MongoDB, not in the embedded store.
    assert!(!api.data_dir().join("htsprep.db").exists());
    let listed = api
        .http
        .get(api.url("/jobs?status=completed&limit=100"))
        .bearer_auth(htsprep_tests::api::ADMIN)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert!(listed["jobs"].as_array().unwrap().len() >= 9);
}

async fn cold_to_served(api: &ApiProcess) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = testdata_manifest("testdata", &dir.path().join("m.jsonl"));
    let report = api.register(&manifest).await;
    assert!(
        report["rejected"].as_array().unwrap().is_empty(),
        "{report}"
    );

    let files: Vec<serde_json::Value> = manifest
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Start them all cold at once: the fleet grows to its maximum and works through them.
    let mut pending = Vec::new();
    for f in &files {
        let id = f["local_id"].as_str().unwrap().to_owned();
        let path = format!("/data/testdata/{id}");
        let source = std::fs::read(testdata().join(&id)).unwrap();
        if matches!(f["format"].as_str().unwrap(), "bigWig" | "TSV") {
            // Passthrough: served from the source at once, no job.
            let resp = get(api, &path, None).await;
            assert_eq!(resp.status(), 200, "{id}");
            assert_eq!(resp.bytes().await.unwrap().to_vec(), source, "{id}");
            continue;
        }
        let head = api.http.head(api.url(&path)).send().await.unwrap();
        assert_eq!(head.status(), 404, "{id}: HEAD on a cold file");
        let status = api.get_json(&format!("{path}/status")).await;
        assert_eq!(status["ready"], false, "{id}");
        assert!(status["job"].is_null(), "{id}: HEAD started no job");

        let resp = get(api, &path, None).await;
        assert_eq!(resp.status(), 202, "{id}");
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        assert!(resp.headers().contains_key("retry-after"));
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["location"], location.as_str());
        pending.push((id, body["job_id"].as_str().unwrap().to_owned()));
    }
    assert!(pending.len() >= 9, "every processed format is exercised");

    for (id, job_id) in pending {
        let job = api.wait_job(&job_id, Duration::from_secs(180)).await;
        assert_eq!(job["status"], "completed", "{id}: {job:#}");
        assert_eq!(job["worker"]["provider"], "local");
        assert!(
            job["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "stage_finished")
        );
        let data_key = job["artifacts"]["data"].as_str().unwrap();
        let index_key = job["artifacts"]["index"].as_str().unwrap();
        let data = std::fs::read(api.artifact_path(data_key)).unwrap();
        let index = std::fs::read(api.artifact_path(index_key)).unwrap();

        // Range reads return the artifact's exact bytes, in 64 KiB steps and at the edges.
        let path = format!("/data/testdata/{id}");
        let mut start = 0usize;
        while start < data.len() {
            let end = (start + 65_536).min(data.len()) - 1;
            let resp = get(api, &path, Some(&format!("bytes={start}-{end}"))).await;
            assert_eq!(resp.status(), 206, "{id}");
            assert_eq!(
                resp.headers()["content-range"],
                format!("bytes {start}-{end}/{}", data.len()).as_str()
            );
            assert_eq!(
                resp.bytes().await.unwrap().to_vec(),
                &data[start..=end],
                "{id} {start}-{end}"
            );
            start = end + 1;
        }
        let resp = get(api, &path, Some("bytes=-10")).await;
        assert_eq!(
            resp.bytes().await.unwrap().to_vec(),
            &data[data.len() - 10..]
        );
        let resp = get(api, &path, Some(&format!("bytes={}-", data.len()))).await;
        assert_eq!(resp.status(), 416);
        assert_eq!(
            resp.headers()["content-range"],
            format!("bytes */{}", data.len()).as_str()
        );

        let resp = get(api, &format!("/index/testdata/{id}"), None).await;
        assert_eq!(resp.status(), 200, "{id}");
        assert_eq!(resp.bytes().await.unwrap().to_vec(), index, "{id} index");
        let status = api.get_json(&format!("{path}/status")).await;
        assert_eq!(status["ready"], true, "{id}");
    }
    assert!(
        std::fs::read_dir(api.staging()).unwrap().next().is_none(),
        "nothing half-published"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wait_serves_the_bytes_directly() {
    let api = ApiProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = testdata_manifest("testdata", &dir.path().join("m.jsonl"));
    api.register(&manifest).await;
    let resp = get(
        &api,
        "/data/testdata/test.broadPeak?wait=120",
        Some("bytes=0-99"),
    )
    .await;
    assert_eq!(resp.status(), 206);
    let range = resp.headers()["content-range"].to_str().unwrap().to_owned();
    let body = resp.bytes().await.unwrap();
    assert_eq!(body.len(), 100);
    let status = api.get_json("/data/testdata/test.broadPeak/status").await;
    assert_eq!(status["ready"], true);
    assert!(range.starts_with("bytes 0-99/"));
    // A source that cannot be prepared answers with the reason instead of bytes.
    let bad = format!(
        "{{\"dcc\":\"e2e\",\"local_id\":\"bad-md5\",\"md5\":\"00000000000000000000000000000000\",\"size\":0,\"format\":\"BED\",\"access_url\":\"{}\"}}\n",
        url::Url::from_file_path(testdata().join("test.broadPeak")).unwrap()
    );
    api.register(&bad).await;
    let resp = get(&api, "/data/e2e/bad-md5?wait=120", None).await;
    assert_eq!(resp.status(), 502);
    let err: serde_json::Value = resp.json().await.unwrap();
    assert!(
        err["message"].as_str().unwrap().contains("md5 mismatch"),
        "{err}"
    );
    assert!(err["location"].as_str().unwrap().starts_with("/jobs/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_cold_gets_make_one_job() {
    let api = ApiProcess::start(&[]);
    let body = std::fs::read(testdata().join("ctcf_trackline.bed")).unwrap();
    // About 6 s to download: every request arrives while the job runs.
    let slow = SlowServer::start(body.clone(), 60, Duration::from_millis(100));
    api.register(&http_row("burst", "BED", &slow.url("burst.bed"), &body))
        .await;

    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let client = api.http.clone();
            let url = api.url("/data/e2e/burst");
            tokio::spawn(async move {
                let resp = client.get(url).send().await.unwrap();
                let status = resp.status().as_u16();
                let body: serde_json::Value = resp.json().await.unwrap();
                (
                    status,
                    body["job_id"].as_str().unwrap_or_default().to_owned(),
                )
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert!(
        answers.iter().all(|(s, _)| *s == 202),
        "{:?}",
        answers.iter().find(|(s, _)| *s != 202)
    );
    let first = answers[0].1.clone();
    assert!(!first.is_empty());
    assert!(
        answers.iter().all(|(_, id)| *id == first),
        "every answer names the same job"
    );
    assert_eq!(api.metric("htsprep_jobs_created_total").await, 1);
    let job = api.wait_job(&first, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(
        api.metric("htsprep_workers_started_total").await,
        1,
        "one provision"
    );
    assert_eq!(
        slow.requests.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the source was fetched once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_worker_mid_job_is_recovered() {
    let api = ApiProcess::start(&[]);
    let body = std::fs::read(testdata().join("ctcf_trackline.bed")).unwrap();
    let slow = SlowServer::start(body.clone(), 30, Duration::from_millis(100));
    api.register(&http_row("victim", "BED", &slow.url("victim.bed"), &body))
        .await;

    let resp = get(&api, "/data/e2e/victim", None).await;
    assert_eq!(resp.status(), 202);
    let job_id = resp.json::<serde_json::Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Wait until a worker runs it, then kill that worker outright.
    let pid = loop {
        let job = api.get_json(&format!("/jobs/{job_id}")).await;
        if job["status"] == "running" {
            let rid = job["worker"]["resource_id"].as_str().unwrap().to_owned();
            break rid.strip_prefix("pid-").unwrap().parse::<i32>().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let job = api.get_json(&format!("/jobs/{job_id}")).await;
    let published = job["artifacts"].as_object().unwrap();
    assert!(
        published.is_empty(),
        "nothing was published before the kill: {published:?}"
    );

    let job = api.wait_job(&job_id, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(job["attempt"], 2, "retried once");
    let reason = htsprep_tests::rescheduled_reason(&job);
    assert!(reason.contains("worker"), "{reason}");
    assert!(
        std::fs::read_dir(api.staging()).unwrap().next().is_none(),
        "no partial artifact"
    );
    // The next GET is served.
    let resp = get(&api, "/data/e2e/victim?wait=60", Some("bytes=0-15")).await;
    assert_eq!(resp.status(), 206);
}
