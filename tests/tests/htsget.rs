//! htsget through real clients: `samtools` and `bcftools` (htslib speaks htsget) read prepared
//! files through `/htsget` tickets and find the same records as in the files themselves; a cold
//! file is prepared by the ticket request; the spec's errors come as its JSON bodies.

use std::path::Path;
use std::process::Command;

use htsprep_tests::api::ApiProcess;
use htsprep_tests::{md5_hex, run, testdata, testdata_manifest};

/// A bigger BAM source: the phiX reads 40 times under new names, so a region spans many BGZF
/// blocks.
fn phix_times_40(dir: &Path) -> String {
    let src = std::fs::read_to_string(testdata().join("phix_unsorted.sam")).unwrap();
    let (header, body): (Vec<&str>, Vec<&str>) = src.lines().partition(|l| l.starts_with('@'));
    let mut out = header.join("\n") + "\n";
    for copy in 0..40 {
        for line in &body {
            out.push_str(&format!("c{copy}.{line}\n"));
        }
    }
    let path = dir.join("phix_x40.sam");
    std::fs::write(&path, &out).unwrap();
    format!(
        "{{\"dcc\":\"testdata\",\"local_id\":\"phix_x40.sam\",\"md5\":\"{}\",\"size\":{},\"format\":\"SAM\",\"access_url\":\"file://{}\"}}\n",
        md5_hex(out.as_bytes()),
        out.len(),
        path.display()
    )
}

async fn ticket(api: &ApiProcess, path: &str) -> serde_json::Value {
    let resp = api.http.get(api.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/vnd.ga4gh.htsget.v1.3.0+json"),
        "{:?}",
        resp.headers()
    );
    resp.json().await.unwrap()
}

