//! The one policy for requests to sources: the API's upstream reads (passthrough, `?raw=true`,
//! sidecars) and the worker's downloads (HTTP, DRS, `file://`) all go through a [`SourceClient`]
//! built here.
//!
//! - Schemes: `https`; plain `http` only to loopback hosts; `file://` only under
//!   `HTSPREP_FILE_ROOTS` (symlinks resolved first).
//! - Addresses: link-local (169.254.0.0/16, fe80::/10) and the instance/task metadata addresses
//!   (169.254.169.254, 169.254.170.2, fd00:ec2::254) are always refused, as are unspecified,
//!   broadcast and multicast ones; private ranges (10/8, 172.16/12, 192.168/16, 100.64/10,
//!   fc00::/7) only with `HTSPREP_ALLOW_PRIVATE_SOURCES=true`; loopback is allowed.
//! - Every URL is checked before its request is built, every redirect target with the same
//!   rules, and every address a host name resolves to before a connection is made (the client
//!   connects only to addresses that passed), so no request reaches a refused address.
//! - Connect and read timeouts on every request; no proxy from the environment.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::settings::EnvReader;

/// Why a source request was refused before anything was sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error(
        "refused {url}: scheme {scheme:?} is not allowed for sources (https, loopback http, file under HTSPREP_FILE_ROOTS)"
    )]
    Scheme { url: String, scheme: String },
    #[error("refused {url}: plain http is allowed only to loopback hosts; use https")]
    InsecureHttp { url: String },
    #[error("refused {url}: {ip} is {class}; no connection was made")]
    Address {
        url: String,
        ip: IpAddr,
        class: &'static str,
    },
    #[error(
        "refused {url}: {ip} is a private address; set HTSPREP_ALLOW_PRIVATE_SOURCES=true to allow private sources"
    )]
    Private { url: String, ip: IpAddr },
    #[error("refused {url}: {reason}")]
    File { url: String, reason: String },
}

/// What the policy allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourcePolicy {
    /// `HTSPREP_ALLOW_PRIVATE_SOURCES` (default false).
    pub allow_private: bool,
    /// `HTSPREP_FILE_ROOTS`: comma-separated directories `file://` sources may live under
    /// (default none: `file://` sources are refused).
    pub file_roots: Vec<PathBuf>,
    /// `HTSPREP_SOURCE_CONNECT_TIMEOUT_SECONDS` (default 10).
    pub connect_timeout: Duration,
    /// `HTSPREP_SOURCE_READ_TIMEOUT_SECONDS`: the longest silence while reading (default 60).
    pub read_timeout: Duration,
}

