//! The life of one job on a worker.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use htsprep_shared::artifacts::{ArtifactError, ArtifactKey, ArtifactStore};
use htsprep_shared::domain::{ArtifactKind, EventKind, JobFailure, Progress, WorkerRef};
use htsprep_shared::jobstore::{Fence, JobStore, JobStoreError, JobStoreExt};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::failure;
use super::stages::JobStages;
use super::{JobSpec, JobUpdate};
use crate::fetch::{Expected, Fetched, Fetcher};
use crate::pipeline::{self, PipelineError};

/// What every job on this worker shares.
#[derive(Clone, Debug)]
pub struct JobContext {
    pub store: Arc<dyn JobStore>,
    pub artifacts: Arc<dyn ArtifactStore>,
    pub fetcher: Fetcher,
    pub worker: WorkerRef,
    /// Per-job temporary directories are made here (and removed on every exit path).
    pub work_root: PathBuf,
    pub heartbeat_every: Duration,
    /// How long a cancelled stage gets between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// Threads a stage may use (`THREADS` for sort, compression and samtools): the worker's CPUs.
    pub threads: usize,
    /// The htsprep-worker binary: stages run its tools (`HTSPREP_WORKER` in their environment).
    pub worker_exe: PathBuf,
}

/// How a job ended on this worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    Completed,
    Failed,
    /// The lease was lost (the job was reclaimed or finished elsewhere): nothing was written.
    LeaseLost,
    /// The worker shut down first; the job was handed back for another attempt.
    HandedBack,
}

enum Ending {
    Failed(JobFailure),
    LeaseLost,
    DurationCap,
    Shutdown,
}

