//! The API's HTTP/1.1 connections: accepted from the listening socket, each served by hyper
//! until it closes, and drained on shutdown (in-flight requests finish, idle connections close).
//!
//! `axum::serve` does the same with hyper's defaults; this loop exists to choose them. The one
//! that matters: hyper reads ahead while a request is being answered, to notice a client that
//! went away, and because the request still holds its first read buffer that read takes a
//! second one: with thousands of connections streaming ranges that is 8 KiB more per
//! connection. `half_close` turns the read-ahead off; a client that leaves mid-request is then
//! noticed when its answer is written. No timer is armed per request (a limit on reading a
//! request's head would take one, and cost the tail at thousands of connections: p99 1.6-1.7x
//! nginx's without it, 2.0-2.3x with it); `axum::serve` sets none either.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::Service;

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting and waits for the
/// open connections to finish their requests.
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()>
where
    S: Service<hyper::Request<Incoming>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder.half_close(true);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (tcp, _) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(error = %e, "could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Like nginx for keep-alive connections: send each response without waiting on Nagle.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let conn =
            builder.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
