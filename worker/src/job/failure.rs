//! Turning what went wrong into a failure a user can act on.

use htsprep_shared::domain::JobFailure;
use htsprep_shared::error::chain;

use crate::fetch::FetchError;
use crate::pipeline::PipelineError;
use crate::pipeline::process::StageError;

fn last_line(s: &str) -> Option<&str> {
    s.lines().rev().map(str::trim).find(|l| !l.is_empty())
}

pub(crate) fn from_fetch(e: &FetchError) -> JobFailure {
    let mut f = JobFailure::new(chain(e));
    f.stage = Some("fetch".into());
    f.retryable = e.is_retryable();
    f
}

pub(crate) fn from_pipeline(e: PipelineError, command: Option<String>) -> JobFailure {
    match e {
        PipelineError::Stage(StageError::Failed {
            stage,
            exit_status,
            stderr_tail,
            ..
        }) => {
            let why = last_line(&stderr_tail).unwrap_or("no message").to_owned();
            let what = match exit_status {
                1 => "the input is not valid",
                2 => "the worker is misconfigured",
                3 => "a tool or the system failed",
                _ => "it failed",
            };
            let mut f = JobFailure::new(format!(
                "stage {stage} failed ({what}, exit {exit_status}): {why}"
            ));
            f.stage = Some(stage);
            f.command = command;
            f.exit_status = Some(exit_status);
            f.stderr_tail = Some(stderr_tail);
            f.retryable = exit_status == 3;
            f
        }
        PipelineError::Stage(StageError::Killed {
            stage,
            signal,
            stderr_tail,
            ..
        }) => {
            let mut f = JobFailure::new(format!(
                "stage {stage} was killed by signal {signal} (out of memory?)"
            ));
            f.stage = Some(stage);
            f.command = command;
            f.exit_status = Some(128 + signal);
            f.stderr_tail = Some(stderr_tail);
            f.retryable = true;
            f
        }
        other => {
            let mut f = JobFailure::new(chain(&other));
            f.command = command;
            f
        }
    }
}
