//! What the stand-in knows: task definitions, tasks and the calls it was sent, and how each is
//! written on the wire (awsJson1_1, timestamps as epoch seconds).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// A scripted answer to the next call of an operation.
#[derive(Clone, Debug)]
pub enum Reply {
    /// An error response: HTTP status, `__type`, message.
    Error(u16, &'static str, &'static str),
    /// `RunTask` answered 200 with no task and this `failures[].reason`.
    Failure(&'static str),
}

/// One call the stand-in received.
#[derive(Clone, Debug)]
pub struct Call {
    pub op: String,
    pub at: Instant,
    pub body: Value,
}

/// A container health check (`healthCheck` of a container definition).
#[derive(Clone, Debug, PartialEq)]
pub struct HealthCheck {
    /// `["CMD", program, args...]` or `["CMD-SHELL", "command line"]`.
    pub command: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ContainerDef {
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    pub environment: Vec<(String, String)>,
    /// `(name, valueFrom)`: resolved from the stand-in's secrets when the task starts.
    pub secrets: Vec<(String, String)>,
    pub health_check: Option<HealthCheck>,
    /// SIGTERM, then SIGKILL after this long (ECS's default is 30 s).
    pub stop_timeout: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TaskDefinition {
    pub arn: String,
    pub family: String,
    pub revision: u32,
    pub containers: Vec<ContainerDef>,
}

fn seconds(v: &Value, default: u64) -> Duration {
    Duration::from_secs(v.as_u64().unwrap_or(default))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// `[{name, value}]` (or `valueFrom` for secrets) as pairs.
pub fn pairs(v: &Value, value_field: &str) -> Vec<(String, String)> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let field = |k: &str| p[k].as_str().unwrap_or_default().to_owned();
            (field("name"), field(value_field))
        })
        .collect()
}

impl ContainerDef {
    pub fn from_json(c: &Value) -> Result<Self, String> {
        let name = c["name"]
            .as_str()
            .ok_or("a container definition needs a name")?;
        let image = c["image"]
            .as_str()
            .ok_or_else(|| format!("container {name} needs an image"))?;
        let health_check = match &c["healthCheck"] {
            Value::Null => None,
            h => Some(HealthCheck {
                command: strings(&h["command"]),
                interval: seconds(&h["interval"], 30),
                timeout: seconds(&h["timeout"], 5),
                retries: h["retries"].as_u64().unwrap_or(3) as u32,
                start_period: seconds(&h["startPeriod"], 0),
            }),
        };
        if let Some(h) = &health_check
            && !matches!(
                h.command.first().map(String::as_str),
                Some("CMD" | "CMD-SHELL")
            )
        {
            return Err(format!(
                "container {name}: healthCheck.command must start with CMD or CMD-SHELL"
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            image: image.to_owned(),
            command: strings(&c["command"]),
            environment: pairs(&c["environment"], "value"),
            secrets: pairs(&c["secrets"], "valueFrom"),
            health_check,
            stop_timeout: seconds(&c["stopTimeout"], 30),
        })
    }
}

impl TaskDefinition {
    pub fn json(&self) -> Value {
        json!({
            "taskDefinitionArn": self.arn,
            "family": self.family,
            "revision": self.revision,
            "status": "ACTIVE",
            "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"],
            "containerDefinitions": self.containers.iter().map(|c| json!({
                "name": c.name,
                "image": c.image,
                "command": c.command,
                "stopTimeout": c.stop_timeout.as_secs(),
            })).collect::<Vec<_>>(),
        })
    }
}

/// One task, as ECS would describe it.
#[derive(Clone, Debug)]
pub struct Task {
    pub arn: String,
    pub id: String,
    pub cluster: String,
    pub task_definition: Option<TaskDefinition>,
    pub started_by: String,
    pub tags: Vec<(String, String)>,
    /// The task's own address: the awsvpc ENI's private IPv4 on Fargate, a loopback address of
    /// its own here.
    pub ip: String,
    /// The capacity provider it runs on when `RunTask` named a strategy (`FARGATE_SPOT`, ...);
    /// `None`: the Fargate launch type, and the field is left out.
    pub capacity_provider: Option<String>,
    pub last_status: String,
    pub desired_status: String,
    /// `HEALTHY`, `UNHEALTHY`, `UNKNOWN`; `None` leaves the field out.
    pub health: Option<String>,
    pub created_at: f64,
    pub started_at: Option<f64>,
    pub stopped_at: Option<f64>,
    pub stopped_reason: Option<String>,
    pub stop_code: Option<String>,
    pub exit_code: Option<i32>,
    /// The container the overrides named, and the environment they set.
    pub env_overrides: Vec<(String, String)>,
    pub command_override: Option<Vec<String>>,
    /// The process running the task's container, while it runs.
    pub pid: Option<u32>,
}

pub fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

pub fn cluster_arn(cluster: &str) -> String {
    if cluster.starts_with("arn:") {
        cluster.to_owned()
    } else {
        format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{cluster}")
    }
}

/// The cluster's short name, from a name or an ARN.
pub fn cluster_name(cluster: &str) -> &str {
    cluster.rsplit('/').next().unwrap_or(cluster)
}

impl Task {
    pub fn is_stopped(&self) -> bool {
        self.last_status == "STOPPED"
    }

