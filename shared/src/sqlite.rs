//! A small pool of SQLite connections to one database file, used by the embedded backends.
//!
//! The file is opened in WAL mode with a busy timeout, so several processes on one host (the API
//! and its local workers) can share it. Every call runs on tokio's blocking pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::error::Cause;

const MAX_IDLE: usize = 8;
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub(crate) struct SqlitePool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// How a SQLite failure should be understood by the layer above.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SqliteError {
    #[error("database is busy or locked")]
    Busy(#[source] rusqlite::Error),
    #[error("unique constraint violated")]
    Unique(#[source] rusqlite::Error),
    #[error("SQLite failed")]
    Sql(#[source] rusqlite::Error),
    #[error("cannot {action}")]
    Other {
        action: String,
        #[source]
        source: Cause,
    },
}

impl SqliteError {
    /// The layer above's error: busy is worth retrying, the rest is not.
    pub(crate) fn into_store<E>(
        self,
        unavailable: impl FnOnce(String, Self) -> E,
        backend: impl FnOnce(String, Self) -> E,
    ) -> E {
        match self {
            SqliteError::Busy(_) => unavailable("the database is busy".into(), self),
            other => backend("SQLite".into(), other),
        }
    }
}

impl From<rusqlite::Error> for SqliteError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error() {
            Some(err)
                if matches!(
                    err.code,
                    ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked
                ) =>
            {
                SqliteError::Busy(e)
            }
            Some(err)
                if err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                SqliteError::Unique(e)
            }
            _ => SqliteError::Sql(e),
        }
    }
}

impl SqlitePool {
    /// Opens (creating if needed) the database at `path` and runs `schema` once.
    pub(crate) async fn open(path: &Path, schema: &'static str) -> Result<Arc<Self>, SqliteError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| SqliteError::Other {
                action: format!("create directory {}", dir.display()),
                source: Cause::new(e),
            })?;
        }
        let pool = Arc::new(Self {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        });
        pool.run(move |conn| conn.execute_batch(schema)).await?;
        Ok(pool)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn connect(&self) -> Result<Connection, rusqlite::Error> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(conn)
    }

    /// Runs `f` with a pooled connection on the blocking pool.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T, SqliteError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    {
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let taken = pool.idle.lock().expect("pool lock").pop();
            let mut conn = match taken {
                Some(c) => c,
                None => pool.connect()?,
            };
            let out = f(&mut conn);
            let mut idle = pool.idle.lock().expect("pool lock");
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
            Ok(out?)
        })
        .await
        .map_err(|e| SqliteError::Other {
            action: "finish a SQLite task".into(),
            source: Cause::new(e),
        })?
    }

    /// Like [`SqlitePool::run`], inside an immediate (write-locking) transaction.
    pub(crate) async fn write<T, F>(self: &Arc<Self>, f: F) -> Result<T, SqliteError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, rusqlite::Error> + Send + 'static,
    {
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }
}