fn storage_failure(what: &str, e: &(dyn std::error::Error + 'static)) -> Ending {
    let mut f = JobFailure::new(format!(
        "could not {what}: {}",
        htsprep_shared::error::chain(e)
    ));
    f.retryable = true;
    Ending::Failed(f)
}

fn store_ending(e: JobStoreError) -> Ending {
    match e {
        JobStoreError::LeaseLost { .. } | JobStoreError::NotFound { .. } => Ending::LeaseLost,
        other => storage_failure("write the job record", &other),
    }
}

/// Runs `spec` to its end. `shutdown` hands the job back (rescheduled) if it fires first.
pub async fn run_job(
    ctx: &JobContext,
    spec: JobSpec,
    updates: mpsc::Sender<JobUpdate>,
    shutdown: CancellationToken,
) -> JobOutcome {
    let fence = Fence {
        job_id: spec.job_id.clone(),
        lease: spec.lease.clone(),
        attempt: spec.attempt,
    };
    let report = |u: JobUpdate| {
        let _ = updates.try_send(u);
    };
    if let Err(e) = ctx.store.mark_running(&fence, ctx.worker.clone()).await {
        tracing::warn!(job_id = %spec.job_id, error = %htsprep_shared::error::chain(&e), "refusing a job this lease does not hold");
        report(JobUpdate::Failed(JobFailure::new(format!(
            "job {} was not started: {e}",
            spec.job_id
        ))));
        return JobOutcome::LeaseLost;
    }
    report(JobUpdate::Accepted);
    tracing::info!(job_id = %spec.job_id, dcc = %spec.dcc, local_id = %spec.local_id, processor = %spec.processor, attempt = spec.attempt, "job started");

    let cancel = CancellationToken::new();
    let lease_lost = Arc::new(AtomicBool::new(false));
    let (progress_tx, progress_rx) = watch::channel(None);
    let heartbeat = tokio::spawn(heartbeat_loop(
        Arc::clone(&ctx.store),
        fence.clone(),
        progress_rx,
        ctx.heartbeat_every,
        cancel.clone(),
        Arc::clone(&lease_lost),
    ));

    let mut stages = JobStages {
        store: Arc::clone(&ctx.store),
        fence: fence.clone(),
        dir: PathBuf::new(),
        env: vec![
            ("SORT_MEM".into(), spec.caps.sort_mem.clone()),
            (
                "SAMTOOLS_SORT_MEM".into(),
                spec.caps.samtools_sort_mem.clone(),
            ),
            ("THREADS".into(), ctx.threads.max(1).to_string()),
            (
                "HTSPREP_WORKER".into(),
                ctx.worker_exe.to_string_lossy().into_owned(),
            ),
        ],
        cancel: cancel.clone(),
        kill_grace: ctx.kill_grace,
        updates: updates.clone(),
        progress: progress_tx,
        last_command: None,
        stages_done: 0,
    };
    let started = Instant::now();
    let ending = {
        let body = execute(ctx, &spec, &fence, &mut stages);
        tokio::pin!(body);
        tokio::select! {
            r = &mut body => r,
            () = tokio::time::sleep(spec.caps.duration_cap) => {
                cancel.cancel();
                let _ = body.await;
                Err(Ending::DurationCap)
            }
            () = shutdown.cancelled() => {
                cancel.cancel();
                let _ = body.await;
                Err(Ending::Shutdown)
            }
        }
    };
    cancel.cancel();
    let _ = heartbeat.await;
    let ending = if lease_lost.load(Ordering::SeqCst) {
        Err(Ending::LeaseLost)
    } else {
        ending
    };

    let outcome = match ending {
        Ok(artifacts) => match ctx.store.complete(&fence).await {
            Ok(_) => {
                report(JobUpdate::Completed { artifacts });
                JobOutcome::Completed
            }
            Err(e) => finish_failed(ctx, &fence, store_ending(e), &report).await,
        },
        Err(ending) => finish_failed(ctx, &fence, ending, &report).await,
    };
    tracing::info!(job_id = %spec.job_id, ?outcome, elapsed_ms = started.elapsed().as_millis() as u64, "job ended");
    outcome
}

async fn finish_failed(
    ctx: &JobContext,
    fence: &Fence,
    ending: Ending,
    report: &impl Fn(JobUpdate),
) -> JobOutcome {
    match ending {
        Ending::LeaseLost => {
            let mut f = JobFailure::new(
                "the job's lease was lost (it was reclaimed by another attempt); nothing was published",
            );
            f.retryable = true;
            report(JobUpdate::Failed(f));
            JobOutcome::LeaseLost
        }
        Ending::Shutdown => {
            let reason = "the worker shut down before the job finished";
            let _ = ctx.store.reschedule(fence, reason).await;
            let mut f = JobFailure::new(reason);
            f.retryable = true;
            report(JobUpdate::Failed(f));
            JobOutcome::HandedBack
        }
        // Another attempt may succeed: hand the job back; the API retries it within its
        // attempt budget, after a pause.
        Ending::Failed(f) if f.retryable => match ctx.store.reschedule(fence, &f.message).await {
            Ok(_) => {
                report(JobUpdate::Failed(f));
                JobOutcome::HandedBack
            }
            Err(_) => {
                report(JobUpdate::Failed(f));
                JobOutcome::LeaseLost
            }
        },
        Ending::DurationCap | Ending::Failed(_) => {
            let failure = match ending {
                Ending::Failed(f) => f,
                _ => JobFailure::new("the job ran past its duration cap and was stopped"),
            };
            match ctx.store.fail(fence, failure.clone()).await {
                Ok(_) => {
                    report(JobUpdate::Failed(failure));
                    JobOutcome::Failed
                }
                Err(_) => {
                    report(JobUpdate::Failed(failure));
                    JobOutcome::LeaseLost
                }
            }
        }
    }
}

/// Progress reaches the job record this soon after it changes (a stage starts, the download
/// moves on), however long the heartbeat interval; changes in between are written together.
const PROGRESS_DELAY: Duration = Duration::from_millis(500);

/// Proves the job alive every `every`, and writes progress within [`PROGRESS_DELAY`] of a change.
async fn heartbeat_loop(
    store: Arc<dyn JobStore>,
    fence: Fence,
    mut progress: watch::Receiver<Option<Progress>>,
    every: Duration,
    stop: CancellationToken,
    lease_lost: Arc<AtomicBool>,
) {
    let mut next_beat = tokio::time::Instant::now() + every;
    let mut watching = true;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next_beat) => {}
            changed = progress.changed(), if watching => {
                if changed.is_err() {
                    watching = false; // the job is ending: beats only
                    continue;
                }
                tokio::select! {
                    () = tokio::time::sleep(PROGRESS_DELAY.min(every)) => {}
                    () = stop.cancelled() => return,
                }
            }
            () = stop.cancelled() => return,
        }
        next_beat = tokio::time::Instant::now() + every;
        let p = progress.borrow_and_update().clone();
        match store.heartbeat(&fence, p).await {
            Ok(_) => {}
            Err(JobStoreError::LeaseLost { .. } | JobStoreError::NotFound { .. }) => {
                tracing::warn!(job_id = %fence.job_id, "lease lost; cancelling the job");
                lease_lost.store(true, Ordering::SeqCst);
                stop.cancel();
                return;
            }
            Err(e) => {
                tracing::warn!(job_id = %fence.job_id, error = %htsprep_shared::error::chain(&e), "heartbeat failed; will retry")
            }
        }
    }
}

