//! Operators' view of the MongoDB backend: `create-indexes`, and start-up errors that say what
//! is wrong.

use std::process::{Command, Output};

use htsprep_shared::mongo::testing::TestMongo;
use htsprep_tests::bin;

fn api(vars: &[(&str, &str)], args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin("htsprep-api"));
    cmd.args(args)
        .env("HTSPREP_DATA_DIR", dir.path())
        .env_remove("MONGODB_URI");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_indexes_is_idempotent_and_lists_exactly_the_indexes() {
    let mongo = TestMongo::start().await;
    let db = format!("cli_{}", std::process::id());
    let vars = [
        ("MONGODB_URI", mongo.uri.as_str()),
        ("MONGODB_DATABASE", db.as_str()),
    ];
    let first = api(&vars, &["create-indexes"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let second = api(&vars, &["create-indexes"]);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert_eq!(text(&first.stdout), text(&second.stdout));
    let out = text(&second.stdout);
    let names: Vec<&str> = out
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "jobs._id_",
            "jobs.one_active_job_per_workflow",
            "jobs.job_id_unique",
            "jobs.latest_per_workflow",
            "jobs.stale_scan",
            "jobs.finished_ttl",
            "files._id_",
            "files.file_unique"
        ]
    );
    let mutex = out
        .lines()
        .find(|l| l.contains("one_active_job_per_workflow"))
        .unwrap();
    assert!(
        mutex.contains("unique")
            && mutex.contains("partial")
            && mutex.contains("{ \"active\": true }"),
        "{mutex}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("finished_ttl") && l.contains("expires after 2592000s")),
        "{out}"
    );
}

#[test]
fn an_unreachable_server_is_reported_at_start() {
    let out = api(
        &[
            (
                "MONGODB_URI",
                "mongodb://127.0.0.1:1/?directConnection=true",
            ),
            ("MONGODB_CONNECT_TIMEOUT_SECONDS", "2"),
        ],
        &["files", "list"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot reach MongoDB at 127.0.0.1:1 within 2s"),
        "{err}"
    );
}

#[test]
fn bad_settings_are_reported_before_anything_runs() {
    let out = api(
        &[
            ("MONGODB_URI", "postgres://x"),
            ("HTSPREP_JOB_RETENTION_DAYS", "0"),
        ],
        &["files", "list"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("MONGODB_URI") && err.contains("HTSPREP_JOB_RETENTION_DAYS"),
        "{err}"
    );
    let out = api(
        &[
            ("MONGODB_URI", "mongodb://127.0.0.1:1/"),
            ("MONGODB_DATABASE", "bad.name"),
        ],
        &["files", "list"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("database name \"bad.name\" is invalid"),
        "{}",
        text(&out.stderr)
    );
    let out = api(&[], &["create-indexes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("create-indexes needs MONGODB_URI"));
}
