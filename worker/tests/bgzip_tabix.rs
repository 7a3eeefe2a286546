//! `htsprep-worker bgzip-tabix` (compression and the tabix index in one pass) against htslib's
//! own tools: the file decompresses to exactly its input, and its index has the content `tabix`
//! writes for the same file.

#[path = "support/tbi.rs"]
mod tbi;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use htsprep_worker::bgzip_tabix::{BLOCK_SIZE, tbi_path};

struct Run {
    out: PathBuf,
    output: Output,
    _dir: tempfile::TempDir,
}

fn tool(preset: &str, header: Option<&str>, body: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.gz");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_htsprep-worker"));
    cmd.args(["bgzip-tabix", preset]).arg(&out);
    if let Some(h) = header {
        let path = dir.path().join("header");
        std::fs::write(&path, h).unwrap();
        cmd.arg("--header").arg(path);
    }
    let mut child = cmd
        .args(["--threads", "3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    Run {
        out,
        output,
        _dir: dir,
    }
}

/// A copy of `out` beside it, indexed by `tabix -p PRESET` itself.
fn indexed_by_tabix(preset: &str, out: &Path) -> PathBuf {
    let copy = out.with_file_name("by-tabix.gz");
    std::fs::copy(out, &copy).unwrap();
    let tabix = Command::new("tabix")
        .args(["-f", "-p", preset])
        .arg(&copy)
        .output()
        .unwrap();
    assert!(tabix.status.success(), "{tabix:?}");
    copy
}

/// Runs the tool and checks its output against `gzip -d` and against `tabix -p` on a copy.
fn same_as_tabix(preset: &str, header: Option<&str>, body: &str) -> String {
    let run = tool(preset, header, body);
    assert!(
        run.output.status.success(),
        "{}",
        String::from_utf8_lossy(&run.output.stderr)
    );
    let text = Command::new("gzip")
        .arg("-cd")
        .arg(&run.out)
        .output()
        .unwrap();
    assert!(text.status.success());
    assert_eq!(
        String::from_utf8(text.stdout).unwrap(),
        format!("{}{body}", header.unwrap_or_default()),
        "the compressed file holds the header, then the input"
    );
    let copy = indexed_by_tabix(preset, &run.out);
    tbi::assert_same(&tbi_path(&run.out), &tbi_path(&copy));
    tbi::canonical(&tbi_path(&run.out))
}

/// Deterministic pseudo-random numbers (a linear congruential generator).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// Records over three contigs, sorted, with `line` making each record's text.
fn sorted_records(n: usize, seed: u64, line: impl Fn(&str, u64, &mut Lcg) -> String) -> String {
    let mut rng = Lcg(seed);
    let mut body = String::new();
    for contig in ["chr1", "chr10", "chr2"] {
        let mut positions: Vec<u64> = (0..n / 3).map(|_| 1 + rng.next(3_000_000)).collect();
        positions.sort_unstable();
        for p in positions {
            body.push_str(&line(contig, p, &mut rng));
        }
    }
    body
}

const VCF_HEADER: &str = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n";

#[test]
fn a_vcf_over_many_blocks_gets_tabix_s_index() {
    // REF of varying length and every form of INFO END tabix reads: at the start, after a `;`,
    // `END=.`, and an END before POS (ignored).
    let body = sorted_records(30_000, 7, |c, p, rng| {
        let reference = "ACGTACGTAC"[..1 + rng.next(10) as usize].to_owned();
        let info = match rng.next(6) {
            0 => format!("END={}", p + rng.next(50_000)),
            1 => format!("DP=3;END={}", p + rng.next(50_000)),
            2 => "END=.".to_owned(),
            3 => format!("END={}", p.saturating_sub(5)),
            4 => "XEND=9;DP=1".to_owned(),
            _ => format!("DP={}", rng.next(100)),
        };
        format!("{c}\t{p}\t.\t{reference}\tT\t50\tPASS\t{info}\n")
    });
    assert!(body.len() > 10 * BLOCK_SIZE);
    let index = same_as_tabix("vcf", Some(VCF_HEADER), &body);
    assert!(index.contains("reference 2"), "three sequences indexed");
}

#[test]
fn records_ending_exactly_at_block_ends_get_tabix_s_offsets() {
    // Every line is 255 bytes: 256 lines fill one block exactly, so records end on block ends,
    // and the file's last record ends the last block.
    let mut body = String::new();
    for i in 0..(256 * 3) {
        let start = 100 + i * 10;
        let line = format!("chr1\t{start}\t{}\tname", start + 5);
        body.push_str(&format!("{line}{}\n", "x".repeat(254 - line.len())));
    }
    assert_eq!(body.len(), 3 * BLOCK_SIZE);
    same_as_tabix("bed", None, &body);
    // And a last block that is not full.
    body.push_str("chr2\t5\t9\tlast\n");
    same_as_tabix("bed", None, &body);
}

