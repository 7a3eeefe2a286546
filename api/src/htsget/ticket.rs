//! A ticket's parts: the header, then the records the index says can hold the region, then the
//! BGZF end-of-file block inline.
//!
//! Parts hold whole records only. A BGZF block may begin or end in the middle of a record (bgzip
//! cuts text every 64 KiB), and the header's last block may hold the first records: where a
//! span of records begins or ends inside a block, that block's share of it goes inline (its
//! data compressed again, a `data:` URI), and the whole blocks between are ranges of the file.
//! A client concatenating the parts gets the header once and every record whole, once.

use std::collections::HashMap;
use std::ops::Range;

use noodles_bgzf::VirtualPosition;

use super::bgzf::{self, EOF};
use super::error::{HtsgetError, Kind};
use super::layout::Layout;
use super::query::Select;
use crate::http::error::ApiError;
use crate::http::serve::Opener;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Header,
    Body,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Bytes of the file, fetched with a `Range` header.
    Range(Range<u64>),
    /// Bytes carried in the ticket (a `data:` URI).
    Inline(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub source: Source,
    pub class: Class,
}

/// Spans of records (start and end virtual positions), merged where they share a block: the
/// records between two spans in one block are sent (extra records are allowed), never a
/// record twice.
fn merge(
    mut spans: Vec<(VirtualPosition, VirtualPosition)>,
) -> Vec<(VirtualPosition, VirtualPosition)> {
    spans.sort();
    let mut out: Vec<(VirtualPosition, VirtualPosition)> = Vec::with_capacity(spans.len());
    for (start, end) in spans.into_iter().filter(|(s, e)| s < e) {
        match out.last_mut() {
            Some(last) if start.compressed() <= last.1.compressed() => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// Writes the parts of one ticket, reading each block it cuts once.
struct Writer<'a> {
    data: &'a dyn Opener,
    size: u64,
    blocks: HashMap<u64, (u64, Vec<u8>)>,
    parts: Vec<Part>,
}

impl Writer<'_> {
    /// The block at `offset`: where it ends, and its data.
    async fn block(&mut self, offset: u64) -> Result<(u64, &[u8]), ApiError> {
        if !self.blocks.contains_key(&offset) {
            let block = bgzf::block(self.data, offset, self.size).await?;
            self.blocks.insert(offset, block);
        }
        let (end, data) = &self.blocks[&offset];
        Ok((*end, data))
    }

    fn push(&mut self, source: Source, class: Class) {
        let empty = match &source {
            Source::Range(r) => r.is_empty(),
            Source::Inline(b) => b.is_empty(),
        };
        if !empty {
            self.parts.push(Part { source, class });
        }
    }

    async fn inline(
        &mut self,
        offset: u64,
        cut: Range<usize>,
        class: Class,
    ) -> Result<(), ApiError> {
        let (_, data) = self.block(offset).await?;
        let cut = cut.start.min(data.len())..cut.end.min(data.len());
        let bytes = bgzf::compress(&data[cut]);
        self.push(Source::Inline(bytes), class);
        Ok(())
    }

    /// The bytes from `start` to `end`, exactly.
    async fn span(
        &mut self,
        start: VirtualPosition,
        end: VirtualPosition,
        class: Class,
    ) -> Result<(), ApiError> {
        let (s, su) = (start.compressed(), usize::from(start.uncompressed()));
        let (e, eu) = (end.compressed(), usize::from(end.uncompressed()));
        if s == e {
            return self.inline(s, su..eu, class).await;
        }
        let mut from = s;
        if su > 0 {
            self.inline(s, su..usize::MAX, class).await?;
            from = self.block(s).await?.0;
        }
        self.push(Source::Range(from..e.max(from)), class);
        if eu > 0 {
            self.inline(e, 0..eu, class).await?;
        }
        Ok(())
    }
}

fn no_such_name(name: &str) -> HtsgetError {
    HtsgetError::spec(
        Kind::NotFound,
        format!("the file has no reference sequence named {name:?}"),
    )
}

/// The parts for `select` of the file laid out as `layout`.
pub async fn plan(
    layout: &Layout,
    select: &Select,
    data: &dyn Opener,
) -> Result<Vec<Part>, HtsgetError> {
    let first = layout.first_record;
    let body_end = VirtualPosition::try_from((layout.body_end, 0))
        .map_err(|e| ApiError::Internal(htsprep_shared::error::Cause::msg(e.to_string())))?;
    let spans = match select {
        Select::Header => Vec::new(),
        Select::Empty { name } => {
            layout.id_of(name).ok_or_else(|| no_such_name(name))?;
            Vec::new()
        }
        Select::All => vec![(first, body_end)],
        Select::Unplaced => vec![(layout.placed_end.max(first), body_end)],
        Select::Region { name, interval } => {
            let id = layout.id_of(name).ok_or_else(|| no_such_name(name))?;
            layout
                .index
                .query(id, *interval)
                .map_err(|e| HtsgetError::spec(Kind::InvalidRange, e.to_string()))?
                .into_iter()
                .map(|c| (c.start().max(first), c.end()))
                .collect()
        }
    };
    let mut w = Writer {
        data,
        size: layout.size,
        blocks: HashMap::new(),
        parts: Vec::new(),
    };
    let origin = VirtualPosition::default();
    w.span(origin, first, Class::Header).await?;
    for (start, end) in merge(spans) {
        w.span(start, end, Class::Body).await?;
    }
    let eof_class = if *select == Select::Header {
        Class::Header
    } else {
        Class::Body
    };
    w.push(Source::Inline(EOF.to_vec()), eof_class);
    Ok(w.parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vp(c: u64, u: u16) -> VirtualPosition {
        VirtualPosition::try_from((c, u)).unwrap()
    }

    #[test]
    fn spans_sharing_a_block_merge_and_empty_ones_go() {
        assert_eq!(
            merge(vec![
                (vp(100, 5), vp(200, 10)),
                (vp(0, 1), vp(50, 0)),
                (vp(200, 40), vp(300, 0)),
                (vp(400, 1), vp(400, 1)),
                (vp(500, 0), vp(600, 2)),
            ]),
            vec![
                (vp(0, 1), vp(50, 0)),
                (vp(100, 5), vp(300, 0)),
                (vp(500, 0), vp(600, 2)),
            ]
        );
    }
}