/// The BGZF blocks a ticket's ranges hold, fetched with the ticket's own `Range` headers; every
/// range starts at a block and ends with one.
async fn blocks_in(api: &ApiProcess, ticket: &serde_json::Value) -> usize {
    let mut blocks = 0;
    for url in ticket["htsget"]["urls"].as_array().unwrap() {
        let Some(range) = url["headers"]["Range"].as_str() else {
            continue;
        };
        let resp = api
            .http
            .get(url["url"].as_str().unwrap())
            .header("Range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 206, "{range}");
        let bytes = resp.bytes().await.unwrap();
        let mut at = 0;
        while at < bytes.len() {
            assert_eq!(
                &bytes[at..at + 4],
                [0x1f, 0x8b, 8, 4],
                "a block at {at} of {range}"
            );
            at += usize::from(u16::from_le_bytes([bytes[at + 16], bytes[at + 17]])) + 1;
            blocks += 1;
        }
        assert_eq!(at, bytes.len(), "{range} ends with a whole block");
    }
    blocks
}

fn body_ranges(ticket: &serde_json::Value) -> usize {
    ticket["htsget"]["urls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["class"] == "body" && u["headers"]["Range"].is_string())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn samtools_and_bcftools_read_prepared_files_through_htsget() {
    let api = ApiProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let manifest = testdata_manifest("testdata", &d.join("m.jsonl")) + &phix_times_40(d);
    api.register(&manifest).await;

    // Cold: the ticket request prepares the file and answers once it is ready.
    let reads = "/htsget/reads/testdata";
    let t = ticket(
        &api,
        &format!("{reads}/phix_x40.sam?referenceName=phix&start=0&end=5386"),
    )
    .await;
    assert_eq!(t["htsget"]["format"], "BAM");
    let many = blocks_in(&api, &t).await;
    assert!(many >= 10, "the whole of phix spans {many} blocks");
    let urls = t["htsget"]["urls"].as_array().unwrap();
    assert_eq!(urls[0]["class"], "header");
    assert_eq!(
        urls.last().unwrap()["url"],
        "data:application/octet-stream;base64,H4sIBAAAAAAA/wYAQkMCABsAAwAAAAAAAAAAAA=="
    );

    for (id, regions) in [
        (
            "phix_x40.sam",
            &[
                ("phix", 0, 5386),
                ("phix", 3600, 3800),
                ("phix", 5000, 5386),
                ("phix", 100_000, 200_000),
            ][..],
        ),
        (
            "gstt1_sample.bam",
            &[("chr22", 24_376_180, 24_376_300), ("chr1", 0, 1_000_000)][..],
        ),
        (
            "phix_unsorted.sam",
            &[("phix", 3700, 3702), ("phix", 800, 900)][..],
        ),
    ] {
        let local = d.join(format!("{id}.bam"));
        api.download(&format!("/data/testdata/{id}?wait=120"), &local)
            .await;
        api.download(
            &format!("/index/testdata/{id}"),
            &d.join(format!("{id}.bam.bai")),
        )
        .await;
        for &(name, start, end) in regions {
            let url = api.url(&format!(
                "{reads}/{id}?referenceName={name}&start={start}&end={end}"
            ));
            // htslib fetches the ticket, then its parts; the stream may hold reads beyond the
            // region (whole blocks), so both sides are cut to the region by samtools.
            let got = d.join("got.bam");
            run(Command::new("samtools")
                .args(["view", "-b", "-o"])
                .arg(&got)
                .arg(&url));
            run(Command::new("samtools").arg("index").arg(&got));
            let region = format!("{name}:{}-{end}", start + 1);
            let want = run(Command::new("samtools")
                .arg("view")
                .arg(&local)
                .arg(&region));
            let have = run(Command::new("samtools").arg("view").arg(&got).arg(&region));
            assert_eq!(have, want, "{id} {region}");
            if name == "chr1" || (name == "phix" && start >= 100_000) {
                assert!(want.is_empty(), "{id} {region} has no reads");
                let t = ticket(&api, &url[api.base.len()..]).await;
                assert_eq!(body_ranges(&t), 0, "no blocks for {region}: {t}");
            } else {
                assert!(!want.is_empty(), "{id} {region} has reads");
            }
        }
        // The whole file, with its unmapped reads, and the header alone.
        let all = api.url(&format!("{reads}/{id}"));
        assert_eq!(
            run(Command::new("samtools").arg("view").arg(&all)),
            run(Command::new("samtools").arg("view").arg(&local)),
            "{id} whole"
        );
        assert_eq!(
            run(Command::new("samtools")
                .args(["view", "--no-PG", "-H"])
                .arg(format!("{all}?class=header"))),
            run(Command::new("samtools")
                .args(["view", "--no-PG", "-H"])
                .arg(&local)),
            "{id} header"
        );
    }
    // Unplaced unmapped reads (referenceName=*): the sorted file's tail.
    let local = d.join("phix_unsorted.sam.bam");
    let star = run(Command::new("samtools")
        .arg("view")
        .arg(api.url(&format!("{reads}/phix_unsorted.sam?referenceName=*"))));
    let unplaced = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.split('\t').nth(2) == Some("*"))
            .map(str::to_owned)
            .collect()
    };
    let want = unplaced(&run(Command::new("samtools").arg("view").arg(&local)));
    assert!(!want.is_empty());
    assert_eq!(unplaced(&star), want);

    // Variants: bcftools through the ticket; the VCF's header ends inside the block its first
    // records start in, so the ticket carries that block's two halves inline.
    let vcf = "htslib_index.vcf";
    let local = d.join("local.vcf.gz");
    api.download(&format!("/data/testdata/{vcf}?wait=120"), &local)
        .await;
    api.download(
        &format!("/index/testdata/{vcf}"),
        &d.join("local.vcf.gz.tbi"),
    )
    .await;
    for (name, start, end) in [("1", 0, 300_000_000), ("2", 10_000, 400_000), ("10", 5, 6)] {
        let url = api.url(&format!(
            "/htsget/variants/testdata/{vcf}?referenceName={name}&start={start}&end={end}"
        ));
        let got = d.join("got.vcf.gz");
        run(Command::new("bcftools")
            .args(["view", "--no-version", "-Oz", "-o"])
            .arg(&got)
            .arg(&url));
        run(Command::new("tabix").args(["-f", "-p", "vcf"]).arg(&got));
        let region = format!("{name}:{}-{end}", start + 1);
        let want = run(Command::new("bcftools")
            .args(["view", "-H"])
            .arg(&local)
            .arg(&region));
        let have = run(Command::new("bcftools")
            .args(["view", "-H"])
            .arg(&got)
            .arg(&region));
        assert_eq!(have, want, "{vcf} {region}");
        assert_eq!(
            run(Command::new("bcftools")
                .args(["view", "--no-version", "-h"])
                .arg(&got)),
            run(Command::new("bcftools")
                .args(["view", "--no-version", "-h"])
                .arg(&local)),
            "{vcf} {region}: the header comes whole, once"
        );
    }
    // Dozens of tickets, one layout read per file: the rest came from the layouts kept.
    assert_eq!(api.metric("htsprep_htsget_layouts_loaded_total").await, 4);
    let all = api.url(&format!("/htsget/variants/testdata/{vcf}"));
    assert_eq!(
        run(Command::new("bcftools").args(["view", "-H"]).arg(&all))
            .lines()
            .count(),
        621
    );
}

