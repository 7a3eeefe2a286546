//! Catalog file records: what a source file is and where to fetch it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

use super::{Format, Ident, Md5};

/// One registered source file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FileRecord {
    pub dcc: Ident,
    pub local_id: Ident,
    pub md5: Md5,
    pub size: u64,
    pub format: Format,
    pub access_url: AccessUrl,
    /// Upstream index files, served directly by `/index` when present.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sidecars: BTreeMap<SidecarKind, AccessUrl>,
}

/// The kind of an upstream index file.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SidecarKind {
    Bai,
    Tbi,
    Csi,
}

/// A sidecar paired with its URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sidecar {
    pub kind: SidecarKind,
    pub url: AccessUrl,
}

impl SidecarKind {
    pub fn name(self) -> &'static str {
        match self {
            SidecarKind::Bai => "bai",
            SidecarKind::Tbi => "tbi",
            SidecarKind::Csi => "csi",
        }
    }
}

/// Where a source can be fetched from: `https://`, `drs://`, `s3://` or `file://` (absolute path).
/// Plain `http://` is accepted only for loopback hosts, for local development and tests.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, format = "uri")]
pub struct AccessUrl(Url);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("access_url {url:?} is not a URL: {reason}")]
    Malformed { url: String, reason: String },
    #[error("access_url {url:?} has scheme {scheme:?}; expected https, drs, s3 or file")]
    Scheme { url: String, scheme: String },
    #[error("access_url {url:?} has no host")]
    NoHost { url: String },
    #[error("access_url {url:?} uses plain http to a non-loopback host; use https")]
    InsecureHttp { url: String },
    #[error("access_url {url:?} must be file:/// with an absolute path and no host")]
    FileHost { url: String },
}

impl AccessUrl {
    pub fn parse(s: &str) -> Result<Self, UrlError> {
        let url = Url::parse(s).map_err(|e| UrlError::Malformed {
            url: s.to_owned(),
            reason: e.to_string(),
        })?;
        match url.scheme() {
            "https" | "drs" | "s3" => {
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(UrlError::NoHost { url: s.to_owned() });
                }
            }
            "http" => {
                let loopback = matches!(url.host(), Some(url::Host::Domain("localhost")))
                    || matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
                    || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback());
                if !loopback {
                    return Err(UrlError::InsecureHttp { url: s.to_owned() });
                }
            }
            "file" => {
                if url.host_str().is_some_and(|h| !h.is_empty()) {
                    return Err(UrlError::FileHost { url: s.to_owned() });
                }
            }
            other => {
                return Err(UrlError::Scheme {
                    url: s.to_owned(),
                    scheme: other.to_owned(),
                });
            }
        }
        Ok(Self(url))
    }

    pub fn as_url(&self) -> &Url {
        &self.0
    }

    pub fn scheme(&self) -> &str {
        self.0.scheme()
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl TryFrom<String> for AccessUrl {
    type Error = UrlError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<AccessUrl> for String {
    fn from(u: AccessUrl) -> Self {
        u.0.into()
    }
}

impl fmt::Display for AccessUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_supported_schemes() {
        for ok in [
            "https://example.org/a.bam",
            "drs://drs.example.org/obj-1",
            "s3://bucket/key/a.vcf.gz",
            "file:///data/a.bed",
            "http://127.0.0.1:9000/a.bed",
            "http://localhost/a.bed",
        ] {
            assert_eq!(AccessUrl::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_unsupported_or_unsafe_urls() {
        assert!(matches!(
            AccessUrl::parse("ftp://x/y"),
            Err(UrlError::Scheme { .. })
        ));
        assert!(matches!(
            AccessUrl::parse("http://example.org/a"),
            Err(UrlError::InsecureHttp { .. })
        ));
        assert!(matches!(
            AccessUrl::parse("not a url"),
            Err(UrlError::Malformed { .. })
        ));
        assert!(matches!(
            AccessUrl::parse("file://host/a"),
            Err(UrlError::FileHost { .. })
        ));
    }

    #[test]
    fn file_record_round_trips_through_json() {
        let json = r#"{"dcc":"d","local_id":"l","md5":"0123456789abcdef0123456789ABCDEF","size":10,
            "format":"bed","access_url":"file:///tmp/x.bed","sidecars":{"tbi":"file:///tmp/x.bed.gz.tbi"}}"#;
        let rec: FileRecord = serde_json::from_str(json).unwrap();
        assert_eq!(rec.format, Format::Bed);
        assert_eq!(rec.md5.as_str(), "0123456789abcdef0123456789abcdef");
        assert_eq!(rec.sidecars.len(), 1);
        let back: FileRecord = serde_json::from_str(&serde_json::to_string(&rec).unwrap()).unwrap();
        assert_eq!(back, rec);
    }
}
