//! Starting a test server script that prints `... listening on ADDR` on its first stdout line,
//! and stopping it (SIGTERM, then SIGKILL if it lingers) when the guard drops.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct ScriptServer {
    child: Child,
    /// The `host:port` it printed.
    pub addr: String,
}

impl ScriptServer {
    /// Runs `scripts/{script} --port 0` from the repository (blocking; call from a blocking task).
    pub fn start(script: &str) -> Self {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../scripts")
            .join(script);
        let mut child = Command::new("bash")
            .arg(&path)
            .arg("--port")
            .arg("0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "start {} (scripts/setup.sh prepares it): {e}",
                    path.display()
                )
            });
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the listening line");
        let addr = line
            .trim()
            .split_once(" listening on ")
            .map(|(_, a)| a.to_owned())
            .unwrap_or_else(|| panic!("unexpected first line from {script}: {line:?}"));
        Self { child, addr }
    }
}

impl Drop for ScriptServer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..40 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
