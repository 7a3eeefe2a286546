//! The ECS fleet's settings. `ECS_CLUSTER` selects the fleet; the rest describe how workers are
//! launched and found. Every missing or inconsistent value is reported with the others.

use std::time::Duration;

use htsprep_shared::settings::EnvReader;

use super::capacity::{CapacityItem, parse_strategy};

/// ECS's sustained rate for `DescribeTasks`/`ListTasks` is 20 calls per second per account and
/// region; htsprep stays below it.
pub const ECS_DESCRIBE_LIMIT: f64 = 20.0;

#[derive(Clone, Debug, PartialEq)]
pub struct EcsSettings {
    /// `ECS_CLUSTER`: the cluster workers run in (name or ARN).
    pub cluster: String,
    /// `ECS_WORKER_TASK_DEFINITION`: family, `family:revision` or ARN of the worker task.
    pub task_definition: String,
    /// `ECS_WORKER_SUBNETS`: comma-separated subnet ids (awsvpc).
    pub subnets: Vec<String>,
    /// `ECS_WORKER_SECURITY_GROUPS`: comma-separated security group ids. They must let the API
    /// reach the worker's gRPC port and nobody else.
    pub security_groups: Vec<String>,
    /// `ECS_WORKER_ASSIGN_PUBLIC_IP`: `ENABLED`/`DISABLED` (or true/false; default disabled).
    pub assign_public_ip: bool,
    /// `ECS_CAPACITY_PROVIDER_STRATEGY`: `NAME[:WEIGHT[:BASE]],...` (e.g.
    /// `FARGATE:1:1,FARGATE_SPOT:3`); empty: the Fargate launch type.
    pub capacity_provider_strategy: Vec<CapacityItem>,
    /// `ECS_WORKER_CONTAINER`: the worker container's name in the task definition, for the
    /// per-task environment overrides (default `worker`).
    pub container: String,
    /// `ECS_WORKER_GRPC_PORT`: the port workers serve gRPC on (default 50051).
    pub grpc_port: u16,
    /// `HTSPREP_ECS_STARTED_BY`: the `startedBy` of every task this deployment launches, and the
    /// filter discovery lists by (default `htsprep`).
    pub started_by: String,
    /// `HTSPREP_ECS_RUN_TASK_PER_SECOND`: `RunTask` calls per second at most (default 5; ECS
    /// allows a burst of 100 and 40/s sustained, Fargate launches 20 tasks/s).
    pub run_task_per_second: f64,
    /// `HTSPREP_ECS_DESCRIBE_PER_SECOND`: `ListTasks`/`DescribeTasks`/`StopTask` calls per second
    /// at most (default 10, at most 20).
    pub describe_per_second: f64,
    /// `HTSPREP_ECS_POLL_SECONDS`: how often discovery polls (default 5).
    pub poll_every: Duration,
    /// `HTSPREP_ECS_REQUIRE_HEALTHY`: a worker is usable only once ECS reports it `HEALTHY`
    /// (default true; false for a task definition without a container health check).
    pub require_healthy: bool,
    /// `AWS_ENDPOINT_URL_ECS`: ECS at another endpoint than the other AWS services (a VPC
    /// endpoint, a test stand-in); default: `AWS_ENDPOINT_URL`, else ECS's own.
    pub endpoint_url: Option<String>,
}

