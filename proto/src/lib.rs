//! Generated types and service stubs for `proto/worker.proto`.
//!
//! Wire types convert to domain types at each crate's edge (one place per crate); nothing else
//! depends on these names.

#[allow(clippy::all, clippy::pedantic, reason = "generated code")]
pub mod worker {
    pub mod v1 {
        tonic::include_proto!("htsprep.worker.v1");
    }
}

pub use worker::v1;
