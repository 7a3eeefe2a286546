//! The domain: catalog file records, formats and their processors, job records, and the pure,
//! content-addressed key functions.

mod file_record;
mod format;
mod ids;
mod job;
mod keys;
mod md5;

pub use file_record::{AccessUrl, FileRecord, Sidecar, SidecarKind, UrlError};
pub use format::{Format, FormatError, Processor};
pub use ids::{Ident, IdentError};
pub use job::{
    ArtifactKind, EventKind, JobEvent, JobFailure, JobId, JobRecord, JobStatus, Lease, Progress,
    StageDone, WorkerRef,
};
pub use keys::{cache_key, workflow_key};
pub use md5::{Md5, Md5Error};
