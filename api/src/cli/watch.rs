//! `htsprep-api jobs watch ID`: follows one job live, reading its record from the job store: a
//! progress bar (on a terminal) with the stage and how far it is, each event of the timeline as
//! it happens, and an exit status from the job's outcome.

use std::io::Write;
use std::time::Duration;

use htsprep_shared::domain::{EventKind, JobEvent, JobId, JobRecord, JobStatus};
use htsprep_shared::jobstore::JobStore;
use indicatif::{ProgressBar, ProgressStyle};

/// Exit statuses: the job completed, failed, or the watch was interrupted (Ctrl-C).
pub const COMPLETED: i32 = 0;
pub const FAILED: i32 = 1;
pub const INTERRUPTED: i32 = 130;

/// One event as a line of the timeline.
fn describe(e: &JobEvent) -> String {
    let what = match &e.kind {
        EventKind::Claimed => "claimed".to_owned(),
        EventKind::Reclaimed { reason } => format!("reclaimed: {reason}"),
        EventKind::Running { worker } => format!("running on {}", worker.address),
        EventKind::StageStarted { stage, .. } => format!("{stage} started"),
        EventKind::StageFinished {
            stage,
            exit_status,
            duration_ms,
            ..
        } => format!(
            "{stage} finished in {:.2} s (exit status {exit_status})",
            *duration_ms as f64 / 1000.0
        ),
        EventKind::StageSkipped { stage, reason } => format!("{stage} skipped: {reason}"),
        EventKind::Rescheduled { reason } => format!("rescheduled: {reason}"),
        EventKind::Completed => "completed".to_owned(),
        EventKind::Failed { message } => format!("failed: {message}"),
        EventKind::TakenOver { reason } => format!("taken over: {reason}"),
        EventKind::RetryRequested => "retry requested".to_owned(),
        EventKind::Note { message } => message.clone(),
    };
    format!(
        "{}  attempt {}  {what}",
        e.at.format("%H:%M:%S%.3f"),
        e.attempt
    )
}

/// What the bar says about the job now.
fn status_line(job: &JobRecord) -> (String, Option<f64>) {
    let mut line = job.status.to_string();
    if let Some(p) = &job.progress {
        line.push_str(&format!(": {}", p.stage));
        if let Some(m) = &p.message {
            line.push_str(&format!(" ({m})"));
        }
    }
    if let Some(w) = &job.waiting_for {
        line.push_str(&format!(": waiting for {w}"));
    }
    let fraction = job.progress.as_ref().and_then(|p| p.fraction);
    (line, fraction)
}

/// Follows the job until it ends (or Ctrl-C), polling the store every `every`.
pub async fn watch(store: &dyn JobStore, id: &JobId, every: Duration) -> anyhow::Result<i32> {
    let bar = ProgressBar::new(1000);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {msg}")
            .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let mut shown = 0;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let job = store.get(id).await?;
        let new: Vec<String> = job.events.iter().skip(shown).map(describe).collect();
        shown = job.events.len();
        bar.suspend(|| -> std::io::Result<()> {
            let mut out = std::io::stdout().lock();
            for line in &new {
                writeln!(out, "{line}")?;
            }
            out.flush()
        })?;
        let (line, fraction) = status_line(&job);
        bar.set_message(line);
        if let Some(f) = fraction {
            bar.set_position((f.clamp(0.0, 1.0) * 1000.0) as u64);
        }
        match job.status {
            JobStatus::Completed => {
                bar.finish_and_clear();
                return Ok(COMPLETED);
            }
            JobStatus::Failed => {
                bar.finish_and_clear();
                if let Some(e) = &job.error {
                    eprintln!("job {id} failed: {}", e.message);
                }
                return Ok(FAILED);
            }
            JobStatus::Pending | JobStatus::Running => {}
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = &mut interrupted => {
                bar.finish_and_clear();
                eprintln!("stopped watching job {id}: it carries on");
                return Ok(INTERRUPTED);
            }
        }
    }
}
