//! The task metadata endpoint v4 (`ECS_CONTAINER_METADATA_URI_V4`): what a container on Fargate
//! learns about itself, here at `http://{stand-in}/v4/{task id}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::Shared;
use crate::model::{Task, cluster_arn};

fn container_json(t: &Task) -> Value {
    json!({
        "Name": t.container_name(),
        "DesiredStatus": t.desired_status,
        "KnownStatus": t.last_status,
        "Networks": [{
            "NetworkMode": "awsvpc",
            "IPv4Addresses": [t.ip],
        }],
    })
}

fn lookup(shared: &Shared, id: &str) -> Result<Task, StatusCode> {
    shared
        .state
        .lock()
        .expect("stand-in state")
        .by_id(id)
        .cloned()
        .ok_or(StatusCode::NOT_FOUND)
}

/// `GET /v4/{id}`: the container's own metadata.
pub async fn container(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, StatusCode> {
    lookup(&shared, &id).map(|t| Json(container_json(&t)))
}

/// `GET /v4/{id}/task`: the task's metadata.
pub async fn task(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, StatusCode> {
    let t = lookup(&shared, &id)?;
    let (family, revision) = t
        .task_definition
        .as_ref()
        .map(|d| (d.family.clone(), d.revision.to_string()))
        .unwrap_or_default();
    Ok(Json(json!({
        "Cluster": cluster_arn(&t.cluster),
        "TaskARN": t.arn,
        "Family": family,
        "Revision": revision,
        "DesiredStatus": t.desired_status,
        "KnownStatus": t.last_status,
        "LaunchType": "FARGATE",
        "AvailabilityZone": "us-east-1a",
        "Containers": [container_json(&t)],
    })))
}
