//! The AWS emulator for tests: `scripts/aws-test-server.sh` (moto on loopback), started by the
//! test that needs it and stopped when the guard drops; or the one `HTSPREP_TEST_AWS_ENDPOINT`
//! names (the test script starts one for the whole run). Clients use static test credentials.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct TestAws {
    child: Option<Child>,
    pub endpoint: String,
}

impl TestAws {
    pub async fn start() -> Self {
        if let Ok(endpoint) = std::env::var("HTSPREP_TEST_AWS_ENDPOINT")
            && !endpoint.is_empty()
        {
            return Self {
                child: None,
                endpoint,
            };
        }
        tokio::task::spawn_blocking(|| {
            let script =
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/aws-test-server.sh");
            let mut child = Command::new("bash")
                .arg(script)
                .arg("--port")
                .arg("0")
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start scripts/aws-test-server.sh (scripts/setup.sh prepares it)");
            let mut line = String::new();
            BufReader::new(child.stdout.take().expect("stdout"))
                .read_line(&mut line)
                .expect("read the listening line");
            let addr = line
                .trim()
                .strip_prefix("moto listening on ")
                .unwrap_or_else(|| panic!("unexpected line from the AWS emulator: {line:?}"))
                .to_owned();
            Self {
                child: Some(child),
                endpoint: format!("http://{addr}"),
            }
        })
        .await
        .expect("start task")
    }

    /// An S3 client for the emulator, with path-style addressing and test credentials.
    pub fn s3_client(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// A new, empty bucket.
    pub async fn fresh_bucket(&self, client: &aws_sdk_s3::Client) -> String {
        let name = format!("htsprep-test-{}", uuid::Uuid::new_v4().simple());
        client
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .expect("create a test bucket");
        name
    }
}

impl Drop for TestAws {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            for _ in 0..40 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
