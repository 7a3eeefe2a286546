//! The cleaning pass of the text clean-sort-bgzip stages (`htsprep-worker clean PRESET`, between
//! `gzip -cdf` and `sort`).
//!
//! It reads the decompressed source once, drops what is not a record (blank lines, comments,
//! BED `track`/`browser` lines, a GFF3's `##FASTA` section), keeps a VCF's header and a GFF3's
//! `##gff-version` line for the file's head, rejects a record the index or a reader would refuse
//! (naming its line in the source), writes the records for `sort`, and counts them: the stats
//! (records, header lines, the largest end, for the CSI decision) and the records per sequence,
//! which validation compares with the index. One pass in compiled code: the `awk` it replaces
//! took as long as the sort on the cold-path bench's 1M-record GFF3 (BENCHMARKS.md).
//!
//! Line rules, per preset:
//! - every line: a trailing CR is dropped; lines of only blanks are skipped.
//! - BED (also narrowPeak/broadPeak): `#`, `track` and `browser` lines are skipped; a line without
//!   a tab is split on runs of spaces; at least 3 columns, column 1 not empty, start and end
//!   non-negative integers, end ≥ start.
//! - GFF3: `#` lines are skipped, the first `##gff-version` line is the header; from `##FASTA` or
//!   a `>` line on, everything is sequence and skipped; at least 8 columns, column 1 not empty,
//!   start and end integers ≥ 1, end ≥ start.
//! - VCF: the first line is `##fileformat=VCF…`; header lines up to and including `#CHROM`, none
//!   after it; records have at least 8 columns and an integer POS; the end is POS + len(REF) − 1
//!   or INFO's `END=` if larger.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use bstr::ByteSlice;

use crate::bgzip_tabix::Preset;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A record or header line the stage refuses; `line` counts the source's lines from 1.
    #[error("line {line}: {reason}: \"{excerpt}\"")]
    Line {
        line: u64,
        reason: String,
        excerpt: String,
    },
    /// The input as a whole is not of the format (e.g. a VCF without its header).
    #[error("{0}")]
    Input(&'static str),
    #[error("could not {what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Whether the input is at fault (rather than the system).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Self::Line { .. } | Self::Input(_))
    }

    /// Whether the reader of the cleaned records went away (a later command in the pipe died).
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
    }
}

fn io_error(what: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Io { what, source }
}

/// What the pass counted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub records: u64,
    /// Lines of the header (VCF: up to `#CHROM`; GFF3: the `##gff-version` line; BED: none).
    pub header_lines: u64,
    /// The largest end of any record (1-based, inclusive).
    pub max_end: u64,
    /// Records per sequence name.
    pub per_sequence: HashMap<Vec<u8>, u64>,
}

/// Cleans `input` into `records` (one LF-terminated line each) and `header`.
pub fn clean(
    preset: Preset,
    mut input: impl BufRead,
    records: &mut impl Write,
    header: &mut impl Write,
) -> Result<Summary, Error> {
    let mut pass = Pass::new(preset);
    let mut raw = Vec::with_capacity(4096);
    let mut line = 0u64;
    loop {
        raw.clear();
        if input
            .read_until(b'\n', &mut raw)
            .map_err(io_error("read the input"))?
            == 0
        {
            break;
        }
        line += 1;
        let text = raw.strip_suffix(b"\n").unwrap_or(&raw);
        let kept = pass
            .judge(text)
            .map_err(|Refused(reason, text)| Error::Line {
                line,
                reason,
                excerpt: excerpt(&text),
            })?;
        let (out, text, what) = match kept {
            Kept::Nothing => continue,
            Kept::Header(text) => (&mut *header as &mut dyn Write, text, "write the header"),
            Kept::Record(text) => (&mut *records as &mut dyn Write, text, "write the records"),
        };
        out.write_all(text)
            .and_then(|()| out.write_all(b"\n"))
            .map_err(io_error(what))?;
    }
    pass.finish()
}

