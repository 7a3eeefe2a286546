//! Artifact keys: relative, `/`-separated paths that cannot escape their store's root.

use std::fmt;

const MAX_LEN: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArtifactKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("artifact key is empty")]
    Empty,
    #[error("artifact key is longer than {MAX_LEN} bytes")]
    TooLong,
    #[error("artifact key {0:?} is absolute; keys are relative to the store's root")]
    Absolute(String),
    #[error("artifact key {0:?} has an empty segment")]
    EmptySegment(String),
    #[error("artifact key {0:?} has a '.' or '..' segment")]
    DotSegment(String),
    #[error("artifact key {0:?} contains a NUL, backslash or control character")]
    BadChar(String),
}

impl ArtifactKey {
    /// Where a file's prepared artifact of `kind` lives (its content-addressed cache key).
    pub fn for_file(
        file: &crate::domain::FileRecord,
        kind: crate::domain::ArtifactKind,
    ) -> Result<Self, KeyError> {
        Self::parse(&crate::domain::cache_key(
            &file.dcc,
            &file.local_id,
            kind,
            file.format.processor(),
            &file.md5,
        ))
    }

    pub fn parse(s: &str) -> Result<Self, KeyError> {
        if s.is_empty() {
            return Err(KeyError::Empty);
        }
        if s.len() > MAX_LEN {
            return Err(KeyError::TooLong);
        }
        if s.chars().any(|c| c == '\0' || c == '\\' || c.is_control()) {
            return Err(KeyError::BadChar(s.to_owned()));
        }
        if s.starts_with('/') {
            return Err(KeyError::Absolute(s.to_owned()));
        }
        for seg in s.split('/') {
            match seg {
                "" => return Err(KeyError::EmptySegment(s.to_owned())),
                "." | ".." => return Err(KeyError::DotSegment(s.to_owned())),
                _ => {}
            }
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl fmt::Display for ArtifactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_relative_paths() {
        for ok in [
            "a",
            "a/b/c",
            "d/l/data/samtools-bam/0123-v1",
            ".hidden/x",
            "a..b/c",
        ] {
            assert_eq!(ArtifactKey::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_escapes_with_a_typed_reason() {
        assert_eq!(ArtifactKey::parse(""), Err(KeyError::Empty));
        assert!(matches!(
            ArtifactKey::parse("/etc/passwd"),
            Err(KeyError::Absolute(_))
        ));
        assert!(matches!(
            ArtifactKey::parse("a/../../etc"),
            Err(KeyError::DotSegment(_))
        ));
        assert!(matches!(
            ArtifactKey::parse(".."),
            Err(KeyError::DotSegment(_))
        ));
        assert!(matches!(
            ArtifactKey::parse("a/./b"),
            Err(KeyError::DotSegment(_))
        ));
        assert!(matches!(
            ArtifactKey::parse("a//b"),
            Err(KeyError::EmptySegment(_))
        ));
        assert!(matches!(
            ArtifactKey::parse("a/"),
            Err(KeyError::EmptySegment(_))
        ));
        assert!(matches!(
            ArtifactKey::parse("a\0b"),
            Err(KeyError::BadChar(_))
        ));
        assert!(matches!(
            ArtifactKey::parse("a\\..\\b"),
            Err(KeyError::BadChar(_))
        ));
        assert!(matches!(
            ArtifactKey::parse("a\nb"),
            Err(KeyError::BadChar(_))
        ));
        assert_eq!(
            ArtifactKey::parse(&"a".repeat(1025)),
            Err(KeyError::TooLong)
        );
    }
}
