//! Running one job: take ownership (mark running), heartbeat, fetch, build, validate, publish,
//! release. Every job store write is fenced by the job's lease; a lost lease cancels the pipeline
//! and publishes nothing.

mod failure;
mod runner;
mod spec;
mod stages;

pub use runner::{JobContext, run_job};
pub use spec::{Caps, JobSpec, JobUpdate, SpecError};
