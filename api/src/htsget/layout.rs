//! Where a prepared file's parts are: its index (BAI, TBI or CSI, read with noodles), the names
//! of its reference sequences, where its header ends and its records begin, and whether it ends
//! with the BGZF end-of-file block.

use std::io;

use noodles_bgzf::VirtualPosition;
use noodles_csi::BinningIndex;
use noodles_csi::binning_index::index::reference_sequence::bin::Chunk;
use noodles_csi::binning_index::{Index, index::reference_sequence};

use super::bgzf::{EOF, read};
use super::query::Endpoint;
use crate::http::error::ApiError;
use crate::http::serve::Opener;
use htsprep_shared::error::Cause;

/// The largest BAM header read (its reference names are needed for every ticket).
const MAX_HEADER: u64 = 256 << 20;

pub struct Layout {
    pub index: Box<dyn BinningIndex + Send + Sync>,
    /// Reference sequence names, by the index's reference sequence id.
    pub names: Vec<String>,
    /// Where the first record starts (the end of the header).
    pub first_record: VirtualPosition,
    /// Where the placed records end (the unplaced unmapped reads of a BAM follow).
    pub placed_end: VirtualPosition,
    /// The offset the records end at: before the end-of-file block.
    pub body_end: u64,
    /// The data file's size.
    pub size: u64,
}

fn internal(what: impl Into<String>) -> ApiError {
    ApiError::Internal(Cause::msg(what.into()))
}

/// Every chunk of an index, for its bounds.
fn chunks<I: reference_sequence::Index>(index: &Index<I>) -> impl Iterator<Item = &Chunk> {
    index
        .reference_sequences()
        .iter()
        .flat_map(|r| r.bins().values())
        .flat_map(|b| b.chunks())
}

/// The first chunk start and the last chunk end over all reference sequences.
fn bounds<I: reference_sequence::Index>(
    index: &Index<I>,
) -> Option<(VirtualPosition, VirtualPosition)> {
    let first = chunks(index).map(Chunk::start).min()?;
    let last = chunks(index).map(Chunk::end).max()?;
    Some((first, last))
}

type Parsed = (
    Box<dyn BinningIndex + Send + Sync>,
    Option<(VirtualPosition, VirtualPosition)>,
);

/// Reads a BAI, TBI or CSI index, known by its magic number.
fn parse_index(bytes: &[u8]) -> io::Result<Parsed> {
    if bytes.starts_with(b"BAI\x01") {
        let index = noodles_bam::bai::io::Reader::new(bytes).read_index()?;
        let b = bounds(&index);
        return Ok((Box::new(index), b));
    }
    let mut magic = [0u8; 4];
    io::Read::read_exact(&mut noodles_bgzf::io::Reader::new(bytes), &mut magic)?;
    match &magic {
        b"TBI\x01" => {
            let index = noodles_tabix::io::Reader::new(bytes).read_index()?;
            let b = bounds(&index);
            Ok((Box::new(index), b))
        }
        b"CSI\x01" => {
            let index = noodles_csi::io::Reader::new(bytes).read_index()?;
            let b = bounds(&index);
            Ok((Box::new(index), b))
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a BAI, TBI or CSI index",
        )),
    }
}

/// The BAM header's reference names and where the header ends, reading more of the file until
/// the header is whole.
async fn bam_header(
    data: &dyn Opener,
    size: u64,
) -> Result<(Vec<String>, VirtualPosition), ApiError> {
    let mut want = (1u64 << 20).min(size);
    loop {
        let prefix = read(data, 0..want).await?;
        let mut reader = noodles_bam::io::Reader::new(&prefix[..]);
        match reader.read_header() {
            Ok(header) => {
                let names = header
                    .reference_sequences()
                    .keys()
                    .map(|n| n.to_string())
                    .collect();
                return Ok((names, reader.get_ref().virtual_position()));
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && want < size.min(MAX_HEADER) => {
                want = (want * 8).min(size).min(MAX_HEADER);
            }
            Err(e) => return Err(internal(format!("the BAM header does not read: {e}"))),
        }
    }
}

impl Layout {
    /// Reads the index whole and as much of the data as its layout needs.
    pub async fn load(
        endpoint: Endpoint,
        data: &dyn Opener,
        index: &dyn Opener,
    ) -> Result<Layout, ApiError> {
        let size = data.head().await?.size;
        let index_bytes = index.get(None).await?.bytes().await?;
        let (index, bounds) = parse_index(&index_bytes)
            .map_err(|e| internal(format!("the index does not read: {e}")))?;
        let ends_with_eof =
            size >= EOF.len() as u64 && read(data, size - EOF.len() as u64..size).await? == EOF;
        let body_end = if ends_with_eof {
            size - EOF.len() as u64
        } else {
            size
        };
        let everything =
            VirtualPosition::try_from((body_end, 0)).map_err(|e| internal(e.to_string()))?;
        let (names, first_record) = match endpoint {
            Endpoint::Reads => bam_header(data, size).await?,
            Endpoint::Variants => {
                let names = index
                    .header()
                    .ok_or_else(|| internal("the index names no reference sequences"))?
                    .reference_sequence_names()
                    .iter()
                    .map(|n| n.to_string())
                    .collect();
                // No record at all: the whole file is header.
                (names, bounds.map_or(everything, |b| b.0))
            }
        };
        Ok(Layout {
            index,
            names,
            first_record,
            placed_end: bounds.map_or(first_record, |b| b.1),
            body_end,
            size,
        })
    }

    /// The index's id for a reference sequence name.
    pub fn id_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}
