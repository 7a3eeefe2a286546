//! Helpers for the end-to-end tests: locating the built binaries, the repository's real test
//! files, and writing catalog manifests for them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// The directory of real test files (`testdata/`, see its MANIFEST.tsv).
pub fn testdata() -> PathBuf {
    repo_root().join("testdata")
}

/// `HTSPREP_FILE_ROOTS` for the processes tests start: `file://` sources come from the
/// repository's testdata and from temporary directories.
pub fn file_roots() -> String {
    format!(
        "{},{}",
        testdata().display(),
        std::env::temp_dir().display()
    )
}

/// Why a job was rescheduled: the `reason` of the first `rescheduled` event of its timeline (as
/// `/jobs/{id}` shows it to the admin). Panics when there is none.
pub fn rescheduled_reason(job: &serde_json::Value) -> String {
    job["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["kind"] == "rescheduled")
        .and_then(|e| e["reason"].as_str())
        .unwrap_or_else(|| panic!("the retry says why: {job:#}"))
        .to_owned()
}

/// A built workspace binary. `scripts/test.sh` builds them before the tests run; running
/// `cargo build --workspace --bins` by hand does the same.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test-binary>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo build --workspace --bins` (scripts/test.sh does) before the tests",
        path.display()
    );
    path
}

/// Writes a catalog manifest for the real test files, as `scripts/testdata-manifest.sh` does.
pub fn testdata_manifest(dcc: &str, out: &Path) -> String {
    let output = Command::new("bash")
        .arg(repo_root().join("scripts/testdata-manifest.sh"))
        .arg(testdata())
        .arg(dcc)
        .output()
        .expect("run scripts/testdata-manifest.sh");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("utf-8 manifest");
    std::fs::write(out, &text).expect("write manifest");
    text
}

/// Runs a tool to completion and returns its standard output; panics with its standard error
/// unless it succeeds.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{:?}: {e}", cmd.get_program()));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// The md5 of some bytes, as `md5sum` computes it.
pub fn md5_hex(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = dir.path().join("x");
    std::fs::write(&p, bytes).expect("write");
    let out = Command::new("md5sum").arg(&p).output().expect("md5sum");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .split_whitespace()
        .next()
        .expect("a sum")
        .to_owned()
}

/// A manifest row (dcc `e2e`) for a source served at `url` with these bytes.
pub fn http_row(local_id: &str, format: &str, url: &str, bytes: &[u8]) -> String {
    format!(
        "{{\"dcc\":\"e2e\",\"local_id\":\"{local_id}\",\"md5\":\"{}\",\"size\":{},\"format\":\"{format}\",\"access_url\":\"{url}\"}}\n",
        md5_hex(bytes),
        bytes.len()
    )
}

/// Prints (for the record, with `--no-capture`) how long after `killed_at` the job was
/// rescheduled.
pub fn report_reclaim(job: &serde_json::Value, killed_at: chrono::DateTime<chrono::Utc>) {
    let at = job["events"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["kind"] == "rescheduled")
        .and_then(|e| e["at"].as_str())
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    if let Some(at) = at {
        let ms = (at.with_timezone(&chrono::Utc) - killed_at).num_milliseconds();
        eprintln!("figure: the job was rescheduled {ms} ms after the kill");
    }
}

pub mod api;
pub mod ecs;
pub mod gmod;
pub mod origin;
pub mod proxy;
pub mod slow_http;
