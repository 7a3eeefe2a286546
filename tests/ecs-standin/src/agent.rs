//! The agent: runs each launched task's container as a real process, the way the ECS agent on
//! Fargate would, but on this host. The task moves PROVISIONING → PENDING → RUNNING; its
//! container health check runs as configured and sets `healthStatus`; `StopTask` sends SIGTERM,
//! then SIGKILL after the container's stop timeout; when the process exits the task is STOPPED
//! with its exit code and reason.
//!
//! Each task has a network of its own on Fargate. Here it gets a loopback address of its own
//! (127.x.y.z all reach `lo`): any listen address in its environment that names every interface
//! or loopback (`0.0.0.0:P`, `127.0.0.1:P`) is rewritten to that address, which is also the
//! task's `privateIPv4Address`. Its filesystem is a directory of its own (`{root}` in an image's
//! environment).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::Shared;
use crate::model::{ContainerDef, HealthCheck, Task, now_epoch};

/// How long each of PROVISIONING and PENDING lasts.
const STEP: Duration = Duration::from_millis(150);

/// Starts the agent for a task just launched (when the stand-in runs tasks).
pub(crate) fn launch(shared: &Arc<Shared>, arn: &str) {
    if shared.config.images.is_empty() {
        return;
    }
    let stop = shared.stop_token(arn);
    let (shared2, arn) = (Arc::clone(shared), arn.to_owned());
    shared.tracker.spawn(async move {
        let outcome = tokio::select! {
            o = run(&shared2, &arn, &stop) => o,
            () = shared2.stop.cancelled() => Ended::Abandoned,
        };
        // A container's processes end with it (its cgroup), its pipeline's children too.
        if let Some(t) = shared2
            .state
            .lock()
            .expect("stand-in state")
            .tasks
            .get(&arn)
        {
            reap(&shared2.root.path().join(&t.id));
        }
        finish(&shared2, &arn, outcome);
    });
}

