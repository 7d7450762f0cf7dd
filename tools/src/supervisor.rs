//! The one process supervisor of the tools (and of the integration tests): how children
//! are started so that none outlives its starter, where their output goes, noticing when
//! one exits, charging them CPU time, and stopping them all (SIGTERM, a grace period, then
//! SIGKILL), also when the supervisor is dropped on an error path.
//!
//! No child may survive its starter, even one that is SIGKILLed and cannot clean up. Two
//! mechanisms cover that:
//! - every child asks the kernel for `PR_SET_PDEATHSIG(SIGKILL)` before it execs, so it is
//!   killed as soon as the starter's spawning thread dies (the death signal follows the
//!   *thread* that forked, which is why callers spawn from their main thread);
//! - children stay in the starter's process group (nothing here calls `setpgid`), so a
//!   Ctrl-C in the terminal reaches all of them at once.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::proc_stats::{process_cpu_seconds, process_gone};

/// How long a child may take to drain after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// How often exits are polled while waiting.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// The signals the tools send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    SIGTERM,
    SIGKILL,
    SIGSTOP,
    SIGCONT,
}

impl From<Signal> for nix::sys::signal::Signal {
    fn from(signal: Signal) -> Self {
        match signal {
            Signal::SIGTERM => Self::SIGTERM,
            Signal::SIGKILL => Self::SIGKILL,
            Signal::SIGSTOP => Self::SIGSTOP,
            Signal::SIGCONT => Self::SIGCONT,
        }
    }
}

/// One started child.
pub struct Managed {
    pub name: String,
    pub pid: u32,
    pub log: PathBuf,
    child: Child,
    exit: Option<ExitStatus>,
}

impl Managed {
    /// The exit status, once the child has exited and been reaped.
    pub fn exit(&self) -> Option<ExitStatus> {
        self.exit
    }
}

/// Every child started through it, in start order; all stopped on drop.
pub struct Supervisor {
    log_dir: PathBuf,
    children: Vec<Managed>,
}

impl Supervisor {
    /// Children's logs go to `log_dir/<name>.log`.
    pub fn new(log_dir: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&log_dir)
            .with_context(|| format!("cannot create {}", log_dir.display()))?;
        Ok(Supervisor {
            log_dir,
            children: Vec::new(),
        })
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.log_dir.join(format!("{name}.log"))
    }

    /// Starts `command` as child `name`: stdin closed, stdout and stderr into a fresh
    /// `<name>.log`, killed if this process dies.
    pub fn spawn(&mut self, name: &str, command: &mut Command) -> anyhow::Result<u32> {
        self.spawn_inner(name, command, true)
    }

    /// As [`Supervisor::spawn`], but stdout stays where the caller pointed it (a summary
    /// file, say); only stderr goes to the log.
    pub fn spawn_keeping_stdout(
        &mut self,
        name: &str,
        command: &mut Command,
    ) -> anyhow::Result<u32> {
        self.spawn_inner(name, command, false)
    }

    fn spawn_inner(
        &mut self,
        name: &str,
        command: &mut Command,
        stdout_to_log: bool,
    ) -> anyhow::Result<u32> {
        let log_path = self.log_path(name);
        let log = File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        if stdout_to_log {
            command.stdout(log.try_clone()?);
        }
        // Logs are files: no colour escapes in them (tracing-subscriber honours NO_COLOR).
        command
            .stdin(Stdio::null())
            .stderr(log)
            .env("NO_COLOR", "1");
        die_with_parent(command);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {name}: {command:?}"))?;
        let pid = child.id();
        self.children.push(Managed {
            name: name.to_string(),
            pid,
            log: log_path,
            child,
            exit: None,
        });
        Ok(pid)
    }

    pub fn get(&self, name: &str) -> Option<&Managed> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Pids of the running children whose name starts with `prefix`.
    pub fn pids(&self, prefix: &str) -> Vec<u32> {
        self.children
            .iter()
            .filter(|c| c.name.starts_with(prefix) && c.exit.is_none())
            .map(|c| c.pid)
            .collect()
    }

    /// Reaps children that exited since the last call and returns them.
    pub fn reap_exited(&mut self) -> Vec<&Managed> {
        let mut newly = Vec::new();
        for (i, managed) in self.children.iter_mut().enumerate() {
            if managed.exit.is_none() {
                if let Ok(Some(status)) = managed.child.try_wait() {
                    managed.exit = Some(status);
                    newly.push(i);
                }
            }
        }
        newly.into_iter().map(|i| &self.children[i]).collect()
    }

    /// Fails, with the end of its log, if any child has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        self.reap_exited();
        if let Some(gone) = self.children.iter().find(|c| c.exit.is_some()) {
            bail!(
                "{} (pid {}) exited ({}); end of its log:\n{}",
                gone.name,
                gone.pid,
                describe_exit(gone.exit),
                log_tail(&gone.log, 20)
            );
        }
        Ok(())
    }

    /// CPU seconds (user + system) used so far by the running children whose name starts
    /// with `prefix` (0 for one whose `/proc` entry cannot be read).
    pub fn cpu_seconds(&self, prefix: &str) -> f64 {
        self.pids(prefix)
            .into_iter()
            .map(|pid| process_cpu_seconds(pid).unwrap_or(0.0))
            .sum()
    }

    /// SIGTERM to every running child, then SIGKILL to those still running after the grace
    /// period; returns once all are reaped.
    pub fn stop_all(&mut self) {
        self.reap_exited();
        for managed in self.children.iter().filter(|c| c.exit.is_none()) {
            send_signal(managed.pid, Signal::SIGTERM);
        }
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            self.reap_exited();
            if self.children.iter().all(|c| c.exit.is_some()) {
                return;
            }
            std::thread::sleep(POLL_EVERY);
        }
        for managed in self.children.iter_mut().filter(|c| c.exit.is_none()) {
            eprintln!(
                "{} (pid {}) did not stop within {STOP_GRACE:?} of SIGTERM: killing it",
                managed.name, managed.pid
            );
            let _ = managed.child.kill();
            managed.exit = managed.child.wait().ok();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Makes the child ask for SIGKILL when its starter dies, and refuse to run if the starter
/// is already gone by the time it gets there (the race between fork and prctl).
pub fn die_with_parent(command: &mut Command) {
    let starter = nix::unistd::getpid();
    // SAFETY: the closure runs between fork and exec, and only makes async-signal-safe
    // system calls (prctl, getppid) without allocating.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
            if nix::unistd::getppid() != starter {
                return Err(nix::errno::Errno::ESRCH.into());
            }
            Ok(())
        });
    }
}

