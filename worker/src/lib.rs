//! The htsprep worker. Architecture invariant: only this crate spawns pipeline processes.

pub mod bgzip_tabix;
pub mod clean;
pub mod config;
mod convert;
pub mod fetch;
pub mod identity;
pub mod job;
pub mod pipeline;
pub mod server;
pub mod service;
