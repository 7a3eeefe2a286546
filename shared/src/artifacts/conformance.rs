//! The artifact store conformance suite, run by every backend through
//! [`artifact_store_conformance!`](crate::artifact_store_conformance).

use std::sync::Arc;

use super::{ArtifactError, ArtifactKey, ArtifactStore, GetRange, KeyError, RangeError};

/// Generates one `#[tokio::test]` per conformance case. `$make` is an async fn returning
/// `(Arc<dyn ArtifactStore>, guard)` for a fresh, empty store.
#[macro_export]
macro_rules! artifact_store_conformance {
    ($make:path) => {
        $crate::artifact_store_conformance!(@cases $make;
            round_trip,
            every_range_form,
            ranges_past_the_end_are_not_satisfiable,
            empty_objects,
            large_objects_stream_exactly,
            concurrent_puts_of_one_key_have_one_winner,
            a_published_object_is_never_replaced,
            missing_keys_are_not_found,
            traversal_keys_are_refused,
            delete_is_idempotent,
            the_longest_identifiers_work,
            presigned_urls_read_the_object_by_range,
        );
    };
    (@cases $make:path; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let (store, _guard) = $make().await;
                $crate::artifacts::conformance::$case(store).await;
            }
        )+
    };
}

fn key(s: &str) -> ArtifactKey {
    ArtifactKey::parse(s).unwrap()
}

/// Deterministic, non-repeating test bytes.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(seed as u32 % 31) as u8
                ^ seed
        })
        .collect()
}

async fn put_bytes(store: &dyn ArtifactStore, k: &ArtifactKey, bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::write(&src, bytes).unwrap();
    let meta = store.put_file(k, &src).await.unwrap();
    assert_eq!(meta.size, bytes.len() as u64);
}

/// Whether `k` exists, as `exists` says it and, where the backend answers at once, as
/// `exists_now` does: both must agree.
async fn exists(store: &dyn ArtifactStore, k: &ArtifactKey) -> bool {
    let asked = store.exists(k).await.unwrap();
    if let Some(now) = store.exists_now(k) {
        assert_eq!(now.unwrap(), asked, "exists_now and exists disagree on {k}");
    }
    asked
}

async fn read(store: &dyn ArtifactStore, k: &ArtifactKey, r: Option<GetRange>) -> Vec<u8> {
    store.get(k, r).await.unwrap().bytes().await.unwrap()
}

pub async fn round_trip(store: Arc<dyn ArtifactStore>) {
    let k = key("dcc/id/data/tabix-bed/0123-v1");
    let body = pattern(10_000, 1);
    assert!(!exists(store.as_ref(), &k).await);
    put_bytes(store.as_ref(), &k, &body).await;
    assert!(exists(store.as_ref(), &k).await);
    let head = store.head(&k).await.unwrap();
    assert_eq!(head.size, 10_000);
    assert!(!head.etag.is_empty());
    let got = store.get(&k, None).await.unwrap();
    assert_eq!(got.range, 0..10_000);
    assert_eq!(got.meta, head);
    assert_eq!(got.bytes().await.unwrap(), body);
}

pub async fn every_range_form(store: Arc<dyn ArtifactStore>) {
    let k = key("r/obj");
    let body = pattern(1000, 2);
    put_bytes(store.as_ref(), &k, &body).await;
    let cases = [
        (GetRange::Bounded(0..1), 0..1),
        (GetRange::Bounded(10..20), 10..20),
        (GetRange::Bounded(990..5000), 990..1000),
        (GetRange::Bounded(999..1000), 999..1000),
        (GetRange::Offset(0), 0..1000),
        (GetRange::Offset(900), 900..1000),
        (GetRange::Offset(999), 999..1000),
        (GetRange::Suffix(1), 999..1000),
        (GetRange::Suffix(100), 900..1000),
        (GetRange::Suffix(5000), 0..1000),
    ];
    for (range, expect) in cases {
        let got = store.get(&k, Some(range.clone())).await.unwrap();
        assert_eq!(got.range, expect, "{range}");
        assert_eq!(got.meta.size, 1000);
        let bytes = got.bytes().await.unwrap();
        assert_eq!(
            bytes,
            &body[expect.start as usize..expect.end as usize],
            "{range}"
        );
    }
}

