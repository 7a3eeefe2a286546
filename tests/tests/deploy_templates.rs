//! The deployment template stays true to the code: it passes cfn-lint, every variable its task
//! definitions set is one htsprep reads, the API's environment selects the ECS fleet, and the
//! worker's environment (with the API's per-task overrides) is a valid worker configuration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use htsprep_api::config::Config;
use htsprep_api::server::ecs_worker_env;
use htsprep_tests::repo_root;
use htsprep_worker::config::WorkerConfig;

fn template() -> PathBuf {
    repo_root().join("deploy/cloudformation/htsprep.yaml")
}

/// `(container, variable, value)` for every `- { Name: X, Value(From): Y }` entry.
fn container_vars() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(template()).unwrap();
    let mut container = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("- Name: ") {
            container = name.trim().to_owned();
        } else if let Some(entry) = t.strip_prefix("- { Name: ") {
            let entry = entry.trim_end_matches('}').trim();
            let (name, rest) = entry.split_once(',').expect("Name, Value");
            let value = rest
                .trim()
                .split_once(':')
                .map(|(_, v)| v.trim().trim_matches('"').to_owned())
                .unwrap_or_default();
            out.push((container.clone(), name.trim().to_owned(), value));
        }
    }
    out
}

/// The template's parameter defaults.
fn parameter_defaults() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(template()).unwrap();
    let mut out = BTreeMap::new();
    let mut current = None;
    for line in text
        .lines()
        .skip_while(|l| *l != "Parameters:")
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
    {
        if let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':'))
            && !name.starts_with(' ')
        {
            current = Some(name.to_owned());
        } else if let (Some(p), Some(d)) = (&current, line.trim().strip_prefix("Default: ")) {
            out.insert(p.clone(), d.trim_matches('"').to_owned());
        }
    }
    out
}

/// A stand-in for a value CloudFormation fills in: a parameter's default, or a plausible value.
fn placeholder(name: &str, value: &str) -> String {
    if !value.starts_with('!') {
        return value.to_owned();
    }
    if let Some(default) = value
        .strip_prefix("!Ref ")
        .and_then(|p| parameter_defaults().get(p.trim()).cloned())
        .filter(|d| !d.is_empty())
    {
        return default;
    }
    match name {
        "MONGODB_URI" => "mongodb://db.internal:27017".into(),
        "HTSPREP_WORKER_TOKEN" | "HTSPREP_ADMIN_TOKEN" => "x".repeat(48),
        "AWS_REGION" => "us-east-1".into(),
        "ECS_WORKER_SUBNETS" => "subnet-a,subnet-b".into(),
        "ECS_WORKER_SECURITY_GROUPS" => "sg-0123".into(),
        // Parameters whose default is empty.
        "ECS_CAPACITY_PROVIDER_STRATEGY" => String::new(),
        n => format!("placeholder-{}", n.to_ascii_lowercase().replace('_', "-")),
    }
}

fn vars_of(container: &str) -> BTreeMap<String, String> {
    container_vars()
        .into_iter()
        .filter(|(c, _, _)| c == container)
        .map(|(_, n, v)| {
            let v = placeholder(&n, &v);
            (n, v)
        })
        .collect()
}

fn sources_mention(dirs: &[&str], needle: &str) -> bool {
    fn walk(dir: &Path, needle: &str) -> bool {
        std::fs::read_dir(dir).unwrap().flatten().any(|e| {
            let p = e.path();
            if p.is_dir() {
                walk(&p, needle)
            } else {
                p.extension().is_some_and(|x| x == "rs")
                    && std::fs::read_to_string(&p).unwrap().contains(needle)
            }
        })
    }
    dirs.iter().any(|d| walk(&repo_root().join(d), needle))
}

#[test]
fn the_template_passes_cfn_lint() {
    let venv = std::env::var("HTSPREP_AWS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/htsprep/moto-venv")
        });
    let lint = venv.join("bin/cfn-lint");
    if !lint.exists() {
        // moto[server] brings cfn-lint; the same venv the AWS emulator runs from.
        let st = Command::new(repo_root().join("scripts/aws-test-server.sh"))
            .arg("--install-only")
            .status()
            .unwrap();
        assert!(st.success(), "prepare the venv with cfn-lint");
    }
    let out = Command::new(&lint).arg(template()).output().unwrap();
    assert!(
        out.status.success(),
        "cfn-lint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_variable_the_task_definitions_set_is_read_by_htsprep() {
    let vars = container_vars();
    assert!(vars.len() > 20, "{vars:?}");
    for (container, name, _) in &vars {
        let dirs: &[&str] = match container.as_str() {
            "api" => &["api/src", "shared/src"],
            "worker" => &["worker/src", "shared/src"],
            other => panic!("unexpected container {other}"),
        };
        assert!(
            sources_mention(dirs, &format!("\"{name}\"")),
            "{container} sets {name}, which htsprep does not read"
        );
    }
}

#[test]
fn the_api_environment_selects_the_ecs_fleet_and_workers_accept_theirs() {
    let api = Config::from_vars(&vars_of("api")).expect("the API task's environment is valid");
    let ecs = api
        .fleet
        .ecs
        .as_ref()
        .expect("ECS_CLUSTER selects the ECS fleet");
    assert!(api.storage.s3.is_some() && api.storage.mongo.is_some());
    assert_eq!(ecs.subnets, ["subnet-a", "subnet-b"]);
    assert!(!ecs.assign_public_ip);
    assert!(
        ecs.require_healthy,
        "the worker task definition has a health check"
    );
    let template = std::fs::read_to_string(template()).unwrap();
    // Redirects to S3 are a switch (off by default); the bucket lets browsers follow them.
    assert_eq!(api.s3_redirect, None);
    for rule in [
        "AllowedMethods: [GET, HEAD]",
        "AllowedHeaders: [Range",
        "ExposedHeaders: [Content-Range, Content-Length, ETag, Accept-Ranges",
    ] {
        assert!(template.contains(rule), "the bucket's CORS rule has {rule}");
    }
    // By default, the Fargate launch type; the cluster offers Spot for the strategy parameter.
    assert!(ecs.capacity_provider_strategy.is_empty());
    assert!(template.contains("CapacityProviders: [FARGATE, FARGATE_SPOT]"));
    assert!(template.contains(&format!("- Name: {}\n", ecs.container)));
    assert!(template.contains(&format!("ContainerPort: {}\n", ecs.grpc_port)));

    let mut worker = vars_of("worker");
    worker.extend(ecs_worker_env(&api, ecs));
    worker.insert(
        "ECS_CONTAINER_METADATA_URI_V4".into(),
        "http://169.254.170.2/v4/0123".into(),
    );
    let w = WorkerConfig::from_vars(&worker).expect("the worker task's environment is valid");
    assert_eq!(w.grpc_listen.port(), ecs.grpc_port);
    assert!(!w.grpc_listen.ip().is_loopback() && w.token.is_some());
    assert!(
        w.health_listen.ip().is_loopback(),
        "/health stays inside the task"
    );
    assert_eq!(w.provider, "ecs");
    // The worker drains inside the task's stop timeout.
    assert!(template.contains("StopTimeout: 30"));
    assert!(w.drain_grace.as_secs() < 30);
}