impl Default for SourcePolicy {
    fn default() -> Self {
        Self {
            allow_private: false,
            file_roots: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// How an address is classed, when the policy refuses it whatever the configuration.
fn always_refused(ip: IpAddr) -> Option<&'static str> {
    const METADATA: [IpAddr; 3] = [
        IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
        IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
    ];
    if METADATA.contains(&ip) {
        return Some("an instance or task metadata address");
    }
    match ip {
        IpAddr::V4(v4) => {
            if v4.is_link_local() {
                Some("a link-local address")
            } else if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() {
                Some("not a unicast address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if (v6.segments()[0] & 0xffc0) == 0xfe80 {
                Some("a link-local address")
            } else if v6.is_unspecified() || v6.is_multicast() {
                Some("not a unicast address")
            } else {
                None
            }
        }
    }
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private() || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// An IPv4-mapped IPv6 address is judged as the IPv4 address it carries.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => canonical(IpAddr::V6(ip)).is_loopback(),
        None => false,
    }
}

/// A URL without its query string or password (signed URLs carry credentials there).
pub fn redact(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    let _ = u.set_password(None);
    u.to_string()
}

impl SourcePolicy {
    /// Reads the policy's variables (problems are collected by `env`).
    pub fn read(env: &mut EnvReader<'_>) -> Self {
        let defaults = Self::default();
        Self {
            allow_private: env.flag("HTSPREP_ALLOW_PRIVATE_SOURCES", false),
            file_roots: env
                .list("HTSPREP_FILE_ROOTS")
                .into_iter()
                .map(PathBuf::from)
                .collect(),
            connect_timeout: env.seconds(
                "HTSPREP_SOURCE_CONNECT_TIMEOUT_SECONDS",
                defaults.connect_timeout,
            ),
            read_timeout: env.seconds("HTSPREP_SOURCE_READ_TIMEOUT_SECONDS", defaults.read_timeout),
        }
    }

    /// Whether a connection to `ip` is allowed; the error says why not.
    pub fn check_ip(&self, url: &Url, ip: IpAddr) -> Result<(), Refused> {
        let ip = canonical(ip);
        if let Some(class) = always_refused(ip) {
            return Err(Refused::Address {
                url: redact(url),
                ip,
                class,
            });
        }
        if is_private(ip) && !self.allow_private {
            return Err(Refused::Private {
                url: redact(url),
                ip,
            });
        }
        Ok(())
    }

    /// Whether a request to `url` may be made: its scheme, and its host when it is an address.
    /// Host names are checked again, address by address, when they are resolved.
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        if !matches!(url.scheme(), "https" | "http") {
            return Err(Refused::Scheme {
                url: redact(url),
                scheme: url.scheme().to_owned(),
            });
        }
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check_ip(url, IpAddr::V4(ip))?,
            Some(url::Host::Ipv6(ip)) => self.check_ip(url, IpAddr::V6(ip))?,
            Some(url::Host::Domain(_)) => {}
            None => {
                return Err(Refused::Scheme {
                    url: redact(url),
                    scheme: url.scheme().to_owned(),
                });
            }
        }
        if url.scheme() == "http" && !is_loopback_host(url) {
            return Err(Refused::InsecureHttp { url: redact(url) });
        }
        Ok(())
    }

    /// The local path of a `file://` source, if it lies under one of the file roots once every
    /// symlink is resolved. A missing file is reported as such by the caller's open.
    pub fn check_file(&self, url: &Url) -> Result<PathBuf, Refused> {
        let refuse = |reason: String| Refused::File {
            url: url.to_string(),
            reason,
        };
        let path = url
            .to_file_path()
            .map_err(|()| refuse("not an absolute local path".into()))?;
        if self.file_roots.is_empty() {
            return Err(refuse(
                "file:// sources are off; set HTSPREP_FILE_ROOTS to the directories they may be read from".into(),
            ));
        }
        // A path that does not exist yet cannot be canonicalized; its parent decides.
        let real = std::fs::canonicalize(&path).or_else(|_| {
            let parent = path.parent().unwrap_or(Path::new("/"));
            std::fs::canonicalize(parent).map(|p| p.join(path.file_name().unwrap_or_default()))
        });
        let real = real.map_err(|e| refuse(format!("its directory cannot be read: {e}")))?;
        let under = self.file_roots.iter().any(|root| {
            std::fs::canonicalize(root)
                .map(|r| real.starts_with(r))
                .unwrap_or(false)
        });
        if under {
            Ok(real)
        } else {
            Err(refuse(format!(
                "{} is outside HTSPREP_FILE_ROOTS ({})",
                real.display(),
                self.file_roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }

    /// An HTTP client that follows this policy (see [`SourceClient`]).
    pub fn client(self: &Arc<Self>, user_agent: &str) -> Result<SourceClient, reqwest::Error> {
        let redirects = Arc::clone(self);
        let http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.read_timeout)
            .user_agent(user_agent)
            .no_proxy()
            .dns_resolver(Arc::new(Resolver {
                policy: Arc::clone(self),
            }))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 10 {
                    return attempt.error("more than 10 redirects");
                }
                match redirects.check_url(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(refused) => attempt.error(refused),
                }
            }))
            .build()?;
        Ok(SourceClient {
            http,
            policy: Arc::clone(self),
        })
    }
}

