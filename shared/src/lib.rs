//! Domain types, content-addressed keys, and the storage seams of htsprep.
//!
//! Architecture invariant: this crate does no network IO of its own beyond the storage backends it
//! defines, and knows nothing of HTTP routes or gRPC. Every backend seam is a trait with a small
//! core and a conformance suite (`*::conformance`) that every implementation runs.

pub mod artifacts;
pub mod aws;
pub mod catalog;
pub mod clock;
pub mod domain;
pub mod error;
pub mod jobstore;
pub mod mongo;
pub mod outbound;
pub mod process;
pub mod retry;
pub mod settings;
mod sqlite;
pub mod storage;
#[cfg(any(test, feature = "conformance"))]
pub mod test_server;

pub use clock::{Clock, ManualClock, SystemClock};
