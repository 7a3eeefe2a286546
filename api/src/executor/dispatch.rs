//! Sending a job to one worker over gRPC and following its update stream.

use htsprep_proto::v1 as pb;
use htsprep_proto::v1::worker_client::WorkerClient;
use tonic::Code;

use super::dial::{DialPolicy, Unconnected, authorized};
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

/// Offers the job to `worker` and, once it accepts (`accepted` is called then), follows it;
/// `updated` is called for every update the worker sends.
pub(crate) async fn dispatch(
    worker: &WorkerInfo,
    dial: DialPolicy,
    token: &str,
    req: pb::RunJobRequest,
    accepted: &mut (dyn FnMut() + Send),
    updated: &(dyn Fn() + Send + Sync),
) -> Dispatch {
    // A broken stream (keep-alive pings notice a vanished worker) means the job is retried.
    let channel = match dial.connect(worker).await {
        Ok(c) => c,
        Err(Unconnected::Refused(r)) => return Dispatch::Rejected(r),
        Err(Unconnected::Unreachable(r)) => return Dispatch::Declined(r),
    };
    let request = match authorized(req, token) {
        Ok(r) => r,
        Err(e) => return Dispatch::Rejected(e),
    };
    let mut stream = match WorkerClient::new(channel).run_job(request).await {
        Ok(r) => {
            accepted();
            r.into_inner()
        }
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
                updated();
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

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    fn worker(address: String) -> WorkerInfo {
        WorkerInfo {
            id: "w".into(),
            provider: "ecs".into(),
            address,
            started_for: None,
        }
    }

    /// A listener on 127.0.0.1 also answers the IPv4-mapped `::ffff:127.0.0.1`, which the policy
    /// does not count as loopback: a dial, had there been one, would be in its accept queue.
    #[tokio::test]
    async fn loopback_only_refuses_before_any_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mapped = format!("[::ffff:127.0.0.1]:{port}");
        let req = pb::RunJobRequest::default();
        match dispatch(
            &worker(mapped.clone()),
            DialPolicy::LoopbackOnly,
            "t",
            req,
            &mut || {},
            &|| {},
        )
        .await
        {
            Dispatch::Rejected(m) => assert!(m.contains("HTSPREP_LOOPBACK_ONLY"), "{m}"),
            _ => panic!("the policy let {mapped} through"),
        }
        let accepted = listener.accept();
        assert!(
            matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "a connection reached the listener: {accepted:?}"
        );
        // The premise: a connection to that address would have shown up.
        let _probe = std::net::TcpStream::connect(mapped.parse::<std::net::SocketAddr>().unwrap())
            .expect("the mapped address reaches the listener");
        listener.set_nonblocking(false).unwrap();
        assert!(listener.accept().is_ok());
    }
}