/// Resolves host names and keeps only the addresses the policy allows; a name with none left
/// is refused before any connection.
struct Resolver {
    policy: Arc<SourcePolicy>,
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let url = Url::parse(&format!("https://{host}/")).map_err(Box::new)?;
            let (allowed, refused) = split_addresses(&policy, &url, found);
            match (allowed.is_empty(), refused) {
                (false, _) => Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs),
                (true, Some(why)) => Err(Box::new(why) as Box<dyn std::error::Error + Send + Sync>),
                (true, None) => Err(format!("{host} did not resolve to any address").into()),
            }
        })
    }
}

/// The addresses `url`'s host resolved to that the policy allows, and the reason for the first
/// one it refused.
fn split_addresses(
    policy: &SourcePolicy,
    url: &Url,
    found: Vec<SocketAddr>,
) -> (Vec<SocketAddr>, Option<Refused>) {
    let mut refused = None;
    let allowed = found
        .into_iter()
        .filter(|a| match policy.check_ip(url, a.ip()) {
            Ok(()) => true,
            Err(why) => {
                refused.get_or_insert(why);
                false
            }
        })
        .collect();
    (allowed, refused)
}

/// The HTTP client for sources: every request's URL is checked before it is built.
#[derive(Clone, Debug)]
pub struct SourceClient {
    http: reqwest::Client,
    policy: Arc<SourcePolicy>,
}

impl SourceClient {
    /// A request to `url`, or why the policy refuses it.
    pub fn request(
        &self,
        method: reqwest::Method,
        url: &Url,
    ) -> Result<reqwest::RequestBuilder, Refused> {
        self.policy.check_url(url)?;
        Ok(self.http.request(method, url.clone()))
    }

    pub fn policy(&self) -> &SourcePolicy {
        &self.policy
    }
}