/// The standard output of a finished `program args...`, or an error quoting the command
/// and its standard error if it failed.
pub fn stdout_of(
    program: &str,
    args: &[&str],
    output: std::process::Output,
) -> anyhow::Result<String> {
    if !output.status.success() {
        bail!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Sends `signal` to `pid`; refuses pids 0 and 1 (a process group, init).
pub fn signal(pid: u32, signal: Signal) -> anyhow::Result<()> {
    let raw = i32::try_from(pid).context("pid out of range")?;
    if raw <= 1 {
        bail!("refusing to signal pid {pid}");
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(raw),
        nix::sys::signal::Signal::from(signal),
    )
    .with_context(|| format!("cannot send {signal:?} to pid {pid}"))
}

/// As [`signal`], for callers that only need to know whether the process existed.
pub fn send_signal(pid: u32, sig: Signal) -> bool {
    signal(pid, sig).is_ok()
}

/// Waits until the process is gone; false on timeout.
pub async fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while !process_gone(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    true
}

/// "exit code 1" / "killed by signal 9" / "still running".
pub fn describe_exit(status: Option<ExitStatus>) -> String {
    match status {
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            _ => s.to_string(),
        },
        None => "still running".to_string(),
    }
}

/// The last `lines` lines of a log file (reads at most its last 64 KiB), indented.
pub fn log_tail(path: &Path, lines: usize) -> String {
    const MAX: u64 = 64 * 1024;
    let read = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(MAX)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            let tail = &all[all.len().saturating_sub(lines)..];
            if tail.is_empty() {
                "    (empty)".to_string()
            } else {
                tail.iter()
                    .map(|l| format!("    {l}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        }
        Err(e) => format!("    (cannot read {}: {e})", path.display()),
    }
}

/// A loopback address that was free a moment ago.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_are_reported_with_their_log_and_the_rest_are_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let mut procs = Supervisor::new(dir.path().join("logs")).unwrap();
        let slow = procs
            .spawn("slow", Command::new("sleep").arg("600"))
            .unwrap();
        procs.check_alive().unwrap();
        let quick = procs
            .spawn(
                "quick",
                Command::new("sh").args(["-c", "echo hello >&2; exit 3"]),
            )
            .unwrap();
        assert_ne!(quick, slow);
        let deadline = Instant::now() + Duration::from_secs(30);
        let err = loop {
            match procs.check_alive() {
                Err(err) => break err.to_string(),
                Ok(()) => assert!(Instant::now() < deadline, "the exit was never noticed"),
            }
            std::thread::sleep(POLL_EVERY);
        };
        assert!(err.contains("quick") && err.contains("hello"), "{err}");
        assert_eq!(
            describe_exit(procs.get("quick").unwrap().exit()),
            "exit code 3"
        );
        assert_eq!(procs.pids("s"), vec![slow]);
        procs.stop_all();
        assert_eq!(
            describe_exit(procs.get("slow").unwrap().exit()),
            "killed by signal 15"
        );
        assert!(process_gone(slow));
        assert!(!send_signal(1, Signal::SIGCONT), "pid 1 is never signalled");
    }
}
