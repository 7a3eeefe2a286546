//! The worker's configuration, from environment variables (all problems reported at once).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use htsprep_shared::outbound::SourcePolicy;
use htsprep_shared::settings::{ConfigError, EnvReader};
use htsprep_shared::storage::StorageConfig;

#[derive(Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// `HTSPREP_WORKER_LISTEN`: the gRPC address (default `127.0.0.1:50051`; port 0 picks one).
    pub grpc_listen: SocketAddr,
    /// `HTSPREP_WORKER_HEALTH_LISTEN`: the HTTP `/health` address (default `127.0.0.1:8081`).
    pub health_listen: SocketAddr,
    pub storage: StorageConfig,
    /// `HTSPREP_WORK_DIR`: per-job temporary directories (default `{data dir}/work`).
    pub work_dir: PathBuf,
    /// `HTSPREP_WORKER_MAX_JOBS`: concurrent jobs; more are refused (default 2).
    pub max_jobs: usize,
    /// `HTSPREP_WORKER_IDLE_TIMEOUT_SECONDS`: stop after this long with no work (0: never;
    /// default 300).
    pub idle_timeout: Option<Duration>,
    /// `HTSPREP_WORKER_DRAIN_GRACE_SECONDS`: on SIGTERM, in-flight jobs get this long to finish
    /// before they are handed back (default 25, inside ECS's default 30 s stop timeout).
    pub drain_grace: Duration,
    /// `HTSPREP_HEARTBEAT_SECONDS`: how often a running job proves it is alive (default 10).
    pub heartbeat_every: Duration,
    /// `HTSPREP_WORKER_TOKEN`: bearer token every gRPC call must carry. Required when the gRPC
    /// address is not loopback.
    pub token: Option<String>,
    /// `HTSPREP_WORKER_PROVIDER` / `HTSPREP_WORKER_RESOURCE_ID`: how job records name this worker
    /// (default `ecs` and the task ARN on ECS, else `local` and `pid-{pid}`).
    pub provider: String,
    pub resource_id: Option<String>,
    /// `ECS_CONTAINER_METADATA_URI_V4` (set by the ECS agent on Fargate): where the worker reads
    /// its task ARN and private IP.
    pub ecs_metadata_uri: Option<String>,
    /// What sources may be fetched, and the timeouts (`HTSPREP_FILE_ROOTS`,
    /// `HTSPREP_ALLOW_PRIVATE_SOURCES`, `HTSPREP_SOURCE_*_TIMEOUT_SECONDS`).
    pub sources: SourcePolicy,
    /// `HTSPREP_WORKER_THREADS`: threads each job's stages use (sort, compression, samtools). Default:
    /// the CPUs this process may use (cgroup quotas included, so a Fargate task's vCPUs).
    pub threads: usize,
}

impl fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("grpc_listen", &self.grpc_listen)
            .field("health_listen", &self.health_listen)
            .field("storage", &self.storage)
            .field("work_dir", &self.work_dir)
            .field("max_jobs", &self.max_jobs)
            .field("idle_timeout", &self.idle_timeout)
            .field("drain_grace", &self.drain_grace)
            .field("heartbeat_every", &self.heartbeat_every)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("provider", &self.provider)
            .field("resource_id", &self.resource_id)
            .field("ecs_metadata_uri", &self.ecs_metadata_uri)
            .field("sources", &self.sources)
            .field("threads", &self.threads)
            .finish()
    }
}

