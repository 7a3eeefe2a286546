//! An AWS deployment of htsprep on loopback, for end-to-end tests: the ECS stand-in running each
//! worker task as a real `htsprep-worker` process (its own loopback address, health check, stop
//! timeout, secrets, task metadata), artifacts in S3 (the AWS emulator), jobs in MongoDB (the
//! MongoDB-wire server), and the API configured as on AWS, with only the endpoints pointed here.

use std::collections::HashMap;
use std::time::Duration;

use htsprep_api::fleet::ecs::testing::{client, test_settings};
use htsprep_api::fleet::ecs::{EcsSettings, TAG_JOB};
use htsprep_ecs_standin::{ContainerDef, EcsStandIn, HealthCheck, Image, StandInConfig, Task};
use htsprep_shared::aws::testing::TestAws;
use htsprep_shared::mongo::testing::TestMongo;

use crate::api::ApiProcess;
use crate::bin;

pub const CLUSTER: &str = "htsprep-e2e";
pub const FAMILY: &str = "htsprep-worker";
pub const SUBNET: &str = "subnet-0e2e";
pub const SECURITY_GROUP: &str = "sg-0e2e";
/// The image the worker task definition names; the stand-in runs the built binary for it.
pub const IMAGE: &str = "htsprep-worker:e2e";
pub const TOKEN: &str = "ecs-e2e-worker-token-0123456789";
const TOKEN_SECRET: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:htsprep/worker-token";
const MONGODB_SECRET: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:htsprep/mongodb-uri";

pub struct EcsWorld {
    pub standin: EcsStandIn,
    pub aws: TestAws,
    pub mongo: TestMongo,
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
    pub database: String,
}

/// The worker image as `Dockerfile.worker` builds it: its entrypoint, command and environment
/// (`{root}` is the task's own directory, where the image has `/var/lib/htsprep`).
fn worker_image() -> Image {
    Image {
        binary: bin("htsprep-worker"),
        path_in_image: "/usr/local/bin/htsprep-worker".into(),
        command: vec!["serve".into()],
        env: htsprep_ecs_standin::env(&[
            ("HTSPREP_WORKER_LISTEN", "0.0.0.0:50051"),
            ("HTSPREP_WORKER_HEALTH_LISTEN", "127.0.0.1:8081"),
            ("HTSPREP_DATA_DIR", "{root}"),
            ("HTSPREP_WORK_DIR", "{root}/work"),
            ("RUST_LOG", "info"),
        ]),
    }
}

impl EcsWorld {
    /// Tasks run real workers.
    pub async fn start() -> Self {
        Self::with_images(true).await
    }

    /// Tasks run nothing and move only when the test moves them.
    pub async fn without_agent() -> Self {
        Self::with_images(false).await
    }

    async fn with_images(agent: bool) -> Self {
        let aws = TestAws::start().await;
        let mongo = TestMongo::start().await;
        let s3 = aws.s3_client();
        let bucket = aws.fresh_bucket(&s3).await;
        let database = format!("ecs_{}", uuid_like());
        let config = StandInConfig {
            images: if agent {
                HashMap::from([(IMAGE.to_owned(), worker_image())])
            } else {
                HashMap::new()
            },
            secrets: HashMap::from([
                (TOKEN_SECRET.to_owned(), TOKEN.to_owned()),
                (MONGODB_SECRET.to_owned(), mongo.uri.clone()),
            ]),
        };
        let standin = EcsStandIn::start(config).await;
        // As the runbook has operators do once; workers never create indexes.
        let out = std::process::Command::new(bin("htsprep-api"))
            .arg("create-indexes")
            .env("MONGODB_URI", &mongo.uri)
            .env("MONGODB_DATABASE", &database)
            .output()
            .expect("run htsprep-api create-indexes");
        assert!(
            out.status.success(),
            "create-indexes: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let world = Self {
            standin,
            aws,
            mongo,
            s3,
            bucket,
            database,
        };
        world
            .standin
            .register(FAMILY, vec![world.worker_container()]);
        world
    }

