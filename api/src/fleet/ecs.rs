//! The ECS fleet: one Fargate task per workflow attempt, launched with `RunTask` (deduplicated per
//! workflow key, idempotent per attempt through `clientToken`, rate limited, bounded by a worker
//! maximum), found by polling `ListTasks`/`DescribeTasks`. Only the API talks to ECS.

mod backoff;
mod capacity;
mod classify;
mod fleet;
mod launch;
mod poll;
mod settings;
#[cfg(any(test, feature = "conformance"))]
pub mod testing;

pub use capacity::{CapacityItem, parse_strategy};
pub use classify::{EcsFault, classify_code, classify_failure};
pub use fleet::{EcsFleet, EcsFleetConfig, PollSummary, ecs_client};
pub use launch::{Purpose, TAG_ATTEMPT, TAG_JOB, TAG_WARM, TAG_WORKFLOW, client_token};
pub use settings::{ECS_DESCRIBE_LIMIT, EcsSettings};