impl WorkerConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&EnvReader::process_env())
    }

    pub fn from_vars(vars: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut env = EnvReader::new(vars);
        let addr = "an address like 127.0.0.1:50051";
        let grpc_listen: SocketAddr = env.parse(
            "HTSPREP_WORKER_LISTEN",
            "127.0.0.1:50051".parse().expect("valid"),
            addr,
        );
        let health_listen: SocketAddr = env.parse(
            "HTSPREP_WORKER_HEALTH_LISTEN",
            "127.0.0.1:8081".parse().expect("valid"),
            addr,
        );
        let storage = StorageConfig::read(&mut env);
        let default_work = storage.data_dir.join("work");
        let work_dir = env.parse_with("HTSPREP_WORK_DIR", default_work, |s| Ok(PathBuf::from(s)));
        let max_jobs = env.count("HTSPREP_WORKER_MAX_JOBS", 2);
        let idle = env.seconds(
            "HTSPREP_WORKER_IDLE_TIMEOUT_SECONDS",
            Duration::from_secs(300),
        );
        let drain_grace = env.seconds(
            "HTSPREP_WORKER_DRAIN_GRACE_SECONDS",
            Duration::from_secs(25),
        );
        let heartbeat_every = env.seconds("HTSPREP_HEARTBEAT_SECONDS", Duration::from_secs(10));
        if heartbeat_every.is_zero() {
            env.error("HTSPREP_HEARTBEAT_SECONDS", "must be at least 1");
        }
        let token = env.optional("HTSPREP_WORKER_TOKEN");
        if token.as_ref().is_some_and(|t| t.len() < 16) {
            env.error("HTSPREP_WORKER_TOKEN", "must be at least 16 characters");
        }
        if token.is_none() && !grpc_listen.ip().is_loopback() {
            env.error(
                "HTSPREP_WORKER_TOKEN",
                format!("must be set when the gRPC port listens beyond loopback ({grpc_listen})"),
            );
        }
        let ecs_metadata_uri = env.optional("ECS_CONTAINER_METADATA_URI_V4");
        if let Some(u) = &ecs_metadata_uri
            && !u.starts_with("http://")
        {
            env.error("ECS_CONTAINER_METADATA_URI_V4", "must be an http:// URL");
        }
        let provider = env.optional("HTSPREP_WORKER_PROVIDER").unwrap_or_else(|| {
            if ecs_metadata_uri.is_some() {
                "ecs"
            } else {
                "local"
            }
            .into()
        });
        let resource_id = env.optional("HTSPREP_WORKER_RESOURCE_ID");
        let sources = SourcePolicy::read(&mut env);
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let threads = env.count("HTSPREP_WORKER_THREADS", cpus);
        env.finish()?;
        Ok(Self {
            grpc_listen,
            health_listen,
            storage,
            work_dir,
            max_jobs,
            idle_timeout: (!idle.is_zero()).then_some(idle),
            drain_grace,
            heartbeat_every,
            token,
            provider,
            resource_id,
            ecs_metadata_uri,
            sources,
            threads,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_local_and_loopback() {
        let c = WorkerConfig::from_vars(&vars(&[])).unwrap();
        assert!(c.grpc_listen.ip().is_loopback());
        assert_eq!(c.work_dir, PathBuf::from("./data/work"));
        assert_eq!(c.max_jobs, 2);
        assert_eq!(c.idle_timeout, Some(Duration::from_secs(300)));
        assert!(c.token.is_none());
    }

    #[test]
    fn listening_beyond_loopback_needs_a_token() {
        let err = WorkerConfig::from_vars(&vars(&[("HTSPREP_WORKER_LISTEN", "0.0.0.0:50051")]))
            .unwrap_err();
        assert_eq!(err.0[0].var, "HTSPREP_WORKER_TOKEN");
        let ok = WorkerConfig::from_vars(&vars(&[
            ("HTSPREP_WORKER_LISTEN", "0.0.0.0:50051"),
            ("HTSPREP_WORKER_TOKEN", "a-long-enough-secret"),
        ]))
        .unwrap();
        assert!(!format!("{ok:?}").contains("a-long-enough-secret"));
    }

    #[test]
    fn every_bad_value_is_reported() {
        let err = WorkerConfig::from_vars(&vars(&[
            ("HTSPREP_WORKER_MAX_JOBS", "0"),
            ("HTSPREP_WORKER_IDLE_TIMEOUT_SECONDS", "soon"),
            ("HTSPREP_HEARTBEAT_SECONDS", "0"),
        ]))
        .unwrap_err();
        let vars: Vec<_> = err.0.iter().map(|e| e.var).collect();
        assert_eq!(
            vars,
            [
                "HTSPREP_WORKER_MAX_JOBS",
                "HTSPREP_WORKER_IDLE_TIMEOUT_SECONDS",
                "HTSPREP_HEARTBEAT_SECONDS"
            ]
        );
    }
}
