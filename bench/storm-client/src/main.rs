//! The storm bench's client (`bench/storm.sh`): opens CONNS connections to HOST:PORT, then sends
//! `GET PATH` on every one at the same moment and times each until its status line arrives.
//! Prints `p50 p99 max cpu codes`: milliseconds, then the CPU time the server's threads (the
//! processes PIDS, comma-separated) spent from the moment the requests were let go until every
//! status line was read, in microseconds per request (from `/proc/PID/task/*/schedstat`), then
//! the status codes seen.
//!
//! One thread, so that it takes at most one of the machine's cores from the servers it measures
//! (the Python client it replaces spent several times either server's CPU on the same cores).
//!
//!     htsprep-storm-client HOST:PORT PATH CONNS PIDS

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, path, conns, pids] = args.as_slice() else {
        return Err("usage: htsprep-storm-client HOST:PORT PATH CONNS PIDS".into());
    };
    let conns: usize = conns.parse()?;
    let pids: Vec<&str> = pids.split(',').collect();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(storm(addr, path, conns, &pids))
}

async fn storm(addr: &str, path: &str, conns: usize, pids: &[&str]) -> Result<(), Error> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let (go, ready) = watch::channel(false);
    let mut tasks = Vec::with_capacity(conns);
    for _ in 0..conns {
        let stream = TcpStream::connect(addr).await?;
        tasks.push(tokio::spawn(one(stream, request.clone(), ready.clone())));
    }
    // Every connection accepted and idle before the requests go.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = cpu_ns(pids);
    go.send_replace(true);
    let mut took = Vec::with_capacity(conns);
    let mut codes = BTreeSet::new();
    for task in tasks {
        let (elapsed, code) = task.await??;
        took.push(elapsed);
        codes.insert(code);
    }
    let cpu_us = cpu_ns(pids).saturating_sub(before) as f64 / 1e3 / conns as f64;
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let q = |q: f64| ms(took[((took.len() as f64 * q) as usize).min(took.len() - 1)]);
    let codes: Vec<String> = codes.into_iter().collect();
    println!(
        "{:.1} {:.1} {:.1} {cpu_us:.0} {}",
        q(0.5),
        q(0.99),
        ms(took[took.len() - 1]),
        codes.join(",")
    );
    Ok(())
}

/// Sends the request once told to, and reads up to the end of the status line.
async fn one(
    mut stream: TcpStream,
    request: String,
    mut go: watch::Receiver<bool>,
) -> Result<(Duration, String), Error> {
    go.wait_for(|&go| go).await?;
    let start = Instant::now();
    stream.write_all(request.as_bytes()).await?;
    let mut buf = Vec::with_capacity(256);
    let line = loop {
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            break &buf[..end];
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Err("the connection closed before a status line".into());
        }
    };
    let elapsed = start.elapsed();
    let code = String::from_utf8_lossy(line)
        .split_whitespace()
        .nth(1)
        .unwrap_or("none")
        .to_owned();
    Ok((elapsed, code))
}

/// The CPU time of every thread of the processes `pids`, in nanoseconds.
fn cpu_ns(pids: &[&str]) -> u64 {
    let mut total = 0;
    for pid in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            // A thread that ended meanwhile has no schedstat.
            if let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) {
                total += stat
                    .split_whitespace()
                    .next()
                    .and_then(|ns| ns.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    total
}
