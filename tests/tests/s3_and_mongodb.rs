//! The production storage on one machine: artifacts in S3 (the moto emulator) and jobs and the
//! catalog in MongoDB (the mongoeco wire server), with workers from the local fleet.

use htsprep_shared::aws::testing::TestAws;
use htsprep_shared::mongo::testing::TestMongo;
use htsprep_tests::api::ApiProcess;
use htsprep_tests::testdata_manifest;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cold_path_with_artifacts_in_s3_and_jobs_in_mongodb() {
    let aws = TestAws::start().await;
    let mongo = TestMongo::start().await;
    let s3 = aws.s3_client();
    let bucket = aws.fresh_bucket(&s3).await;
    let database = format!("s3e2e_{}", std::process::id());
    let api = ApiProcess::start(&[
        ("MONGODB_URI", &mongo.uri),
        ("MONGODB_DATABASE", &database),
        ("WORKFLOW_S3_BUCKET", &bucket),
        ("WORKFLOW_S3_PREFIX", "htsprep"),
        ("AWS_ENDPOINT_URL", &aws.endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ]);
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
