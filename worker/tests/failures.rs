//! Bad input and bad luck: each ends as a failed job with a reason a user can act on (or, when
//! another attempt may pass, is handed back with it), and publishes nothing.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/http.rs"]
mod http;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use harness::{Harness, md5_of, repo_testdata, sh};
use htsprep_shared::domain::{ArtifactKind, EventKind, Format, JobStatus, Md5};
use htsprep_shared::jobstore::{Fence, JobStoreExt};
use htsprep_worker::job::JobUpdate;
use tokio_util::sync::CancellationToken;

fn assert_failed(
    h: &Harness,
    ran: &harness::Ran,
    needle: &str,
) -> htsprep_shared::domain::JobFailure {
    assert_eq!(
        ran.job.status,
        JobStatus::Failed,
        "events: {:#?}",
        ran.job.events
    );
    assert!(!ran.job.active);
    let err = ran.job.error.clone().expect("a failed job has a reason");
    assert!(
        err.message.contains(needle),
        "reason {:?} should mention {needle:?}",
        err.message
    );
    assert!(
        h.published().is_empty(),
        "nothing is published: {:?}",
        h.published()
    );
    assert_eq!(h.leftover_work(), 0, "the work directory is removed");
    assert!(matches!(ran.updates.last(), Some(JobUpdate::Failed(_))));
    err
}

/// A failure another attempt may fix hands the job back (pending, attempt 2) with the reason,
/// rather than failing it: the API retries it within its attempt budget.
fn assert_handed_back(
    h: &Harness,
    ran: &harness::Ran,
    needle: &str,
) -> htsprep_shared::domain::JobFailure {
    assert_eq!(ran.job.status, JobStatus::Pending, "{:#?}", ran.job.events);
    assert!(ran.job.active);
    assert_eq!(ran.job.attempt, 2);
    assert!(
        ran.job.events.iter().any(|e| matches!(
            &e.kind,
            EventKind::Rescheduled { reason } if reason.contains(needle)
        )),
        "no reschedule mentioning {needle:?}: {:#?}",
        ran.job.events
    );
    assert!(h.published().is_empty(), "{:?}", h.published());
    assert_eq!(h.leftover_work(), 0, "the work directory is removed");
    match ran.updates.last() {
        Some(JobUpdate::Failed(f)) => {
            assert!(f.message.contains(needle), "{f:?}");
            f.clone()
        }
        other => panic!("the stream ends with the failure, not {other:?}"),
    }
}

#[tokio::test]
async fn corrupt_bam() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(repo_testdata("gstt1_sample.bam")).unwrap();
    for b in &mut bytes[2000..2064] {
        *b = !*b;
    }
    let path = dir.path().join("corrupt.bam");
    std::fs::write(&path, &bytes).unwrap();
    let h = Harness::new().await;
    let ran = h
        .run(h.file_spec("corrupt", Format::Bam, &path).await)
        .await;
    let err = assert_failed(&h, &ran, "the input is not valid");
    assert_eq!(err.exit_status, Some(1));
    assert!(
        err.stage.is_some() && err.command.is_some() && err.stderr_tail.is_some(),
        "{err:?}"
    );
    assert!(!err.retryable);
}

#[tokio::test]
async fn truncated_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(repo_testdata("rmsk_chr21_plaingzip.bed.gz")).unwrap();
    let path = dir.path().join("truncated.bed.gz");
    std::fs::write(&path, &bytes[..3000]).unwrap();
    let h = Harness::new().await;
    let ran = h
        .run(h.file_spec("truncated", Format::Bed, &path).await)
        .await;
    let err = assert_failed(&h, &ran, "could not decompress");
    assert_eq!(err.stage.as_deref(), Some("clean-sort-bgzip"));
}

#[tokio::test]
async fn wrong_md5() {
    let h = Harness::new().await;
    let path = repo_testdata("test.broadPeak");
    let url = url::Url::from_file_path(&path).unwrap().to_string();
    let wrong = Md5::parse("00000000000000000000000000000000").unwrap();
    let ran = h
        .run(h.spec("wrong-md5", Format::BroadPeak, &url, wrong, 0).await)
        .await;
    let err = assert_failed(
        &h,
        &ran,
        "md5 mismatch: the catalog says 00000000000000000000000000000000",
    );
    assert!(
        err.message.contains(md5_of(&path).as_str()),
        "names the actual md5: {}",
        err.message
    );
    assert_eq!(err.stage.as_deref(), Some("fetch"));
    assert!(!err.retryable);
}

