//! ECS in the AWS emulator (moto) for tests: a fresh cluster, a Fargate worker task definition,
//! the default VPC's subnets and security group, task states pinned at RUNNING.

use std::time::Duration;

use aws_sdk_ecs::types::{Compatibility, ContainerDefinition, NetworkMode, Task};
use htsprep_shared::aws::testing::TestAws;

use super::fleet::EcsFleetConfig;
use super::settings::EcsSettings;

pub struct MotoEcs {
    pub endpoint: String,
    pub client: aws_sdk_ecs::Client,
    pub cluster: String,
    pub task_definition: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
}

/// Settings for tests: fast polls, generous rates, health required.
pub fn test_settings(cluster: &str, task_definition: &str) -> EcsSettings {
    EcsSettings {
        cluster: cluster.into(),
        task_definition: task_definition.into(),
        subnets: vec!["subnet-1".into()],
        security_groups: vec!["sg-1".into()],
        assign_public_ip: false,
        capacity_provider_strategy: Vec::new(),
        container: "worker".into(),
        grpc_port: 50051,
        started_by: "htsprep".into(),
        run_task_per_second: 40.0,
        describe_per_second: 20.0,
        poll_every: Duration::from_millis(200),
        require_healthy: true,
        endpoint_url: None,
    }
}

/// An ECS client for the emulator with test credentials and no retries.
pub fn client(endpoint: &str) -> aws_sdk_ecs::Client {
    let conf = aws_sdk_ecs::config::Builder::new()
        .behavior_version(aws_sdk_ecs::config::BehaviorVersion::latest())
        .region(aws_sdk_ecs::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_ecs::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .retry_config(aws_sdk_ecs::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_ecs::Client::from_conf(conf)
}

/// An EC2 query against the emulator (it routes on the credential scope's service name).
async fn ec2_query(endpoint: &str, query: &str) -> String {
    reqwest::Client::new()
        .post(endpoint)
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ec2/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("{query}&Version=2016-11-15"))
        .send()
        .await
        .expect("EC2 query")
        .text()
        .await
        .expect("EC2 response")
}

fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split(&close).next())
        .map(str::to_owned)
        .collect()
}

impl MotoEcs {
    /// A fresh cluster and worker task definition in the emulator; task states are pinned so
    /// that `DescribeTasks` does not move them.
    pub async fn new(aws: &TestAws) -> Self {
        let endpoint = aws.endpoint.clone();
        let client = client(&endpoint);
        let subnets = xml_values(
            &ec2_query(
                &endpoint,
                "Action=DescribeSubnets&Filter.1.Name=default-for-az&Filter.1.Value.1=true",
            )
            .await,
            "subnetId",
        );
        let security_groups = xml_values(
            &ec2_query(
                &endpoint,
                "Action=DescribeSecurityGroups&GroupName.1=default",
            )
            .await,
            "groupId",
        );
        assert!(
            !subnets.is_empty() && !security_groups.is_empty(),
            "the emulator's default VPC has no subnets or security group"
        );
        let cluster = format!("htsprep-test-{}", uuid::Uuid::new_v4().simple());
        client
            .create_cluster()
            .cluster_name(&cluster)
            .send()
            .await
            .expect("create a test cluster");
        let family = format!("{cluster}-worker");
        client
            .register_task_definition()
            .family(&family)
            .network_mode(NetworkMode::Awsvpc)
            .requires_compatibilities(Compatibility::Fargate)
            .cpu("1024")
            .memory("4096")
            .container_definitions(
                ContainerDefinition::builder()
                    .name("worker")
                    .image("htsprep-worker:test")
                    .memory(4096)
                    .build(),
            )
            .send()
            .await
            .expect("register the worker task definition");
        let status = reqwest::Client::new()
            .post(format!("{endpoint}/moto-api/state-manager/set-transition"))
            .body(
                r#"{"model_name":"ecs::task","transition":{"progression":"manual","times":1000000}}"#,
            )
            .send()
            .await
            .expect("pin ECS task states")
            .status();
        assert!(status.is_success(), "pin ECS task states: {status}");
        Self {
            endpoint,
            client,
            cluster,
            task_definition: family,
            subnets: subnets.into_iter().take(2).collect(),
            security_groups,
        }
    }

    /// Settings for this cluster. Emulated tasks have no health status, so health is not
    /// required.
    pub fn settings(&self) -> EcsSettings {
        EcsSettings {
            subnets: self.subnets.clone(),
            security_groups: self.security_groups.clone(),
            require_healthy: false,
            ..test_settings(&self.cluster, &self.task_definition)
        }
    }

    pub fn fleet_config(&self, max_workers: usize) -> EcsFleetConfig {
        EcsFleetConfig {
            settings: self.settings(),
            max_workers,
            worker_env: vec![("HTSPREP_HEARTBEAT_SECONDS".into(), "10".into())],
            backoff_base: Duration::from_millis(200),
        }
    }

    /// The environment that selects this cluster for an API process.
    pub fn vars(&self) -> Vec<(String, String)> {
        [
            ("ECS_CLUSTER", self.cluster.clone()),
            ("ECS_WORKER_TASK_DEFINITION", self.task_definition.clone()),
            ("ECS_WORKER_SUBNETS", self.subnets.join(",")),
            ("ECS_WORKER_SECURITY_GROUPS", self.security_groups.join(",")),
            ("HTSPREP_ECS_REQUIRE_HEALTHY", "false".into()),
            ("HTSPREP_ECS_POLL_SECONDS", "1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Every task in the cluster whose desired status is RUNNING, described with tags.
    pub async fn running_tasks(&self) -> Vec<Task> {
        let arns = self
            .client
            .list_tasks()
            .cluster(&self.cluster)
            .desired_status(aws_sdk_ecs::types::DesiredStatus::Running)
            .send()
            .await
            .expect("list tasks")
            .task_arns()
            .to_vec();
        if arns.is_empty() {
            return Vec::new();
        }
        self.client
            .describe_tasks()
            .cluster(&self.cluster)
            .set_tasks(Some(arns))
            .include(aws_sdk_ecs::types::TaskField::Tags)
            .send()
            .await
            .expect("describe tasks")
            .tasks()
            .to_vec()
    }

    pub async fn stop(&self, arn: &str) {
        self.client
            .stop_task()
            .cluster(&self.cluster)
            .task(arn)
            .send()
            .await
            .expect("stop a task");
    }
}
