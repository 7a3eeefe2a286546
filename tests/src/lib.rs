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

pub mod api;
pub mod slow_http;
