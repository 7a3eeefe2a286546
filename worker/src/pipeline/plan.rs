//! The stage sequence of each processor.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use htsprep_shared::domain::{Format, Processor};

use super::process::{StageError, StageOutput};
use super::scripts;
use super::validate::{self, Refusal};

/// Runs stages on behalf of a pipeline, recording them in the job's timeline.
#[async_trait]
pub trait Stages: Send {
    /// The job's private working directory.
    fn dir(&self) -> &Path;

    async fn run(
        &mut self,
        name: &str,
        script: &'static str,
        args: Vec<OsString>,
    ) -> Result<StageOutput, PipelineError>;

    /// Runs an in-process check as a stage, recorded like a script stage: a refusal fails the
    /// stage with its exit status and reason, as a script would.
    async fn check(&mut self, name: &str, check: Check) -> Result<StageOutput, PipelineError>;

    async fn skipped(&mut self, name: &str, reason: &str) -> Result<(), PipelineError>;
}

/// An in-process check (it may block: it runs on a blocking thread).
pub type Check = Box<dyn FnOnce() -> Result<String, Refusal> + Send>;

/// The files a pipeline produced, validated and ready to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Built {
    pub data: PathBuf,
    pub index: PathBuf,
    /// `bai`, `csi` or `tbi`.
    pub index_kind: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error("processor {0} runs no pipeline")]
    NoPipeline(Processor),
    #[error("stage {stage} printed {output:?}; expected one of {expected}")]
    UnexpectedOutput {
        stage: String,
        output: String,
        expected: &'static str,
    },
    #[error("could not prepare {what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Aborted(String),
}

/// The name of the data file a processor builds in the job directory. A resumed job places the
/// already published data artifact there.
pub fn data_file(processor: Processor) -> Option<&'static str> {
    match processor {
        Processor::SamtoolsBam => Some("work.bam"),
        Processor::TabixVcf => Some("work.vcf.gz"),
        Processor::TabixGff | Processor::GffreadGff => Some("work.gff3.gz"),
        Processor::TabixBed | Processor::BigBedTabix => Some("work.bed.gz"),
        Processor::Passthrough => None,
    }
}

fn word(stage: &str, out: &StageOutput, expected: &'static str) -> Result<String, PipelineError> {
    let w = out.stdout.trim().to_owned();
    if expected.split('|').any(|e| e == w) {
        Ok(w)
    } else {
        Err(PipelineError::UnexpectedOutput {
            stage: stage.to_owned(),
            output: w,
            expected,
        })
    }
}

fn args<const N: usize>(a: [&dyn AsRef<std::ffi::OsStr>; N]) -> Vec<OsString> {
    a.iter().map(|x| x.as_ref().to_owned()).collect()
}

