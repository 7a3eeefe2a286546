//! A MongoDB-wire server for tests: `scripts/mongo-test-server.sh` (mongoeco on loopback), started
//! by the test that needs it and stopped when the returned guard drops. If
//! `HTSPREP_TEST_MONGODB_URI` is set (the test script starts one server for the whole run), that
//! server is used instead. Every caller gets a database of its own.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{DEFAULT_DATABASE, MongoDb, MongoSettings};

pub struct TestMongo {
    child: Option<Child>,
    pub uri: String,
}

fn launcher() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/mongo-test-server.sh")
}

impl TestMongo {
    pub async fn start() -> Self {
        if let Ok(uri) = std::env::var("HTSPREP_TEST_MONGODB_URI")
            && !uri.is_empty()
        {
            return Self { child: None, uri };
        }
        tokio::task::spawn_blocking(|| {
            let mut child = Command::new("bash")
                .arg(launcher())
                .arg("--port")
                .arg("0")
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start scripts/mongo-test-server.sh (scripts/setup.sh prepares it)");
            let mut line = String::new();
            BufReader::new(child.stdout.take().expect("stdout"))
                .read_line(&mut line)
                .expect("read the listening line");
            let addr = line
                .trim()
                .strip_prefix("mongoeco listening on ")
                .unwrap_or_else(|| panic!("unexpected line from the test server: {line:?}"))
                .to_owned();
            Self {
                child: Some(child),
                uri: format!("mongodb://{addr}/?directConnection=true&retryWrites=false"),
            }
        })
        .await
        .expect("start task")
    }

    pub fn settings(&self, database: &str) -> MongoSettings {
        MongoSettings {
            uri: self.uri.clone(),
            database: database.to_owned(),
            // Tests run on a manual clock in the past: keep finished jobs for good.
            job_retention: Duration::from_secs(100 * 365 * 86_400),
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// A connected, empty database no other test uses.
    pub async fn fresh_database(&self) -> MongoDb {
        let name = format!("{DEFAULT_DATABASE}_{}", uuid::Uuid::new_v4().simple());
        MongoDb::connect(&self.settings(&name))
            .await
            .expect("connect to the test server")
    }
}

impl Drop for TestMongo {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix_free_terminate(&mut child);
        }
    }
}

/// SIGTERM through `kill(1)` (no libc in this crate), then reap; SIGKILL if it lingers.
fn nix_free_terminate(child: &mut Child) -> std::io::Result<()> {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    for _ in 0..40 {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    child.kill()?;
    child.wait().map(|_| ())
}