async fn expect_error(api: &ApiProcess, path: &str, status: u16, error: &str) {
    let resp = api
        .http
        .get(api.url(path))
        .header("Origin", "https://viewer.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), status, "{path}");
    assert_eq!(resp.headers()["access-control-allow-origin"], "*", "{path}");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["htsget"]["error"], error, "{path}: {body}");
    assert!(
        !body["htsget"]["message"].as_str().unwrap().is_empty(),
        "{path}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_spec_errors_and_service_info_describes_each_endpoint() {
    let api = ApiProcess::start(&[]);
    api.register_testdata().await;
    let reads = "/htsget/reads/testdata/gstt1_sample.bam";
    // Refused from the query alone: nothing is prepared for them.
    for (path, status, error) in [
        (format!("{reads}?format=CRAM"), 400, "UnsupportedFormat"),
        (
            format!("{reads}?referenceName=chr22&start=200&end=100"),
            400,
            "InvalidRange",
        ),
        (format!("{reads}?start=100"), 400, "InvalidInput"),
        (
            format!("{reads}?referenceName=chr22&start=ten"),
            400,
            "InvalidInput",
        ),
        (
            format!("{reads}?class=header&referenceName=chr22"),
            400,
            "InvalidInput",
        ),
        ("/htsget/reads/testdata/nope.bam".into(), 404, "NotFound"),
        (
            "/htsget/variants/testdata/gstt1_sample.bam".into(),
            404,
            "NotFound",
        ),
        (
            "/htsget/reads/testdata/ctcf_trackline.bed".into(),
            404,
            "NotFound",
        ),
        ("/htsget/reads/bad%20dcc/x.bam".into(), 400, "InvalidInput"),
    ] {
        expect_error(&api, &path, status, error).await;
    }
    let jobs = api.get_json("/jobs").await;
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 0, "{jobs}");
    // A reference sequence the file lacks is known once the file is prepared.
    expect_error(
        &api,
        &format!("{reads}?referenceName=chrUn"),
        404,
        "NotFound",
    )
    .await;

    for (kind, format) in [("reads", "BAM"), ("variants", "VCF")] {
        let info = api.get_json(&format!("/htsget/{kind}/service-info")).await;
        assert_eq!(info["type"]["artifact"], "htsget");
        assert_eq!(info["type"]["version"], "1.3.0");
        assert_eq!(info["htsget"]["datatype"], kind);
        assert_eq!(info["htsget"]["formats"], serde_json::json!([format]));
    }
}

/// The test page's server (`tests/browser/serve.py`) on another loopback address than the API's:
/// another origin.
struct PageServer {
    child: std::process::Child,
    base: String,
}

