//! The artifact store seam: immutable, content-addressed objects read by byte range.
//!
//! Ranges mirror HTTP's three forms and are validated against the object's size here, with a
//! typed error; whether that becomes a 206 or a 416 is decided only in the HTTP layer.

mod error;
mod key;
mod local;
mod mapped;
mod range;
mod s3;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

use std::ops::Range;
use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

pub use error::ArtifactError;
pub use key::{ArtifactKey, KeyError};
pub use local::{LocalArtifactStore, READ_CHUNK, disk_segment, read_file_range};
pub use range::{GetRange, RangeError};
pub use s3::{MIN_PART, S3ArtifactStore};

/// What is known of a stored object without reading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    /// An opaque validator that changes whenever the object's bytes may have (unquoted).
    pub etag: String,
    pub last_modified: DateTime<Utc>,
}

/// A byte stream of (part of) an object.
pub struct GetResult {
    pub meta: ObjectMeta,
    /// The byte range the stream yields, resolved against the object's size.
    pub range: Range<u64>,
    pub stream: BoxStream<'static, Result<Bytes, ArtifactError>>,
}

impl std::fmt::Debug for GetResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetResult")
            .field("meta", &self.meta)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

impl GetResult {
    /// Collects the whole stream (tests and small objects only).
    pub async fn bytes(self) -> Result<Vec<u8>, ArtifactError> {
        use futures::TryStreamExt;
        let chunks: Vec<Bytes> = self.stream.try_collect().await?;
        Ok(chunks.concat())
    }
}

#[async_trait]
pub trait ArtifactStore: Send + Sync + std::fmt::Debug {
    async fn head(&self, key: &ArtifactKey) -> Result<ObjectMeta, ArtifactError>;

    /// Streams the object, or the part of it `range` names. A range that does not fit the
    /// object fails with [`ArtifactError::Range`] before any byte is sent.
    async fn get(
        &self,
        key: &ArtifactKey,
        range: Option<GetRange>,
    ) -> Result<GetResult, ArtifactError>;

    /// Publishes the local file at `src` under `key`, only if nothing is published there:
    /// create-only, so a late writer can never replace a published artifact
    /// ([`ArtifactError::AlreadyExists`]). Atomic: readers see nothing until the object is
    /// complete. Returns the stored object's metadata.
    async fn put_file(&self, key: &ArtifactKey, src: &Path) -> Result<ObjectMeta, ArtifactError>;

    /// Removes the object; removing a missing object succeeds.
    async fn delete(&self, key: &ArtifactKey) -> Result<(), ArtifactError>;

    /// A URL anyone holding it may read the object from (with `Range`), for `expires`: the
    /// object's bytes then go from the store to the client without passing through the API.
    /// `None` when the backend cannot hand out such URLs (a local directory).
    async fn presign_get(
        &self,
        _key: &ArtifactKey,
        _expires: std::time::Duration,
    ) -> Result<Option<String>, ArtifactError> {
        Ok(None)
    }

    async fn exists(&self, key: &ArtifactKey) -> Result<bool, ArtifactError> {
        found(self.head(key).await)
    }

    /// [`ArtifactStore::exists`] answered at once, without waiting, where the backend can (a
    /// local directory: one `stat`, as a web server's event loop opens files); `None` where it
    /// has to ask over the network. For the hot and cold paths, which ask on every request.
    fn exists_now(&self, _key: &ArtifactKey) -> Option<Result<bool, ArtifactError>> {
        None
    }
}

/// Whether a [`ArtifactStore::head`] found the object.
pub(crate) fn found(head: Result<ObjectMeta, ArtifactError>) -> Result<bool, ArtifactError> {
    match head {
        Ok(_) => Ok(true),
        Err(ArtifactError::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}
