//! Artifacts as files under a local directory: `ROOT/objects/{key}`, published by writing to
//! `ROOT/staging/` and renaming into place, so a reader never sees a half-written object.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::mapped::MapCache;
use super::{ArtifactError, ArtifactKey, ArtifactStore, GetRange, GetResult, ObjectMeta, found};

/// Reads are streamed in chunks of this size, whatever the range.
pub const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct LocalArtifactStore {
    objects: PathBuf,
    staging: PathBuf,
    maps: std::sync::Arc<MapCache>,
}

impl LocalArtifactStore {
    /// Opens (creating) the store rooted at `root`.
    pub fn open(root: &Path) -> Result<Self, ArtifactError> {
        let objects = root.join("objects");
        let staging = root.join("staging");
        for dir in [&objects, &staging] {
            std::fs::create_dir_all(dir).map_err(|source| ArtifactError::Io {
                action: "create directory",
                key: dir.display().to_string(),
                source,
            })?;
        }
        Ok(Self {
            objects,
            staging,
            maps: std::sync::Arc::default(),
        })
    }

    /// Whether `key` exists, by one `stat` on the calling thread (no blocking-pool hop).
    fn exists_here(&self, key: &ArtifactKey) -> Result<bool, ArtifactError> {
        match std::fs::metadata(self.path_of(key)) {
            // Every request for a file not prepared yet asks: answered without building an error.
            Err(e) if is_missing(&e) => Ok(false),
            stat => found(object(key, stat)),
        }
    }

    /// Where an object lives on disk (for operators and reference servers such as nginx).
    /// Segments too long for a file name are mapped by [`disk_segment`].
    pub fn path_of(&self, key: &ArtifactKey) -> PathBuf {
        let mut p = self.objects.clone();
        for segment in key.segments() {
            p.push(disk_segment(segment).as_ref());
        }
        p
    }
}

/// The longest key segment used as a file name as it is (file systems allow 255 bytes).
pub const MAX_DISK_SEGMENT: usize = 200;

/// A key segment as a file name: itself when short enough, else its first 100 bytes, `~` and
/// the SHA-256 of the whole segment (so distinct segments stay distinct and the name stays
/// readable). Keys come from identifiers of up to 256 characters.
pub fn disk_segment(segment: &str) -> std::borrow::Cow<'_, str> {
    use sha2::{Digest, Sha256};
    if segment.len() <= MAX_DISK_SEGMENT {
        return segment.into();
    }
    let mut cut = 100;
    while !segment.is_char_boundary(cut) {
        cut -= 1;
    }
    let digest = Sha256::digest(segment.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}~{hex}", &segment[..cut]).into()
}

pub(super) fn meta_of(md: &std::fs::Metadata) -> ObjectMeta {
    let modified = md.modified().unwrap_or(UNIX_EPOCH);
    let nanos = modified
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    ObjectMeta {
        size: md.len(),
        etag: format!("{:x}-{:x}", md.len(), nanos),
        last_modified: DateTime::<Utc>::from(modified),
    }
}

/// Whether a file system error means the object is not there.
fn is_missing(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

fn io_err(
    action: &'static str,
    key: &(impl std::fmt::Display + ?Sized),
    source: std::io::Error,
) -> ArtifactError {
    if is_missing(&source) {
        ArtifactError::NotFound {
            key: key.to_string(),
        }
    } else {
        ArtifactError::Io {
            action,
            key: key.to_string(),
            source,
        }
    }
}

/// Ranges up to this size are read in one blocking call (open, stat, pread) and sent as one
/// chunk; longer ones are streamed in chunks of [`READ_CHUNK`].
pub const SMALL_READ: u64 = 1024 * 1024;

/// Reads a small range with one trip to the blocking pool. `None` if the range turns out to be
/// large (the caller streams it instead).
fn read_small(
    path: &Path,
    name: &str,
    range: &Option<GetRange>,
) -> Result<Option<GetResult>, ArtifactError> {
    use std::io::{Read, Seek};
    let not_found = || ArtifactError::NotFound {
        key: name.to_owned(),
    };
    let io = |action: &'static str, source: std::io::Error| io_err(action, name, source);
    let mut file = std::fs::File::open(path).map_err(|e| io("open", e))?;
    let md = file.metadata().map_err(|e| io("stat", e))?;
    if !md.is_file() {
        return Err(not_found());
    }
    let meta = meta_of(&md);
    let r = match range {
        Some(r) => r.as_range(meta.size)?,
        None => 0..meta.size,
    };
    let len = r.end - r.start;
    if len > SMALL_READ {
        return Ok(None);
    }
    if r.start > 0 {
        file.seek(SeekFrom::Start(r.start))
            .map_err(|e| io("seek", e))?;
    }
    // read_to_end fills spare capacity without zeroing it first.
    let mut buf = Vec::with_capacity(len as usize);
    file.take(len)
        .read_to_end(&mut buf)
        .map_err(|e| io("read", e))?;
    if buf.len() as u64 != len {
        return Err(ArtifactError::Io {
            action: "read",
            key: name.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file shrank while being read",
            ),
        });
    }
    let stream = futures::stream::once(async move { Ok(bytes::Bytes::from(buf)) }).boxed();
    Ok(Some(GetResult {
        meta,
        range: r,
        stream,
    }))
}

