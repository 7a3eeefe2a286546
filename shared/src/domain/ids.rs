//! Validated identifiers for the `dcc` and `local_id` of a catalog file.

use std::fmt;

use serde::{Deserialize, Serialize};

const MAX_LEN: usize = 256;

/// A `dcc` or `local_id`: 1 to 256 characters of `[A-Za-z0-9._-]`, and not `.` or `..`.
///
/// Identifiers become path segments of artifact keys, so the two dot-only names that mean
/// something to a filesystem are refused even though the character class allows them.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String)]
pub struct Ident(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentError {
    #[error("identifier is empty")]
    Empty,
    #[error("identifier is {len} characters long; the limit is {MAX_LEN}")]
    TooLong { len: usize },
    #[error("identifier contains {found:?}; only letters, digits, '.', '_' and '-' are allowed")]
    BadChar { found: char },
    #[error("identifier {0:?} is reserved (it names a directory)")]
    Reserved(String),
}

impl Ident {
    pub fn parse(s: &str) -> Result<Self, IdentError> {
        if s.is_empty() {
            return Err(IdentError::Empty);
        }
        if let Some(found) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(IdentError::BadChar { found });
        }
        if s.len() > MAX_LEN {
            return Err(IdentError::TooLong { len: s.len() });
        }
        if s == "." || s == ".." {
            return Err(IdentError::Reserved(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Ident {
    type Error = IdentError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Ident> for String {
    fn from(id: Ident) -> Self {
        id.0
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Ident {
    type Err = IdentError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        for ok in [
            "ENCODE",
            "ENCFF001ABC",
            "a.b_c-d",
            "0",
            ".hidden",
            "x..y",
            &"a".repeat(256),
        ] {
            assert_eq!(Ident::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_everything_else_with_a_reason() {
        assert_eq!(Ident::parse(""), Err(IdentError::Empty));
        assert_eq!(
            Ident::parse(&"a".repeat(257)),
            Err(IdentError::TooLong { len: 257 })
        );
        assert_eq!(Ident::parse("a/b"), Err(IdentError::BadChar { found: '/' }));
        assert_eq!(Ident::parse("a b"), Err(IdentError::BadChar { found: ' ' }));
        assert_eq!(
            Ident::parse("$(touch x)"),
            Err(IdentError::BadChar { found: '$' })
        );
        assert_eq!(
            Ident::parse("a\0"),
            Err(IdentError::BadChar { found: '\0' })
        );
        assert_eq!(Ident::parse("é"), Err(IdentError::BadChar { found: 'é' }));
        assert_eq!(Ident::parse(".."), Err(IdentError::Reserved("..".into())));
        assert_eq!(Ident::parse("."), Err(IdentError::Reserved(".".into())));
    }

    #[test]
    fn deserializing_validates() {
        let err = serde_json::from_str::<Ident>("\"a/../b\"").unwrap_err();
        assert!(err.to_string().contains("'/'"), "{err}");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// The documented rule, written independently of the parser.
        fn allowed(s: &str) -> bool {
            (1..=256).contains(&s.chars().count())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                && s != "."
                && s != ".."
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(10_000))]

            #[test]
            fn identifiers_are_accepted_exactly_by_the_rule(
                s in prop_oneof!["[A-Za-z0-9._-]{0,260}", "\\PC{0,40}", "[.]{1,3}"],
            ) {
                match Ident::parse(&s) {
                    Ok(id) => {
                        prop_assert!(allowed(&s), "{:?} accepted", s);
                        prop_assert_eq!(id.as_str(), s.as_str());
                        let json = serde_json::to_string(&id).unwrap();
                        prop_assert_eq!(serde_json::from_str::<Ident>(&json).unwrap(), id);
                    }
                    Err(e) => {
                        prop_assert!(!allowed(&s), "{:?} refused: {}", s, e);
                        prop_assert!(serde_json::from_value::<Ident>(serde_json::json!(s)).is_err());
                    }
                }
            }
        }
    }
}
