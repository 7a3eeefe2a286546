//! Validation of a tabix-indexed artifact, in the worker and without reading the artifact again.
//!
//! htslib reads every record of the file while it indexes it and keeps each sequence's record
//! count in the index. Those counts must equal the ones the clean stage made of the records it
//! wrote (a line tabix could not parse, a sequence split in two, a record lost anywhere on the
//! way: the counts differ). The artifact must also begin with exactly the header lines the clean
//! stage kept, and end with the BGZF end-of-file block.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use noodles_csi::BinningIndex;

/// Why an artifact was refused: an exit status as a stage script would give it (1: the artifact
/// or its index is wrong; 2: the stage's own inputs are missing) and the reason.
#[derive(Debug)]
pub struct Refusal {
    pub status: i32,
    pub reason: String,
}

fn invalid(reason: impl Into<String>) -> Refusal {
    Refusal {
        status: 1,
        reason: reason.into(),
    }
}

fn usage(reason: impl Into<String>) -> Refusal {
    Refusal {
        status: 2,
        reason: reason.into(),
    }
}

/// What the clean stage wrote beside the artifact.
pub(crate) struct Expected<'a> {
    /// `records=N`, `header_lines=H`, ...
    pub stats: &'a Path,
    /// `NAME<TAB>records` per sequence.
    pub counts: &'a Path,
}

/// The last 28 bytes of every complete BGZF file (SAM/BAM specification, 4.1.2).
const BGZF_EOF: [u8; 28] = [
    0x1f, 0x8b, 0x08, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x06, 0x00, 0x42, 0x43, 0x02, 0x00,
    0x1b, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// Checks `data` (BGZF) against its tabix or CSI `index` (`kind`: `tbi` or `csi`) and what the
/// clean stage expected; on success, a one-line summary.
pub(crate) fn tabix(
    data: &Path,
    index: &Path,
    kind: &str,
    expected: &Expected<'_>,
) -> Result<String, Refusal> {
    let (records, header_lines) = read_stats(expected.stats)?;
    let want = read_counts(expected.counts)?;
    let total: u64 = want.values().sum();
    if total != records {
        return Err(usage(format!(
            "the counts file holds {total} records but the stats file says {records}"
        )));
    }

    let ix = match kind {
        "tbi" => noodles_tabix::fs::read(index).map(|i| Box::new(i) as Box<dyn BinningIndex>),
        "csi" => noodles_csi::fs::read(index).map(|i| Box::new(i) as Box<dyn BinningIndex>),
        other => return Err(usage(format!("unknown index kind {other:?}"))),
    }
    .map_err(|e| invalid(format!("the {kind} index cannot be read: {e}")))?;
    let header = ix
        .header()
        .ok_or_else(|| invalid(format!("the {kind} index names no sequences")))?;
    let mut got = BTreeMap::new();
    for (name, seq) in header
        .reference_sequence_names()
        .iter()
        .zip(ix.reference_sequences())
    {
        let n = seq
            .metadata()
            .map_or(0, |m| m.mapped_record_count() + m.unmapped_record_count());
        if n > 0 {
            got.insert(name.to_string(), n);
        }
    }
    compare(&want, &got)?;

    let meta = header.line_comment_prefix();
    let found = leading_header_lines(data, meta)?;
    if found != header_lines {
        return Err(invalid(format!(
            "the artifact begins with {found} header lines, expected {header_lines}"
        )));
    }
    ends_with_eof_block(data)?;
    Ok(format!(
        "records={records} contigs={} header_lines={header_lines} index={kind}",
        got.len()
    ))
}

fn read_stats(path: &Path) -> Result<(u64, u64), Refusal> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("the stats file cannot be read: {e}")))?;
    let value = |key: &str| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .rfind(|(k, _)| *k == key)
            .and_then(|(_, v)| v.trim().parse::<u64>().ok())
            .ok_or_else(|| usage(format!("the stats file has no numeric {key}")))
    };
    Ok((value("records")?, value("header_lines")?))
}

fn read_counts(path: &Path) -> Result<BTreeMap<String, u64>, Refusal> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("the counts file cannot be read: {e}")))?;
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let parsed = line
            .rsplit_once('\t')
            .and_then(|(name, n)| Some((name, n.parse::<u64>().ok()?)));
        let Some((name, n)) = parsed else {
            return Err(usage(format!("the counts file has a bad line: {line:?}")));
        };
        counts.insert(name.to_owned(), n);
    }
    Ok(counts)
}

/// Every sequence with records in one map has the same count in the other; names the first few
/// that differ.
fn compare(want: &BTreeMap<String, u64>, got: &BTreeMap<String, u64>) -> Result<(), Refusal> {
    let names: std::collections::BTreeSet<&String> = want.keys().chain(got.keys()).collect();
    let differ: Vec<String> = names
        .into_iter()
        .filter(|n| want.get(*n) != got.get(*n))
        .map(|n| {
            format!(
                "{n}: {} written, {} indexed",
                want.get(n).copied().unwrap_or(0),
                got.get(n).copied().unwrap_or(0)
            )
        })
        .collect();
    if differ.is_empty() {
        return Ok(());
    }
    let shown = differ
        .iter()
        .take(5)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    let more = differ
        .len()
        .checked_sub(5)
        .filter(|m| *m > 0)
        .map(|m| format!(" (and {m} more)"))
        .unwrap_or_default();
    Err(invalid(format!(
        "the index does not hold the records written, per sequence: {shown}{more}"
    )))
}

