//! Writing a byte stream to disk while hashing it, or hashing a local source where it is.

use std::io::Read;
use std::path::Path;
use std::time::Instant;

use htsprep_shared::domain::{AccessUrl, Md5};
use htsprep_shared::outbound::SourcePolicy;
use md5::{Digest, Md5 as Md5Hasher};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::FetchError;

/// Where a download goes: the file, the most bytes it may have (the catalog size, when known:
/// a longer body is cut off as soon as it passes it) and who is told the bytes received.
pub(crate) struct Target<'a> {
    pub dest: &'a Path,
    pub max_size: Option<u64>,
    pub progress: &'a (dyn Fn(u64) + Send + Sync),
}

/// The running md5 and size of a source as it is read, held to a size limit and reported to a
/// progress callback.
struct Tally<'a> {
    hasher: Md5Hasher,
    size: u64,
    max_size: Option<u64>,
    progress: &'a (dyn Fn(u64) + Send + Sync),
    url: String,
}

impl<'a> Tally<'a> {
    fn new(max_size: Option<u64>, progress: &'a (dyn Fn(u64) + Send + Sync), url: String) -> Self {
        Self {
            hasher: Md5Hasher::new(),
            size: 0,
            max_size,
            progress,
            url,
        }
    }

    /// Counts a chunk; refuses to grow past the limit.
    fn add(&mut self, chunk: &[u8]) -> Result<(), FetchError> {
        let size = self.size + chunk.len() as u64;
        if let Some(max) = self.max_size
            && size > max
        {
            return Err(FetchError::TooLarge {
                url: self.url.clone(),
                max,
            });
        }
        self.hasher.update(chunk);
        self.size = size;
        (self.progress)(self.size);
        Ok(())
    }

    fn finish(self) -> (u64, Md5) {
        (self.size, Md5::from_digest(self.hasher.finalize().into()))
    }
}

/// A file being written, with the running md5 and size of what was written.
pub(crate) struct HashingFile<'a> {
    file: tokio::fs::File,
    tally: Tally<'a>,
}

impl<'a> HashingFile<'a> {
    /// Starts writing `target.dest` for the source `url` (redacted, for errors).
    pub(crate) async fn create(target: &'a Target<'a>, url: String) -> Result<Self, FetchError> {
        let file = tokio::fs::File::create(target.dest)
            .await
            .map_err(|source| FetchError::Io {
                action: "create a file for",
                source,
            })?;
        Ok(Self {
            file,
            tally: Tally::new(target.max_size, target.progress, url),
        })
    }

    /// Appends a chunk and tells the progress callback; refuses to grow past the limit.
    pub(crate) async fn write(&mut self, chunk: &[u8]) -> Result<(), FetchError> {
        self.tally.add(chunk)?;
        self.file
            .write_all(chunk)
            .await
            .map_err(|source| FetchError::Io {
                action: "write",
                source,
            })
    }

    pub(crate) async fn finish(mut self) -> Result<(u64, Md5), FetchError> {
        self.file.flush().await.map_err(|source| FetchError::Io {
            action: "flush",
            source,
        })?;
        self.file
            .sync_all()
            .await
            .map_err(|source| FetchError::Io {
                action: "sync",
                source,
            })?;
        Ok(self.tally.finish())
    }
}

/// A `file://` source from under the policy's file roots, used where it is: the target becomes a
/// symbolic link to it at once (never a copy), and its md5 is computed by the returned
/// [`LocalHash`], which may run while the stages read it.
pub(crate) async fn link_file(
    url: &AccessUrl,
    policy: &SourcePolicy,
    target: &Target<'_>,
) -> Result<LocalHash, FetchError> {
    let path = policy.check_file(url.as_url())?;
    let size = tokio::fs::metadata(&path)
        .await
        .map_err(|source| FetchError::Open {
            url: url.to_string(),
            source,
        })?
        .len();
    if let Some(max) = target.max_size
        && size > max
    {
        return Err(FetchError::TooLarge {
            url: url.to_string(),
            max,
        });
    }
    tokio::fs::symlink(&path, target.dest)
        .await
        .map_err(|source| FetchError::Io {
            action: "link",
            source,
        })?;
    Ok(LocalHash {
        path,
        url: url.to_string(),
        size,
        max_size: target.max_size,
    })
}

