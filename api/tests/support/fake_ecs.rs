//! A fake ECS endpoint on loopback, speaking the real wire protocol (awsJson1_1), for what the
//! emulator cannot show: throttling, `failures[]` capacity errors, permission errors, health
//! transitions, failed polls. The real SDK client talks to it, so error parsing is exercised too.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use htsprep_api::fleet::ecs::EcsSettings;
use htsprep_api::fleet::ecs::testing::test_settings;
use htsprep_api::fleet::{EcsFleet, EcsFleetConfig};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// A scripted answer to the next call of an operation.
#[derive(Clone, Debug)]
pub enum Reply {
    /// An error response: HTTP status, `__type`, message.
    Error(u16, &'static str, &'static str),
    /// `RunTask` answered 200 with no task and this `failures[].reason`.
    Failure(&'static str),
}

#[derive(Clone, Debug)]
pub struct FakeTask {
    pub last_status: String,
    pub desired_status: String,
    pub health: Option<String>,
    pub ip: String,
    pub started_by: String,
    pub tags: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
pub struct Call {
    pub op: String,
    pub at: Instant,
    pub body: Value,
}

#[derive(Default)]
struct FakeState {
    tasks: BTreeMap<String, FakeTask>,
    scripts: BTreeMap<String, VecDeque<Reply>>,
    calls: Vec<Call>,
    next: u32,
}

pub struct FakeEcs {
    pub addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    stop: CancellationToken,
}

impl Drop for FakeEcs {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub const CLUSTER: &str = "fake-cluster";

impl FakeEcs {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let app = Router::new()
            .route("/", axum::routing::post(handle))
            .with_state(Arc::clone(&state));
        let s = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(s.cancelled_owned())
                .await
                .unwrap();
        });
        Self { addr, state, stop }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Settings for a fleet talking to this fake.
    pub fn settings(&self) -> EcsSettings {
        test_settings(CLUSTER, "htsprep-worker:1")
    }

    pub fn fleet_with(&self, settings: EcsSettings, max_workers: usize) -> EcsFleet {
        EcsFleet::new(
            htsprep_api::fleet::ecs::testing::client(&self.endpoint()),
            EcsFleetConfig {
                settings,
                max_workers,
                worker_env: Vec::new(),
                backoff_base: Duration::from_millis(200),
            },
        )
    }

    pub fn fleet(&self, max_workers: usize) -> EcsFleet {
        self.fleet_with(self.settings(), max_workers)
    }

    /// The next calls of `op` get these replies, in order; later calls succeed.
    pub fn script(&self, op: &str, replies: impl IntoIterator<Item = Reply>) {
        let mut s = self.state.lock().unwrap();
        s.scripts.entry(op.to_owned()).or_default().extend(replies);
    }

    pub fn calls(&self, op: &str) -> Vec<Call> {
        let s = self.state.lock().unwrap();
        s.calls.iter().filter(|c| c.op == op).cloned().collect()
    }

    /// Adds a task as if ECS had started it; returns its ARN.
    pub fn add_task(&self, last_status: &str, health: Option<&str>) -> String {
        let mut s = self.state.lock().unwrap();
        new_task(&mut s, last_status, health, "htsprep")
    }

    pub fn set_task(&self, arn: &str, last_status: &str, health: Option<&str>) {
        let mut s = self.state.lock().unwrap();
        let t = s.tasks.get_mut(arn).expect("known task");
        t.last_status = last_status.into();
        t.health = health.map(str::to_owned);
        if last_status == "STOPPED" {
            t.desired_status = "STOPPED".into();
        }
    }

    pub fn task(&self, arn: &str) -> FakeTask {
        self.state.lock().unwrap().tasks[arn].clone()
    }

