//! Artifacts in S3: one ranged GetObject per read, streamed to the caller (size and ETag from its
//! response), and create-only uploads (`If-None-Match: *` on PutObject and on
//! CompleteMultipartUpload) from a local file, in fixed-size parts past a threshold (memory stays
//! bounded whatever the artifact's size). An object is visible only once its upload completes, so
//! readers never see a half-written artifact, and a published one is never replaced. An upload
//! that raced another write to its key (`409 ConditionalRequestConflict`) is tried again. Keys
//! live under an optional prefix.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use chrono::{DateTime, Utc};
use futures::StreamExt;

use super::{
    ArtifactError, ArtifactKey, ArtifactStore, GetRange, GetResult, ObjectMeta, RangeError,
};
use crate::error::{Cause, chain};
use crate::retry::{Retryable, backoff};

/// Uploads in all when each conflicts with a concurrent write to its key (`409`).
const CONFLICT_ATTEMPTS: u32 = 5;

/// S3's smallest part (except the last).
pub const MIN_PART: u64 = 5 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct S3ArtifactStore {
    client: Client,
    bucket: String,
    prefix: String,
    /// Files larger than this go up in parts of `part_size`.
    multipart_threshold: u64,
    part_size: u64,
}

fn unavailable(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> ArtifactError {
    ArtifactError::unavailable(what, e)
}

impl S3ArtifactStore {
    /// `prefix` may be empty; otherwise keys are stored under `prefix/`.
    pub fn new(client: Client, bucket: &str, prefix: &str) -> Self {
        let prefix = prefix.trim_matches('/');
        Self {
            client,
            bucket: bucket.to_owned(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            multipart_threshold: 64 * 1024 * 1024,
            part_size: 16 * 1024 * 1024,
        }
    }

    /// Sets when uploads switch to multipart and the part size (at least 5 MiB).
    pub fn with_parts(mut self, threshold: u64, part_size: u64) -> Self {
        self.multipart_threshold = threshold;
        self.part_size = part_size.max(MIN_PART);
        self
    }

    fn object(&self, key: &ArtifactKey) -> String {
        format!("{}{key}", self.prefix)
    }

    /// One create-only upload of `src`: a single PutObject, or parts past the threshold.
    async fn upload(
        &self,
        key: &ArtifactKey,
        object: &str,
        src: &Path,
        size: u64,
    ) -> Result<(), Upload> {
        if size > self.multipart_threshold {
            return self.put_multipart(key, object, src, size).await;
        }
        let body = ByteStream::from_path(src)
            .await
            .map_err(|e| source_error(key, src, e))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(object)
            .if_none_match("*")
            .body(body)
            .send()
            .await
            .map_err(|e| put_error(key, "upload object", e))?;
        Ok(())
    }

    async fn put_multipart(
        &self,
        key: &ArtifactKey,
        object: &str,
        src: &Path,
        size: u64,
    ) -> Result<(), Upload> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(object)
            .send()
            .await
            .map_err(|e| unavailable("start a multipart upload", e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| ArtifactError::Backend {
                context: "S3 returned no upload id".into(),
                source: None,
            })?
            .to_owned();
        let result = async {
            let mut parts = Vec::new();
            let mut offset = 0u64;
            let mut number = 1i32;
            while offset < size {
                let len = self.part_size.min(size - offset);
                let body = ByteStream::read_from()
                    .path(src)
                    .offset(offset)
                    .length(Length::Exact(len))
                    .build()
                    .await
                    .map_err(|e| source_error(key, src, e))?;
                let part = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(object)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| unavailable("upload a part", e))?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(part.e_tag().map(str::to_owned))
                        .build(),
                );
                offset += len;
                number += 1;
            }
            self.client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(object)
                .upload_id(&upload_id)
                .if_none_match("*")
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| put_error(key, "complete a multipart upload", e))?;
            Ok(())
        }
        .await;
        if let Err(Upload::Conflict(e) | Upload::Failed(e)) = &result {
            // Nothing becomes visible; free the parts. S3 may be what failed, so the abort is
            // retried for a while (the bucket's lifecycle rule removes what is left after that).
            let abort = || {
                self.client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(object)
                    .upload_id(&upload_id)
                    .send()
            };
            match abort.retry(backoff(6, Duration::from_millis(500))).await {
                Ok(_) => {
                    tracing::info!(key = %key, error = %chain(e), "multipart upload failed and was aborted")
                }
                Err(abort_err) => tracing::warn!(
                    key = %key, error = %chain(e), abort_error = %chain(&abort_err),
                    "multipart upload failed and could not be aborted; the bucket's lifecycle rule will remove its parts"
                ),
            }
        }
        result
    }
}