enum Ended {
    /// The task never started its container.
    FailedToStart(&'static str, String),
    /// The container exited.
    Exited(ExitStatus),
    /// The stand-in itself is stopping.
    Abandoned,
}

fn set(shared: &Shared, arn: &str, f: impl FnOnce(&mut Task)) -> Option<Task> {
    let mut s = shared.state.lock().expect("stand-in state");
    let t = s.tasks.get_mut(arn)?;
    f(t);
    Some(t.clone())
}

fn finish(shared: &Shared, arn: &str, outcome: Ended) {
    set(shared, arn, |t| {
        let user = t.stop_code.as_deref() == Some("UserInitiated");
        match outcome {
            Ended::FailedToStart(code, reason) => {
                t.stop_code = Some(code.into());
                t.stopped_reason = Some(reason);
            }
            Ended::Exited(status) => {
                use std::os::unix::process::ExitStatusExt;
                t.exit_code = status.code().or_else(|| status.signal().map(|s| 128 + s));
                if !user {
                    t.stop_code = Some("EssentialContainerExited".into());
                    t.stopped_reason = Some("Essential container in task exited".into());
                }
            }
            Ended::Abandoned => {
                t.stopped_reason = Some("the ECS stand-in stopped".into());
            }
        }
        t.last_status = "STOPPED".into();
        t.desired_status = "STOPPED".into();
        t.stopped_at = Some(now_epoch());
        t.pid = None;
    });
}

async fn run(shared: &Arc<Shared>, arn: &str, stop: &CancellationToken) -> Ended {
    let stopped_early = || Ended::FailedToStart("UserInitiated", "Task stopped by user".into());
    tokio::time::sleep(STEP).await;
    let Some(task) = set(shared, arn, |t| {
        if t.desired_status == "RUNNING" {
            t.last_status = "PENDING".into();
        }
    }) else {
        return Ended::Abandoned;
    };
    if stop.is_cancelled() {
        return stopped_early();
    }
    let Some(container) = task
        .task_definition
        .as_ref()
        .and_then(|d| d.containers.first())
        .cloned()
    else {
        return Ended::FailedToStart("TaskFailedToStart", "no container definition".into());
    };
    let Some(image) = shared.config.images.get(&container.image) else {
        return Ended::FailedToStart(
            "TaskFailedToStart",
            format!(
                "CannotPullContainerError: pull image manifest has been retried 5 time(s): {} not found",
                container.image
            ),
        );
    };
    let root = shared.root.path().join(&task.id);
    if let Err(e) = std::fs::create_dir_all(&root) {
        return Ended::FailedToStart("TaskFailedToStart", format!("task directory: {e}"));
    }
    let env = match environment(shared, &task, &container, &image.env, &root) {
        Ok(env) => env,
        Err(reason) => return Ended::FailedToStart("TaskFailedToStart", reason),
    };
    tokio::time::sleep(STEP).await;
    if stop.is_cancelled() {
        return stopped_early();
    }
    let args = task
        .command_override
        .clone()
        .filter(|c| !c.is_empty())
        .or_else(|| (!container.command.is_empty()).then(|| container.command.clone()))
        .unwrap_or_else(|| image.command.clone());
    let mut child = match Command::new(&image.binary)
        .args(&args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return Ended::FailedToStart(
                "TaskFailedToStart",
                format!("CannotStartContainerError: {}: {e}", image.binary.display()),
            );
        }
    };
    let label = format!("ecs-standin task {}", &task.id[task.id.len() - 6..]);
    forward(child.stdout.take(), label.clone());
    forward(child.stderr.take(), label);
    let pid = child.id();
    set(shared, arn, |t| {
        t.pid = pid;
        if t.desired_status == "RUNNING" {
            t.last_status = "RUNNING".into();
        }
        t.started_at = Some(now_epoch());
        t.health = Some("UNKNOWN".into());
    });
    let checks = CancellationToken::new();
    if let Some(check) = container.health_check.clone() {
        let (shared, arn, checks) = (Arc::clone(shared), arn.to_owned(), checks.clone());
        let (binary, path_in_image) = (image.binary.clone(), image.path_in_image.clone());
        let env = env.clone();
        shared.tracker.clone().spawn(async move {
            tokio::select! {
                () = health_loop(&shared, &arn, &check, &binary, &path_in_image, &env, &root) => {}
                () = checks.cancelled() => {}
            }
        });
    }
    let _stop_checks = checks.drop_guard();
    tokio::select! {
        status = child.wait() => return exited(status),
        () = stop.cancelled() => {}
    }
    signal(pid, Signal::SIGTERM);
    let grace = container.stop_timeout;
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => exited(status),
        Err(_) => {
            signal(pid, Signal::SIGKILL);
            exited(child.wait().await)
        }
    }
}

/// SIGKILLs every process whose working directory is inside `dir` (a task's filesystem): what
/// is left of a container whose main process ended.
pub(crate) fn reap(dir: &Path) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(dir)) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

fn exited(status: std::io::Result<ExitStatus>) -> Ended {
    match status {
        Ok(s) => Ended::Exited(s),
        Err(e) => Ended::FailedToStart("EssentialContainerExited", format!("wait: {e}")),
    }
}

fn signal(pid: Option<u32>, sig: Signal) {
    if let Some(pid) = pid {
        let _ = kill(Pid::from_raw(pid as i32), sig);
    }
}

/// Copies a child's output to this process's stderr, each line labelled with its task.
fn forward(from: Option<impl tokio::io::AsyncRead + Unpin + Send + 'static>, label: String) {
    if let Some(from) = from {
        tokio::spawn(async move {
            let mut lines = BufReader::new(from).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[{label}] {line}");
            }
        });
    }
}

