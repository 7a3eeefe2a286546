//! Tabix indexes compared by content: the same header, and per sequence the same bins (each
//! with the same chunks), linear index and counts. htslib writes bins in hash order, noodles in
//! its own: the order of bins in the file carries no meaning.
#![allow(dead_code)] // each test binary uses a part

use std::fmt::Write;

use noodles_csi::binning_index::BinningIndex;
use noodles_csi::binning_index::ReferenceSequence;
use std::path::Path;

/// A tabix index as text, bins and chunks sorted.
pub fn canonical(path: &Path) -> String {
    let index = noodles_tabix::fs::read(path)
        .unwrap_or_else(|e| panic!("read the index {}: {e}", path.display()));
    let mut out = format!("{:?}\n", index.header());
    for (i, reference) in index.reference_sequences().iter().enumerate() {
        let mut bins: Vec<_> = reference.bins().iter().collect();
        bins.sort_by_key(|(id, _)| **id);
        writeln!(out, "reference {i}: metadata {:?}", reference.metadata()).unwrap();
        for (id, bin) in bins {
            let mut chunks = bin.chunks().to_vec();
            chunks.sort_by_key(|c| (c.start(), c.end()));
            writeln!(out, "  bin {id}: {chunks:?}").unwrap();
        }
        for (n, window) in reference.index().chunks(8).enumerate() {
            writeln!(out, "  linear {}: {window:?}", n * 8).unwrap();
        }
    }
    writeln!(out, "unplaced {:?}", index.unplaced_unmapped_record_count()).unwrap();
    out
}

/// Asserts two indexes have the same content, showing the first lines that differ.
pub fn assert_same(ours: &Path, theirs: &Path) {
    let (a, b) = (canonical(ours), canonical(theirs));
    if a == b {
        return;
    }
    let (a, b): (Vec<_>, Vec<_>) = (a.lines().collect(), b.lines().collect());
    let first = (0..a.len().max(b.len()))
        .find(|&i| a.get(i) != b.get(i))
        .unwrap_or(0);
    let around = |v: &[&str]| v[first.saturating_sub(2)..(first + 3).min(v.len())].join("\n");
    panic!(
        "{} differs from {} at line {first}:\n--- ours\n{}\n--- theirs\n{}",
        ours.display(),
        theirs.display(),
        around(&a),
        around(&b)
    );
}
