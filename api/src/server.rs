//! `htsprep-api serve`: open the stores, start the fleet, the executor and the reconciler, serve
//! HTTP until the shutdown signal, then drain.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::catalog_cache::CachedCatalog;
use crate::coalesce::Coalesce;
use crate::config::Config;
use crate::executor::{Executor, Parts};
use crate::fleet::ecs::{EcsSettings, ecs_client};
use crate::fleet::{
    Discovery, EcsFleet, EcsFleetConfig, Inspect, LocalFleet, LocalFleetConfig, Provisioner, Roster,
};
use crate::http::{AppState, FleetView, Shared, router};
use crate::warm::{WarmParts, WarmPool};
use crate::{reconciler, stores};

fn absolute(p: &std::path::Path) -> std::path::PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_owned())
    }
}

/// The token workers require: `HTSPREP_WORKER_TOKEN`, or one generated once and kept (owner
/// read/write only) in the data directory, shared by the API processes and workers using it.
pub fn worker_token(config: &Config) -> anyhow::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(t) = &config.fleet.token {
        return Ok(t.clone());
    }
    let dir = &config.storage.data_dir;
    let path = dir.join("worker-token");
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let fresh = uuid::Uuid::new_v4().simple().to_string();
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(mut f) => {
            f.write_all(fresh.as_bytes())
                .with_context(|| format!("write {}", path.display()))?;
            Ok(fresh)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let kept = std::fs::read_to_string(&path)
                .with_context(|| format!("read {}", path.display()))?;
            let kept = kept.trim();
            anyhow::ensure!(
                kept.len() >= 16,
                "{} holds no worker token; remove it to have a new one made",
                path.display()
            );
            Ok(kept.to_owned())
        }
        Err(e) => Err(e).with_context(|| format!("create {}", path.display())),
    }
}

/// The local fleet the configuration describes.
pub fn local_fleet(config: &Config, token: String) -> LocalFleet {
    LocalFleet::new(LocalFleetConfig {
        worker_bin: config.fleet.worker_bin.clone(),
        data_dir: absolute(&config.storage.data_dir),
        max_workers: config.fleet.max_workers,
        jobs_per_worker: config.fleet.jobs_per_worker,
        idle_timeout: config.fleet.idle_timeout,
        nice: config.fleet.local_nice,
        heartbeat: config.fleet.heartbeat,
        drain_grace: config.jobs.shutdown_grace,
        token,
        start_timeout: std::time::Duration::from_secs(15),
    })
}

