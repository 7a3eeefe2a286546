//! The AWS emulator for tests: `scripts/aws-test-server.sh` (moto on loopback), started by the
//! test that needs it and stopped when the guard drops; or the one `HTSPREP_TEST_AWS_ENDPOINT`
//! names (the test script starts one for the whole run). Clients use static test credentials.

use crate::test_server::ScriptServer;

pub struct TestAws {
    _server: Option<ScriptServer>,
    pub endpoint: String,
}

impl TestAws {
    pub async fn start() -> Self {
        if let Ok(endpoint) = std::env::var("HTSPREP_TEST_AWS_ENDPOINT")
            && !endpoint.is_empty()
        {
            return Self {
                _server: None,
                endpoint,
            };
        }
        let server = tokio::task::spawn_blocking(|| ScriptServer::start("aws-test-server.sh"))
            .await
            .expect("start task");
        Self {
            endpoint: format!("http://{}", server.addr),
            _server: Some(server),
        }
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
