//! The catalog admin commands, run as a user would: the real binary on the real test files.

use std::process::{Command, Output};

use htsprep_tests::{bin, testdata_manifest};

fn api(data_dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(bin("htsprep-api"))
        .args(args)
        .env("HTSPREP_DATA_DIR", data_dir)
        .env_remove("HTSPREP_LISTEN")
        .env_remove("HTSPREP_ADMIN_TOKEN")
        .output()
        .expect("run htsprep-api")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn importing_the_real_test_files_registers_every_one() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("manifest.jsonl");
    let rows = testdata_manifest("testdata", &manifest).lines().count();
    assert!(rows >= 11, "one row per test file");

    let out = api(dir.path(), &["files", "import", manifest.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        format!("imported {rows} file(s) ({rows} new, 0 updated, 0 unchanged); rejected 0 row(s)")
    );

    let out = api(dir.path(), &["files", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), rows);
    let bam = listed
        .iter()
        .find(|f| f["local_id"] == "gstt1_sample.bam")
        .expect("the BAM is listed");
    assert_eq!(bam["format"], "BAM");
    assert_eq!(bam["size"], 60872);

    let out = api(dir.path(), &["files", "get", "testdata", "vega_x.gff3"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["format"], "GFF3");

    // A second import changes nothing.
    let out = api(dir.path(), &["files", "import", manifest.to_str().unwrap()]);
    assert!(
        text(&out.stdout).contains(&format!("(0 new, 0 updated, {rows} unchanged)")),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn bad_manifest_rows_are_reported_by_line_and_good_rows_imported() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("manifest.jsonl");
    std::fs::write(
        &manifest,
        concat!(
            r#"{"dcc":"d","local_id":"ok","md5":"0123456789abcdef0123456789abcdef","size":1,"format":"bed","access_url":"https://example.org/a.bed"}"#,
            "\n",
            r#"{"dcc":"d","local_id":"../escape","md5":"0123456789abcdef0123456789abcdef","size":1,"format":"bed","access_url":"https://example.org/a.bed"}"#,
            "\n",
            r#"{"dcc":"d","local_id":"x","md5":"0123456789abcdef0123456789abcdef","size":1,"format":"xls","access_url":"https://example.org/a.xls"}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = api(dir.path(), &["files", "import", manifest.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a bad row makes the exit status 1"
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("rejected line 2: local_id: identifier contains '/'"),
        "{err}"
    );
    assert!(
        err.contains("rejected line 3: format: unknown format \"xls\""),
        "{err}"
    );
    assert!(text(&out.stdout).contains("imported 1 file(s)"));

    let out = api(dir.path(), &["files", "get", "d", "ok"]);
    assert!(out.status.success());
    let out = api(dir.path(), &["files", "get", "d", "missing"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("file d/missing is not registered"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_configuration_is_reported_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin("htsprep-api"))
        .args(["files", "list"])
        .env("HTSPREP_DATA_DIR", dir.path())
        .env("HTSPREP_LISTEN", "not-an-address")
        .env("HTSPREP_ADMIN_TOKEN", "short")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("HTSPREP_LISTEN") && err.contains("HTSPREP_ADMIN_TOKEN"),
        "{err}"
    );
}
