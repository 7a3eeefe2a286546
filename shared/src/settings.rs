//! Reading configuration from environment variables: every problem is collected, so a process
//! reports all of its bad variables at once before it exits. The source is a plain map, so tests
//! never touch the process environment.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

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

/// Reads variables from a map, remembering every problem.
pub struct EnvReader<'a> {
    vars: &'a BTreeMap<String, String>,
    errors: Vec<VarError>,
}

impl<'a> EnvReader<'a> {
    pub fn new(vars: &'a BTreeMap<String, String>) -> Self {
        Self {
            vars,
            errors: Vec::new(),
        }
    }

    /// The process environment, as a map.
    pub fn process_env() -> BTreeMap<String, String> {
        std::env::vars().collect()
    }

    /// A variable's trimmed value; unset and blank are the same.
    pub fn raw(&self, var: &str) -> Option<&'a str> {
        self.vars
            .get(var)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub fn error(&mut self, var: &'static str, reason: impl Into<String>) {
        self.errors.push(VarError {
            var,
            reason: reason.into(),
        });
    }

    /// Parses a variable with `f`, or `default` when it is unset.
    pub fn parse_with<T>(
        &mut self,
        var: &'static str,
        default: T,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> T
    where
        T: Clone,
    {
        match self.raw(var) {
            None => default,
            Some(raw) => match f(raw) {
                Ok(v) => v,
                Err(reason) => {
                    self.error(var, format!("{raw:?}: {reason}"));
                    default
                }
            },
        }
    }

    /// Parses a variable with [`FromStr`].
    pub fn parse<T>(&mut self, var: &'static str, default: T, expected: &str) -> T
    where
        T: FromStr + Clone,
        T::Err: fmt::Display,
    {
        self.parse_with(var, default, |s| {
            s.parse::<T>()
                .map_err(|e| format!("expected {expected} ({e})"))
        })
    }

    /// A whole number, at least 1.
    pub fn count(&mut self, var: &'static str, default: usize) -> usize {
        self.parse_with(var, default, |s| match s.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err("expected a whole number of at least 1".to_owned()),
        })
    }

    /// A whole number of seconds.
    pub fn seconds(&mut self, var: &'static str, default: Duration) -> Duration {
        self.parse_with(var, default, |s| {
            s.parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| "expected a whole number of seconds".to_owned())
        })
    }

    /// A byte size such as `512M`, `2G` or `1048576`.
    pub fn bytes(&mut self, var: &'static str, default: u64) -> u64 {
        self.parse_with(var, default, parse_bytes)
    }

    /// `true`/`1`/`yes` or `false`/`0`/`no`.
    pub fn flag(&mut self, var: &'static str, default: bool) -> bool {
        self.parse_with(var, default, |s| match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err("expected true or false".into()),
        })
    }

    /// A comma-separated list (blank items dropped); empty when unset.
    pub fn list(&self, var: &str) -> Vec<String> {
        self.raw(var)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn optional(&self, var: &str) -> Option<String> {
        self.raw(var).map(str::to_owned)
    }

    /// Ends reading: `Ok(())` if every variable was good.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(self.errors))
        }
    }
}

/// Parses `512M`, `2G`, `64K` or a plain number of bytes.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| "expected a size such as 512M, 2G or a number of bytes".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_bytes("512M"), Ok(512 << 20));
        assert_eq!(parse_bytes("2g"), Ok(2 << 30));
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("99999999999999999999G").is_err());
    }

    #[test]
    fn every_problem_is_collected() {
        let vars: BTreeMap<String, String> = [("A", "x"), ("B", "y"), ("C", " ")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let mut r = EnvReader::new(&vars);
        assert_eq!(r.parse::<u32>("A", 1, "a number"), 1);
        assert_eq!(
            r.seconds("B", Duration::from_secs(5)),
            Duration::from_secs(5)
        );
        assert_eq!(
            r.seconds("C", Duration::from_secs(7)),
            Duration::from_secs(7),
            "blank is unset"
        );
        let err = r.finish().unwrap_err();
        assert_eq!(err.0.iter().map(|e| e.var).collect::<Vec<_>>(), ["A", "B"]);
        assert!(
            err.to_string()
                .contains("B: \"y\": expected a whole number of seconds")
        );
    }
}