async fn execute(
    ctx: &JobContext,
    spec: &JobSpec,
    fence: &Fence,
    st: &mut JobStages,
) -> Result<BTreeMap<ArtifactKind, ArtifactKey>, Ending> {
    let data_key = &spec.artifacts[&ArtifactKind::Data];
    let index_key = &spec.artifacts[&ArtifactKind::Index];
    let exists = |k: &ArtifactKey| {
        let store = Arc::clone(&ctx.artifacts);
        let k = k.clone();
        async move { store.exists(&k).await }
    };
    let data_published = exists(data_key)
        .await
        .map_err(|e| storage_failure("check the artifact store", &e))?;
    let index_published = exists(index_key)
        .await
        .map_err(|e| storage_failure("check the artifact store", &e))?;
    if data_published && index_published {
        st.skipped_all().await.map_err(|e| pipeline_ending(e, st))?;
        return Ok(spec.artifacts.clone());
    }

    let tmp = tempfile::Builder::new()
        .prefix(&format!("job-{}-", spec.job_id))
        .tempdir_in(&ctx.work_root)
        .map_err(|e| {
            storage_failure(
                &format!("create a work directory in {}", ctx.work_root.display()),
                &e,
            )
        })?;
    st.dir = tmp.path().to_owned();
    let source = tmp.path().join("source");
    if data_published {
        let data_file =
            pipeline::data_file(spec.processor).expect("checked: the processor runs a pipeline");
        materialize(
            ctx.artifacts.as_ref(),
            data_key,
            &tmp.path().join(data_file),
        )
        .await
        .map_err(|e| storage_failure("read back the published data artifact", &e))?;
    }
    let open_fetch = if data_published {
        None
    } else {
        fetch(ctx, spec, &source, st).await?
    };

    let built = pipeline::build(spec.processor, spec.format, &source, data_published, st).await;
    // A source that is not what the catalog says explains any stage failure it caused.
    if let Some(open) = open_fetch {
        finish_fetch(open, st).await?;
    }
    let built = built.map_err(|e| pipeline_ending(e, st))?;

    // Publish only while the lease is still ours.
    ctx.store
        .heartbeat(fence, None)
        .await
        .map_err(store_ending)?;
    if st.cancel.is_cancelled() {
        return Err(Ending::LeaseLost);
    }
    if !data_published
        && !publish(
            ctx,
            fence,
            "publish-data",
            ArtifactKind::Data,
            data_key,
            &built.data,
        )
        .await?
    {
        // Another attempt published its data first: this attempt's index describes other
        // bytes. The published data stays; the next attempt indexes it.
        let mut f = JobFailure::new(
            "another attempt published the data artifact first; the next attempt indexes it",
        );
        f.retryable = true;
        return Err(Ending::Failed(f));
    }
    // Publish the index only while the lease is still ours.
    ctx.store
        .heartbeat(fence, None)
        .await
        .map_err(store_ending)?;
    // An index published meanwhile was built from the same published data: either will do.
    publish(
        ctx,
        fence,
        "publish-index",
        ArtifactKind::Index,
        index_key,
        &built.index,
    )
    .await?;
    drop(tmp);
    Ok(spec.artifacts.clone())
}

fn pipeline_ending(e: PipelineError, st: &JobStages) -> Ending {
    match e {
        PipelineError::Aborted(_) => Ending::LeaseLost,
        other => Ending::Failed(failure::from_pipeline(other, st.last_command.clone())),
    }
}

