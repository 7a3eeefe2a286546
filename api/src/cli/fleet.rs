//! `htsprep-api fleet status`: the fleet as the running API sees it (`GET /fleet`).

use std::io::Write;

use anyhow::Context;
use clap::Subcommand;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Every worker or task: id, status, health, address, start, its jobs or since when it is
    /// idle, and why the ones that stopped lately did. Needs HTSPREP_ADMIN_TOKEN.
    Status {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// The running API (default: http://HTSPREP_LISTEN).
        #[arg(long)]
        api: Option<url::Url>,
    },
    /// Keep at least N idle workers (tasks) ready for cold jobs, within the worker maximum; 0
    /// turns the warm pool off. Applies to the API replica that answers, until it restarts
    /// (HTSPREP_MIN_IDLE_WORKERS sets it for good). Needs HTSPREP_ADMIN_TOKEN.
    Scale {
        #[arg(long = "min-idle", value_name = "N")]
        min_idle: usize,
        /// The running API (default: http://HTSPREP_LISTEN).
        #[arg(long)]
        api: Option<url::Url>,
    },
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "-".into(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) if a.is_empty() => "-".into(),
        serde_json::Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

impl FleetCommand {
    pub async fn run(self, config: &Config) -> anyhow::Result<i32> {
        match self {
            FleetCommand::Status { json, api } => status(config, api, json).await,
            FleetCommand::Scale { min_idle, api } => scale(config, api, min_idle).await,
        }
    }
}

/// One admin call to the running API; its JSON answer, or the API's message as the error.
async fn call(
    config: &Config,
    api: Option<url::Url>,
    request: impl FnOnce(&reqwest::Client, &str) -> reqwest::RequestBuilder,
) -> anyhow::Result<serde_json::Value> {
    let token = config
        .admin_token
        .as_deref()
        .context("HTSPREP_ADMIN_TOKEN is not set: the fleet endpoints are admin endpoints")?;
    let base = super::api_base(config, api);
    let resp = request(&reqwest::Client::new(), &base)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("no htsprep API answers at {base} (pass --api)"))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.context("read the API's answer")?;
    if !status.is_success() {
        anyhow::bail!("the API answered {status}: {}", text(&body["message"]));
    }
    Ok(body)
}

async fn scale(config: &Config, api: Option<url::Url>, min_idle: usize) -> anyhow::Result<i32> {
    let body = call(config, api, |http, base| {
        http.post(format!("{base}/fleet/scale"))
            .json(&serde_json::json!({ "min_idle": min_idle }))
    })
    .await?;
    println!(
        "warm pool: at least {} idle worker(s) (now {} idle, {} starting)",
        text(&body["min_idle"]),
        text(&body["idle"]),
        text(&body["warming"])
    );
    Ok(0)
}

async fn status(config: &Config, api: Option<url::Url>, json: bool) -> anyhow::Result<i32> {
    let body = call(config, api, |http, base| http.get(format!("{base}/fleet"))).await?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&body)?)?;
        return Ok(0);
    }
    let warm = &body["warm"];
    let pool = if warm["min_idle"] == 0 {
        "no warm pool".to_owned()
    } else {
        format!(
            "a warm pool of {} idle ({} idle now, {} starting)",
            text(&warm["min_idle"]),
            text(&warm["idle"]),
            text(&warm["warming"])
        )
    };
    writeln!(
        out,
        "{} fleet, at most {} workers, {pool}",
        text(&body["provider"]),
        text(&body["max_workers"]),
    )?;
    let columns = [
        "id",
        "last_status",
        "health",
        "address",
        "started_at",
        "jobs",
        "idle_since",
        "stopped_reason",
    ];
    writeln!(out, "{}", columns.join("\t").to_uppercase())?;
    for w in body["workers"].as_array().into_iter().flatten() {
        let row: Vec<String> = columns.iter().map(|c| text(&w[*c])).collect();
        writeln!(out, "{}", row.join("\t"))?;
    }
    Ok(0)
}
