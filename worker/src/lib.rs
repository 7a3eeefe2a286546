//! The htsprep worker. Architecture invariant: only this crate spawns pipeline processes.

pub mod fetch;
pub mod job;
pub mod pipeline;
