//! BGZF compression and the tabix index in one pass (`htsprep-worker bgzip-tabix`, run by the
//! clean-sort-bgzip stages at the end of their pipe).
//!
//! `bgzip` then `tabix` reads the whole compressed file a second time to index it: about a
//! quarter of preparing a VCF. This writes the same kind of BGZF stream (bgzip's block size,
//! blocks compressed on several threads) and builds the tabix index from the uncompressed lines as
//! they pass: each record's interval by tabix's rules for the preset (htslib 1.16 `tbx_parse1`
//! and `hts_idx_push`, numbers read as `strtoll` base 0 reads them), its chunk from the blocks'
//! compressed offsets once they are written (`bgzf_tell`'s offsets: a block's end is the next
//! block's start; the last chunk ends with the file). The index has the content
//! `tabix -p PRESET` gives the same file (tests compare them on every test file); the one
//! difference is an empty interval (a BED start = end) on a 16 kb window boundary, which htslib
//! files in a bin for no base and noodles, which has no empty intervals, in the bin of that base:
//! queries answer the same. A record past a TBI's reach (2^29) means no index is written: the
//! index stage then makes a CSI with `tabix -C`.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::num::NonZero;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use bstr::{BStr, BString};
use noodles_bgzf as bgzf;
use noodles_core::Position;
use noodles_csi::binning_index::index::header::{self, ReferenceSequenceNames};
use noodles_csi::binning_index::index::reference_sequence::bin::Chunk;
use noodles_csi::binning_index::index::reference_sequence::index::LinearIndex;
use noodles_csi::binning_index::{Indexer, indexer::AddRecordError};
use noodles_tabix as tabix;

/// Uncompressed bytes per BGZF block, as `bgzip` writes them.
pub const BLOCK_SIZE: usize = 0xff00;

/// The column layout of the text being indexed (tabix's `-p`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    Vcf,
    Bed,
    Gff,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `line` counts the lines written: the header's, then the sorted records'.
    #[error("line {line} of the sorted file: {reason}")]
    Line { line: u64, reason: String },
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
        matches!(self, Self::Line { .. })
    }
}

fn io_error(what: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Io { what, source }
}

/// What one pass wrote besides the BGZF stream.
pub struct Written {
    /// Lines that are records (not `#` lines).
    pub records: u64,
    /// The tabix index, unless a record lies beyond a TBI's reach.
    pub index: Option<tabix::Index>,
}

impl Preset {
    fn header(self) -> header::Builder {
        match self {
            Self::Vcf => header::Builder::vcf(),
            Self::Bed => header::Builder::bed(),
            Self::Gff => header::Builder::gff(),
        }
    }

    /// The sequence name and the 0-based, half-open interval tabix indexes `line` under.
    fn interval(self, line: &[u8]) -> Result<(&[u8], i64, i64), &'static str> {
        let mut cols = line.split(|&b| b == b'\t');
        let name = cols.next().unwrap_or_default();
        // The start column: 1-based (VCF, GFF) or 0-based (BED), a one-base interval until an
        // end is found.
        let (start_col, zero_based) = match self {
            Self::Vcf | Self::Bed => (cols.next(), self == Self::Bed),
            Self::Gff => (cols.nth(2), false),
        };
        let v = start_col.and_then(leading_int).ok_or("no integer start")?;
        let (mut beg, mut end) = if zero_based {
            (v, v.saturating_add(1))
        } else {
            (v.saturating_sub(1), v)
        };
        beg = beg.max(0);
        end = end.max(1);
        match self {
            Self::Vcf => {
                let reference = cols.nth(1).unwrap_or_default();
                if !reference.is_empty() {
                    end = beg.saturating_add(reference.len() as i64);
                }
                if let Some(e) = cols.nth(3).and_then(info_end)
                    && e > beg
                {
                    end = e;
                }
            }
            Self::Bed => end = cols.next().and_then(leading_int).ok_or("no integer end")?,
            Self::Gff => end = cols.next().and_then(leading_int).ok_or("no integer end")?,
        }
        if name.is_empty() {
            return Err("no sequence name");
        }
        if end < beg {
            return Err("end before start");
        }
        Ok((name, beg, end.max(1)))
    }
}

