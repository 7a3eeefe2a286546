//! AWS clients, configured the same way for every part that talks to AWS: a region, optional
//! emulator endpoint (`AWS_ENDPOINT_URL`), path-style S3 addressing for emulators, credentials
//! from the default chain (environment, ECS task role, ...), bounded timeouts and retries.

#[cfg(any(test, feature = "conformance"))]
pub mod testing;

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

use crate::settings::EnvReader;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsSettings {
    /// `AWS_REGION` (default `us-east-1`).
    pub region: String,
    /// `AWS_ENDPOINT_URL`: an emulator or a VPC endpoint.
    pub endpoint_url: Option<String>,
    /// `HTSPREP_S3_PATH_STYLE`: path-style S3 URLs (default: on with an endpoint URL).
    pub s3_path_style: bool,
    /// `AWS_MAX_ATTEMPTS`: tries per AWS call, retries included (default 4).
    pub max_attempts: u32,
}

impl AwsSettings {
    pub fn read(env: &mut EnvReader<'_>) -> Self {
        let region = env
            .optional("AWS_REGION")
            .unwrap_or_else(|| "us-east-1".into());
        let endpoint_url = env.optional("AWS_ENDPOINT_URL");
        if let Some(u) = &endpoint_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            env.error("AWS_ENDPOINT_URL", "must be an http:// or https:// URL");
        }
        let default_path_style = endpoint_url.is_some();
        let s3_path_style = env.flag("HTSPREP_S3_PATH_STYLE", default_path_style);
        let max_attempts = u32::try_from(env.count("AWS_MAX_ATTEMPTS", 4)).unwrap_or(u32::MAX);
        Self {
            region,
            endpoint_url,
            s3_path_style,
            max_attempts,
        }
    }

    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new(self.region.clone()))
            .retry_config(RetryConfig::standard().with_max_attempts(self.max_attempts))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .read_timeout(Duration::from_secs(60))
                    .build(),
            );
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        loader.load().await
    }

    pub async fn s3_client(&self) -> aws_sdk_s3::Client {
        let sdk = self.sdk_config().await;
        let conf = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(self.s3_path_style)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }
}
