//! The OpenAPI document against the README: every route and status code the README's HTTP
//! table promises is in `/openapi.json` as the running API serves it, and the admin routes
//! name the admin token.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use htsprep_tests::api::ApiProcess;
use htsprep_tests::{bin, repo_root, run};
use serde_json::Value;

/// One row of the README's `| request | answer |` table.
#[derive(Debug)]
struct Row {
    line: usize,
    /// `(METHOD, path template, marked admin)`.
    routes: Vec<(String, String, bool)>,
    statuses: BTreeSet<String>,
}

/// The rows of the README's HTTP table (the one headed `| request | answer |`).
fn readme_rows() -> Vec<Row> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let lines: Vec<&str> = readme.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == "| request | answer |")
        .expect("the README has the HTTP table");
    let mut rows = Vec::new();
    for (i, line) in lines.iter().enumerate().skip(start + 2) {
        if !line.starts_with('|') {
            break;
        }
        let spans: Vec<&str> = line.split('`').skip(1).step_by(2).collect();
        let mut routes = Vec::new();
        for (n, span) in spans.iter().enumerate() {
            let Some((method, path)) = span.split_once(' ') else {
                continue;
            };
            if ["GET", "HEAD", "POST", "DELETE", "PUT"].contains(&method) && path.starts_with('/') {
                // "(admin)" right after the route's closing backtick.
                let after = line
                    .split('`')
                    .nth(2 * n + 2)
                    .unwrap_or_default()
                    .trim_start();
                let path = path.split('?').next().unwrap_or_default().to_owned();
                routes.push((method.to_owned(), path, after.starts_with("(admin)")));
            }
        }
        let statuses = spans
            .iter()
            .filter_map(|s| s.split_whitespace().next())
            .filter(|w| w.len() == 3 && w.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned)
            .collect();
        rows.push(Row {
            line: i + 1,
            routes,
            statuses,
        });
    }
    rows
}

/// `/jobs/{id}` and `/jobs/{job_id}` are one route.
fn template(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

/// `(method, template)` → the operation.
fn operations(doc: &Value) -> HashMap<(String, String), Value> {
    let mut ops = HashMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            ops.insert((method.to_uppercase(), template(path)), op.clone());
        }
    }
    ops
}

#[tokio::test]
async fn every_route_and_status_code_of_the_readme_is_in_the_openapi_document() {
    let api = ApiProcess::start(&[]);
    let resp = api
        .http
        .get(api.url("/openapi.json"))
        .send()
        .await
        .expect("GET /openapi.json");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let doc: Value = resp.json().await.expect("the document is JSON");
    assert_eq!(doc["openapi"], "3.1.0", "OpenAPI 3.1");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        doc["components"]["securitySchemes"]["admin"]["scheme"], "bearer",
        "admin operations name a bearer token"
    );

    let ops = operations(&doc);
    let rows = readme_rows();
    assert!(rows.len() >= 20, "the README's HTTP table: {rows:#?}");
    let mut missing = Vec::new();
    for row in &rows {
        if row.routes.is_empty() {
            missing.push(format!("README line {}: the row names no route", row.line));
            continue;
        }
        let mut codes = BTreeSet::new();
        for (method, path, admin) in &row.routes {
            let Some(op) = ops.get(&(method.clone(), template(path))) else {
                missing.push(format!("README line {}: {method} {path}", row.line));
                continue;
            };
            codes.extend(
                op["responses"]
                    .as_object()
                    .expect("responses")
                    .keys()
                    .cloned(),
            );
            // Admin routes require the token; the others can be called without one.
            let security = op["security"].as_array().cloned().unwrap_or_default();
            let public =
                security.is_empty() || security.iter().any(|s| s == &serde_json::json!({}));
            let names_admin = security.iter().any(|s| s.get("admin").is_some());
            if *admin && (public || !names_admin) {
                missing.push(format!(
                    "README line {}: {method} {path} is admin but its security is {security:?}",
                    row.line
                ));
            }
            if !*admin && !public {
                missing.push(format!(
                    "README line {}: {method} {path} is public but its security is {security:?}",
                    row.line
                ));
            }
        }
        for status in row.statuses.difference(&codes) {
            missing.push(format!(
                "README line {}: status {status} of {:?} is not among their responses {codes:?}",
                row.line, row.routes
            ));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));

    // Every body the document names is defined in it.
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap_or_default();
        assert!(
            schemas.contains_key(name),
            "{name} is referenced but not defined"
        );
    }

    // A valid OpenAPI 3.1 document, as an independent validator reads it (unique operation
    // ids, resolvable references, schemas of the 3.1 dialect).
    let venv = std::env::var_os("HTSPREP_OPENAPI_VENV").map_or_else(
        || {
            std::path::PathBuf::from(std::env::var("HOME").expect("HOME"))
                .join(".cache/htsprep/openapi-venv")
        },
        std::path::PathBuf::from,
    );
    let validator = venv.join("bin/openapi-spec-validator");
    assert!(
        validator.exists(),
        "{} is missing: run scripts/setup.sh --for-tests",
        validator.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let checked = run(Command::new(&validator).arg(&file));
    assert!(checked.trim_end().ends_with(": OK"), "{checked}");

    // The CLI prints the same document, without a running API.
    let printed = run(Command::new(bin("htsprep-api")).arg("openapi"));
    let printed: Value = serde_json::from_str(&printed).expect("the printed document is JSON");
    assert_eq!(printed, doc);
}
