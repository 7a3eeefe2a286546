//! The ECS fleet against a fake ECS endpoint (real SDK, real HTTP, scripted answers): throttling
//! and capacity errors are retried with backoff under the same `clientToken`, permanent errors
//! fail fast, a worker is usable only while RUNNING and HEALTHY, an unhealthy task is stopped,
//! a failed poll keeps the known workers, and discovery pages, batches and paces its calls.

mod support;

use std::time::Duration;

use htsprep_api::fleet::{
    Discovery, Inspect, ProvisionError, ProvisionRequest, Provisioner, WorkerEvent,
};
use htsprep_shared::domain::JobId;
use support::fake_ecs::{CLUSTER, FakeEcs, Reply};

fn request(key: &str) -> ProvisionRequest {
    ProvisionRequest {
        workflow_key: key.into(),
        job_id: JobId::new(),
        attempt: 1,
    }
}

#[tokio::test]
async fn throttling_is_retried_with_growing_backoff_under_one_client_token() {
    let ecs = FakeEcs::start().await;
    ecs.script(
        "RunTask",
        [
            Reply::Error(400, "ThrottlingException", "Rate exceeded"),
            Reply::Error(
                500,
                "ServerException",
                "Service unavailable. Try again later.",
            ),
            Reply::Error(400, "InvalidParameterException", "Request limit exceeded."),
        ],
    );
    let fleet = ecs.fleet(4);
    let req = request("dcc/throttled/md5/v1");
    let mut waits = Vec::new();
    loop {
        match fleet.provision(&req).await {
            Ok(()) => break,
            Err(ProvisionError::Capacity {
                message,
                retry_after,
            }) => {
                assert!(!message.is_empty());
                // While backing off, asking again does not call ECS.
                let calls = ecs.calls("RunTask").len();
                let again = fleet.provision(&req).await;
                assert!(
                    matches!(again, Err(ProvisionError::Capacity { .. })),
                    "{again:?}"
                );
                assert_eq!(ecs.calls("RunTask").len(), calls);
                waits.push(retry_after);
                tokio::time::sleep(retry_after).await;
            }
            Err(e) => panic!("throttling must be retryable, got {e}"),
        }
        assert!(waits.len() <= 3, "{waits:?}");
    }
    assert_eq!(waits.len(), 3);
    assert!(waits[0] < waits[1] && waits[1] < waits[2], "{waits:?}");
    let calls = ecs.calls("RunTask");
    assert_eq!(calls.len(), 4);
    let tokens: Vec<&str> = calls
        .iter()
        .map(|c| c.body["clientToken"].as_str().unwrap())
        .collect();
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
    assert_eq!(fleet.started(), 1);
}

#[tokio::test]
async fn capacity_failures_in_a_200_are_retryable() {
    let ecs = FakeEcs::start().await;
    let reasons = [
        "Capacity is unavailable at this time. Please try again later or in a different availability zone",
        "You've reached the limit on the number of tasks you can run concurrently",
        "You\u{2019}ve reached the limit on the number of vCPUs you can run concurrently",
    ];
    ecs.script("RunTask", reasons.map(Reply::Failure));
    let fleet = ecs.fleet(4);
    let req = request("dcc/capacity/md5/v1");
    for reason in reasons {
        match fleet.provision(&req).await {
            Err(ProvisionError::Capacity {
                message,
                retry_after,
            }) => {
                assert!(message.contains(reason), "{message}");
                tokio::time::sleep(retry_after).await;
            }
            other => panic!("{reason}: expected a capacity error, got {other:?}"),
        }
    }
    fleet.provision(&req).await.expect("capacity came back");
    assert_eq!(ecs.calls("RunTask").len(), 4);
}

#[tokio::test]
async fn permanent_errors_fail_fast_with_a_clear_message() {
    let cases: [(Reply, &str); 4] = [
        (
            Reply::Error(
                400,
                "AccessDeniedException",
                "User: arn:aws:sts::1:assumed-role/api is not authorized to perform: iam:PassRole",
            ),
            "iam:PassRole on the worker's task and execution roles",
        ),
        (
            Reply::Error(400, "ClientException", "TaskDefinition is inactive"),
            "TaskDefinition is inactive",
        ),
        (
            Reply::Error(
                400,
                "InvalidParameterException",
                "No Fargate configuration exists for given values.",
            ),
            "No Fargate configuration",
        ),
        (Reply::Failure("MISSING"), "MISSING"),
    ];
    for (reply, expect) in cases {
        let ecs = FakeEcs::start().await;
        ecs.script("RunTask", [reply.clone()]);
        let fleet = ecs.fleet(4);
        match fleet.provision(&request("dcc/denied/md5/v1")).await {
            Err(ProvisionError::Permanent(m)) => assert!(m.contains(expect), "{m}"),
            other => panic!("{reply:?}: expected a permanent error, got {other:?}"),
        }
        assert_eq!(ecs.calls("RunTask").len(), 1, "{reply:?}: not retried");
        assert_eq!(fleet.started(), 0);
    }
}