/// Lines at the start of the decompressed artifact that begin with `meta`.
fn leading_header_lines(data: &Path, meta: u8) -> Result<u64, Refusal> {
    let file =
        File::open(data).map_err(|e| invalid(format!("the artifact cannot be opened: {e}")))?;
    let mut reader = noodles_bgzf::io::Reader::new(BufReader::new(file));
    let mut line = Vec::new();
    let mut n = 0;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| invalid(format!("the artifact is not readable BGZF: {e}")))?;
        if read == 0 || line.first() != Some(&meta) {
            return Ok(n);
        }
        n += 1;
    }
}

fn ends_with_eof_block(data: &Path) -> Result<(), Refusal> {
    let mut file =
        File::open(data).map_err(|e| invalid(format!("the artifact cannot be opened: {e}")))?;
    let mut tail = [0u8; BGZF_EOF.len()];
    let complete = file.seek(SeekFrom::End(-(BGZF_EOF.len() as i64))).is_ok()
        && file.read_exact(&mut tail).is_ok()
        && tail == BGZF_EOF;
    if complete {
        Ok(())
    } else {
        Err(invalid(
            "the artifact does not end with the BGZF end-of-file block (truncated?)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// A sorted BED artifact, bgzipped and indexed by the real tools, with what the clean stage
    /// would have written for it.
    fn artifact(rows: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("a.bed.gz");
        let plain = dir.path().join("a.bed");
        std::fs::write(&plain, rows).unwrap();
        let ok = Command::new("bash")
            .args(["-c", "bgzip -c \"$1\" > \"$2\" && tabix -p bed \"$2\"", "x"])
            .arg(&plain)
            .arg(&gz)
            .status()
            .unwrap();
        assert!(ok.success());
        (dir, gz)
    }

    fn expect(dir: &Path, stats: &str, counts: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let (s, c) = (dir.join("stats"), dir.join("counts"));
        std::fs::write(&s, stats).unwrap();
        std::fs::write(&c, counts).unwrap();
        (s, c)
    }

    const ROWS: &str = "chr1\t10\t20\ta\nchr1\t30\t40\tb\nchr2\t5\t9\tc\n";

    fn check(gz: &Path, stats: &Path, counts: &Path) -> Result<String, Refusal> {
        tabix(
            gz,
            &gz.with_extension("gz.tbi"),
            "tbi",
            &Expected { stats, counts },
        )
    }

    #[test]
    fn an_artifact_whose_index_holds_every_record_passes() {
        let (dir, gz) = artifact(ROWS);
        let (s, c) = expect(
            dir.path(),
            "records=3\nheader_lines=0\nmax_end=40\n",
            "chr2\t1\nchr1\t2\n",
        );
        let summary = check(&gz, &s, &c).unwrap();
        assert_eq!(summary, "records=3 contigs=2 header_lines=0 index=tbi");
    }

    #[test]
    fn a_record_the_index_lacks_is_named_per_sequence() {
        let (dir, gz) = artifact(ROWS);
        let (s, c) = expect(
            dir.path(),
            "records=4\nheader_lines=0\n",
            "chr1\t2\nchr2\t1\nchr3\t1\n",
        );
        let e = check(&gz, &s, &c).unwrap_err();
        assert_eq!(e.status, 1);
        assert!(
            e.reason.contains("chr3: 1 written, 0 indexed"),
            "{}",
            e.reason
        );
    }

    #[test]
    fn header_lines_and_a_missing_end_block_are_caught() {
        let (dir, gz) = artifact(ROWS);
        let (s, c) = expect(
            dir.path(),
            "records=3\nheader_lines=1\n",
            "chr1\t2\nchr2\t1\n",
        );
        let e = check(&gz, &s, &c).unwrap_err();
        assert!(
            e.reason.contains("begins with 0 header lines, expected 1"),
            "{}",
            e.reason
        );

        let (s, c) = expect(
            dir.path(),
            "records=3\nheader_lines=0\n",
            "chr1\t2\nchr2\t1\n",
        );
        let bytes = std::fs::read(&gz).unwrap();
        std::fs::write(&gz, &bytes[..bytes.len() - BGZF_EOF.len()]).unwrap();
        let e = check(&gz, &s, &c).unwrap_err();
        assert!(e.reason.contains("end-of-file block"), "{}", e.reason);
    }

    #[test]
    fn stage_inputs_that_disagree_are_a_usage_error() {
        let (dir, gz) = artifact(ROWS);
        let (s, c) = expect(
            dir.path(),
            "records=5\nheader_lines=0\n",
            "chr1\t2\nchr2\t1\n",
        );
        let e = check(&gz, &s, &c).unwrap_err();
        assert_eq!(e.status, 2, "{}", e.reason);
        let (s, c) = expect(dir.path(), "header_lines=0\n", "chr1\t2\n");
        assert_eq!(check(&gz, &s, &c).unwrap_err().status, 2);
    }
}