impl PageServer {
    fn start(dir: &Path) -> Self {
        let script = htsprep_tests::repo_root().join("tests/browser/serve.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg("127.0.0.2")
            .arg(dir)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 tests/browser/serve.py");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let port = line
            .trim()
            .strip_prefix("port ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Self {
            child,
            base: format!("http://127.0.0.2:{port}"),
        }
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A reference for igv.js: every contig one line of N, long enough for the loci the test shows.
fn reference(site: &Path, contigs: &[(&str, usize)]) {
    let (mut fasta, mut fai) = (Vec::new(), String::new());
    for (name, len) in contigs {
        fasta.extend_from_slice(format!(">{name}\n").as_bytes());
        fai.push_str(&format!(
            "{name}\t{len}\t{}\t{len}\t{}\n",
            fasta.len(),
            len + 1
        ));
        fasta.resize(fasta.len() + len, b'N');
        fasta.push(b'\n');
    }
    std::fs::write(site.join("ref.fa"), fasta).unwrap();
    std::fs::write(site.join("ref.fa.fai"), fai).unwrap();
}

/// igv.js in headless Chromium, on a page from another origin, loads a BAM and a VCF track
/// through the htsget endpoints and finds the reads and variants samtools and bcftools find.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn igv_js_loads_reads_and_variants_through_htsget_from_another_origin() {
    let api = ApiProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    api.register(&testdata_manifest("testdata", &d.join("m.jsonl")))
        .await;
    let igv = htsprep_tests::repo_root().join("tests/browser");
    let site = d.join("site");
    std::fs::create_dir(&site).unwrap();
    std::fs::copy(igv.join("page.html"), site.join("page.html")).unwrap();
    std::fs::copy(
        igv.join("node_modules/igv/dist/igv.min.js"),
        site.join("igv.min.js"),
    )
    .unwrap();
    reference(&site, &[("chr22", 24_400_000), ("1", 10_100_000)]);
    let pages = PageServer::start(&site);

    let (chr, start, end) = ("chr22", 24_376_180, 24_376_300);
    let (vchr, vstart, vend) = ("1", 10_000_000, 10_000_500);
    let page = format!(
        "{}/page.html?api={}&bam=testdata/gstt1_sample.bam&vcf=testdata/htslib_index.vcf\
         &chr={chr}&start={start}&end={end}&vchr={vchr}&vstart={vstart}&vend={vend}",
        pages.base, api.base
    );
    let out = Command::new("node")
        .arg(igv.join("igv.mjs"))
        .arg(&page)
        .current_dir(&igv)
        .output()
        .expect("node (scripts/setup.sh installs it, playwright-core and igv)");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "igv.mjs: {log}");
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(got["error"].is_null(), "igv.js: {}\n{log}", got["error"]);

    // What htslib finds in the same files (fetched whole after igv.js prepared them cold).
    let bam = d.join("local.bam");
    api.download("/data/testdata/gstt1_sample.bam", &bam).await;
    api.download("/index/testdata/gstt1_sample.bam", &d.join("local.bam.bai"))
        .await;
    let region = format!("{chr}:{}-{end}", start + 1);
    let mut want: Vec<(String, u64)> =
        run(Command::new("samtools").arg("view").arg(&bam).arg(&region))
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f[0].to_owned(), f[3].parse::<u64>().unwrap() - 1)
            })
            .collect();
    let mut have: Vec<(String, u64)> = got["reads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_owned(), r[1].as_u64().unwrap()))
        .filter(|(_, pos)| *pos < end)
        .collect();
    want.sort();
    have.sort();
    assert!(!want.is_empty());
    assert_eq!(have, want, "igv.js reads vs samtools view {region}");

    let vcf = d.join("local.vcf.gz");
    api.download("/data/testdata/htslib_index.vcf", &vcf).await;
    api.download(
        "/index/testdata/htslib_index.vcf",
        &d.join("local.vcf.gz.tbi"),
    )
    .await;
    let vregion = format!("{vchr}:{}-{vend}", vstart + 1);
    let want: Vec<serde_json::Value> = run(Command::new("bcftools")
        .args(["view", "-H"])
        .arg(&vcf)
        .arg(&vregion))
    .lines()
    .map(|l| {
        let f: Vec<&str> = l.split('\t').collect();
        serde_json::json!([f[0], f[1].parse::<u64>().unwrap()])
    })
    .collect();
    assert!(!want.is_empty());
    // igv.js hands back what it loaded around the region; its single-base records are in the
    // region when their position is.
    let have: Vec<serde_json::Value> = got["variants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| (vstart + 1..=vend).contains(&v[1].as_u64().unwrap()))
        .cloned()
        .collect();
    assert_eq!(have, want, "igv.js variants vs bcftools {vregion}");
}

/// A ticket for a file that takes longer to prepare than `HTSPREP_MAX_WAIT_SECONDS` is the
/// file's job (`202` with its `Location`); once the job is done, the ticket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_ticket_request_that_outlasts_the_wait_limit_gets_the_job() {
    let api = ApiProcess::start(&[("HTSPREP_MAX_WAIT_SECONDS", "0")]);
    api.register_testdata().await;
    let path = "/htsget/variants/testdata/htslib_index.vcf?referenceName=1";
    let resp = api.http.get(api.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), 202);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let job: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        location,
        format!("/jobs/{}", job["job_id"].as_str().unwrap())
    );
    let done = api
        .wait_job(
            job["job_id"].as_str().unwrap(),
            std::time::Duration::from_secs(120),
        )
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    let t = ticket(&api, path).await;
    assert_eq!(t["htsget"]["format"], "VCF");
}
