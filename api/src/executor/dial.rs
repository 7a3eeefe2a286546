//! Which worker addresses the executor may dial. Tests and benches turn on
//! `HTSPREP_LOOPBACK_ONLY`, so that an address an emulator invents (moto gives ECS tasks `10.x`
//! addresses) fails the job loudly instead of sending traffic off the machine.

use std::net::SocketAddr;
use std::time::Duration;

use crate::fleet::WorkerInfo;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DialPolicy {
    /// Any address discovery reports (production).
    #[default]
    Any,
    /// Only loopback: `127.0.0.0/8`, `::1`, `localhost`.
    LoopbackOnly,
}

impl DialPolicy {
    /// Decides, before any connection is attempted, whether `address` (`host:port`) may be
    /// dialed; the error says why not.
    pub fn check(self, address: &str) -> Result<(), String> {
        if self == DialPolicy::Any {
            return Ok(());
        }
        let loopback = match address.parse::<SocketAddr>() {
            Ok(a) => a.ip().is_loopback(),
            Err(_) => address
                .rsplit_once(':')
                .is_some_and(|(host, port)| host == "localhost" && port.parse::<u16>().is_ok()),
        };
        if loopback {
            Ok(())
        } else {
            Err(format!(
                "refused to dial {address}: HTSPREP_LOOPBACK_ONLY allows only loopback worker \
                 addresses (127.0.0.0/8, ::1); no connection was attempted"
            ))
        }
    }
}

/// Why no channel to a worker was opened.
pub(crate) enum Unconnected {
    /// The dial policy refused the address (no connection was attempted).
    Refused(String),
    /// The address is malformed or nothing answered there.
    Unreachable(String),
}

impl DialPolicy {
    /// A gRPC channel to `worker`, after the policy allowed its address. Keep-alive pings notice
    /// a worker that vanished without closing the connection (a stopped Fargate task).
    pub(crate) async fn connect(
        self,
        worker: &WorkerInfo,
    ) -> Result<tonic::transport::Channel, Unconnected> {
        if let Err(refused) = self.check(&worker.address) {
            tracing::error!(worker = %worker.id, address = %worker.address, "{refused}");
            return Err(Unconnected::Refused(format!(
                "worker {}: {refused}",
                worker.id
            )));
        }
        let endpoint =
            tonic::transport::Endpoint::from_shared(format!("http://{}", worker.address))
                .map_err(|e| {
                    Unconnected::Unreachable(format!("bad worker address {}: {e}", worker.address))
                })?
                .connect_timeout(Duration::from_secs(5))
                .http2_keep_alive_interval(Duration::from_secs(15))
                .keep_alive_timeout(Duration::from_secs(10))
                .keep_alive_while_idle(true);
        endpoint
            .connect()
            .await
            .map_err(|e| Unconnected::Unreachable(format!("worker {} unreachable: {e}", worker.id)))
    }
}

/// `msg` with the worker token (`authorization: Bearer TOKEN`).
pub(crate) fn authorized<T>(msg: T, token: &str) -> Result<tonic::Request<T>, String> {
    let mut request = tonic::Request::new(msg);
    let value = format!("Bearer {token}")
        .parse()
        .map_err(|_| "the worker token is not a valid header value".to_owned())?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::DialPolicy;

    #[test]
    fn loopback_only_refuses_every_other_address() {
        let p = DialPolicy::LoopbackOnly;
        for ok in [
            "127.0.0.1:50051",
            "127.3.4.5:1",
            "[::1]:50051",
            "localhost:8080",
        ] {
            assert_eq!(p.check(ok), Ok(()), "{ok}");
        }
        for refused in [
            "10.0.3.7:50051",
            "192.168.1.1:50051",
            "169.254.170.2:80",
            "[fe80::1]:50051",
            "0.0.0.0:50051",
            "worker.internal:50051",
            "localhost",
        ] {
            let err = p.check(refused).unwrap_err();
            assert!(
                err.contains(refused) && err.contains("HTSPREP_LOOPBACK_ONLY"),
                "{err}"
            );
        }
        assert_eq!(DialPolicy::Any.check("10.0.3.7:50051"), Ok(()));
    }
}
