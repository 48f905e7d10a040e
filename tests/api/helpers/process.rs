//! The `herald` binary and other child processes: clean command lines, runs that must end in
//! time, and output read line by line as it comes.

use super::DEADLINE;
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader, Lines};
use tokio::process::{Child, Command};

/// `herald` with a clean environment: only `PATH`, and logging at `warn`.
pub fn herald() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_herald"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    c
}

/// [`herald`] on the database at `db`, with the tests' secret key.
pub fn herald_on(db: &str) -> Command {
    let mut c = herald();
    c.env("DATABASE_URL", db)
        .env("HERALD_SECRET_KEY", super::TEST_SECRET_KEY);
    c
}

/// A new admin's token of channel `acme`, made by `herald token create` on the database at `db`.
pub async fn cli_token(db: &str) -> String {
    let create = [
        "token",
        "create",
        "--channel",
        "acme",
        "--email",
        "a@acme.test",
    ];
    let (out, _) = succeeds(herald_on(db).args(create)).await;
    out.trim().to_owned()
}

/// Runs `cmd` to its end, which must come before the deadline.
async fn finish(cmd: &mut Command) -> Output {
    tokio::time::timeout(DEADLINE, cmd.kill_on_drop(true).output())
        .await
        .expect("the process exits in time")
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

/// Runs `cmd`, which must fail; returns its stderr.
pub async fn fails(cmd: &mut Command) -> String {
    let out = finish(cmd).await;
    assert!(!out.status.success(), "{cmd:?} succeeded");
    stderr(&out)
}

/// Runs `cmd`, which must succeed; returns (stdout, stderr).
pub async fn succeeds(cmd: &mut Command) -> (String, String) {
    let out = finish(cmd).await;
    let err = stderr(&out);
    assert!(out.status.success(), "{cmd:?}: {err}");
    (String::from_utf8(out.stdout).expect("utf-8"), err)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

type OutputLines = Lines<BufReader<Box<dyn AsyncRead + Unpin + Send>>>;

/// A child process whose stdout, or whose stderr (its log), is read line by line as it
/// comes; killed when dropped.
pub struct Process {
    pub child: Child,
    lines: OutputLines,
    /// Every line read so far.
    seen: Vec<String>,
}

impl Process {
    /// Spawns `cmd`, reading its stdout.
    pub fn spawn(cmd: &mut Command) -> Process {
        let mut child = Process::start(cmd.stdout(Stdio::piped()));
        let stdout = child.stdout.take().expect("stdout");
        Process::reading(child, Box::new(stdout))
    }

    /// Spawns `cmd`, reading its stderr; its stdout is dropped.
    pub fn spawn_logged(cmd: &mut Command) -> Process {
        let mut child = Process::start(cmd.stdout(Stdio::null()).stderr(Stdio::piped()));
        let stderr = child.stderr.take().expect("stderr");
        Process::reading(child, Box::new(stderr))
    }

    fn start(cmd: &mut Command) -> Child {
        cmd.kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"))
    }

    fn reading(child: Child, output: Box<dyn AsyncRead + Unpin + Send>) -> Process {
        Process {
            child,
            lines: BufReader::new(output).lines(),
            seen: Vec::new(),
        }
    }

    /// The next line containing `needle`; fails at the deadline or if the process ends first.
    pub async fn expect_line(&mut self, needle: &str) -> String {
        self.expect_line_within(needle, DEADLINE).await
    }

    /// The next line containing `needle`; fails if none comes `within` or the process ends
    /// first.
    pub async fn expect_line_within(&mut self, needle: &str, within: Duration) -> String {
        let until = tokio::time::Instant::now() + within;
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            let line = match tokio::time::timeout(left, self.lines.next_line()).await {
                Ok(Ok(Some(line))) => line,
                Ok(_) => panic!(
                    "the process ended before printing {needle:?}:\n{}",
                    self.log()
                ),
                Err(_) => panic!(
                    "the process did not print {needle:?} in time:\n{}",
                    self.log()
                ),
            };
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Sends the process `signal` (`TERM`, `INT`) and waits for it to exit, which must come
    /// before the deadline; returns how it exited.
    pub async fn stop_with(&mut self, signal: &str) -> std::process::ExitStatus {
        let pid = self.child.id().expect("the process runs");
        let sent = std::process::Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -{signal} {pid}");
        tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the process did not exit in time:\n{}", self.log()))
            .expect("exit status")
    }

    /// Every line read so far.
    pub fn log(&self) -> String {
        self.seen.join("\n")
    }
}