/// The container's environment: the image's, the task definition's, its secrets, the task's
/// overrides, and the task metadata endpoint; listen addresses moved to the task's address.
fn environment(
    shared: &Shared,
    task: &Task,
    container: &ContainerDef,
    image_env: &[(String, String)],
    root: &Path,
) -> Result<Vec<(String, String)>, String> {
    let mut env: Vec<(String, String)> = vec![(
        "PATH".into(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
    )];
    let root = root.to_string_lossy();
    env.extend(
        image_env
            .iter()
            .map(|(k, v)| (k.clone(), v.replace("{root}", &root))),
    );
    env.extend(container.environment.iter().cloned());
    for (name, from) in &container.secrets {
        match shared.config.secrets.get(from) {
            Some(v) => env.push((name.clone(), v.clone())),
            None => {
                return Err(format!(
                    "ResourceInitializationError: unable to pull secrets or registry auth: \
                     retrieve secret from {from}: ResourceNotFoundException"
                ));
            }
        }
    }
    env.extend(task.env_overrides.iter().cloned());
    env.push((
        "ECS_CONTAINER_METADATA_URI_V4".into(),
        format!("http://{}/v4/{}", shared.addr, task.id),
    ));
    // Later entries win, as in a container's environment.
    let mut merged: Vec<(String, String)> = Vec::new();
    for (k, v) in env {
        let v = own_address(&v, &task.ip).unwrap_or(v);
        merged.retain(|(existing, _)| *existing != k);
        merged.push((k, v));
    }
    Ok(merged)
}

/// `0.0.0.0:P` or `127.0.0.1:P` (any loopback) becomes `{task ip}:P`.
fn own_address(value: &str, ip: &str) -> Option<String> {
    let addr: SocketAddr = value.parse().ok()?;
    (addr.ip().is_unspecified() || addr.ip().is_loopback()).then(|| format!("{ip}:{}", addr.port()))
}

async fn health_loop(
    shared: &Shared,
    arn: &str,
    check: &HealthCheck,
    binary: &Path,
    path_in_image: &str,
    env: &[(String, String)],
    root: &Path,
) {
    let started = tokio::time::Instant::now();
    let mut failures = 0u32;
    loop {
        let healthy = run_check(check, binary, path_in_image, env, root).await;
        let in_start_period = started.elapsed() < check.start_period;
        let health = if healthy {
            failures = 0;
            Some("HEALTHY")
        } else if !in_start_period {
            failures += 1;
            (failures >= check.retries.max(1)).then_some("UNHEALTHY")
        } else {
            None
        };
        let running = set(shared, arn, |t| {
            if let Some(h) = health
                && t.last_status == "RUNNING"
            {
                t.health = Some(h.into());
            }
        })
        .is_some_and(|t| !t.is_stopped());
        if !running {
            return;
        }
        tokio::time::sleep(check.interval).await;
    }
}

async fn run_check(
    check: &HealthCheck,
    binary: &Path,
    path_in_image: &str,
    env: &[(String, String)],
    root: &Path,
) -> bool {
    let bin = binary.to_string_lossy();
    let mut cmd = match check.command.first().map(String::as_str) {
        Some("CMD-SHELL") => {
            let line = check.command[1..].join(" ").replace(path_in_image, &bin);
            let mut c = Command::new("sh");
            c.arg("-c").arg(line);
            c
        }
        _ => {
            let Some(program) = check.command.get(1) else {
                return false;
            };
            let program = if program == path_in_image {
                bin.to_string()
            } else {
                program.clone()
            };
            let mut c = Command::new(program);
            c.args(&check.command[2..]);
            c
        }
    };
    cmd.env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    match tokio::time::timeout(check.timeout, cmd.status()).await {
        Ok(Ok(status)) => status.success(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::own_address;

    #[test]
    fn listen_addresses_move_to_the_task_address() {
        assert_eq!(
            own_address("0.0.0.0:50051", "127.9.8.7").as_deref(),
            Some("127.9.8.7:50051")
        );
        assert_eq!(
            own_address("127.0.0.1:8081", "127.9.8.7").as_deref(),
            Some("127.9.8.7:8081")
        );
        assert_eq!(own_address("10.1.2.3:80", "127.9.8.7"), None);
        assert_eq!(own_address("mongodb://127.0.0.1:1/", "127.9.8.7"), None);
    }
}