    /// The worker container of `deploy/cloudformation/htsprep.yaml` (environment, secrets,
    /// health check, stop timeout), with test timings. The emulator's static credentials stand in
    /// for the task role.
    pub fn worker_container(&self) -> ContainerDef {
        let mut c = htsprep_ecs_standin::container("worker", IMAGE);
        c.environment = htsprep_ecs_standin::env(&[
            ("WORKFLOW_S3_BUCKET", &self.bucket),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", &self.aws.endpoint),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("MONGODB_DATABASE", &self.database),
            ("HTSPREP_CREATE_INDEXES", "false"),
            ("HTSPREP_WORKER_HEALTH_LISTEN", "127.0.0.1:8081"),
            ("HTSPREP_FILE_ROOTS", &crate::file_roots()),
        ]);
        c.secrets = vec![
            ("HTSPREP_WORKER_TOKEN".into(), TOKEN_SECRET.into()),
            ("MONGODB_URI".into(), MONGODB_SECRET.into()),
        ];
        c.health_check = Some(HealthCheck {
            command: vec![
                "CMD".into(),
                "/usr/local/bin/htsprep-worker".into(),
                "healthcheck".into(),
            ],
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            retries: 2,
            start_period: Duration::from_secs(1),
        });
        c.stop_timeout = Duration::from_secs(5);
        c
    }

    /// The API's environment on AWS, pointed at the stand-in (ECS), the emulator (S3) and the
    /// MongoDB-wire server; `extra` adds or overrides.
    pub fn api_env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let ecs = self.standin.endpoint();
        let mut env = htsprep_ecs_standin::env(&[
            ("ECS_CLUSTER", CLUSTER),
            ("ECS_WORKER_TASK_DEFINITION", FAMILY),
            ("ECS_WORKER_SUBNETS", SUBNET),
            ("ECS_WORKER_SECURITY_GROUPS", SECURITY_GROUP),
            ("HTSPREP_ECS_POLL_SECONDS", "1"),
            ("HTSPREP_ECS_DESCRIBE_PER_SECOND", "20"),
            ("HTSPREP_ECS_RUN_TASK_PER_SECOND", "20"),
            ("AWS_ENDPOINT_URL_ECS", &ecs),
            ("AWS_ENDPOINT_URL", &self.aws.endpoint),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("MONGODB_URI", &self.mongo.uri),
            ("MONGODB_DATABASE", &self.database),
            ("WORKFLOW_S3_BUCKET", &self.bucket),
            ("HTSPREP_WORKER_TOKEN", TOKEN),
            ("HTSPREP_WORKER_IDLE_SECONDS", "60"),
        ]);
        for (k, v) in extra {
            env.retain(|(existing, _)| existing != k);
            env.push(((*k).to_owned(), (*v).to_owned()));
        }
        env
    }

    /// Starts the API with [`EcsWorld::api_env`].
    pub fn start_api(&self, extra: &[(&str, &str)]) -> ApiProcess {
        let env = self.api_env(extra);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        ApiProcess::start(&env)
    }

    /// Fleet settings for this cluster and task definition (for fleet-level tests).
    pub fn fleet_settings(&self) -> EcsSettings {
        EcsSettings {
            subnets: vec![SUBNET.into()],
            security_groups: vec![SECURITY_GROUP.into()],
            ..test_settings(CLUSTER, FAMILY)
        }
    }

    /// An ECS client for the stand-in.
    pub fn ecs_client(&self) -> aws_sdk_ecs::Client {
        client(&self.standin.endpoint())
    }

    /// The tasks launched for a job (its `htsprep:job-id` tag), oldest first.
    pub fn tasks_for(&self, job_id: &str) -> Vec<Task> {
        self.standin
            .tasks()
            .into_iter()
            .filter(|t| EcsStandIn::tag(t, TAG_JOB).as_deref() == Some(job_id))
            .collect()
    }

    /// Waits until `f` holds for a task (or panics after `within`); returns the task.
    pub async fn wait_task(
        &self,
        arn: &str,
        within: Duration,
        what: &str,
        f: impl Fn(&Task) -> bool,
    ) -> Task {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let t = self.standin.task(arn);
            if f(&t) {
                return t;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "task {arn}: not {what} within {within:?}: {t:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The bytes of an S3 object in the artifact bucket.
    pub async fn object(&self, key: &str) -> Vec<u8> {
        self.s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetObject {key}: {e:?}"))
            .body
            .collect()
            .await
            .expect("object body")
            .into_bytes()
            .to_vec()
    }
}

fn uuid_like() -> String {
    format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default()
    )
}
