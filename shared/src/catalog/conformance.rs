//! The catalog conformance suite, run by every backend through
//! [`catalog_conformance!`](crate::catalog_conformance).

use std::sync::Arc;

use super::{Catalog, CatalogError, CatalogQuery, PutOutcome, import_manifest};
use crate::domain::{AccessUrl, FileRecord, Format, Ident, Md5, SidecarKind};

#[macro_export]
macro_rules! catalog_conformance {
    ($make:path) => {
        $crate::catalog_conformance!(@cases $make;
            put_then_get,
            put_replaces_and_reports_what_changed,
            unknown_files_are_not_found,
            list_pages_in_order_and_filters_by_dcc,
            delete_removes,
            manifest_import_reports_bad_rows_and_keeps_good_ones,
            the_longest_identifiers_work,
        );
    };
    (@cases $make:path; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (catalog, _guard) = $make().await;
                $crate::catalog::conformance::$case(catalog).await;
            }
        )+
    };
}

fn record(dcc: &str, id: &str, format: Format) -> FileRecord {
    FileRecord {
        dcc: Ident::parse(dcc).unwrap(),
        local_id: Ident::parse(id).unwrap(),
        md5: Md5::parse("0123456789abcdef0123456789abcdef").unwrap(),
        size: 42,
        format,
        access_url: AccessUrl::parse(&format!("https://example.org/{id}")).unwrap(),
        sidecars: Default::default(),
    }
}

fn ident(s: &str) -> Ident {
    Ident::parse(s).unwrap()
}

pub async fn put_then_get(catalog: Arc<dyn Catalog>) {
    let mut r = record("ENCODE", "ENCFF1", Format::Bam);
    r.sidecars.insert(
        SidecarKind::Bai,
        AccessUrl::parse("https://example.org/ENCFF1.bai").unwrap(),
    );
    assert_eq!(catalog.put(&r).await.unwrap(), PutOutcome::Inserted);
    assert_eq!(catalog.get(&r.dcc, &r.local_id).await.unwrap(), r);
}

pub async fn put_replaces_and_reports_what_changed(catalog: Arc<dyn Catalog>) {
    let mut r = record("d", "x", Format::Vcf);
    assert_eq!(catalog.put(&r).await.unwrap(), PutOutcome::Inserted);
    assert_eq!(catalog.put(&r).await.unwrap(), PutOutcome::Unchanged);
    r.md5 = Md5::parse("fedcba9876543210fedcba9876543210").unwrap();
    assert_eq!(catalog.put(&r).await.unwrap(), PutOutcome::Updated);
    assert_eq!(catalog.get(&r.dcc, &r.local_id).await.unwrap().md5, r.md5);
}

pub async fn unknown_files_are_not_found(catalog: Arc<dyn Catalog>) {
    let err = catalog
        .get(&ident("d"), &ident("missing"))
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::NotFound { .. }), "{err:?}");
    assert_eq!(err.to_string(), "file d/missing is not registered");
}

