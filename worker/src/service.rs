//! The gRPC service: accepts jobs up to a bound, streams their updates, and drains.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::Stream;
use htsprep_proto::v1 as pb;
use htsprep_proto::v1::worker_server::Worker;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status};

use crate::convert;
use crate::job::{JobContext, run_job};

/// State shared by the gRPC service, the health endpoint and the lifecycle.
#[derive(Clone, Debug)]
pub struct WorkerState {
    pub ctx: JobContext,
    slots: Arc<Semaphore>,
    max_jobs: usize,
    /// Cancelled once the worker stops taking jobs.
    pub draining: CancellationToken,
    /// Cancelled when in-flight jobs must be handed back.
    pub handback: CancellationToken,
    pub tracker: TaskTracker,
    last_activity: Arc<Mutex<Instant>>,
    worker_id: String,
}

impl WorkerState {
    pub fn new(ctx: JobContext, max_jobs: usize) -> Self {
        let worker_id = ctx.worker.resource_id.clone();
        Self {
            ctx,
            slots: Arc::new(Semaphore::new(max_jobs)),
            max_jobs,
            draining: CancellationToken::new(),
            handback: CancellationToken::new(),
            tracker: TaskTracker::new(),
            last_activity: Arc::new(Mutex::new(Instant::now())),
            worker_id,
        }
    }

    pub fn in_flight(&self) -> usize {
        self.max_jobs - self.slots.available_permits()
    }

    /// How long the worker has had nothing to do (zero while a job runs).
    pub fn idle_for(&self) -> std::time::Duration {
        if self.in_flight() > 0 {
            return std::time::Duration::ZERO;
        }
        self.last_activity.lock().expect("activity lock").elapsed()
    }

    fn touch(&self) {
        *self.last_activity.lock().expect("activity lock") = Instant::now();
    }
}

#[derive(Clone, Debug)]
pub struct WorkerService {
    state: WorkerState,
}

impl WorkerService {
    pub fn new(state: WorkerState) -> Self {
        Self { state }
    }
}

type UpdateStream = Pin<Box<dyn Stream<Item = Result<pb::JobUpdate, Status>> + Send>>;

#[tonic::async_trait]
impl Worker for WorkerService {
    type RunJobStream = UpdateStream;

    async fn run_job(
        &self,
        request: Request<pb::RunJobRequest>,
    ) -> Result<Response<UpdateStream>, Status> {
        let state = &self.state;
        if state.draining.is_cancelled() {
            return Err(Status::unavailable(
                "this worker is draining; dispatch the job to another worker",
            ));
        }
        let spec = convert::spec_from_proto(request.into_inner())
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let permit = Arc::clone(&state.slots).try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "this worker is at its limit of {} concurrent job(s); try another worker or later",
                state.max_jobs
            ))
        })?;
        state.touch();
        let (tx, mut rx) = mpsc::channel(256);
        let (out_tx, out_rx) = mpsc::channel(256);
        let worker_id = state.worker_id.clone();
        state.tracker.spawn(async move {
            while let Some(u) = rx.recv().await {
                if out_tx
                    .send(Ok(convert::update_to_proto(u, &worker_id)))
                    .await
                    .is_err()
                {
                    // The dispatcher went away; the job goes on (the job store is the record).
                    while rx.recv().await.is_some() {}
                    break;
                }
            }
        });
        let job_state = state.clone();
        state.tracker.spawn(async move {
            let _permit = permit;
            run_job(&job_state.ctx, spec, tx, job_state.handback.clone()).await;
            job_state.touch();
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }

    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let state = &self.state;
        let idle = state.idle_for();
        let draining = state.draining.is_cancelled();
        if request.into_inner().keep_warm && !draining {
            state.touch();
        }
        Ok(Response::new(pb::StatusResponse {
            in_flight: u32::try_from(state.in_flight()).unwrap_or(u32::MAX),
            max_jobs: u32::try_from(state.max_jobs).unwrap_or(u32::MAX),
            draining,
            idle_ms: u64::try_from(idle.as_millis()).unwrap_or(u64::MAX),
        }))
    }

    async fn drain(
        &self,
        _request: Request<pb::DrainRequest>,
    ) -> Result<Response<pb::DrainResponse>, Status> {
        self.state.draining.cancel();
        Ok(Response::new(pb::DrainResponse {
            in_flight: u32::try_from(self.state.in_flight()).unwrap_or(u32::MAX),
        }))
    }
}

/// Checks `authorization: Bearer TOKEN` on every call when a token is configured.
pub fn check_token(
    expected: Option<Arc<str>>,
) -> impl Fn(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |req: Request<()>| {
        let Some(expected) = &expected else {
            return Ok(req);
        };
        let given = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            Ok(req)
        } else {
            Err(Status::unauthenticated("missing or wrong worker token"))
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
