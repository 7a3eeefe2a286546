use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use htsprep_worker::config::WorkerConfig;
use htsprep_worker::server;
use tokio::net::TcpListener;

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

async fn serve(config: WorkerConfig) -> anyhow::Result<()> {
    let grpc = TcpListener::bind(config.grpc_listen)
        .await
        .with_context(|| format!("bind gRPC {}", config.grpc_listen))?;
    let health = TcpListener::bind(config.health_listen)
        .await
        .with_context(|| format!("bind health {}", config.health_listen))?;
    // The local fleet reads this line to learn the ports chosen for port 0. If whoever started
    // this worker is gone before reading it, nobody will dispatch here: stop instead of idling.
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "htsprep-worker ready grpc={} health={}",
            grpc.local_addr()?,
            health.local_addr()?
        )
        .and_then(|()| out.flush())
        .context("announce the listening ports (the process that started this worker is gone)")?;
    }
    server::run(
        config,
        grpc,
        health,
        htsprep_shared::process::shutdown_signal(),
    )
    .await?;
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
    htsprep_shared::process::init_logging();
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
