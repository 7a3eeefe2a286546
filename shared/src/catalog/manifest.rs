//! Import from a JSON Lines manifest: one file record per line. Bad rows are reported with their
//! line number and reason; good rows are imported.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use super::{Catalog, CatalogError, PutOutcome};
use crate::domain::{AccessUrl, FileRecord, Format, Ident, Md5, SidecarKind};

/// One manifest row as written; every field is checked in [`parse_manifest_line`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    dcc: String,
    local_id: String,
    md5: String,
    size: u64,
    format: String,
    access_url: String,
    #[serde(default)]
    sidecars: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RowError {
    /// 1-based line number in the manifest.
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// What an import did; `rejected` names each refused row by line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub rejected: Vec<RowError>,
}

impl ImportReport {
    pub fn imported(&self) -> usize {
        self.inserted + self.updated + self.unchanged
    }
}

/// Parses and validates one manifest line.
pub fn parse_manifest_line(line: &str) -> Result<FileRecord, String> {
    let row: Row =
        serde_json::from_str(line).map_err(|e| format!("not a valid manifest row: {e}"))?;
    let field = |name: &str, e: &dyn std::fmt::Display| format!("{name}: {e}");
    let dcc = Ident::parse(&row.dcc).map_err(|e| field("dcc", &e))?;
    let local_id = Ident::parse(&row.local_id).map_err(|e| field("local_id", &e))?;
    let md5 = Md5::parse(&row.md5).map_err(|e| field("md5", &e))?;
    let format = Format::parse(&row.format).map_err(|e| field("format", &e))?;
    let access_url = AccessUrl::parse(&row.access_url).map_err(|e| field("access_url", &e))?;
    let mut sidecars = BTreeMap::new();
    for (kind, url) in row.sidecars {
        let kind = match kind.to_ascii_lowercase().as_str() {
            "bai" => SidecarKind::Bai,
            "tbi" => SidecarKind::Tbi,
            "csi" => SidecarKind::Csi,
            _ => {
                return Err(format!(
                    "sidecars: unknown kind {kind:?}; expected bai, tbi or csi"
                ));
            }
        };
        let url =
            AccessUrl::parse(&url).map_err(|e| field(&format!("sidecars.{}", kind.name()), &e))?;
        sidecars.insert(kind, url);
    }
    Ok(FileRecord {
        dcc,
        local_id,
        md5,
        size: row.size,
        format,
        access_url,
        sidecars,
    })
}

