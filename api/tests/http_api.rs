//! The HTTP API in-process (`Router::oneshot`): exact Range semantics, conditional requests,
//! CORS on every answer, the cold path's first steps, passthrough and upstream indexes, admin
//! endpoints, and errors a user can act on. Artifacts are real files (a BAM and the BAI samtools
//! makes for it); the fleet is a stand-in that never starts a worker.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use futures::StreamExt;
use htsprep_api::config::Config;
use htsprep_api::fleet::{
    Discovery, Gone, Inspect, Member, ProvisionError, ProvisionRequest, Provisioner, Roster,
    Subscription, WorkerSet,
};
use htsprep_api::http::{AppState, router};
use htsprep_api::server::{Fleet, build};
use htsprep_shared::artifacts::ArtifactKey;
use htsprep_shared::catalog::Catalog;
use htsprep_shared::domain::{
    AccessUrl, ArtifactKind, FileRecord, Format, Ident, Md5, SidecarKind, cache_key,
};
use tower::ServiceExt;
use tower_http::cors::Cors;

const ADMIN: &str = "admin-token-0123456789";

/// A fleet that never has a worker: provisioning waits forever (a job stays pending).
#[derive(Clone, Debug, Default)]
struct IdleFleet(WorkerSet);

#[async_trait]
impl Provisioner for IdleFleet {
    async fn provision(&self, _req: &ProvisionRequest) -> Result<(), ProvisionError> {
        std::future::pending().await
    }
    async fn warm(&self, _token: &str) -> Result<(), ProvisionError> {
        std::future::pending().await
    }
    fn warming(&self) -> usize {
        0
    }
    fn started(&self) -> u64 {
        0
    }
    async fn shutdown(&self) {}
}

impl Discovery for IdleFleet {
    fn subscribe(&self) -> Subscription {
        self.0.subscribe()
    }
}

#[async_trait]
impl Inspect for IdleFleet {
    async fn gone(&self, _ids: &[String]) -> Result<Vec<Gone>, String> {
        Ok(Vec::new())
    }
}

#[async_trait]
impl Roster for IdleFleet {
    async fn roster(&self) -> Result<Vec<Member>, String> {
        Ok(Vec::new())
    }
}

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(name)
}

fn md5_of(path: &Path) -> Md5 {
    let out = std::process::Command::new("md5sum")
        .arg(path)
        .output()
        .unwrap();
    Md5::parse(
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap(),
    )
    .unwrap()
}

struct Api {
    state: AppState,
    router: Cors<Router>,
    dir: tempfile::TempDir,
}

