//! The `Range` request header (RFC 9110 §14.2): read with `http-range-header`, and planned
//! against the object's size. A unit other than `bytes` is ignored (the whole representation is
//! sent), overlapping and nearby ranges are coalesced (§14.3), and a multipart answer is never
//! much larger than the representation (the caller sends the whole of it instead).

use std::num::NonZeroUsize;
use std::ops::Range;

use htsprep_shared::artifacts::GetRange;
use http_range_header::{RangeUnsatisfiableError, SyntacticallyCorrectRange};

/// More ranges than this in one request are refused (a cheap denial-of-service guard).
pub const MAX_RANGES: usize = 32;

/// Ranges closer than this are served as one: a gap this small costs less than the part
/// headers a separate part would need.
pub const COALESCE_GAP: u64 = 80;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeHeaderError {
    #[error(
        "Range header {header:?} is not a valid byte range ({reason}); expected bytes=START-END, bytes=START- or bytes=-SUFFIX"
    )]
    Malformed { header: String, reason: String },
    #[error(
        "Range header asks for more than {MAX_RANGES} ranges; at most {MAX_RANGES} are served in one request"
    )]
    TooMany,
}

/// Parses a `Range` value into byte ranges, in request order. `Ok(None)` when its unit is not
/// `bytes`: such a header is ignored, as RFC 9110 requires.
pub fn parse_range_header(value: &str) -> Result<Option<Vec<GetRange>>, RangeHeaderError> {
    let unit = value.split_once('=').map_or(value, |(unit, _)| unit);
    if !unit.eq_ignore_ascii_case("bytes") {
        return Ok(None);
    }
    let max = NonZeroUsize::new(MAX_RANGES).expect("nonzero");
    let parsed =
        http_range_header::parse_range_header_with_max_ranges(value, max).map_err(|e| match e {
            RangeUnsatisfiableError::Rejected(http_range_header::RangeRejected::TooMany) => {
                RangeHeaderError::TooMany
            }
            other => RangeHeaderError::Malformed {
                header: value.chars().take(200).collect(),
                reason: other.to_string(),
            },
        })?;
    Ok(Some(
        parsed
            .into_ranges()
            .into_iter()
            .map(|r| match r {
                SyntacticallyCorrectRange::FromStart(a) => GetRange::Offset(a),
                SyntacticallyCorrectRange::FromLast(n) => GetRange::Suffix(n),
                SyntacticallyCorrectRange::Indexed(a, b) => {
                    GetRange::Bounded(a..b.saturating_add(1))
                }
            })
            .collect(),
    ))
}

/// What to send for a set of ranges against an object of a known size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// No range overlaps the object: 416.
    Unsatisfiable,
    /// Sorted, disjoint ranges more than [`COALESCE_GAP`] apart: one part (a plain 206) or a
    /// multipart answer.
    Parts(Vec<Range<u64>>),
}