#[test]
fn comment_lines_between_records_and_empty_intervals_are_indexed_as_tabix_does() {
    let bed = sorted_records(3_000, 11, |c, p, rng| {
        let comment = if rng.next(20) == 0 {
            "# a comment\n"
        } else {
            ""
        };
        // Some zero-length features (start = end), as BED allows; none on a 16 kb boundary,
        // where htslib files an empty interval in a bin noodles cannot name (see
        // an_empty_interval_on_a_window_boundary_is_found_by_tabix).
        let length = rng.next(3) * rng.next(2_000);
        let end = p + if p % 16_384 == 0 {
            length.max(1)
        } else {
            length
        };
        format!("{comment}{c}\t{p}\t{end}\tf\n")
    });
    same_as_tabix("bed", None, &bed);
    let gff = sorted_records(3_000, 13, |c, p, rng| {
        let directive = if rng.next(10) == 0 { "###\n" } else { "" };
        format!(
            "{directive}{c}\tsrc\tgene\t{p}\t{}\t.\t+\t.\tID=g{p}\n",
            p + rng.next(20_000)
        )
    });
    same_as_tabix("gff", Some("##gff-version 3\n"), &gff);
}

#[test]
fn comment_lines_after_the_last_record_end_its_chunk_as_in_tabix() {
    let body = "chr1\t10\t20\ta\nchr2\t5\t9\tb\n# trailing\n# comments\n";
    same_as_tabix("bed", None, body);
}

#[test]
fn numbers_are_read_as_htslib_reads_them() {
    // strtoll base 0: "010" is octal 8, "0x10" is 16, trailing text is ignored; sorted in
    // that reading, so tabix indexes this file.
    let body = "chr1\t3\t9\ta\nchr1\t010\t012\tb\nchr1\t9\t0x10\tc\nchr1\t0x10\t40kb\td\n";
    same_as_tabix("bed", None, body);
    let vcf = "chr1\t010\t.\tA\tC\t50\tPASS\tEND=0x20\nchr1\t9\t.\tAC\tC\t50\tPASS\tDP=1\n";
    same_as_tabix("vcf", Some(VCF_HEADER), vcf);
}

#[test]
fn a_line_longer_than_a_block_is_one_record() {
    let long = "n".repeat(3 * BLOCK_SIZE / 2);
    let body = format!("chr1\t5\t9\ta\nchr1\t7\t70000\t{long}\nchr1\t8\t12\tc\n");
    same_as_tabix("bed", None, &body);
}

#[test]
fn an_empty_interval_on_a_window_boundary_answers_queries_as_tabix_s_index_does() {
    // htslib files [16384,16384) in a bin for [0,131072); noodles has no empty intervals, so it
    // is indexed as [16384,16385). Every query is answered as with tabix's own index.
    let body = "chr1\t100\t200\ta\nchr1\t16384\t16384\tempty\nchr1\t20000\t20010\tc\n";
    let run = tool("bed", None, body);
    assert!(run.output.status.success(), "{:?}", run.output);
    let copy = indexed_by_tabix("bed", &run.out);
    let query = |file: &Path, region: &str| {
        let out = Command::new("tabix")
            .arg(file)
            .arg(region)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let mut found = 0;
    for region in [
        "chr1:16384-16384",
        "chr1:16385-16385",
        "chr1:16380-16390",
        "chr1:1-16384",
        "chr1:16385-20000",
        "chr1",
    ] {
        let ours = query(&run.out, region);
        assert_eq!(ours, query(&copy, region), "{region}");
        found += ours.matches("empty").count();
    }
    assert!(found > 0, "some query returns the empty interval");
}

#[test]
fn a_header_without_records_gets_an_empty_index() {
    let index = same_as_tabix("vcf", Some(VCF_HEADER), "");
    assert!(!index.contains("reference 0"));
}

#[test]
fn a_record_beyond_a_tbi_s_reach_leaves_the_index_to_tabix_csi() {
    let body = "chr1\t10\t20\ta\nchr1\t600000000\t600000010\tfar\n";
    let run = tool("bed", None, body);
    assert!(run.output.status.success());
    assert!(run.out.is_file());
    assert!(
        !tbi_path(&run.out).exists(),
        "no TBI for a record past 2^29"
    );
    let csi = Command::new("tabix")
        .args(["-C", "-p", "bed"])
        .arg(&run.out)
        .output()
        .unwrap();
    assert!(csi.status.success(), "{csi:?}");
    let far = Command::new("tabix")
        .arg(&run.out)
        .arg("chr1:600000001-600000001")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(far.stdout).unwrap(),
        "chr1\t600000000\t600000010\tfar\n"
    );
}

/// Bad input: exit 1, the line and the reason on stderr, nothing left behind.
fn refused(preset: &str, body: &str, line: u64, reason: &str) {
    let run = tool(preset, None, body);
    assert_eq!(run.output.status.code(), Some(1), "{:?}", run.output);
    let stderr = String::from_utf8_lossy(&run.output.stderr);
    assert!(
        stderr.contains(&format!("line {line} of the sorted file:")) && stderr.contains(reason),
        "{stderr}"
    );
    assert!(!run.out.exists() && !tbi_path(&run.out).exists());
}

#[test]
fn input_it_cannot_index_is_refused_with_its_line() {
    let sequence_twice = "chr1\t1\t5\ta\nchr2\t1\t5\tb\nchr1\t9\t12\tc\n";
    refused("bed", sequence_twice, 3, "sequence chr1 appears again");
    refused(
        "bed",
        "chr1\t50\t60\ta\nchr1\t10\t20\tb\n",
        2,
        "chr1:11 starts before",
    );
    refused(
        "bed",
        "chr1\t1\t5\ta\nchr1\tx\t9\tb\n",
        2,
        "no integer start",
    );
    refused("bed", "chr1\t9\t5\ta\n", 1, "end before start");
    refused("gff", "chr1\tsrc\tgene\t5\n", 1, "no integer end");
}