/// The local file an upload reads could not be read.
fn source_error(
    key: &ArtifactKey,
    src: &Path,
    e: impl std::error::Error + Send + Sync + 'static,
) -> ArtifactError {
    ArtifactError::Source {
        key: key.to_string(),
        path: src.display().to_string(),
        source: Cause::new(e),
    }
}

/// Why one upload did not create its object.
#[derive(Debug)]
enum Upload {
    /// `409 ConditionalRequestConflict`: the conditional write raced another operation on the
    /// key, and S3 decided neither. It asks for the upload to be tried again (a multipart one
    /// from its start); the next try learns whether the other write created the object.
    Conflict(ArtifactError),
    Failed(ArtifactError),
}

impl From<ArtifactError> for Upload {
    fn from(e: ArtifactError) -> Self {
        Self::Failed(e)
    }
}

impl Upload {
    fn error(&self) -> &ArtifactError {
        match self {
            Self::Conflict(e) | Self::Failed(e) => e,
        }
    }

    fn into_error(self) -> ArtifactError {
        match self {
            Self::Conflict(e) | Self::Failed(e) => e,
        }
    }
}

/// A conditional write refused because the key exists (`412 PreconditionFailed`) means the
/// artifact is published already; one that raced another write is a conflict, tried again.
fn put_error<E, R>(key: &ArtifactKey, what: &str, e: SdkError<E, R>) -> Upload
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match e.code() {
        Some("PreconditionFailed") => Upload::Failed(ArtifactError::AlreadyExists {
            key: key.to_string(),
        }),
        Some("ConditionalRequestConflict") => Upload::Conflict(unavailable(what, e)),
        _ => Upload::Failed(unavailable(what, e)),
    }
}

/// `Content-Range: bytes a-b/size` → (a..b+1, size).
fn content_range(v: &str) -> Option<(Range<u64>, u64)> {
    let (span, size) = v.strip_prefix("bytes ")?.split_once('/')?;
    let (a, b) = span.split_once('-')?;
    let (a, b, size) = (a.parse().ok()?, b.parse::<u64>().ok()?, size.parse().ok()?);
    (a <= b).then_some((a..b + 1, size))
}

fn to_chrono(t: Option<&aws_sdk_s3::primitives::DateTime>) -> DateTime<Utc> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
        .unwrap_or_default()
}

fn etag(e: Option<&str>) -> String {
    e.unwrap_or_default().trim_matches('"').to_owned()
}

