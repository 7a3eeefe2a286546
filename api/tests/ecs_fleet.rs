//! The ECS fleet against the AWS emulator (moto): the fleet conformance suite, and what only ECS
//! has — the network configuration, tags and overrides of each `RunTask`, one task per attempt,
//! discovery by the tasks' private IPs.

use async_trait::async_trait;
use htsprep_api::fleet::conformance::{FleetHarness, TestFleet};
use htsprep_api::fleet::ecs::testing::MotoEcs;
use htsprep_api::fleet::ecs::{TAG_ATTEMPT, TAG_JOB, TAG_WORKFLOW};
use htsprep_api::fleet::{
    Discovery, EcsFleet, ProvisionError, ProvisionRequest, Provisioner, WorkerInfo,
};
use htsprep_shared::aws::testing::TestAws;
use htsprep_shared::domain::JobId;
use tokio::sync::OnceCell;

struct EcsHarness {
    aws: OnceCell<TestAws>,
    moto: OnceCell<MotoEcs>,
}

impl EcsHarness {
    fn new() -> Self {
        Self {
            aws: OnceCell::new(),
            moto: OnceCell::new(),
        }
    }

    async fn moto(&self) -> &MotoEcs {
        let aws = self.aws.get_or_init(TestAws::start).await;
        self.moto.get_or_init(|| MotoEcs::new(aws)).await
    }
}

#[async_trait]
impl FleetHarness for EcsHarness {
    async fn fleet(&self, max_workers: usize) -> TestFleet {
        let m = self.moto().await;
        let fleet = EcsFleet::new(m.client.clone(), m.fleet_config(max_workers));
        fleet.start_polling();
        TestFleet::of(fleet)
    }

    async fn stop_worker(&self, worker: &WorkerInfo) {
        self.moto().await.stop(&worker.id).await;
    }
}

mod conformance {
    htsprep_api::fleet_conformance!(super::EcsHarness::new());
}

fn request(key: &str, job_id: &JobId, attempt: u32) -> ProvisionRequest {
    ProvisionRequest {
        workflow_key: key.into(),
        job_id: job_id.clone(),
        attempt,
    }
}

