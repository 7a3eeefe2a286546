//! Writing a byte stream to disk while hashing it.

use std::path::Path;

use htsprep_shared::domain::{AccessUrl, Md5};
use htsprep_shared::outbound::SourcePolicy;
use md5::{Digest, Md5 as Md5Hasher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::FetchError;

/// Where a download goes: the file, the most bytes it may have (the catalog size, when known:
/// a longer body is cut off as soon as it passes it) and who is told the bytes received.
pub(crate) struct Target<'a> {
    pub dest: &'a Path,
    pub max_size: Option<u64>,
    pub progress: &'a (dyn Fn(u64) + Send + Sync),
}

/// A file being written, with the running md5 and size of what was written.
pub(crate) struct HashingFile<'a> {
    file: tokio::fs::File,
    hasher: Md5Hasher,
    size: u64,
    target: &'a Target<'a>,
    url: String,
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
            hasher: Md5Hasher::new(),
            size: 0,
            target,
            url,
        })
    }

    /// Appends a chunk and tells the progress callback; refuses to grow past the limit.
    pub(crate) async fn write(&mut self, chunk: &[u8]) -> Result<(), FetchError> {
        let size = self.size + chunk.len() as u64;
        if let Some(max) = self.target.max_size
            && size > max
        {
            return Err(FetchError::TooLarge {
                url: self.url.clone(),
                max,
            });
        }
        self.hasher.update(chunk);
        self.size = size;
        self.file
            .write_all(chunk)
            .await
            .map_err(|source| FetchError::Io {
                action: "write",
                source,
            })?;
        (self.target.progress)(self.size);
        Ok(())
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
        Ok((self.size, Md5::from_digest(self.hasher.finalize().into())))
    }
}

/// Copies a `file://` source from under the policy's file roots.
pub(crate) async fn copy_file(
    url: &AccessUrl,
    policy: &SourcePolicy,
    target: &Target<'_>,
) -> Result<(u64, Md5), FetchError> {
    let path = policy.check_file(url.as_url())?;
    let mut src = tokio::fs::File::open(&path)
        .await
        .map_err(|source| FetchError::Open {
            url: url.to_string(),
            source,
        })?;
    let mut out = HashingFile::create(target, url.to_string()).await?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = src.read(&mut buf).await.map_err(|source| FetchError::Io {
            action: "read",
            source,
        })?;
        if n == 0 {
            break;
        }
        out.write(&buf[..n]).await?;
    }
    out.finish().await
}
