//! The htsprep control plane. Architecture invariant: only this crate talks to ECS; it reaches
//! storage only through the `htsprep-shared` seams.

pub mod catalog_cache;
pub mod cli;
mod coalesce;
pub mod config;
pub mod executor;
pub mod fleet;
pub mod htsget;
pub mod http;
mod listen;
pub mod reconciler;
pub mod served;
pub mod server;
pub mod stores;
pub mod upstream;
pub mod warm;
