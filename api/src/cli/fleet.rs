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
        let FleetCommand::Status { json, api } = self;
        let token = config
            .admin_token
            .as_deref()
            .context("HTSPREP_ADMIN_TOKEN is not set: the fleet view is an admin endpoint")?;
        let base = super::api_base(config, api);
        let resp = reqwest::Client::new()
            .get(format!("{base}/fleet"))
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("no htsprep API answers at {base} (pass --api)"))?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.context("read the API's answer")?;
        if !status.is_success() {
            anyhow::bail!("the API answered {status}: {}", text(&body["message"]));
        }
        let mut out = std::io::stdout().lock();
        if json {
            writeln!(out, "{}", serde_json::to_string_pretty(&body)?)?;
            return Ok(0);
        }
        writeln!(
            out,
            "{} fleet, at most {} workers",
            text(&body["provider"]),
            text(&body["max_workers"])
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
}
