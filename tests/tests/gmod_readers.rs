//! The GMOD readers that Gosling uses (`@gmod/bam`, `@gmod/tabix`, `@gmod/bbi`, from npm) read
//! through the running API with Range requests, and find the same records htslib's own tools
//! find in the bytes the API serves.

use std::path::Path;
use std::process::Command;

use htsprep_tests::api::ApiProcess;
use htsprep_tests::{repo_root, testdata_manifest};

/// Records in each region, as read by the GMOD readers over HTTP.
fn gmod_counts(spec: serde_json::Value) -> Vec<u64> {
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

async fn download(api: &ApiProcess, path: &str, to: &Path) {
    let bytes = api
        .http
        .get(api.url(path))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    std::fs::write(to, bytes).unwrap();
}

type Region = (&'static str, u64, u64);

async fn check_bam(api: &ApiProcess, id: &str, regions: &[Region]) {
    let dir = tempfile::tempdir().unwrap();
    let bam = dir.path().join("a.bam");
    download(api, &format!("/data/testdata/{id}"), &bam).await;
    download(
        api,
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

async fn check_tabix(api: &ApiProcess, id: &str, regions: &[Region]) {
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("a.gz");
    download(api, &format!("/data/testdata/{id}"), &gz).await;
    download(
        api,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gmod_readers_agree_with_htslib() {
    let api = ApiProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    api.register(&testdata_manifest("testdata", &dir.path().join("m.jsonl")))
        .await;
    for id in [
        "gstt1_sample.bam",
        "phix_unsorted.sam",
        "htslib_index.vcf",
        "vega_x.gff3",
        "ctcf_trackline.bed",
    ] {
        let resp = api
            .http
            .get(api.url(&format!("/data/testdata/{id}?wait=120")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{id} prepared");
    }

    check_bam(
        &api,
        "gstt1_sample.bam",
        &[("chr22", 24_376_180, 24_376_300), ("chr22", 0, 50_000_000)],
    )
    .await;
    check_bam(
        &api,
        "phix_unsorted.sam",
        &[("phix", 3000, 4000), ("phix", 0, 5386)],
    )
    .await;
    check_tabix(
        &api,
        "htslib_index.vcf",
        &[
            ("1", 10_000_000, 10_000_500),
            ("2", 0, 300_000_000),
            ("10", 0, 1_000_000_000),
        ],
    )
    .await;
    check_tabix(&api, "vega_x.gff3", &[("X", 2_930_000, 2_950_000)]).await;
    check_tabix(
        &api,
        "ctcf_trackline.bed",
        &[("chr2L", 0, 1_000_000), ("chrX", 0, 30_000_000)],
    )
    .await;

    // bigWig is served as it is; compare with the bigtools reader on the source.
    let regions: [Region; 2] = [("1", 0, 1000), ("10", 0, 1_000_000)];
    let got = gmod_counts(serde_json::json!({
        "kind": "bigwig",
        "url": api.url("/data/testdata/pybigwig_test.bw"),
        "regions": regions,
    }));
    let bedgraph = dir.path().join("bw.bedGraph");
    let st = Command::new("bigwigtobedgraph")
        .arg(htsprep_tests::testdata().join("pybigwig_test.bw"))
        .arg(&bedgraph)
        .status()
        .unwrap();
    assert!(st.success());
    let text = std::fs::read_to_string(&bedgraph).unwrap();
    for (&(r, s, e), n) in regions.iter().zip(got) {
        let want = text
            .lines()
            .map(|l| l.split('\t').collect::<Vec<_>>())
            .filter(|f| {
                f[0] == r && f[1].parse::<u64>().unwrap() < e && f[2].parse::<u64>().unwrap() > s
            })
            .count() as u64;
        assert_eq!(n, want, "bigWig {r}:{s}-{e}: @gmod/bbi vs bigtools");
        assert!(want > 0);
    }
}