/// Resolves `ranges` against `size`, drops the ones that miss the object, and merges the rest
/// where they overlap or lie within [`COALESCE_GAP`] of each other.
pub fn plan(ranges: &[GetRange], size: u64) -> Plan {
    let mut resolved: Vec<Range<u64>> = ranges
        .iter()
        // A range that misses the object (or is empty) is dropped.
        .filter_map(|r| r.as_range(size).ok())
        .collect();
    if resolved.is_empty() {
        return Plan::Unsatisfiable;
    }
    resolved.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(resolved.len());
    for r in resolved {
        match merged.last_mut() {
            Some(last) if r.start <= last.end.saturating_add(COALESCE_GAP) => {
                last.end = last.end.max(r.end);
            }
            _ => merged.push(r),
        }
    }
    Plan::Parts(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A plan of a single part.
    fn one(r: Range<u64>) -> Plan {
        Plan::Parts(std::iter::once(r).collect())
    }

    fn parsed(v: &str) -> Vec<GetRange> {
        parse_range_header(v).unwrap().unwrap()
    }

    #[test]
    fn the_three_forms() {
        assert_eq!(parsed("bytes=0-99"), vec![GetRange::Bounded(0..100)]);
        assert_eq!(parsed("bytes=100-"), vec![GetRange::Offset(100)]);
        assert_eq!(parsed("bytes=-500"), vec![GetRange::Suffix(500)]);
        assert_eq!(parsed("Bytes=5-5"), vec![GetRange::Bounded(5..6)]);
    }

    #[test]
    fn several_ranges_keep_their_order() {
        assert_eq!(
            parsed("bytes=10-19, 0-4,-3"),
            vec![
                GetRange::Bounded(10..20),
                GetRange::Bounded(0..5),
                GetRange::Suffix(3)
            ]
        );
    }

    #[test]
    fn other_units_are_ignored() {
        for v in ["items=0-1", "none", "pages=1-2", "bytesx=0-1", ""] {
            assert_eq!(parse_range_header(v), Ok(None), "{v:?}");
        }
    }

    #[test]
    fn malformed_byte_ranges_are_refused_with_a_reason() {
        for bad in [
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=5-3",
            "bytes=1-2-3",
            "bytes=+1-2",
        ] {
            let err = parse_range_header(bad).unwrap_err();
            assert!(
                matches!(err, RangeHeaderError::Malformed { .. }),
                "{bad:?}: {err:?}"
            );
            assert!(err.to_string().contains(bad), "{err}");
        }
        let many = format!("bytes={}", vec!["0-1"; 33].join(","));
        assert_eq!(parse_range_header(&many), Err(RangeHeaderError::TooMany));
        let most = format!("bytes={}", vec!["0-1"; 32].join(","));
        assert_eq!(parsed(&most).len(), 32);
    }

    #[test]
    fn overlapping_and_adjacent_ranges_are_coalesced() {
        let r = parsed(&format!("bytes={}", vec!["0-"; 32].join(",")));
        assert_eq!(plan(&r, 7795), one(0..7795));
        assert_eq!(
            plan(&parsed("bytes=500-599,0-99,100-199,50-150"), 10_000),
            Plan::Parts(vec![0..200, 500..600])
        );
        // Within the gap: one part; beyond it: two.
        assert_eq!(plan(&parsed("bytes=0-9,60-69"), 1000), one(0..70));
        assert_eq!(
            plan(&parsed("bytes=0-9,200-209"), 1000),
            Plan::Parts(vec![0..10, 200..210])
        );
    }

    #[test]
    fn ranges_missing_the_object_are_dropped() {
        assert_eq!(
            plan(&parsed("bytes=100-,200-300"), 100),
            Plan::Unsatisfiable
        );
        assert_eq!(plan(&parsed("bytes=100-,0-9"), 100), one(0..10));
        assert_eq!(plan(&parsed("bytes=-5"), 0), Plan::Unsatisfiable);
    }

    fn spec() -> impl Strategy<Value = (String, GetRange)> {
        prop_oneof![
            (0u64..5000, 0u64..5000).prop_map(|(a, len)| (
                format!("{a}-{}", a + len),
                GetRange::Bounded(a..a + len + 1)
            )),
            (0u64..5000).prop_map(|a| (format!("{a}-"), GetRange::Offset(a))),
            (1u64..5000).prop_map(|n| (format!("-{n}"), GetRange::Suffix(n))),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn well_formed_headers_parse_to_what_they_say(
            specs in prop::collection::vec(spec(), 1..=MAX_RANGES),
            sep in prop_oneof![Just(","), Just(", "), Just(" ,"), Just(",\t")],
            unit in prop_oneof![Just("bytes"), Just("BYTES"), Just("Bytes")],
        ) {
            let text: Vec<&str> = specs.iter().map(|(s, _)| s.as_str()).collect();
            let header = format!("{unit}={}", text.join(sep));
            let want: Vec<GetRange> = specs.into_iter().map(|(_, r)| r).collect();
            prop_assert_eq!(parse_range_header(&header), Ok(Some(want)));
        }

        #[test]
        fn any_header_is_parsed_refused_or_ignored_without_panicking(value in "\\PC{0,80}") {
            match parse_range_header(&value) {
                Ok(None) => prop_assert!(
                    !value.split_once('=').is_some_and(|(u, _)| u.eq_ignore_ascii_case("bytes"))
                ),
                Ok(Some(r)) => prop_assert!(!r.is_empty() && r.len() <= MAX_RANGES),
                Err(_) => {}
            }
        }

        #[test]
        fn a_plan_covers_exactly_the_bytes_asked_and_never_more_than_the_object(
            specs in prop::collection::vec(spec(), 1..=MAX_RANGES),
            size in 0u64..6000,
        ) {
            let ranges: Vec<GetRange> = specs.into_iter().map(|(_, r)| r).collect();
            let wanted: Vec<Range<u64>> =
                ranges.iter().filter_map(|r| r.as_range(size).ok()).collect();
            match plan(&ranges, size) {
                Plan::Unsatisfiable => prop_assert!(wanted.is_empty()),
                Plan::Parts(parts) => {
                    prop_assert!(!parts.is_empty());
                    // Sorted, disjoint, further apart than the gap, inside the object.
                    for w in parts.windows(2) {
                        prop_assert!(w[0].end + COALESCE_GAP < w[1].start);
                    }
                    prop_assert!(parts.iter().all(|p| p.start < p.end && p.end <= size));
                    let sent: u64 = parts.iter().map(|p| p.end - p.start).sum();
                    prop_assert!(sent <= size);
                    // Every asked byte is sent; every part starts and ends on asked bytes.
                    for w in &wanted {
                        prop_assert!(parts.iter().any(|p| p.start <= w.start && w.end <= p.end));
                    }
                    for p in &parts {
                        prop_assert!(wanted.iter().any(|w| w.start == p.start));
                        prop_assert!(wanted.iter().any(|w| w.end == p.end));
                    }
                }
            }
        }
    }
}
