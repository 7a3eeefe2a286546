//! The ECS API as the SDK speaks it (awsJson1_1: `POST /` with `X-Amz-Target:
//! AmazonEC2ContainerServiceV20141113.<Operation>`): `RegisterTaskDefinition`, `RunTask`,
//! `ListTasks`, `DescribeTasks`, `StopTask`, with ECS's validation and error shapes.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::Shared;
use crate::model::{Call, ContainerDef, Reply, Task, cluster_name, now_epoch, pairs};

fn json_response(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}

fn error(kind: &str, message: impl Into<String>) -> Response {
    json_response(400, json!({"__type": kind, "message": message.into()}))
}

pub async fn handle(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let op = target.rsplit('.').next().unwrap_or_default().to_owned();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    {
        let mut s = shared.state.lock().expect("stand-in state");
        s.calls.push(Call {
            op: op.clone(),
            at: std::time::Instant::now(),
            body: body.clone(),
        });
        if let Some(reply) = s.scripts.get_mut(&op).and_then(|q| q.pop_front()) {
            return match reply {
                Reply::Error(status, kind, message) => {
                    json_response(status, json!({"__type": kind, "message": message}))
                }
                Reply::Failure(reason) => {
                    json_response(200, json!({"tasks": [], "failures": [{"reason": reason}]}))
                }
            };
        }
    }
    match op.as_str() {
        "RegisterTaskDefinition" => register_task_definition(&shared, &body),
        "RunTask" => run_task(&shared, &body),
        "ListTasks" => list_tasks(&shared, &body),
        "DescribeTasks" => describe_tasks(&shared, &body),
        "StopTask" => stop_task(&shared, &body),
        _ => error("UnknownOperationException", op),
    }
}

fn register_task_definition(shared: &Shared, body: &Value) -> Response {
    let Some(family) = body["family"].as_str() else {
        return error("ClientException", "family is required");
    };
    let containers: Result<Vec<ContainerDef>, String> = body["containerDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(ContainerDef::from_json)
        .collect();
    let containers = match containers {
        Ok(c) if !c.is_empty() => c,
        Ok(_) => return error("ClientException", "containerDefinitions is required"),
        Err(e) => return error("ClientException", e),
    };
    let def = shared
        .state
        .lock()
        .expect("stand-in state")
        .register(family, containers);
    json_response(200, json!({"taskDefinition": def.json()}))
}

fn run_task(shared: &Arc<Shared>, body: &Value) -> Response {
    let cluster = body["cluster"].as_str().unwrap_or("default").to_owned();
    let started_by = body["startedBy"].as_str().unwrap_or_default().to_owned();
    if started_by.len() > 36 {
        return error(
            "InvalidParameterException",
            "startedBy may be up to 36 characters",
        );
    }
    if body["count"].as_u64().unwrap_or(1) != 1 {
        return error(
            "InvalidParameterException",
            "the stand-in runs one task per RunTask call",
        );
    }
    let capacity_provider = match strategy_provider(body) {
        Ok(provider) => provider,
        Err(message) => return error("InvalidParameterException", message),
    };
    let subnets = &body["networkConfiguration"]["awsvpcConfiguration"]["subnets"];
    if subnets.as_array().is_none_or(Vec::is_empty) {
        return error(
            "InvalidParameterException",
            "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
        );
    }
    let mut s = shared.state.lock().expect("stand-in state");
    let token = body["clientToken"].as_str().map(str::to_owned);
    if let Some(arn) = token.as_ref().and_then(|t| s.tokens.get(t)) {
        let task = s.tasks[arn].json(false);
        return json_response(200, json!({"tasks": [task], "failures": []}));
    }
    let name = body["taskDefinition"].as_str().unwrap_or_default();
    let Some(def) = s.definition(name).cloned() else {
        return error(
            "ClientException",
            format!("Unable to describe task definition {name}."),
        );
    };
    let mut env_overrides = Vec::new();
    let mut command_override = None;
    for o in body["overrides"]["containerOverrides"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let named = o["name"].as_str().unwrap_or_default();
        if !def.containers.iter().any(|c| c.name == named) {
            return error(
                "InvalidParameterException",
                format!(
                    "Override for container named {named} is not a container in the TaskDefinition."
                ),
            );
        }
        env_overrides.extend(pairs(&o["environment"], "value"));
        if o["command"].is_array() {
            command_override = Some(
                o["command"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
            );
        }
    }
    let tags = pairs_of_tags(&body["tags"]);
    let ip = shared.addresses.next();
    let arn = s.add_task(Task {
        arn: String::new(),
        id: String::new(),
        cluster: cluster_name(&cluster).to_owned(),
        task_definition: Some(def),
        started_by,
        tags,
        ip,
        last_status: "PROVISIONING".into(),
        desired_status: "RUNNING".into(),
        health: None,
        created_at: now_epoch(),
        started_at: None,
        stopped_at: None,
        stopped_reason: None,
        stop_code: None,
        exit_code: None,
        env_overrides,
        command_override,
        pid: None,
        capacity_provider,
    });
    if let Some(t) = token {
        s.tokens.insert(t, arn.clone());
    }
    let task = s.tasks[&arn].json(false);
    drop(s);
    crate::agent::launch(shared, &arn);
    json_response(200, json!({"tasks": [task], "failures": []}))
}

/// The provider a `capacityProviderStrategy` puts the task on (the stand-in's choice: the one
/// with a base, else the heaviest weight), as ECS refuses a strategy with a launch type.
fn strategy_provider(body: &Value) -> Result<Option<String>, &'static str> {
    let Some(items) = body["capacityProviderStrategy"].as_array() else {
        return Ok(None);
    };
    if body.get("launchType").is_some() {
        return Err(
            "Specifying both a launch type and capacity provider strategy is not supported. \
             Remove one and try again.",
        );
    }
    let weight = |i: &&Value| i["weight"].as_i64().unwrap_or(0);
    let chosen = items
        .iter()
        .find(|i| i["base"].as_i64().unwrap_or(0) > 0)
        .or_else(|| items.iter().max_by_key(weight))
        .and_then(|i| i["capacityProvider"].as_str())
        .ok_or("The specified capacity provider strategy cannot contain a capacity provider without a name.")?;
    Ok(Some(chosen.to_owned()))
}

fn pairs_of_tags(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let field = |k: &str| t[k].as_str().unwrap_or_default().to_owned();
            (field("key"), field("value"))
        })
        .collect()
}

