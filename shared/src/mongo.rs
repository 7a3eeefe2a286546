//! MongoDB (or AWS DocumentDB) as the store for jobs and the catalog: connecting with errors an
//! operator can act on, and the indexes both collections need.
//!
//! Only plain, documented single-document operations are used (insert, find, find-and-modify,
//! update with `$set`/`$push`/`$inc`/`$min`, indexes with partial filters on a boolean), so the
//! backend also runs on DocumentDB with `retryWrites=false` and without transactions.

#[cfg(any(test, feature = "conformance"))]
pub mod testing;

use std::time::Duration;

use mongodb::bson::doc;
use mongodb::options::{ClientOptions, CollectionOptions, IndexOptions, WriteConcern};
use mongodb::{Client, Collection, Database, IndexModel};

pub const JOBS: &str = "jobs";
pub const FILES: &str = "files";
pub const DEFAULT_DATABASE: &str = "htsprep";

#[derive(Debug, thiserror::Error)]
pub enum MongoError {
    #[error("MONGODB_URI is not a valid connection string")]
    BadUri(#[source] mongodb::error::Error),
    #[error("database name {0:?} is invalid (1-63 characters, none of /\\. \"$ or spaces)")]
    BadDatabase(String),
    #[error("cannot reach MongoDB at {hosts} within {timeout_s}s")]
    Unreachable {
        hosts: String,
        timeout_s: u64,
        #[source]
        source: mongodb::error::Error,
    },
    #[error("MongoDB refused the credentials")]
    Auth(#[source] mongodb::error::Error),
    #[error("MongoDB failed to {action}")]
    Other {
        action: &'static str,
        #[source]
        source: mongodb::error::Error,
    },
}

/// Where the store is and how long to keep finished jobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MongoSettings {
    pub uri: String,
    pub database: String,
    /// Finished jobs are removed this long after they finish (TTL index).
    pub job_retention: Duration,
    /// How long to look for a server before giving up.
    pub connect_timeout: Duration,
}

/// A connected database.
#[derive(Clone, Debug)]
pub struct MongoDb {
    pub db: Database,
    pub job_retention: Duration,
}

fn valid_db_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name
            .chars()
            .any(|c| matches!(c, '/' | '\\' | '.' | ' ' | '"' | '$' | '\0'))
}

fn classify(hosts: &str, timeout: Duration, e: mongodb::error::Error) -> MongoError {
    use mongodb::error::ErrorKind;
    match e.kind.as_ref() {
        ErrorKind::ServerSelection { .. } => MongoError::Unreachable {
            hosts: hosts.to_owned(),
            timeout_s: timeout.as_secs(),
            source: e,
        },
        ErrorKind::Authentication { .. } => MongoError::Auth(e),
        _ => MongoError::Other {
            action: "answer a ping",
            source: e,
        },
    }
}

impl MongoDb {
    /// Connects and checks that the server answers (so a bad URI, an unreachable server or a
    /// refused login is reported at start-up, not at the first request).
    pub async fn connect(s: &MongoSettings) -> Result<Self, MongoError> {
        if !valid_db_name(&s.database) {
            return Err(MongoError::BadDatabase(s.database.clone()));
        }
        let mut opts = ClientOptions::parse(&s.uri)
            .await
            .map_err(MongoError::BadUri)?;
        opts.server_selection_timeout = Some(s.connect_timeout);
        opts.connect_timeout = Some(s.connect_timeout);
        opts.app_name.get_or_insert_with(|| "htsprep".to_owned());
        let hosts = opts
            .hosts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let client = Client::with_options(opts).map_err(MongoError::BadUri)?;
        let db = client.database(&s.database);
        db.run_command(doc! {"ping": 1})
            .await
            .map_err(|e| classify(&hosts, s.connect_timeout, e))?;
        Ok(Self {
            db,
            job_retention: s.job_retention,
        })
    }

    /// A collection whose writes are acknowledged by a majority.
    pub fn collection<T: Send + Sync>(&self, name: &str) -> Collection<T> {
        self.db.collection_with_options(
            name,
            CollectionOptions::builder()
                .write_concern(WriteConcern::majority())
                .build(),
        )
    }

