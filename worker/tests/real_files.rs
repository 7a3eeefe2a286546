//! Every real test file through its real pipeline, checked by htslib's own readers (samtools,
//! tabix) against counts taken independently from the source file.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/tbi.rs"]
mod tbi;

use std::collections::BTreeMap;
use std::path::Path;

use harness::{Harness, repo_testdata, sh};
use htsprep_shared::domain::{ArtifactKind, EventKind, Format, JobStatus};
use htsprep_worker::job::JobUpdate;

/// Records per contig in a text source, counted here without any pipeline code.
fn text_counts(path: &Path, format: Format) -> (BTreeMap<String, usize>, usize) {
    let text = sh("bash", &[&"-c", &"gzip -cdf < \"$1\"", &"count", &path]);
    let mut per = BTreeMap::new();
    let mut headers = 0;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if format == Format::Gff && (line.starts_with("##FASTA") || line.starts_with('>')) {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with('#') {
            headers += 1;
            continue;
        }
        if matches!(format, Format::Bed | Format::NarrowPeak | Format::BroadPeak)
            && (line.starts_with("track") || line.starts_with("browser"))
        {
            continue;
        }
        let contig = if line.contains('\t') {
            line.split('\t').next()
        } else {
            line.split_whitespace().next()
        };
        *per.entry(contig.unwrap().to_owned()).or_insert(0) += 1;
    }
    (per, headers)
}

fn check_tabix(data: &Path, expected: &BTreeMap<String, usize>) {
    let listed: Vec<String> = sh("tabix", &[&"-l", &data])
        .lines()
        .map(str::to_owned)
        .collect();
    let mut want: Vec<String> = expected.keys().cloned().collect();
    let mut got = listed.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want, "contigs in the index of {}", data.display());
    for (contig, n) in expected {
        let region = format!("{{{contig}}}");
        let rows = sh("tabix", &[&data, &region]).lines().count();
        assert_eq!(rows, *n, "tabix region {contig} of {}", data.display());
    }
}

fn bam_counts(path: &Path) -> BTreeMap<String, usize> {
    let mut per = BTreeMap::new();
    for line in sh("samtools", &[&"view", &path]).lines() {
        let rname = line.split('\t').nth(2).unwrap();
        *per.entry(rname.to_owned()).or_insert(0) += 1;
    }
    per
}

fn check_bam(data: &Path, expected: &BTreeMap<String, usize>) {
    let total: usize = expected.values().sum();
    assert_eq!(
        sh("samtools", &[&"view", &"-c", &data])
            .trim()
            .parse::<usize>()
            .unwrap(),
        total
    );
    for (rname, n) in expected {
        let got: usize = sh("samtools", &[&"view", &"-c", &data, rname])
            .trim()
            .parse()
            .unwrap();
        assert_eq!(got, *n, "indexed query for reference {rname}");
    }
    // Coordinate order: positions never decrease within a reference, references never recur.
    let mut seen = Vec::<String>::new();
    let mut last = 0u64;
    for line in sh("samtools", &[&"view", &data]).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let (rname, pos) = (f[2].to_owned(), f[3].parse::<u64>().unwrap());
        if seen.last() != Some(&rname) {
            assert!(
                !seen.contains(&rname),
                "reference {rname} appears in two blocks"
            );
            seen.push(rname);
            last = 0;
        }
        assert!(
            pos >= last || seen.last().unwrap() == "*",
            "unsorted at {line}"
        );
        last = pos;
    }
}

/// The stages a job started, in order.
fn started_stages(ran: &harness::Ran) -> Vec<&str> {
    ran.job
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::StageStarted { stage, .. } => Some(stage.as_str()),
            _ => None,
        })
        .collect()
}

async fn run_file(name: &str, format: Format) -> (Harness, harness::Ran) {
    let h = Harness::new().await;
    let spec = h
        .file_spec(
            &name.replace(['$', '(', ')', ' '], "_"),
            format,
            &repo_testdata(name),
        )
        .await;
    let ran = h.run(spec).await;
    assert_eq!(
        ran.job.status,
        JobStatus::Completed,
        "{name}: {:?}\nevents: {:#?}",
        ran.job.error,
        ran.job.events
    );
    assert!(matches!(ran.updates.first(), Some(JobUpdate::Accepted)));
    assert!(matches!(
        ran.updates.last(),
        Some(JobUpdate::Completed { .. })
    ));
    assert_eq!(h.leftover_work(), 0, "the job's work directory is removed");
    let stages: Vec<_> = ran
        .job
        .stages_done
        .iter()
        .map(|s| s.stage.as_str())
        .collect();
    assert_eq!(stages, ["publish-data", "publish-index"]);
    assert_eq!(ran.job.artifacts.len(), 2);
    (h, ran)
}

