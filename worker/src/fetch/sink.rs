//! Writing a byte stream to disk while hashing it.

use std::path::Path;

use htsprep_shared::domain::{AccessUrl, Md5};
use md5::{Digest, Md5 as Md5Hasher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::FetchError;

/// A file being written, with the running md5 and size of what was written.
pub(crate) struct HashingFile {
    file: tokio::fs::File,
    hasher: Md5Hasher,
    size: u64,
}

impl HashingFile {
    pub(crate) async fn create(dest: &Path) -> Result<Self, FetchError> {
        let file = tokio::fs::File::create(dest)
            .await
            .map_err(|source| FetchError::Io {
                action: "create a file for",
                source,
            })?;
        Ok(Self {
            file,
            hasher: Md5Hasher::new(),
            size: 0,
        })
    }

    pub(crate) async fn write(&mut self, chunk: &[u8]) -> Result<u64, FetchError> {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        self.file
            .write_all(chunk)
            .await
            .map_err(|source| FetchError::Io {
                action: "write",
                source,
            })?;
        Ok(self.size)
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

/// Copies a `file://` source.
pub(crate) async fn copy_file(
    url: &AccessUrl,
    dest: &Path,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<(u64, Md5), FetchError> {
    let path = url
        .as_url()
        .to_file_path()
        .map_err(|()| FetchError::NotFound {
            url: url.to_string(),
            reason: "not a local path".into(),
        })?;
    let mut src = tokio::fs::File::open(&path)
        .await
        .map_err(|e| FetchError::NotFound {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    let mut out = HashingFile::create(dest).await?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = src.read(&mut buf).await.map_err(|source| FetchError::Io {
            action: "read",
            source,
        })?;
        if n == 0 {
            break;
        }
        progress(out.write(&buf[..n]).await?);
    }
    out.finish().await
}