/// Reads (part of) a local file: small ranges directly, larger ones streamed in chunks of
/// [`READ_CHUNK`]. `name` is what errors call it.
///
/// A small read (open, fstat, one pread of at most [`SMALL_READ`]) runs on the calling task,
/// as nginx does in its event loop: served artifacts are hot in the page cache, and a hop to the
/// blocking pool costs more than the read. Large ranges go through tokio's file API.
pub async fn read_file_range(
    path: &Path,
    name: &str,
    range: Option<GetRange>,
) -> Result<GetResult, ArtifactError> {
    let small = read_small(path, name, &range)?;
    if let Some(got) = small {
        return Ok(got);
    }
    stream_file_range(path, name, range).await
}

async fn stream_file_range(
    path: &Path,
    name: &str,
    range: Option<GetRange>,
) -> Result<GetResult, ArtifactError> {
    let not_found = || ArtifactError::NotFound {
        key: name.to_owned(),
    };
    let io = |action: &'static str, source: std::io::Error| io_err(action, name, source);
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| io("open", e))?;
    let md = file.metadata().await.map_err(|e| io("stat", e))?;
    if !md.is_file() {
        return Err(not_found());
    }
    let meta = meta_of(&md);
    let range = match range {
        Some(r) => r.as_range(meta.size)?,
        None => 0..meta.size,
    };
    if range.start > 0 {
        file.seek(SeekFrom::Start(range.start))
            .await
            .map_err(|e| io("seek", e))?;
    }
    let owned = name.to_owned();
    let stream = ReaderStream::with_capacity(file.take(range.end - range.start), READ_CHUNK)
        .map_err(move |source| ArtifactError::Io {
            action: "read",
            key: owned.clone(),
            source,
        })
        .boxed();
    Ok(GetResult {
        meta,
        range,
        stream,
    })
}

/// The object `stat` found at `key`'s path: a file (a directory there is not an object).
fn object(
    key: &ArtifactKey,
    stat: std::io::Result<std::fs::Metadata>,
) -> Result<ObjectMeta, ArtifactError> {
    let md = stat.map_err(|e| io_err("stat", key, e))?;
    if !md.is_file() {
        return Err(ArtifactError::NotFound {
            key: key.to_string(),
        });
    }
    Ok(meta_of(&md))
}

/// Removes a staging file unless it was renamed into place (also on cancellation).
struct StagingGuard(Option<PathBuf>);

impl Drop for StagingGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[async_trait]
impl ArtifactStore for LocalArtifactStore {
    async fn head(&self, key: &ArtifactKey) -> Result<ObjectMeta, ArtifactError> {
        object(key, tokio::fs::metadata(self.path_of(key)).await)
    }

    async fn exists(&self, key: &ArtifactKey) -> Result<bool, ArtifactError> {
        self.exists_here(key)
    }

    fn exists_now(&self, key: &ArtifactKey) -> Option<Result<bool, ArtifactError>> {
        Some(self.exists_here(key))
    }

