//! Awkward but valid input, other transports, and resuming from published artifacts.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/http.rs"]
mod http;
#[path = "support/tbi.rs"]
mod tbi;

use std::time::Duration;

use harness::{Harness, md5_of, repo_testdata, sh};
use htsprep_shared::domain::{ArtifactKind, EventKind, Format, JobStatus};

fn started(ran: &harness::Ran) -> Vec<String> {
    ran.job
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::StageStarted { stage, .. } => Some(stage.clone()),
            _ => None,
        })
        .collect()
}

fn records(path: &std::path::Path) -> usize {
    sh(
        "bash",
        &[
            &"-c",
            &"bgzip -cd < \"$1\" | awk '!/^#/' | wc -l",
            &"n",
            &path,
        ],
    )
    .trim()
    .parse()
    .unwrap()
}

#[tokio::test]
async fn header_only_vcf_is_a_valid_empty_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("header-only.vcf");
    let text = std::fs::read_to_string(repo_testdata("htslib_index.vcf")).unwrap();
    let header: String = text
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, header).unwrap();
    let h = Harness::new().await;
    let ran = h
        .run(h.file_spec("header-only", Format::Vcf, &path).await)
        .await;
    assert_eq!(ran.job.status, JobStatus::Completed, "{:?}", ran.job.error);
    assert_eq!(records(&h.artifact_path(&ran.spec, ArtifactKind::Data)), 0);
}

#[tokio::test]
async fn crlf_space_delimited_bed_with_browser_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("messy.bed");
    std::fs::write(
        &path,
        "browser position chr1:1-1000\r\ntrack name=x\r\n# comment\r\n\r\nchr2 100 200 b\r\nchr1  5  10 a\r\nchr1\t1\t3\tc\r\n",
    )
    .unwrap();
    let h = Harness::new().await;
    let ran = h.run(h.file_spec("messy", Format::Bed, &path).await).await;
    assert_eq!(ran.job.status, JobStatus::Completed, "{:?}", ran.job.error);
    let data = h.artifact_path(&ran.spec, ArtifactKind::Data);
    let body = sh("bash", &[&"-c", &"bgzip -cd < \"$1\"", &"b", &data]);
    assert_eq!(body, "chr1\t1\t3\tc\nchr1\t5\t10\ta\nchr2\t100\t200\tb\n");
}

#[tokio::test]
async fn https_style_download_over_loopback_http() {
    let body = std::fs::read(repo_testdata("test.broadPeak")).unwrap();
    let url = http::serve_file(body.clone(), 4, Duration::from_millis(5)).await;
    let h = Harness::new().await;
    let md5 = md5_of(&repo_testdata("test.broadPeak"));
    let ran = h
        .run(
            h.spec("http", Format::BroadPeak, &url, md5, body.len() as u64)
                .await,
        )
        .await;
    assert_eq!(ran.job.status, JobStatus::Completed, "{:?}", ran.job.error);
    assert_eq!(
        records(&h.artifact_path(&ran.spec, ArtifactKind::Data)),
        100
    );
}

#[tokio::test]
async fn drs_objects_resolve_to_their_access_url() {
    for via_access_id in [false, true] {
        let body = std::fs::read(repo_testdata("test.broadPeak")).unwrap();
        let host = http::serve_drs(body, via_access_id).await;
        let h = Harness::new().await;
        let md5 = md5_of(&repo_testdata("test.broadPeak"));
        let ran = h
            .run(
                h.spec(
                    "drs",
                    Format::BroadPeak,
                    &format!("drs://{host}/obj-1"),
                    md5.clone(),
                    0,
                )
                .await,
            )
            .await;
        assert_eq!(ran.job.status, JobStatus::Completed, "{:?}", ran.job.error);

        let missing = h
            .run(
                h.spec(
                    "drs-missing",
                    Format::BroadPeak,
                    &format!("drs://{host}/nope"),
                    md5,
                    0,
                )
                .await,
            )
            .await;
        assert_eq!(missing.job.status, JobStatus::Failed);
        assert!(missing.job.error.unwrap().message.contains("not found"));
    }
}

