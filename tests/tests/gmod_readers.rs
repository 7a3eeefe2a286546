//! The GMOD readers that Gosling uses (`@gmod/bam`, `@gmod/tabix`, `@gmod/bbi`, from npm) read
//! through the running API with Range requests, and find the same records htslib's own tools
//! find in the bytes the API serves.

use std::process::Command;

use htsprep_tests::api::ApiProcess;
use htsprep_tests::gmod::{Region, check_bam, check_tabix, gmod_counts};
use htsprep_tests::testdata_manifest;

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
