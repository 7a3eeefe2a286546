//! The `Range` request header (RFC 9110 §14.2), parsed into the artifact store's typed ranges.
//! Whether a parsed range is satisfiable is decided against the object's size elsewhere; this
//! module only reads the header.

use htsprep_shared::artifacts::GetRange;

/// More ranges than this in one request are refused (a cheap denial-of-service guard).
pub const MAX_RANGES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeHeaderError {
    #[error(
        "Range header {0:?} is not a byte range; expected bytes=START-END, bytes=START- or bytes=-SUFFIX"
    )]
    Malformed(String),
    #[error("Range header asks for {0} ranges; at most {MAX_RANGES} are served in one request")]
    TooMany(usize),
}

/// Parses `bytes=...` into one or more ranges, in request order.
pub fn parse_range_header(value: &str) -> Result<Vec<GetRange>, RangeHeaderError> {
    let malformed = || RangeHeaderError::Malformed(value.chars().take(200).collect());
    let (unit, set) = value.split_once('=').ok_or_else(malformed)?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Err(malformed());
    }
    let specs: Vec<&str> = set
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if specs.is_empty() {
        return Err(malformed());
    }
    if specs.len() > MAX_RANGES {
        return Err(RangeHeaderError::TooMany(specs.len()));
    }
    let num = |s: &str| -> Result<u64, RangeHeaderError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        s.parse::<u64>().map_err(|_| malformed())
    };
    specs
        .into_iter()
        .map(|spec| {
            let (first, last) = spec.split_once('-').ok_or_else(malformed)?;
            let (first, last) = (first.trim(), last.trim());
            match (first.is_empty(), last.is_empty()) {
                (true, true) => Err(malformed()),
                (true, false) => Ok(GetRange::Suffix(num(last)?)),
                (false, true) => Ok(GetRange::Offset(num(first)?)),
                (false, false) => {
                    let (a, b) = (num(first)?, num(last)?);
                    if b < a {
                        return Err(malformed());
                    }
                    Ok(GetRange::Bounded(a..b.saturating_add(1)))
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms() {
        assert_eq!(
            parse_range_header("bytes=0-99"),
            Ok(vec![GetRange::Bounded(0..100)])
        );
        assert_eq!(
            parse_range_header("bytes=100-"),
            Ok(vec![GetRange::Offset(100)])
        );
        assert_eq!(
            parse_range_header("bytes=-500"),
            Ok(vec![GetRange::Suffix(500)])
        );
        assert_eq!(
            parse_range_header("Bytes = 5-5"),
            Ok(vec![GetRange::Bounded(5..6)])
        );
    }

    #[test]
    fn several_ranges_keep_their_order() {
        assert_eq!(
            parse_range_header("bytes=10-19, 0-4,-3"),
            Ok(vec![
                GetRange::Bounded(10..20),
                GetRange::Bounded(0..5),
                GetRange::Suffix(3)
            ])
        );
    }

    #[test]
    fn malformed_headers_are_refused_with_a_reason() {
        for bad in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=5-3",
            "items=0-1",
            "bytes=1-2-3",
            "bytes=+1-2",
            "bytes=99999999999999999999999-",
        ] {
            let err = parse_range_header(bad).unwrap_err();
            assert!(
                matches!(err, RangeHeaderError::Malformed(_)),
                "{bad:?}: {err:?}"
            );
        }
        assert!(parse_range_header("bytes=0-1").is_ok());
        let many = format!("bytes={}", vec!["0-1"; 33].join(","));
        assert_eq!(
            parse_range_header(&many),
            Err(RangeHeaderError::TooMany(33))
        );
    }
}
