//! An htsget 1.3 request's query: what to return, checked against the spec's rules before any
//! file is looked at.

use std::collections::HashMap;

use noodles_core::Position;
use noodles_core::region::Interval;

use super::error::{HtsgetError, Kind};

/// The two htsget endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Reads,
    Variants,
}

impl Endpoint {
    /// The one format each endpoint serves (CRAM and BCF are not prepared).
    pub fn format(self) -> &'static str {
        match self {
            Endpoint::Reads => "BAM",
            Endpoint::Variants => "VCF",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Reads => "reads",
            Endpoint::Variants => "variants",
        }
    }
}

/// Which records the ticket covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Select {
    /// `class=header`: the header alone.
    Header,
    /// No `referenceName`: every record.
    All,
    /// `referenceName=*`: the unplaced unmapped reads.
    Unplaced,
    /// One reference sequence, all of it or the interval asked for.
    Region { name: String, interval: Interval },
    /// A region of no bases (`start` = `end`): the header alone.
    Empty { name: String },
}

#[derive(Debug, PartialEq, Eq)]
pub struct TicketQuery {
    pub select: Select,
}

fn coordinate(q: &HashMap<String, String>, name: &str) -> Result<Option<u32>, HtsgetError> {
    q.get(name)
        .map(|v| {
            v.parse::<u32>().map_err(|_| {
                HtsgetError::spec(
                    Kind::InvalidInput,
                    format!("{name}={v:?} is not a whole number from 0 to 4294967295"),
                )
            })
        })
        .transpose()
}

