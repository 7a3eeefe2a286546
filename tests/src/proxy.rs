//! A TCP proxy on loopback in front of a real server (the MongoDB-wire server, the S3
//! emulator), for what no real part shows on demand: the server vanishing mid-call and coming
//! back with its state. `stop` closes the listening port and cuts every open connection;
//! `resume` listens again on the same address. With a trip wire, the first time more than
//! `after` bytes have gone from clients to the server, the proxy stops on its own for `outage`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

struct Shared {
    addr: SocketAddr,
    target: SocketAddr,
    /// Cancelled when the proxy stops: the accept loop and every connection end.
    up: Mutex<CancellationToken>,
    to_server: AtomicU64,
    trip: Option<(u64, Duration)>,
    tripped: AtomicBool,
    stops: AtomicU64,
}

pub struct Proxy {
    shared: Arc<Shared>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Self {
        Self::start_with(target, None).await
    }

    /// Stops once, for `outage`, when more than `after` bytes have been sent to the server.
    pub async fn tripping(target: SocketAddr, after: u64, outage: Duration) -> Self {
        Self::start_with(target, Some((after, outage))).await
    }

    async fn start_with(target: SocketAddr, trip: Option<(u64, Duration)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let shared = Arc::new(Shared {
            addr: listener.local_addr().expect("addr"),
            target,
            up: Mutex::new(CancellationToken::new()),
            to_server: AtomicU64::new(0),
            trip,
            tripped: AtomicBool::new(false),
            stops: AtomicU64::new(0),
        });
        serve(Arc::clone(&shared), listener);
        Self { shared }
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Bytes clients have sent through the proxy.
    pub fn to_server(&self) -> u64 {
        self.shared.to_server.load(Ordering::SeqCst)
    }

    /// How many times it has stopped (by hand or tripped).
    pub fn stops(&self) -> u64 {
        self.shared.stops.load(Ordering::SeqCst)
    }

    pub fn stop(&self) {
        stop(&self.shared);
    }

    pub async fn resume(&self) {
        resume(&self.shared).await;
    }
}

fn stop(shared: &Shared) {
    shared.up.lock().expect("lock").cancel();
    shared.stops.fetch_add(1, Ordering::SeqCst);
}

async fn resume(shared: &Arc<Shared>) {
    // The old listener is closed once its accept loop sees the cancellation.
    let listener = loop {
        match TcpListener::bind(shared.addr).await {
            Ok(l) => break l,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    *shared.up.lock().expect("lock") = CancellationToken::new();
    serve(Arc::clone(shared), listener);
}

fn serve(shared: Arc<Shared>, listener: TcpListener) {
    let up = shared.up.lock().expect("lock").clone();
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = up.cancelled() => return,
            };
            let Ok((client, _)) = accepted else { continue };
            let (shared, up) = (Arc::clone(&shared), up.clone());
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(shared.target).await else {
                    return;
                };
                tokio::select! {
                    () = pump(client, server, &shared) => {}
                    () = up.cancelled() => {}
                }
            });
        }
    });
}

async fn pump(client: TcpStream, server: TcpStream, shared: &Arc<Shared>) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let upstream = async {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = cr.read(&mut buf).await {
            if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                break;
            }
            let total = shared.to_server.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if let Some((after, outage)) = shared.trip
                && total > after
                && !shared.tripped.swap(true, Ordering::SeqCst)
            {
                stop(shared);
                let shared = Arc::clone(shared);
                tokio::spawn(async move {
                    tokio::time::sleep(outage).await;
                    resume(&shared).await;
                });
            }
        }
        let _ = sw.shutdown().await;
    };
    let downstream = async {
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
        let _ = cw.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.up.lock().expect("lock").cancel();
    }
}
