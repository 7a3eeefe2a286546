//! Fault injection with real processes: workers and the API killed with SIGKILL, the
//! MongoDB-wire server and the S3 emulator cut off mid-call (through a loopback proxy, so they
//! come back with their state, as real ones do). Each test prints the figures RELIABILITY.md
//! lists.

use std::path::Path;
use std::time::{Duration, Instant};

use htsprep_tests::api::ApiProcess;
use htsprep_tests::proxy::Proxy;
use htsprep_tests::slow_http::SlowServer;
use htsprep_tests::{http_row, md5_hex, testdata};

const LONG: Duration = Duration::from_secs(180);

fn sh(cmd: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> String {
    htsprep_tests::run(std::process::Command::new(cmd).args(args.iter().map(|a| a.as_ref())))
}

/// Reads a served artifact back with samtools or tabix and compares its records with the
/// source's.
async fn check_served(api: &ApiProcess, id: &str, format: &str, source: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    api.download(&format!("/data/e2e/{id}"), &data).await;
    if format == "BAM" || format == "SAM" {
        let bam = dir.path().join("a.bam");
        std::fs::rename(&data, &bam).unwrap();
        api.download(&format!("/index/e2e/{id}"), &dir.path().join("a.bam.bai"))
            .await;
        sh("samtools", &[&"quickcheck", &bam]);
        let served = sh("samtools", &[&"view", &"-c", &bam]);
        let want = sh("samtools", &[&"view", &"-c", &source]);
        assert_eq!(served, want, "{id}: records");
        // The index answers for every reference the reads use.
        let stats = sh("samtools", &[&"idxstats", &bam]);
        let mapped: u64 = stats
            .lines()
            .map(|l| l.split('\t').nth(2).unwrap().parse::<u64>().unwrap())
            .sum();
        assert!(mapped > 0, "{id}: idxstats {stats}");
    } else {
        let gz = dir.path().join("a.gz");
        std::fs::rename(&data, &gz).unwrap();
        api.download(&format!("/index/e2e/{id}"), &dir.path().join("a.gz.tbi"))
            .await;
        let contigs = sh("tabix", &[&"-l", &gz]);
        assert!(!contigs.trim().is_empty(), "{id}: tabix -l");
        let first = contigs.lines().next().unwrap();
        assert!(
            !sh("tabix", &[&gz, &first]).is_empty(),
            "{id}: region {first}"
        );
        let served = sh(
            "bash",
            &[
                &"-c",
                &format!("bgzip -dc {} | grep -vc '^#'", gz.display()),
            ],
        );
        let want = sh(
            "bash",
            &[
                &"-c",
                &format!("grep -Evc '^(#|track|browser)' {}", source.display()),
            ],
        );
        assert_eq!(served, want, "{id}: records");
    }
}

fn kill9(pid: i32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_workers_killed_mid_stage_give_ten_completions_each_read_back() {
    let api = ApiProcess::start(&[("HTSPREP_WORKER_JOBS", "1"), ("HTSPREP_MAX_WORKERS", "2")]);
    let files = [
        ("gstt1_sample.bam", "BAM"),
        ("phix_unsorted.sam", "SAM"),
        ("htslib_index.vcf", "VCF"),
        ("ctcf_trackline.bed", "BED"),
        ("gstt1_sample.bam", "BAM"),
        ("htslib_index.vcf", "VCF"),
        ("phix_unsorted.sam", "SAM"),
        ("ctcf_trackline.bed", "BED"),
        ("htslib_index.vcf", "VCF"),
        ("gstt1_sample.bam", "BAM"),
    ];
    let mut servers = Vec::new();
    let mut jobs = Vec::new();
    let started = Instant::now();
    for (i, (name, format)) in files.iter().enumerate() {
        let body = std::fs::read(testdata().join(name)).unwrap();
        // The fetch stage lasts about two seconds: long enough to be killed in.
        let slow = SlowServer::start(body.clone(), 20, Duration::from_millis(100));
        let id = format!("kill-{i}");
        api.register(&http_row(&id, format, &slow.url(name), &body))
            .await;
        servers.push(slow);
        let job_id = api.cold_get(&format!("/data/e2e/{id}")).await;
        api.wait_running(&job_id, LONG).await;
        // Mid-stage: once the worker reports progress in a stage.
        let job = loop {
            let job = api.get_json(&format!("/jobs/{job_id}")).await;
            if job["progress"]["stage"].is_string() {
                break job;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let stage = job["progress"]["stage"].as_str().unwrap().to_owned();
        let pid = job["worker"]["resource_id"].as_str().unwrap();
        kill9(pid.strip_prefix("pid-").unwrap().parse().unwrap());
        eprintln!("killed the worker of {id} ({format}) during {stage}");
        jobs.push((id, *name, *format, job_id));
    }
    for (id, name, format, job_id) in &jobs {
        let job = api.wait_job(job_id, LONG).await;
        assert_eq!(job["status"], "completed", "{id}: {job:#}");
        assert_eq!(job["attempt"], 2, "{id}: one retry after the kill");
        check_served(&api, id, format, &testdata().join(name)).await;
    }
    eprintln!(
        "10 kills -> 10 completions (attempt 2 each), every artifact read back by \
         samtools/tabix, in {:?}",
        started.elapsed()
    );
    assert!(
        std::fs::read_dir(api.staging()).unwrap().next().is_none(),
        "no partial artifact left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_killed_mid_dispatch_completes_the_job_after_a_restart() {
    let shared = tempfile::tempdir().unwrap();
    let env = [("HTSPREP_DATA_DIR", shared.path().to_str().unwrap())];
    let mut first = ApiProcess::start(&env);
    let name = "ctcf_trackline.bed";
    let body = std::fs::read(testdata().join(name)).unwrap();
    let slow = SlowServer::start(body.clone(), 20, Duration::from_millis(100));
    first
        .register(&http_row("api-kill", "BED", &slow.url(name), &body))
        .await;
    // Killed right after answering 202: the dispatch to a worker is in flight.
    let job_id = first.cold_get("/data/e2e/api-kill").await;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let killed = Instant::now();

    let second = ApiProcess::start(&env);
    let resp = second
        .http
        .get(second.url("/data/e2e/api-kill?wait=120"))
        .header("range", "bytes=0-3")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206, "served after the restart");
    let job = second.wait_job(&job_id, LONG).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(
        job["job_id"],
        job_id.as_str(),
        "the same job, not a new one"
    );
    check_served(&second, "api-kill", "BED", &testdata().join(name)).await;
    eprintln!(
        "API SIGKILL mid-dispatch: job {job_id} completed {:?} after the kill (attempt {})",
        killed.elapsed(),
        job["attempt"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mongodb_lost_mid_claim_answers_503_and_recovers_without_a_restart() {
    let mongo = htsprep_shared::mongo::testing::TestMongo::start().await;
    let target = mongo
        .uri
        .trim_start_matches("mongodb://")
        .split(['/', '?'])
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let proxy = Proxy::start(target).await;
    let database = format!("faults_{}", std::process::id());
    let uri = format!("mongodb://{}/", proxy.addr());
    let api = ApiProcess::start(&[
        ("MONGODB_URI", &uri),
        ("MONGODB_DATABASE", &database),
        ("MONGODB_CONNECT_TIMEOUT_SECONDS", "2"),
        ("HTSPREP_CATALOG_CACHE_SECONDS", "0"),
    ]);
    let name = "ctcf_trackline.bed";
    let body = std::fs::read(testdata().join(name)).unwrap();
    let slow = SlowServer::start(body.clone(), 20, Duration::from_millis(100));
    api.register(&http_row("mongo-cut", "BED", &slow.url(name), &body))
        .await;

    // A wave of cold GETs, and the server lost while their claims are in flight.
    let wave = |n: usize| {
        let api = &api;
        futures::future::join_all((0..n).map(|_| async move {
            let resp = api
                .http
                .get(api.url("/data/e2e/mongo-cut"))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let retry_after = resp.headers().contains_key("retry-after");
            let body: serde_json::Value = resp.json().await.unwrap();
            (status, retry_after, body)
        }))
    };
    let (first, ()) = tokio::join!(wave(50), async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        proxy.stop();
    });
    let cut = Instant::now();
    let during = wave(20).await;
    let answered_in = cut.elapsed();
    let mut ids = std::collections::BTreeSet::new();
    let mut unavailable = 0;
    for (status, retry_after, body) in first.iter().chain(&during) {
        match status {
            202 => {
                ids.insert(body["job_id"].as_str().unwrap().to_owned());
            }
            503 => {
                unavailable += 1;
                assert!(retry_after, "a 503 says when to retry");
                assert_eq!(body["error"], "unavailable", "{body}");
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert!(
        during.iter().all(|(s, ..)| *s == 503),
        "while it is gone: 503"
    );

    proxy.resume().await;
    let resumed = Instant::now();
    let outage = resumed - cut;
    // Recovery without restarting the API: the same one job for every later GET.
    let after = loop {
        let answers = wave(20).await;
        if answers.iter().all(|(s, ..)| *s == 202) {
            break answers;
        }
        assert!(resumed.elapsed() < LONG, "never recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let recovered = resumed.elapsed();
    for (_, _, body) in &after {
        ids.insert(body["job_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "one job for the workflow: {ids:?}");
    let db = mongo.settings(&database);
    let db = htsprep_shared::mongo::MongoDb::connect(&db).await.unwrap();
    let active = db
        .collection::<mongodb::bson::Document>(htsprep_shared::mongo::JOBS)
        .count_documents(mongodb::bson::doc! {"active": true})
        .await
        .unwrap();
    assert_eq!(active, 1, "no duplicate active job");
    let job_id = ids.into_iter().next().unwrap();
    let job = api.wait_job(&job_id, LONG).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    eprintln!(
        "MongoDB cut mid-claim: {unavailable} of {} GETs answered 503 with Retry-After (the 20 \
         made during the {outage:?} outage all answered within {answered_in:?}); 202 again \
         {recovered:?} after the server returned; 1 active job; completed",
        first.len() + during.len(),
    );
}

/// A BED file of `lines` records whose names do not compress away.
fn big_bed(path: &Path, lines: usize) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..lines {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let chrom = 1 + (x % 22);
        let start = x % 200_000_000;
        writeln!(
            out,
            "chr{chrom}\t{start}\t{}\tpeak{i}_{x:016x}\t{}\t+",
            start + 500,
            x % 1000
        )
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_lost_mid_multipart_upload_fails_cleanly_and_the_retry_publishes() {
    let aws = htsprep_shared::aws::testing::TestAws::start().await;
    let s3 = aws.s3_client();
    let bucket = aws.fresh_bucket(&s3).await;
    let target = aws
        .endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    // Cut off once the upload of the data artifact is under way, for three seconds.
    let proxy = Proxy::tripping(target, 1 << 20, Duration::from_secs(3)).await;
    let endpoint = format!("http://{}", proxy.addr());
    let api = ApiProcess::start(&[
        ("WORKFLOW_S3_BUCKET", &bucket),
        ("AWS_ENDPOINT_URL", &endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_MAX_ATTEMPTS", "1"),
        ("HTSPREP_S3_MULTIPART_THRESHOLD", "1M"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("big.bed");
    big_bed(&source, 150_000);
    let bytes = std::fs::read(&source).unwrap();
    let url = url::Url::from_file_path(&source).unwrap();
    api.register(&format!(
        "{{\"dcc\":\"e2e\",\"local_id\":\"big\",\"md5\":\"{}\",\"size\":{},\"format\":\"BED\",\"access_url\":\"{url}\"}}\n",
        md5_hex(&bytes),
        bytes.len()
    ))
    .await;
    let job_id = api.cold_get("/data/e2e/big").await;
    let job = api.wait_job(&job_id, LONG).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(proxy.stops(), 1, "S3 was cut off once");
    assert_eq!(
        job["attempt"], 2,
        "the cut attempt failed; the next one published"
    );
    let reason = htsprep_tests::rescheduled_reason(&job);
    assert!(reason.contains("artifact store"), "{reason}");
    // The failed upload was aborted: no parts are left behind.
    let uploads = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "{:?}", uploads.uploads());
    check_served(&api, "big", "BED", &source).await;
    eprintln!(
        "S3 cut mid-multipart: attempt 1 failed ({reason}), upload aborted (0 left), attempt 2 \
         published; {} bytes through the proxy",
        proxy.to_server()
    );
}

/// p99 of `n` sequential 100-byte range GETs of a prepared artifact.
async fn hot_p99(api: &ApiProcess, path: &str, n: usize) -> Duration {
    let mut took = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        let resp = api
            .http
            .get(api.url(path))
            .header("range", format!("bytes={}-{}", i * 7, i * 7 + 99))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 206);
        assert_eq!(resp.bytes().await.unwrap().len(), 100);
        took.push(start.elapsed());
    }
    took.sort();
    took[n * 99 / 100]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_thousand_open_waits_leave_the_hot_path_serving() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const WAITERS: usize = 5000;
    let api = ApiProcess::start(&[]);
    let name = "ctcf_trackline.bed";
    let body = std::fs::read(testdata().join(name)).unwrap();
    let url = url::Url::from_file_path(testdata().join(name)).unwrap();
    api.register(&http_row("hot", "BED", url.as_str(), &body))
        .await;
    let ready = api.cold_get("/data/e2e/hot").await;
    assert_eq!(api.wait_job(&ready, LONG).await["status"], "completed");
    // A file whose job runs for minutes: its waiters stay open.
    let slow = SlowServer::start(body.clone(), 1200, Duration::from_millis(100));
    api.register(&http_row("slow", "BED", &slow.url(name), &body))
        .await;

    let idle = hot_p99(&api, "/data/e2e/hot", 500).await;
    let addr = api.base.trim_start_matches("http://").to_owned();
    let mut waiters = Vec::with_capacity(WAITERS);
    for _ in 0..WAITERS / 100 {
        let batch = futures::future::join_all((0..100).map(|_| {
            let addr = addr.clone();
            async move {
                let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
                s.write_all(b"GET /data/e2e/slow?wait=120 HTTP/1.1\r\nHost: htsprep\r\n\r\n")
                    .await
                    .unwrap();
                s
            }
        }))
        .await;
        waiters.extend(batch);
    }
    // Every one of them has reached the cold path.
    while api.metric("htsprep_cold_requests_total").await < WAITERS as u64 + 1 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let loaded = hot_p99(&api, "/data/e2e/hot", 500).await;
    // They are all still waiting (no answer yet), on one job.
    let mut buf = [0u8; 1];
    for s in waiters.iter_mut().step_by(250) {
        let read = tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await;
        assert!(read.is_err(), "a ?wait=120 request was answered early");
    }
    assert_eq!(api.metric("htsprep_jobs_created_total").await, 2);
    eprintln!(
        "{WAITERS} open ?wait=120 requests on one cold job: hot-path p99 {loaded:?} vs idle \
         {idle:?} ({:.2}x)",
        loaded.as_secs_f64() / idle.as_secs_f64()
    );

    // A shutdown answers the waiting requests (202 with the job to poll) instead of keeping
    // them, and itself, until their deadline two minutes away.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(api.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    for s in waiters.iter_mut().step_by(250) {
        let mut head = [0u8; 12];
        tokio::time::timeout(Duration::from_secs(60), s.read_exact(&mut head))
            .await
            .expect("answered well before the wait's deadline")
            .unwrap();
        assert_eq!(&head, b"HTTP/1.1 202");
    }
}
