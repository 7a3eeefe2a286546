//! Configuration, parsed once from environment variables into typed structs. Every bad variable
//! is reported before the process exits; tests pass their own variables instead of mutating the
//! process environment.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./data";

#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// `HTSPREP_LISTEN`: the address the HTTP API binds.
    pub listen: SocketAddr,
    /// `HTSPREP_DATA_DIR`: the embedded job store, catalog and local artifacts.
    pub data_dir: PathBuf,
    /// `HTSPREP_ADMIN_TOKEN`: bearer token for admin endpoints; admin endpoints are refused
    /// when unset.
    pub admin_token: Option<String>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// One bad variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VarError {
    pub var: &'static str,
    pub reason: String,
}

/// Every bad variable found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError(pub Vec<VarError>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} problem(s)):", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  {}: {}", e.var, e.reason)?;
        }
        Ok(())
    }
}

/// Reads variables, remembering every problem.
struct Vars<'a> {
    vars: &'a BTreeMap<String, String>,
    errors: Vec<VarError>,
}

impl Vars<'_> {
    fn raw(&self, var: &'static str) -> Option<&str> {
        self.vars
            .get(var)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    fn parse<T>(
        &mut self,
        var: &'static str,
        default: &str,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let raw = self.raw(var).unwrap_or(default).trim().to_owned();
        match f(&raw) {
            Ok(v) => Some(v),
            Err(reason) => {
                self.errors.push(VarError {
                    var,
                    reason: format!("{raw:?}: {reason}"),
                });
                None
            }
        }
    }
}

impl Config {
    /// Parses the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&std::env::vars().collect())
    }

    pub fn from_vars(vars: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut v = Vars {
            vars,
            errors: Vec::new(),
        };
        let listen = v.parse("HTSPREP_LISTEN", DEFAULT_LISTEN, |s| {
            s.parse::<SocketAddr>()
                .map_err(|e| format!("not an address like 127.0.0.1:8080 ({e})"))
        });
        let data_dir = v.parse("HTSPREP_DATA_DIR", DEFAULT_DATA_DIR, |s| {
            Ok(PathBuf::from(s))
        });
        let admin_token = match v.raw("HTSPREP_ADMIN_TOKEN") {
            None => None,
            Some(t) if t.len() < 16 => {
                v.errors.push(VarError {
                    var: "HTSPREP_ADMIN_TOKEN",
                    reason: "must be at least 16 characters".into(),
                });
                None
            }
            Some(t) => Some(t.to_owned()),
        };
        if !v.errors.is_empty() {
            return Err(ConfigError(v.errors));
        }
        Ok(Self {
            listen: listen.expect("checked"),
            data_dir: data_dir.expect("checked"),
            admin_token,
        })
    }

    /// The embedded SQLite database (job store and catalog).
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("htsprep.db")
    }

    /// The local artifact directory.
    pub fn artifacts_dir(&self) -> PathBuf {
        self.data_dir.join("artifacts")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn nothing_set_means_embedded_defaults() {
        let c = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(c.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.database_path(), PathBuf::from("./data/htsprep.db"));
        assert!(c.admin_token.is_none());
    }

    #[test]
    fn every_bad_variable_is_reported_at_once() {
        let err = Config::from_vars(&vars(&[
            ("HTSPREP_LISTEN", "localhost"),
            ("HTSPREP_ADMIN_TOKEN", "short"),
        ]))
        .unwrap_err();
        let vars: Vec<_> = err.0.iter().map(|e| e.var).collect();
        assert_eq!(vars, ["HTSPREP_LISTEN", "HTSPREP_ADMIN_TOKEN"]);
        let text = err.to_string();
        assert!(
            text.contains("HTSPREP_LISTEN: \"localhost\": not an address"),
            "{text}"
        );
    }

    #[test]
    fn the_admin_token_is_never_printed() {
        let c =
            Config::from_vars(&vars(&[("HTSPREP_ADMIN_TOKEN", "s3cret-s3cret-s3cret")])).unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