    /// Creates every index the backend relies on (idempotent): the workflow mutex, unique job
    /// ids, the stale scan, the retention TTL, and the catalog's unique `(dcc, local_id)`.
    pub async fn create_indexes(&self) -> Result<(), MongoError> {
        let named = |name: &str| IndexOptions::builder().name(name.to_owned());
        let jobs = vec![
            IndexModel::builder()
                .keys(doc! {"workflow_key": 1})
                .options(
                    named("one_active_job_per_workflow")
                        .unique(true)
                        .partial_filter_expression(doc! {"active": true})
                        .build(),
                )
                .build(),
            IndexModel::builder()
                .keys(doc! {"job_id": 1})
                .options(named("job_id_unique").unique(true).build())
                .build(),
            IndexModel::builder()
                .keys(doc! {"workflow_key": 1, "submitted_at": -1})
                .options(named("latest_per_workflow").build())
                .build(),
            IndexModel::builder()
                .keys(doc! {"status": 1, "updated_at": 1})
                .options(named("stale_scan").build())
                .build(),
            IndexModel::builder()
                .keys(doc! {"finished_at": 1})
                .options(
                    named("finished_ttl")
                        .expire_after(self.job_retention)
                        .build(),
                )
                .build(),
        ];
        let files = vec![
            IndexModel::builder()
                .keys(doc! {"dcc": 1, "local_id": 1})
                .options(named("file_unique").unique(true).build())
                .build(),
        ];
        self.collection::<mongodb::bson::Document>(JOBS)
            .create_indexes(jobs)
            .await
            .map_err(|source| MongoError::Other {
                action: "create the job indexes",
                source,
            })?;
        self.collection::<mongodb::bson::Document>(FILES)
            .create_indexes(files)
            .await
            .map_err(|source| MongoError::Other {
                action: "create the catalog indexes",
                source,
            })?;
        Ok(())
    }

    /// `(collection, index name, keys, options)` for every index, for operators.
    pub async fn list_indexes(&self) -> Result<Vec<(String, IndexModel)>, MongoError> {
        use futures::TryStreamExt;
        let mut out = Vec::new();
        for name in [JOBS, FILES] {
            let models: Vec<IndexModel> = self
                .collection::<mongodb::bson::Document>(name)
                .list_indexes()
                .await
                .map_err(|source| MongoError::Other {
                    action: "list indexes",
                    source,
                })?
                .try_collect()
                .await
                .map_err(|source| MongoError::Other {
                    action: "list indexes",
                    source,
                })?;
            out.extend(models.into_iter().map(|m| (name.to_owned(), m)));
        }
        Ok(out)
    }
}

/// Whether an error is a duplicate-key violation (code 11000).
pub(crate) fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == 11000,
        ErrorKind::Command(c) => c.code == 11000,
        _ => false,
    }
}

/// Whether retrying an idempotent operation may help.
pub(crate) fn is_transient(e: &mongodb::error::Error) -> bool {
    use mongodb::error::ErrorKind;
    matches!(
        e.kind.as_ref(),
        ErrorKind::Io(_)
            | ErrorKind::ServerSelection { .. }
            | ErrorKind::ConnectionPoolCleared { .. }
    ) || e.contains_label("RetryableWriteError")
        || e.contains_label("TransientTransactionError")
}

/// Runs an idempotent operation, retrying transient failures a few times with backoff. A
/// server-selection timeout is not retried: the driver has already looked for a server for
/// the whole `MONGODB_CONNECT_TIMEOUT_SECONDS`, and callers answer 503 sooner without another.
pub(crate) async fn retrying<T, F, Fut>(op: F) -> Result<T, mongodb::error::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, mongodb::error::Error>>,
{
    use crate::retry::{Retryable, backoff};
    let worth_retrying = |e: &mongodb::error::Error| {
        is_transient(e)
            && !matches!(
                e.kind.as_ref(),
                mongodb::error::ErrorKind::ServerSelection { .. }
            )
    };
    op.retry(backoff(4, Duration::from_millis(100)))
        .when(worth_retrying)
        .notify(|e, wait| tracing::warn!(error = %crate::error::chain(e), ?wait, "transient MongoDB error; retrying"))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_checked() {
        assert!(valid_db_name("htsprep"));
        assert!(valid_db_name("htsprep_test-1"));
        assert!(!valid_db_name(""));
        assert!(!valid_db_name("a.b"));
        assert!(!valid_db_name("a b"));
        assert!(!valid_db_name(&"x".repeat(64)));
    }
}
