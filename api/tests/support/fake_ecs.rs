//! The ECS stand-in (`htsprep-ecs-standin`) without its agent, for what a healthy ECS never
//! shows: throttling, `failures[]` capacity errors, permission errors, health transitions, failed
//! polls. It speaks the real wire protocol (awsJson1_1) to the real SDK client, so error parsing
//! is exercised too; tasks move only when a test moves them.

use std::time::Duration;

use htsprep_api::fleet::ecs::EcsSettings;
use htsprep_api::fleet::ecs::testing::test_settings;
use htsprep_api::fleet::{EcsFleet, EcsFleetConfig};
pub use htsprep_ecs_standin::{Call, Reply, Task as FakeTask};
use htsprep_ecs_standin::{EcsStandIn, StandInConfig, container};

pub const CLUSTER: &str = "fake-cluster";
const FAMILY: &str = "htsprep-worker";

pub struct FakeEcs {
    standin: EcsStandIn,
}

impl FakeEcs {
    pub async fn start() -> Self {
        let standin = EcsStandIn::start(StandInConfig::default()).await;
        standin.register(FAMILY, vec![container("worker", "htsprep-worker:test")]);
        Self { standin }
    }

    pub fn endpoint(&self) -> String {
        self.standin.endpoint()
    }

    /// Settings for a fleet talking to this fake.
    pub fn settings(&self) -> EcsSettings {
        test_settings(CLUSTER, &format!("{FAMILY}:1"))
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
        self.standin.script(op, replies);
    }

    pub fn calls(&self, op: &str) -> Vec<Call> {
        self.standin.calls(op)
    }

    /// Adds a task as if ECS had started it; returns its ARN.
    pub fn add_task(&self, last_status: &str, health: Option<&str>) -> String {
        self.standin
            .add_task(CLUSTER, "htsprep", last_status, health)
    }

    pub fn set_task(&self, arn: &str, last_status: &str, health: Option<&str>) {
        self.standin.set_task(arn, last_status, health);
    }

    pub fn set_stopped(&self, arn: &str, reason: &str, exit_code: Option<i32>) {
        self.standin.set_stopped(arn, reason, exit_code);
    }

    pub fn task(&self, arn: &str) -> FakeTask {
        self.standin.task(arn)
    }

    pub fn task_ip(&self, arn: &str) -> String {
        self.task(arn).ip
    }
}