/// The `clean` command: standard input to standard output, the header and counts to files.
pub fn command(
    preset: Preset,
    header: Option<&Path>,
    stats: &Path,
    counts: &Path,
) -> Result<Summary, Error> {
    let input = BufReader::with_capacity(1 << 20, io::stdin().lock());
    let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    let mut head = Vec::new();
    let summary = clean(preset, input, &mut out, &mut head)?;
    out.flush().map_err(io_error("write the records"))?;
    if let Some(path) = header {
        std::fs::write(path, &head).map_err(io_error("write the header file"))?;
    }
    let mut s = BufWriter::new(File::create(stats).map_err(io_error("create the stats file"))?);
    write!(
        s,
        "records={}\nheader_lines={}\nmax_end={}\n",
        summary.records, summary.header_lines, summary.max_end
    )
    .and_then(|()| s.flush())
    .map_err(io_error("write the stats file"))?;
    let mut c = BufWriter::new(File::create(counts).map_err(io_error("create the counts file"))?);
    for (name, n) in &summary.per_sequence {
        c.write_all(name)
            .and_then(|()| writeln!(c, "\t{n}"))
            .map_err(io_error("write the counts file"))?;
    }
    c.flush().map_err(io_error("write the counts file"))?;
    Ok(summary)
}

/// A refused line: the reason and the line as the rules saw it.
struct Refused(String, Vec<u8>);

fn refuse(reason: impl Into<String>, text: &[u8]) -> Refused {
    Refused(reason.into(), text.to_vec())
}

/// The line's first 80 bytes, printable: a tab as `<TAB>`, other control or non-ASCII bytes `?`.
fn excerpt(text: &[u8]) -> String {
    let mut s = String::new();
    for &b in text.iter().take(80) {
        match b {
            b'\t' => s.push_str("<TAB>"),
            b' '..=b'~' => s.push(char::from(b)),
            _ => s.push('?'),
        }
    }
    s
}

fn is_blank(text: &[u8]) -> bool {
    text.iter().all(|&b| b == b' ' || b == b'\t')
}

/// `word` followed by a blank or the end of the line.
fn starts_with_word(text: &[u8], word: &[u8]) -> bool {
    text.strip_prefix(word)
        .is_some_and(|rest| matches!(rest.first(), None | Some(b' ' | b'\t')))
}

/// A column holding only ASCII digits.
enum Integer {
    Value(u64),
    NotDigits,
    TooLarge,
}

