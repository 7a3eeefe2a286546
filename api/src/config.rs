//! The API's configuration, parsed once from environment variables into typed structs. Every bad
//! variable is reported before the process exits; tests pass their own variables instead of
//! mutating the process environment.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use htsprep_shared::settings::{ConfigError, EnvReader};
use htsprep_shared::storage::StorageConfig;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// `HTSPREP_LISTEN`: the address the HTTP API binds.
    pub listen: SocketAddr,
    pub storage: StorageConfig,
    /// `HTSPREP_ADMIN_TOKEN`: bearer token for admin endpoints; admin endpoints are refused
    /// when unset.
    pub admin_token: Option<String>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("storage", &self.storage)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Config {
    /// Parses the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&EnvReader::process_env())
    }

    pub fn from_vars(vars: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut env = EnvReader::new(vars);
        let listen = env.parse(
            "HTSPREP_LISTEN",
            DEFAULT_LISTEN.parse().expect("valid default"),
            "an address like 127.0.0.1:8080",
        );
        let storage = StorageConfig::read(&mut env);
        let admin_token = env.optional("HTSPREP_ADMIN_TOKEN");
        if admin_token.as_ref().is_some_and(|t| t.len() < 16) {
            env.error("HTSPREP_ADMIN_TOKEN", "must be at least 16 characters");
        }
        env.finish()?;
        Ok(Self {
            listen,
            storage,
            admin_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

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
        assert_eq!(c.storage.data_dir, PathBuf::from("./data"));
        assert_eq!(
            c.storage.database_path(),
            PathBuf::from("./data/htsprep.db")
        );
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
            text.contains("HTSPREP_LISTEN: \"localhost\": expected an address"),
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