pub async fn ranges_past_the_end_are_not_satisfiable(store: Arc<dyn ArtifactStore>) {
    let k = key("r/obj");
    put_bytes(store.as_ref(), &k, &pattern(100, 3)).await;
    for range in [
        GetRange::Bounded(100..200),
        GetRange::Offset(100),
        GetRange::Offset(u64::MAX - 1),
        GetRange::Suffix(0),
    ] {
        let err = store.get(&k, Some(range.clone())).await.unwrap_err();
        assert!(
            matches!(
                err,
                ArtifactError::Range(RangeError::NotSatisfiable { size: 100, .. })
            ),
            "{range}: {err:?}"
        );
    }
    let err = store
        .get(
            &k,
            Some(GetRange::Bounded(std::ops::Range { start: 50, end: 10 })),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ArtifactError::Range(RangeError::Invalid { .. })),
        "{err:?}"
    );
}

pub async fn empty_objects(store: Arc<dyn ArtifactStore>) {
    let k = key("empty");
    put_bytes(store.as_ref(), &k, b"").await;
    assert_eq!(store.head(&k).await.unwrap().size, 0);
    let got = store.get(&k, None).await.unwrap();
    assert_eq!(got.range, 0..0);
    assert!(got.bytes().await.unwrap().is_empty());
    for range in [
        GetRange::Bounded(0..1),
        GetRange::Offset(0),
        GetRange::Suffix(1),
    ] {
        let err = store.get(&k, Some(range.clone())).await.unwrap_err();
        assert!(
            matches!(
                err,
                ArtifactError::Range(RangeError::NotSatisfiable { size: 0, .. })
            ),
            "{range}: {err:?}"
        );
    }
}

pub async fn large_objects_stream_exactly(store: Arc<dyn ArtifactStore>) {
    let k = key("big");
    let body = pattern(3 * 1024 * 1024 + 17, 4);
    put_bytes(store.as_ref(), &k, &body).await;
    assert_eq!(read(store.as_ref(), &k, None).await, body);
    let mid = GetRange::Bounded(1_000_000..2_500_001);
    assert_eq!(
        read(store.as_ref(), &k, Some(mid)).await,
        &body[1_000_000..2_500_001]
    );
}