#[tokio::test]
async fn a_wrong_md5_is_the_failure_even_when_a_stage_failed_on_those_bytes() {
    // A local source is hashed while the stages read it: the stage fails first, but what the
    // user must hear is that the file is not the one the catalog describes.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a.bed");
    std::fs::write(&path, "this is not a BED file\n").unwrap();
    let url = url::Url::from_file_path(&path).unwrap().to_string();
    let wrong = Md5::parse("00000000000000000000000000000000").unwrap();
    let h = Harness::new().await;
    let ran = h
        .run(
            h.spec("wrong-md5-bad-bytes", Format::Bed, &url, wrong, 0)
                .await,
        )
        .await;
    let err = assert_failed(&h, &ran, "md5 mismatch");
    assert_eq!(err.stage.as_deref(), Some("fetch"));
    assert!(!err.retryable);
    let finished: Vec<&str> = ran
        .job
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::StageFinished { stage, .. } => Some(stage.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        finished,
        ["clean-sort-bgzip", "fetch"],
        "the stage ran on the linked source first"
    );
}

#[tokio::test]
async fn unsupported_compression() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("peaks.bed.xz");
    sh(
        "bash",
        &[
            &"-c",
            &"xz -c < \"$1\" > \"$2\"",
            &"xz",
            &repo_testdata("test.broadPeak"),
            &path,
        ],
    );
    let h = Harness::new().await;
    let ran = h
        .run(h.file_spec("xz", Format::BroadPeak, &path).await)
        .await;
    assert_failed(&h, &ran, "compressed with xz, which is not supported");
}

#[tokio::test]
async fn unreachable_url() {
    let h = Harness::new().await;
    // Nothing listens on port 1 of loopback.
    let md5 = md5_of(&repo_testdata("test.broadPeak"));
    let ran = h
        .run(
            h.spec(
                "unreachable",
                Format::BroadPeak,
                "http://127.0.0.1:1/peaks.bed",
                md5,
                0,
            )
            .await,
        )
        .await;
    let err = assert_handed_back(&h, &ran, "is unreachable");
    assert!(err.retryable, "a network failure may pass");
}

#[tokio::test]
async fn missing_upstream_file() {
    let h = Harness::new().await;
    let url = http::serve_status(StatusCode::NOT_FOUND).await;
    let md5 = md5_of(&repo_testdata("test.broadPeak"));
    let ran = h
        .run(h.spec("gone", Format::BroadPeak, &url, md5, 0).await)
        .await;
    let err = assert_failed(&h, &ran, "was not found (HTTP 404)");
    assert!(!err.retryable);
}

#[tokio::test]
async fn server_errors_are_retried_then_reported() {
    let h = Harness::new().await;
    let url = http::serve_status(StatusCode::SERVICE_UNAVAILABLE).await;
    let md5 = md5_of(&repo_testdata("test.broadPeak"));
    let ran = h
        .run(h.spec("flaky", Format::BroadPeak, &url, md5, 0).await)
        .await;
    let err = assert_handed_back(&h, &ran, "answered HTTP 503");
    assert!(err.retryable);
}

#[tokio::test]
async fn lost_lease_mid_job_cancels_and_publishes_nothing() {
    let body = std::fs::read(repo_testdata("ctcf_trackline.bed")).unwrap();
    let md5 = md5_of(&repo_testdata("ctcf_trackline.bed"));
    // 20 pieces 100 ms apart: the download takes about two seconds.
    let url = http::serve_file(body, 20, Duration::from_millis(100)).await;
    let h = Harness::new().await;
    let spec = h.spec("reclaimed", Format::Bed, &url, md5, 0).await;
    let store = h.store.clone();
    let fence = Fence {
        job_id: spec.job_id.clone(),
        lease: spec.lease.clone(),
        attempt: spec.attempt,
    };
    let thief = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        // Another attempt takes the job over: the old lease is void.
        store
            .reschedule(&fence, "reclaimed by the test")
            .await
            .unwrap()
    });
    let ran = h.run(spec.clone()).await;
    let new = thief.await.unwrap();
    let fetch_finished = ran
        .job
        .events
        .iter()
        .any(|e| matches!(&e.kind, EventKind::StageFinished { stage, .. } if stage == "fetch"));
    assert!(
        !fetch_finished,
        "the download was cut short and its end never recorded"
    );
    assert_eq!(
        ran.job.status,
        JobStatus::Pending,
        "the new attempt owns it now"
    );
    assert_eq!(ran.job.attempt, 2);
    assert_eq!(ran.job.lease, new.lease);
    assert!(ran.job.stages_done.is_empty());
    assert!(h.published().is_empty());
    assert_eq!(h.leftover_work(), 0);
    match ran.updates.last() {
        Some(JobUpdate::Failed(f)) => {
            assert!(f.message.contains("lease was lost"), "{}", f.message)
        }
        other => panic!("expected a failure update, got {other:?}"),
    }
}

