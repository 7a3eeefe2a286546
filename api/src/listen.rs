//! The API's HTTP/1.1 connections: accepted from the listening socket, each served by hyper on
//! one of the serving threads until it closes, and drained on shutdown (in-flight requests
//! finish, idle connections close).
//!
//! `axum::serve` does the same with hyper's defaults on the main runtime; this loop exists to
//! choose them:
//! - **Serving threads.** Connections are handed round-robin to one single-threaded runtime per
//!   CPU ([`Threads`]), each polling its connections in arrival order like an nginx worker. On
//!   the shared work-stealing runtime, a burst of ready connections overflows a worker's local
//!   queue into the global one, where they wait behind newer ones: with 4,096 connections that
//!   was a p99 1.6-1.9x nginx's; on serving threads 1.0-1.5x (BENCHMARKS.md). Background work
//!   (jobs, the reconciler, the fleet) stays on the main runtime.
//! - **No read-ahead.** hyper reads ahead while a request is being answered, to notice a client
//!   that went away, and because the request still holds its first read buffer that read takes
//!   a second one: with thousands of connections streaming ranges that is 8 KiB more per
//!   connection. `half_close` turns the read-ahead off; a client that leaves mid-request is then
//!   noticed when its answer is written.
//! - **No timer per request.** A limit on reading a request's head would arm one, and cost the
//!   tail at thousands of connections (p99 2.0-2.3x nginx's with it); `axum::serve` sets none
//!   either.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tower::Service;

/// The serving threads: one single-threaded runtime each, alive until [`Threads::stop`]. They
/// outlive the HTTP server itself, because clients built while serving (the S3 and source
/// connection pools) keep their connections' tasks there for whoever uses them next.
pub struct Threads {
    handles: Vec<Handle>,
    stops: Vec<oneshot::Sender<()>>,
    joins: Vec<std::thread::JoinHandle<()>>,
}

impl Threads {
    /// Starts one serving thread per CPU this process may use.
    pub fn start() -> std::io::Result<Self> {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut threads = Self {
            handles: Vec::with_capacity(n),
            stops: Vec::with_capacity(n),
            joins: Vec::with_capacity(n),
        };
        for i in 0..n {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (stop, stopped) = oneshot::channel::<()>();
            threads.handles.push(runtime.handle().clone());
            threads.stops.push(stop);
            threads.joins.push(
                std::thread::Builder::new()
                    .name(format!("htsprep-http-{i}"))
                    .spawn(move || {
                        // Until stopped (or `Threads` is dropped); then the runtime and any
                        // task still on it are dropped here, on its own thread.
                        let _ = runtime.block_on(stopped);
                    })?,
            );
        }
        Ok(threads)
    }

    /// Stops the serving threads and waits for them to end; tasks still on them are dropped.
    pub async fn stop(self) {
        drop(self.stops);
        let joins = self.joins;
        let _ = tokio::task::spawn_blocking(move || {
            for join in joins {
                let _ = join.join();
            }
        })
        .await;
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting and waits for the
/// open connections to finish their requests. Connections are served on `threads`.
pub async fn serve<S>(
    listener: TcpListener,
    threads: &Threads,
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
    for handle in threads.handles.iter().cycle() {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let tcp = match accepted.and_then(|(tcp, _)| tcp.into_std()) {
            Ok(tcp) => tcp,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(error = %e, "could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (builder, app, watcher) = (builder.clone(), app.clone(), graceful.watcher());
        handle.spawn(async move {
            // Registered with this thread's runtime, which polls it from now on.
            let tcp = match TcpStream::from_std(tcp) {
                Ok(tcp) => tcp,
                Err(e) => return tracing::warn!(error = %e, "could not serve a connection"),
            };
            // Like nginx for keep-alive connections: send each response without waiting on
            // Nagle.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
            let conn = builder.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(app));
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
