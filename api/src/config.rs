//! The API's configuration, parsed once from environment variables into typed structs. Every bad
//! variable is reported before the process exits; tests pass their own variables instead of
//! mutating the process environment.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use htsprep_shared::jobstore::JobPolicy;
use htsprep_shared::outbound::SourcePolicy;
use htsprep_shared::settings::{ConfigError, EnvReader};
use htsprep_shared::storage::StorageConfig;

use crate::executor::DialPolicy;
use crate::fleet::ecs::EcsSettings;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Clone, PartialEq)]
pub struct Config {
    /// `HTSPREP_LISTEN`: the address the HTTP API binds.
    pub listen: SocketAddr,
    /// `HTSPREP_LISTEN_BACKLOG`: connections the kernel queues before the API accepts them
    /// (default 4096, capped by `net.core.somaxconn`). A page of tracks opening at once, or many
    /// viewers, must not overflow it: an overflowing queue drops handshakes, and their clients
    /// wait out a retransmission (200 ms and more).
    pub listen_backlog: u32,
    pub storage: StorageConfig,
    /// `HTSPREP_ADMIN_TOKEN`: bearer token for admin endpoints; admin endpoints are refused
    /// when unset.
    pub admin_token: Option<String>,
    pub jobs: JobSettings,
    pub fleet: FleetSettings,
    /// `HTSPREP_CATALOG_CACHE_SECONDS`: how long a catalog lookup is reused (default 5; 0 turns
    /// the cache off).
    pub catalog_cache: Duration,
    /// What upstream sources the API may read (passthrough, `?raw=true`, sidecars), shared with
    /// the workers it starts: `HTSPREP_FILE_ROOTS`, `HTSPREP_ALLOW_PRIVATE_SOURCES`,
    /// `HTSPREP_SOURCE_*_TIMEOUT_SECONDS`.
    pub sources: SourcePolicy,
    /// `HTSPREP_S3_REDIRECT` (default false) and `HTSPREP_S3_REDIRECT_SECONDS` (default 300):
    /// with artifacts in S3, `/data` and `/index` answer a ready artifact with `307` to a
    /// presigned GetObject URL valid this long, and htsget tickets name such URLs: the bytes go
    /// from S3 to the client, not through the API.
    pub s3_redirect: Option<Duration>,
}

/// How jobs are claimed, retried and bounded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSettings {
    /// `HTSPREP_STALE_AFTER_SECONDS`: an active job with no heartbeat for this long is reclaimed
    /// (default 60).
    pub stale_after: Duration,
    /// `HTSPREP_MAX_ATTEMPTS`: attempts per job before it fails for good (default 3).
    pub max_attempts: u32,
    /// `HTSPREP_MAX_ACTIVE_WORKFLOWS`: workflows this API drives at once; more get 429 (default 64).
    pub max_active: usize,
    /// `HTSPREP_MAX_WAIT_SECONDS`: the longest `?wait=` honoured (default 120).
    pub max_wait: Duration,
    /// `HTSPREP_QUEUE_DEADLINE_SECONDS`: how long a job may wait for a worker to accept it before
    /// it fails with a capacity error (default 4 h). Waiting costs no attempt.
    pub queue_deadline: Duration,
    /// `HTSPREP_SORT_MEMORY`: `sort -S` for every job (default 512M).
    pub sort_memory: u64,
    /// `HTSPREP_SAMTOOLS_SORT_MEMORY`: `samtools sort -m` for every job (default 512M).
    pub samtools_sort_memory: u64,
    /// `WORKFLOW_DURATION_CAP_SECONDS`: a job is killed after this long (default 3600).
    pub duration_cap: Duration,
    /// `HTSPREP_RECONCILE_SECONDS`: how often stale jobs are looked for (default 30).
    pub reconcile_every: Duration,
    /// `HTSPREP_SHUTDOWN_GRACE_SECONDS`: in-flight dispatches get this long on shutdown (default 25).
    pub shutdown_grace: Duration,
}

impl JobSettings {
    /// The job lifecycle's policy (staleness and attempts), for the claim path, the driver and
    /// the reconciler alike.
    pub fn policy(&self) -> JobPolicy {
        JobPolicy {
            stale_after: self.stale_after,
            max_attempts: self.max_attempts,
        }
    }
}