#[tokio::test]
async fn size_mismatch_is_reported() {
    let h = Harness::new().await;
    let path = repo_testdata("test.broadPeak");
    let url = url::Url::from_file_path(&path).unwrap().to_string();
    // Shorter than the catalog says: found at the end.
    let ran = h
        .run(
            h.spec("size", Format::BroadPeak, &url, md5_of(&path), 99_999)
                .await,
        )
        .await;
    assert_eq!(ran.job.status, JobStatus::Failed);
    let msg = ran.job.error.unwrap().message;
    assert!(
        msg.contains("the catalog says 99999 bytes but the source has 4955"),
        "{msg}"
    );
    // Longer: cut off as soon as it passes the catalog size, nothing more is written.
    let ran = h
        .run(
            h.spec("size2", Format::BroadPeak, &url, md5_of(&path), 12)
                .await,
        )
        .await;
    assert_eq!(ran.job.status, JobStatus::Failed);
    let msg = ran.job.error.unwrap().message;
    assert!(
        msg.contains("sent more than the 12 bytes the catalog gives as its size"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_retry_skips_the_stages_whose_artifact_exists() {
    for (name, format) in [
        ("ctcf_trackline.bed", Format::Bed),
        ("phix_unsorted.sam", Format::Sam),
        ("gencode_v19.gtf", Format::Gtf),
    ] {
        let h = Harness::new().await;
        let first = h
            .run(h.file_spec("resume", format, &repo_testdata(name)).await)
            .await;
        assert_eq!(
            first.job.status,
            JobStatus::Completed,
            "{:?}",
            first.job.error
        );
        let data_before = std::fs::read(h.artifact_path(&first.spec, ArtifactKind::Data)).unwrap();
        // The first attempt's index (a TBI written while compressing: compared by content,
        // as the retry makes it with tabix).
        let index_of = |spec| {
            let path = h.artifact_path(spec, ArtifactKind::Index);
            if format == Format::Sam {
                format!("{:?}", std::fs::read(&path).unwrap())
            } else {
                tbi::canonical(&path)
            }
        };
        let index_before = index_of(&first.spec);
        // As if the first attempt had died after publishing the data artifact.
        h.artifacts
            .delete(&first.spec.artifacts[&ArtifactKind::Index])
            .await
            .unwrap();

        // The retry cannot even reach the source: only the index stages may run.
        let mut spec = h.file_spec("resume", format, &repo_testdata(name)).await;
        spec.source_url =
            htsprep_shared::domain::AccessUrl::parse("http://127.0.0.1:1/unreachable").unwrap();
        let second = h.run(spec).await;
        assert_eq!(
            second.job.status,
            JobStatus::Completed,
            "{name}: {:?}",
            second.job.error
        );
        let ran = started(&second);
        assert!(
            !ran.iter()
                .any(|s| s == "fetch" || s == "sort" || s == "clean-sort-bgzip"),
            "{name}: {ran:?}"
        );
        assert!(ran.iter().any(|s| s == "index"), "{name}: {ran:?}");
        assert!(
            second
                .job
                .events
                .iter()
                .any(|e| matches!(e.kind, EventKind::StageSkipped { .. }))
        );
        let stages: Vec<_> = second
            .job
            .stages_done
            .iter()
            .map(|s| s.stage.as_str())
            .collect();
        assert_eq!(stages, ["publish-index"], "{name}");
        assert_eq!(
            std::fs::read(h.artifact_path(&second.spec, ArtifactKind::Data)).unwrap(),
            data_before
        );
        assert_eq!(index_of(&second.spec), index_before, "{name}");

        // With both artifacts present, nothing runs at all.
        let third = h
            .run(h.file_spec("resume", format, &repo_testdata(name)).await)
            .await;
        assert_eq!(third.job.status, JobStatus::Completed);
        assert!(started(&third).is_empty());
    }
}

#[tokio::test]
async fn contigs_longer_than_2_pow_29_get_a_csi_index() {
    let dir = tempfile::tempdir().unwrap();
    let bed = dir.path().join("long.bed");
    std::fs::write(&bed, "chr1\t100\t200\ta\nchr1\t600000000\t600000100\tb\n").unwrap();
    let sam = dir.path().join("long.sam");
    std::fs::write(
        &sam,
        "@SQ\tSN:big\tLN:700000000\nr1\t0\tbig\t650000000\t60\t4M\t*\t0\t0\tACGT\tIIII\nr2\t0\tbig\t10\t60\t4M\t*\t0\t0\tACGT\tIIII\n",
    )
    .unwrap();
    let h = Harness::new().await;
    for (id, format, path, ext, query) in [
        (
            "long-bed",
            Format::Bed,
            &bed,
            "gz",
            "chr1:599999990-600000010",
        ),
        (
            "long-sam",
            Format::Sam,
            &sam,
            "bam",
            "big:649999990-650000010",
        ),
    ] {
        let ran = h.run(h.file_spec(id, format, path).await).await;
        assert_eq!(
            ran.job.status,
            JobStatus::Completed,
            "{id}: {:?}",
            ran.job.error
        );
        let local = dir.path().join(format!("{id}.{ext}"));
        std::fs::copy(h.artifact_path(&ran.spec, ArtifactKind::Data), &local).unwrap();
        std::fs::copy(
            h.artifact_path(&ran.spec, ArtifactKind::Index),
            dir.path().join(format!("{id}.{ext}.csi")),
        )
        .unwrap();
        let hits = if format == Format::Sam {
            sh("samtools", &[&"view", &local, &query])
        } else {
            sh("tabix", &[&local, &query])
        };
        assert_eq!(
            hits.lines().count(),
            1,
            "{id}: the CSI index finds the far record"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_sources_are_fetched_and_checked() {
    let aws = htsprep_shared::aws::testing::TestAws::start().await;
    let client = aws.s3_client();
    let bucket = aws.fresh_bucket(&client).await;
    let path = repo_testdata("test.broadPeak");
    client
        .put_object()
        .bucket(&bucket)
        .key("sources/peaks file.broadPeak")
        .body(std::fs::read(&path).unwrap().into())
        .send()
        .await
        .unwrap();
    let mut h = Harness::new().await;
    h.ctx.fetcher = htsprep_worker::fetch::Fetcher::new(
        std::sync::Arc::new(harness::test_sources()),
        Default::default(),
    )
    .unwrap()
    .with_s3(client);
    let url = format!("s3://{bucket}/sources/peaks%20file.broadPeak");
    let ran = h
        .run(
            h.spec("s3", Format::BroadPeak, &url, md5_of(&path), 4955)
                .await,
        )
        .await;
    assert_eq!(ran.job.status, JobStatus::Completed, "{:?}", ran.job.error);
    assert_eq!(
        records(&h.artifact_path(&ran.spec, ArtifactKind::Data)),
        100
    );

    let missing = format!("s3://{bucket}/sources/nope.bed");
    let ran = h
        .run(
            h.spec("s3-missing", Format::Bed, &missing, md5_of(&path), 0)
                .await,
        )
        .await;
    assert_eq!(ran.job.status, JobStatus::Failed);
    let err = ran.job.error.unwrap();
    assert!(err.message.contains("was not found"), "{}", err.message);
    assert!(!err.retryable);
}
