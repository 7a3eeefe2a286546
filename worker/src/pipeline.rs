//! Pipelines: which stage scripts turn a source of each format into a data file and its index.
//!
//! The scripts live in `worker/pipelines/` (see its README for their contracts) and are compiled
//! into the binary. Every stage runs through [`process::run_stage`]: constant script text, paths
//! as positional arguments, `bash -o pipefail`, `LC_ALL=C`, its own process group.

mod plan;
pub mod process;
mod scripts;
mod validate;

pub use plan::{Built, Check, PipelineError, Stages, build, data_file};
pub use validate::Refusal;