fn list_tasks(shared: &Shared, body: &Value) -> Response {
    let s = shared.state.lock().expect("stand-in state");
    let cluster = body["cluster"]
        .as_str()
        .map(cluster_name)
        .unwrap_or("default");
    let by = body["startedBy"].as_str();
    let desired = body["desiredStatus"].as_str().unwrap_or("RUNNING");
    let page = body["maxResults"].as_u64().unwrap_or(100).clamp(1, 100) as usize;
    let from: usize = body["nextToken"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let matching: Vec<&String> = s
        .tasks
        .iter()
        .filter(|(_, t)| t.cluster == cluster && t.desired_status == desired)
        .filter(|(_, t)| by.is_none_or(|b| b == t.started_by))
        .map(|(a, _)| a)
        .collect();
    let arns: Vec<&String> = matching.iter().skip(from).take(page).copied().collect();
    let mut out = json!({"taskArns": arns});
    if from + page < matching.len() {
        out["nextToken"] = json!((from + page).to_string());
    }
    json_response(200, out)
}

fn describe_tasks(shared: &Shared, body: &Value) -> Response {
    let arns: Vec<&str> = body["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if arns.len() > 100 {
        return error(
            "InvalidParameterException",
            "Tasks cannot be longer than 100 elements.",
        );
    }
    let with_tags = body["include"]
        .as_array()
        .is_some_and(|i| i.iter().any(|v| v == "TAGS"));
    let s = shared.state.lock().expect("stand-in state");
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    for a in arns {
        match s.tasks.get(a).or_else(|| s.by_id(a)) {
            Some(t) => tasks.push(t.json(with_tags)),
            None => failures.push(json!({"arn": a, "reason": "MISSING"})),
        }
    }
    json_response(200, json!({"tasks": tasks, "failures": failures}))
}

fn stop_task(shared: &Arc<Shared>, body: &Value) -> Response {
    let name = body["task"].as_str().unwrap_or_default();
    let reason = body["reason"].as_str().unwrap_or("Task stopped by user");
    let mut s = shared.state.lock().expect("stand-in state");
    let Some(arn) = s
        .tasks
        .get(name)
        .or_else(|| s.by_id(name))
        .map(|t| t.arn.clone())
    else {
        return error(
            "InvalidParameterException",
            "The referenced task was not found.",
        );
    };
    let t = s.tasks.get_mut(&arn).expect("found above");
    if t.desired_status != "STOPPED" {
        t.desired_status = "STOPPED".into();
        t.stopped_reason = Some(reason.to_owned());
        t.stop_code = Some("UserInitiated".into());
        if t.pid.is_some() {
            t.last_status = "DEACTIVATING".into();
        } else {
            // Nothing runs yet (or no agent): it stops at once.
            t.last_status = "STOPPED".into();
            t.stopped_at = Some(now_epoch());
        }
    }
    let task = t.json(false);
    drop(s);
    shared.request_stop(&arn);
    json_response(200, json!({"task": task}))
}