impl EcsSettings {
    /// `None` when `ECS_CLUSTER` is unset (and no other ECS variable is either).
    pub fn read(env: &mut EnvReader<'_>) -> Option<Self> {
        const OTHERS: [&str; 6] = [
            "ECS_WORKER_TASK_DEFINITION",
            "ECS_CAPACITY_PROVIDER_STRATEGY",
            "ECS_WORKER_SUBNETS",
            "ECS_WORKER_SECURITY_GROUPS",
            "ECS_WORKER_ASSIGN_PUBLIC_IP",
            "ECS_WORKER_CONTAINER",
        ];
        let Some(cluster) = env.optional("ECS_CLUSTER") else {
            let set: Vec<&str> = OTHERS
                .into_iter()
                .filter(|v| env.raw(v).is_some())
                .collect();
            if !set.is_empty() {
                env.error(
                    "ECS_CLUSTER",
                    format!(
                        "must be set when {} is (or unset those to run workers locally)",
                        set.join(", ")
                    ),
                );
            }
            return None;
        };
        let task_definition = env
            .optional("ECS_WORKER_TASK_DEFINITION")
            .unwrap_or_else(|| {
                env.error(
                    "ECS_WORKER_TASK_DEFINITION",
                    "must be set with ECS_CLUSTER (the worker task definition's family or ARN)",
                );
                String::new()
            });
        let subnets = env.list("ECS_WORKER_SUBNETS");
        if subnets.is_empty() {
            env.error(
                "ECS_WORKER_SUBNETS",
                "must list at least one subnet id with ECS_CLUSTER (Fargate tasks use awsvpc)",
            );
        }
        let security_groups = env.list("ECS_WORKER_SECURITY_GROUPS");
        if security_groups.is_empty() {
            env.error(
                "ECS_WORKER_SECURITY_GROUPS",
                "must list at least one security group id with ECS_CLUSTER (one that lets only \
                 the API reach the worker's gRPC port)",
            );
        }
        let assign_public_ip = env.parse_with("ECS_WORKER_ASSIGN_PUBLIC_IP", false, |s| {
            match s.to_ascii_uppercase().as_str() {
                "ENABLED" | "TRUE" | "1" => Ok(true),
                "DISABLED" | "FALSE" | "0" => Ok(false),
                _ => Err("expected ENABLED or DISABLED".into()),
            }
        });
        let capacity_provider_strategy = env
            .optional("ECS_CAPACITY_PROVIDER_STRATEGY")
            .map_or_else(Vec::new, |v| {
                parse_strategy(&v).unwrap_or_else(|reason| {
                    env.error("ECS_CAPACITY_PROVIDER_STRATEGY", reason);
                    Vec::new()
                })
            });
        let container = env
            .optional("ECS_WORKER_CONTAINER")
            .unwrap_or_else(|| "worker".into());
        let grpc_port = env.parse_with("ECS_WORKER_GRPC_PORT", 50051u16, |s| {
            s.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| "expected a port from 1 to 65535".into())
        });
        let started_by = env
            .optional("HTSPREP_ECS_STARTED_BY")
            .unwrap_or_else(|| "htsprep".into());
        if started_by.len() > 36
            || !started_by
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            env.error(
                "HTSPREP_ECS_STARTED_BY",
                "must be at most 36 letters, digits, '-' or '_'",
            );
        }
        let rate = |env: &mut EnvReader<'_>, var: &'static str, default: f64, max: f64| {
            env.parse_with(var, default, |s| match s.parse::<f64>() {
                Ok(r) if r > 0.0 && r <= max => Ok(r),
                _ => Err(format!(
                    "expected a number of calls per second above 0, at most {max}"
                )),
            })
        };
        let run_task_per_second = rate(env, "HTSPREP_ECS_RUN_TASK_PER_SECOND", 5.0, 40.0);
        let describe_per_second = rate(
            env,
            "HTSPREP_ECS_DESCRIBE_PER_SECOND",
            10.0,
            ECS_DESCRIBE_LIMIT,
        );
        let poll_every = env.seconds("HTSPREP_ECS_POLL_SECONDS", Duration::from_secs(5));
        if poll_every.is_zero() {
            env.error("HTSPREP_ECS_POLL_SECONDS", "must be at least 1");
        }
        let require_healthy = env.flag("HTSPREP_ECS_REQUIRE_HEALTHY", true);
        let endpoint_url = env.optional("AWS_ENDPOINT_URL_ECS");
        if endpoint_url
            .as_ref()
            .is_some_and(|u| !(u.starts_with("http://") || u.starts_with("https://")))
        {
            env.error("AWS_ENDPOINT_URL_ECS", "must be an http:// or https:// URL");
        }
        Some(Self {
            cluster,
            task_definition,
            subnets,
            security_groups,
            assign_public_ip,
            capacity_provider_strategy,
            container,
            grpc_port,
            started_by,
            run_task_per_second,
            describe_per_second,
            poll_every,
            require_healthy,
            endpoint_url,
        })
    }
}
