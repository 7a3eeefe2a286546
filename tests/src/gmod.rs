//! The GMOD readers that Gosling uses (`@gmod/bam`, `@gmod/tabix`, `@gmod/bbi`, from npm, in
//! `tests/gmod/`) reading through a running API, checked against htslib's own tools on the
//! bytes the API serves.

use std::process::Command;

use crate::api::ApiProcess;
use crate::repo_root;

/// Records in each region, as read by the GMOD readers over HTTP.
pub fn gmod_counts(spec: serde_json::Value) -> Vec<u64> {
    let script = repo_root().join("tests/gmod/read.mjs");
    let out = Command::new("node")
        .arg(&script)
        .arg(spec.to_string())
        .current_dir(repo_root().join("tests/gmod"))
        .output()
        .expect("run node (scripts/setup.sh installs it and the readers)");
    assert!(
        out.status.success(),
        "read.mjs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect()
}

fn lines_of(cmd: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> u64 {
    let out = Command::new(cmd)
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().count() as u64
}

pub type Region = (&'static str, u64, u64);

pub async fn check_bam(api: &ApiProcess, id: &str, regions: &[Region]) {
    let dir = tempfile::tempdir().unwrap();
    let bam = dir.path().join("a.bam");
    api.download(&format!("/data/testdata/{id}"), &bam).await;
    api.download(
        &format!("/index/testdata/{id}"),
        &dir.path().join("a.bam.bai"),
    )
    .await;
    let got = gmod_counts(serde_json::json!({
        "kind": "bam",
        "url": api.url(&format!("/data/testdata/{id}")),
        "index": api.url(&format!("/index/testdata/{id}")),
        "indexType": "bai",
        "regions": regions,
    }));
    for (&(r, s, e), n) in regions.iter().zip(got) {
        let region = format!("{r}:{}-{e}", s + 1);
        let want = lines_of("samtools", &[&"view", &bam, &region]);
        assert_eq!(n, want, "{id} {region}: @gmod/bam vs samtools");
        assert!(want > 0, "{id} {region} should not be empty");
    }
}

pub async fn check_tabix(api: &ApiProcess, id: &str, regions: &[Region]) {
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("a.gz");
    api.download(&format!("/data/testdata/{id}"), &gz).await;
    api.download(
        &format!("/index/testdata/{id}"),
        &dir.path().join("a.gz.tbi"),
    )
    .await;
    let got = gmod_counts(serde_json::json!({
        "kind": "tabix",
        "url": api.url(&format!("/data/testdata/{id}")),
        "index": api.url(&format!("/index/testdata/{id}")),
        "indexType": "tbi",
        "regions": regions,
    }));
    for (&(r, s, e), n) in regions.iter().zip(got) {
        let region = format!("{r}:{}-{e}", s + 1);
        let want = lines_of("tabix", &[&gz, &region]);
        assert_eq!(n, want, "{id} {region}: @gmod/tabix vs tabix");
        assert!(want > 0, "{id} {region} should not be empty");
    }
}
