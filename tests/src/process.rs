//! Child processes that are killed when the test lets go of them, and waits that give up
//! instead of hanging the suite.

use std::{
    process::{Child, Command, ExitStatus, Output, Stdio},
    time::{Duration, Instant},
};

/// How long a process a test expects to end may take before the test fails as hung.
pub const HANG_GUARD: Duration = Duration::from_secs(120);

/// How long a cargo build a test runs (a plugin outside the workspace) may take: a first
/// build of abi_stable and its dependencies on a busy two-core machine takes minutes.
pub const BUILD_GUARD: Duration = Duration::from_secs(900);

/// A child process, killed on drop.
pub struct ChildGuard {
    child: Option<Child>,
    name: String,
}

impl ChildGuard {
    /// Starts `command`, with stdout and stderr piped unless the command set them.
    pub fn spawn(name: &str, command: &mut Command) -> Self {
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self {
            child: Some(child),
            name: name.to_string(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends a signal by name (`TERM`, `KILL`, `INT`).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Waits for the process to end (failing the test if it hangs) and returns its output.
    /// Piped outputs are read on threads of their own meanwhile: a child that writes more than
    /// a pipe holds (64 KiB) would otherwise block on its write and never end.
    pub fn wait(self) -> Output {
        self.wait_within(HANG_GUARD)
    }

    /// [`ChildGuard::wait`], failing the test when the process runs longer than `limit`.
    pub fn wait_within(mut self, limit: Duration) -> Output {
        let mut child = self.child.take().expect("a running child");
        fn drain(
            pipe: Option<impl std::io::Read + Send + 'static>,
        ) -> std::thread::JoinHandle<Vec<u8>> {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut bytes);
                }
                bytes
            })
        }
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => panic!("cannot wait for {}: {e}", self.name),
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                panic!("{} did not end within {limit:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Output {
            status,
            stdout: stdout.join().expect("reading the child's stdout"),
            stderr: stderr.join().expect("reading the child's stderr"),
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `command` to its end with piped output.
pub fn run(name: &str, command: &mut Command) -> Output {
    run_within(name, command, HANG_GUARD)
}

/// Runs a cargo build to its end with piped output, allowing it [`BUILD_GUARD`].
pub fn build(name: &str, command: &mut Command) -> Output {
    run_within(name, command, BUILD_GUARD)
}

fn run_within(name: &str, command: &mut Command, limit: Duration) -> Output {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    ChildGuard::spawn(name, command).wait_within(limit)
}

/// Polls `check` until it is true; fails the test if it never becomes true.
pub fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < HANG_GUARD, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The exit status and both outputs, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// True if the status is a clean exit 0.
pub fn succeeded(status: &ExitStatus) -> bool {
    status.code() == Some(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_writing_more_than_a_pipe_holds_ends_with_all_its_output() {
        let output = run(
            "a loud child",
            Command::new("sh").args([
                "-c",
                "head -c 300000 /dev/zero | tr '\\0' o; head -c 200000 /dev/zero | tr '\\0' e >&2",
            ]),
        );
        assert!(succeeded(&output.status), "{:?}", output.status);
        assert_eq!(output.stdout.len(), 300_000);
        assert!(output.stdout.iter().all(|&b| b == b'o'));
        assert_eq!(output.stderr.len(), 200_000);
    }
}