    pub fn container_name(&self) -> &str {
        self.task_definition
            .as_ref()
            .and_then(|d| d.containers.first())
            .map_or("worker", |c| c.name.as_str())
    }

    pub fn json(&self, with_tags: bool) -> Value {
        let mut v = json!({
            "taskArn": self.arn,
            "clusterArn": cluster_arn(&self.cluster),
            "lastStatus": self.last_status,
            "desiredStatus": self.desired_status,
            "launchType": "FARGATE",
            "startedBy": self.started_by,
            "capacityProviderName": self.capacity_provider,
            "createdAt": self.created_at,
            "attachments": [{
                "id": format!("eni-attachment-{}", self.id),
                "type": "ElasticNetworkInterface",
                "status": if self.is_stopped() { "DELETED" } else { "ATTACHED" },
                "details": [
                    {"name": "subnetId", "value": "subnet-standin"},
                    {"name": "privateIPv4Address", "value": self.ip},
                ],
            }],
        });
        let mut container = json!({
            "name": self.container_name(),
            "lastStatus": self.last_status,
            "networkInterfaces": [{"privateIpv4Address": self.ip}],
        });
        if let Some(d) = &self.task_definition {
            v["taskDefinitionArn"] = json!(d.arn);
            if let Some(c) = d.containers.first() {
                container["image"] = json!(c.image);
            }
        }
        if let Some(h) = &self.health {
            v["healthStatus"] = json!(h);
            container["healthStatus"] = json!(h);
        }
        if let Some(code) = self.exit_code {
            container["exitCode"] = json!(code);
        }
        v["containers"] = json!([container]);
        for (field, value) in [
            ("startedAt", self.started_at.map(|t| json!(t))),
            ("stoppedAt", self.stopped_at.map(|t| json!(t))),
            (
                "stoppedReason",
                self.stopped_reason.as_ref().map(|r| json!(r)),
            ),
            ("stopCode", self.stop_code.as_ref().map(|c| json!(c))),
        ] {
            if let Some(value) = value {
                v[field] = value;
            }
        }
        if with_tags {
            v["tags"] = self
                .tags
                .iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect();
        }
        v
    }
}

/// Everything the stand-in holds, behind one lock.
#[derive(Default)]
pub struct State {
    pub definitions: BTreeMap<String, Vec<TaskDefinition>>,
    pub tasks: BTreeMap<String, Task>,
    /// `clientToken` → the task it started (ECS answers a repeated token with the same task).
    pub tokens: HashMap<String, String>,
    pub scripts: BTreeMap<String, VecDeque<Reply>>,
    pub calls: Vec<Call>,
    pub next_task: u32,
    /// The most tasks not yet stopped at any one time.
    pub peak_active: usize,
}

impl State {
    /// A task definition by family (latest revision), `family:revision` or ARN.
    pub fn definition(&self, name: &str) -> Option<&TaskDefinition> {
        let short = name.rsplit('/').next().unwrap_or(name);
        let (family, revision) = match short.split_once(':') {
            Some((f, r)) => (f, r.parse::<u32>().ok()),
            None => (short, None),
        };
        let revisions = self.definitions.get(family)?;
        match revision {
            Some(r) => revisions.iter().find(|d| d.revision == r),
            None => revisions.last(),
        }
    }

    pub fn register(&mut self, family: &str, containers: Vec<ContainerDef>) -> TaskDefinition {
        let revisions = self.definitions.entry(family.to_owned()).or_default();
        let revision = revisions.len() as u32 + 1;
        let def = TaskDefinition {
            arn: format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:{revision}"),
            family: family.to_owned(),
            revision,
            containers,
        };
        revisions.push(def.clone());
        def
    }

    pub fn active(&self) -> usize {
        self.tasks.values().filter(|t| !t.is_stopped()).count()
    }

    /// Adds a task and returns its ARN.
    pub fn add_task(&mut self, mut task: Task) -> String {
        self.next_task += 1;
        task.id = format!("{:032x}", u128::from(self.next_task) | (0xec5 << 100));
        task.arn = format!(
            "arn:aws:ecs:{REGION}:{ACCOUNT}:task/{}/{}",
            cluster_name(&task.cluster),
            task.id
        );
        let arn = task.arn.clone();
        self.tasks.insert(arn.clone(), task);
        self.peak_active = self.peak_active.max(self.active());
        arn
    }

    /// The task with this id (the last part of its ARN).
    pub fn by_id(&self, id: &str) -> Option<&Task> {
        self.tasks.values().find(|t| t.id == id)
    }
}
