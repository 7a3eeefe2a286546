//! Which storage backends a process uses, chosen by configuration, and opening them. Both
//! binaries (the API and its workers) read the same variables, so they always agree.
//!
//! - Jobs and catalog: embedded SQLite under `HTSPREP_DATA_DIR`, or MongoDB when `MONGODB_URI`
//!   is set.
//! - Artifacts: a local directory under `HTSPREP_DATA_DIR`, or S3 when `WORKFLOW_S3_BUCKET` is
//!   set (`WORKFLOW_S3_PREFIX`, and the AWS settings of [`AwsSettings`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::artifacts::{ArtifactError, ArtifactStore, LocalArtifactStore, S3ArtifactStore};
use crate::aws::AwsSettings;
use crate::catalog::{Catalog, CatalogError, MongoCatalog, SqliteCatalog};
use crate::clock::SystemClock;
use crate::jobstore::{JobStore, JobStoreError, MongoJobStore, SqliteJobStore};
use crate::mongo::{DEFAULT_DATABASE, MongoDb, MongoError, MongoSettings};
use crate::settings::EnvReader;

pub const DEFAULT_DATA_DIR: &str = "./data";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageConfig {
    /// `HTSPREP_DATA_DIR`: the embedded job store and catalog (`htsprep.db`) and the local
    /// artifact directory (`artifacts/`).
    pub data_dir: PathBuf,
    /// `MONGODB_URI` (+ `MONGODB_DATABASE`, `HTSPREP_JOB_RETENTION_DAYS`): jobs and catalog in
    /// MongoDB instead of SQLite.
    pub mongo: Option<MongoSettings>,
    /// `HTSPREP_CREATE_INDEXES`: create the MongoDB indexes at start-up (default true).
    pub create_indexes: bool,
    /// `WORKFLOW_S3_BUCKET` / `WORKFLOW_S3_PREFIX`: artifacts in S3 instead of the data directory.
    pub s3: Option<S3Location>,
    pub aws: AwsSettings,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub prefix: String,
    /// `HTSPREP_S3_MULTIPART_THRESHOLD`: artifacts larger than this go up in parts (default
    /// 64M).
    pub multipart_threshold: u64,
    /// `HTSPREP_S3_PART_SIZE`: the size of those parts (default 16M, at least 5M).
    pub part_size: u64,
}

/// The opened stores.
#[derive(Clone, Debug)]
pub struct Stores {
    pub jobs: Arc<dyn JobStore>,
    pub catalog: Arc<dyn Catalog>,
    /// Set when the stores live in MongoDB.
    pub mongo: Option<MongoDb>,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(transparent)]
    Mongo(#[from] MongoError),
    #[error(transparent)]
    Jobs(#[from] JobStoreError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

impl StorageConfig {
    pub fn read(env: &mut EnvReader<'_>) -> Self {
        let data_dir = env.parse_with("HTSPREP_DATA_DIR", PathBuf::from(DEFAULT_DATA_DIR), |s| {
            Ok(PathBuf::from(s))
        });
        let retention_days = env.parse_with("HTSPREP_JOB_RETENTION_DAYS", 30u64, |s| {
            match s.parse::<u64>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err("expected a whole number of days, at least 1".into()),
            }
        });
        let database = env
            .optional("MONGODB_DATABASE")
            .unwrap_or_else(|| DEFAULT_DATABASE.into());
        let connect_timeout =
            env.seconds("MONGODB_CONNECT_TIMEOUT_SECONDS", Duration::from_secs(10));
        let mongo = env.optional("MONGODB_URI").map(|uri| MongoSettings {
            uri,
            database,
            job_retention: Duration::from_secs(retention_days * 86_400),
            connect_timeout,
        });
        if let Some(m) = &mongo
            && !(m.uri.starts_with("mongodb://") || m.uri.starts_with("mongodb+srv://"))
        {
            env.error(
                "MONGODB_URI",
                "must start with mongodb:// or mongodb+srv://",
            );
        }
        let create_indexes = env.flag("HTSPREP_CREATE_INDEXES", true);
        let multipart_threshold = env.bytes("HTSPREP_S3_MULTIPART_THRESHOLD", 64 << 20);
        let part_size = env.bytes("HTSPREP_S3_PART_SIZE", 16 << 20);
        if part_size < 5 << 20 {
            env.error(
                "HTSPREP_S3_PART_SIZE",
                "must be at least 5M (S3's smallest part)",
            );
        }
        let s3 = env.optional("WORKFLOW_S3_BUCKET").map(|bucket| S3Location {
            bucket,
            prefix: env.optional("WORKFLOW_S3_PREFIX").unwrap_or_default(),
            multipart_threshold,
            part_size,
        });
        if let Some(loc) = &s3
            && (loc.bucket.len() < 3 || loc.bucket.len() > 63 || loc.bucket.contains('/'))
        {
            env.error(
                "WORKFLOW_S3_BUCKET",
                "is not a bucket name (3-63 characters, no '/')",
            );
        }
        if s3.is_none() && env.optional("WORKFLOW_S3_PREFIX").is_some() {
            env.error("WORKFLOW_S3_PREFIX", "is set but WORKFLOW_S3_BUCKET is not");
        }
        let aws = AwsSettings::read(env);
        Self {
            data_dir,
            mongo,
            create_indexes,
            s3,
            aws,
        }
    }

    /// The embedded SQLite database (job store and catalog).
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("htsprep.db")
    }

    /// The local artifact directory.
    pub fn artifacts_dir(&self) -> PathBuf {
        self.data_dir.join("artifacts")
    }

    /// Opens the job store and the catalog (one connection when they live in MongoDB).
    pub async fn open_stores(&self) -> Result<Stores, StorageError> {
        match &self.mongo {
            Some(settings) => {
                let db = MongoDb::connect(settings).await?;
                let jobs =
                    MongoJobStore::open(&db, Arc::new(SystemClock), self.create_indexes).await?;
                Ok(Stores {
                    jobs: Arc::new(jobs),
                    catalog: Arc::new(MongoCatalog::new(&db)),
                    mongo: Some(db),
                })
            }
            None => {
                let path = self.database_path();
                Ok(Stores {
                    jobs: Arc::new(SqliteJobStore::open(&path, Arc::new(SystemClock)).await?),
                    catalog: Arc::new(SqliteCatalog::open(&path).await?),
                    mongo: None,
                })
            }
        }
    }

    pub async fn open_artifact_store(&self) -> Result<Arc<dyn ArtifactStore>, ArtifactError> {
        match &self.s3 {
            Some(loc) => {
                let client = self.aws.s3_client().await;
                Ok(Arc::new(
                    S3ArtifactStore::new(client, &loc.bucket, &loc.prefix)
                        .with_parts(loc.multipart_threshold, loc.part_size),
                ))
            }
            None => Ok(Arc::new(LocalArtifactStore::open(&self.artifacts_dir())?)),
        }
    }
}