/// The environment every ECS worker task gets from the API, so that both sides agree on
/// heartbeats, job bounds and timeouts (the task definition sets the rest, the token included).
pub fn ecs_worker_env(config: &Config, ecs: &EcsSettings) -> Vec<(String, String)> {
    let f = &config.fleet;
    [
        (
            "HTSPREP_WORKER_LISTEN",
            format!("0.0.0.0:{}", ecs.grpc_port),
        ),
        ("HTSPREP_WORKER_MAX_JOBS", f.jobs_per_worker.to_string()),
        (
            "HTSPREP_WORKER_IDLE_TIMEOUT_SECONDS",
            f.idle_timeout.as_secs().max(1).to_string(),
        ),
        (
            "HTSPREP_WORKER_DRAIN_GRACE_SECONDS",
            config.jobs.shutdown_grace.as_secs().to_string(),
        ),
        (
            "HTSPREP_HEARTBEAT_SECONDS",
            f.heartbeat.as_secs().max(1).to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The fleet the configuration selects: ECS tasks when `ECS_CLUSTER` is set, else worker
/// processes on this host.
pub async fn start_fleet(config: &Config) -> anyhow::Result<Fleet> {
    if let Some(ecs) = &config.fleet.ecs {
        let fleet = EcsFleet::new(
            ecs_client(&config.storage.aws, ecs).await,
            EcsFleetConfig {
                settings: ecs.clone(),
                max_workers: config.fleet.max_workers,
                worker_env: ecs_worker_env(config, ecs),
                backoff_base: std::time::Duration::from_secs(1),
            },
        );
        fleet.start_polling();
        tracing::info!(
            cluster = %ecs.cluster,
            task_definition = %ecs.task_definition,
            subnets = %ecs.subnets.join(","),
            security_groups = %ecs.security_groups.join(","),
            assign_public_ip = ecs.assign_public_ip,
            grpc_port = ecs.grpc_port,
            max_workers = config.fleet.max_workers,
            run_task_per_second = ecs.run_task_per_second,
            describe_per_second = ecs.describe_per_second,
            require_healthy = ecs.require_healthy,
            "fleet: ECS Fargate tasks"
        );
        return Ok(Fleet::of(fleet));
    }
    if !config.fleet.worker_bin.exists() && config.fleet.worker_bin.components().count() > 1 {
        anyhow::bail!(
            "the worker binary {} does not exist; build it (cargo build --bins) or set HTSPREP_WORKER_BIN",
            config.fleet.worker_bin.display()
        );
    }
    let fleet = local_fleet(config, worker_token(config)?);
    fleet.adopt_orphans().await;
    tracing::info!(
        worker_bin = %config.fleet.worker_bin.display(),
        max_workers = config.fleet.max_workers,
        "fleet: local worker processes"
    );
    Ok(Fleet::of(fleet))
}

/// The fleet's three seams, from one fleet.
pub struct Fleet {
    pub provisioner: Arc<dyn Provisioner>,
    pub discovery: Arc<dyn Discovery>,
    pub inspect: Arc<dyn Inspect>,
    pub roster: Arc<dyn Roster>,
}

impl Fleet {
    pub fn of<F: Provisioner + Discovery + Inspect + Roster + Clone + 'static>(fleet: F) -> Self {
        Self {
            provisioner: Arc::new(fleet.clone()),
            discovery: Arc::new(fleet.clone()),
            inspect: Arc::new(fleet.clone()),
            roster: Arc::new(fleet),
        }
    }
}

/// Builds the service's state from its configuration and a fleet.
pub async fn build(config: &Config, fleet: Fleet) -> anyhow::Result<AppState> {
    let opened = stores::open(config).await?;
    let catalog = Arc::new(CachedCatalog::new(opened.catalog, config.catalog_cache));
    let store = opened.jobs;
    let artifacts = config
        .storage
        .open_artifact_store()
        .await
        .with_context(|| {
            format!(
                "open the artifact store in {}",
                config.storage.data_dir.display()
            )
        })?;
    let warm = WarmPool::new(WarmParts {
        provisioner: Arc::clone(&fleet.provisioner),
        discovery: Arc::clone(&fleet.discovery),
        dial: config.fleet.dial,
        worker_token: worker_token(config)?,
        max_workers: config.fleet.max_workers,
        min_idle: config.fleet.min_idle,
        idle_timeout: config.fleet.idle_timeout,
    })?;
    let executor = Executor::new(Parts {
        store: Arc::clone(&store),
        artifacts: Arc::clone(&artifacts),
        provisioner: fleet.provisioner,
        discovery: fleet.discovery,
        inspect: fleet.inspect,
        settings: config.jobs.clone(),
        worker_token: worker_token(config)?,
        dial: config.fleet.dial,
        idle: warm.idle_hint(),
    });
    let state = AppState::from(Shared {
        fleet: FleetView {
            roster: fleet.roster,
            provider: if config.fleet.ecs.is_some() {
                "ecs"
            } else {
                "local"
            },
            max_workers: config.fleet.max_workers,
            warm,
        },
        catalog,
        store,
        artifacts,
        executor,
        http: Arc::new(config.sources.clone())
            .client(concat!("htsprep-api/", env!("CARGO_PKG_VERSION")))
            .context("build the HTTP client for sources")?,
        s3: config.storage.aws.s3_client().await,
        admin_token: config.admin_token.as_deref().map(Arc::from),
        ready: Arc::new(RwLock::new(HashSet::new())),
        probes: Coalesce::on(tokio::runtime::Handle::current()),
        metrics: Arc::default(),
        layouts: Default::default(),
        redirect: config.s3_redirect,
    });
    Ok(state)
}

/// Binds the API's listening socket with room for `backlog` connections not yet accepted.
pub fn bind(addr: std::net::SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Serves until `shutdown` resolves, then drains.
pub async fn serve(
    mut config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Resolved once: the local fleet and the executor use the same token.
    config.fleet.token = Some(worker_token(&config)?);
    let fleet = start_fleet(&config).await?;
    let provisioner = Arc::clone(&fleet.provisioner);
    let state = match build(&config, fleet).await {
        Ok(state) => state,
        Err(e) => {
            provisioner.shutdown().await;
            return Err(e);
        }
    };
    let stop = CancellationToken::new();
    let reconciler = tokio::spawn(reconciler::run(
        Arc::clone(&state.store),
        Arc::clone(&state.catalog) as Arc<dyn htsprep_shared::catalog::Catalog>,
        state.executor.clone(),
        stop.clone(),
    ));
    let warm = tokio::spawn(state.fleet.warm.clone().run(stop.clone()));
    let executor = state.executor.clone();
    tracing::info!(addr = %listener.local_addr()?, data_dir = %config.storage.data_dir.display(), "htsprep-api serving");
    let app = router(state);
    let draining = executor.clone();
    let threads = crate::listen::Threads::start().context("start the serving threads")?;
    let served = crate::listen::serve(listener, &threads, app, async move {
        shutdown.await;
        tracing::info!("shutting down: no new work");
        draining.begin_drain_soft();
    })
    .await
    .context("HTTP server");
    stop.cancel();
    let _ = reconciler.await;
    let _ = warm.await;
    executor.shutdown(config.jobs.shutdown_grace).await;
    provisioner.shutdown().await;
    threads.stop().await;
    served?;
    tracing::info!("htsprep-api stopped");
    Ok(())
}