#[tokio::test]
async fn a_worker_is_usable_only_while_running_and_healthy_and_an_unhealthy_one_is_stopped() {
    let ecs = FakeEcs::start().await;
    let fleet = ecs.fleet(4);
    let mut events = fleet.subscribe();
    let req = request("dcc/health/md5/v1");
    fleet.provision(&req).await.unwrap();
    assert_eq!(ecs.calls("RunTask").len(), 1);
    let arn = {
        let listed = fleet.poll_once().await.unwrap();
        assert_eq!(
            (listed.tasks, listed.workers),
            (1, 0),
            "PROVISIONING is not usable"
        );
        ecs.calls("DescribeTasks")[0].body["tasks"][0]
            .as_str()
            .unwrap()
            .to_owned()
    };
    ecs.set_task(&arn, "RUNNING", Some("UNKNOWN"));
    assert_eq!(
        fleet.poll_once().await.unwrap().workers,
        0,
        "health not known yet"
    );
    assert!(fleet.subscribe().current().is_empty());

    ecs.set_task(&arn, "RUNNING", Some("HEALTHY"));
    assert_eq!(fleet.poll_once().await.unwrap().workers, 1);
    match events.next().await {
        Some(WorkerEvent::Added(w)) => {
            assert_eq!(w.id, arn);
            assert_eq!(w.address, format!("{}:50051", ecs.task_ip(&arn)));
            assert_eq!(w.started_for.as_deref(), Some(req.job_id.as_str()));
        }
        other => panic!("expected the worker to be added, got {other:?}"),
    }

    ecs.set_task(&arn, "RUNNING", Some("UNHEALTHY"));
    let summary = fleet.poll_once().await.unwrap();
    assert_eq!((summary.workers, summary.stopped), (0, 1));
    assert_eq!(events.next().await, Some(WorkerEvent::Dropped(arn.clone())));
    let stops = ecs.calls("StopTask");
    assert_eq!(stops.len(), 1);
    assert_eq!(stops[0].body["task"], arn.as_str());
    assert!(
        stops[0].body["reason"]
            .as_str()
            .unwrap()
            .contains("health check")
    );
    assert_eq!(ecs.task(&arn).desired_status, "STOPPED");
    // Gone from the listing now; nothing is stopped twice.
    let summary = fleet.poll_once().await.unwrap();
    assert_eq!((summary.tasks, summary.stopped), (0, 0));
    assert_eq!(ecs.calls("StopTask").len(), 1);
}

#[tokio::test]
async fn a_stopped_task_is_dropped_and_others_stay() {
    let ecs = FakeEcs::start().await;
    let a = ecs.add_task("RUNNING", Some("HEALTHY"));
    let b = ecs.add_task("RUNNING", Some("HEALTHY"));
    let fleet = ecs.fleet(4);
    assert_eq!(fleet.poll_once().await.unwrap().workers, 2);
    ecs.set_task(&a, "STOPPED", None);
    assert_eq!(fleet.poll_once().await.unwrap().workers, 1);
    let ids: Vec<String> = fleet
        .subscribe()
        .current()
        .into_iter()
        .map(|w| w.id)
        .collect();
    assert_eq!(ids, [b]);
}

#[tokio::test]
async fn a_failed_poll_keeps_the_known_workers() {
    let ecs = FakeEcs::start().await;
    ecs.add_task("RUNNING", Some("HEALTHY"));
    ecs.add_task("RUNNING", Some("HEALTHY"));
    let fleet = ecs.fleet(4);
    assert_eq!(fleet.poll_once().await.unwrap().workers, 2);
    ecs.script(
        "ListTasks",
        [Reply::Error(500, "ServerException", "internal error")],
    );
    assert!(fleet.poll_once().await.is_err());
    assert_eq!(fleet.subscribe().current().len(), 2);
    ecs.script(
        "DescribeTasks",
        [Reply::Error(400, "ThrottlingException", "Rate exceeded")],
    );
    assert!(fleet.poll_once().await.is_err());
    assert_eq!(fleet.subscribe().current().len(), 2);
    assert_eq!(fleet.poll_once().await.unwrap().workers, 2);

    // The polling loop counts failures and carries on.
    ecs.script(
        "ListTasks",
        [Reply::Error(500, "ServerException", "internal error")],
    );
    fleet.start_polling();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while fleet.polls_failed() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fleet.polls_failed(), 1);
    assert_eq!(fleet.subscribe().current().len(), 2);
    fleet.shutdown().await;
}