/// The fleet: worker processes on this host, or Fargate tasks when `ECS_CLUSTER` is set.
#[derive(Clone, PartialEq)]
pub struct FleetSettings {
    /// `ECS_CLUSTER` and the `ECS_WORKER_*` variables: run workers as ECS tasks.
    pub ecs: Option<EcsSettings>,
    /// `HTSPREP_WORKER_BIN`: the worker binary (default: `htsprep-worker` beside this binary).
    pub worker_bin: PathBuf,
    /// `HTSPREP_MAX_WORKERS`: workers (processes or tasks) running or starting at most
    /// (default 2).
    pub max_workers: usize,
    /// `HTSPREP_WORKER_JOBS`: jobs per worker at once (default 2).
    pub jobs_per_worker: usize,
    /// `HTSPREP_WORKER_IDLE_SECONDS`: an idle worker stops after this long (default 120).
    pub idle_timeout: Duration,
    /// `HTSPREP_MIN_IDLE_WORKERS`: idle workers kept ready for cold jobs, within the maximum
    /// (default 0: workers start when jobs come).
    pub min_idle: usize,
    /// `HTSPREP_LOCAL_WORKER_NICE`: the CPU niceness local worker processes (and their stages)
    /// run at, 0-19 (default 10): on a machine shared with the API, requests are answered first
    /// and the preparation takes the rest.
    pub local_nice: u8,
    /// `HTSPREP_HEARTBEAT_SECONDS`: how often workers heartbeat their job (default 10).
    pub heartbeat: Duration,
    /// `HTSPREP_WORKER_TOKEN`: the token workers require on gRPC (default: a random one kept in
    /// `{data dir}/worker-token`, so a restarted API can still talk to the workers it left).
    pub token: Option<String>,
    /// `HTSPREP_LOOPBACK_ONLY`: dial only loopback worker addresses; a job offered to any other
    /// fails with the reason (tests and benches turn it on; default off).
    pub dial: DialPolicy,
}

impl fmt::Debug for FleetSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetSettings")
            .field("ecs", &self.ecs)
            .field("worker_bin", &self.worker_bin)
            .field("max_workers", &self.max_workers)
            .field("jobs_per_worker", &self.jobs_per_worker)
            .field("idle_timeout", &self.idle_timeout)
            .field("min_idle", &self.min_idle)
            .field("local_nice", &self.local_nice)
            .field("heartbeat", &self.heartbeat)
            .field("token", &"<redacted>")
            .field("dial", &self.dial)
            .finish()
    }
}

