//! One `RunTask` call: a Fargate task (the launch type, or the configured capacity provider
//! strategy, e.g. Fargate Spot) in the configured subnets and security groups, tagged with
//! the workflow it was started for (or as a warm-pool task), idempotent per job attempt through
//! its `clientToken`.

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerOverride, KeyValuePair, LaunchType,
    NetworkConfiguration, Tag, TaskOverride,
};
use md5::{Digest, Md5};

use super::capacity::to_sdk;
use super::classify::{EcsFault, classify, classify_failure};
use super::settings::EcsSettings;
use crate::fleet::ProvisionRequest;

/// Tag keys on every task htsprep starts.
pub const TAG_WORKFLOW: &str = "htsprep:workflow-key";
pub const TAG_JOB: &str = "htsprep:job-id";
pub const TAG_ATTEMPT: &str = "htsprep:attempt";
/// On tasks the warm pool starts (for no job).
pub const TAG_WARM: &str = "htsprep:warm";

/// What a task is started for.
#[derive(Clone, Debug)]
pub enum Purpose {
    /// One attempt of one job.
    Job(ProvisionRequest),
    /// The warm pool: no job; `token` names this one launch (retried calls share it).
    Warm { token: String },
}

impl Purpose {
    /// The `RunTask` client token.
    pub fn client_token(&self) -> String {
        match self {
            Purpose::Job(req) => client_token(req),
            Purpose::Warm { token } => bounded(format!("warm.{token}")),
        }
    }

    fn tags(&self) -> Vec<(&'static str, String)> {
        match self {
            Purpose::Job(req) => vec![
                (TAG_WORKFLOW, req.workflow_key.clone()),
                (TAG_JOB, req.job_id.to_string()),
                (TAG_ATTEMPT, req.attempt.to_string()),
            ],
            Purpose::Warm { .. } => vec![(TAG_WARM, "true".into())],
        }
    }
}

impl std::fmt::Display for Purpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Purpose::Job(req) => write!(f, "job {} attempt {}", req.job_id, req.attempt),
            Purpose::Warm { .. } => f.write_str("the warm pool"),
        }
    }
}

/// The `clientToken` for one attempt of one job: the same for every API replica and every
/// retried call, different for the next attempt. ECS allows 64 ASCII characters.
pub fn client_token(req: &ProvisionRequest) -> String {
    bounded(format!("{}.{}", req.job_id, req.attempt))
}

/// A client token as ECS takes it: at most 64 ASCII characters, else named by its digest.
fn bounded(plain: String) -> String {
    if plain.len() <= 64 && plain.is_ascii() {
        plain
    } else {
        format!("htsprep-{}", hex(&Md5::digest(plain.as_bytes())))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A tag value: ECS allows 256 characters; longer workflow keys are named by their digest.
fn tag_value(v: &str) -> String {
    if v.chars().count() <= 256 {
        v.to_owned()
    } else {
        format!("md5:{}", hex(&Md5::digest(v.as_bytes())))
    }
}

/// Starts one task; returns its ARN.
pub async fn run_task(
    client: &aws_sdk_ecs::Client,
    settings: &EcsSettings,
    worker_env: &[(String, String)],
    purpose: &Purpose,
) -> Result<String, EcsFault> {
    let vpc = AwsVpcConfiguration::builder()
        .set_subnets(Some(settings.subnets.clone()))
        .set_security_groups(Some(settings.security_groups.clone()))
        .assign_public_ip(if settings.assign_public_ip {
            AssignPublicIp::Enabled
        } else {
            AssignPublicIp::Disabled
        })
        .build()
        .map_err(|e| EcsFault::Permanent(format!("awsvpc configuration: {e}")))?;
    let mut container = ContainerOverride::builder().name(&settings.container);
    for (k, v) in worker_env {
        container = container.environment(KeyValuePair::builder().name(k).value(v).build());
    }
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(tag_value(v)).build();
    let mut call = client
        .run_task()
        .cluster(&settings.cluster)
        .task_definition(&settings.task_definition);
    // ECS takes a launch type or a capacity provider strategy, never both.
    call = if settings.capacity_provider_strategy.is_empty() {
        call.launch_type(LaunchType::Fargate)
    } else {
        call.set_capacity_provider_strategy(Some(
            to_sdk(&settings.capacity_provider_strategy)
                .map_err(|e| EcsFault::Permanent(format!("capacity provider strategy: {e}")))?,
        ))
    };
    let out = call
        .count(1)
        .client_token(purpose.client_token())
        .started_by(&settings.started_by)
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(vpc)
                .build(),
        )
        .overrides(
            TaskOverride::builder()
                .container_overrides(container.build())
                .build(),
        )
        .set_tags(Some(
            purpose.tags().iter().map(|(k, v)| tag(k, v)).collect(),
        ))
        .send()
        .await
        .map_err(|e| classify("RunTask", &e))?;
    if let Some(arn) = out.tasks().iter().find_map(|t| t.task_arn()) {
        return Ok(arn.to_owned());
    }
    match out.failures().first() {
        Some(f) => Err(classify_failure(f.reason(), f.detail())),
        None => Err(EcsFault::Transient(
            "RunTask returned neither a task nor a failure".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use htsprep_shared::domain::JobId;

    use super::*;

    #[test]
    fn the_client_token_names_the_attempt_and_fits_ecs() {
        let req = |attempt| ProvisionRequest {
            workflow_key: "dcc/id/0123/v1".into(),
            job_id: JobId::new(),
            attempt,
        };
        let a = req(1);
        let mut b = a.clone();
        b.attempt = 2;
        assert_eq!(client_token(&a), client_token(&a.clone()));
        assert_ne!(client_token(&a), client_token(&b));
        assert!(client_token(&a).len() <= 64);
        assert_eq!(tag_value(&"x".repeat(300)).len(), 36);
    }
}
