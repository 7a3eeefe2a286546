//! A tiny HTTP/1.1 file server on loopback that sends its body slowly, so a job stays in flight
//! long enough to be observed (or its worker killed). One thread per connection; stops when
//! dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

pub struct SlowServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// How many GETs it has answered.
    pub requests: Arc<AtomicUsize>,
}

impl SlowServer {
    /// Serves `body` at every path, in `pieces` parts `pause` apart.
    pub fn start(body: Vec<u8>, pieces: usize, pause: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let body = Arc::new(body);
        let (s, r) = (Arc::clone(&stop), Arc::clone(&requests));
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let body = Arc::clone(&body);
                        let r = Arc::clone(&r);
                        let s = Arc::clone(&s);
                        std::thread::spawn(move || {
                            let _ = stream.set_nonblocking(false);
                            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                            let mut line = String::new();
                            // Request line and headers.
                            while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                                line.clear();
                            }
                            r.fetch_add(1, Ordering::SeqCst);
                            let mut out = stream;
                            let _ = write!(
                                out,
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            );
                            let piece = body.len().div_ceil(pieces.max(1)).max(1);
                            for chunk in body.chunks(piece) {
                                if s.load(Ordering::SeqCst) || out.write_all(chunk).is_err() {
                                    return;
                                }
                                let _ = out.flush();
                                std::thread::sleep(pause);
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self {
            addr,
            stop,
            requests,
        }
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }
}

impl Drop for SlowServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