#[tokio::test]
async fn duration_cap_stops_a_runaway_job() {
    let body = std::fs::read(repo_testdata("ctcf_trackline.bed")).unwrap();
    let md5 = md5_of(&repo_testdata("ctcf_trackline.bed"));
    let url = http::serve_file(body, 50, Duration::from_millis(100)).await;
    let h = Harness::new().await;
    let mut spec = h.spec("runaway", Format::Bed, &url, md5, 0).await;
    spec.caps.duration_cap = Duration::from_millis(300);
    let ran = h.run(spec).await;
    assert_failed(&h, &ran, "duration cap");
}

#[tokio::test]
async fn shutdown_hands_the_job_back() {
    let body = std::fs::read(repo_testdata("ctcf_trackline.bed")).unwrap();
    let md5 = md5_of(&repo_testdata("ctcf_trackline.bed"));
    let url = http::serve_file(body, 50, Duration::from_millis(100)).await;
    let h = Harness::new().await;
    let spec = h.spec("handed-back", Format::Bed, &url, md5, 0).await;
    let shutdown = CancellationToken::new();
    let s2 = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        s2.cancel();
    });
    let ran = h.run_with(spec, shutdown).await;
    assert_eq!(
        ran.job.status,
        JobStatus::Pending,
        "rescheduled for another worker"
    );
    assert_eq!(ran.job.attempt, 2);
    assert!(ran.job.active);
    assert!(h.published().is_empty());
    assert!(ran.job.events.iter().any(
        |e| matches!(&e.kind, EventKind::Rescheduled { reason } if reason.contains("shut down"))
    ));
}

#[tokio::test]
async fn a_file_name_with_shell_syntax_is_only_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a$(touch pwned)`touch pwned2`.bed");
    std::fs::copy(repo_testdata("test.broadPeak"), &path).unwrap();
    let h = Harness::new().await;
    let ran = h
        .run(h.file_spec("shell-name", Format::Bed, &path).await)
        .await;
    assert_eq!(ran.job.status, JobStatus::Completed, "{:?}", ran.job.error);
    for root in [dir.path(), h.dir.path(), &std::env::current_dir().unwrap()] {
        let found = sh("find", &[&root, &"-name", &"pwned*"]);
        assert!(found.trim().is_empty(), "created: {found}");
    }
}

