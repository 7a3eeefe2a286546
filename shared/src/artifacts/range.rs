//! Byte ranges in HTTP's three forms, resolved against an object's size.

use std::ops::Range;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GetRange {
    /// `bytes=a-b`, as a half-open range `a..b+1`. The end is clamped to the object's size.
    Bounded(Range<u64>),
    /// `bytes=a-`: from an offset to the end.
    Offset(u64),
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// No byte of the object is in the range (start at or past the end, an empty object, or a
    /// zero-length suffix). HTTP answers this with 416 and `Content-Range: bytes */size`.
    #[error("range {range} is not satisfiable for an object of {size} bytes")]
    NotSatisfiable { range: String, size: u64 },
    /// The range is malformed whatever the size (start after end).
    #[error("range {range} is invalid: its start is after its end")]
    Invalid { range: String },
}

impl GetRange {
    /// Resolves to the half-open byte range to read from an object of `size` bytes.
    pub fn as_range(&self, size: u64) -> Result<Range<u64>, RangeError> {
        let unsatisfiable = || RangeError::NotSatisfiable {
            range: self.to_string(),
            size,
        };
        match *self {
            GetRange::Bounded(ref r) => {
                if r.start >= r.end {
                    return Err(RangeError::Invalid {
                        range: self.to_string(),
                    });
                }
                if r.start >= size {
                    return Err(unsatisfiable());
                }
                Ok(r.start..r.end.min(size))
            }
            GetRange::Offset(o) => {
                if o >= size {
                    return Err(unsatisfiable());
                }
                Ok(o..size)
            }
            GetRange::Suffix(n) => {
                if n == 0 || size == 0 {
                    return Err(unsatisfiable());
                }
                Ok(size.saturating_sub(n)..size)
            }
        }
    }
}

impl std::fmt::Display for GetRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GetRange::Bounded(r) if r.end > r.start => write!(f, "bytes={}-{}", r.start, r.end - 1),
            GetRange::Bounded(r) => write!(f, "bytes={}-{}", r.start, r.end as i128 - 1),
            GetRange::Offset(o) => write!(f, "bytes={o}-"),
            GetRange::Suffix(n) => write!(f, "bytes=-{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_is_clamped_to_the_size() {
        assert_eq!(GetRange::Bounded(0..10).as_range(100), Ok(0..10));
        assert_eq!(GetRange::Bounded(90..200).as_range(100), Ok(90..100));
        assert_eq!(GetRange::Bounded(99..100).as_range(100), Ok(99..100));
    }

    #[test]
    fn start_at_or_past_the_end_is_not_satisfiable() {
        for r in [
            GetRange::Bounded(100..101),
            GetRange::Offset(100),
            GetRange::Offset(1000),
        ] {
            assert!(
                matches!(
                    r.as_range(100),
                    Err(RangeError::NotSatisfiable { size: 100, .. })
                ),
                "{r}"
            );
        }
    }

    #[test]
    fn suffix_takes_the_tail_or_everything() {
        assert_eq!(GetRange::Suffix(10).as_range(100), Ok(90..100));
        assert_eq!(GetRange::Suffix(1000).as_range(100), Ok(0..100));
        assert!(matches!(
            GetRange::Suffix(0).as_range(100),
            Err(RangeError::NotSatisfiable { .. })
        ));
    }

    #[test]
    fn empty_objects_satisfy_no_range() {
        for r in [
            GetRange::Bounded(0..1),
            GetRange::Offset(0),
            GetRange::Suffix(5),
        ] {
            assert!(
                matches!(
                    r.as_range(0),
                    Err(RangeError::NotSatisfiable { size: 0, .. })
                ),
                "{r}"
            );
        }
    }

    #[test]
    fn start_after_end_is_invalid_and_says_so() {
        let err = GetRange::Bounded(std::ops::Range { start: 10, end: 5 })
            .as_range(100)
            .unwrap_err();
        assert!(matches!(err, RangeError::Invalid { .. }));
        assert_eq!(
            err.to_string(),
            "range bytes=10-4 is invalid: its start is after its end"
        );
    }
}