async fn api_with(extra: &[(&str, &str)]) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let roots = format!("{},{}", testdata("").display(), dir.path().display());
    let mut vars: BTreeMap<String, String> = [
        ("HTSPREP_DATA_DIR", dir.path().to_str().unwrap()),
        ("HTSPREP_ADMIN_TOKEN", ADMIN),
        ("HTSPREP_FILE_ROOTS", roots.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    let config = Config::from_vars(&vars).unwrap();
    let state = build(&config, Fleet::of(IdleFleet::default()))
        .await
        .unwrap();
    Api {
        router: router(state.clone()),
        state,
        dir,
    }
}

async fn api() -> Api {
    api_with(&[]).await
}

fn record(local_id: &str, format: Format, path: &Path) -> FileRecord {
    FileRecord {
        dcc: Ident::parse("test").unwrap(),
        local_id: Ident::parse(local_id).unwrap(),
        md5: md5_of(path),
        size: std::fs::metadata(path).unwrap().len(),
        format,
        access_url: AccessUrl::parse(url::Url::from_file_path(path).unwrap().as_str()).unwrap(),
        sidecars: Default::default(),
    }
}

/// Registers the real BAM and publishes it with a real BAI, as a finished job would.
async fn prepared_bam(api: &Api) -> (Vec<u8>, Vec<u8>) {
    let src = testdata("gstt1_sample.bam");
    let file = record("bam", Format::Bam, &src);
    api.state.catalog.put(&file).await.unwrap();
    let work = api.dir.path().join("work-bam");
    std::fs::create_dir_all(&work).unwrap();
    let bam = work.join("a.bam");
    std::fs::copy(&src, &bam).unwrap();
    let st = std::process::Command::new("samtools")
        .arg("index")
        .arg(&bam)
        .status()
        .unwrap();
    assert!(st.success());
    let bai = work.join("a.bam.bai");
    for (kind, path) in [(ArtifactKind::Data, &bam), (ArtifactKind::Index, &bai)] {
        let key = cache_key(
            &file.dcc,
            &file.local_id,
            kind,
            Format::Bam.processor(),
            &file.md5,
        );
        api.state
            .artifacts
            .put_file(&ArtifactKey::parse(&key).unwrap(), path)
            .await
            .unwrap();
    }
    (std::fs::read(&bam).unwrap(), std::fs::read(&bai).unwrap())
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(&name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {:?}", String::from_utf8_lossy(&self.body)))
    }
}

async fn call(api: &Api, method: Method, uri: &str, headers: &[(&str, &str)]) -> Answer {
    call_body(api, method, uri, headers, Body::empty()).await
}

async fn call_body(
    api: &Api,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Body,
) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("origin", "https://gosling.example");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = api
        .router
        .clone()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

fn assert_cors(a: &Answer) {
    assert_eq!(
        a.header(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        "*",
        "CORS on {}",
        a.status
    );
    // The same answer for every origin: a cache keeps one copy, not one per site.
    assert!(
        a.headers.get(header::VARY).is_none(),
        "no Vary on {}: {:?}",
        a.status,
        a.headers.get(header::VARY)
    );
    let exposed = a
        .header(header::ACCESS_CONTROL_EXPOSE_HEADERS)
        .to_ascii_lowercase();
    for h in [
        "content-range",
        "content-length",
        "accept-ranges",
        "etag",
        "location",
        "retry-after",
    ] {
        assert!(
            exposed.contains(h),
            "{h} exposed on {}: {exposed}",
            a.status
        );
    }
}

#[tokio::test]
async fn a_full_get_is_200_with_validators_and_no_content_encoding() {
    let api = api().await;
    let (bam, _) = prepared_bam(&api).await;
    let a = call(&api, Method::GET, "/data/test/bam", &[]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, bam);
    assert_eq!(a.header(header::CONTENT_LENGTH), bam.len().to_string());
    assert_eq!(a.header(header::ACCEPT_RANGES), "bytes");
    assert!(a.header(header::ETAG).starts_with('"'));
    assert!(!a.header(header::LAST_MODIFIED).is_empty());
    assert!(
        a.headers.get(header::CONTENT_ENCODING).is_none(),
        "BGZF bytes are never content-encoded"
    );
    assert_cors(&a);
}

#[tokio::test]
async fn every_range_form_is_exact() {
    let api = api().await;
    let (bam, bai) = prepared_bam(&api).await;
    let n = bam.len();
    let cases: Vec<(String, std::ops::Range<usize>)> = vec![
        ("bytes=0-0".into(), 0..1),
        ("bytes=0-65535".into(), 0..65536.min(n)),
        ("bytes=1000-1999".into(), 1000..2000),
        (format!("bytes={}-{}", n - 10, n + 5000), n - 10..n),
        ("bytes=60000-".into(), 60000..n),
        ("bytes=-100".into(), n - 100..n),
        (format!("bytes=-{}", n * 2), 0..n),
    ];
    for (range, want) in cases {
        let a = call(&api, Method::GET, "/data/test/bam", &[("range", &range)]).await;
        assert_eq!(a.status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(a.body, &bam[want.clone()], "{range}");
        assert_eq!(
            a.header(header::CONTENT_RANGE),
            format!("bytes {}-{}/{n}", want.start, want.end - 1),
            "{range}"
        );
        assert_eq!(a.header(header::CONTENT_LENGTH), want.len().to_string());
        assert_cors(&a);
    }
    let a = call(
        &api,
        Method::GET,
        "/index/test/bam",
        &[("range", "bytes=4-")],
    )
    .await;
    assert_eq!(a.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(a.body, &bai[4..]);
}

#[tokio::test]
async fn a_range_past_the_end_is_416_with_the_size() {
    let api = api().await;
    let (bam, _) = prepared_bam(&api).await;
    for range in [
        format!("bytes={}-", bam.len()),
        format!("bytes={}-{}", bam.len() + 10, bam.len() + 20),
        "bytes=-0".into(),
    ] {
        let a = call(&api, Method::GET, "/data/test/bam", &[("range", &range)]).await;
        assert_eq!(a.status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(
            a.header(header::CONTENT_RANGE),
            format!("bytes */{}", bam.len())
        );
        assert_eq!(a.json()["error"], "range_not_satisfiable");
        assert_cors(&a);
    }
}

#[tokio::test]
async fn a_malformed_range_is_a_clear_400() {
    let api = api().await;
    prepared_bam(&api).await;
    for range in ["bytes=abc", "bytes=10-5", "bytes=1-2-3", "bytes="] {
        let a = call(&api, Method::GET, "/data/test/bam", &[("range", range)]).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{range}");
        assert!(
            a.json()["message"]
                .as_str()
                .unwrap()
                .contains("expected bytes=START-END"),
            "{range}"
        );
        assert_cors(&a);
    }
}

#[tokio::test]
async fn a_range_of_another_unit_is_ignored() {
    let api = api().await;
    let (bam, _) = prepared_bam(&api).await;
    for range in ["items=0-1", "lines=1-2", "none"] {
        let a = call(&api, Method::GET, "/data/test/bam", &[("range", range)]).await;
        assert_eq!(a.status, StatusCode::OK, "{range}");
        assert_eq!(a.body, bam, "{range}");
    }
}

#[tokio::test]
async fn overlapping_ranges_are_coalesced_and_never_outweigh_the_file() {
    let api = api().await;
    let (bam, _) = prepared_bam(&api).await;
    let n = bam.len();
    // 32 times the whole file: sent once.
    let all = format!("bytes={}", vec!["0-"; 32].join(","));
    let a = call(&api, Method::GET, "/data/test/bam", &[("range", &all)]).await;
    assert_eq!(a.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        a.header(header::CONTENT_RANGE),
        format!("bytes 0-{}/{n}", n - 1)
    );
    assert_eq!(a.body, bam);
    // Overlapping and adjacent pieces: one part.
    let a = call(
        &api,
        Method::GET,
        "/data/test/bam",
        &[("range", "bytes=100-199,0-99,50-150,200-299")],
    )
    .await;
    assert_eq!(a.header(header::CONTENT_RANGE), format!("bytes 0-299/{n}"));
    assert_eq!(a.body, bam[..300]);
    // Many small ranges far apart whose part headers would outweigh the file: the file once.
    let tiny: Vec<String> = (0..32).map(|i| format!("{0}-{0}", i * (n / 32))).collect();
    let a = call(
        &api,
        Method::GET,
        "/data/test/bam",
        &[("range", &format!("bytes={}", tiny.join(",")))],
    )
    .await;
    assert!(
        a.body.len() <= n,
        "{} bytes sent for a {n}-byte file",
        a.body.len()
    );
}

#[tokio::test]
async fn several_ranges_are_multipart_byteranges() {
    let api = api().await;
    let (bam, _) = prepared_bam(&api).await;
    let a = call(
        &api,
        Method::GET,
        "/data/test/bam",
        &[("range", "bytes=0-9,100-109,-5")],
    )
    .await;
    assert_eq!(a.status, StatusCode::PARTIAL_CONTENT);
    let ct = a.header(header::CONTENT_TYPE).to_owned();
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .expect(&ct);
    assert_eq!(a.header(header::CONTENT_LENGTH), a.body.len().to_string());
    let text = a.body.clone();
    let delim = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = &text[..];
    while let Some(pos) = find(rest, delim.as_bytes()) {
        rest = &rest[pos + delim.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let head_end = find(rest, b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&rest[..head_end]).to_string();
        let body_start = head_end + 4;
        let next = find(&rest[body_start..], delim.as_bytes()).unwrap();
        parts.push((head, rest[body_start..body_start + next - 2].to_vec()));
    }
    let n = bam.len();
    let want = [
        (0..10, "bytes 0-9"),
        (100..110, "bytes 100-109"),
        (n - 5..n, ""),
    ];
    assert_eq!(parts.len(), 3);
    for ((head, body), (range, cr)) in parts.iter().zip(want) {
        assert_eq!(body, &bam[range.clone()]);
        assert!(
            head.contains(&format!(
                "Content-Range: bytes {}-{}/{n}",
                range.start,
                range.end - 1
            )),
            "{head}"
        );
        assert!(cr.is_empty() || head.contains(cr));
    }
    // Only unsatisfiable members: 416; one satisfiable member: a plain 206.
    let far = format!("bytes={}-,{}-", n + 1, n + 2);
    assert_eq!(
        call(&api, Method::GET, "/data/test/bam", &[("range", &far)])
            .await
            .status,
        StatusCode::RANGE_NOT_SATISFIABLE
    );
    let one = format!("bytes=0-1,{}-", n + 2);
    let a = call(&api, Method::GET, "/data/test/bam", &[("range", &one)]).await;
    assert_eq!(a.header(header::CONTENT_RANGE), format!("bytes 0-1/{n}"));
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test]
async fn conditional_requests() {
    let api = api().await;
    let (bam, _) = prepared_bam(&api).await;
    let first = call(&api, Method::GET, "/data/test/bam", &[]).await;
    let etag = first.header(header::ETAG).to_owned();
    let lm = first.header(header::LAST_MODIFIED).to_owned();

    let a = call(
        &api,
        Method::GET,
        "/data/test/bam",
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_MODIFIED);
    assert!(a.body.is_empty());

    let a = call(
        &api,
        Method::GET,
        "/data/test/bam",
        &[("range", "bytes=0-9"), ("if-range", &etag)],
    )
    .await;
    assert_eq!(a.status, StatusCode::PARTIAL_CONTENT);
    let a = call(
        &api,
        Method::GET,
        "/data/test/bam",
        &[("range", "bytes=0-9"), ("if-range", &lm)],
    )
    .await;
    assert_eq!(a.status, StatusCode::PARTIAL_CONTENT);
    let a = call(
        &api,
        Method::GET,
        "/data/test/bam",
        &[("range", "bytes=0-9"), ("if-range", "\"stale\"")],
    )
    .await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "a stale If-Range gets the whole representation"
    );
    assert_eq!(a.body, bam);
}

#[tokio::test]
async fn head_serves_headers_and_never_starts_work() {
    let api = api().await;
    let (bam, _) = prepared_bam(&api).await;
    let a = call(&api, Method::HEAD, "/data/test/bam", &[]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.is_empty());
    assert_eq!(a.header(header::CONTENT_LENGTH), bam.len().to_string());

    let src = testdata("test.broadPeak");
    api.state
        .catalog
        .put(&record("cold", Format::BroadPeak, &src))
        .await
        .unwrap();
    let a = call(&api, Method::HEAD, "/data/test/cold", &[]).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_cors(&a);
    let jobs = api.state.store.list(&Default::default()).await.unwrap();
    assert!(jobs.jobs.is_empty(), "HEAD started a job");
    let status = call(&api, Method::GET, "/data/test/cold/status", &[])
        .await
        .json();
    assert_eq!(status["ready"], false);
    assert!(status["job"].is_null());
}

#[tokio::test]
async fn a_cold_get_answers_202_and_converges_on_one_job() {
    let api = api().await;
    let src = testdata("test.broadPeak");
    api.state
        .catalog
        .put(&record("cold", Format::BroadPeak, &src))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..5 {
        let a = call(&api, Method::GET, "/data/test/cold", &[]).await;
        assert_eq!(a.status, StatusCode::ACCEPTED);
        let location = a.header(header::LOCATION).to_owned();
        assert!(location.starts_with("/jobs/"));
        assert!(!a.header(header::RETRY_AFTER).is_empty());
        assert_cors(&a);
        assert_eq!(a.json()["location"], location);
        ids.push(a.json()["job_id"].as_str().unwrap().to_owned());
    }
    assert!(ids.iter().all(|i| i == &ids[0]), "{ids:?}");
    let admin = format!("Bearer {ADMIN}");
    let job = call(
        &api,
        Method::GET,
        &format!("/jobs/{}", ids[0]),
        &[("authorization", &admin)],
    )
    .await;
    assert_eq!(job.status, StatusCode::OK);
    let job = job.json();
    assert_eq!(job["status"], "pending");
    assert!(job.get("lease").is_none(), "the lease is never shown");
    assert!(
        job["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "claimed")
    );
    // The index path of the same file attaches to the same job.
    let a = call(&api, Method::GET, "/index/test/cold", &[]).await;
    assert_eq!(a.json()["job_id"], ids[0].as_str());
    // ?wait runs out and still answers 202.
    let a = call(&api, Method::GET, "/data/test/cold?wait=1", &[]).await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn too_many_workflows_is_429_and_bad_wait_is_400() {
    let api = api_with(&[("HTSPREP_MAX_ACTIVE_WORKFLOWS", "1")]).await;
    for id in ["one", "two"] {
        api.state
            .catalog
            .put(&record(id, Format::BroadPeak, &testdata("test.broadPeak")))
            .await
            .unwrap();
    }
    assert_eq!(
        call(&api, Method::GET, "/data/test/one", &[]).await.status,
        StatusCode::ACCEPTED
    );
    let a = call(&api, Method::GET, "/data/test/two", &[]).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!a.header(header::RETRY_AFTER).is_empty());
    assert_cors(&a);
    let a = call(&api, Method::GET, "/data/test/one?wait=soon", &[]).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn passthrough_formats_are_served_as_they_are() {
    let api = api().await;
    let src = testdata("pybigwig_test.bw");
    let file = record("bw", Format::BigWig, &src);
    api.state.catalog.put(&file).await.unwrap();
    let bytes = std::fs::read(&src).unwrap();
    let a = call(
        &api,
        Method::GET,
        "/data/test/bw",
        &[("range", "bytes=100-199")],
    )
    .await;
    assert_eq!(a.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(a.body, &bytes[100..200]);
    assert_eq!(
        a.header(header::ETAG),
        format!("\"{}\"", file.md5),
        "the catalog md5 is the validator"
    );
    let a = call(&api, Method::GET, "/index/test/bw", &[]).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(
        a.json()["message"]
            .as_str()
            .unwrap()
            .contains("bigWig files have no index")
    );
    assert!(
        api.state
            .store
            .list(&Default::default())
            .await
            .unwrap()
            .jobs
            .is_empty(),
        "no job for passthrough"
    );
}

#[tokio::test]
async fn an_upstream_index_is_served_with_its_source() {
    let api = api().await;
    let dir = tempfile::tempdir_in(api.dir.path()).unwrap();
    let bam = dir.path().join("up.bam");
    std::fs::copy(testdata("gstt1_sample.bam"), &bam).unwrap();
    assert!(
        std::process::Command::new("samtools")
            .arg("index")
            .arg(&bam)
            .status()
            .unwrap()
            .success()
    );
    let bai = dir.path().join("up.bam.bai");
    let mut file = record("upstream", Format::Bam, &bam);
    file.sidecars.insert(
        SidecarKind::Bai,
        AccessUrl::parse(url::Url::from_file_path(&bai).unwrap().as_str()).unwrap(),
    );
    api.state.catalog.put(&file).await.unwrap();
    let a = call(&api, Method::GET, "/index/test/upstream", &[]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, std::fs::read(&bai).unwrap());
    let a = call(
        &api,
        Method::GET,
        "/data/test/upstream?raw=true",
        &[("range", "bytes=0-3")],
    )
    .await;
    assert_eq!(a.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(a.body, &std::fs::read(&bam).unwrap()[..4]);
    assert!(
        api.state
            .store
            .list(&Default::default())
            .await
            .unwrap()
            .jobs
            .is_empty()
    );
}

#[tokio::test]
async fn raw_serves_the_source_and_refuses_a_missing_upstream_index() {
    let api = api().await;
    prepared_bam(&api).await;
    let src = std::fs::read(testdata("gstt1_sample.bam")).unwrap();
    let a = call(
        &api,
        Method::GET,
        "/data/test/bam?raw=true",
        &[("range", "bytes=-16")],
    )
    .await;
    assert_eq!(a.body, &src[src.len() - 16..]);
    let a = call(&api, Method::GET, "/index/test/bam?raw=true", &[]).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(
        a.json()["message"]
            .as_str()
            .unwrap()
            .contains("no upstream index")
    );
}

#[tokio::test]
async fn unknown_and_invalid_names_get_clear_errors() {
    let api = api().await;
    let cases = [
        (
            "/data/test/missing",
            StatusCode::NOT_FOUND,
            "file test/missing is not registered",
        ),
        (
            "/data/te%20st/x",
            StatusCode::BAD_REQUEST,
            "dcc: identifier contains ' '",
        ),
        ("/data/test/..", StatusCode::BAD_REQUEST, "local_id"),
        (
            "/jobs/not-a-job",
            StatusCode::BAD_REQUEST,
            "is not a job id",
        ),
        (
            "/jobs/01a20724-5395-7784-9552-4d1ec364cca6",
            StatusCode::NOT_FOUND,
            "not found",
        ),
        ("/nowhere", StatusCode::NOT_FOUND, "no route for /nowhere"),
    ];
    for (uri, status, msg) in cases {
        let a = call(&api, Method::GET, uri, &[]).await;
        assert_eq!(a.status, status, "{uri}");
        let m = a.json()["message"].as_str().unwrap().to_owned();
        assert!(m.contains(msg), "{uri}: {m}");
        assert_cors(&a);
    }
}

#[tokio::test]
async fn preflight_allows_range() {
    let api = api().await;
    let a = call(
        &api,
        Method::OPTIONS,
        "/data/test/bam",
        &[
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "range"),
        ],
    )
    .await;
    assert!(a.status.is_success());
    assert!(
        a.header(header::ACCESS_CONTROL_ALLOW_HEADERS)
            .to_ascii_lowercase()
            .contains("range")
    );
}

#[tokio::test]
async fn registering_files_needs_the_admin_token() {
    let api = api().await;
    let line = format!(
        "{{\"dcc\":\"d\",\"local_id\":\"x\",\"md5\":\"{}\",\"size\":4955,\"format\":\"broadPeak\",\"access_url\":\"{}\"}}\n{{\"dcc\":\"d\",\"local_id\":\"bad id\"}}\n",
        md5_of(&testdata("test.broadPeak")),
        url::Url::from_file_path(testdata("test.broadPeak")).unwrap()
    );
    let a = call_body(&api, Method::POST, "/files", &[], Body::from(line.clone())).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = call_body(
        &api,
        Method::POST,
        "/files",
        &[("authorization", "Bearer wrong-token-000000000")],
        Body::from(line.clone()),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let auth = format!("Bearer {ADMIN}");
    let a = call_body(
        &api,
        Method::POST,
        "/files",
        &[("authorization", &auth)],
        Body::from(line),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    let report = a.json();
    assert_eq!(report["inserted"], 1);
    assert_eq!(report["rejected"][0]["line"], 2);
    let a = call(&api, Method::GET, "/files/d/x", &[]).await;
    assert_eq!(a.json()["format"], "broadPeak");
    let listed = call(&api, Method::GET, "/files?dcc=d", &[]).await.json();
    assert_eq!(listed["files"].as_array().unwrap().len(), 1);
    assert_eq!(
        call(&api, Method::GET, "/jobs", &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&api, Method::GET, "/metrics", &[("authorization", &auth)])
            .await
            .status,
        StatusCode::OK
    );
    let a = call(
        &api,
        Method::DELETE,
        "/files/d/x",
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn admin_endpoints_are_off_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let vars: BTreeMap<String, String> = [(
        "HTSPREP_DATA_DIR".to_owned(),
        dir.path().to_str().unwrap().to_owned(),
    )]
    .into();
    let config = Config::from_vars(&vars).unwrap();
    let state = build(&config, Fleet::of(IdleFleet::default()))
        .await
        .unwrap();
    let resp = router(state)
        .oneshot(Request::post("/files").body(Body::from("{}")).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_draining_api_refuses_cold_work_but_serves_what_is_ready() {
    let api = api().await;
    prepared_bam(&api).await;
    api.state
        .catalog
        .put(&record(
            "cold",
            Format::BroadPeak,
            &testdata("test.broadPeak"),
        ))
        .await
        .unwrap();
    api.state.executor.begin_drain_soft();
    let a = call(&api, Method::GET, "/data/test/cold", &[]).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!a.header(header::RETRY_AFTER).is_empty());
    assert_cors(&a);
    assert_eq!(
        call(
            &api,
            Method::GET,
            "/data/test/bam",
            &[("range", "bytes=0-9")]
        )
        .await
        .status,
        StatusCode::PARTIAL_CONTENT
    );
    assert_eq!(
        call(&api, Method::GET, "/readyz", &[]).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        call(&api, Method::GET, "/healthz", &[]).await.status,
        StatusCode::OK
    );
}

/// A request body that sends one chunk and then never ends: a handler that reads it hangs.
fn endless_body() -> Body {
    let first = futures::stream::once(async {
        Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"{\"dcc\":"))
    });
    Body::from_stream(first.chain(futures::stream::pending()))
}

#[tokio::test]
async fn the_admin_token_is_checked_before_any_body_is_read() {
    let api = api().await;
    for (method, uri) in [
        (Method::POST, "/files"),
        (
            Method::POST,
            "/jobs/01a20724-5395-7784-9552-4d1ec364cca6/retry",
        ),
        (
            Method::POST,
            "/jobs/01a20724-5395-7784-9552-4d1ec364cca6/cancel",
        ),
    ] {
        for auth in [None, Some("Bearer wrong-token-0123456789")] {
            let headers: Vec<(&str, &str)> =
                auth.map(|a| ("authorization", a)).into_iter().collect();
            // The answer must come while the body is still being sent; if the handler read the
            // body first it would wait forever, and the bound below says so.
            let a = tokio::time::timeout(
                std::time::Duration::from_secs(30),
                call_body(&api, method.clone(), uri, &headers, endless_body()),
            )
            .await
            .unwrap_or_else(|_| panic!("{method} {uri}: the body was read before the token check"));
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        }
    }
}

#[tokio::test]
async fn the_public_views_hide_credentials_workers_and_stderr() {
    use htsprep_shared::domain::{JobFailure, WorkerRef, workflow_key};
    use htsprep_shared::jobstore::{ClaimRequest, JobPolicy, JobStoreExt};

    let api = api().await;
    let mut file = record("signed", Format::Bam, &testdata("gstt1_sample.bam"));
    file.access_url = AccessUrl::parse(
        "https://reader:hunter2@bucket.example/a.bam?X-Amz-Credential=AKIA123&X-Amz-Signature=deadbeef",
    )
    .unwrap();
    file.sidecars.insert(
        SidecarKind::Bai,
        AccessUrl::parse("https://bucket.example/a.bam.bai?X-Amz-Signature=cafe").unwrap(),
    );
    api.state.catalog.put(&file).await.unwrap();
    for uri in ["/files", "/files/test/signed"] {
        let public = call(&api, Method::GET, uri, &[]).await;
        let text = String::from_utf8_lossy(&public.body).to_string();
        assert_eq!(public.status, StatusCode::OK);
        assert!(
            text.contains("https://reader@bucket.example/a.bam"),
            "{text}"
        );
        for secret in ["hunter2", "AKIA123", "deadbeef", "cafe", "X-Amz"] {
            assert!(!text.contains(secret), "{uri} shows {secret}: {text}");
        }
        let admin = call(
            &api,
            Method::GET,
            uri,
            &[("authorization", &format!("Bearer {ADMIN}"))],
        )
        .await;
        let text = String::from_utf8_lossy(&admin.body).to_string();
        assert!(
            text.contains("X-Amz-Signature=deadbeef") && text.contains("hunter2"),
            "{text}"
        );
        let wrong = call(&api, Method::GET, uri, &[("authorization", "Bearer nope")]).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    }

    // A job that ran on a worker and failed with stderr.
    let claim = api
        .state
        .store
        .claim(&ClaimRequest {
            workflow_key: workflow_key(&file),
            dcc: file.dcc.clone(),
            local_id: file.local_id.clone(),
            policy: JobPolicy {
                stale_after: std::time::Duration::from_secs(600),
                max_attempts: 3,
            },
            driver: None,
        })
        .await
        .unwrap();
    let fence = htsprep_shared::jobstore::Fence::of(&claim.job);
    let worker = WorkerRef {
        provider: "ecs".into(),
        resource_id: "arn:aws:ecs:us-east-1:123456789012:task/c/0123abcd".into(),
        address: "10.0.3.7:50051".into(),
    };
    api.state.store.mark_running(&fence, worker).await.unwrap();
    let mut failure = JobFailure::new("samtools sort failed (exit 1)\nsecond line with /work/path");
    failure.stage = Some("sort".into());
    failure.command = Some("samtools sort -T /work/job-1/tmp".into());
    failure.stderr_tail = Some("[E::hts_open] MONGODB_URI=mongodb://u:p@db".into());
    failure.exit_status = Some(1);
    api.state.store.fail(&fence, failure).await.unwrap();

    let uri = format!("/jobs/{}", claim.job.job_id);
    let public = call(&api, Method::GET, &uri, &[]).await;
    let text = String::from_utf8_lossy(&public.body).to_string();
    let j = public.json();
    assert_eq!(j["status"], "failed");
    assert_eq!(j["error"]["message"], "samtools sort failed (exit 1)");
    assert_eq!(j["error"]["stage"], "sort");
    for secret in [
        "10.0.3.7",
        "arn:aws",
        "0123abcd",
        "MONGODB_URI",
        "/work/",
        "second line",
    ] {
        assert!(
            !text.contains(secret),
            "public /jobs shows {secret}: {text}"
        );
    }
    let admin = call(
        &api,
        Method::GET,
        &uri,
        &[("authorization", &format!("Bearer {ADMIN}"))],
    )
    .await;
    let j = admin.json();
    assert_eq!(j["worker"]["address"], "10.0.3.7:50051");
    assert!(
        j["error"]["stderr_tail"]
            .as_str()
            .unwrap()
            .contains("hts_open")
    );
    assert!(!j["events"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_file_source_outside_the_file_roots_is_refused() {
    let api = api().await;
    let outside = tempfile::tempdir().unwrap();
    let bw = outside.path().join("secret.bw");
    std::fs::copy(testdata("pybigwig_test.bw"), &bw).unwrap();
    // A symlink under a root that points outside it is refused too.
    let link = api.dir.path().join("link.bw");
    std::os::unix::fs::symlink(&bw, &link).unwrap();
    for (id, path) in [("outside", &bw), ("link", &link)] {
        let file = record(id, Format::BigWig, path);
        api.state.catalog.put(&file).await.unwrap();
        let a = call(&api, Method::GET, &format!("/data/test/{id}"), &[]).await;
        assert_eq!(a.status, StatusCode::BAD_GATEWAY, "{id}");
        let m = a.json()["message"].as_str().unwrap().to_owned();
        assert!(m.contains("outside HTSPREP_FILE_ROOTS"), "{id}: {m}");
        assert!(a.body.len() < 1000);
    }
}
