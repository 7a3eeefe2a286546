//! A MongoDB-wire server for tests: `scripts/mongo-test-server.sh` (mongoeco on loopback), started
//! by the test that needs it and stopped when the returned guard drops. If
//! `HTSPREP_TEST_MONGODB_URI` is set (the test script starts one server for the whole run), that
//! server is used instead. Every caller gets a database of its own.

use std::time::Duration;

use super::{DEFAULT_DATABASE, MongoDb, MongoSettings};
use crate::test_server::ScriptServer;

pub struct TestMongo {
    _server: Option<ScriptServer>,
    pub uri: String,
}

impl TestMongo {
    pub async fn start() -> Self {
        if let Ok(uri) = std::env::var("HTSPREP_TEST_MONGODB_URI")
            && !uri.is_empty()
        {
            return Self { _server: None, uri };
        }
        let server = tokio::task::spawn_blocking(|| ScriptServer::start("mongo-test-server.sh"))
            .await
            .expect("start task");
        Self {
            uri: format!(
                "mongodb://{}/?directConnection=true&retryWrites=false",
                server.addr
            ),
            _server: Some(server),
        }
    }

    pub fn settings(&self, database: &str) -> MongoSettings {
        MongoSettings {
            uri: self.uri.clone(),
            database: database.to_owned(),
            // Tests run on a manual clock in the past: keep finished jobs for good.
            job_retention: Duration::from_secs(100 * 365 * 86_400),
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// A connected, empty database no other test uses.
    pub async fn fresh_database(&self) -> MongoDb {
        let name = format!("{DEFAULT_DATABASE}_{}", uuid::Uuid::new_v4().simple());
        MongoDb::connect(&self.settings(&name))
            .await
            .expect("connect to the test server")
    }
}