async fn tabix_case(name: &str, format: Format, index_ext: &str) {
    let (h, ran) = run_file(name, format).await;
    let data = h.artifact_path(&ran.spec, ArtifactKind::Data);
    let index = h.artifact_path(&ran.spec, ArtifactKind::Index);
    // tabix wants the index next to the data under the conventional name.
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("artifact.gz");
    std::fs::copy(&data, &local).unwrap();
    std::fs::copy(&index, dir.path().join(format!("artifact.gz.{index_ext}"))).unwrap();
    let (expected, _) = if format == Format::BigBed {
        let bed = dir.path().join("from-bigbed.bed");
        sh("bigbedtobed", &[&repo_testdata(name), &bed]);
        text_counts(&bed, Format::Bed)
    } else {
        text_counts(&repo_testdata(name), format)
    };
    assert!(!expected.is_empty());
    check_tabix(&local, &expected);
    // The index written while compressing has the content tabix gives the same file.
    let preset = match format {
        Format::Vcf => "vcf",
        Format::Gff | Format::Gtf => "gff",
        _ => "bed",
    };
    let copy = dir.path().join("by-tabix.gz");
    std::fs::copy(&data, &copy).unwrap();
    sh("tabix", &[&"-p", &preset, &copy]);
    tbi::assert_same(&index, &dir.path().join("by-tabix.gz.tbi"));
    assert!(
        ran.job.events.iter().any(|e| matches!(
            &e.kind,
            EventKind::StageSkipped { stage, .. } if stage == "index"
        )),
        "no tabix pass after compression: {:?}",
        ran.job.events
    );
}

#[tokio::test]
async fn vcf() {
    tabix_case("htslib_index.vcf", Format::Vcf, "tbi").await;
}

#[tokio::test]
async fn vcf_keeps_its_header() {
    let (h, ran) = run_file("htslib_index.vcf", Format::Vcf).await;
    let data = h.artifact_path(&ran.spec, ArtifactKind::Data);
    let (_, headers) = text_counts(&repo_testdata("htslib_index.vcf"), Format::Vcf);
    let got = sh(
        "bash",
        &[
            &"-c",
            &"bgzip -cd < \"$1\" | awk '/^#/' | wc -l",
            &"h",
            &data,
        ],
    );
    assert_eq!(got.trim().parse::<usize>().unwrap(), headers);
}

#[tokio::test]
async fn gff3() {
    tabix_case("vega_x.gff3", Format::Gff, "tbi").await;
}

#[tokio::test]
async fn gff3_with_a_fasta_section() {
    tabix_case("hybrid_fasta.gff3", Format::Gff, "tbi").await;
}

#[tokio::test]
async fn gtf_through_gffread() {
    tabix_case("gencode_v19.gtf", Format::Gtf, "tbi").await;
}

#[tokio::test]
async fn bed_with_a_track_line() {
    tabix_case("ctcf_trackline.bed", Format::Bed, "tbi").await;
}

#[tokio::test]
async fn bed_in_plain_gzip() {
    tabix_case("rmsk_chr21_plaingzip.bed.gz", Format::Bed, "tbi").await;
}

#[tokio::test]
async fn broadpeak() {
    tabix_case("test.broadPeak", Format::BroadPeak, "tbi").await;
}

#[tokio::test]
async fn bigbed_through_bigbedtobed() {
    tabix_case("pybigwig_test.bigBed", Format::BigBed, "tbi").await;
}

#[tokio::test]
async fn unsorted_sam_is_sorted_and_indexed() {
    let (h, ran) = run_file("phix_unsorted.sam", Format::Sam).await;
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("a.bam");
    std::fs::copy(h.artifact_path(&ran.spec, ArtifactKind::Data), &local).unwrap();
    std::fs::copy(
        h.artifact_path(&ran.spec, ArtifactKind::Index),
        dir.path().join("a.bam.bai"),
    )
    .unwrap();
    check_bam(&local, &bam_counts(&repo_testdata("phix_unsorted.sam")));
    let started = started_stages(&ran);
    assert_eq!(started, ["fetch", "sort", "index", "validate"]);
}

#[tokio::test]
async fn sorted_bam_is_indexed_without_resorting() {
    let (h, ran) = run_file("gstt1_sample.bam", Format::Bam).await;
    let data = h.artifact_path(&ran.spec, ArtifactKind::Data);
    assert_eq!(
        std::fs::read(&data).unwrap(),
        std::fs::read(repo_testdata("gstt1_sample.bam")).unwrap(),
        "an already sorted BAM is served as it is"
    );
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("a.bam");
    std::fs::copy(&data, &local).unwrap();
    std::fs::copy(
        h.artifact_path(&ran.spec, ArtifactKind::Index),
        dir.path().join("a.bam.bai"),
    )
    .unwrap();
    check_bam(&local, &bam_counts(&repo_testdata("gstt1_sample.bam")));
    let started = started_stages(&ran);
    assert_eq!(started, ["fetch", "index-as-is", "validate"]);
}

#[tokio::test]
async fn an_unsorted_bam_is_detected_and_sorted() {
    // A BAM made from the unsorted SAM, so the header cannot be trusted to say so.
    let dir = tempfile::tempdir().unwrap();
    let bam = dir.path().join("unsorted.bam");
    sh(
        "samtools",
        &[
            &"view",
            &"-b",
            &"-o",
            &bam,
            &repo_testdata("phix_unsorted.sam"),
        ],
    );
    let h = Harness::new().await;
    let spec = h.file_spec("unsorted-bam", Format::Bam, &bam).await;
    let ran = h.run(spec).await;
    assert_eq!(ran.job.status, JobStatus::Completed, "{:?}", ran.job.error);
    let started = started_stages(&ran);
    assert_eq!(
        started,
        ["fetch", "index-as-is", "sort", "index", "validate"]
    );
    let local = dir.path().join("sorted.bam");
    std::fs::copy(h.artifact_path(&ran.spec, ArtifactKind::Data), &local).unwrap();
    std::fs::copy(
        h.artifact_path(&ran.spec, ArtifactKind::Index),
        dir.path().join("sorted.bam.bai"),
    )
    .unwrap();
    check_bam(&local, &bam_counts(&bam));
}
