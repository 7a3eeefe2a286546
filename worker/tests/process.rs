//! The worker as a process: health, a job over gRPC, the concurrency bound, the token, drain on
//! SIGTERM, and idle self-shutdown.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/http.rs"]
mod http;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use harness::{md5_of, repo_testdata};
use htsprep_proto::v1 as pb;
use htsprep_proto::v1::worker_client::WorkerClient;
use htsprep_shared::SystemClock;
use htsprep_shared::domain::{ArtifactKind, Format, Ident, JobId, JobStatus, Md5, cache_key};
use htsprep_shared::jobstore::{ClaimRequest, JobStore, JobStoreExt, SqliteJobStore};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const TOKEN: &str = "test-token-0123456789";

struct Worker {
    child: Child,
    grpc: String,
    health: String,
    data: tempfile::TempDir,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[(&str, &str)]) -> Worker {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_htsprep-worker"));
    cmd.env("HTSPREP_DATA_DIR", data.path())
        .env("HTSPREP_WORKER_LISTEN", "127.0.0.1:0")
        .env("HTSPREP_WORKER_HEALTH_LISTEN", "127.0.0.1:0")
        .env("HTSPREP_HEARTBEAT_SECONDS", "1")
        .env("HTSPREP_WORKER_TOKEN", TOKEN)
        .env("HTSPREP_FILE_ROOTS", repo_testdata(""))
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start htsprep-worker");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let grpc = line
        .split("grpc=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect(&line)
        .to_owned();
    let health = line
        .split("health=")
        .nth(1)
        .map(str::trim)
        .expect(&line)
        .to_owned();
    Worker {
        child,
        grpc,
        health,
        data,
    }
}

async fn health_status(w: &Worker) -> Option<u16> {
    reqwest::get(format!("http://{}/health", w.health))
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

async fn client(w: &Worker) -> WorkerClient<tonic::transport::Channel> {
    WorkerClient::connect(format!("http://{}", w.grpc))
        .await
        .unwrap()
}

fn authed<T>(msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    req
}

/// Claims a job in the worker's own job store and builds its request.
async fn job_request(
    data: &Path,
    local_id: &str,
    url: &str,
    md5: Md5,
) -> (pb::RunJobRequest, Arc<dyn JobStore>, JobId) {
    let store: Arc<dyn JobStore> = Arc::new(
        SqliteJobStore::open(&data.join("htsprep.db"), Arc::new(SystemClock))
            .await
            .unwrap(),
    );
    let dcc = Ident::parse("test").unwrap();
    let local = Ident::parse(local_id).unwrap();
    let format = Format::Bed;
    let processor = format.processor();
    let claim = store
        .claim(&ClaimRequest {
            workflow_key: format!("test/{local_id}/{md5}/v1"),
            dcc: dcc.clone(),
            local_id: local.clone(),
            policy: htsprep_shared::jobstore::JobPolicy {
                stale_after: Duration::from_secs(60),
                max_attempts: 3,
            },
            driver: None,
        })
        .await
        .unwrap();
    let artifacts = [ArtifactKind::Data, ArtifactKind::Index]
        .into_iter()
        .map(|k| pb::ArtifactTarget {
            kind: k.name().into(),
            key: cache_key(&dcc, &local, k, processor, &md5),
        })
        .collect();
    let req = pb::RunJobRequest {
        job_id: claim.job.job_id.to_string(),
        lease: claim.job.lease.as_str().to_owned(),
        attempt: 1,
        source: Some(pb::Source {
            dcc: "test".into(),
            local_id: local_id.into(),
            url: url.into(),
            expected_md5: md5.to_string(),
            expected_size: 0,
            format: "BED".into(),
        }),
        processor: processor.name().into(),
        processor_version: processor.version(),
        artifacts,
        caps: Some(pb::ResourceCaps {
            sort_memory_bytes: 64 << 20,
            samtools_sort_memory_bytes: 64 << 20,
            threads: 1,
            duration_cap_seconds: 60,
        }),
    };
    (req, store, claim.job.job_id)
}

async fn collect(stream: &mut tonic::Streaming<pb::JobUpdate>) -> Vec<pb::job_update::Update> {
    let mut out = Vec::new();
    while let Some(u) = stream.message().await.unwrap() {
        out.push(u.update.unwrap());
    }
    out
}

/// Runs the CTCF BED file as a job on the worker; returns its updates, the store and the job.
async fn run_bed_job(w: &Worker) -> (Vec<pb::job_update::Update>, Arc<dyn JobStore>, JobId) {
    let path = repo_testdata("ctcf_trackline.bed");
    let url = url::Url::from_file_path(&path).unwrap().to_string();
    let (req, store, job_id) = job_request(w.data.path(), "ctcf", &url, md5_of(&path)).await;
    let mut stream = client(w)
        .await
        .run_job(authed(req))
        .await
        .unwrap()
        .into_inner();
    (collect(&mut stream).await, store, job_id)
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_a_job_over_grpc_and_reports_health() {
    let w = start(&[]);
    assert_eq!(health_status(&w).await, Some(200));
    let status = Command::new(env!("CARGO_BIN_EXE_htsprep-worker"))
        .arg("healthcheck")
        .env("HTSPREP_WORKER_HEALTH_LISTEN", &w.health)
        .status()
        .unwrap();
    assert!(status.success(), "the healthcheck subcommand agrees");

    let (updates, store, job_id) = run_bed_job(&w).await;
    assert!(
        matches!(updates.first(), Some(pb::job_update::Update::Accepted(_))),
        "{updates:?}"
    );
    let Some(pb::job_update::Update::Completed(done)) = updates.last() else {
        panic!("expected completion, got {updates:?}");
    };
    assert_eq!(done.artifacts.len(), 2);
    assert!(updates.iter().any(
        |u| matches!(u, pb::job_update::Update::StageStarted(s) if s.stage == "clean-sort-bgzip")
    ));

    let job = store.get(&job_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    let worker = job.worker.expect("the job names its worker");
    assert_eq!(worker.address, w.grpc);
    assert_eq!(worker.provider, "local");
    // The real worker binary runs its own stage tool: the TBI came with the compression.
    assert!(
        job.events.iter().any(|e| matches!(
            &e.kind,
            htsprep_shared::domain::EventKind::StageSkipped { stage, .. } if stage == "index"
        )),
        "{:?}",
        job.events
    );
    for a in &done.artifacts {
        assert!(
            w.data
                .path()
                .join("artifacts/objects")
                .join(&a.key)
                .is_file(),
            "{} published",
            a.key
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_calls_without_the_token_and_bad_requests() {
    let w = start(&[]);
    let path = repo_testdata("test.broadPeak");
    let url = url::Url::from_file_path(&path).unwrap().to_string();
    let (req, _, _) = job_request(w.data.path(), "peaks", &url, md5_of(&path)).await;

    let err = client(&w)
        .await
        .run_job(tonic::Request::new(req.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);

    let mut bad = req.clone();
    bad.source.as_mut().unwrap().local_id = "../../etc".into();
    let err = client(&w).await.run_job(authed(bad)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("source.local_id"),
        "{}",
        err.message()
    );

    let mut wrong_version = req;
    wrong_version.processor_version = 99;
    let err = client(&w)
        .await
        .run_job(authed(wrong_version))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excess_jobs_are_refused_and_sigterm_drains() {
    let w = start(&[
        ("HTSPREP_WORKER_MAX_JOBS", "1"),
        ("HTSPREP_WORKER_DRAIN_GRACE_SECONDS", "5"),
    ]);
    let body = std::fs::read(repo_testdata("ctcf_trackline.bed")).unwrap();
    let md5 = md5_of(&repo_testdata("ctcf_trackline.bed"));
    // A download of about 20 s keeps the only slot busy.
    let url = http::serve_file(body, 200, Duration::from_millis(100)).await;
    let (req, store, job_id) = job_request(w.data.path(), "slow", &url, md5.clone()).await;
    let mut stream = client(&w)
        .await
        .run_job(authed(req))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert!(matches!(
        first.update,
        Some(pb::job_update::Update::Accepted(_))
    ));

    let (second, _, _) = job_request(w.data.path(), "second", &url, md5).await;
    let err = client(&w).await.run_job(authed(second)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted);
    assert!(err.message().contains("limit of 1"), "{}", err.message());

    let mut w = w;
    kill(Pid::from_raw(w.child.id() as i32), Signal::SIGTERM).unwrap();
    // While draining, health says so (until the process is gone).
    let mut saw_draining = false;
    for _ in 0..100 {
        match health_status(&w).await {
            Some(503) => {
                saw_draining = true;
                break;
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            None => break,
        }
    }
    assert!(saw_draining, "health answered 503 while draining");
    let status =
        wait_exit(&mut w.child, Duration::from_secs(30)).expect("the worker exits after draining");
    assert!(status.success(), "{status:?}");
    // The slow job could not finish within the grace period: it was handed back, not failed.
    let job = store.get(&job_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Pending, "{:?}", job.events);
    assert_eq!(job.attempt, 2);
    assert!(job.active);
    let rest = collect(&mut stream).await;
    assert!(
        matches!(rest.last(), Some(pb::job_update::Update::Failed(f)) if f.retryable),
        "{rest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stops_itself_when_idle() {
    let mut w = start(&[("HTSPREP_WORKER_IDLE_TIMEOUT_SECONDS", "1")]);
    let status =
        wait_exit(&mut w.child, Duration::from_secs(30)).expect("an idle worker stops by itself");
    assert!(status.success(), "{status:?}");
}

/// The warm pool's call: a worker kept warm outlives its idle timeout several times over; asked
/// only how it is (no keep_warm), it stops once idle for its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_kept_warm_outlives_its_idle_timeout_and_stops_once_let_go() {
    let mut w = start(&[("HTSPREP_WORKER_IDLE_TIMEOUT_SECONDS", "1")]);
    let mut c = client(&w).await;
    for _ in 0..12 {
        let status = c
            .status(authed(pb::StatusRequest { keep_warm: true }))
            .await
            .expect("status")
            .into_inner();
        assert_eq!((status.in_flight, status.draining), (0, false));
        assert!(status.max_jobs >= 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        w.child.try_wait().unwrap().is_none(),
        "a worker kept warm for 3 s with a 1 s idle timeout is still running"
    );
    // Asking without keep_warm is not activity.
    let asked = tokio::spawn(async move {
        while c
            .status(authed(pb::StatusRequest { keep_warm: false }))
            .await
            .is_ok()
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let status =
        wait_exit(&mut w.child, Duration::from_secs(30)).expect("let go, it stops when idle");
    assert!(status.success(), "{status:?}");
    asked.await.unwrap();
}

#[test]
fn bad_configuration_is_reported_before_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_htsprep-worker"))
        .env("HTSPREP_WORKER_LISTEN", "0.0.0.0:0")
        .env_remove("HTSPREP_WORKER_TOKEN")
        .env("HTSPREP_WORKER_MAX_JOBS", "none")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("HTSPREP_WORKER_TOKEN") && err.contains("HTSPREP_WORKER_MAX_JOBS"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_ecs_the_job_names_the_task_arn_and_the_task_ip() {
    let arn = "arn:aws:ecs:us-east-1:123456789012:task/htsprep/0b69d5c0d1a2431b8c9c0ee53e7cae2e";
    let uri = http::serve_task_metadata(arn, "10.0.2.106").await;
    let w = start(&[("ECS_CONTAINER_METADATA_URI_V4", &uri)]);
    let (updates, store, job_id) = run_bed_job(&w).await;
    assert!(
        matches!(updates.last(), Some(pb::job_update::Update::Completed(_))),
        "{updates:?}"
    );
    let worker = store
        .get(&job_id)
        .await
        .unwrap()
        .worker
        .expect("the job names its worker");
    let port = w.grpc.rsplit(':').next().unwrap();
    assert_eq!(worker.provider, "ecs");
    assert_eq!(worker.resource_id, arn);
    assert_eq!(worker.address, format!("10.0.2.106:{port}"));
}

#[test]
fn a_worker_that_cannot_read_its_task_metadata_says_so_and_exits() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_htsprep-worker"))
        .env("HTSPREP_DATA_DIR", data.path())
        .env("HTSPREP_WORKER_LISTEN", "127.0.0.1:0")
        .env("HTSPREP_WORKER_HEALTH_LISTEN", "127.0.0.1:0")
        .env(
            "ECS_CONTAINER_METADATA_URI_V4",
            "http://127.0.0.1:1/v4/gone",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read the ECS task metadata at http://127.0.0.1:1/v4/gone/task"),
        "{err}"
    );
}