    pub fn task_ip(&self, arn: &str) -> String {
        self.task(arn).ip
    }
}

fn new_task(s: &mut FakeState, last_status: &str, health: Option<&str>, by: &str) -> String {
    s.next += 1;
    let n = s.next;
    let arn = format!("arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/task{n:05}");
    s.tasks.insert(
        arn.clone(),
        FakeTask {
            last_status: last_status.into(),
            desired_status: "RUNNING".into(),
            health: health.map(str::to_owned),
            ip: format!("10.0.{}.{}", n / 250, n % 250 + 1),
            started_by: by.into(),
            tags: Vec::new(),
        },
    );
    arn
}

fn task_json(arn: &str, t: &FakeTask) -> Value {
    let mut v = json!({
        "taskArn": arn,
        "clusterArn": format!("arn:aws:ecs:us-east-1:123456789012:cluster/{CLUSTER}"),
        "lastStatus": t.last_status,
        "desiredStatus": t.desired_status,
        "launchType": "FARGATE",
        "startedBy": t.started_by,
        "attachments": [{
            "id": "eni-attachment",
            "type": "ElasticNetworkInterface",
            "status": "ATTACHED",
            "details": [
                {"name": "subnetId", "value": "subnet-1"},
                {"name": "privateIPv4Address", "value": t.ip},
            ],
        }],
    });
    if let Some(h) = &t.health {
        v["healthStatus"] = json!(h);
    }
    v
}

fn json_response(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}

async fn handle(
    State(state): State<Arc<Mutex<FakeState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let op = target.rsplit('.').next().unwrap_or_default().to_owned();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut s = state.lock().unwrap();
    s.calls.push(Call {
        op: op.clone(),
        at: Instant::now(),
        body: body.clone(),
    });
    if let Some(reply) = s.scripts.get_mut(&op).and_then(VecDeque::pop_front) {
        return match reply {
            Reply::Error(status, kind, message) => {
                json_response(status, json!({"__type": kind, "message": message}))
            }
            Reply::Failure(reason) => {
                json_response(200, json!({"tasks": [], "failures": [{"reason": reason}]}))
            }
        };
    }
    match op.as_str() {
        "RunTask" => {
            let by = body["startedBy"].as_str().unwrap_or_default().to_owned();
            let arn = new_task(&mut s, "PROVISIONING", None, &by);
            let tags = body["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    let field = |k: &str| t[k].as_str().unwrap_or_default().to_owned();
                    (field("key"), field("value"))
                })
                .collect();
            let task = s.tasks.get_mut(&arn).expect("just added");
            task.tags = tags;
            let t = task.clone();
            json_response(200, json!({"tasks": [task_json(&arn, &t)], "failures": []}))
        }
        "ListTasks" => {
            let by = body["startedBy"].as_str();
            let page = body["maxResults"].as_u64().unwrap_or(100).min(100) as usize;
            let from: usize = body["nextToken"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let matching: Vec<&String> = s
                .tasks
                .iter()
                .filter(|(_, t)| t.desired_status == "RUNNING")
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
        "DescribeTasks" => {
            let arns: Vec<String> = body["tasks"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if arns.len() > 100 {
                return json_response(
                    400,
                    json!({"__type": "InvalidParameterException", "message": "Tasks cannot be longer than 100 elements."}),
                );
            }
            let mut tasks = Vec::new();
            let mut failures = Vec::new();
            let with_tags = body["include"]
                .as_array()
                .is_some_and(|i| i.iter().any(|v| v == "TAGS"));
            for a in &arns {
                match s.tasks.get(a) {
                    Some(t) => {
                        let mut v = task_json(a, t);
                        if with_tags {
                            v["tags"] = t
                                .tags
                                .iter()
                                .map(|(k, v)| json!({"key": k, "value": v}))
                                .collect();
                        }
                        tasks.push(v)
                    }
                    None => failures.push(json!({"arn": a, "reason": "MISSING"})),
                }
            }
            json_response(200, json!({"tasks": tasks, "failures": failures}))
        }
        "StopTask" => {
            let arn = body["task"].as_str().unwrap_or_default().to_owned();
            match s.tasks.get_mut(&arn) {
                Some(t) => {
                    t.desired_status = "STOPPED".into();
                    t.last_status = "STOPPED".into();
                    let t = t.clone();
                    json_response(200, json!({"task": task_json(&arn, &t)}))
                }
                None => json_response(
                    400,
                    json!({"__type": "InvalidParameterException", "message": "The referenced task was not found."}),
                ),
            }
        }
        _ => json_response(
            400,
            json!({"__type": "UnknownOperationException", "message": op}),
        ),
    }
}
