//! The stand-in behaves as ECS does where the end-to-end tests rely on it, checked through the
//! real SDK client, with `/bin/sh` as the image's entrypoint.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerOverride, KeyValuePair, NetworkConfiguration,
    Tag, TaskField, TaskOverride,
};
use htsprep_ecs_standin::{ContainerDef, EcsStandIn, HealthCheck, Image, StandInConfig, Task};

const FAMILY: &str = "shell";

fn client(endpoint: &str) -> Client {
    let conf = aws_sdk_ecs::config::Builder::new()
        .behavior_version(aws_sdk_ecs::config::BehaviorVersion::latest())
        .region(aws_sdk_ecs::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_ecs::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .build();
    Client::from_conf(conf)
}

async fn standin(secrets: &[(&str, &str)]) -> EcsStandIn {
    let image = Image {
        binary: PathBuf::from("/bin/sh"),
        path_in_image: "/bin/sh".into(),
        command: vec!["-c".into(), "sleep 60".into()],
        env: htsprep_ecs_standin::env(&[("HOME", "{root}")]),
    };
    EcsStandIn::start(StandInConfig {
        images: HashMap::from([("shell:1".to_owned(), image)]),
        secrets: secrets
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    })
    .await
}

fn shell(script: &str) -> ContainerDef {
    let mut c = htsprep_ecs_standin::container("main", "shell:1");
    c.command = vec!["-c".into(), script.into()];
    c
}

fn network() -> NetworkConfiguration {
    NetworkConfiguration::builder()
        .awsvpc_configuration(
            AwsVpcConfiguration::builder()
                .subnets("subnet-1")
                .assign_public_ip(AssignPublicIp::Disabled)
                .build()
                .unwrap(),
        )
        .build()
}

async fn run(c: &Client, token: &str) -> String {
    c.run_task()
        .cluster("c")
        .task_definition(FAMILY)
        .client_token(token)
        .started_by("tests")
        .network_configuration(network())
        .send()
        .await
        .expect("RunTask")
        .tasks()[0]
        .task_arn()
        .unwrap()
        .to_owned()
}

async fn wait(s: &EcsStandIn, arn: &str, what: &str, f: impl Fn(&Task) -> bool) -> Task {
    for _ in 0..300 {
        let t = s.task(arn);
        if f(&t) {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{arn}: not {what}: {:#?}", s.task(arn));
}

#[tokio::test]
async fn run_task_is_idempotent_per_client_token_and_keeps_tags_overrides_and_started_by() {
    let s = standin(&[]).await;
    s.register(FAMILY, vec![shell("sleep 60")]);
    let c = client(&s.endpoint());
    let out = c
        .run_task()
        .cluster("c")
        .task_definition(format!("{FAMILY}:1"))
        .client_token("job-1.1")
        .started_by("tests")
        .network_configuration(network())
        .tags(Tag::builder().key("k").value("v").build())
        .overrides(
            TaskOverride::builder()
                .container_overrides(
                    ContainerOverride::builder()
                        .name("main")
                        .environment(KeyValuePair::builder().name("A").value("1").build())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let a = out.tasks()[0].task_arn().unwrap().to_owned();
    assert_eq!(run(&c, "job-1.1").await, a, "same token, same task");
    let b = run(&c, "job-1.2").await;
    assert_ne!(a, b);
    assert_eq!(s.tasks().len(), 2);
    assert_eq!(s.task(&a).env_overrides, [("A".into(), "1".into())]);
    let described = c
        .describe_tasks()
        .cluster("c")
        .tasks(&a)
        .include(TaskField::Tags)
        .send()
        .await
        .unwrap();
    let t = &described.tasks()[0];
    assert_eq!(t.started_by(), Some("tests"));
    assert_eq!(t.tags()[0].value(), Some("v"));
    let listed = c
        .list_tasks()
        .cluster("c")
        .started_by("someone-else")
        .send()
        .await
        .unwrap();
    assert!(listed.task_arns().is_empty());
}

#[tokio::test]
async fn bad_requests_get_ecs_errors() {
    let s = standin(&[]).await;
    s.register(FAMILY, vec![shell("sleep 60")]);
    let c = client(&s.endpoint());
    let unknown = c
        .run_task()
        .cluster("c")
        .task_definition("nope:3")
        .network_configuration(network())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        unknown.as_service_error().and_then(|e| e.meta().code()),
        Some("ClientException")
    );
    let no_network = c
        .run_task()
        .cluster("c")
        .task_definition(FAMILY)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        no_network.as_service_error().and_then(|e| e.meta().code()),
        Some("InvalidParameterException")
    );
    let bad_override = c
        .run_task()
        .cluster("c")
        .task_definition(FAMILY)
        .network_configuration(network())
        .overrides(
            TaskOverride::builder()
                .container_overrides(ContainerOverride::builder().name("other").build())
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(
        format!("{:?}", bad_override.as_service_error()).contains("other"),
        "{bad_override:?}"
    );
    assert!(s.tasks().is_empty(), "nothing launched");
}

#[tokio::test]
async fn list_tasks_pages() {
    let s = standin(&[]).await;
    for _ in 0..250 {
        s.add_task("c", "tests", "RUNNING", None);
    }
    let c = client(&s.endpoint());
    let pages: Vec<usize> = c
        .list_tasks()
        .cluster("c")
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|p| p.unwrap().task_arns().len())
        .collect();
    assert_eq!(pages, [100, 100, 50]);
}

#[tokio::test]
async fn a_container_that_exits_stops_its_task_with_its_exit_code() {
    let s = standin(&[]).await;
    s.register(FAMILY, vec![shell("exit 3")]);
    let c = client(&s.endpoint());
    let arn = run(&c, "t").await;
    let t = wait(&s, &arn, "stopped", |t| t.last_status == "STOPPED").await;
    assert_eq!(t.exit_code, Some(3));
    assert_eq!(t.stop_code.as_deref(), Some("EssentialContainerExited"));
    assert_eq!(
        t.stopped_reason.as_deref(),
        Some("Essential container in task exited")
    );
    assert!(t.started_at.is_some() && t.stopped_at.is_some());
    let listed = c.list_tasks().cluster("c").send().await.unwrap();
    assert!(listed.task_arns().is_empty(), "desired status is STOPPED");
}

#[tokio::test]
async fn stop_task_sends_sigterm_then_sigkill_after_the_stop_timeout() {
    let s = standin(&[]).await;
    let mut stubborn = shell("trap '' TERM; while :; do sleep 0.1; done");
    stubborn.stop_timeout = Duration::from_secs(1);
    s.register(FAMILY, vec![stubborn]);
    s.register("polite", vec![shell("exec sleep 60")]);
    let c = client(&s.endpoint());
    let stubborn = run(&c, "a").await;
    let polite = c
        .run_task()
        .cluster("c")
        .task_definition("polite")
        .network_configuration(network())
        .send()
        .await
        .unwrap()
        .tasks()[0]
        .task_arn()
        .unwrap()
        .to_owned();
    for arn in [&stubborn, &polite] {
        wait(&s, arn, "running", |t| t.last_status == "RUNNING").await;
        c.stop_task()
            .cluster("c")
            .task(arn)
            .reason("scale in")
            .send()
            .await
            .unwrap();
    }
    let t = wait(&s, &polite, "stopped", |t| t.last_status == "STOPPED").await;
    assert_eq!(t.exit_code, Some(128 + 15), "SIGTERM ended it");
    let t = wait(&s, &stubborn, "stopped", |t| t.last_status == "STOPPED").await;
    assert_eq!(t.exit_code, Some(128 + 9), "SIGKILL after the stop timeout");
    assert_eq!(t.stopped_reason.as_deref(), Some("scale in"));
    assert_eq!(t.stop_code.as_deref(), Some("UserInitiated"));
}

#[tokio::test]
async fn the_health_check_sets_the_task_health() {
    let s = standin(&[]).await;
    let mut c = shell("sleep 0.5; touch ready; sleep 2; rm ready; sleep 60");
    c.health_check = Some(HealthCheck {
        command: vec!["CMD-SHELL".into(), "test -e ready".into()],
        interval: Duration::from_millis(200),
        timeout: Duration::from_secs(1),
        retries: 2,
        start_period: Duration::ZERO,
    });
    s.register(FAMILY, vec![c]);
    let arn = run(&client(&s.endpoint()), "t").await;
    let t = wait(&s, &arn, "running", |t| t.last_status == "RUNNING").await;
    assert_eq!(t.health.as_deref(), Some("UNKNOWN"));
    wait(&s, &arn, "healthy", |t| {
        t.health.as_deref() == Some("HEALTHY")
    })
    .await;
    wait(&s, &arn, "unhealthy", |t| {
        t.health.as_deref() == Some("UNHEALTHY")
    })
    .await;
}

#[tokio::test]
async fn tasks_get_secrets_their_own_address_and_metadata() {
    let s = standin(&[("arn:secret:token", "s3cret")]).await;
    let mut c = shell("echo \"$TOKEN $LISTEN $ECS_CONTAINER_METADATA_URI_V4\" > env; sleep 60");
    c.secrets = vec![("TOKEN".into(), "arn:secret:token".into())];
    c.environment = htsprep_ecs_standin::env(&[("LISTEN", "0.0.0.0:50051")]);
    s.register(FAMILY, vec![c]);
    let client = client(&s.endpoint());
    let (a, b) = (run(&client, "a").await, run(&client, "b").await);
    let (ta, tb) = (s.task(&a), s.task(&b));
    assert_ne!(ta.ip, tb.ip, "an address per task");
    for t in [&ta, &tb] {
        assert!(t.ip.parse::<std::net::Ipv4Addr>().unwrap().is_loopback());
    }
    let env_file = s.task_dir(&a).join("env");
    for _ in 0..100 {
        if std::fs::read_to_string(&env_file).is_ok_and(|e| e.ends_with('\n')) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let env = std::fs::read_to_string(&env_file).unwrap();
    let fields: Vec<&str> = env.split_whitespace().collect();
    assert_eq!(fields[0], "s3cret");
    assert_eq!(
        fields[1],
        format!("{}:50051", ta.ip),
        "listens on its own address"
    );
    let meta: serde_json::Value = reqwest::get(format!("{}/task", fields[2]))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["TaskARN"], a.as_str());
    assert_eq!(
        meta["Containers"][0]["Networks"][0]["IPv4Addresses"][0],
        ta.ip.as_str()
    );
    // A secret the stand-in does not have stops the task before its container starts.
    let mut missing = shell("sleep 60");
    missing.secrets = vec![("TOKEN".into(), "arn:secret:other".into())];
    s.register(FAMILY, vec![missing]);
    let m = run(&client, "m").await;
    let t = wait(&s, &m, "stopped", |t| t.last_status == "STOPPED").await;
    assert!(
        t.stopped_reason
            .as_deref()
            .is_some_and(|r| r.starts_with("ResourceInitializationError")),
        "{t:#?}"
    );
    assert_eq!(t.exit_code, None, "no container ran");
}

/// Processes whose working directory is inside `dir`.
fn processes_in(dir: &std::path::Path) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .filter(|e| std::fs::read_link(e.path().join("cwd")).is_ok_and(|c| c.starts_with(dir)))
        .count()
}

#[tokio::test]
async fn a_killed_container_takes_its_child_processes_with_it() {
    let s = standin(&[]).await;
    // A child in a process group of its own, as the worker runs its pipeline stages.
    s.register(
        FAMILY,
        vec![shell(
            "mkdir -p work && cd work && setsid sleep 60 & sleep 60",
        )],
    );
    let arn = run(&client(&s.endpoint()), "t").await;
    wait(&s, &arn, "running", |t| t.last_status == "RUNNING").await;
    let dir = s.task_dir(&arn);
    for _ in 0..100 {
        if processes_in(&dir) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(processes_in(&dir) >= 2, "the container and its child run");
    assert!(s.signal(&arn, nix::sys::signal::Signal::SIGKILL));
    let t = wait(&s, &arn, "stopped", |t| t.last_status == "STOPPED").await;
    assert_eq!(t.exit_code, Some(137));
    assert_eq!(processes_in(&dir), 0, "nothing of the task is left running");
}
