//! Misbehaving HTTP origins on loopback, for the source policy's tests: one that redirects, one
//! whose body never ends, one that trickles a few bytes and then goes silent. Each counts the
//! connections it accepted; all stop when dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone, Debug)]
pub enum Behaviour {
    /// `302 Found` to this location.
    Redirect(String),
    /// `200` with a `Content-Length` of 1 TiB, sending zeros as fast as it is read.
    Endless,
    /// `200` with a `Content-Length` of `size`, sending `bytes` one per `every`, then nothing
    /// while keeping the connection open.
    Trickle {
        size: u64,
        bytes: usize,
        every: Duration,
    },
}

pub struct Origin {
    pub addr: SocketAddr,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Origin {
    pub async fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let behaviour = behaviour.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let _ = stream.read(&mut buf).await;
                    let _ = answer(&mut stream, &behaviour).await;
                    // Hold the connection (a silent origin) until the client gives up.
                    let _ = stream.read(&mut buf).await;
                });
            }
        });
        Self {
            addr,
            connections,
            task,
        }
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn answer(stream: &mut tokio::net::TcpStream, behaviour: &Behaviour) -> std::io::Result<()> {
    match behaviour {
        Behaviour::Redirect(location) => {
            let head =
                format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n");
            stream.write_all(head.as_bytes()).await
        }
        Behaviour::Endless => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", 1u64 << 40);
            stream.write_all(head.as_bytes()).await?;
            let zeros = vec![0u8; 64 * 1024];
            loop {
                stream.write_all(&zeros).await?;
            }
        }
        Behaviour::Trickle { size, bytes, every } => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n");
            stream.write_all(head.as_bytes()).await?;
            for _ in 0..*bytes {
                stream.write_all(b"#").await?;
                stream.flush().await?;
                tokio::time::sleep(*every).await;
            }
            Ok(())
        }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}
