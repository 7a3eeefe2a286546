//! Runs one pipeline stage: a constant bash script under `bash -o pipefail`, with every path
//! passed as a positional argument (never interpolated into the script), `LC_ALL=C`, in its own
//! process group. On cancellation the whole group gets SIGTERM, then SIGKILL after a grace period.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// How much of a stage's stderr is kept for the job record.
pub const STDERR_TAIL: usize = 4096;

/// One stage invocation.
#[derive(Clone, Debug)]
pub struct StageCommand {
    /// The stage name; also `$0` inside the script.
    pub name: String,
    /// The script text: a constant from `worker/pipelines/`.
    pub script: &'static str,
    /// Positional arguments (`$1`, `$2`, ...): paths chosen by the worker and fixed words.
    pub args: Vec<OsString>,
    /// The memory settings (`SORT_MEM`, `SAMTOOLS_SORT_MEM`, ...). Scripts see only these,
    /// `PATH`, `LC_ALL=C` and `TMPDIR`: never the worker's own environment (its database URI,
    /// token or credentials).
    pub env: Vec<(String, String)>,
    /// Working and temporary directory (per job; must exist).
    pub tmp_dir: PathBuf,
}

impl StageCommand {
    /// A display form for logs and job timelines (not executed).
    pub fn display(&self) -> String {
        let args: Vec<String> = self
            .args
            .iter()
            .map(|a| shell_quote(&a.to_string_lossy()))
            .collect();
        format!("bash -o pipefail {}.sh {}", self.name, args.join(" "))
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:".contains(&b))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[derive(Clone, Debug)]
pub struct StageOutput {
    pub stdout: String,
    pub stderr_tail: String,
    pub duration: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("could not start bash for stage {stage}: {source}")]
    Spawn {
        stage: String,
        #[source]
        source: std::io::Error,
    },
    #[error("stage {stage} failed with exit status {exit_status}")]
    Failed {
        stage: String,
        exit_status: i32,
        stderr_tail: String,
        duration: Duration,
    },
    #[error("stage {stage} was killed by signal {signal}")]
    Killed {
        stage: String,
        signal: i32,
        stderr_tail: String,
        duration: Duration,
    },
    #[error("stage {stage} was cancelled")]
    Cancelled { stage: String, stderr_tail: String },
}

/// Kills the process group if the stage future is dropped while the group may still run.
struct GroupGuard(Option<i32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }
}

async fn read_tail(mut r: impl AsyncRead + Unpin, keep: usize) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > keep * 2 {
                    buf.drain(..buf.len() - keep);
                }
            }
        }
    }
    if buf.len() > keep {
        buf.drain(..buf.len() - keep);
    }
    String::from_utf8_lossy(&buf).trim_end().to_owned()
}

/// The `PATH` stage scripts search: the worker's own, or the usual directories.
fn stage_path() -> std::ffi::OsString {
    std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into())
}

