//! The API process with `ECS_CLUSTER` set runs its workers as ECS tasks (the moto emulator),
//! with artifacts in S3 and jobs in MongoDB: a cold file gets 202 and exactly one Fargate task,
//! tagged with its job, however many clients ask. Bad ECS settings stop it at start-up.

use std::time::Duration;

use htsprep_api::fleet::ecs::TAG_JOB;
use htsprep_api::fleet::ecs::testing::MotoEcs;
use htsprep_shared::aws::testing::TestAws;
use htsprep_shared::mongo::testing::TestMongo;
use htsprep_tests::api::ApiProcess;
use htsprep_tests::{bin, testdata_manifest};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cold_file_launches_one_ecs_task_for_its_job() {
    let aws = TestAws::start().await;
    let mongo = TestMongo::start().await;
    let moto = MotoEcs::new(&aws).await;
    let s3 = aws.s3_client();
    let bucket = aws.fresh_bucket(&s3).await;
    let database = format!("ecse2e_{}", std::process::id());
    let mut env: Vec<(String, String)> = moto.vars();
    env.extend(
        [
            ("MONGODB_URI", mongo.uri.as_str()),
            ("MONGODB_DATABASE", &database),
            ("WORKFLOW_S3_BUCKET", &bucket),
            ("AWS_ENDPOINT_URL", &aws.endpoint),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("HTSPREP_WORKER_TOKEN", "ecs-e2e-token-0123456789"),
            ("HTSPREP_WORKER_WAIT_SECONDS", "300"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let api = ApiProcess::start(&env);
    let dir = tempfile::tempdir().unwrap();
    api.register(&testdata_manifest("testdata", &dir.path().join("m.jsonl")))
        .await;

    let gets: Vec<_> = (0..20)
        .map(|_| {
            let http = api.http.clone();
            let url = api.url("/data/testdata/ctcf_trackline.bed");
            tokio::spawn(async move { http.get(url).send().await.unwrap() })
        })
        .collect();
    let mut job_ids = std::collections::BTreeSet::new();
    for g in gets {
        let resp = g.await.unwrap();
        assert_eq!(resp.status(), 202);
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        let body: serde_json::Value = resp.json().await.unwrap();
        let job_id = body["job_id"].as_str().unwrap().to_owned();
        assert_eq!(location, format!("/jobs/{job_id}"));
        job_ids.insert(job_id);
    }
    assert_eq!(job_ids.len(), 1, "one job for one file");
    let job_id = job_ids.into_iter().next().unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let tasks = loop {
        let tasks = moto.running_tasks().await;
        if !tasks.is_empty() || tokio::time::Instant::now() > deadline {
            break tasks;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(tasks.len(), 1, "one task for one workflow");
    let job_tag = tasks[0]
        .tags()
        .iter()
        .find(|t| t.key() == Some(TAG_JOB))
        .and_then(|t| t.value());
    assert_eq!(job_tag, Some(job_id.as_str()));
    // The emulated task never answers gRPC: the job waits for a worker, and nothing else starts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(moto.running_tasks().await.len(), 1);
    assert_eq!(api.metric("htsprep_workers_started_total").await, 1);
    // Discovery lists it (the emulator reports no health, so the test does not require it).
    assert_eq!(api.metric("htsprep_workers_available").await, 1);
    let job = api.get_json(&format!("/jobs/{job_id}")).await;
    assert_eq!(job["status"], "pending", "{job:#}");
}

#[test]
fn incomplete_ecs_settings_are_all_reported_at_start() {
    let out = std::process::Command::new(bin("htsprep-api"))
        .arg("serve")
        .env("ECS_CLUSTER", "htsprep")
        .env("ECS_WORKER_ASSIGN_PUBLIC_IP", "sometimes")
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
        "HTSPREP_WORKER_TOKEN",
        "WORKFLOW_S3_BUCKET",
        "MONGODB_URI",
    ] {
        assert!(err.contains(var), "{var} missing from:\n{err}");
    }
}