fn integer(field: &[u8]) -> Integer {
    if field.is_empty() || !field.iter().all(u8::is_ascii_digit) {
        return Integer::NotDigits;
    }
    field
        .iter()
        .try_fold(0u64, |n, &d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .map_or(Integer::TooLarge, Integer::Value)
}

/// Where a record's interval is and what the refusals call its columns.
struct Interval {
    /// The refusal of an empty sequence name (column 1).
    unnamed: &'static str,
    start: (usize, &'static str),
    end: (usize, &'static str),
    /// The smallest position (0-based BED, 1-based GFF3).
    first: u64,
    /// The refusal of an end before the start.
    reversed: &'static str,
}

const BED: Interval = Interval {
    unnamed: "empty chromosome name (column 1)",
    start: (1, "column 2 (start)"),
    end: (2, "column 3 (end)"),
    first: 0,
    reversed: "end (column 3) is smaller than start (column 2)",
};

const GFF: Interval = Interval {
    unnamed: "empty seqid (column 1)",
    start: (3, "start (column 4)"),
    end: (4, "end (column 5)"),
    first: 1,
    reversed: "end (column 5) is smaller than start (column 4)",
};

impl Interval {
    /// The record's end, once its name and interval pass.
    fn end(&self, columns: &[&[u8]], text: &[u8]) -> Result<u64, Refused> {
        if columns[0].is_empty() {
            return Err(refuse(self.unnamed, text));
        }
        let bad = |reason| refuse(reason, text);
        let start = position(columns[self.start.0], self.start.1, self.first).map_err(bad)?;
        let end = position(columns[self.end.0], self.end.1, self.first).map_err(bad)?;
        if end < start {
            return Err(refuse(self.reversed, text));
        }
        Ok(end)
    }
}

/// The first `N` tab-separated columns of a record (the last holds the rest of the line), or its
/// refusal when it has fewer than `needed`: `expected` says what it should have. No allocation
/// per line.
fn columns<'a, const N: usize>(
    text: &'a [u8],
    needed: usize,
    expected: &str,
) -> Result<[&'a [u8]; N], Refused> {
    let mut columns = [&text[..0]; N];
    let mut found = 0;
    for (slot, column) in columns.iter_mut().zip(text.splitn(N, |&b| b == b'\t')) {
        *slot = column;
        found += 1;
    }
    if found < needed {
        return Err(refuse(format!("expected {expected}, found {found}"), text));
    }
    Ok(columns)
}

/// A column as a position: `at_least` or more, else the refusal's reason.
fn position(field: &[u8], name: &str, at_least: u64) -> Result<u64, String> {
    match integer(field) {
        Integer::Value(v) if v >= at_least => Ok(v),
        Integer::TooLarge => Err(format!("{name} is too large")),
        _ if at_least == 0 => Err(format!("{name} is not a non-negative integer")),
        _ => Err(format!("{name} is not an integer >= {at_least}")),
    }
}

/// INFO's `END=` value: the first `;`-separated entry that is `END=` and digits.
fn info_end(info: &[u8]) -> Option<u64> {
    info.split(|&b| b == b';')
        .find_map(|entry| match integer(entry.strip_prefix(b"END=")?) {
            Integer::Value(v) => Some(v),
            Integer::TooLarge => Some(u64::MAX),
            Integer::NotDigits => None,
        })
}

/// A line's place in the output.
enum Kept<'a> {
    Nothing,
    Header(&'a [u8]),
    Record(&'a [u8]),
}

/// A line's kind, by the preset's rules.
enum Judged {
    Skip,
    Header,
    /// `rewritten`: the record is in `Pass::rewritten` (a BED line split on spaces).
    Record {
        rewritten: bool,
        end: u64,
    },
}

/// Counts records as they pass.
#[derive(Default)]
struct Tally {
    summary: Summary,
    /// The sequence of the previous record and its records not yet added to `per_sequence`
    /// (records come grouped by sequence in most files: one map update per group).
    last: Vec<u8>,
    last_count: u64,
}

impl Tally {
    fn record(&mut self, record: &[u8], end: u64) {
        let sequence = record.split(|&b| b == b'\t').next().unwrap_or_default();
        if sequence != self.last.as_slice() {
            self.flush_last();
            self.last.clear();
            self.last.extend_from_slice(sequence);
        }
        self.last_count += 1;
        self.summary.records += 1;
        self.summary.max_end = self.summary.max_end.max(end);
    }

    fn flush_last(&mut self) {
        if self.last_count > 0 {
            // Looked up by reference: the name is copied only the first time it is seen.
            match self.summary.per_sequence.get_mut(self.last.as_slice()) {
                Some(n) => *n += self.last_count,
                None => {
                    let name = self.last.clone();
                    self.summary.per_sequence.insert(name, self.last_count);
                }
            }
            self.last_count = 0;
        }
    }

    fn finish(mut self) -> Summary {
        self.flush_last();
        self.summary
    }
}

struct Pass {
    preset: Preset,
    tally: Tally,
    /// GFF3: a `##FASTA` or `>` line was seen; the rest is sequence.
    fasta: bool,
    /// VCF: the `#CHROM` line was seen.
    chrom: bool,
    /// BED: a space-separated line rewritten with tabs.
    rewritten: Vec<u8>,
}

impl Pass {
    fn new(preset: Preset) -> Self {
        Self {
            preset,
            tally: Tally::default(),
            fasta: false,
            chrom: false,
            rewritten: Vec::new(),
        }
    }

    /// What to do with one line of the source (without its LF); counts a record.
    fn judge<'a>(&'a mut self, text: &'a [u8]) -> Result<Kept<'a>, Refused> {
        if self.fasta {
            return Ok(Kept::Nothing);
        }
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let judged = match self.preset {
            Preset::Bed => self.bed(text)?,
            Preset::Gff => self.gff(text)?,
            Preset::Vcf => self.vcf(text)?,
        };
        let (rewritten, end) = match judged {
            Judged::Skip => return Ok(Kept::Nothing),
            Judged::Header => {
                self.tally.summary.header_lines += 1;
                return Ok(Kept::Header(text));
            }
            Judged::Record { rewritten, end } => (rewritten, end),
        };
        let record = if rewritten { &self.rewritten[..] } else { text };
        self.tally.record(record, end);
        Ok(Kept::Record(record))
    }

    /// BED: skips blank, `#`, `track` and `browser` lines.
    fn bed(&mut self, text: &[u8]) -> Result<Judged, Refused> {
        if is_blank(text)
            || starts_with_word(text, b"track")
            || starts_with_word(text, b"browser")
            || text.starts_with(b"#")
        {
            return Ok(Judged::Skip);
        }
        let rewritten = text.find_byte(b'\t').is_none();
        if rewritten {
            self.rewritten.clear();
            for (i, word) in text
                .split(|&b| b == b' ')
                .filter(|w| !w.is_empty())
                .enumerate()
            {
                if i > 0 {
                    self.rewritten.push(b'\t');
                }
                self.rewritten.extend_from_slice(word);
            }
        }
        let text = if rewritten { &self.rewritten[..] } else { text };
        let columns = columns::<4>(text, 3, "at least 3 tab- or space-separated columns")?;
        let end = BED.end(&columns, text)?;
        Ok(Judged::Record { rewritten, end })
    }

    /// GFF3: the first `##gff-version` line is the header; other `#` lines, and everything from
    /// `##FASTA` or a `>` line on, are skipped.
    fn gff(&mut self, text: &[u8]) -> Result<Judged, Refused> {
        if text.starts_with(b"#") || text.starts_with(b">") {
            if text.starts_with(b"##FASTA") || text.starts_with(b">") {
                self.fasta = true;
            } else if self.tally.summary.header_lines == 0
                && matches!(
                    text.strip_prefix(b"##gff-version")
                        .and_then(|rest| rest.first()),
                    Some(b' ' | b'\t')
                )
            {
                return Ok(Judged::Header);
            }
            return Ok(Judged::Skip);
        }
        if is_blank(text) {
            return Ok(Judged::Skip);
        }
        let columns = columns::<9>(text, 8, "9 tab-separated GFF columns")?;
        let end = GFF.end(&columns, text)?;
        Ok(Judged::Record {
            rewritten: false,
            end,
        })
    }

    /// VCF: header lines from `##fileformat` to `#CHROM`, then records.
    fn vcf(&mut self, text: &[u8]) -> Result<Judged, Refused> {
        let header_lines = self.tally.summary.header_lines;
        if text.starts_with(b"#") {
            if header_lines == 0 && !text.starts_with(b"##fileformat=VCF") {
                return Err(refuse(
                    "not a VCF: first line must be ##fileformat=VCFv4.x",
                    text,
                ));
            }
            if self.chrom {
                return Err(refuse("header line after the #CHROM line", text));
            }
            self.chrom = text.starts_with(b"#CHROM");
            return Ok(Judged::Header);
        }
        if is_blank(text) {
            return Ok(Judged::Skip);
        }
        if header_lines == 0 {
            return Err(refuse("not a VCF: no ##fileformat header", text));
        }
        if !self.chrom {
            return Err(refuse("data line before the #CHROM header line", text));
        }
        let columns = columns::<9>(text, 8, "at least 8 tab-separated columns")?;
        let pos = position(columns[1], "POS (column 2)", 0).map_err(|r| refuse(r, text))?;
        let reference = u64::try_from(columns[3].len()).unwrap_or(u64::MAX);
        let end = (pos.saturating_add(reference).saturating_sub(1))
            .max(info_end(columns[7]).unwrap_or(0));
        Ok(Judged::Record {
            rewritten: false,
            end,
        })
    }

    fn finish(self) -> Result<Summary, Error> {
        if self.preset == Preset::Vcf {
            if self.tally.summary.header_lines == 0 {
                return Err(Error::Input(
                    "not a VCF: empty input or no ##fileformat header",
                ));
            }
            if !self.chrom {
                return Err(Error::Input("not a VCF: no #CHROM header line"));
            }
        }
        Ok(self.tally.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Cleaned {
        records: String,
        header: String,
        summary: Summary,
    }

    fn run(preset: Preset, input: &str) -> Result<Cleaned, Error> {
        let (mut records, mut header) = (Vec::new(), Vec::new());
        let summary = clean(preset, input.as_bytes(), &mut records, &mut header)?;
        Ok(Cleaned {
            records: String::from_utf8(records).unwrap(),
            header: String::from_utf8(header).unwrap(),
            summary,
        })
    }

    fn counts(pairs: &[(&str, u64)]) -> HashMap<Vec<u8>, u64> {
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), *v))
            .collect()
    }

    /// The input is refused at `line` with `reason`, and the message shows the line.
    fn refused(preset: Preset, input: &str, line: u64, reason: &str, excerpt: &str) {
        match run(preset, input) {
            Err(e @ Error::Line { .. }) => {
                assert!(e.is_bad_input());
                assert_eq!(
                    e.to_string(),
                    format!("line {line}: {reason}: \"{excerpt}\""),
                    "{input:?}"
                );
            }
            Err(e) => panic!("{input:?}: {e}"),
            Ok(c) => panic!("{input:?} was accepted: {:?}", c.records),
        }
    }

    #[test]
    fn bed_keeps_records_and_drops_the_rest() {
        let c = run(
            Preset::Bed,
            "track name=x\r\nbrowser position chr1\n# comment\n\n \t \nchr2\t5\t9\tx\r\n\
             chr1 10  20   name\nchr2\t0\t0\ntrackless\t1\t2",
        )
        .unwrap();
        assert_eq!(
            c.records,
            "chr2\t5\t9\tx\nchr1\t10\t20\tname\nchr2\t0\t0\ntrackless\t1\t2\n"
        );
        assert_eq!(c.header, "");
        assert_eq!(c.summary.records, 4);
        assert_eq!(c.summary.header_lines, 0);
        assert_eq!(c.summary.max_end, 20);
        assert_eq!(
            c.summary.per_sequence,
            counts(&[("chr2", 2), ("chr1", 1), ("trackless", 1)])
        );
    }

    #[test]
    fn bed_lines_it_refuses_are_named_by_their_line_in_the_source() {
        let b = Preset::Bed;
        refused(
            b,
            "track x\nchr1\t5\n",
            2,
            "expected at least 3 tab- or space-separated columns, found 2",
            "chr1<TAB>5",
        );
        refused(
            b,
            "chrom start end\n",
            1,
            "column 2 (start) is not a non-negative integer",
            "chrom<TAB>start<TAB>end",
        );
        refused(
            b,
            "chr1   5 \n",
            1,
            "expected at least 3 tab- or space-separated columns, found 2",
            "chr1<TAB>5",
        );
        refused(
            b,
            "x\t1\t2\n\t5\t6\n",
            2,
            "empty chromosome name (column 1)",
            "<TAB>5<TAB>6",
        );
        refused(
            b,
            "chr1\t-5\t6\n",
            1,
            "column 2 (start) is not a non-negative integer",
            "chr1<TAB>-5<TAB>6",
        );
        refused(
            b,
            "chr1\t5\t6.0\n",
            1,
            "column 3 (end) is not a non-negative integer",
            "chr1<TAB>5<TAB>6.0",
        );
        refused(
            b,
            "chr1\t9\t8\r\n",
            1,
            "end (column 3) is smaller than start (column 2)",
            "chr1<TAB>9<TAB>8",
        );
        refused(
            b,
            "chr1\t1\t99999999999999999999\n",
            1,
            "column 3 (end) is too large",
            "chr1<TAB>1<TAB>99999999999999999999",
        );
        let long = format!("chr\u{e9}1\t1\t0{}", "x".repeat(100));
        let shown = format!("chr??1<TAB>1<TAB>0{}", "x".repeat(70));
        refused(
            b,
            &long,
            1,
            "column 3 (end) is not a non-negative integer",
            &shown,
        );
    }

    #[test]
    fn gff_keeps_its_first_version_line_and_skips_comments_and_sequence() {
        let c = run(
            Preset::Gff,
            "##gff-version 3\r\n##sequence-region X 1 9\n##gff-version 3\n\
             X\tsrc\tgene\t5\t90\t.\t+\t.\tID=g\n\n# note\n\
             Y\tsrc\texon\t1\t1\t.\t+\t.\n##FASTA\n>X\nACGT\tnot\ta\trecord\n",
        )
        .unwrap();
        assert_eq!(c.header, "##gff-version 3\n");
        assert_eq!(
            c.records,
            "X\tsrc\tgene\t5\t90\t.\t+\t.\tID=g\nY\tsrc\texon\t1\t1\t.\t+\t.\n"
        );
        assert_eq!(c.summary.header_lines, 1);
        assert_eq!(c.summary.records, 2);
        assert_eq!(c.summary.max_end, 90);
        assert_eq!(c.summary.per_sequence, counts(&[("X", 1), ("Y", 1)]));

        let c = run(
            Preset::Gff,
            "##gff-version3\nX\ts\tt\t1\t2\t.\t+\t.\t.\n>seq\nA\n",
        )
        .unwrap();
        assert_eq!((c.header.as_str(), c.summary.records), ("", 1));
    }

    #[test]
    fn gff_lines_it_refuses_are_named_by_their_line_in_the_source() {
        let g = Preset::Gff;
        refused(
            g,
            "##gff-version 3\nX\ts\tt\t1\t2\t.\t+\n",
            2,
            "expected 9 tab-separated GFF columns, found 7",
            "X<TAB>s<TAB>t<TAB>1<TAB>2<TAB>.<TAB>+",
        );
        refused(
            g,
            "\ts\tt\t1\t2\t.\t+\t.\t.\n",
            1,
            "empty seqid (column 1)",
            "<TAB>s<TAB>t<TAB>1<TAB>2<TAB>.<TAB>+<TAB>.<TAB>.",
        );
        refused(
            g,
            "X\ts\tt\t0\t2\t.\t+\t.\t.\n",
            1,
            "start (column 4) is not an integer >= 1",
            "X<TAB>s<TAB>t<TAB>0<TAB>2<TAB>.<TAB>+<TAB>.<TAB>.",
        );
        refused(
            g,
            "X\ts\tt\t1\t\t.\t+\t.\t.\n",
            1,
            "end (column 5) is not an integer >= 1",
            "X<TAB>s<TAB>t<TAB>1<TAB><TAB>.<TAB>+<TAB>.<TAB>.",
        );
        refused(
            g,
            "X\ts\tt\t5\t4\t.\t+\t.\t.\n",
            1,
            "end (column 5) is smaller than start (column 4)",
            "X<TAB>s<TAB>t<TAB>5<TAB>4<TAB>.<TAB>+<TAB>.<TAB>.",
        );
    }

    const VCF_HEAD: &str =
        "##fileformat=VCFv4.2\n##contig=<ID=1>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n";

    #[test]
    fn vcf_splits_header_from_records_and_ends_records_as_tabix_does() {
        let input = format!(
            "{VCF_HEAD}1\t100\t.\tACGT\tA\t.\t.\t.\n\n2\t5\t.\tN\t<DEL>\t.\t.\tSVTYPE=DEL;END=500\r\n\
             2\t7\t.\tN\tA\t.\t.\tXEND=900;END=x;END=8\n"
        );
        let c = run(Preset::Vcf, &input).unwrap();
        assert_eq!(c.header, VCF_HEAD);
        assert_eq!(c.summary.header_lines, 3);
        assert_eq!(c.summary.records, 3);
        assert_eq!(c.summary.max_end, 500);
        assert_eq!(c.summary.per_sequence, counts(&[("1", 1), ("2", 2)]));
        assert!(
            c.records
                .ends_with("END=500\n2\t7\t.\tN\tA\t.\t.\tXEND=900;END=x;END=8\n")
        );

        let only_header = run(Preset::Vcf, VCF_HEAD).unwrap();
        assert_eq!(
            (only_header.summary.records, only_header.records.as_str()),
            (0, "")
        );
    }

    #[test]
    fn vcf_lines_it_refuses_are_named_by_their_line_in_the_source() {
        let v = Preset::Vcf;
        refused(
            v,
            "#CHROM\tPOS\n",
            1,
            "not a VCF: first line must be ##fileformat=VCFv4.x",
            "#CHROM<TAB>POS",
        );
        refused(
            v,
            "1\t5\t.\tA\tC\t.\t.\t.\n",
            1,
            "not a VCF: no ##fileformat header",
            "1<TAB>5<TAB>.<TAB>A<TAB>C<TAB>.<TAB>.<TAB>.",
        );
        refused(
            v,
            "##fileformat=VCFv4.2\n1\t5\t.\tA\tC\t.\t.\t.\n",
            2,
            "data line before the #CHROM header line",
            "1<TAB>5<TAB>.<TAB>A<TAB>C<TAB>.<TAB>.<TAB>.",
        );
        refused(
            v,
            &format!("{VCF_HEAD}##late\n"),
            4,
            "header line after the #CHROM line",
            "##late",
        );
        refused(
            v,
            &format!("{VCF_HEAD}1\t5\t.\tA\tC\t.\t.\n"),
            4,
            "expected at least 8 tab-separated columns, found 7",
            "1<TAB>5<TAB>.<TAB>A<TAB>C<TAB>.<TAB>.",
        );
        refused(
            v,
            &format!("{VCF_HEAD}1\t5x\t.\tA\tC\t.\t.\t.\n"),
            4,
            "POS (column 2) is not a non-negative integer",
            "1<TAB>5x<TAB>.<TAB>A<TAB>C<TAB>.<TAB>.<TAB>.",
        );
        for (input, message) in [
            ("", "not a VCF: empty input or no ##fileformat header"),
            ("\n\n", "not a VCF: empty input or no ##fileformat header"),
            ("##fileformat=VCFv4.2\n", "not a VCF: no #CHROM header line"),
        ] {
            let e = run(v, input).err().expect(input);
            assert!(matches!(e, Error::Input(_)) && e.is_bad_input(), "{e:?}");
            assert_eq!(e.to_string(), message);
        }
    }

    #[test]
    fn a_failed_write_is_not_the_input_s_fault() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let e = clean(
            Preset::Bed,
            &b"chr1\t1\t2\n"[..],
            &mut Closed,
            &mut Vec::new(),
        )
        .err()
        .unwrap();
        assert!(!e.is_bad_input() && e.is_broken_pipe(), "{e:?}");
    }
}