pub async fn concurrent_puts_of_one_key_have_one_winner(store: Arc<dyn ArtifactStore>) {
    let k = key("contended/obj");
    let bodies: Vec<Vec<u8>> = (0..8)
        .map(|i| pattern(256 * 1024 + i * 1000, i as u8 + 10))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let tasks: Vec<_> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let src = dir.path().join(format!("src{i}"));
            std::fs::write(&src, b).unwrap();
            let store = Arc::clone(&store);
            let k = k.clone();
            tokio::spawn(async move { store.put_file(&k, &src).await.map(|_| i) })
        })
        .collect();
    let reader = {
        let store = Arc::clone(&store);
        let k = k.clone();
        let bodies = bodies.clone();
        tokio::spawn(async move {
            for _ in 0..50 {
                if let Ok(got) = store.get(&k, None).await {
                    let bytes = got.bytes().await.unwrap();
                    assert!(
                        bodies.contains(&bytes),
                        "a reader saw a partial or mixed object"
                    );
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(i) => winners.push(i),
            Err(ArtifactError::AlreadyExists { .. }) => {}
            Err(e) => panic!("a losing put must say the key exists, not {e}"),
        }
    }
    reader.await.unwrap();
    assert_eq!(winners.len(), 1, "exactly one put creates the object");
    assert_eq!(
        read(store.as_ref(), &k, None).await,
        bodies[winners[0]],
        "the object is the winner's, whole"
    );
}

pub async fn a_published_object_is_never_replaced(store: Arc<dyn ArtifactStore>) {
    let k = key("published");
    put_bytes(store.as_ref(), &k, b"first version").await;
    let before = store.head(&k).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let late = dir.path().join("late");
    std::fs::write(&late, b"a late attempt's different bytes").unwrap();
    assert!(matches!(
        store.put_file(&k, &late).await,
        Err(ArtifactError::AlreadyExists { .. })
    ));
    // Large enough for a multipart upload where the backend uses one.
    let late_big = dir.path().join("late-big");
    std::fs::write(&late_big, pattern(6 * 1024 * 1024 + 17, 3)).unwrap();
    assert!(matches!(
        store.put_file(&k, &late_big).await,
        Err(ArtifactError::AlreadyExists { .. })
    ));
    assert_eq!(store.head(&k).await.unwrap(), before);
    assert_eq!(read(store.as_ref(), &k, None).await, b"first version");
    // Removed (an operator's purge), it can be published anew.
    store.delete(&k).await.unwrap();
    put_bytes(store.as_ref(), &k, b"second version").await;
    assert_eq!(read(store.as_ref(), &k, None).await, b"second version");
}

pub async fn missing_keys_are_not_found(store: Arc<dyn ArtifactStore>) {
    let k = key("no/such/object");
    assert!(matches!(
        store.head(&k).await,
        Err(ArtifactError::NotFound { .. })
    ));
    assert!(matches!(
        store.get(&k, None).await,
        Err(ArtifactError::NotFound { .. })
    ));
    assert!(matches!(
        store.get(&k, Some(GetRange::Offset(0))).await,
        Err(ArtifactError::NotFound { .. })
    ));
    assert!(!exists(store.as_ref(), &k).await);
    // A prefix of an existing key is not an object.
    put_bytes(store.as_ref(), &key("dir/obj"), b"x").await;
    assert!(matches!(
        store.head(&key("dir")).await,
        Err(ArtifactError::NotFound { .. })
    ));
    assert!(!exists(store.as_ref(), &key("dir")).await);
    assert!(matches!(
        store.get(&key("dir"), None).await,
        Err(ArtifactError::NotFound { .. })
    ));
}

pub async fn traversal_keys_are_refused(store: Arc<dyn ArtifactStore>) {
    for bad in [
        "../escape",
        "a/../../b",
        "/etc/passwd",
        "a//b",
        "a/./b",
        "a\0b",
        "..\\x",
    ] {
        let err = ArtifactKey::parse(bad).unwrap_err();
        let as_store_error: ArtifactError = err.clone().into();
        assert!(matches!(as_store_error, ArtifactError::InvalidKey(_)));
        assert!(!matches!(err, KeyError::TooLong), "{bad}");
    }
    // A legal key whose segment looks odd stays inside the store.
    let k = key("..a/b..");
    put_bytes(store.as_ref(), &k, b"inside").await;
    assert_eq!(read(store.as_ref(), &k, None).await, b"inside");
}

pub async fn delete_is_idempotent(store: Arc<dyn ArtifactStore>) {
    let k = key("del/obj");
    put_bytes(store.as_ref(), &k, b"bytes").await;
    store.delete(&k).await.unwrap();
    assert!(!exists(store.as_ref(), &k).await);
    store.delete(&k).await.unwrap();
    store.delete(&key("never/was")).await.unwrap();
}

/// Keys built from the longest identifiers the rules allow (256 characters each) store, read
/// and stay distinct from keys that differ only near their end.
pub async fn the_longest_identifiers_work(store: Arc<dyn ArtifactStore>) {
    let long = |last: char| format!("{}{last}", "L".repeat(255));
    let a = key(&format!(
        "{}/{}/data/samtools-bam/0123-v1",
        long('a'),
        long('a')
    ));
    let b = key(&format!(
        "{}/{}/data/samtools-bam/0123-v1",
        long('a'),
        long('b')
    ));
    put_bytes(store.as_ref(), &a, &pattern(3000, 7)).await;
    put_bytes(store.as_ref(), &b, &pattern(2000, 8)).await;
    assert_eq!(read(store.as_ref(), &a, None).await, pattern(3000, 7));
    assert_eq!(
        read(store.as_ref(), &b, Some(GetRange::Bounded(10..20))).await,
        pattern(2000, 8)[10..20]
    );
    assert_eq!(store.head(&a).await.unwrap().size, 3000);
    store.delete(&a).await.unwrap();
    assert!(!exists(store.as_ref(), &a).await);
    assert!(exists(store.as_ref(), &b).await);
}

/// A presigned URL, where the backend hands them out, reads the object's bytes by range without
/// the store's credentials; a backend that cannot says so (`None`) for every key.
pub async fn presigned_urls_read_the_object_by_range(store: Arc<dyn ArtifactStore>) {
    let k = key("dcc/presigned/data/samtools-bam/0123456789abcdef0123456789abcdef-v1");
    let bytes = pattern(300_000, 7);
    put_bytes(store.as_ref(), &k, &bytes).await;
    let Some(url) = store
        .presign_get(&k, std::time::Duration::from_secs(60))
        .await
        .unwrap()
    else {
        let missing = key("dcc/none/data/samtools-bam/0123456789abcdef0123456789abcdef-v1");
        assert_eq!(
            store
                .presign_get(&missing, std::time::Duration::from_secs(60))
                .await
                .unwrap(),
            None
        );
        return;
    };
    let host = url::Url::parse(&url).unwrap();
    assert!(
        host.host_str().is_some_and(|h| h
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())),
        "tests read presigned URLs on loopback only: {url}"
    );
    let resp = reqwest::Client::new()
        .get(&url)
        .header("Range", "bytes=1000-70999")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206, "{url}");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &bytes[1000..71_000]);
    let whole = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
    assert_eq!(whole.as_ref(), &bytes[..]);
}
