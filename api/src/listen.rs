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
//! - **Buffers once there is a request.** hyper gives a connection its read and write buffers
//!   (8 KiB each) when it starts serving it; a connection is handed to hyper only once its
//!   first bytes arrive. Connections opened ahead of their requests (a browser's, a storm's)
//!   then hold no buffers, and the buffers of one served and closed are the next one's, warm:
//!   with 1,000 connections opened first and then all asked at once, first touching two fresh
//!   pages per connection was an eighth of the serving threads' time.
//! - **Closed by closing.** Before a connection ends hyper asks for `shutdown(SHUT_WR)`; the
//!   `close` that follows at once sends the same FIN ([`Socket`]), so that call is skipped.
//! - **No timer per request.** A limit on reading a request's head would arm one, and cost the
//!   tail at thousands of connections (p99 2.0-2.3x nginx's with it); `axum::serve` sets none
//!   either.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
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

/// A served connection's socket. Its write side ends when it is closed: hyper drops it as
/// soon as its `shutdown` completes, and the `close` then sends the FIN (with the same reset
/// as after a `shutdown` if the client sent more than was read).
struct Socket(TcpStream);

impl AsyncRead for Socket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
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
    // Connections still waiting for their first bytes close when shutdown begins.
    let closing = CancellationToken::new();
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
        let closing = closing.clone();
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
            tokio::select! {
                readable = tcp.readable() => {
                    if let Err(e) = readable {
                        return tracing::debug!(error = %e, "connection failed before its request");
                    }
                }
                () = closing.cancelled() => return,
            }
            let conn =
                builder.serve_connection(TokioIo::new(Socket(tcp)), TowerToHyperService::new(app));
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    closing.cancel();
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::{Notify, oneshot};

    use super::*;

    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

    /// Serves `app` on a loopback port; the sender begins shutdown, the handle ends with it.
    async fn start(
        app: axum::Router,
    ) -> (
        std::net::SocketAddr,
        oneshot::Sender<()>,
        tokio::task::JoinHandle<Threads>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            let threads = Threads::start().unwrap();
            serve(listener, &threads, app, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
            threads
        });
        (addr, stop, served)
    }

    /// Shutdown must not wait for these; bounded so that a regression fails instead of hanging.
    async fn ended(served: tokio::task::JoinHandle<Threads>) {
        let threads = tokio::time::timeout(Duration::from_secs(60), served)
            .await
            .expect("shutdown waited on an open connection")
            .unwrap();
        threads.stop().await;
    }

    #[tokio::test]
    async fn a_connection_that_never_asks_does_not_hold_up_shutdown() {
        let (addr, stop, served) =
            start(axum::Router::new().route("/", get(|| async { "ok" }))).await;
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        // A connection that asks is answered meanwhile, whole, then closed.
        let mut asking = tokio::net::TcpStream::connect(addr).await.unwrap();
        asking.write_all(GET).await.unwrap();
        let mut answer = String::new();
        asking.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nok"), "{answer}");

        stop.send(()).unwrap();
        ended(served).await;
        // The silent one was closed, not left open.
        let mut rest = Vec::new();
        assert_eq!(silent.read_to_end(&mut rest).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_request_in_flight_when_shutdown_begins_is_answered() {
        let (started, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let (s, r) = (Arc::clone(&started), Arc::clone(&release));
        let app = axum::Router::new().route(
            "/",
            get(move || async move {
                s.notify_one();
                r.notified().await;
                "finished"
            }),
        );
        let (addr, stop, served) = start(app).await;
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client.write_all(GET).await.unwrap();
        started.notified().await;

        stop.send(()).unwrap();
        // Shutdown has begun once the listening socket is closed.
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
        release.notify_one();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("finished"), "{answer}");
        ended(served).await;
    }
}
