//! Starting `htsprep-api serve` as a process on a loopback port with its own data directory and
//! the local worker fleet, and talking to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::bin;

pub const ADMIN: &str = "e2e-admin-token-0123456789";

pub struct ApiProcess {
    pub child: Child,
    pub base: String,
    pub data: tempfile::TempDir,
    pub http: reqwest::Client,
}

impl ApiProcess {
    /// Starts the API; `extra` adds or overrides environment variables.
    pub fn start(extra: &[(&str, &str)]) -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        let mut cmd = Command::new(bin("htsprep-api"));
        cmd.arg("serve")
            .env("HTSPREP_DATA_DIR", data.path())
            .env("HTSPREP_LISTEN", "127.0.0.1:0")
            .env("HTSPREP_ADMIN_TOKEN", ADMIN)
            .env("HTSPREP_WORKER_BIN", bin("htsprep-worker"))
            .env("HTSPREP_HEARTBEAT_SECONDS", "1")
            .env("HTSPREP_STALE_AFTER_SECONDS", "10")
            .env("HTSPREP_SORT_MEMORY", "64M")
            .env("HTSPREP_SAMTOOLS_SORT_MEMORY", "64M")
            .env("HTSPREP_SHUTDOWN_GRACE_SECONDS", "2")
            .env("RUST_LOG", "info")
            // Never dial a worker address outside loopback (an emulator's invented 10.x).
            .env("HTSPREP_LOOPBACK_ONLY", "true")
            .env("HTSPREP_FILE_ROOTS", crate::file_roots())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start htsprep-api");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the listening line");
        let base = line
            .trim()
            .strip_prefix("htsprep-api listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Self {
            child,
            base,
            data,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Writes what a GET of `path` answers (after any redirect) to `to`; panics unless it is 200.
    pub async fn download(&self, path: &str, to: &Path) {
        let resp = self.http.get(self.url(path)).send().await.expect("GET");
        assert_eq!(resp.status(), 200, "{path}");
        std::fs::write(to, resp.bytes().await.expect("body")).expect("write");
    }

    /// Registers files from a JSON Lines manifest through the admin endpoint.
    pub async fn register(&self, manifest: &str) -> serde_json::Value {
        let resp = self
            .http
            .post(self.url("/files"))
            .bearer_auth(ADMIN)
            .body(manifest.to_owned())
            .send()
            .await
            .expect("POST /files");
        assert!(resp.status().is_success(), "register: {}", resp.status());
        resp.json().await.expect("import report")
    }

    /// Registers the real test files in `testdata/` under the DCC `testdata`.
    pub async fn register_testdata(&self) -> serde_json::Value {
        let dir = tempfile::tempdir().expect("temp dir");
        self.register(&crate::testdata_manifest(
            "testdata",
            &dir.path().join("m.jsonl"),
        ))
        .await
    }

    /// A GET as the operator (with the admin token): `/jobs/{id}` shows workers and events.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.http
            .get(self.url(path))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect(path)
            .json()
            .await
            .expect("json")
    }

    /// A cold GET: asserts `202` with `Location: /jobs/{id}` and returns the job id.
    pub async fn cold_get(&self, path: &str) -> String {
        let resp = self.http.get(self.url(path)).send().await.expect(path);
        assert_eq!(resp.status(), 202, "{path}");
        let location = resp.headers()["location"]
            .to_str()
            .expect("ascii")
            .to_owned();
        let body: serde_json::Value = resp.json().await.expect("json");
        let job_id = body["job_id"].as_str().expect("job_id").to_owned();
        assert_eq!(location, format!("/jobs/{job_id}"));
        job_id
    }

    /// Polls `/jobs/{id}` until a worker runs it; returns the job.
    pub async fn wait_running(&self, job_id: &str, within: Duration) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let job = self.get_json(&format!("/jobs/{job_id}")).await;
            if job["status"] == "running" {
                return job;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{job_id} never ran: {job:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `/jobs/{id}` until it is completed or failed.
    pub async fn wait_job(&self, job_id: &str, within: Duration) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let job = self.get_json(&format!("/jobs/{job_id}")).await;
            if job["status"] == "completed" || job["status"] == "failed" {
                return job;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "job {job_id} did not finish: {job:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Where a published artifact lives on disk.
    pub fn artifact_path(&self, key: &str) -> PathBuf {
        self.data.path().join("artifacts/objects").join(key)
    }

    pub fn staging(&self) -> PathBuf {
        self.data.path().join("artifacts/staging")
    }

    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// A counter from `/metrics`.
    pub async fn metric(&self, name: &str) -> u64 {
        self.metrics(&[name]).await[0]
    }

    /// Several counters read from one scrape, so they agree with each other.
    pub async fn metrics<const N: usize>(&self, names: &[&str; N]) -> [u64; N] {
        let text = self
            .http
            .get(self.url("/metrics"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        names.map(|name| {
            text.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
                .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
        })
    }
}

impl Drop for ApiProcess {
    fn drop(&mut self) {
        // SIGTERM first so the API stops its workers.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        for _ in 0..200 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
