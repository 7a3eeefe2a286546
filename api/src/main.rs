use clap::Parser;

use htsprep_api::cli::{Cli, Command};
use htsprep_api::config::Config;

/// jemalloc: with 4,096 connections on bench/connections.sh it kept a little less memory and a
/// slightly lower tail than glibc's malloc (96-98 MiB and p99 1.6-2.2x nginx's, against
/// 102-103 MiB and 2.1-2.3x; the runs are noisy).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

async fn serve(config: Config) -> anyhow::Result<()> {
    use anyhow::Context;
    let listener = htsprep_api::server::bind(config.listen, config.listen_backlog)
        .with_context(|| format!("bind {}", config.listen))?;
    println!("htsprep-api listening on http://{}", listener.local_addr()?);
    htsprep_api::server::serve(config, listener, htsprep_shared::process::shutdown_signal()).await
}

/// The runtime keeps tokio's defaults. Polling for IO every 7 tasks instead of 61 once helped
/// bench/hot-path.sh (64 connections); with CORS around the router once and jemalloc it no
/// longer does (61: 1.17x nginx's req/s, p99 0.61x), and with 4,096 connections it made the p99
/// 2.6x nginx's where 61 gives 1.6-1.8x (BENCHMARKS.md).
fn main() -> std::process::ExitCode {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("build the runtime")
        .block_on(real_main())
}

async fn real_main() -> std::process::ExitCode {
    htsprep_shared::process::init_logging();
    let cli = Cli::parse();
    if let Command::Openapi = cli.command {
        // Needs no configuration.
        let doc = htsprep_api::http::openapi::document();
        println!("{}", doc.to_pretty_json().expect("the document serializes"));
        return std::process::ExitCode::SUCCESS;
    }
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
        Command::Prepare(cmd) => cmd.run(&config).await,
        Command::Fleet(cmd) => cmd.run(&config).await,
        Command::CreateIndexes => htsprep_api::cli::create_indexes(&config).await,
        Command::Openapi => unreachable!("answered above"),
    };
    match result {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("htsprep-api: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
