//! A loopback address of its own for every task (127.a.b.c; all of 127.0.0.0/8 reaches `lo` on
//! Linux). Each stand-in starts at a random 127.a.b.0 so that stand-ins in concurrent test
//! processes do not share addresses, and skips an address whose usual worker ports are taken.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

/// Ports a task usually listens on (the worker's gRPC and health ports), checked free.
const PORTS: [u16; 2] = [50051, 8081];

#[derive(Debug)]
pub struct Addresses {
    base: u32,
    next: AtomicU32,
}

impl Addresses {
    pub fn new() -> Self {
        // 127.1.0.0 to 127.254.255.0, leaving 127.0.0.x to everything else.
        let r = uuid::Uuid::new_v4().as_u128() as u32;
        let a = 1 + (r % 254);
        let b = (r >> 8) % 256;
        Self {
            base: (127 << 24) | (a << 16) | (b << 8),
            next: AtomicU32::new(1),
        }
    }

    /// The next free address, as text.
    pub fn next(&self) -> String {
        loop {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let host = n % 254 + 1;
            let ip = Ipv4Addr::from(self.base + ((n / 254) << 8 & 0xff00) + host);
            let free = PORTS
                .iter()
                .all(|p| TcpListener::bind(SocketAddrV4::new(ip, *p)).is_ok());
            if free {
                return ip.to_string();
            }
        }
    }
}