#[tokio::test]
async fn discovery_pages_batches_and_stays_under_the_describe_rate() {
    let ecs = FakeEcs::start().await;
    for _ in 0..1250 {
        ecs.add_task("RUNNING", Some("HEALTHY"));
    }
    let fleet = ecs.fleet(2000);
    let summary = fleet.poll_once().await.unwrap();
    assert_eq!((summary.tasks, summary.workers), (1250, 1250));
    let lists = ecs.calls("ListTasks");
    let describes = ecs.calls("DescribeTasks");
    assert_eq!(lists.len(), 13, "pages of 100");
    assert_eq!(describes.len(), 13, "batches of at most 100");
    assert!(
        describes
            .iter()
            .all(|c| c.body["tasks"].as_array().unwrap().len() <= 100)
    );
    // 20 calls per second at most (ECS's sustained describe/list rate), in any one-second window.
    let mut at: Vec<_> = lists.iter().chain(&describes).map(|c| c.at).collect();
    at.sort();
    for (i, start) in at.iter().enumerate() {
        let within = at[i..]
            .iter()
            .take_while(|t| t.duration_since(*start) < Duration::from_secs(1))
            .count();
        assert!(within <= 21, "{within} calls within one second");
    }
}

#[tokio::test]
async fn run_task_calls_are_paced_by_the_configured_rate() {
    let ecs = FakeEcs::start().await;
    let mut settings = ecs.settings();
    settings.run_task_per_second = 4.0;
    let fleet = ecs.fleet_with(settings, 100);
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let f = fleet.clone();
            tokio::spawn(
                async move { f.provision(&request(&format!("dcc/rate-{i}/md5/v1"))).await },
            )
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    let at: Vec<_> = ecs.calls("RunTask").iter().map(|c| c.at).collect();
    assert_eq!(at.len(), 8);
    // A burst of 4, then one call every 250 ms: at least 1 s from the first to the last.
    let span = at[7].duration_since(at[0]);
    assert!(
        span >= Duration::from_millis(750),
        "8 calls within {span:?}"
    );
}

#[tokio::test]
async fn asked_about_running_jobs_tasks_ecs_names_the_lost_ones_and_why() {
    let ecs = FakeEcs::start().await;
    let fleet = ecs.fleet(4);
    let running = ecs.add_task("RUNNING", Some("HEALTHY"));
    let crashed = ecs.add_task("RUNNING", Some("HEALTHY"));
    let spot = ecs.add_task("RUNNING", Some("HEALTHY"));
    let stopping = ecs.add_task("RUNNING", Some("HEALTHY"));
    ecs.set_stopped(&crashed, "Essential container in task exited", Some(137));
    ecs.set_stopped(&spot, "Your Spot Task was interrupted.", None);
    ecs.set_task(&stopping, "DEACTIVATING", Some("HEALTHY"));
    let missing = format!("arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/0123");
    let ids = [
        running.clone(),
        crashed.clone(),
        spot.clone(),
        stopping.clone(),
        missing.clone(),
        "pid-42".to_owned(),
    ];
    let mut gone = fleet.gone(&ids).await.unwrap();
    gone.sort_by(|a, b| a.id.cmp(&b.id));
    let by_id = |id: &str| gone.iter().find(|g| g.id == id).cloned();
    assert_eq!(gone.len(), 3, "{gone:#?}");
    let c = by_id(&crashed).unwrap();
    assert!(
        c.reason.contains("Essential container in task exited")
            && c.reason.contains("exit code 137"),
        "{c:?}"
    );
    assert!(c.counts_attempt);
    let s = by_id(&spot).unwrap();
    assert!(
        !s.counts_attempt,
        "a Spot interruption costs no attempt: {s:?}"
    );
    let m = by_id(&missing).unwrap();
    assert!(m.reason.contains("no longer knows"), "{m:?}");
    assert!(by_id(&running).is_none() && by_id(&stopping).is_none());
    assert_eq!(ecs.calls("DescribeTasks").len(), 1, "one batch");
}

#[tokio::test]
async fn a_capacity_provider_strategy_replaces_the_launch_type() {
    let ecs = FakeEcs::start().await;
    let mut settings = ecs.settings();
    settings.capacity_provider_strategy =
        htsprep_api::fleet::ecs::parse_strategy("FARGATE:1:1,FARGATE_SPOT:3").unwrap();
    let spot = ecs.fleet_with(settings, 4);
    spot.provision(&request("dcc/spot/md5/v1")).await.unwrap();
    ecs.fleet(4)
        .provision(&request("dcc/plain/md5/v1"))
        .await
        .unwrap();
    let calls = ecs.calls("RunTask");
    assert_eq!(calls.len(), 2);
    let (with_strategy, plain) = (&calls[0].body, &calls[1].body);
    assert_eq!(
        with_strategy["capacityProviderStrategy"],
        serde_json::json!([
            {"capacityProvider": "FARGATE", "weight": 1, "base": 1},
            {"capacityProvider": "FARGATE_SPOT", "weight": 3, "base": 0},
        ])
    );
    assert!(
        with_strategy.get("launchType").is_none(),
        "ECS refuses a launch type with a strategy: {with_strategy}"
    );
    assert_eq!(plain["launchType"], "FARGATE");
    assert!(plain.get("capacityProviderStrategy").is_none(), "{plain}");
}
