//! BGZF blocks of a prepared file, read by range: a block's size from its header, a block's
//! data, and data compressed into new blocks (a ticket's `data:` parts).

use std::io::{Read, Write};

use htsprep_shared::artifacts::GetRange;
use htsprep_shared::error::Cause;

use crate::http::error::ApiError;
use crate::http::serve::Opener;

/// The empty block every BGZF file ends with (SAM/BAM spec, 4.1.2).
pub const EOF: [u8; 28] = [
    0x1f, 0x8b, 0x08, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x06, 0x00, 0x42, 0x43, 0x02, 0x00,
    0x1b, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// The header fields a block's size is read from: gzip magic, FEXTRA, and the `BC` subfield.
const HEADER: usize = 18;
/// The largest block BGZF allows.
const MAX_BLOCK: u64 = 65_536;

fn corrupt(what: String) -> ApiError {
    ApiError::Internal(Cause::msg(what))
}

/// Reads `range` of the file whole.
pub async fn read(opener: &dyn Opener, range: std::ops::Range<u64>) -> Result<Vec<u8>, ApiError> {
    let got = opener.get(Some(GetRange::Bounded(range))).await?;
    got.bytes().await.map_err(ApiError::from)
}

/// The size of the block starting at `offset`, from its header.
fn block_size(header: &[u8], offset: u64) -> Result<u64, ApiError> {
    let ok = header.len() >= HEADER
        && header[..4] == [0x1f, 0x8b, 0x08, 0x04]
        && header[12..14] == *b"BC"
        && header[14..16] == [2, 0];
    if !ok {
        return Err(corrupt(format!("no BGZF block starts at byte {offset}")));
    }
    Ok(u64::from(u16::from_le_bytes([header[16], header[17]])) + 1)
}

/// The block starting at `offset`: where it ends, and its data.
pub async fn block(
    opener: &dyn Opener,
    offset: u64,
    size: u64,
) -> Result<(u64, Vec<u8>), ApiError> {
    let bytes = read(opener, offset..(offset + MAX_BLOCK).min(size)).await?;
    let len = block_size(&bytes, offset)?;
    let raw = bytes
        .get(..len as usize)
        .ok_or_else(|| corrupt(format!("the BGZF block at byte {offset} is cut short")))?;
    let mut data = Vec::new();
    noodles_bgzf::io::Reader::new(raw)
        .read_to_end(&mut data)
        .map_err(|e| {
            corrupt(format!(
                "the BGZF block at byte {offset} does not inflate: {e}"
            ))
        })?;
    Ok((offset + len, data))
}

/// `data` as BGZF blocks (without the end-of-file block).
pub fn compress(data: &[u8]) -> Vec<u8> {
    let mut writer = noodles_bgzf::io::Writer::new(Vec::new());
    // Writing to memory cannot fail.
    writer.write_all(data).expect("write to memory");
    let mut out = writer.finish().expect("write to memory");
    out.truncate(out.len() - EOF.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_data_reads_back_and_has_no_end_block() {
        let data: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let blocks = compress(&data);
        assert!(!blocks.ends_with(&EOF));
        let mut back = Vec::new();
        noodles_bgzf::io::Reader::new(&blocks[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        assert!(block_size(&blocks, 0).unwrap() <= 65_536);
        assert_eq!(block_size(&EOF, 0).unwrap(), 28);
        assert!(block_size(b"not a block at all", 0).is_err());
    }
}
