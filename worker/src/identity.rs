//! Who this worker is, as job records name it (`/jobs/{id}` shows it): on ECS the task ARN and
//! the task's private IPv4 with the gRPC port, read from the task metadata endpoint v4 that the
//! ECS agent announces in `ECS_CONTAINER_METADATA_URI_V4`; elsewhere the configured id or the
//! process id, and the address the gRPC listener is bound to.

use std::net::SocketAddr;
use std::time::Duration;

use htsprep_shared::domain::WorkerRef;
use htsprep_shared::retry::{Retryable, backoff};
use serde::Deserialize;

use crate::config::WorkerConfig;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read the ECS task metadata at {uri}: {reason}")]
    Metadata { uri: String, reason: String },
}

/// The parts of the task metadata (v4 `/task`) the worker needs.
#[derive(Debug, Deserialize)]
struct TaskMetadata {
    #[serde(rename = "TaskARN")]
    task_arn: String,
    #[serde(rename = "Containers", default)]
    containers: Vec<ContainerMetadata>,
}

#[derive(Debug, Deserialize)]
struct ContainerMetadata {
    #[serde(rename = "Networks", default)]
    networks: Vec<NetworkMetadata>,
}

#[derive(Debug, Deserialize)]
struct NetworkMetadata {
    #[serde(rename = "IPv4Addresses", default)]
    ipv4_addresses: Vec<String>,
}

/// Reads the task metadata, retrying briefly (the endpoint can lag the container's start).
async fn task_metadata(uri: &str) -> Result<TaskMetadata, IdentityError> {
    let url = format!("{}/task", uri.trim_end_matches('/'));
    let fail = |reason: String| IdentityError::Metadata {
        uri: url.clone(),
        reason,
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let fetch = || async {
        match client.get(&url).send().await {
            Ok(r) if r.status().is_success() => r
                .json::<TaskMetadata>()
                .await
                .map_err(|e| (false, format!("unexpected document: {e}"))),
            Ok(r) => Err((true, format!("HTTP {}", r.status()))),
            Err(e) => Err((true, e.to_string())),
        }
    };
    fetch
        .retry(backoff(5, Duration::from_millis(200)))
        .when(|(transient, _)| *transient)
        .await
        .map_err(|(_, reason)| fail(reason))
}

/// This worker's identity for job records.
pub async fn resolve(config: &WorkerConfig, grpc: SocketAddr) -> Result<WorkerRef, IdentityError> {
    let Some(uri) = &config.ecs_metadata_uri else {
        return Ok(WorkerRef {
            provider: config.provider.clone(),
            resource_id: config
                .resource_id
                .clone()
                .unwrap_or_else(|| format!("pid-{}", std::process::id())),
            address: grpc.to_string(),
        });
    };
    let task = task_metadata(uri).await?;
    let ip = task
        .containers
        .iter()
        .flat_map(|c| &c.networks)
        .flat_map(|n| &n.ipv4_addresses)
        .next()
        .cloned()
        .ok_or_else(|| IdentityError::Metadata {
            uri: uri.clone(),
            reason: "the task has no IPv4 address (awsvpc network mode expected)".into(),
        })?;
    Ok(WorkerRef {
        provider: config.provider.clone(),
        resource_id: config.resource_id.clone().unwrap_or(task.task_arn),
        address: format!("{ip}:{}", grpc.port()),
    })
}