/// The integer a field starts with, read as htslib reads it (`strtoll(s, &end, 0)`: leading
/// blanks, a sign, then `0x` hexadecimal, `0` octal or decimal), if it starts with one; a value
/// past `i64` saturates, as `strtoll` does. htslib's readers parse each record this way when
/// they answer a query, so the index must too.
fn leading_int(field: &[u8]) -> Option<i64> {
    let field = &field[field.iter().take_while(|b| b.is_ascii_whitespace()).count()..];
    let (neg, rest) = match field.first() {
        Some(b'-') => (true, &field[1..]),
        Some(b'+') => (false, &field[1..]),
        _ => (false, field),
    };
    let (radix, digits) = match rest {
        [b'0', b'x' | b'X', d, ..] if d.is_ascii_hexdigit() => (16, &rest[2..]),
        [b'0', ..] => (8, rest),
        _ => (10, rest),
    };
    let n = digits
        .iter()
        .take_while(|b| char::from(**b).is_digit(radix))
        .count();
    if n == 0 {
        return None;
    }
    let v = digits[..n].iter().fold(0i64, |acc, &d| {
        let d = i64::from(char::from(d).to_digit(radix).unwrap_or(0));
        acc.saturating_mul(i64::from(radix)).saturating_add(d)
    });
    Some(if neg { -v } else { v })
}

/// A VCF INFO `END=`: the first `END=` if the field starts with it, else the first `;END=`.
fn info_end(info: &[u8]) -> Option<i64> {
    let find = |needle: &[u8]| info.windows(needle.len()).position(|w| w == needle);
    let value = match find(b"END=")? {
        0 => &info[4..],
        _ => &info[find(b";END=")? + 5..],
    };
    if value.first() == Some(&b'.') {
        return None;
    }
    Some(leading_int(value).unwrap_or(0))
}

/// One record waiting for the compressed offsets of the blocks it spans.
struct Pending {
    line: u64,
    reference: usize,
    beg: i64,
    end: i64,
    /// Uncompressed offsets of the record's chunk.
    from: u64,
    to: u64,
}

/// Compresses one block into one BGZF frame.
fn compress(block: &[u8]) -> io::Result<Vec<u8>> {
    let mut writer = bgzf::io::Writer::new(Vec::with_capacity(block.len() / 2));
    writer.write_all(block)?;
    writer.flush()?;
    Ok(writer.into_inner())
}

/// A compressed block, once a compression thread has made it.
type Frame = mpsc::Receiver<io::Result<Vec<u8>>>;
/// A block to compress and where to send its frame.
type Job = (Vec<u8>, mpsc::SyncSender<io::Result<Vec<u8>>>);

/// The writing side of a pass: blocks in order, their offsets, and the records they resolve.
struct Sink<W> {
    out: W,
    preset: Preset,
    jobs: crossbeam_channel::Sender<Job>,
    in_flight: VecDeque<Frame>,
    max_in_flight: usize,
    /// The compressed offset of every block written, and of the next one.
    offsets: Vec<u64>,
    /// Uncompressed bytes taken so far, and whether that is all of them.
    total: u64,
    finished: bool,
    pending: VecDeque<Pending>,
    indexer: Option<Indexer<LinearIndex>>,
    names: ReferenceSequenceNames,
}