/// Imports every good row of a manifest into `catalog`; bad rows (and duplicate ids within the
/// manifest) are reported, not imported. Fails only if the catalog itself fails.
pub async fn import_manifest<R: AsyncBufRead + Unpin>(
    catalog: &dyn Catalog,
    reader: R,
) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport::default();
    let mut seen: BTreeMap<(Ident, Ident), usize> = BTreeMap::new();
    let mut lines = reader.lines();
    let mut n = 0;
    while let Some(line) = lines.next_line().await.map_err(ImportError::Read)? {
        n += 1;
        if line.trim().is_empty() {
            continue;
        }
        let record = match parse_manifest_line(&line) {
            Ok(r) => r,
            Err(reason) => {
                report.rejected.push(RowError { line: n, reason });
                continue;
            }
        };
        let id = (record.dcc.clone(), record.local_id.clone());
        if let Some(first) = seen.get(&id) {
            report.rejected.push(RowError {
                line: n,
                reason: format!("{}/{} is already listed on line {first}", id.0, id.1),
            });
            continue;
        }
        seen.insert(id, n);
        match catalog.put(&record).await? {
            PutOutcome::Inserted => report.inserted += 1,
            PutOutcome::Updated => report.updated += 1,
            PutOutcome::Unchanged => report.unchanged += 1,
        }
    }
    Ok(report)
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("read manifest: {0}")]
    Read(std::io::Error),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"dcc":"ENCODE","local_id":"ENCFF1","md5":"0123456789abcdef0123456789abcdef","size":5,"format":"narrowPeak","access_url":"https://example.org/a.bed"}"#;

    #[test]
    fn a_good_row_parses() {
        let r = parse_manifest_line(GOOD).unwrap();
        assert_eq!(r.format, Format::NarrowPeak);
        assert_eq!(r.dcc.as_str(), "ENCODE");
    }

    #[test]
    fn bad_rows_say_which_field_and_why() {
        let cases = [
            (
                r#"{"dcc":"a/b","local_id":"x","md5":"0123456789abcdef0123456789abcdef","size":1,"format":"bed","access_url":"file:///x"}"#,
                "dcc: identifier contains '/'",
            ),
            (
                r#"{"dcc":"a","local_id":"x","md5":"nope","size":1,"format":"bed","access_url":"file:///x"}"#,
                "md5: md5 \"nope\"",
            ),
            (
                r#"{"dcc":"a","local_id":"x","md5":"0123456789abcdef0123456789abcdef","size":1,"format":"cram","access_url":"file:///x"}"#,
                "format: unknown format \"cram\"",
            ),
            (
                r#"{"dcc":"a","local_id":"x","md5":"0123456789abcdef0123456789abcdef","size":1,"format":"bed","access_url":"ftp://h/x"}"#,
                "access_url: access_url \"ftp://h/x\" has scheme \"ftp\"",
            ),
            (
                r#"{"dcc":"a","local_id":"x","md5":"0123456789abcdef0123456789abcdef","size":-1,"format":"bed","access_url":"file:///x"}"#,
                "not a valid manifest row",
            ),
            (
                r#"{"dcc":"a","local_id":"x","md5":"0123456789abcdef0123456789abcdef","size":1,"format":"bed"}"#,
                "missing field `access_url`",
            ),
            (
                r#"{"dcc":"a","local_id":"x","md5":"0123456789abcdef0123456789abcdef","size":1,"format":"bed","access_url":"file:///x","sidecar":{}}"#,
                "unknown field `sidecar`",
            ),
            (
                r#"{"dcc":"a","local_id":"x","md5":"0123456789abcdef0123456789abcdef","size":1,"format":"bam","access_url":"file:///x","sidecars":{"crai":"file:///y"}}"#,
                "sidecars: unknown kind \"crai\"",
            ),
            ("not json", "not a valid manifest row"),
        ];
        for (line, expect) in cases {
            let err = parse_manifest_line(line).unwrap_err();
            assert!(
                err.contains(expect),
                "{line}\n  gave: {err}\n  want: {expect}"
            );
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn ident() -> impl Strategy<Value = String> {
            "[A-Za-z0-9._-]{1,256}".prop_filter("dot names", |s| s != "." && s != "..")
        }

        fn url() -> impl Strategy<Value = String> {
            prop_oneof![
                // Host labels without '-' (so never an `xn--` label that is not valid IDNA).
                ("[a-z][a-z0-9]{0,20}", "[A-Za-z0-9_./-]{0,40}")
                    .prop_map(|(h, p)| format!("https://{h}.example/{p}")),
                ("[a-z0-9][a-z0-9]{2,20}", "[A-Za-z0-9_/-]{1,40}")
                    .prop_map(|(b, k)| format!("s3://{b}/{k}")),
                "[A-Za-z0-9_/-]{1,40}".prop_map(|p| format!("file:///{p}")),
            ]
        }

        const FORMATS: [&str; 13] = [
            "SAM",
            "bam",
            "VCF",
            "gff",
            "GFF3",
            "gtf",
            "BED",
            "narrowPeak",
            "broadpeak",
            "bigBed",
            "bigWig",
            "csv",
            "TSV",
        ];

        fn row() -> impl Strategy<Value = serde_json::Value> {
            (
                ident(),
                ident(),
                "[0-9a-fA-F]{32}",
                any::<u64>(),
                prop::sample::select(FORMATS.to_vec()),
                url(),
                prop::option::of(url()),
            )
                .prop_map(|(dcc, id, md5, size, format, url, bai)| {
                    let mut row = serde_json::json!({
                        "dcc": dcc, "local_id": id, "md5": md5, "size": size,
                        "format": format, "access_url": url,
                    });
                    if let Some(b) = bai {
                        row["sidecars"] = serde_json::json!({"BAI": b});
                    }
                    row
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(10_000))]

            #[test]
            fn every_well_formed_row_parses_to_what_it_says(row in row()) {
                let r = parse_manifest_line(&row.to_string()).unwrap();
                prop_assert_eq!(r.dcc.as_str(), row["dcc"].as_str().unwrap());
                prop_assert_eq!(r.local_id.as_str(), row["local_id"].as_str().unwrap());
                prop_assert_eq!(r.md5.as_str(), row["md5"].as_str().unwrap().to_ascii_lowercase());
                prop_assert_eq!(r.size, row["size"].as_u64().unwrap());
                prop_assert_eq!(r.format, Format::parse(row["format"].as_str().unwrap()).unwrap());
                // URLs compare as parsed (`https://h/.` is `https://h/`).
                prop_assert_eq!(
                    r.access_url.as_url(),
                    &url::Url::parse(row["access_url"].as_str().unwrap()).unwrap()
                );
                prop_assert_eq!(r.sidecars.len(), usize::from(row.get("sidecars").is_some()));
            }

            #[test]
            fn a_row_with_one_bad_field_names_that_field(
                row in row(),
                which in 0usize..6,
                junk in "[ /\\:*?<>|]{1,3}",
            ) {
                let mut bad = row.clone();
                let (field, value) = match which {
                    0 => ("dcc", format!("{}{junk}", row["dcc"].as_str().unwrap())),
                    1 => ("local_id", format!("{junk}{}", row["local_id"].as_str().unwrap())),
                    2 => ("md5", format!("{}0", row["md5"].as_str().unwrap())),
                    3 => ("format", format!("{}x", row["format"].as_str().unwrap())),
                    4 => ("access_url", format!("ftp://{junk}")),
                    _ => ("local_id", "x".repeat(257)),
                };
                bad[field] = serde_json::json!(value);
                let err = parse_manifest_line(&bad.to_string()).unwrap_err();
                prop_assert!(err.starts_with(&format!("{field}:")), "{}: {}", field, err);
            }

            #[test]
            fn any_line_is_parsed_or_refused_without_panicking(line in "\\PC{0,200}") {
                if let Err(e) = parse_manifest_line(&line) {
                    prop_assert!(!e.is_empty());
                }
            }
        }
    }
}
