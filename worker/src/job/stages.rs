//! The [`Stages`] a job gives its pipeline: every stage is recorded in the job's timeline (a
//! fenced write) and reported to the dispatcher, and runs under the job's cancellation.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use htsprep_shared::domain::{EventKind, Progress};
use htsprep_shared::jobstore::{Fence, JobStore, JobStoreExt};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::JobUpdate;
use crate::pipeline::process::{StageCommand, StageError, StageOutput, run_stage};
use crate::pipeline::{Check, PipelineError, Refusal, Stages};

pub(crate) struct JobStages {
    pub store: Arc<dyn JobStore>,
    pub fence: Fence,
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub cancel: CancellationToken,
    pub kill_grace: Duration,
    pub updates: mpsc::Sender<JobUpdate>,
    pub progress: watch::Sender<Option<Progress>>,
    /// The command line of the last stage started (for failure reports).
    pub last_command: Option<String>,
    pub stages_done: u32,
}

/// Stages a typical pipeline runs, for a rough progress fraction.
const EXPECTED_STAGES: f64 = 6.0;

impl JobStages {
    pub(crate) fn report(&self, update: JobUpdate) {
        // Updates are best effort; the job store is the record.
        let _ = self.updates.try_send(update);
    }

    pub(crate) async fn event(&self, kind: EventKind) -> Result<(), PipelineError> {
        match self.store.append_event(&self.fence, kind).await {
            Ok(_) => Ok(()),
            Err(e) => {
                if !e.is_permanent() {
                    tracing::warn!(error = %htsprep_shared::error::chain(&e), "could not record a job event; continuing");
                    return Ok(());
                }
                self.cancel.cancel();
                Err(PipelineError::Aborted(format!(
                    "job store refused the write: {e}"
                )))
            }
        }
    }

    pub(crate) fn set_progress(&mut self, stage: &str, message: String) {
        let fraction = (f64::from(self.stages_done) / EXPECTED_STAGES).min(0.95);
        let p = Progress {
            stage: stage.to_owned(),
            fraction: Some(fraction),
            message: Some(message.clone()),
        };
        self.progress.send_replace(Some(p));
        self.report(JobUpdate::Progress {
            stage: stage.to_owned(),
            fraction: Some(fraction),
            message,
        });
    }
}

#[async_trait]
impl Stages for JobStages {
    fn dir(&self) -> &Path {
        &self.dir
    }

    async fn run(
        &mut self,
        name: &str,
        script: &'static str,
        args: Vec<OsString>,
    ) -> Result<StageOutput, PipelineError> {
        let cmd = StageCommand {
            name: name.to_owned(),
            script,
            args,
            env: self.env.clone(),
            tmp_dir: self.dir.clone(),
        };
        let (cancel, grace) = (self.cancel.clone(), self.kill_grace);
        self.record(name, Some(cmd.display()), async move {
            run_stage(&cmd, &cancel, grace).await
        })
        .await
    }

    async fn check(&mut self, name: &str, check: Check) -> Result<StageOutput, PipelineError> {
        let stage = name.to_owned();
        self.record(name, None, async move {
            let started = Instant::now();
            let result = tokio::task::spawn_blocking(check).await;
            let duration = started.elapsed();
            match result {
                Ok(Ok(summary)) => Ok(StageOutput {
                    stdout: summary,
                    stderr_tail: String::new(),
                    duration,
                }),
                Ok(Err(Refusal { status, reason })) => Err(StageError::Failed {
                    stage,
                    exit_status: status,
                    stderr_tail: reason,
                    duration,
                }),
                Err(panicked) => Err(StageError::Failed {
                    stage,
                    exit_status: 3,
                    stderr_tail: format!("the check stopped: {panicked}"),
                    duration,
                }),
            }
        })
        .await
    }

    async fn skipped(&mut self, name: &str, reason: &str) -> Result<(), PipelineError> {
        self.event(EventKind::StageSkipped {
            stage: name.to_owned(),
            reason: reason.to_owned(),
        })
        .await?;
        self.report(JobUpdate::StageFinished {
            stage: name.to_owned(),
            exit_status: 0,
            duration_ms: 0,
            skipped: true,
            stderr_tail: String::new(),
        });
        self.stages_done += 1;
        Ok(())
    }
}

impl JobStages {
    /// Runs one stage (`command`: how it is shown in the timeline, for scripts) and records it:
    /// started, then finished with its exit status, duration and stderr tail.
    async fn record(
        &mut self,
        name: &str,
        command: Option<String>,
        stage: impl Future<Output = Result<StageOutput, StageError>> + Send,
    ) -> Result<StageOutput, PipelineError> {
        if self.cancel.is_cancelled() {
            return Err(PipelineError::Aborted("the job was cancelled".into()));
        }
        self.last_command.clone_from(&command);
        self.event(EventKind::StageStarted {
            stage: name.to_owned(),
            command: command.clone(),
        })
        .await?;
        self.report(JobUpdate::StageStarted {
            stage: name.to_owned(),
            command: command.unwrap_or_else(|| format!("{name} (in the worker)")),
        });
        self.set_progress(name, format!("running {name}"));
        let result = stage.await;
        let (exit_status, duration, stderr_tail) = match &result {
            Ok(out) => (0, out.duration, out.stderr_tail.clone()),
            Err(StageError::Failed {
                exit_status,
                duration,
                stderr_tail,
                ..
            }) => (*exit_status, *duration, stderr_tail.clone()),
            Err(StageError::Killed {
                signal,
                duration,
                stderr_tail,
                ..
            }) => (128 + signal, *duration, stderr_tail.clone()),
            Err(StageError::Cancelled { .. }) => {
                return Err(PipelineError::Aborted(format!(
                    "stage {name} was cancelled"
                )));
            }
            Err(StageError::Spawn { .. }) => (-1, Duration::ZERO, String::new()),
        };
        let duration_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        let tail = (!stderr_tail.is_empty()).then(|| stderr_tail.clone());
        self.event(EventKind::StageFinished {
            stage: name.to_owned(),
            exit_status,
            duration_ms,
            stderr_tail: tail,
        })
        .await?;
        self.report(JobUpdate::StageFinished {
            stage: name.to_owned(),
            exit_status,
            duration_ms,
            skipped: false,
            stderr_tail,
        });
        self.stages_done += 1;
        Ok(result?)
    }

    /// Records that every stage was skipped because both artifacts already exist.
    pub(crate) async fn skipped_all(&mut self) -> Result<(), PipelineError> {
        self.skipped(
            "build",
            "both artifacts were published by an earlier attempt",
        )
        .await
    }
}
