use clap::Parser;

/// jemalloc: on bench/hot-path.sh with 4,096 connections its p99 was 1.8-2.4x nginx's where
/// glibc's malloc gave 2.6-3.5x, at the same memory.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use htsprep_api::cli::{Cli, Command};
use htsprep_api::config::Config;

async fn serve(config: Config) -> anyhow::Result<()> {
    use anyhow::Context;
    let listener = htsprep_api::server::bind(config.listen, config.listen_backlog)
        .with_context(|| format!("bind {}", config.listen))?;
    println!("htsprep-api listening on http://{}", listener.local_addr()?);
    htsprep_api::server::serve(config, listener, htsprep_shared::process::shutdown_signal()).await
}

/// How many tasks a runtime thread runs before it polls for IO again (tokio's default is 61).
/// Serving many small Range requests, polling often keeps every connection moving: measured on
/// bench/hot-path.sh, 7 raised throughput by about a quarter and cut p99 from 12-90 ms to ~7 ms.
const EVENT_INTERVAL: u32 = 7;

fn main() -> std::process::ExitCode {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .event_interval(EVENT_INTERVAL)
        .build()
        .expect("build the runtime")
        .block_on(real_main())
}

async fn real_main() -> std::process::ExitCode {
    htsprep_shared::process::init_logging();
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprint!("htsprep-api: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve => serve(config).await.map(|()| 0),
        Command::Files(cmd) => cmd.run(&config).await,
        Command::Jobs(cmd) => cmd.run(&config).await,
        Command::CreateIndexes => htsprep_api::cli::create_indexes(&config).await,
    };
    match result {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("htsprep-api: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
