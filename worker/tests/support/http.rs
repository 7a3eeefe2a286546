//! Small HTTP servers on loopback for fetch tests: a file server (optionally slow), a status
//! server, and a GA4GH DRS server.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

#[derive(Clone)]
struct Files {
    body: Arc<Vec<u8>>,
    /// Sent in this many pieces with this pause between them.
    pieces: usize,
    pause: Duration,
    status: StatusCode,
}

async fn file(State(f): State<Files>) -> Response {
    if f.status != StatusCode::OK {
        return f.status.into_response();
    }
    let body = Arc::clone(&f.body);
    let piece = body.len().div_ceil(f.pieces.max(1)).max(1);
    let stream = async_stream(body, piece, f.pause);
    Response::builder()
        .header("content-length", f.body.len())
        .body(Body::from_stream(stream))
        .unwrap()
}

fn async_stream(
    body: Arc<Vec<u8>>,
    piece: usize,
    pause: Duration,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::unfold(0usize, move |at| {
        let body = Arc::clone(&body);
        async move {
            if at >= body.len() {
                return None;
            }
            if at > 0 {
                tokio::time::sleep(pause).await;
            }
            let end = (at + piece).min(body.len());
            Some((Ok(body[at..end].to_vec()), end))
        }
    })
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// Serves `body` at `/file`, in `pieces` parts `pause` apart. Returns the file's URL.
pub async fn serve_file(body: Vec<u8>, pieces: usize, pause: Duration) -> String {
    let files = Files {
        body: Arc::new(body),
        pieces,
        pause,
        status: StatusCode::OK,
    };
    let addr = serve(Router::new().route("/file", get(file)).with_state(files)).await;
    format!("http://{addr}/file")
}

/// Answers every request for `/file` with `status`.
pub async fn serve_status(status: StatusCode) -> String {
    let files = Files {
        body: Arc::new(Vec::new()),
        pieces: 1,
        pause: Duration::ZERO,
        status,
    };
    let addr = serve(Router::new().route("/file", get(file)).with_state(files)).await;
    format!("http://{addr}/file")
}

#[derive(Clone)]
struct Drs {
    addr: Arc<std::sync::OnceLock<SocketAddr>>,
    files: Files,
    via_access_id: bool,
}

async fn drs_object(State(d): State<Drs>, Path(id): Path<String>) -> Response {
    if id != "obj-1" {
        return (StatusCode::NOT_FOUND, "no such object").into_response();
    }
    let addr = d.addr.get().unwrap();
    let method = if d.via_access_id {
        serde_json::json!({"type": "http", "access_id": "acc-1"})
    } else {
        serde_json::json!({"type": "http", "access_url": {"url": format!("http://{addr}/file"), "headers": ["X-Token: t0k3n"]}})
    };
    axum::Json(serde_json::json!({"id": id, "access_methods": [method]})).into_response()
}

async fn drs_access(State(d): State<Drs>, Path((id, acc)): Path<(String, String)>) -> Response {
    if id != "obj-1" || acc != "acc-1" {
        return StatusCode::NOT_FOUND.into_response();
    }
    let addr = d.addr.get().unwrap();
    axum::Json(
        serde_json::json!({"url": format!("http://{addr}/file"), "headers": ["X-Token: t0k3n"]}),
    )
    .into_response()
}

async fn drs_file(State(d): State<Drs>, headers: axum::http::HeaderMap) -> Response {
    if headers.get("x-token").and_then(|v| v.to_str().ok()) != Some("t0k3n") {
        return StatusCode::FORBIDDEN.into_response();
    }
    file(State(d.files)).await
}

/// A DRS server holding object `obj-1` with `body`. Returns its `drs://` host (with port).
pub async fn serve_drs(body: Vec<u8>, via_access_id: bool) -> String {
    let addr_cell = Arc::new(std::sync::OnceLock::new());
    let drs = Drs {
        addr: Arc::clone(&addr_cell),
        files: Files {
            body: Arc::new(body),
            pieces: 1,
            pause: Duration::ZERO,
            status: StatusCode::OK,
        },
        via_access_id,
    };
    let router = Router::new()
        .route("/ga4gh/drs/v1/objects/{id}", get(drs_object))
        .route("/ga4gh/drs/v1/objects/{id}/access/{acc}", get(drs_access))
        .route("/file", get(drs_file))
        .with_state(drs);
    let addr = serve(router).await;
    addr_cell.set(addr).unwrap();
    format!("127.0.0.1:{}", addr.port())
}

/// Serves an ECS task metadata endpoint (v4) for one task, as the ECS agent does on Fargate.
/// Returns the value for `ECS_CONTAINER_METADATA_URI_V4`.
pub async fn serve_task_metadata(task_arn: &str, ip: &str) -> String {
    let doc = serde_json::json!({
        "Cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/htsprep",
        "TaskARN": task_arn,
        "Family": "htsprep-worker",
        "Revision": "3",
        "DesiredStatus": "RUNNING",
        "KnownStatus": "RUNNING",
        "LaunchType": "FARGATE",
        "AvailabilityZone": "us-east-1a",
        "Containers": [{
            "DockerId": "cd189a933e5849daa93386466019ab50-2495160603",
            "Name": "worker",
            "Image": "htsprep-worker:latest",
            "KnownStatus": "RUNNING",
            "Networks": [{
                "NetworkMode": "awsvpc",
                "IPv4Addresses": [ip],
                "AttachmentIndex": 0,
                "IPv4SubnetCIDRBlock": "10.0.2.0/24",
                "PrivateDNSName": "ip-10-0-2-106.ec2.internal",
                "SubnetGatewayIpv4Address": "10.0.2.1/24"
            }]
        }]
    });
    let router = Router::new().route(
        "/v4/container/task",
        get(move || {
            let doc = doc.clone();
            async move { axum::Json(doc) }
        }),
    );
    let addr = serve(router).await;
    format!("http://{addr}/v4/container")
}