/// Reads the query of a ticket request to `endpoint` (`fields`, `tags` and `notags` are accepted
/// and have no effect: every field is returned, as service-info says).
pub fn parse(endpoint: Endpoint, q: &HashMap<String, String>) -> Result<TicketQuery, HtsgetError> {
    let invalid = |m: String| HtsgetError::spec(Kind::InvalidInput, m);
    if let Some(format) = q.get("format")
        && !format.eq_ignore_ascii_case(endpoint.format())
    {
        return Err(HtsgetError::spec(
            Kind::UnsupportedFormat,
            format!(
                "format {format:?} is not served; /htsget/{} serves {}",
                endpoint.name(),
                endpoint.format()
            ),
        ));
    }
    let start = coordinate(q, "start")?;
    let end = coordinate(q, "end")?;
    let name = q.get("referenceName").cloned();
    match q.get("class").map(String::as_str) {
        None => {}
        Some("header") => {
            if name.is_some() || start.is_some() || end.is_some() {
                return Err(invalid(
                    "class=header takes no referenceName, start or end".into(),
                ));
            }
            return Ok(TicketQuery {
                select: Select::Header,
            });
        }
        Some(other) => {
            return Err(invalid(format!(
                "class={other:?} is not a class; the only one is header"
            )));
        }
    }
    let Some(name) = name else {
        if start.is_some() || end.is_some() {
            return Err(invalid("start and end need a referenceName".into()));
        }
        return Ok(TicketQuery {
            select: Select::All,
        });
    };
    if name.is_empty() {
        return Err(invalid("referenceName is empty".into()));
    }
    if name == "*" {
        if endpoint == Endpoint::Variants {
            return Err(invalid(
                "referenceName=* (unplaced unmapped reads) is for reads only".into(),
            ));
        }
        if start.is_some() || end.is_some() {
            return Err(invalid("referenceName=* takes no start or end".into()));
        }
        return Ok(TicketQuery {
            select: Select::Unplaced,
        });
    }
    if let (Some(s), Some(e)) = (start, end) {
        if s > e {
            return Err(HtsgetError::spec(
                Kind::InvalidRange,
                format!("start {s} is after end {e}"),
            ));
        }
        if s == e {
            return Ok(TicketQuery {
                select: Select::Empty { name },
            });
        }
    }
    if end == Some(0) {
        return Ok(TicketQuery {
            select: Select::Empty { name },
        });
    }
    // htsget counts from 0, end excluded; noodles from 1, end included.
    let first = start.map(|s| Position::try_from(s as usize + 1).expect("above 0"));
    let last = end.map(|e| Position::try_from(e as usize).expect("above 0"));
    let interval = match (first, last) {
        (None, None) => Interval::from(..),
        (Some(a), None) => Interval::from(a..),
        (None, Some(b)) => Interval::from(..=b),
        (Some(a), Some(b)) => Interval::from(a..=b),
    };
    Ok(TicketQuery {
        select: Select::Region { name, interval },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn kind(r: Result<TicketQuery, HtsgetError>) -> Kind {
        match r.unwrap_err() {
            HtsgetError::Spec { kind, .. } => kind,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_region_counts_from_zero_with_the_end_excluded() {
        let got = parse(
            Endpoint::Reads,
            &q(&[("referenceName", "chr1"), ("start", "99"), ("end", "200")]),
        )
        .unwrap();
        let Select::Region { name, interval } = got.select else {
            panic!("{got:?}")
        };
        assert_eq!(name, "chr1");
        assert_eq!(interval.to_string(), "100-200");
        let whole = parse(Endpoint::Variants, &q(&[("referenceName", "chr2")])).unwrap();
        assert!(matches!(whole.select, Select::Region { .. }));
        assert_eq!(
            parse(Endpoint::Reads, &q(&[("format", "bam")]))
                .unwrap()
                .select,
            Select::All
        );
    }

    #[test]
    fn the_spec_errors_name_what_was_wrong() {
        type Case<'a> = (Endpoint, &'a [(&'a str, &'a str)], Kind);
        let cases: &[Case] = &[
            (
                Endpoint::Reads,
                &[("format", "CRAM")],
                Kind::UnsupportedFormat,
            ),
            (
                Endpoint::Variants,
                &[("format", "BCF")],
                Kind::UnsupportedFormat,
            ),
            (
                Endpoint::Reads,
                &[("format", "VCF")],
                Kind::UnsupportedFormat,
            ),
            (
                Endpoint::Reads,
                &[("referenceName", "1"), ("start", "10"), ("end", "5")],
                Kind::InvalidRange,
            ),
            (Endpoint::Reads, &[("start", "10")], Kind::InvalidInput),
            (
                Endpoint::Reads,
                &[("referenceName", "1"), ("start", "-1")],
                Kind::InvalidInput,
            ),
            (
                Endpoint::Reads,
                &[("referenceName", "1"), ("end", "x")],
                Kind::InvalidInput,
            ),
            (
                Endpoint::Reads,
                &[("class", "header"), ("referenceName", "1")],
                Kind::InvalidInput,
            ),
            (Endpoint::Reads, &[("class", "body")], Kind::InvalidInput),
            (
                Endpoint::Variants,
                &[("referenceName", "*")],
                Kind::InvalidInput,
            ),
            (
                Endpoint::Reads,
                &[("referenceName", "*"), ("start", "1")],
                Kind::InvalidInput,
            ),
            (
                Endpoint::Reads,
                &[("referenceName", "")],
                Kind::InvalidInput,
            ),
        ];
        for (endpoint, pairs, want) in cases {
            assert_eq!(kind(parse(*endpoint, &q(pairs))), *want, "{pairs:?}");
        }
    }

    #[test]
    fn header_unplaced_and_empty_regions_are_their_own_selections() {
        let sel = |pairs: &[(&str, &str)]| parse(Endpoint::Reads, &q(pairs)).unwrap().select;
        assert_eq!(sel(&[("class", "header")]), Select::Header);
        assert_eq!(sel(&[("referenceName", "*")]), Select::Unplaced);
        assert_eq!(
            sel(&[("referenceName", "1"), ("start", "5"), ("end", "5")]),
            Select::Empty { name: "1".into() }
        );
        assert_eq!(
            sel(&[("referenceName", "1"), ("end", "0")]),
            Select::Empty { name: "1".into() }
        );
    }
}