fn tag<'a>(task: &'a aws_sdk_ecs::types::Task, key: &str) -> Option<&'a str> {
    task.tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_task_launches_a_fargate_task_in_the_configured_network_with_its_workflow() {
    let aws = TestAws::start().await;
    let moto = MotoEcs::new(&aws).await;
    let fleet = EcsFleet::new(moto.client.clone(), moto.fleet_config(4));
    let job = JobId::new();
    let key = "ENCODE/ENCFF001/0123456789abcdef0123456789abcdef/v1";
    fleet.provision(&request(key, &job, 1)).await.unwrap();

    let tasks = moto.running_tasks().await;
    assert_eq!(tasks.len(), 1);
    let t = &tasks[0];
    assert_eq!(
        t.launch_type(),
        Some(&aws_sdk_ecs::types::LaunchType::Fargate)
    );
    assert_eq!(t.started_by(), Some("htsprep"));
    assert!(
        t.task_definition_arn()
            .is_some_and(|a| a.contains(&moto.task_definition)),
        "{:?}",
        t.task_definition_arn()
    );
    assert_eq!(tag(t, TAG_WORKFLOW), Some(key));
    assert_eq!(tag(t, TAG_JOB), Some(job.as_str()));
    assert_eq!(tag(t, TAG_ATTEMPT), Some("1"));
    // The ENI is in one of the configured subnets.
    let eni = t
        .attachments()
        .iter()
        .find(|a| a.r#type() == Some("ElasticNetworkInterface"))
        .expect("an ENI attachment");
    let detail = |name: &str| {
        eni.details()
            .iter()
            .find(|d| d.name() == Some(name))
            .and_then(|d| d.value())
            .map(str::to_owned)
    };
    let subnet = detail("subnetId").expect("subnet id");
    assert!(
        moto.subnets.contains(&subnet),
        "{subnet} not in {:?}",
        moto.subnets
    );
    let ip = detail("privateIPv4Address").expect("private IP");
    // The API's settings reach the worker container.
    let env: Vec<(String, String)> = t
        .overrides()
        .map(|o| o.container_overrides())
        .unwrap_or_default()
        .iter()
        .filter(|c| c.name() == Some("worker"))
        .flat_map(|c| c.environment())
        .map(|kv| {
            (
                kv.name().unwrap_or_default().to_owned(),
                kv.value().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert!(
        env.contains(&("HTSPREP_HEARTBEAT_SECONDS".into(), "10".into())),
        "{env:?}"
    );

    // Discovery finds it at its private IP and the gRPC port.
    let summary = fleet.poll_once().await.unwrap();
    assert_eq!((summary.tasks, summary.workers), (1, 1));
    let workers = fleet.subscribe().current();
    assert_eq!(workers.len(), 1);
    assert_eq!(workers[0].address, format!("{ip}:50051"));
    assert_eq!(workers[0].provider, "ecs");
    assert_eq!(workers[0].started_for.as_deref(), Some(job.as_str()));
    assert_eq!(Some(workers[0].id.as_str()), t.task_arn());

    // Stopped: dropped by the next poll.
    moto.stop(t.task_arn().unwrap()).await;
    let summary = fleet.poll_once().await.unwrap();
    assert_eq!((summary.tasks, summary.workers), (0, 0));
    assert!(fleet.subscribe().current().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_task_per_attempt_and_a_new_one_for_the_next_attempt() {
    let aws = TestAws::start().await;
    let moto = MotoEcs::new(&aws).await;
    let fleet = EcsFleet::new(moto.client.clone(), moto.fleet_config(8));
    let job = JobId::new();
    let key = "dcc/attempts/md5/v1";
    // 100 concurrent requests, then the executor asking again while it waits for a worker.
    let calls: Vec<_> = (0..100)
        .map(|_| {
            let f = fleet.clone();
            let r = request(key, &job, 1);
            tokio::spawn(async move { f.provision(&r).await })
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    fleet.poll_once().await.unwrap();
    fleet.provision(&request(key, &job, 1)).await.unwrap();
    assert_eq!(moto.running_tasks().await.len(), 1);
    assert_eq!(fleet.started(), 1);

    fleet.provision(&request(key, &job, 2)).await.unwrap();
    let tasks = moto.running_tasks().await;
    assert_eq!(tasks.len(), 2);
    let mut attempts: Vec<_> = tasks.iter().filter_map(|t| tag(t, TAG_ATTEMPT)).collect();
    attempts.sort_unstable();
    assert_eq!(attempts, ["1", "2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_fleet_launches_again_once_a_task_stops() {
    let aws = TestAws::start().await;
    let moto = MotoEcs::new(&aws).await;
    let fleet = EcsFleet::new(moto.client.clone(), moto.fleet_config(1));
    fleet
        .provision(&request("dcc/a/md5/v1", &JobId::new(), 1))
        .await
        .unwrap();
    let full = fleet
        .provision(&request("dcc/b/md5/v1", &JobId::new(), 1))
        .await;
    match full {
        Err(ProvisionError::Capacity { message, .. }) => {
            assert!(message.contains("1 of at most 1"), "{message}")
        }
        other => panic!("expected a capacity error, got {other:?}"),
    }
    assert_eq!(moto.running_tasks().await.len(), 1);
    fleet.poll_once().await.unwrap();
    let arn = moto.running_tasks().await[0].task_arn().unwrap().to_owned();
    moto.stop(&arn).await;
    fleet.poll_once().await.unwrap();
    fleet
        .provision(&request("dcc/b/md5/v1", &JobId::new(), 1))
        .await
        .unwrap();
    assert_eq!(moto.running_tasks().await.len(), 1);
    assert_eq!(fleet.started(), 2);
}