pub async fn list_pages_in_order_and_filters_by_dcc(catalog: Arc<dyn Catalog>) {
    for (d, i) in [("b", "2"), ("a", "2"), ("b", "1"), ("a", "1"), ("c", "1")] {
        catalog.put(&record(d, i, Format::Bed)).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut q = CatalogQuery {
        limit: Some(2),
        ..Default::default()
    };
    loop {
        let page = catalog.list(&q).await.unwrap();
        seen.extend(
            page.files
                .iter()
                .map(|f| format!("{}/{}", f.dcc, f.local_id)),
        );
        match page.next {
            Some(n) => q.after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, ["a/1", "a/2", "b/1", "b/2", "c/1"]);
    let only_b = catalog
        .list(&CatalogQuery {
            dcc: Some(ident("b")),
            ..Default::default()
        })
        .await
        .unwrap();
    let ids: Vec<_> = only_b
        .files
        .iter()
        .map(|f| f.local_id.to_string())
        .collect();
    assert_eq!(ids, ["1", "2"]);
    assert!(only_b.next.is_none());
}

pub async fn delete_removes(catalog: Arc<dyn Catalog>) {
    let r = record("d", "x", Format::Gff);
    catalog.put(&r).await.unwrap();
    assert!(catalog.delete(&r.dcc, &r.local_id).await.unwrap());
    assert!(!catalog.delete(&r.dcc, &r.local_id).await.unwrap());
    assert!(matches!(
        catalog.get(&r.dcc, &r.local_id).await,
        Err(CatalogError::NotFound { .. })
    ));
}

pub async fn manifest_import_reports_bad_rows_and_keeps_good_ones(catalog: Arc<dyn Catalog>) {
    let manifest = [
        r#"{"dcc":"d","local_id":"good1","md5":"0123456789abcdef0123456789abcdef","size":1,"format":"BED","access_url":"file:///data/a.bed"}"#,
        "",
        r#"{"dcc":"d","local_id":"bad md5","md5":"0123","size":1,"format":"bed","access_url":"file:///data/a.bed"}"#,
        r#"{"dcc":"d","local_id":"good2","md5":"0123456789abcdef0123456789abcdef","size":1,"format":"gff3","access_url":"s3://bucket/a.gff3","sidecars":{"tbi":"s3://bucket/a.gff3.gz.tbi"}}"#,
        r#"{"dcc":"d","local_id":"good1","md5":"0123456789abcdef0123456789abcdef","size":1,"format":"bed","access_url":"file:///data/b.bed"}"#,
        r#"{"dcc":"d","local_id":"x","md5":"0123456789abcdef0123456789abcdef","size":1,"format":"cram","access_url":"file:///data/a.cram"}"#,
        "{truncated",
    ]
    .join("\n");
    let report = import_manifest(catalog.as_ref(), manifest.as_bytes())
        .await
        .unwrap();
    assert_eq!(report.inserted, 2);
    let lines: Vec<_> = report.rejected.iter().map(|r| r.line).collect();
    assert_eq!(lines, [3, 5, 6, 7]);
    assert!(
        report.rejected[0].reason.contains("local_id"),
        "{}",
        report.rejected[0]
    );
    assert!(
        report.rejected[1]
            .reason
            .contains("already listed on line 1"),
        "{}",
        report.rejected[1]
    );
    assert!(
        report.rejected[2].reason.contains("cram"),
        "{}",
        report.rejected[2]
    );
    let good2 = catalog.get(&ident("d"), &ident("good2")).await.unwrap();
    assert_eq!(good2.format, Format::Gff);
    assert!(good2.sidecars.contains_key(&SidecarKind::Tbi));
    assert_eq!(
        catalog
            .get(&ident("d"), &ident("good1"))
            .await
            .unwrap()
            .access_url
            .as_str(),
        "file:///data/a.bed",
        "the first listing wins"
    );

    // Importing again changes nothing.
    let again = import_manifest(catalog.as_ref(), manifest.as_bytes())
        .await
        .unwrap();
    assert_eq!((again.inserted, again.unchanged), (0, 2));
}

/// Identifiers as long as the rules allow (256 characters) are stored, found and listed.
pub async fn the_longest_identifiers_work(catalog: Arc<dyn Catalog>) {
    let (dcc, id) = ("D".repeat(256), "i".repeat(256));
    let r = record(&dcc, &id, Format::Bed);
    assert_eq!(catalog.put(&r).await.unwrap(), PutOutcome::Inserted);
    assert_eq!(catalog.get(&r.dcc, &r.local_id).await.unwrap(), r);
    let page = catalog
        .list(&CatalogQuery {
            dcc: Some(ident(&dcc)),
            limit: Some(10),
            after: None,
        })
        .await
        .unwrap();
    assert_eq!(page.files, vec![r]);
}