/// Runs a stage to completion, or until `cancel` fires.
pub async fn run_stage(
    cmd: &StageCommand,
    cancel: &CancellationToken,
    kill_grace: Duration,
) -> Result<StageOutput, StageError> {
    let started = Instant::now();
    let mut child = Command::new("bash")
        .arg("-o")
        .arg("pipefail")
        .arg("-c")
        .arg(cmd.script)
        .arg(&cmd.name)
        .args(&cmd.args)
        .env_clear()
        .env("PATH", stage_path())
        .env("LC_ALL", "C")
        .env("TMPDIR", &cmd.tmp_dir)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&cmd.tmp_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| StageError::Spawn {
            stage: cmd.name.clone(),
            source,
        })?;
    let pgid = child.id().and_then(|id| i32::try_from(id).ok());
    let mut guard = GroupGuard(pgid);
    let stdout = tokio::spawn(read_tail(child.stdout.take().expect("piped"), 64 * 1024));
    let stderr = tokio::spawn(read_tail(child.stderr.take().expect("piped"), STDERR_TAIL));

    let status = tokio::select! {
        status = child.wait() => Some(status),
        () = cancel.cancelled() => None,
    };
    let status = match status {
        Some(status) => status,
        None => {
            if let Some(pgid) = pgid {
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGTERM);
            }
            if tokio::time::timeout(kill_grace, child.wait())
                .await
                .is_err()
            {
                if let Some(pgid) = pgid {
                    let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
                }
                let _ = child.wait().await;
            }
            // Anything the group left behind dies with it.
            drop(guard);
            let stderr_tail = stderr.await.unwrap_or_default();
            return Err(StageError::Cancelled {
                stage: cmd.name.clone(),
                stderr_tail,
            });
        }
    };
    // The script has exited; make sure no stray member of its group outlives it.
    if let Some(pgid) = guard.0.take() {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    let stdout = stdout.await.unwrap_or_default();
    let stderr_tail = stderr.await.unwrap_or_default();
    let duration = started.elapsed();
    match status {
        Ok(s) if s.success() => Ok(StageOutput {
            stdout,
            stderr_tail,
            duration,
        }),
        Ok(s) => {
            use std::os::unix::process::ExitStatusExt;
            match (s.code(), s.signal()) {
                (Some(code), _) => Err(StageError::Failed {
                    stage: cmd.name.clone(),
                    exit_status: code,
                    stderr_tail,
                    duration,
                }),
                (None, Some(signal)) => Err(StageError::Killed {
                    stage: cmd.name.clone(),
                    signal,
                    stderr_tail,
                    duration,
                }),
                (None, None) => Err(StageError::Failed {
                    stage: cmd.name.clone(),
                    exit_status: -1,
                    stderr_tail,
                    duration,
                }),
            }
        }
        Err(source) => Err(StageError::Spawn {
            stage: cmd.name.clone(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(script: &'static str, args: &[&str], dir: &std::path::Path) -> StageCommand {
        StageCommand {
            name: "test-stage".into(),
            script,
            args: args.iter().map(OsString::from).collect(),
            env: vec![],
            tmp_dir: dir.to_owned(),
        }
    }

    #[tokio::test]
    async fn scripts_see_a_minimal_environment() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = stage("env", &[], dir.path());
        cmd.env = vec![("SORT_MEM".into(), "64M".into())];
        let out = run_stage(&cmd, &CancellationToken::new(), Duration::from_secs(1))
            .await
            .unwrap();
        let mut names: Vec<&str> = out
            .stdout
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k))
            .collect();
        names.sort_unstable();
        // bash adds PWD, SHLVL and _ itself; nothing of the worker's environment (this test
        // process has HOME, CARGO_* and more) reaches the script.
        assert_eq!(
            names,
            ["LC_ALL", "PATH", "PWD", "SHLVL", "SORT_MEM", "TMPDIR", "_"],
            "{}",
            out.stdout
        );
        // (The worker's environment here is the test's, which has variables to leak.)
        assert!(std::env::vars().any(|(k, _)| k.starts_with("CARGO")));
    }

    #[tokio::test]
    async fn arguments_are_data_never_code() {
        let dir = tempfile::tempdir().unwrap();
        let evil = "x$(touch pwned)`touch pwned2`;touch pwned3";
        let out = run_stage(
            &stage(
                r#"printf '%s' "$1" > "$TMPDIR/arg"; echo "$0""#,
                &[evil],
                dir.path(),
            ),
            &CancellationToken::new(),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
        assert_eq!(out.stdout.trim(), "test-stage");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("arg")).unwrap(),
            evil
        );
        for f in ["pwned", "pwned2", "pwned3"] {
            assert!(!dir.path().join(f).exists(), "{f} was created");
        }
    }

    #[tokio::test]
    async fn pipefail_and_c_locale_are_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let err = run_stage(
            &stage("false | cat; echo unreachable", &[], dir.path()),
            &CancellationToken::new(),
            Duration::from_secs(1),
        )
        .await;
        // Without `set -e` the script continues, but the pipeline's status is 1.
        assert!(err.is_ok());
        let err = run_stage(
            &stage("echo oops >&2; false | cat", &[], dir.path()),
            &CancellationToken::new(),
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        match err {
            StageError::Failed {
                exit_status,
                stderr_tail,
                ..
            } => {
                assert_eq!(exit_status, 1);
                assert_eq!(stderr_tail, "oops");
            }
            other => panic!("unexpected {other:?}"),
        }
        let out = run_stage(
            &stage("echo $LC_ALL", &[], dir.path()),
            &CancellationToken::new(),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
        assert_eq!(out.stdout.trim(), "C");
    }

    #[tokio::test]
    async fn cancellation_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let cancel = CancellationToken::new();
        // A grandchild that ignores SIGTERM must still die (SIGKILL after the grace period).
        let script = r#"(trap '' TERM; sleep 30; touch "$TMPDIR/survived") & echo $! > "$TMPDIR/pid"; sleep 30"#;
        let cmd = stage(script, &[], dir.path());
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            c2.cancel();
        });
        let err = run_stage(&cmd, &cancel, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(err, StageError::Cancelled { .. }), "{err:?}");
        let pid: i32 = std::fs::read_to_string(dir.path().join("pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut gone = false;
        for _ in 0..50 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Gone, or a zombie waiting for init to reap it.
            if stat.is_empty()
                || stat
                    .rsplit(')')
                    .next()
                    .is_some_and(|s| s.trim_start().starts_with('Z'))
            {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(gone, "grandchild {pid} outlived cancellation");
    }

    #[tokio::test]
    async fn stderr_keeps_only_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let err = run_stage(
            &stage(
                "for i in $(seq 1 5000); do echo line-$i >&2; done; exit 3",
                &[],
                dir.path(),
            ),
            &CancellationToken::new(),
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        let StageError::Failed {
            exit_status,
            stderr_tail,
            ..
        } = err
        else {
            panic!()
        };
        assert_eq!(exit_status, 3);
        assert!(stderr_tail.len() <= STDERR_TAIL);
        assert!(stderr_tail.ends_with("line-5000"));
        assert!(!stderr_tail.contains("line-1\n"));
    }
}
