use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use htsprep_worker::config::WorkerConfig;
use htsprep_worker::server;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser)]
#[command(
    name = "htsprep-worker",
    version,
    about = "htsprep worker: runs pipelines dispatched over gRPC"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve gRPC and /health until SIGTERM/SIGINT or the idle timeout (the default command).
    Serve,
    /// Exit 0 if the worker's /health answers 200 (for container health checks).
    Healthcheck,
}

async fn wait_for_signal() {
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = int.recv() => tracing::info!("SIGINT"),
    }
}

async fn serve(config: WorkerConfig) -> anyhow::Result<()> {
    let grpc = TcpListener::bind(config.grpc_listen)
        .await
        .with_context(|| format!("bind gRPC {}", config.grpc_listen))?;
    let health = TcpListener::bind(config.health_listen)
        .await
        .with_context(|| format!("bind health {}", config.health_listen))?;
    // The local fleet reads this line to learn the ports chosen for port 0.
    println!(
        "htsprep-worker ready grpc={} health={}",
        grpc.local_addr()?,
        health.local_addr()?
    );
    server::run(config, grpc, health, wait_for_signal()).await?;
    Ok(())
}

async fn healthcheck(config: WorkerConfig) -> anyhow::Result<()> {
    let url = format!("http://{}/health", config.health_listen);
    let resp = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()?
        .get(&url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    anyhow::ensure!(
        resp.status().is_success(),
        "{url} answered {}",
        resp.status()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let config = match WorkerConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprint!("htsprep-worker: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Healthcheck => healthcheck(config).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("htsprep-worker: {e:#}");
            ExitCode::FAILURE
        }
    }
}
