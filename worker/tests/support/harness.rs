//! A job harness for the worker's tests: an embedded job store and a local artifact store in a
//! temp dir, a claimed job, and the real stage scripts.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use htsprep_shared::SystemClock;
use htsprep_shared::artifacts::{ArtifactKey, ArtifactStore, LocalArtifactStore};
use htsprep_shared::domain::{
    AccessUrl, ArtifactKind, Format, Ident, JobRecord, Md5, WorkerRef, cache_key,
};
use htsprep_shared::jobstore::{ClaimRequest, JobStore, JobStoreExt, SqliteJobStore};
use htsprep_shared::outbound::SourcePolicy;
use htsprep_worker::fetch::{FetchOptions, Fetcher};
use htsprep_worker::job::{Caps, JobContext, JobSpec, JobUpdate, run_job};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The source policy of these tests: files from the repository's testdata and temporary
/// directories.
pub fn test_sources() -> SourcePolicy {
    SourcePolicy {
        file_roots: vec![repo_testdata(""), std::env::temp_dir()],
        ..SourcePolicy::default()
    }
}

pub fn repo_testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(name)
}

pub fn md5_of(path: &Path) -> Md5 {
    let out = std::process::Command::new("md5sum")
        .arg(path)
        .output()
        .unwrap();
    Md5::parse(
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap(),
    )
    .unwrap()
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub store: Arc<dyn JobStore>,
    pub local: LocalArtifactStore,
    pub artifacts: Arc<dyn ArtifactStore>,
    pub ctx: JobContext,
}

pub struct Ran {
    pub job: JobRecord,
    pub updates: Vec<JobUpdate>,
    pub spec: JobSpec,
}

impl Harness {
    pub async fn new() -> Self {
        Self::with_fetch(
            SourcePolicy {
                connect_timeout: Duration::from_secs(2),
                read_timeout: Duration::from_secs(5),
                ..test_sources()
            },
            FetchOptions {
                attempts: 2,
                backoff: Duration::from_millis(20),
            },
        )
        .await
    }

    pub async fn with_fetch(sources: SourcePolicy, options: FetchOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn JobStore> = Arc::new(
            SqliteJobStore::open(&dir.path().join("jobs.db"), Arc::new(SystemClock))
                .await
                .unwrap(),
        );
        let local = LocalArtifactStore::open(&dir.path().join("artifacts")).unwrap();
        let artifacts: Arc<dyn ArtifactStore> = Arc::new(local.clone());
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let ctx = JobContext {
            store: Arc::clone(&store),
            artifacts: Arc::clone(&artifacts),
            fetcher: Fetcher::new(Arc::new(sources), options).unwrap(),
            worker: WorkerRef {
                provider: "test".into(),
                resource_id: "harness".into(),
                address: "in-process".into(),
            },
            work_root: work,
            heartbeat_every: Duration::from_millis(50),
            kill_grace: Duration::from_millis(500),
            threads: 2,
            worker_exe: env!("CARGO_BIN_EXE_htsprep-worker").into(),
        };
        Self {
            dir,
            store,
            local,
            artifacts,
            ctx,
        }
    }

    /// Claims a job for `url` and returns its spec.
    pub async fn spec(
        &self,
        local_id: &str,
        format: Format,
        url: &str,
        md5: Md5,
        size: u64,
    ) -> JobSpec {
        let dcc = Ident::parse("test").unwrap();
        let local_id = Ident::parse(local_id).unwrap();
        let processor = format.processor();
        let claim = self
            .store
            .claim(&ClaimRequest {
                workflow_key: format!("{dcc}/{local_id}/{md5}/v{}", processor.version()),
                dcc: dcc.clone(),
                local_id: local_id.clone(),
                policy: htsprep_shared::jobstore::JobPolicy {
                    stale_after: Duration::from_secs(60),
                    max_attempts: 3,
                },
                driver: None,
            })
            .await
            .unwrap();
        let artifacts: BTreeMap<_, _> = [ArtifactKind::Data, ArtifactKind::Index]
            .into_iter()
            .map(|k| {
                (
                    k,
                    ArtifactKey::parse(&cache_key(&dcc, &local_id, k, processor, &md5)).unwrap(),
                )
            })
            .collect();
        JobSpec {
            job_id: claim.job.job_id.clone(),
            lease: claim.job.lease.clone(),
            attempt: claim.job.attempt,
            dcc,
            local_id,
            source_url: AccessUrl::parse(url).unwrap(),
            md5,
            size,
            format,
            processor,
            artifacts,
            caps: Caps {
                sort_mem: "64M".into(),
                samtools_sort_mem: "64M".into(),
                duration_cap: Duration::from_secs(120),
            },
        }
    }

    /// A spec for a local file, with its real md5 and size.
    pub async fn file_spec(&self, local_id: &str, format: Format, path: &Path) -> JobSpec {
        let url = url::Url::from_file_path(path).unwrap().to_string();
        let size = std::fs::metadata(path).unwrap().len();
        self.spec(local_id, format, &url, md5_of(path), size).await
    }

    pub async fn run(&self, spec: JobSpec) -> Ran {
        self.run_with(spec, CancellationToken::new()).await
    }

    pub async fn run_with(&self, spec: JobSpec, shutdown: CancellationToken) -> Ran {
        let (tx, mut rx) = mpsc::channel(1024);
        run_job(&self.ctx, spec.clone(), tx, shutdown).await;
        let mut updates = Vec::new();
        while let Ok(u) = rx.try_recv() {
            updates.push(u);
        }
        let job = self.store.get(&spec.job_id).await.unwrap();
        Ran { job, updates, spec }
    }

    pub fn artifact_path(&self, spec: &JobSpec, kind: ArtifactKind) -> PathBuf {
        self.local.path_of(&spec.artifacts[&kind])
    }

    /// Every object in the artifact store.
    pub fn published(&self) -> Vec<PathBuf> {
        fn walk(p: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                if e.file_type().unwrap().is_dir() {
                    walk(&e.path(), out);
                } else {
                    out.push(e.path());
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.dir.path().join("artifacts/objects"), &mut out);
        out
    }

    /// Work directories left behind (there should be none).
    pub fn leftover_work(&self) -> usize {
        std::fs::read_dir(&self.ctx.work_root).unwrap().count()
    }
}

/// Runs a command and returns its stdout; panics with its stderr on failure.
pub fn sh(cmd: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> String {
    let out = std::process::Command::new(cmd)
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .unwrap_or_else(|e| panic!("run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
