//! The worker process: gRPC on one listener, HTTP `/health` on another, idle self-shutdown, and
//! drain on a shutdown signal (stop taking jobs, let in-flight ones finish within the grace
//! period, hand back the rest).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use htsprep_proto::v1::worker_server::WorkerServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

use crate::config::WorkerConfig;
use crate::fetch::{FetchOptions, Fetcher};
use crate::identity;
use crate::job::JobContext;
use crate::service::{WorkerService, WorkerState, check_token};

/// Why the worker stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    Signal,
    Idle,
}

async fn health(State(state): State<WorkerState>) -> (StatusCode, axum::Json<serde_json::Value>) {
    let in_flight = state.in_flight();
    if state.draining.is_cancelled() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "draining", "in_flight": in_flight})),
        )
    } else {
        (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ok", "in_flight": in_flight})),
        )
    }
}

/// Runs the worker until `shutdown` resolves or it has been idle too long, then drains.
pub async fn run(
    config: WorkerConfig,
    grpc: TcpListener,
    health_listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<StopReason> {
    let store = config
        .storage
        .open_stores()
        .await
        .context("open the job store")?
        .jobs;
    let artifacts = config
        .storage
        .open_artifact_store()
        .await
        .context("open the artifact store")?;
    std::fs::create_dir_all(&config.work_dir)
        .with_context(|| format!("create the work directory {}", config.work_dir.display()))?;
    let grpc_addr = grpc.local_addr()?;
    let me = identity::resolve(&config, grpc_addr)
        .await
        .context("find out which worker this is")?;
    tracing::info!(provider = %me.provider, resource_id = %me.resource_id, address = %me.address, "worker identity");
    let ctx = JobContext {
        store,
        artifacts,
        fetcher: Fetcher::new(Arc::new(config.sources.clone()), FetchOptions::default())?
            .with_s3(config.storage.aws.s3_client().await),
        worker: me,
        work_root: config.work_dir.clone(),
        heartbeat_every: config.heartbeat_every,
        kill_grace: Duration::from_secs(5),
        threads: config.threads,
        worker_exe: std::env::current_exe().context("find this worker's own binary")?,
    };
    let state = WorkerState::new(ctx, config.max_jobs);

    let (reporter, health_service) = tonic_health::server::health_reporter();
    reporter.set_serving::<WorkerServer<WorkerService>>().await;
    let stop_serving = CancellationToken::new();
    let token: Option<Arc<str>> = config.token.as_deref().map(Arc::from);
    let grpc_task = {
        let svc =
            WorkerServer::with_interceptor(WorkerService::new(state.clone()), check_token(token));
        let stop = stop_serving.clone();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(health_service)
                .add_service(svc)
                .serve_with_incoming_shutdown(TcpListenerStream::new(grpc), stop.cancelled_owned()),
        )
    };
    let http_task = {
        let app = Router::new()
            .route("/health", get(health))
            .with_state(state.clone());
        let stop = stop_serving.clone();
        tokio::spawn(async move {
            axum::serve(health_listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        })
    };

    let reason = tokio::select! {
        () = shutdown => StopReason::Signal,
        () = idle(&state, config.idle_timeout) => StopReason::Idle,
        () = state.draining.cancelled() => StopReason::Signal,
    };
    tracing::info!(?reason, in_flight = state.in_flight(), "draining");
    state.draining.cancel();
    reporter
        .set_not_serving::<WorkerServer<WorkerService>>()
        .await;
    state.tracker.close();
    if tokio::time::timeout(config.drain_grace, state.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            in_flight = state.in_flight(),
            "drain grace period over; handing back in-flight jobs"
        );
        state.handback.cancel();
        state.tracker.wait().await;
    }
    stop_serving.cancel();
    grpc_task.await?.context("gRPC server")?;
    http_task.await?.context("health server")?;
    tracing::info!(?reason, "worker stopped");
    Ok(reason)
}

async fn idle(state: &WorkerState, timeout: Option<Duration>) {
    let Some(timeout) = timeout else {
        return std::future::pending().await;
    };
    let tick = (timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    loop {
        tokio::time::sleep(tick).await;
        if state.idle_for() >= timeout {
            tracing::info!(?timeout, "idle; stopping");
            return;
        }
    }
}
