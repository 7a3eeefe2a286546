//! `htsprep-api prepare`: prepares every matching catalog file ahead of its users, through the
//! running API (its cold path, one job per file, within its admission limit), with a progress
//! bar and a closing summary. Safe to interrupt and run again: files already prepared are
//! counted as such and not asked for again.

use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use htsprep_shared::catalog::CatalogQuery;
use htsprep_shared::domain::{FileRecord, Format, Ident};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::StatusCode;

use crate::config::Config;
use crate::stores;

#[derive(Debug, clap::Args)]
pub struct PrepareCommand {
    /// Only files of this DCC.
    #[arg(long)]
    dcc: Option<Ident>,
    /// Only files of this format (SAM, BAM, VCF, GFF3, BED, ...).
    #[arg(long, value_parser = |s: &str| Format::parse(s).map_err(|e| e.to_string()))]
    format: Option<Format>,
    /// Files prepared at once (the API answers more than its HTSPREP_MAX_ACTIVE_WORKFLOWS with
    /// 429, which is waited out).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    parallel: u16,
    /// The running API (default: http://HTSPREP_LISTEN, on 127.0.0.1 when it listens on every
    /// address).
    #[arg(long)]
    api: Option<url::Url>,
}

/// How one file ended.
#[derive(Debug)]
enum Outcome {
    Prepared,
    AlreadyReady,
    Failed(String),
}

/// What the closing summary counts.
#[derive(Default)]
struct Tally {
    prepared: usize,
    ready: usize,
    failed: Vec<(String, String)>,
}

impl Tally {
    fn line(&self) -> String {
        format!(
            "prepared {}, already ready {}, failed {}",
            self.prepared,
            self.ready,
            self.failed.len()
        )
    }
}

/// The message of an API error body, or the body itself.
async fn reason(resp: reqwest::Response) -> String {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or(text);
    format!("HTTP {}: {message}", status.as_u16())
}

fn retry_after(resp: &reqwest::Response) -> Duration {
    let secs = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .unwrap_or(5);
    Duration::from_secs(secs.clamp(1, 60))
}

/// Asks the API for one file until it is prepared or has failed.
async fn prepare_one(http: &reqwest::Client, base: &str, file: &FileRecord) -> Outcome {
    let path = format!("{base}/data/{}/{}", file.dcc, file.local_id);
    let status = async {
        let resp = http.get(format!("{path}/status")).send().await?;
        resp.error_for_status()?.json::<serde_json::Value>().await
    };
    match status.await {
        Ok(s) if s["ready"] == true => return Outcome::AlreadyReady,
        Ok(_) => {}
        Err(e) => return Outcome::Failed(format!("asking the API: {e}")),
    }
    loop {
        // Held until the file is ready (at most HTSPREP_MAX_WAIT_SECONDS); one byte of it.
        let resp = match http
            .get(format!("{path}?wait=3600"))
            .header(reqwest::header::RANGE, "bytes=0-0")
            .send()
            .await
        {
            Ok(resp) => resp,
            Err(e) => return Outcome::Failed(format!("asking the API: {e}")),
        };
        match resp.status() {
            StatusCode::OK | StatusCode::PARTIAL_CONTENT => return Outcome::Prepared,
            // Still on the way (the wait limit passed): ask again.
            StatusCode::ACCEPTED => {}
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                tokio::time::sleep(retry_after(&resp)).await;
            }
            _ => return Outcome::Failed(reason(resp).await),
        }
    }
}

impl PrepareCommand {
    pub async fn run(self, config: &Config) -> anyhow::Result<i32> {
        let base = super::api_base(config, self.api);
        let http = reqwest::Client::builder()
            .build()
            .context("build the HTTP client")?;
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| {
                format!(
                    "no htsprep API answers at {base} (start `htsprep-api serve` or pass --api)"
                )
            })?;
        let catalog = stores::open(config).await?.catalog;
        let mut files = Vec::new();
        let mut query = CatalogQuery {
            dcc: self.dcc,
            limit: Some(1000),
            after: None,
        };
        loop {
            let page = catalog.list(&query).await?;
            files.extend(
                page.files
                    .into_iter()
                    .filter(|f| self.format.is_none_or(|want| f.format == want)),
            );
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }

        let bar = ProgressBar::new(files.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("[{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
                .expect("a valid template"),
        );
        let mut tally = Tally::default();
        let total = files.len();
        let mut outcomes = futures::stream::iter(files)
            .map(|file| {
                let http = &http;
                let base = base.as_str();
                async move {
                    let outcome = prepare_one(http, base, &file).await;
                    (format!("{}/{}", file.dcc, file.local_id), outcome)
                }
            })
            .buffer_unordered(usize::from(self.parallel));
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        let mut stopped = false;
        loop {
            tokio::select! {
                next = outcomes.next() => match next {
                    Some((name, outcome)) => {
                        match outcome {
                            Outcome::Prepared => tally.prepared += 1,
                            Outcome::AlreadyReady => tally.ready += 1,
                            Outcome::Failed(why) => {
                                bar.suspend(|| eprintln!("{name}: {why}"));
                                tally.failed.push((name, why));
                            }
                        }
                        bar.inc(1);
                        bar.set_message(tally.line());
                    }
                    None => break,
                },
                _ = &mut interrupted => {
                    stopped = true;
                    break;
                }
            }
        }
        bar.finish_and_clear();
        println!("{}", tally.line());
        for (name, why) in &tally.failed {
            println!("failed: {name}: {why}");
        }
        if stopped {
            let done = tally.prepared + tally.ready + tally.failed.len();
            println!(
                "interrupted: {} of {total} files not finished here (their jobs carry on); run it again to go on",
                total - done
            );
            return Ok(130);
        }
        Ok(if tally.failed.is_empty() { 0 } else { 1 })
    }
}
