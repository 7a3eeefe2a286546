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

    mod properties {
        use super::*;
        use crate::artifacts::LocalArtifactStore;
        use crate::artifacts::local::MAX_DISK_SEGMENT;
        use proptest::prelude::*;
        use std::path::Component;

        fn allowed(s: &str) -> bool {
            !s.is_empty()
                && s.len() <= MAX_LEN
                && !s.starts_with('/')
                && !s.chars().any(|c| c == '\0' || c == '\\' || c.is_control())
                && s.split('/').all(|seg| !matches!(seg, "" | "." | ".."))
        }

        fn segment() -> impl Strategy<Value = String> {
            prop_oneof![
                "[A-Za-z0-9._-]{1,256}",
                Just("..".to_owned()),
                Just(".".to_owned()),
                Just(String::new()),
                "\\PC{1,12}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(10_000))]

            /// A key is accepted exactly when the rule allows it, and an accepted key's path in
            /// the local store stays under the store's root, one normal component per segment,
            /// each short enough for a file name.
            #[test]
            fn keys_never_escape_their_root(
                segs in prop::collection::vec(segment(), 1..6),
                lead in prop_oneof![Just(""), Just("/")],
            ) {
                let s = format!("{lead}{}", segs.join("/"));
                static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
                let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
                let store = LocalArtifactStore::open(dir.path()).unwrap();
                let root = store.path_of(&ArtifactKey::parse("x").unwrap());
                let root = root.parent().unwrap();
                match ArtifactKey::parse(&s) {
                    Ok(key) => {
                        prop_assert!(allowed(&s), "{:?} accepted", s);
                        let path = store.path_of(&key);
                        let rest = path.strip_prefix(root).unwrap();
                        let parts: Vec<Component> = rest.components().collect();
                        prop_assert_eq!(parts.len(), key.segments().count());
                        for c in parts {
                            match c {
                                Component::Normal(n) => prop_assert!(n.len() <= MAX_DISK_SEGMENT + 70),
                                other => return Err(TestCaseError::fail(format!("{other:?} in {s:?}"))),
                            }
                        }
                    }
                    Err(_) => prop_assert!(!allowed(&s), "{:?} refused", s),
                }
            }

            /// Distinct long segments stay distinct on disk.
            #[test]
            fn long_segments_map_to_distinct_names(a in "[a-z]{201,256}", b in "[a-z]{201,256}") {
                use crate::artifacts::local::disk_segment;
                prop_assume!(a != b);
                prop_assert_ne!(disk_segment(&a), disk_segment(&b));
                prop_assert!(disk_segment(&a).len() <= 255);
            }
        }
    }
}
