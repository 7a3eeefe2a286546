//! Source formats as catalog maintainers write them, and the processor that prepares each.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The format of a source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Format {
    Sam,
    Bam,
    Vcf,
    /// GFF and GFF3 (GFF2 is not distinguished; it is cleaned and indexed the same way).
    Gff,
    Gtf,
    Bed,
    NarrowPeak,
    BroadPeak,
    BigBed,
    BigWig,
    Csv,
    Tsv,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown format {0:?}; expected one of SAM, BAM, VCF, GFF, GFF3, GTF, BED, narrowPeak, \
     broadPeak, bigBed, bigWig, CSV, TSV"
)]
pub struct FormatError(pub String);

impl Format {
    pub const ALL: [Format; 12] = [
        Format::Sam,
        Format::Bam,
        Format::Vcf,
        Format::Gff,
        Format::Gtf,
        Format::Bed,
        Format::NarrowPeak,
        Format::BroadPeak,
        Format::BigBed,
        Format::BigWig,
        Format::Csv,
        Format::Tsv,
    ];

    /// Parses a format name case-insensitively (`gff3` and `GFF` both mean [`Format::Gff`]).
    pub fn parse(s: &str) -> Result<Self, FormatError> {
        let f = match s.trim().to_ascii_lowercase().as_str() {
            "sam" => Format::Sam,
            "bam" => Format::Bam,
            "vcf" => Format::Vcf,
            "gff" | "gff3" => Format::Gff,
            "gtf" => Format::Gtf,
            "bed" => Format::Bed,
            "narrowpeak" => Format::NarrowPeak,
            "broadpeak" => Format::BroadPeak,
            "bigbed" => Format::BigBed,
            "bigwig" => Format::BigWig,
            "csv" => Format::Csv,
            "tsv" => Format::Tsv,
            _ => return Err(FormatError(s.to_owned())),
        };
        Ok(f)
    }

    /// The canonical name, as written in the documentation.
    pub fn name(self) -> &'static str {
        match self {
            Format::Sam => "SAM",
            Format::Bam => "BAM",
            Format::Vcf => "VCF",
            Format::Gff => "GFF3",
            Format::Gtf => "GTF",
            Format::Bed => "BED",
            Format::NarrowPeak => "narrowPeak",
            Format::BroadPeak => "broadPeak",
            Format::BigBed => "bigBed",
            Format::BigWig => "bigWig",
            Format::Csv => "CSV",
            Format::Tsv => "TSV",
        }
    }

    /// The processor that turns a source of this format into served artifacts.
    pub fn processor(self) -> Processor {
        match self {
            Format::Sam | Format::Bam => Processor::SamtoolsBam,
            Format::Vcf => Processor::TabixVcf,
            Format::Gff => Processor::TabixGff,
            Format::Gtf => Processor::GffreadGff,
            Format::Bed | Format::NarrowPeak | Format::BroadPeak => Processor::TabixBed,
            Format::BigBed => Processor::BigBedTabix,
            Format::BigWig | Format::Csv | Format::Tsv => Processor::Passthrough,
        }
    }
}

/// In the API's OpenAPI document: one of the names `Format::parse` reads.
impl utoipa::PartialSchema for Format {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(Format::ALL.iter().map(|f| f.name())))
            .into()
    }
}

impl utoipa::ToSchema for Format {}

impl TryFrom<String> for Format {
    type Error = FormatError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Format> for String {
    fn from(f: Format) -> Self {
        f.name().to_owned()
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A versioned pipeline. Bumping a version invalidates every artifact it made, without a purge,
/// because the version is part of every key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Processor {
    /// SAM or BAM → coordinate-sorted BAM + BAI (or CSI for contigs over 2^29 bp).
    SamtoolsBam,
    /// VCF → BGZF VCF + TBI/CSI.
    TabixVcf,
    /// GFF3 → cleaned, sorted BGZF GFF3 + TBI/CSI.
    TabixGff,
    /// GTF → GFF3 through gffread, then as [`Processor::TabixGff`].
    GffreadGff,
    /// BED-like → cleaned, sorted BGZF BED + TBI/CSI.
    TabixBed,
    /// bigBed → BED through bigbedtobed, then as [`Processor::TabixBed`].
    BigBedTabix,
    /// Served as it is; no job runs.
    Passthrough,
}

impl Processor {
    pub fn name(self) -> &'static str {
        match self {
            Processor::SamtoolsBam => "samtools-bam",
            Processor::TabixVcf => "tabix-vcf",
            Processor::TabixGff => "tabix-gff",
            Processor::GffreadGff => "gffread-gff",
            Processor::TabixBed => "tabix-bed",
            Processor::BigBedTabix => "bigbed-tabix",
            Processor::Passthrough => "passthrough",
        }
    }

    /// The pipeline version; part of every workflow and cache key this processor produces.
    pub fn version(self) -> u32 {
        match self {
            Processor::SamtoolsBam
            | Processor::TabixVcf
            | Processor::TabixGff
            | Processor::GffreadGff
            | Processor::TabixBed
            | Processor::BigBedTabix
            | Processor::Passthrough => 1,
        }
    }

    /// Whether a job is needed at all (passthrough sources are served as they are).
    pub fn runs_job(self) -> bool {
        self != Processor::Passthrough
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Processor::SamtoolsBam,
            Processor::TabixVcf,
            Processor::TabixGff,
            Processor::GffreadGff,
            Processor::TabixBed,
            Processor::BigBedTabix,
            Processor::Passthrough,
        ]
        .into_iter()
        .find(|p| p.name() == s)
    }
}

impl fmt::Display for Processor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_as_people_write_them() {
        for (s, f) in [
            ("SAM", Format::Sam),
            ("bam", Format::Bam),
            ("Vcf", Format::Vcf),
            ("GFF", Format::Gff),
            ("gff3", Format::Gff),
            ("GTF", Format::Gtf),
            ("bed", Format::Bed),
            ("narrowPeak", Format::NarrowPeak),
            ("NARROWPEAK", Format::NarrowPeak),
            ("broadPeak", Format::BroadPeak),
            ("bigBed", Format::BigBed),
            ("BigWig", Format::BigWig),
            ("csv", Format::Csv),
            ("TSV", Format::Tsv),
        ] {
            assert_eq!(Format::parse(s), Ok(f), "{s}");
        }
        let err = Format::parse("cram").unwrap_err();
        assert!(err.to_string().contains("\"cram\""));
    }

    #[test]
    fn canonical_names_round_trip() {
        for f in Format::ALL {
            assert_eq!(Format::parse(f.name()), Ok(f));
        }
    }

    #[test]
    fn processors_round_trip_and_only_passthrough_skips_jobs() {
        for f in Format::ALL {
            let p = f.processor();
            assert_eq!(Processor::parse(p.name()), Some(p));
            assert_eq!(
                p.runs_job(),
                !matches!(f, Format::BigWig | Format::Csv | Format::Tsv)
            );
        }
    }
}
