//! The production storage on one machine: artifacts in S3 (the moto emulator) and jobs and the
//! catalog in MongoDB (the mongoeco wire server), with workers from the local fleet.

use htsprep_shared::aws::testing::TestAws;
use htsprep_shared::mongo::testing::TestMongo;
use htsprep_tests::api::ApiProcess;
use htsprep_tests::gmod::{check_bam, check_tabix};
use htsprep_tests::{run, testdata_manifest};

/// The API's environment for artifacts in `bucket` of the S3 emulator, and `extra`.
fn in_s3<'a>(aws: &'a TestAws, bucket: &'a str, extra: &[(&'a str, &'a str)]) -> ApiProcess {
    let mut env = vec![
        ("WORKFLOW_S3_BUCKET", bucket),
        ("WORKFLOW_S3_PREFIX", "htsprep"),
        ("AWS_ENDPOINT_URL", aws.endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ];
    env.extend_from_slice(extra);
    ApiProcess::start(&env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cold_path_with_artifacts_in_s3_and_jobs_in_mongodb() {
    let aws = TestAws::start().await;
    let mongo = TestMongo::start().await;
    let s3 = aws.s3_client();
    let bucket = aws.fresh_bucket(&s3).await;
    let database = format!("s3e2e_{}", std::process::id());
    let api = in_s3(
        &aws,
        &bucket,
        &[("MONGODB_URI", &mongo.uri), ("MONGODB_DATABASE", &database)],
    );
    let dir = tempfile::tempdir().unwrap();
    api.register(&testdata_manifest("testdata", &dir.path().join("m.jsonl")))
        .await;

    for id in [
        "phix_unsorted.sam",
        "htslib_index.vcf",
        "ctcf_trackline.bed",
    ] {
        let resp = api
            .http
            .get(api.url(&format!("/data/testdata/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202, "{id}");
        let job_id = resp.json::<serde_json::Value>().await.unwrap()["job_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let job = api
            .wait_job(&job_id, std::time::Duration::from_secs(120))
            .await;
        assert_eq!(job["status"], "completed", "{id}: {job:#}");
        for (kind, path) in [("data", "data"), ("index", "index")] {
            let key = job["artifacts"][kind].as_str().unwrap();
            let object = s3
                .get_object()
                .bucket(&bucket)
                .key(format!("htsprep/{key}"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{id} {kind} is in S3: {e:?}"));
            let stored = object.body.collect().await.unwrap().into_bytes().to_vec();
            let served = api
                .http
                .get(api.url(&format!("/{path}/testdata/{id}")))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
                .to_vec();
            assert_eq!(
                served, stored,
                "{id} {kind}: served bytes are the S3 object"
            );
            let n = stored.len();
            let resp = api
                .http
                .get(api.url(&format!("/{path}/testdata/{id}")))
                .header("range", format!("bytes={}-", n / 2))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 206);
            assert_eq!(
                resp.headers()["content-range"],
                format!("bytes {}-{}/{n}", n / 2, n - 1).as_str()
            );
            assert_eq!(resp.bytes().await.unwrap().to_vec(), &stored[n / 2..]);
        }
    }
    assert!(
        !api.data_dir().join("artifacts/objects").exists(),
        "nothing was written locally"
    );
}

/// `HTSPREP_S3_REDIRECT`: ready artifacts are answered with a redirect to a presigned S3 URL.
/// The GMOD readers (following the redirect with their `Range`) and samtools (through an
/// htsget ticket naming presigned URLs) find the same records as htslib, and the API sends none
/// of the artifacts' bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_redirects_readers_get_artifact_bytes_from_s3_not_from_the_api() {
    let aws = TestAws::start().await;
    let s3 = aws.s3_client();
    let bucket = aws.fresh_bucket(&s3).await;
    let api = in_s3(
        &aws,
        &bucket,
        &[
            ("HTSPREP_S3_REDIRECT", "true"),
            ("HTSPREP_S3_REDIRECT_SECONDS", "120"),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    api.register(&testdata_manifest("testdata", &dir.path().join("m.jsonl")))
        .await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for id in ["gstt1_sample.bam", "htslib_index.vcf", "ctcf_trackline.bed"] {
        // Prepared while the request waits, then redirected like every later read.
        let resp = no_redirects
            .get(api.url(&format!("/data/testdata/{id}?wait=120")))
            .header("Range", "bytes=0-99")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 307, "{id}");
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            location.starts_with(&aws.endpoint) && location.contains("X-Amz-Signature="),
            "{id}: {location}"
        );
        let part = reqwest::Client::new()
            .get(&location)
            .header("Range", "bytes=0-99")
            .send()
            .await
            .unwrap();
        assert_eq!(part.status(), 206, "{id}");
        assert_eq!(part.bytes().await.unwrap().len(), 100);
    }
    assert_eq!(api.metric("htsprep_served_bytes_total").await, 0);

    check_bam(
        &api,
        "gstt1_sample.bam",
        &[("chr22", 24_376_180, 24_376_300), ("chr22", 0, 50_000_000)],
    )
    .await;
    check_tabix(&api, "htslib_index.vcf", &[("1", 10_000_000, 10_000_500)]).await;
    check_tabix(&api, "ctcf_trackline.bed", &[("chr2L", 0, 1_000_000)]).await;

    // htsget: the ticket names the artifact in S3; samtools reads the region from there.
    let ticket: serde_json::Value = api
        .http
        .get(api.url(
            "/htsget/reads/testdata/gstt1_sample.bam?referenceName=chr22&start=24376180&end=24376300",
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ranged: Vec<&str> = ticket["htsget"]["urls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["headers"]["Range"].is_string())
        .map(|u| u["url"].as_str().unwrap())
        .collect();
    assert!(!ranged.is_empty(), "{ticket}");
    assert!(
        ranged.iter().all(|u| u.starts_with(&aws.endpoint)),
        "{ticket}"
    );
    let bam = dir.path().join("local.bam");
    api.download("/data/testdata/gstt1_sample.bam", &bam).await;
    api.download(
        "/index/testdata/gstt1_sample.bam",
        &dir.path().join("local.bam.bai"),
    )
    .await;
    let samtools =
        |args: &[&std::ffi::OsStr]| run(std::process::Command::new("samtools").args(args));
    let url = api.url(
        "/htsget/reads/testdata/gstt1_sample.bam?referenceName=chr22&start=24376180&end=24376300",
    );
    let got = dir.path().join("got.bam");
    samtools(&[
        "view".as_ref(),
        "-b".as_ref(),
        "-o".as_ref(),
        got.as_os_str(),
        url.as_ref(),
    ]);
    samtools(&["index".as_ref(), got.as_os_str()]);
    let region = |p: &std::path::Path| {
        samtools(&[
            "view".as_ref(),
            p.as_os_str(),
            "chr22:24376181-24376300".as_ref(),
        ])
    };
    let want = region(&bam);
    assert!(!want.is_empty());
    assert_eq!(
        region(&got),
        want,
        "samtools through the ticket finds the region's reads"
    );

    // Every artifact byte came from S3.
    assert_eq!(api.metric("htsprep_served_bytes_total").await, 0);
    assert!(api.metric("htsprep_s3_redirects_total").await >= 10);
}