/// Publishes one artifact (create-only) and records it; false if the key was published already.
async fn publish(
    ctx: &JobContext,
    fence: &Fence,
    stage: &str,
    kind: ArtifactKind,
    key: &ArtifactKey,
    path: &std::path::Path,
) -> Result<bool, Ending> {
    let created = match ctx.artifacts.put_file(key, path).await {
        Ok(_) => true,
        Err(ArtifactError::AlreadyExists { .. }) => false,
        Err(e) => {
            return Err(storage_failure(
                &format!("publish the {} artifact", kind.name()),
                &e,
            ));
        }
    };
    if created || kind == ArtifactKind::Index {
        ctx.store
            .record_stage(fence, stage, Some((kind, key.to_string())))
            .await
            .map_err(store_ending)?;
    }
    Ok(created)
}

async fn materialize(
    store: &dyn ArtifactStore,
    key: &ArtifactKey,
    dest: &std::path::Path,
) -> Result<(), ArtifactError> {
    let got = store.get(key, None).await?;
    let mut f = tokio::fs::File::create(dest)
        .await
        .map_err(|source| ArtifactError::Io {
            action: "write a local copy of",
            key: key.to_string(),
            source,
        })?;
    let mut stream = got.stream;
    while let Some(chunk) = stream.try_next().await? {
        f.write_all(&chunk)
            .await
            .map_err(|source| ArtifactError::Io {
                action: "write a local copy of",
                key: key.to_string(),
                source,
            })?;
    }
    f.flush().await.map_err(|source| ArtifactError::Io {
        action: "write a local copy of",
        key: key.to_string(),
        source,
    })
}

/// The fetch stage, from its start to the source in the work directory. A downloaded source is
/// verified by then and the stage is recorded as finished; a local source linked where it is is
/// still being hashed, and the stage stays open until [`finish_fetch`].
async fn fetch(
    ctx: &JobContext,
    spec: &JobSpec,
    dest: &std::path::Path,
    st: &mut JobStages,
) -> Result<Option<OpenFetch>, Ending> {
    st.event(EventKind::StageStarted {
        stage: "fetch".into(),
        command: None,
    })
    .await
    .map_err(|e| pipeline_ending(e, st))?;
    st.set_progress("fetch", format!("downloading {} bytes", spec.size));
    let progress_tx = st.progress.clone();
    let size = spec.size;
    let on_progress = move |done: u64| {
        let fraction = if size > 0 {
            Some((done as f64 / size as f64).min(1.0) * 0.3)
        } else {
            None
        };
        progress_tx.send_replace(Some(Progress {
            stage: "fetch".into(),
            fraction,
            message: Some(format!("downloaded {done} of {size} bytes")),
        }));
    };
    let started = Instant::now();
    let expected = Expected {
        md5: spec.md5.clone(),
        size: spec.size,
    };
    let result = ctx
        .fetcher
        .fetch(&spec.source_url, dest, &expected, &on_progress, &st.cancel)
        .await;
    match result {
        Ok(fetched) if fetched.is_pending() => Ok(Some(OpenFetch {
            fetched,
            expected,
            started,
        })),
        other => fetch_finished(st, started.elapsed(), other.map(|_| ()))
            .await
            .map(|()| None),
    }
}

/// A fetch stage whose source is still being hashed.
struct OpenFetch {
    fetched: Fetched,
    expected: Expected,
    started: Instant,
}

/// Waits for the hash of a linked source and closes its fetch stage (its duration: until the
/// hash ended).
async fn finish_fetch(open: OpenFetch, st: &mut JobStages) -> Result<(), Ending> {
    let (result, at) = open.fetched.verified(&open.expected).await;
    fetch_finished(st, at - open.started, result.map(|_| ())).await
}

/// Records the end of the fetch stage; a failure ends the job.
async fn fetch_finished(
    st: &mut JobStages,
    took: Duration,
    result: Result<(), crate::fetch::FetchError>,
) -> Result<(), Ending> {
    let duration_ms = took.as_millis() as u64;
    let (exit_status, tail) = match &result {
        Ok(()) => (0, None),
        Err(e) => (1, Some(e.to_string())),
    };
    st.event(EventKind::StageFinished {
        stage: "fetch".into(),
        exit_status,
        duration_ms,
        stderr_tail: tail,
    })
    .await
    .map_err(|e| pipeline_ending(e, st))?;
    st.stages_done += 1;
    match result {
        Ok(()) => Ok(()),
        Err(crate::fetch::FetchError::Cancelled) => Err(Ending::LeaseLost),
        Err(e) => Err(Ending::Failed(failure::from_fetch(&e))),
    }
}
