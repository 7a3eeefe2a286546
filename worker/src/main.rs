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
    /// Compress sorted text from standard input to BGZF and write its tabix index (OUT.tbi) in
    /// the same pass; a tool of the clean-sort-bgzip stages. Exit 1: the input cannot be indexed
    /// (line and reason on stderr); 3: a read or write failed.
    BgzipTabix {
        #[arg(value_enum)]
        preset: htsprep_worker::bgzip_tabix::Preset,
        /// The compressed file to write.
        out: std::path::PathBuf,
        /// Header lines written before standard input (read once standard input starts).
        #[arg(long)]
        header: Option<std::path::PathBuf>,
        /// Compression threads.
        #[arg(long, default_value = "1")]
        threads: std::num::NonZero<usize>,
    },
    /// Clean text records from standard input for sorting (the first step of the clean-sort-bgzip
    /// stages): records to standard output, header lines and counts to files. Exit 1: the input
    /// is not valid (line and reason on stderr); 3: a read or write failed; 141: standard output
    /// was closed.
    Clean {
        #[arg(value_enum)]
        preset: htsprep_worker::bgzip_tabix::Preset,
        /// The file the header lines are written to (VCF, GFF3).
        #[arg(long)]
        header: Option<std::path::PathBuf>,
        /// The file "records=N", "header_lines=N" and "max_end=N" are written to.
        #[arg(long)]
        stats: std::path::PathBuf,
        /// The file "NAME<TAB>records" is written to, one line per sequence.
        #[arg(long)]
        counts: std::path::PathBuf,
    },
}

fn clean(
    preset: htsprep_worker::bgzip_tabix::Preset,
    header: Option<&std::path::Path>,
    stats: &std::path::Path,
    counts: &std::path::Path,
) -> ExitCode {
    match htsprep_worker::clean::command(preset, header, stats, counts) {
        Ok(_) => ExitCode::SUCCESS,
        // As a command killed by SIGPIPE would: the pipe's first failure is the reader's.
        Err(e) if e.is_broken_pipe() => ExitCode::from(141),
        Err(e) => {
            eprintln!("htsprep-worker clean: {e}");
            ExitCode::from(if e.is_bad_input() { 1 } else { 3 })
        }
    }
}

fn bgzip_tabix(
    preset: htsprep_worker::bgzip_tabix::Preset,
    out: &std::path::Path,
    header: Option<&std::path::Path>,
    threads: std::num::NonZero<usize>,
) -> ExitCode {
    match htsprep_worker::bgzip_tabix::command(preset, header, out, threads) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("htsprep-worker bgzip-tabix: {e}");
            ExitCode::from(if e.is_bad_input() { 1 } else { 3 })
        }
    }
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
    // The stage tools: no worker configuration (a stage's environment has none).
    match &cli.command {
        Some(Command::BgzipTabix {
            preset,
            out,
            header,
            threads,
        }) => return bgzip_tabix(*preset, out, header.as_deref(), *threads),
        Some(Command::Clean {
            preset,
            header,
            stats,
            counts,
        }) => return clean(*preset, header.as_deref(), stats, counts),
        _ => {}
    }
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
        Command::BgzipTabix { .. } | Command::Clean { .. } => {
            unreachable!("handled before the configuration is read")
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("htsprep-worker: {e:#}");
            ExitCode::FAILURE
        }
    }
}