    async fn get(
        &self,
        key: &ArtifactKey,
        range: Option<GetRange>,
    ) -> Result<GetResult, ArtifactError> {
        let mapped = match self.maps.fresh(key) {
            Some(m) => m,
            None => {
                let maps = std::sync::Arc::clone(&self.maps);
                let (owned, path) = (key.clone(), self.path_of(key));
                tokio::task::spawn_blocking(move || maps.load(&owned, &path))
                    .await
                    .map_err(|e| ArtifactError::backend("finish a mapping task", e))?
                    .map_err(|e| io_err("read", key, e))?
            }
        };
        let meta = mapped.meta;
        let range = match range {
            Some(r) => r.as_range(meta.size)?,
            None => 0..meta.size,
        };
        // Zero-copy slices of the map, in bounded pieces.
        let bytes = mapped.bytes.slice(range.start as usize..range.end as usize);
        let pieces: Vec<bytes::Bytes> = (0..bytes.len())
            .step_by(SMALL_READ as usize)
            .map(|at| bytes.slice(at..(at + SMALL_READ as usize).min(bytes.len())))
            .collect();
        let stream = futures::stream::iter(pieces.into_iter().map(Ok)).boxed();
        Ok(GetResult {
            meta,
            range,
            stream,
        })
    }

    async fn put_file(&self, key: &ArtifactKey, src: &Path) -> Result<ObjectMeta, ArtifactError> {
        let target = self.path_of(key);
        let staged = self
            .staging
            .join(format!("{}.part", uuid::Uuid::new_v4().simple()));
        let guard = StagingGuard(Some(staged.clone()));
        tokio::fs::copy(src, &staged).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound && !src.exists() {
                ArtifactError::Source {
                    key: key.to_string(),
                    path: src.display().to_string(),
                    source: crate::error::Cause::new(e),
                }
            } else {
                io_err("stage", key, e)
            }
        })?;
        let f = tokio::fs::File::open(&staged)
            .await
            .map_err(|e| io_err("open staged copy of", key, e))?;
        f.sync_all().await.map_err(|e| io_err("sync", key, e))?;
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| io_err("create directory for", key, e))?;
        }
        // Published artifacts are immutable: read-only on disk (readers may map them).
        let mut perms = f
            .metadata()
            .await
            .map_err(|e| io_err("stat", key, e))?
            .permissions();
        perms.set_readonly(true);
        tokio::fs::set_permissions(&staged, perms)
            .await
            .map_err(|e| io_err("protect", key, e))?;
        // A link, not a rename: it fails if the target exists, so nothing published is replaced.
        // The staged name is removed by the guard either way.
        match tokio::fs::hard_link(&staged, &target).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(ArtifactError::AlreadyExists {
                    key: key.to_string(),
                });
            }
            Err(e) => return Err(io_err("publish", key, e)),
        }
        drop(guard);
        self.maps.forget(key);
        self.head(key).await
    }

    async fn delete(&self, key: &ArtifactKey) -> Result<(), ArtifactError> {
        self.maps.forget(key);
        match tokio::fs::remove_file(self.path_of(key)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("delete", key, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    async fn make() -> (Arc<dyn ArtifactStore>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalArtifactStore::open(&dir.path().join("artifacts")).unwrap();
        (Arc::new(store), dir)
    }

    crate::artifact_store_conformance!(make);

    #[tokio::test]
    async fn objects_live_under_the_root_and_staging_is_left_clean() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("artifacts");
        let store = LocalArtifactStore::open(&root).unwrap();
        let src = dir.path().join("src");
        std::fs::write(&src, b"hello").unwrap();
        let key = ArtifactKey::parse("d/l/data/p/m-v1").unwrap();
        store.put_file(&key, &src).await.unwrap();
        assert_eq!(
            std::fs::read(root.join("objects/d/l/data/p/m-v1")).unwrap(),
            b"hello"
        );
        assert_eq!(std::fs::read_dir(root.join("staging")).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn a_failed_put_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("artifacts");
        let store = LocalArtifactStore::open(&root).unwrap();
        let key = ArtifactKey::parse("k").unwrap();
        let err = store
            .put_file(&key, &dir.path().join("missing"))
            .await
            .unwrap_err();
        assert!(matches!(err, ArtifactError::Source { .. }), "{err}");
        assert!(!store.exists(&key).await.unwrap());
        assert_eq!(std::fs::read_dir(root.join("staging")).unwrap().count(), 0);
    }
}