#[tokio::test]
async fn data_another_attempt_published_meanwhile_is_kept_and_indexed_by_the_next_attempt() {
    let bed = repo_testdata("ctcf_trackline.bed");
    let body = std::fs::read(&bed).unwrap();
    let md5 = md5_of(&bed);
    let url = http::serve_file(body, 20, Duration::from_millis(100)).await;
    let h = Harness::new().await;
    let spec = h.spec("raced", Format::Bed, &url, md5, 0).await;
    // A late attempt of the same job publishes its own data (valid, but not byte for byte what
    // this attempt builds) while this attempt downloads.
    let theirs = h.dir.path().join("theirs.bed.gz");
    let made = sh(
        "bash",
        &[
            &"-c",
            &format!(
                "(echo '# published by another attempt'; grep -v '^track' {} | sort -k1,1 -k2,2n) | bgzip -c > {}",
                bed.display(),
                theirs.display()
            ),
        ],
    );
    assert!(made.is_empty(), "{made}");
    let artifacts = Arc::clone(&h.artifacts);
    let data_key = spec.artifacts[&ArtifactKind::Data].clone();
    let src = theirs.clone();
    let zombie = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        artifacts.put_file(&data_key, &src).await.unwrap()
    });
    let ran = h.run(spec.clone()).await;
    zombie.await.unwrap();
    let published = std::fs::read(h.artifact_path(&spec, ArtifactKind::Data)).unwrap();
    assert_eq!(published, std::fs::read(&theirs).unwrap(), "never replaced");
    assert_eq!(ran.job.status, JobStatus::Pending, "{:#?}", ran.job.events);
    assert_eq!(ran.job.attempt, 2, "handed back for the next attempt");
    assert!(ran.job.events.iter().any(|e| matches!(
        &e.kind,
        EventKind::Rescheduled { reason } if reason.contains("published the data artifact first")
    )));
    assert!(matches!(ran.updates.last(), Some(JobUpdate::Failed(f)) if f.retryable));
    assert_eq!(h.leftover_work(), 0);
    assert!(
        !h.artifact_path(&spec, ArtifactKind::Index).exists(),
        "no index for bytes this attempt did not build"
    );

    // The next attempt indexes the published data, and the pair reads back.
    let mut next = spec.clone();
    next.lease = ran.job.lease.clone();
    next.attempt = ran.job.attempt;
    let done = h.run(next.clone()).await;
    assert_eq!(
        done.job.status,
        JobStatus::Completed,
        "{:#?}",
        done.job.events
    );
    let data = h.artifact_path(&next, ArtifactKind::Data);
    assert_eq!(std::fs::read(&data).unwrap(), published, "still theirs");
    let index = h.artifact_path(&next, ArtifactKind::Index);
    let linked = h.dir.path().join("pair.bed.gz");
    std::fs::copy(&data, &linked).unwrap();
    std::fs::copy(&index, h.dir.path().join("pair.bed.gz.tbi")).unwrap();
    let rows = sh("tabix", &[&linked, &"chr2L"]);
    let expected = std::fs::read_to_string(&bed)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("chr2L\t"))
        .count();
    assert!(expected > 0);
    assert_eq!(
        rows.lines().count(),
        expected,
        "the index matches the published data"
    );
}

/// A real file with one bad line fails as bad input, naming the line (counted in the source,
/// header lines included), the rule it breaks and the line itself; nothing is published.
#[tokio::test]
async fn a_bad_line_in_a_text_source_is_named_by_its_line_number() {
    let dir = tempfile::tempdir().unwrap();
    // (source, format, line to spoil, how, what the reason says)
    type Spoil = fn(&str) -> String;
    let cases: [(&str, Format, usize, Spoil, &str); 3] = [
        (
            "ctcf_trackline.bed",
            Format::Bed,
            4,
            |l| {
                let c: Vec<&str> = l.split('\t').collect();
                format!("{}\t{}\t{}", c[0], c[2], c[1])
            },
            "line 4: end (column 3) is smaller than start (column 2): \"chr2L<TAB>119067<TAB>118727\"",
        ),
        (
            "vega_x.gff3",
            Format::Gff,
            12,
            |l| {
                let mut c: Vec<&str> = l.split('\t').collect();
                c[3] = "1e6";
                c.join("\t")
            },
            "line 12: start (column 4) is not an integer >= 1: \"X<TAB>Vega<TAB>CDS<TAB>1e6<TAB>",
        ),
        (
            "htslib_index.vcf",
            Format::Vcf,
            107,
            |_| String::new(),
            "line 107: data line before the #CHROM header line: \"1<TAB>9999919<TAB>",
        ),
    ];
    for (name, format, line, spoil, says) in cases {
        let body = std::fs::read_to_string(repo_testdata(name)).unwrap();
        let mut lines: Vec<String> = body.lines().map(str::to_owned).collect();
        lines[line - 1] = spoil(&lines[line - 1]);
        if format == Format::Vcf {
            assert!(body.lines().nth(line - 1).unwrap().starts_with("#CHROM"));
            lines.remove(line - 1);
        }
        let path = dir.path().join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let h = Harness::new().await;
        let ran = h.run(h.file_spec("spoilt", format, &path).await).await;
        let err = assert_failed(&h, &ran, "the input is not valid");
        assert_eq!(err.stage.as_deref(), Some("clean-sort-bgzip"), "{name}");
        assert_eq!(err.exit_status, Some(1), "{name}");
        assert!(!err.retryable, "{name}");
        let tail = err.stderr_tail.unwrap_or_default();
        assert!(tail.contains(says), "{name}: {tail}");
    }
}