fn with_ext(p: &Path, ext: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// Builds and validates the artifacts of `processor` from `source`. When `resume` is true the
/// data artifact was published by an earlier attempt and already sits at [`data_file`]: the
/// stages that made it are skipped and `source` is not read.
pub async fn build(
    processor: Processor,
    format: Format,
    source: &Path,
    resume: bool,
    st: &mut dyn Stages,
) -> Result<Built, PipelineError> {
    let data = st
        .dir()
        .join(data_file(processor).ok_or(PipelineError::NoPipeline(processor))?);
    match processor {
        Processor::SamtoolsBam => build_bam(format, source, &data, resume, st).await,
        Processor::TabixVcf => {
            build_tabix("vcf", scripts::VCF_CLEAN, None, source, &data, resume, st).await
        }
        Processor::TabixGff => {
            build_tabix("gff", scripts::GFF_CLEAN, None, source, &data, resume, st).await
        }
        Processor::GffreadGff => {
            let convert = ("gtf-to-gff3", scripts::GTF_TO_GFF3, "converted.gff3");
            build_tabix(
                "gff",
                scripts::GFF_CLEAN,
                Some(convert),
                source,
                &data,
                resume,
                st,
            )
            .await
        }
        Processor::TabixBed => {
            build_tabix("bed", scripts::BED_CLEAN, None, source, &data, resume, st).await
        }
        Processor::BigBedTabix => {
            let convert = ("bigbed-to-bed", scripts::BIGBED_TO_BED, "converted.bed");
            build_tabix(
                "bed",
                scripts::BED_CLEAN,
                Some(convert),
                source,
                &data,
                resume,
                st,
            )
            .await
        }
        Processor::Passthrough => Err(PipelineError::NoPipeline(processor)),
    }
}

async fn build_bam(
    format: Format,
    source: &Path,
    data: &Path,
    resume: bool,
    st: &mut dyn Stages,
) -> Result<Built, PipelineError> {
    let index_kind = if resume {
        st.skipped("sort", "the sorted BAM was published by an earlier attempt")
            .await?;
        word(
            "index",
            &st.run("index", scripts::BAM_INDEX, args([&data])).await?,
            "bai|csi",
        )?
    } else {
        // A BAM that is already coordinate-sorted only needs its index; htslib checks the order
        // while indexing and exits 4 on the first out-of-order record, in which case it is sorted.
        let mut sorted_kind = None;
        if format == Format::Bam {
            std::fs::hard_link(source, data)
                .or_else(|_| std::fs::copy(source, data).map(|_| ()))
                .map_err(|source| PipelineError::Io {
                    what: "the BAM to index",
                    source,
                })?;
            match st
                .run("index-as-is", scripts::BAM_INDEX, args([&data]))
                .await
            {
                Ok(out) => sorted_kind = Some(word("index-as-is", &out, "bai|csi")?),
                Err(PipelineError::Stage(StageError::Failed { exit_status: 4, .. })) => {
                    std::fs::remove_file(data).map_err(|source| PipelineError::Io {
                        what: "the unsorted BAM",
                        source,
                    })?;
                }
                Err(e) => return Err(e),
            }
        }
        match sorted_kind {
            Some(kind) => kind,
            None => {
                st.run("sort", scripts::BAM_SORT, args([&source, &data]))
                    .await?;
                word(
                    "index",
                    &st.run("index", scripts::BAM_INDEX, args([&data])).await?,
                    "bai|csi",
                )?
            }
        }
    };
    // On resume the published BAM is its own reference count: it was validated against the
    // source when it was published.
    let reference = if resume { data } else { source };
    st.run("validate", scripts::VALIDATE_BAM, args([&reference, &data]))
        .await?;
    Ok(Built {
        data: data.to_owned(),
        index: with_ext(data, &index_kind),
        index_kind,
    })
}

async fn build_tabix(
    preset: &'static str,
    clean: &'static str,
    convert: Option<(&'static str, &'static str, &'static str)>,
    source: &Path,
    data: &Path,
    resume: bool,
    st: &mut dyn Stages,
) -> Result<Built, PipelineError> {
    let stats = st.dir().join("work.stats");
    let counts = st.dir().join("work.counts");
    if resume {
        let reason = "the sorted, compressed file was published by an earlier attempt";
        if let Some((name, _, _)) = convert {
            st.skipped(name, reason).await?;
        }
        st.skipped("clean-sort-bgzip", reason).await?;
        st.run(
            "stats",
            scripts::STATS_FROM_BGZF,
            args([&preset, &data, &stats, &counts]),
        )
        .await?;
    } else {
        let mut input = source.to_owned();
        if let Some((name, script, out)) = convert {
            let converted = st.dir().join(out);
            st.run(name, script, args([&input, &converted])).await?;
            input = converted;
        }
        st.run(
            "clean-sort-bgzip",
            clean,
            args([&input, &data, &stats, &counts]),
        )
        .await?;
    }
    // The clean stage writes the TBI while it compresses, unless a record lies past a TBI's
    // reach; a resumed job has only the published data.
    let index_kind = if !resume && crate::bgzip_tabix::tbi_path(data).is_file() {
        st.skipped("index", "the TBI was written while compressing")
            .await?;
        "tbi".to_owned()
    } else {
        word(
            "index",
            &st.run(
                "index",
                scripts::TABIX_INDEX,
                args([&preset, &data, &stats]),
            )
            .await?,
            "tbi|csi",
        )?
    };
    let index = with_ext(data, &index_kind);
    let (d, i, k) = (data.to_owned(), index.clone(), index_kind.clone());
    st.check(
        "validate",
        Box::new(move || {
            let expected = validate::Expected {
                stats: &stats,
                counts: &counts,
            };
            validate::tabix(&d, &i, &k, &expected)
        }),
    )
    .await?;
    Ok(Built {
        data: data.to_owned(),
        index,
        index_kind,
    })
}
