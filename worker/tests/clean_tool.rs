//! `htsprep-worker clean` as the stage scripts run it: a filter between the decompressor and
//! `sort`, whose exit status tells the script whose fault a failure was.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

fn clean(preset: &str, dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_htsprep-worker"));
    cmd.arg("clean")
        .arg(preset)
        .arg("--stats")
        .arg(dir.join("stats"))
        .arg("--counts")
        .arg(dir.join("counts"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn a_vcf_is_split_into_header_and_records_with_its_stats_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let body = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/htslib_index.vcf"),
    )
    .unwrap();
    let mut cmd = clean("vcf", dir.path());
    cmd.arg("--header").arg(dir.path().join("header"));
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = String::from_utf8(out.stdout).unwrap();
    assert_eq!(records.lines().count(), 621);
    assert!(records.lines().all(|l| !l.starts_with('#')));
    let header = std::fs::read_to_string(dir.path().join("header")).unwrap();
    assert_eq!(header.lines().count(), 107);
    assert!(header.lines().last().unwrap().starts_with("#CHROM\t"));
    let stats = std::fs::read_to_string(dir.path().join("stats")).unwrap();
    assert!(
        stats.starts_with("records=621\nheader_lines=107\nmax_end="),
        "{stats}"
    );
    let mut counts: Vec<String> = std::fs::read_to_string(dir.path().join("counts"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    counts.sort();
    assert_eq!(counts, ["1\t191", "10\t211", "2\t219"]);
}

/// When `sort` dies first, `clean` must not be the one blamed: it exits as a command killed by
/// SIGPIPE would (141), silently, and the script looks further down the pipe for the cause.
#[test]
fn a_reader_that_goes_away_is_not_reported_as_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = clean("bed", dir.path()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for i in 0..1_000_000u64 {
            if writeln!(stdin, "chr1\t{i}\t{}", i + 10).is_err() {
                return;
            }
        }
    });
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 4096];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    writer.join().unwrap();
    assert_eq!(status.code(), Some(141), "{stderr}");
    assert_eq!(stderr, "");
}