/// The policy's refusal somewhere in an error's source chain (a refused redirect or resolution
/// surfaces inside a `reqwest::Error`).
pub fn refusal_in<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Some(r);
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn metadata_and_link_local_are_refused_whatever_the_settings() {
        let open = SourcePolicy {
            allow_private: true,
            ..SourcePolicy::default()
        };
        for bad in [
            "https://169.254.169.254/latest/meta-data/",
            "http://169.254.170.2/v2/credentials",
            "https://[fd00:ec2::254]/",
            "https://169.254.1.1/",
            "https://[fe80::1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://0.0.0.0/",
            "https://224.0.0.1/",
            "https://[ff02::1]/",
        ] {
            let err = open.check_url(&url(bad)).unwrap_err();
            assert!(matches!(err, Refused::Address { .. }), "{bad}: {err:?}");
        }
        let err = open
            .check_url(&url("https://169.254.169.254/x?sig=secret"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "refused https://169.254.169.254/x: 169.254.169.254 is an instance or task metadata \
             address; no connection was made"
        );
    }

    #[test]
    fn private_ranges_need_the_switch() {
        let closed = SourcePolicy::default();
        let open = SourcePolicy {
            allow_private: true,
            ..SourcePolicy::default()
        };
        for private in [
            "https://10.0.3.7/a.bam",
            "https://172.16.0.1/a",
            "https://192.168.1.10/a",
            "https://100.64.0.1/a",
            "https://[fd12::1]/a",
            "https://[::ffff:10.1.2.3]/a",
        ] {
            assert!(
                matches!(
                    closed.check_url(&url(private)),
                    Err(Refused::Private { .. })
                ),
                "{private}"
            );
            assert_eq!(open.check_url(&url(private)), Ok(()), "{private}");
        }
    }

    #[test]
    fn schemes_and_plain_http() {
        let p = SourcePolicy::default();
        for ok in [
            "https://example.org/a.bam",
            "https://8.8.8.8/a",
            "http://127.0.0.1:9000/a",
            "http://127.3.4.5/a",
            "http://localhost/a",
            "http://[::1]/a",
        ] {
            assert_eq!(p.check_url(&url(ok)), Ok(()), "{ok}");
        }
        assert!(matches!(
            p.check_url(&url("http://example.org/a")),
            Err(Refused::InsecureHttp { .. })
        ));
        for s in ["ftp://x/y", "file:///etc/passwd", "gopher://x/"] {
            assert!(
                matches!(p.check_url(&url(s)), Err(Refused::Scheme { .. })),
                "{s}"
            );
        }
    }

    #[test]
    fn resolved_addresses_are_filtered_before_connecting() {
        let p = SourcePolicy::default();
        let u = url("https://origin.example/a");
        let addrs: Vec<SocketAddr> = ["93.184.216.34:0", "169.254.169.254:0", "10.0.0.1:0"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let (allowed, why) = split_addresses(&p, &u, addrs.clone());
        assert_eq!(allowed, vec![addrs[0]]);
        assert!(matches!(why, Some(Refused::Address { .. })));
        let (allowed, why) = split_addresses(&p, &u, addrs[1..].to_vec());
        assert!(allowed.is_empty());
        assert!(why.unwrap().to_string().contains("metadata"));
    }

    #[test]
    fn file_sources_only_under_their_roots() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("a.bed"), "x").unwrap();
        let outside = dir.path().join("secret");
        std::fs::write(&outside, "s").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        let file_url = |p: &Path| Url::from_file_path(p).unwrap();

        let off = SourcePolicy::default();
        let err = off.check_file(&file_url(&root.join("a.bed"))).unwrap_err();
        assert!(err.to_string().contains("set HTSPREP_FILE_ROOTS"), "{err}");

        let p = SourcePolicy {
            file_roots: vec![root.clone()],
            ..SourcePolicy::default()
        };
        assert_eq!(
            p.check_file(&file_url(&root.join("a.bed"))).unwrap(),
            std::fs::canonicalize(root.join("a.bed")).unwrap()
        );
        for escape in [outside.clone(), root.join("link"), root.join("../secret")] {
            let err = p.check_file(&file_url(&escape)).unwrap_err();
            assert!(
                err.to_string().contains("outside HTSPREP_FILE_ROOTS"),
                "{err}"
            );
        }
        // Missing files under a root pass; their open says they are missing.
        assert!(p.check_file(&file_url(&root.join("missing.bed"))).is_ok());
    }

    #[test]
    fn the_policy_is_read_from_the_environment() {
        let vars: std::collections::BTreeMap<String, String> = [
            ("HTSPREP_ALLOW_PRIVATE_SOURCES", "true"),
            ("HTSPREP_FILE_ROOTS", "/data, /srv/genomes"),
            ("HTSPREP_SOURCE_READ_TIMEOUT_SECONDS", "5"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let mut env = EnvReader::new(&vars);
        let p = SourcePolicy::read(&mut env);
        env.finish().unwrap();
        assert!(p.allow_private);
        assert_eq!(
            p.file_roots,
            vec![PathBuf::from("/data"), PathBuf::from("/srv/genomes")]
        );
        assert_eq!(p.read_timeout, Duration::from_secs(5));
        assert_eq!(p.connect_timeout, Duration::from_secs(10));
    }
}

#[cfg(test)]
mod redirect_tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A loopback origin that answers every request with a redirect to `location`.
    async fn redirecting_origin(location: &'static str) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = s.write_all(resp.as_bytes()).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_redirect_to_a_refused_address_is_refused_before_connecting() {
        let client = Arc::new(SourcePolicy::default()).client("test").unwrap();
        for (location, want) in [
            ("http://169.254.169.254/latest/meta-data/", "metadata"),
            ("https://10.1.2.3/a.bam", "HTSPREP_ALLOW_PRIVATE_SOURCES"),
            ("http://example.org/a.bam", "plain http"),
        ] {
            let origin = redirecting_origin(location).await;
            let u = Url::parse(&format!("http://{origin}/a.bam")).unwrap();
            let err = client
                .request(reqwest::Method::GET, &u)
                .unwrap()
                .send()
                .await
                .unwrap_err();
            let refused = refusal_in(&err).unwrap_or_else(|| panic!("{location}: {err:?}"));
            assert!(refused.to_string().contains(want), "{location}: {refused}");
        }
        // A redirect off HTTP is never followed: the caller sees the 302 itself.
        let origin = redirecting_origin("file:///etc/passwd").await;
        let u = Url::parse(&format!("http://{origin}/a.bam")).unwrap();
        let resp = client
            .request(reqwest::Method::GET, &u)
            .unwrap()
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::FOUND);
    }
}
