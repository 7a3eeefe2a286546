//! A validated, lowercase hex MD5 digest.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, pattern = "^[0-9a-f]{32}$")]
pub struct Md5(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("md5 {0:?} is not 32 hexadecimal digits")]
pub struct Md5Error(pub String);

impl Md5 {
    /// Parses a hex digest, accepting either case and storing it lowercase.
    pub fn parse(s: &str) -> Result<Self, Md5Error> {
        if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(s.to_ascii_lowercase()))
        } else {
            Err(Md5Error(s.to_owned()))
        }
    }

    /// Formats a raw 16-byte digest.
    pub fn from_digest(bytes: [u8; 16]) -> Self {
        Self(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Md5 {
    type Error = Md5Error;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Md5> for String {
    fn from(m: Md5) -> Self {
        m.0
    }
}

impl fmt::Display for Md5 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_lowercases() {
        let m = Md5::parse("D41D8CD98F00B204E9800998ECF8427E").unwrap();
        assert_eq!(m.as_str(), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(Md5::from_digest([0xab; 16]).as_str(), "ab".repeat(16));
    }

    #[test]
    fn rejects_wrong_length_and_non_hex() {
        assert!(Md5::parse("d41d8cd98f00b204e9800998ecf8427").is_err());
        assert!(Md5::parse("z41d8cd98f00b204e9800998ecf8427e").is_err());
        assert!(Md5::parse("").is_err());
    }
}
