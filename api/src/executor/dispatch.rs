//! Sending a job to one worker over gRPC and following its update stream.

use std::time::Duration;

use htsprep_proto::v1 as pb;
use htsprep_proto::v1::worker_client::WorkerClient;
use tonic::Code;

use crate::fleet::WorkerInfo;

/// How a dispatch to one worker went.
pub(crate) enum Dispatch {
    /// The worker accepted the job and its stream ended (the job store says how).
    Followed,
    /// The worker accepted the job, then the stream broke (the worker died or the network failed).
    Broken(String),
    /// The worker did not take it (busy, draining, unreachable): try another.
    Declined(String),
    /// The worker refused the request itself: another worker would too.
    Rejected(String),
}

pub(crate) async fn dispatch(worker: &WorkerInfo, token: &str, req: pb::RunJobRequest) -> Dispatch {
    let endpoint =
        match tonic::transport::Endpoint::from_shared(format!("http://{}", worker.address)) {
            // Keep-alive pings notice a worker that vanished without closing the connection
            // (a stopped Fargate task): the stream breaks and the job is retried.
            Ok(e) => e
                .connect_timeout(Duration::from_secs(5))
                .http2_keep_alive_interval(Duration::from_secs(15))
                .keep_alive_timeout(Duration::from_secs(10))
                .keep_alive_while_idle(true),
            Err(e) => {
                return Dispatch::Declined(format!("bad worker address {}: {e}", worker.address));
            }
        };
    let channel = match endpoint.connect().await {
        Ok(c) => c,
        Err(e) => return Dispatch::Declined(format!("worker {} unreachable: {e}", worker.id)),
    };
    let mut request = tonic::Request::new(req);
    match format!("Bearer {token}").parse() {
        Ok(v) => {
            request.metadata_mut().insert("authorization", v);
        }
        Err(_) => return Dispatch::Rejected("the worker token is not a valid header value".into()),
    }
    let mut stream = match WorkerClient::new(channel).run_job(request).await {
        Ok(r) => r.into_inner(),
        Err(s)
            if matches!(
                s.code(),
                Code::ResourceExhausted | Code::Unavailable | Code::Unknown
            ) =>
        {
            return Dispatch::Declined(format!("worker {}: {}", worker.id, s.message()));
        }
        Err(s) => {
            return Dispatch::Rejected(format!(
                "worker {} refused the job: {}",
                worker.id,
                s.message()
            ));
        }
    };
    loop {
        match stream.message().await {
            Ok(Some(update)) => {
                if matches!(
                    update.update,
                    Some(pb::job_update::Update::Completed(_) | pb::job_update::Update::Failed(_))
                ) {
                    return Dispatch::Followed;
                }
            }
            Ok(None) => {
                return Dispatch::Broken(format!(
                    "worker {} closed the job stream early",
                    worker.id
                ));
            }
            Err(s) => {
                return Dispatch::Broken(format!(
                    "lost contact with worker {}: {}",
                    worker.id,
                    s.message()
                ));
            }
        }
    }
}