fn default_worker_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("htsprep-worker")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("htsprep-worker"))
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("listen_backlog", &self.listen_backlog)
            .field("storage", &self.storage)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Config {
    /// Parses the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&EnvReader::process_env())
    }

    pub fn from_vars(vars: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut env = EnvReader::new(vars);
        let listen = env.parse(
            "HTSPREP_LISTEN",
            DEFAULT_LISTEN.parse().expect("valid default"),
            "an address like 127.0.0.1:8080",
        );
        let listen_backlog =
            u32::try_from(env.count("HTSPREP_LISTEN_BACKLOG", 4096)).unwrap_or(u32::MAX);
        let storage = StorageConfig::read(&mut env);
        let admin_token = env.optional("HTSPREP_ADMIN_TOKEN");
        if admin_token.as_ref().is_some_and(|t| t.len() < 16) {
            env.error("HTSPREP_ADMIN_TOKEN", "must be at least 16 characters");
        }
        let secs = Duration::from_secs;
        let jobs = JobSettings {
            stale_after: env.seconds("HTSPREP_STALE_AFTER_SECONDS", secs(60)),
            max_attempts: u32::try_from(env.count("HTSPREP_MAX_ATTEMPTS", 3)).unwrap_or(u32::MAX),
            max_active: env.count("HTSPREP_MAX_ACTIVE_WORKFLOWS", 64),
            max_wait: env.seconds("HTSPREP_MAX_WAIT_SECONDS", secs(120)),
            queue_deadline: env.seconds("HTSPREP_QUEUE_DEADLINE_SECONDS", secs(4 * 3600)),
            sort_memory: env.bytes("HTSPREP_SORT_MEMORY", 512 << 20),
            samtools_sort_memory: env.bytes("HTSPREP_SAMTOOLS_SORT_MEMORY", 512 << 20),
            duration_cap: env.seconds("WORKFLOW_DURATION_CAP_SECONDS", secs(3600)),
            reconcile_every: env.seconds("HTSPREP_RECONCILE_SECONDS", secs(30)),
            shutdown_grace: env.seconds("HTSPREP_SHUTDOWN_GRACE_SECONDS", secs(25)),
        };
        for (var, v) in [
            ("HTSPREP_SORT_MEMORY", jobs.sort_memory),
            ("HTSPREP_SAMTOOLS_SORT_MEMORY", jobs.samtools_sort_memory),
        ] {
            if v < 1 << 20 {
                env.error(var, "must be at least 1M");
            }
        }
        for (var, v) in [
            ("HTSPREP_QUEUE_DEADLINE_SECONDS", jobs.queue_deadline),
            ("HTSPREP_STALE_AFTER_SECONDS", jobs.stale_after),
            ("WORKFLOW_DURATION_CAP_SECONDS", jobs.duration_cap),
            ("HTSPREP_RECONCILE_SECONDS", jobs.reconcile_every),
        ] {
            if v.is_zero() {
                env.error(var, "must be at least 1");
            }
        }
        let ecs = EcsSettings::read(&mut env);
        let explicit_token = env.optional("HTSPREP_WORKER_TOKEN");
        if ecs.is_some() {
            // Fargate workers share nothing with this process but the stores and the token.
            let needs = [
                (
                    "HTSPREP_WORKER_TOKEN",
                    explicit_token.is_none(),
                    "the gRPC token the worker task definition also sets (from a secret)",
                ),
                (
                    "WORKFLOW_S3_BUCKET",
                    storage.s3.is_none(),
                    "workers on ECS publish artifacts to S3",
                ),
                (
                    "MONGODB_URI",
                    storage.mongo.is_none(),
                    "workers on ECS record jobs in MongoDB",
                ),
            ];
            for (var, missing, why) in needs {
                if missing {
                    env.error(var, format!("must be set with ECS_CLUSTER: {why}"));
                }
            }
        }
        if explicit_token.as_ref().is_some_and(|t| t.len() < 16) {
            env.error("HTSPREP_WORKER_TOKEN", "must be at least 16 characters");
        }
        let local_nice = env.parse("HTSPREP_LOCAL_WORKER_NICE", 10, "a niceness from 0 to 19");
        if local_nice > 19 {
            env.error("HTSPREP_LOCAL_WORKER_NICE", "must be from 0 to 19");
        }
        let fleet = FleetSettings {
            ecs,
            worker_bin: env.parse_with("HTSPREP_WORKER_BIN", default_worker_bin(), |s| {
                Ok(PathBuf::from(s))
            }),
            max_workers: env.count("HTSPREP_MAX_WORKERS", 2),
            jobs_per_worker: env.count("HTSPREP_WORKER_JOBS", 2),
            idle_timeout: env.seconds("HTSPREP_WORKER_IDLE_SECONDS", secs(120)),
            min_idle: env.parse("HTSPREP_MIN_IDLE_WORKERS", 0, "a number of workers"),
            local_nice,
            heartbeat: env.seconds("HTSPREP_HEARTBEAT_SECONDS", secs(10)),
            token: explicit_token,
            dial: if env.flag("HTSPREP_LOOPBACK_ONLY", false) {
                DialPolicy::LoopbackOnly
            } else {
                DialPolicy::Any
            },
        };
        if let Err(e) = crate::warm::check(fleet.min_idle, fleet.max_workers) {
            env.error("HTSPREP_MIN_IDLE_WORKERS", e.to_string());
        }
        if fleet.heartbeat.is_zero() || fleet.heartbeat >= jobs.stale_after {
            env.error(
                "HTSPREP_HEARTBEAT_SECONDS",
                format!(
                    "must be at least 1 and below HTSPREP_STALE_AFTER_SECONDS ({}s)",
                    jobs.stale_after.as_secs()
                ),
            );
        }
        let catalog_cache = env.seconds("HTSPREP_CATALOG_CACHE_SECONDS", secs(5));
        let sources = SourcePolicy::read(&mut env);
        let redirect_for = env.seconds("HTSPREP_S3_REDIRECT_SECONDS", secs(300));
        // SigV4 presigned URLs last at most 7 days.
        if redirect_for.is_zero() || redirect_for > secs(7 * 86_400) {
            env.error(
                "HTSPREP_S3_REDIRECT_SECONDS",
                "must be from 1 to 604800 (7 days, the longest a presigned URL lasts)",
            );
        }
        let s3_redirect = env
            .flag("HTSPREP_S3_REDIRECT", false)
            .then_some(redirect_for);
        if s3_redirect.is_some() && storage.s3.is_none() {
            env.error(
                "HTSPREP_S3_REDIRECT",
                "needs artifacts in S3 (WORKFLOW_S3_BUCKET): only S3 hands out presigned URLs",
            );
        }
        env.finish()?;
        Ok(Self {
            listen,
            listen_backlog,
            storage,
            admin_token,
            jobs,
            fleet,
            catalog_cache,
            sources,
            s3_redirect,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn nothing_set_means_embedded_defaults() {
        let c = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(c.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(c.storage.data_dir, PathBuf::from("./data"));
        assert_eq!(
            c.storage.database_path(),
            PathBuf::from("./data/htsprep.db")
        );
        assert!(c.admin_token.is_none());
        assert_eq!(c.listen_backlog, 4096);
        assert_eq!(c.fleet.local_nice, 10);
    }

    #[test]
    fn a_niceness_outside_0_to_19_is_refused() {
        for bad in ["20", "-1", "high"] {
            let err = Config::from_vars(&vars(&[("HTSPREP_LOCAL_WORKER_NICE", bad)])).unwrap_err();
            assert!(
                err.to_string().contains("HTSPREP_LOCAL_WORKER_NICE"),
                "{bad}: {err}"
            );
        }
        let c = Config::from_vars(&vars(&[
            ("HTSPREP_LOCAL_WORKER_NICE", "0"),
            ("HTSPREP_LISTEN_BACKLOG", "128"),
        ]))
        .unwrap();
        assert_eq!((c.fleet.local_nice, c.listen_backlog), (0, 128));
    }

    #[test]
    fn a_warm_pool_fits_in_the_worker_maximum() {
        assert_eq!(Config::from_vars(&vars(&[])).unwrap().fleet.min_idle, 0);
        for bad in ["3", "-1", "many"] {
            let err = Config::from_vars(&vars(&[
                ("HTSPREP_MIN_IDLE_WORKERS", bad),
                ("HTSPREP_MAX_WORKERS", "2"),
            ]))
            .unwrap_err();
            assert!(
                err.to_string().contains("HTSPREP_MIN_IDLE_WORKERS"),
                "{bad}: {err}"
            );
        }
        let err = Config::from_vars(&vars(&[("HTSPREP_MIN_IDLE_WORKERS", "3")])).unwrap_err();
        assert!(
            err.to_string().contains("exceeds the worker maximum of 2"),
            "{err}"
        );
        let c = Config::from_vars(&vars(&[
            ("HTSPREP_MIN_IDLE_WORKERS", "4"),
            ("HTSPREP_MAX_WORKERS", "4"),
        ]))
        .unwrap();
        assert_eq!(c.fleet.min_idle, 4);
    }

    #[test]
    fn every_bad_variable_is_reported_at_once() {
        let err = Config::from_vars(&vars(&[
            ("HTSPREP_LISTEN", "localhost"),
            ("HTSPREP_ADMIN_TOKEN", "short"),
        ]))
        .unwrap_err();
        let vars: Vec<_> = err.0.iter().map(|e| e.var).collect();
        assert_eq!(vars, ["HTSPREP_LISTEN", "HTSPREP_ADMIN_TOKEN"]);
        let text = err.to_string();
        assert!(
            text.contains("HTSPREP_LISTEN: \"localhost\": expected an address"),
            "{text}"
        );
    }

    #[test]
    fn ecs_cluster_selects_the_ecs_fleet_with_its_settings() {
        let c = Config::from_vars(&vars(&[
            ("ECS_CLUSTER", "htsprep"),
            ("ECS_WORKER_TASK_DEFINITION", "htsprep-worker:3"),
            ("ECS_WORKER_SUBNETS", "subnet-a, subnet-b"),
            ("ECS_WORKER_SECURITY_GROUPS", "sg-1"),
            ("ECS_WORKER_ASSIGN_PUBLIC_IP", "ENABLED"),
            (
                "ECS_CAPACITY_PROVIDER_STRATEGY",
                "FARGATE:1:1,FARGATE_SPOT:3",
            ),
            ("HTSPREP_WORKER_TOKEN", "0123456789abcdef0123"),
            ("WORKFLOW_S3_BUCKET", "artifacts"),
            ("MONGODB_URI", "mongodb://db:27017"),
        ]))
        .unwrap();
        let ecs = c.fleet.ecs.expect("ECS fleet");
        assert_eq!(ecs.cluster, "htsprep");
        assert_eq!(ecs.subnets, ["subnet-a", "subnet-b"]);
        assert_eq!(ecs.security_groups, ["sg-1"]);
        assert!(ecs.assign_public_ip && ecs.require_healthy);
        assert_eq!((ecs.grpc_port, ecs.started_by.as_str()), (50051, "htsprep"));
        assert!(ecs.describe_per_second <= crate::fleet::ecs::ECS_DESCRIBE_LIMIT);
        let providers: Vec<_> = ecs
            .capacity_provider_strategy
            .iter()
            .map(|i| (i.provider.as_str(), i.weight, i.base))
            .collect();
        assert_eq!(providers, [("FARGATE", 1, 1), ("FARGATE_SPOT", 3, 0)]);
        assert!(Config::from_vars(&vars(&[])).unwrap().fleet.ecs.is_none());
    }

    #[test]
    fn missing_and_inconsistent_ecs_settings_are_reported_together() {
        let err = Config::from_vars(&vars(&[
            ("ECS_CLUSTER", "htsprep"),
            ("ECS_WORKER_ASSIGN_PUBLIC_IP", "maybe"),
            (
                "ECS_CAPACITY_PROVIDER_STRATEGY",
                "FARGATE:1:1,FARGATE_SPOT:3:1",
            ),
            ("HTSPREP_ECS_DESCRIBE_PER_SECOND", "50"),
        ]))
        .unwrap_err();
        let mut named: Vec<_> = err.0.iter().map(|e| e.var).collect();
        named.sort_unstable();
        assert_eq!(
            named,
            [
                "ECS_CAPACITY_PROVIDER_STRATEGY",
                "ECS_WORKER_ASSIGN_PUBLIC_IP",
                "ECS_WORKER_SECURITY_GROUPS",
                "ECS_WORKER_SUBNETS",
                "ECS_WORKER_TASK_DEFINITION",
                "HTSPREP_ECS_DESCRIBE_PER_SECOND",
                "HTSPREP_WORKER_TOKEN",
                "MONGODB_URI",
                "WORKFLOW_S3_BUCKET",
            ]
        );
        let text = err.to_string();
        assert!(
            text.contains("workers on ECS publish artifacts to S3")
                && text.contains("only one capacity provider may have a base"),
            "{text}"
        );
        // Worker settings without a cluster are a mistake, not a silent local fleet.
        let err = Config::from_vars(&vars(&[("ECS_WORKER_SUBNETS", "subnet-a")])).unwrap_err();
        assert_eq!(err.0[0].var, "ECS_CLUSTER");
        assert!(err.to_string().contains("ECS_WORKER_SUBNETS"));
    }

    #[test]
    fn redirects_to_s3_need_artifacts_in_s3_and_a_presignable_lifetime() {
        let c = Config::from_vars(&vars(&[
            ("WORKFLOW_S3_BUCKET", "artifacts"),
            ("HTSPREP_S3_REDIRECT", "true"),
            ("HTSPREP_S3_REDIRECT_SECONDS", "60"),
        ]))
        .unwrap();
        assert_eq!(c.s3_redirect, Some(Duration::from_secs(60)));
        let default = Config::from_vars(&vars(&[("WORKFLOW_S3_BUCKET", "artifacts")])).unwrap();
        assert_eq!(default.s3_redirect, None);
        let err = Config::from_vars(&vars(&[
            ("HTSPREP_S3_REDIRECT", "true"),
            ("HTSPREP_S3_REDIRECT_SECONDS", "604801"),
        ]))
        .unwrap_err();
        let named: Vec<_> = err.0.iter().map(|e| e.var).collect();
        assert_eq!(
            named,
            ["HTSPREP_S3_REDIRECT_SECONDS", "HTSPREP_S3_REDIRECT"],
            "{err}"
        );
        assert!(err.to_string().contains("WORKFLOW_S3_BUCKET"), "{err}");
    }

    #[test]
    fn the_admin_token_is_never_printed() {
        let c =
            Config::from_vars(&vars(&[("HTSPREP_ADMIN_TOKEN", "s3cret-s3cret-s3cret")])).unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