#[async_trait]
impl ArtifactStore for S3ArtifactStore {
    async fn head(&self, key: &ArtifactKey) -> Result<ObjectMeta, ArtifactError> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.object(key))
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(se) if se.is_not_found() => ArtifactError::NotFound {
                    key: key.to_string(),
                },
                _ => unavailable("read object metadata", e),
            })?;
        Ok(ObjectMeta {
            size: u64::try_from(out.content_length().unwrap_or_default()).unwrap_or_default(),
            etag: etag(out.e_tag()),
            last_modified: to_chrono(out.last_modified()),
        })
    }

    async fn presign_get(
        &self,
        key: &ArtifactKey,
        expires: Duration,
    ) -> Result<Option<String>, ArtifactError> {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(expires)
            .map_err(|e| unavailable("presign a read", e))?;
        let presigned = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.object(key))
            .presigned(config)
            .await
            .map_err(|e| unavailable("presign a read", e))?;
        Ok(Some(presigned.uri().to_owned()))
    }

    async fn get(
        &self,
        key: &ArtifactKey,
        range: Option<GetRange>,
    ) -> Result<GetResult, ArtifactError> {
        // One GetObject, whatever the range: S3 resolves it, and the size and validator come
        // from the response. A malformed range is refused before any request; an unsatisfiable
        // one is the same typed error on every backend (its size from a HEAD, on that rare path).
        if let Some(r) = &range {
            match r.as_range(u64::MAX) {
                Err(e @ RangeError::Invalid { .. }) => return Err(e.into()),
                _ if *r == GetRange::Suffix(0) => {
                    let size = self.head(key).await?.size;
                    return Err(r.as_range(size).expect_err("empty suffix").into());
                }
                _ => {}
            }
        }
        let mut req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.object(key));
        if let Some(r) = &range {
            req = req.range(r.to_string());
        }
        let range_asked = range;
        let out = match req.send().await {
            Ok(out) => out,
            Err(e) => {
                return Err(match (e.code(), &range_asked) {
                    (Some("NoSuchKey"), _) => ArtifactError::NotFound {
                        key: key.to_string(),
                    },
                    (Some("InvalidRange"), Some(r)) => {
                        let size = self.head(key).await?.size;
                        match r.as_range(size) {
                            Err(e) => e.into(),
                            Ok(_) => unavailable("read object", e),
                        }
                    }
                    _ => unavailable("read object", e),
                });
            }
        };
        let length = u64::try_from(out.content_length().unwrap_or_default()).unwrap_or_default();
        let (range, size) = match out.content_range().and_then(content_range) {
            Some(found) => found,
            // A whole object (no range asked, or S3 answered 200 with all of it).
            None => (0..length, length),
        };
        // What S3 served must be what the range means for this size (an empty object is
        // answered 200 where the range is not satisfiable).
        if let Some(r) = &range_asked {
            let want = r.as_range(size)?;
            if want != range {
                return Err(ArtifactError::Unavailable {
                    context: format!("read object: S3 answered {range:?} for {r} of {size} bytes"),
                    source: None,
                });
            }
        }
        let meta = ObjectMeta {
            size,
            etag: etag(out.e_tag()),
            last_modified: to_chrono(out.last_modified()),
        };
        let name = key.to_string();
        let stream = futures::stream::unfold(Some(out.body), move |body| {
            let name = name.clone();
            async move {
                let mut body = body?;
                match body.next().await {
                    Some(Ok(chunk)) => Some((Ok(chunk), Some(body))),
                    Some(Err(e)) => Some((Err(unavailable(&format!("stream {name}"), e)), None)),
                    None => None,
                }
            }
        })
        .boxed();
        Ok(GetResult {
            meta,
            range,
            stream,
        })
    }

    async fn put_file(&self, key: &ArtifactKey, src: &Path) -> Result<ObjectMeta, ArtifactError> {
        let size = tokio::fs::metadata(src)
            .await
            .map_err(|e| source_error(key, src, e))?
            .len();
        let object = self.object(key);
        (|| self.upload(key, &object, src, size))
            .retry(backoff(CONFLICT_ATTEMPTS, Duration::from_millis(100)))
            .when(|e| matches!(e, Upload::Conflict(_)))
            .notify(|e, pause| {
                tracing::info!(key = %key, error = %chain(e.error()), ?pause, "conditional write conflicted; trying again")
            })
            .await
            .map_err(Upload::into_error)?;
        self.head(key).await
    }

    async fn delete(&self, key: &ArtifactKey) -> Result<(), ArtifactError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.object(key))
            .send()
            .await
            .map_err(|e| unavailable("delete object", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::aws::testing::TestAws;

    async fn make() -> (Arc<dyn ArtifactStore>, TestAws) {
        let aws = TestAws::start().await;
        let client = aws.s3_client();
        let bucket = aws.fresh_bucket(&client).await;
        let store =
            S3ArtifactStore::new(client, &bucket, "prefix/under").with_parts(MIN_PART, MIN_PART);
        (Arc::new(store), aws)
    }

    crate::artifact_store_conformance!(make);

    /// Records the HTTP method of every request the client sends.
    #[derive(Clone, Debug, Default)]
    struct Methods(Arc<std::sync::Mutex<Vec<String>>>);

    impl aws_sdk_s3::config::Intercept for Methods {
        fn name(&self) -> &'static str {
            "Methods"
        }

        fn read_before_transmit(
            &self,
            ctx: &aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
            _components: &aws_sdk_s3::config::RuntimeComponents,
            _cfg: &mut aws_sdk_s3::config::ConfigBag,
        ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            let method = ctx.request().method().to_owned();
            self.0.lock().unwrap().push(method);
            Ok(())
        }
    }

    /// The emulator's client, with `interceptor` seeing every request.
    fn intercepted(
        aws: &TestAws,
        interceptor: impl aws_sdk_s3::config::Intercept + 'static,
    ) -> Client {
        let config = aws
            .s3_client()
            .config()
            .to_builder()
            .interceptor(interceptor)
            .build();
        Client::from_conf(config)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_ranged_read_is_one_get_object() {
        let aws = TestAws::start().await;
        let methods = Methods::default();
        let client = intercepted(&aws, methods.clone());
        let bucket = aws.fresh_bucket(&client).await;
        let store = S3ArtifactStore::new(client, &bucket, "");
        let k = ArtifactKey::parse("one/get").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("src"), &bytes).unwrap();
        store.put_file(&k, &dir.path().join("src")).await.unwrap();
        methods.0.lock().unwrap().clear();
        for (range, want) in [
            (GetRange::Bounded(10..20), 10..20),
            (GetRange::Offset(990), 990..1000),
            (GetRange::Suffix(5), 995..1000),
            (GetRange::Bounded(900..5000), 900..1000),
        ] {
            let got = store.get(&k, Some(range.clone())).await.unwrap();
            assert_eq!(got.meta.size, 1000, "{range}");
            assert!(!got.meta.etag.is_empty());
            assert_eq!(got.range, want.clone(), "{range}");
            let want_bytes = &bytes[want.start as usize..want.end as usize];
            assert_eq!(got.bytes().await.unwrap(), want_bytes, "{range}");
        }
        assert_eq!(
            *methods.0.lock().unwrap(),
            ["GET", "GET", "GET", "GET"],
            "no HEAD"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_files_go_up_in_parts_under_the_prefix() {
        let aws = TestAws::start().await;
        let client = aws.s3_client();
        let bucket = aws.fresh_bucket(&client).await;
        let store = S3ArtifactStore::new(client.clone(), &bucket, "/runs/v1/")
            .with_parts(MIN_PART, MIN_PART);
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("big");
        let body: Vec<u8> = (0..(2 * MIN_PART + 12_345))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        std::fs::write(&src, &body).unwrap();
        let key = ArtifactKey::parse("d/l/data/p/m-v1").unwrap();
        let meta = store.put_file(&key, &src).await.unwrap();
        assert_eq!(meta.size, body.len() as u64);
        // A multipart ETag names its part count.
        assert!(meta.etag.ends_with("-3"), "{}", meta.etag);
        let listed = client
            .list_objects_v2()
            .bucket(&bucket)
            .prefix("runs/v1/")
            .send()
            .await
            .unwrap();
        let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(keys, ["runs/v1/d/l/data/p/m-v1"]);
        let got = store
            .get(&key, Some(GetRange::Bounded(MIN_PART - 10..MIN_PART + 10)))
            .await
            .unwrap();
        assert_eq!(
            got.bytes().await.unwrap(),
            &body[(MIN_PART - 10) as usize..(MIN_PART + 10) as usize]
        );
        assert_eq!(
            store.get(&key, None).await.unwrap().bytes().await.unwrap(),
            body
        );
    }

    /// S3's `409 ConditionalRequestConflict`, which no emulator gives: the next `conflicts`
    /// conditional writes (PutObject, CompleteMultipartUpload) are sent to a bucket that does not
    /// exist, so nothing is written, and their answer becomes the 409 S3 sends.
    #[derive(Clone, Debug, Default)]
    struct Conflicts {
        conflicts: Arc<std::sync::atomic::AtomicU32>,
        pending: Arc<std::sync::atomic::AtomicBool>,
        conditional_writes: Arc<std::sync::atomic::AtomicU32>,
    }

    impl aws_sdk_s3::config::Intercept for Conflicts {
        fn name(&self) -> &'static str {
            "Conflicts"
        }

        fn modify_before_transmit(
            &self,
            ctx: &mut aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut<'_>,
            _components: &aws_sdk_s3::config::RuntimeComponents,
            _cfg: &mut aws_sdk_s3::config::ConfigBag,
        ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            use std::sync::atomic::Ordering::SeqCst;
            let request = ctx.request_mut();
            if !request.headers().contains_key("if-none-match") {
                return Ok(());
            }
            self.conditional_writes.fetch_add(1, SeqCst);
            let inject = self
                .conflicts
                .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if inject {
                // Path-style `http://host:port/bucket/key` becomes `.../no-such-bucket/bucket/key`.
                let uri = request.uri().to_owned();
                let authority = uri.find("://").map_or(0, |i| i + 3);
                let path = authority + uri[authority..].find('/').expect("a path");
                let (base, path) = uri.split_at(path);
                request.set_uri(format!("{base}/no-such-bucket{path}"))?;
                self.pending.store(true, SeqCst);
            }
            Ok(())
        }

        fn modify_before_deserialization(
            &self,
            ctx: &mut aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextMut<
                '_,
            >,
            _components: &aws_sdk_s3::config::RuntimeComponents,
            _cfg: &mut aws_sdk_s3::config::ConfigBag,
        ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            if self
                .pending
                .swap(false, std::sync::atomic::Ordering::SeqCst)
            {
                *ctx.response_mut() = aws_sdk_s3::config::http::HttpResponse::new(
                    409.try_into()?,
                    aws_sdk_s3::primitives::SdkBody::from(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>ConditionalRequestConflict</Code>\
                         <Message>A conflicting conditional operation is currently in progress against this resource.</Message></Error>",
                    ),
                );
            }
            Ok(())
        }
    }

    async fn conflicting_store(aws: &TestAws, conflicts: u32) -> (S3ArtifactStore, Conflicts) {
        let injected = Conflicts::default();
        injected
            .conflicts
            .store(conflicts, std::sync::atomic::Ordering::SeqCst);
        let client = intercepted(aws, injected.clone());
        let bucket = aws.fresh_bucket(&client).await;
        let store = S3ArtifactStore::new(client, &bucket, "").with_parts(MIN_PART, MIN_PART);
        (store, injected)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_conditional_write_that_conflicts_is_tried_again() {
        use std::sync::atomic::Ordering::SeqCst;
        let aws = TestAws::start().await;
        let dir = tempfile::tempdir().unwrap();
        // One PutObject, and one large enough for parts (its retry starts a new upload).
        for (name, len) in [("small", 1000), ("parts", MIN_PART + 777)] {
            let (store, injected) = conflicting_store(&aws, 2).await;
            let body: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let src = dir.path().join(name);
            std::fs::write(&src, &body).unwrap();
            let k = ArtifactKey::parse(&format!("conflict/{name}")).unwrap();
            let meta = store
                .put_file(&k, &src)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(meta.size, len, "{name}");
            assert_eq!(injected.conditional_writes.load(SeqCst), 3, "{name}");
            assert_eq!(
                store.get(&k, None).await.unwrap().bytes().await.unwrap(),
                body,
                "{name}: the object is whole"
            );
            let uploads = store
                .client
                .list_multipart_uploads()
                .bucket(&store.bucket)
                .send()
                .await
                .unwrap();
            assert!(
                uploads.uploads().is_empty(),
                "{name}: a conflicted upload's parts are freed: {uploads:?}"
            );
            // The key is now published: a later write is refused, not retried.
            assert!(matches!(
                store.put_file(&k, &src).await,
                Err(ArtifactError::AlreadyExists { .. })
            ));
            assert_eq!(injected.conditional_writes.load(SeqCst), 4, "{name}");
        }
        // A conflict that does not clear is a transient failure, never "published already".
        let (store, injected) = conflicting_store(&aws, u32::MAX).await;
        let k = ArtifactKey::parse("conflict/forever").unwrap();
        let err = store
            .put_file(&k, &dir.path().join("small"))
            .await
            .unwrap_err();
        assert!(matches!(err, ArtifactError::Unavailable { .. }), "{err:?}");
        assert!(!err.is_permanent());
        assert_eq!(injected.conditional_writes.load(SeqCst), CONFLICT_ATTEMPTS);
        assert!(matches!(
            store.head(&k).await,
            Err(ArtifactError::NotFound { .. })
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_endpoint_is_a_retryable_error() {
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:1")
            .force_path_style(true)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "t", "t", None, None, "t",
            ))
            .build();
        let store = S3ArtifactStore::new(Client::from_conf(conf), "b", "");
        let err = store
            .head(&ArtifactKey::parse("k").unwrap())
            .await
            .unwrap_err();
        assert!(matches!(err, ArtifactError::Unavailable { .. }), "{err:?}");
        assert!(!err.is_permanent());
    }
}
