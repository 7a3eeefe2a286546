//! Published artifacts read through memory maps, cached per file.
//!
//! Serving a range from a map is a zero-copy slice handed to the socket writer: no read syscall,
//! no copy into a buffer, no open/close per request. Artifacts are immutable once published
//! (a new version is a new file renamed into place, which leaves existing maps intact), and a
//! cached map is re-validated with `stat` after [`REVALIDATE`], so a replaced or deleted file is
//! noticed within that time.
//!
//! The one hazard of a map is a file truncated in place while mapped (reads past the new end
//! fault). The store never does that; published files are made read-only so nothing else does
//! by accident.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{ArtifactKey, ObjectMeta};

/// How long a cached map is trusted before its file is checked again.
pub const REVALIDATE: Duration = Duration::from_secs(2);
const MAX_MAPS: usize = 4096;

#[derive(Clone)]
pub(crate) struct Mapped {
    pub bytes: Bytes,
    pub md: FileId,
    /// What a `head` says of this version, worked out once when it was mapped.
    pub meta: ObjectMeta,
}

/// What identifies one version of a file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
}

impl FileId {
    fn of(md: &std::fs::Metadata) -> Self {
        Self {
            dev: md.dev(),
            ino: md.ino(),
            size: md.len(),
            mtime_ns: md.mtime() * 1_000_000_000 + md.mtime_nsec(),
        }
    }
}

/// Maps by the key they serve: a hit costs one hash of the key (foldhash: keys are published
/// artifacts' names, not attacker-chosen), not building and hashing a path.
#[derive(Default)]
pub(crate) struct MapCache {
    entries: RwLock<HashMap<ArtifactKey, (Instant, Mapped), foldhash::fast::RandomState>>,
}

impl std::fmt::Debug for MapCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapCache").finish_non_exhaustive()
    }
}

#[expect(unsafe_code, reason = "memory-mapping an immutable published artifact")]
fn map(file: &std::fs::File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the file is a published artifact: it is never written or truncated in place (new
    // versions are renamed over it, which keeps this inode and its pages intact) and it is
    // read-only on disk. The map is only ever read.
    // Populating maps every page up front (page-cache pages only, no copy), so serving
    // random ranges takes no page faults.
    unsafe { memmap2::MmapOptions::new().populate().map(file) }
}

impl MapCache {
    /// A map cached and checked within [`REVALIDATE`]: no IO at all.
    pub(crate) fn fresh(&self, key: &ArtifactKey) -> Option<Mapped> {
        match self.entries.read().expect("map cache lock").get(key) {
            Some((at, m)) if at.elapsed() < REVALIDATE => Some(m.clone()),
            _ => None,
        }
    }

    /// Checks `key`'s file at `path` and (re)maps it if it changed: blocking IO, run it off the
    /// async workers. `Err` with the io error (NotFound included).
    pub(crate) fn load(&self, key: &ArtifactKey, path: &Path) -> std::io::Result<Mapped> {
        let md = std::fs::metadata(path)?;
        if !md.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "not a file",
            ));
        }
        let id = FileId::of(&md);
        {
            let mut entries = self.entries.write().expect("map cache lock");
            if let Some((at, m)) = entries.get_mut(key)
                && m.md == id
            {
                *at = Instant::now();
                return Ok(m.clone());
            }
        }
        let file = std::fs::File::open(path)?;
        let metadata = file.metadata()?;
        let bytes = if metadata.len() == 0 {
            Bytes::new()
        } else {
            Bytes::from_owner(map(&file)?)
        };
        let mapped = Mapped {
            bytes,
            md: FileId::of(&metadata),
            meta: super::local::meta_of(&metadata),
        };
        let mut entries = self.entries.write().expect("map cache lock");
        if entries.len() >= MAX_MAPS {
            entries.clear();
        }
        entries.insert(key.clone(), (Instant::now(), mapped.clone()));
        Ok(mapped)
    }

    /// Forgets a key's file (after this process replaced or deleted it).
    pub(crate) fn forget(&self, key: &ArtifactKey) {
        self.entries.write().expect("map cache lock").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_replaced_or_deleted_behind_the_cache_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("obj");
        std::fs::write(&path, b"first").unwrap();
        let key = ArtifactKey::parse("d/l/data/p/m-v1").unwrap();
        let cache = MapCache::default();
        assert_eq!(&cache.load(&key, &path).unwrap().bytes[..], b"first");
        assert_eq!(&cache.fresh(&key).unwrap().bytes[..], b"first");

        // Another process publishes a new version by rename.
        let next = dir.path().join("next");
        std::fs::write(&next, b"second version").unwrap();
        std::fs::rename(&next, &path).unwrap();
        assert_eq!(
            &cache.load(&key, &path).unwrap().bytes[..],
            b"second version"
        );

        std::fs::remove_file(&path).unwrap();
        let err = cache
            .load(&key, &path)
            .err()
            .expect("a deleted file is not served");
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn empty_files_map_to_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty");
        std::fs::write(&path, b"").unwrap();
        let key = ArtifactKey::parse("d/l/data/p/m-v1").unwrap();
        assert!(
            MapCache::default()
                .load(&key, &path)
                .unwrap()
                .bytes
                .is_empty()
        );
    }
}