/// The size and md5 of a hashed local source (or why it could not be hashed), and when the
/// hash ended.
pub(crate) type Hashed = (Result<(u64, Md5), FetchError>, Instant);

/// The md5 of a linked local source, still to be computed.
#[derive(Debug)]
pub(crate) struct LocalHash {
    path: std::path::PathBuf,
    url: String,
    /// When it was linked.
    pub size: u64,
    max_size: Option<u64>,
}

impl LocalHash {
    /// Reads the source once on a blocking thread and returns its size and md5, and when it
    /// ended; stops with [`FetchError::Cancelled`] once `cancel` fires. The work stops when the
    /// handle is dropped.
    pub(crate) fn spawn(self, cancel: CancellationToken) -> AbortOnDropHandle<Hashed> {
        AbortOnDropHandle::new(tokio::task::spawn_blocking(move || {
            let result = self.hash(&cancel);
            (result, Instant::now())
        }))
    }

    fn hash(&self, cancel: &CancellationToken) -> Result<(u64, Md5), FetchError> {
        let quiet = |_: u64| {};
        let mut tally = Tally::new(self.max_size, &quiet, self.url.clone());
        let mut src = std::fs::File::open(&self.path).map_err(|source| FetchError::Open {
            url: self.url.clone(),
            source,
        })?;
        let mut buf = vec![0u8; 1024 * 1024];
        loop {
            if cancel.is_cancelled() {
                return Err(FetchError::Cancelled);
            }
            let n = src.read(&mut buf).map_err(|source| FetchError::Io {
                action: "read",
                source,
            })?;
            if n == 0 {
                return Ok(tally.finish());
            }
            tally.add(&buf[..n])?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_source_is_linked_not_copied_then_hashed_where_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a.bed");
        let body = b"chr1\t1\t2\nchr1\t5\t9\n".repeat(50_000);
        std::fs::write(&src, &body).unwrap();
        let policy = SourcePolicy {
            file_roots: vec![dir.path().to_owned()],
            ..SourcePolicy::default()
        };
        let url = AccessUrl::parse(url::Url::from_file_path(&src).unwrap().as_str()).unwrap();
        let quiet = |_: u64| {};
        let work = tempfile::tempdir().unwrap();
        let dest = work.path().join("source");
        let target = Target {
            dest: &dest,
            max_size: Some(body.len() as u64),
            progress: &quiet,
        };
        let local = link_file(&url, &policy, &target).await.unwrap();
        // No copy: the work directory holds a link to the source, there before it is hashed.
        assert!(
            std::fs::symlink_metadata(&dest)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            std::fs::read_link(&dest).unwrap(),
            std::fs::canonicalize(&src).unwrap()
        );
        assert_eq!(local.size, body.len() as u64);
        let (size, md5) = local
            .spawn(CancellationToken::new())
            .await
            .unwrap()
            .0
            .unwrap();
        assert_eq!(size, body.len() as u64);
        assert_eq!(md5, Md5::from_digest(Md5Hasher::digest(&body).into()));

        // A cancelled hash stops.
        let again = work.path().join("again");
        let target = Target {
            dest: &again,
            max_size: None,
            progress: &quiet,
        };
        let cancel = CancellationToken::new();
        cancel.cancel();
        let local = link_file(&url, &policy, &target).await.unwrap();
        let err = local.spawn(cancel).await.unwrap().0.unwrap_err();
        assert!(matches!(err, FetchError::Cancelled), "{err}");

        // Longer than the catalog says: refused before anything is linked.
        let short = Target {
            dest: &work.path().join("short"),
            max_size: Some(1000),
            progress: &quiet,
        };
        let err = link_file(&url, &policy, &short).await.unwrap_err();
        assert!(
            matches!(err, FetchError::TooLarge { max: 1000, .. }),
            "{err}"
        );
        assert!(!work.path().join("short").exists());
    }
}
