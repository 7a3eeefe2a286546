//! Bad input and hostile sources through the real API and worker processes: the longest
//! identifiers work end to end; a redirect to a refused address, an endless body and a
//! slow-loris origin each fail their job with a clear reason, cost nothing else, and leave the
//! hot path serving.

use std::time::{Duration, Instant};

use htsprep_tests::api::ApiProcess;
use htsprep_tests::origin::{Behaviour, Origin};
use htsprep_tests::{http_row, testdata};

fn file_row(local_id: &str, format: &str, name: &str) -> String {
    let path = testdata().join(name);
    let url = url::Url::from_file_path(&path).unwrap();
    http_row(
        local_id,
        format,
        url.as_str(),
        &std::fs::read(&path).unwrap(),
    )
}

async fn range(api: &ApiProcess, path: &str, range: &str) -> (u16, Vec<u8>) {
    let resp = api
        .http
        .get(api.url(path))
        .header("range", range)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_longest_identifiers_go_from_cold_to_served() {
    let api = ApiProcess::start(&[]);
    let id = format!("{}.bed", "x".repeat(252));
    assert_eq!(id.len(), 256);
    api.register(&file_row(&id, "BED", "ctcf_trackline.bed"))
        .await;
    let path = format!("/data/e2e/{id}");
    let job_id = api.cold_get(&path).await;
    let job = api.wait_job(&job_id, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    let (status, head) = range(&api, &path, "bytes=0-27").await;
    assert_eq!(status, 206);
    assert_eq!(&head[..4], b"\x1f\x8b\x08\x04", "a BGZF block");
    let (status, _) = range(&api, &format!("/index/e2e/{id}"), "bytes=0-3").await;
    assert_eq!(status, 206);
}

/// The API reads no further while it answers a request (that read-ahead costs every busy
/// connection a second buffer): a client that closes its sending side once its request is out,
/// as some command-line clients do, still gets the whole answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_closes_its_sending_side_after_the_request_gets_its_answer() {
    use std::io::{Read, Write};

    let api = ApiProcess::start(&[]);
    api.register(&file_row("half.bed", "BED", "ctcf_trackline.bed"))
        .await;
    let job_id = api.cold_get("/data/e2e/half.bed").await;
    let job = api.wait_job(&job_id, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    let addr = api.base.strip_prefix("http://").unwrap().to_owned();
    let answer = tokio::task::spawn_blocking(move || {
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.write_all(b"GET /data/e2e/half.bed HTTP/1.1\r\nHost: x\r\nRange: bytes=0-27\r\n\r\n")
            .unwrap();
        tcp.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer).unwrap();
        answer
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 206"), "{text}");
    let body = &answer[answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
    assert_eq!(
        &body[..4],
        b"\x1f\x8b\x08\x04",
        "the first bytes of the BGZF artifact"
    );
    assert_eq!(body.len(), 28);
}

/// The job of a source whose origin redirects to `location`, run to its end.
async fn redirected_job(api: &ApiProcess, id: &str, location: &str) -> serde_json::Value {
    let origin = Origin::start(Behaviour::Redirect(location.to_owned())).await;
    api.register(&http_row(id, "BED", &origin.url("a.bed"), b"chr1\t1\t2\n"))
        .await;
    let job_id = api.cold_get(&format!("/data/e2e/{id}")).await;
    let job = api.wait_job(&job_id, Duration::from_secs(60)).await;
    assert_eq!(origin.connections(), 1, "the origin was asked once");
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redirect_to_a_refused_address_fails_without_a_connection() {
    let api = ApiProcess::start(&[]);
    for (id, location, says) in [
        (
            "to-metadata",
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "instance or task metadata address; no connection was made",
        ),
        (
            "to-private",
            "https://10.20.30.40/a.bed",
            "set HTSPREP_ALLOW_PRIVATE_SOURCES=true",
        ),
        (
            "to-link-local",
            "https://[fe80::1]/a.bed",
            "link-local address; no connection was made",
        ),
    ] {
        let job = redirected_job(&api, id, location).await;
        assert_eq!(job["status"], "failed", "{id}: {job:#}");
        let message = job["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{id}: {message}");
        assert_eq!(job["error"]["retryable"], false, "{id}: a refusal is final");
        assert_eq!(job["attempt"], 1, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_endless_body_is_cut_off_at_the_catalog_size() {
    let api = ApiProcess::start(&[]);
    let origin = Origin::start(Behaviour::Endless).await;
    let claimed = vec![b'#'; 100_000];
    api.register(&http_row("endless", "BED", &origin.url("e.bed"), &claimed))
        .await;
    let job_id = api.cold_get("/data/e2e/endless").await;
    let job = api.wait_job(&job_id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "failed", "{job:#}");
    let message = job["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("more than the 100000 bytes the catalog gives as its size"),
        "{message}"
    );
    assert_eq!(job["attempt"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_loris_origin_times_out_naming_the_url_and_the_hot_path_keeps_serving() {
    let api = ApiProcess::start(&[
        ("HTSPREP_SOURCE_READ_TIMEOUT_SECONDS", "2"),
        ("HTSPREP_MAX_ATTEMPTS", "1"),
    ]);
    // A prepared file to serve while the slow origin holds a worker.
    api.register(&file_row("ready", "BED", "ctcf_trackline.bed"))
        .await;
    let ready = api.cold_get("/data/e2e/ready").await;
    assert_eq!(
        api.wait_job(&ready, Duration::from_secs(120)).await["status"],
        "completed"
    );
    let hot = |n: usize| {
        let api = &api;
        async move {
            let mut took = Vec::with_capacity(n);
            for i in 0..n {
                let start = Instant::now();
                let (status, body) = range(
                    api,
                    "/data/e2e/ready",
                    &format!("bytes={}-{}", i * 10, i * 10 + 99),
                )
                .await;
                took.push(start.elapsed());
                assert_eq!((status, body.len()), (206, 100));
            }
            took.sort();
            took[took.len() * 99 / 100]
        }
    };
    let idle_p99 = hot(200).await;

    let origin = Origin::start(Behaviour::Trickle {
        size: 50_000,
        bytes: 20,
        every: Duration::from_millis(100),
    })
    .await;
    let claimed = vec![b'#'; 50_000];
    let url = origin.url("slow.bed");
    api.register(&http_row("slow", "BED", &url, &claimed)).await;
    let job_id = api.cold_get("/data/e2e/slow").await;
    api.wait_running(&job_id, Duration::from_secs(60)).await;
    let stalled_p99 = hot(200).await;
    let job = api.wait_job(&job_id, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "failed", "{job:#}");
    let message = job["error"]["message"].as_str().unwrap();
    assert!(message.contains(&url), "names the URL: {message}");
    assert!(message.contains("timed out"), "{message}");
    eprintln!(
        "slow-loris: hot-path p99 idle {idle_p99:?}, while a worker waits on the silent origin \
         {stalled_p99:?}; the origin saw {} connection(s)",
        origin.connections()
    );
}