impl<W: Write> Sink<W> {
    fn ship(&mut self, block: Vec<u8>) -> Result<(), Error> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.jobs
            .send((block, tx))
            .map_err(|_| io_error("compress a block")(io::Error::other("compression stopped")))?;
        self.in_flight.push_back(rx);
        while self.in_flight.len() > self.max_in_flight {
            self.write_oldest()?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> Result<(), Error> {
        let Some(rx) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let frame = rx
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("a compression thread stopped")))
            .map_err(io_error("compress a block"))?;
        self.out
            .write_all(&frame)
            .map_err(io_error("write the compressed file"))?;
        let next = self.offsets.last().copied().unwrap_or(0) + frame.len() as u64;
        self.offsets.push(next);
        self.resolve()
    }

    /// The virtual position of an uncompressed offset, once its block is written. An offset at
    /// the end of a block is the start of the next one, as htslib's `bgzf_tell` gives it after
    /// reading to a block's end.
    fn virtual_position(&self, at: u64) -> Option<bgzf::VirtualPosition> {
        let size = BLOCK_SIZE as u64;
        let (mut block, mut within) = ((at / size) as usize, at % size);
        if at == self.total {
            // The end of the stream: the end of the last block only once no more can follow.
            if !self.finished {
                return None;
            }
            if within != 0 {
                (block, within) = (block + 1, 0);
            }
        } else if block + 1 >= self.offsets.len() {
            return None;
        }
        let compressed = *self.offsets.get(block)?;
        bgzf::VirtualPosition::try_from((compressed, within as u16)).ok()
    }

    fn resolve(&mut self) -> Result<(), Error> {
        while let Some(p) = self.pending.front() {
            // The last record's chunk ends where the file does (with any `#` lines after it), as
            // htslib's `hts_idx_finish` ends it: it waits for the end.
            if !self.finished && self.pending.len() == 1 {
                return Ok(());
            }
            let (Some(from), Some(to)) =
                (self.virtual_position(p.from), self.virtual_position(p.to))
            else {
                return Ok(());
            };
            let p = self.pending.pop_front().expect("a front record");
            let Some(indexer) = self.indexer.as_mut() else {
                continue;
            };
            // noodles takes 1-based closed intervals: an empty one (a BED start = end) is
            // given one base.
            let first = p.beg.saturating_add(1);
            let start = Position::try_from(first as usize).expect("beg >= 0");
            let end = Position::try_from(p.end.max(first) as usize).expect("end >= 1");
            match indexer.add_record(Some((p.reference, start, end, true)), Chunk::new(from, to)) {
                Ok(()) => {}
                Err(AddRecordError::EndExceedsMaxPosition { .. }) => self.indexer = None,
                Err(e) => {
                    let name = self.names.get_index(p.reference).map_or_else(
                        || format!("#{}", p.reference),
                        |n| String::from_utf8_lossy(n).into_owned(),
                    );
                    let reason = match e {
                        AddRecordError::OutOfOrderReferenceSequenceId { .. } => format!(
                            "sequence {name} appears again after other sequences: the input is \
                             not sorted by sequence"
                        ),
                        AddRecordError::OutOfOrderStartPosition { .. } => format!(
                            "{name}:{} starts before the record above it: the input is not \
                             sorted by position",
                            p.beg + 1
                        ),
                        e => format!("cannot be indexed: {e}"),
                    };
                    return Err(Error::Line {
                        line: p.line,
                        reason,
                    });
                }
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<(W, Option<tabix::Index>), Error> {
        while !self.in_flight.is_empty() {
            self.write_oldest()?;
        }
        self.finished = true;
        if let Some(last) = self.pending.back_mut() {
            last.to = self.total;
        }
        self.resolve()?;
        if !self.pending.is_empty() {
            return Err(io_error("index the file")(io::Error::other(
                "a record lies beyond the offsets a BGZF index can hold",
            )));
        }
        self.out
            .write_all(&EOF)
            .map_err(io_error("write the compressed file"))?;
        let index = self.indexer.map(|indexer| {
            let header = self
                .preset
                .header()
                .set_reference_sequence_names(self.names.clone())
                .build();
            indexer.set_header(header).build(self.names.len())
        });
        Ok((self.out, index))
    }
}

/// BGZF's end-of-file marker: an empty block.
const EOF: [u8; 28] = [
    0x1f, 0x8b, 0x08, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x06, 0x00, 0x42, 0x43, 0x02, 0x00,
    0x1b, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// Compresses `input` (header lines, then records sorted by sequence and start) to `out` as BGZF
/// and builds its tabix index, with `threads` compression threads.
pub fn bgzip_tabix<W: Write>(
    preset: Preset,
    mut input: impl BufRead,
    out: W,
    threads: NonZero<usize>,
) -> Result<(W, Written), Error> {
    let (jobs, queue) = crossbeam_channel::bounded::<Job>(threads.get() * 2);
    thread::scope(|scope| {
        for _ in 0..threads.get() {
            let queue = queue.clone();
            scope.spawn(move || {
                for (block, done) in queue {
                    // The receiver is gone only when the pass failed: nothing to report to.
                    let _ = done.send(compress(&block));
                }
            });
        }
        drop(queue);
        let mut sink = Sink {
            out,
            preset,
            jobs,
            in_flight: VecDeque::new(),
            max_in_flight: threads.get() * 4,
            offsets: vec![0],
            total: 0,
            finished: false,
            pending: VecDeque::new(),
            indexer: Some(Indexer::default()),
            names: ReferenceSequenceNames::new(),
        };
        let (mut line, mut block) = (Vec::new(), Vec::with_capacity(BLOCK_SIZE));
        let (mut number, mut records, mut previous_end) = (0u64, 0u64, None);
        loop {
            line.clear();
            let n = input
                .read_until(b'\n', &mut line)
                .map_err(io_error("read the input"))?;
            if n == 0 {
                break;
            }
            number += 1;
            let from = sink.total;
            sink.total += n as u64;
            let mut rest = &line[..];
            while !rest.is_empty() {
                let take = (BLOCK_SIZE - block.len()).min(rest.len());
                block.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if block.len() == BLOCK_SIZE {
                    sink.ship(std::mem::replace(
                        &mut block,
                        Vec::with_capacity(BLOCK_SIZE),
                    ))?;
                }
            }
            // tabix skips every line that starts with its comment character, wherever it is.
            if line.first() == Some(&b'#') {
                continue;
            }
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let (name, beg, end) = preset.interval(text).map_err(|reason| Error::Line {
                line: number,
                reason: reason.to_owned(),
            })?;
            let reference = match sink.names.get_index_of(BStr::new(name)) {
                Some(i) => i,
                None => sink.names.insert_full(BString::from(name)).0,
            };
            records += 1;
            // A record's chunk starts where the record before it ended (lines skipped between
            // them belong to it), as in htslib.
            sink.pending.push_back(Pending {
                line: number,
                reference,
                beg,
                end,
                from: previous_end.unwrap_or(from),
                to: sink.total,
            });
            previous_end = Some(sink.total);
        }
        if !block.is_empty() {
            sink.ship(block)?;
        }
        // The sender closes here: the threads end once the queue is empty.
        let (out, index) = sink.finish()?;
        Ok((out, Written { records, index }))
    })
}

/// Where the TBI of `out` is written: `out.tbi`, beside it.
pub fn tbi_path(out: &Path) -> PathBuf {
    let mut path = out.as_os_str().to_owned();
    path.push(".tbi");
    PathBuf::from(path)
}

/// `htsprep-worker bgzip-tabix`: standard input (after the header file, if any) to `out` as BGZF
/// and `out.tbi`; neither is left behind on failure. The header file is read once the body
/// starts: a clean stage closes it before `sort` emits its first line.
pub fn command(
    preset: Preset,
    header: Option<&Path>,
    out: &Path,
    threads: NonZero<usize>,
) -> Result<Written, Error> {
    let tbi = tbi_path(out);
    let result = write_both(preset, header, out, &tbi, threads);
    if result.is_err() {
        let _ = std::fs::remove_file(out);
        let _ = std::fs::remove_file(&tbi);
    }
    result
}

/// Writes the index, its last block and end-of-file marker included: an error there (a full
/// disk) is an error, not a truncated index found later.
fn write_index(path: &Path, index: &tabix::Index) -> io::Result<()> {
    let mut writer = tabix::io::Writer::new(File::create(path)?);
    writer.write_index(index)?;
    writer.try_finish()?;
    writer.get_ref().get_ref().sync_all()
}

fn write_both(
    preset: Preset,
    header: Option<&Path>,
    out: &Path,
    tbi: &Path,
    threads: NonZero<usize>,
) -> Result<Written, Error> {
    let mut body = BufReader::with_capacity(1 << 20, io::stdin().lock());
    body.fill_buf().map_err(io_error("read the input"))?;
    let header: Box<dyn BufRead> = match header {
        Some(path) => Box::new(BufReader::new(
            File::open(path).map_err(io_error("open the header file"))?,
        )),
        None => Box::new(io::empty()),
    };
    let file = File::create(out).map_err(io_error("create the compressed file"))?;
    let (file, written) = bgzip_tabix(
        preset,
        Read::chain(header, body),
        BufWriter::with_capacity(1 << 20, file),
        threads,
    )?;
    file.into_inner()
        .map_err(|e| e.into_error())
        .map_err(io_error("write the compressed file"))?;
    match &written.index {
        Some(index) => write_index(tbi, index).map_err(io_error("write the index"))?,
        None => match std::fs::remove_file(tbi) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("remove a stale index")(e)),
        },
    }
    Ok(written)
}
