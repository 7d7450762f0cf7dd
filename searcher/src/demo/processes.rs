//! The demo's child processes (indexers, nodes, the front-end): how they are started so
//! that none outlives the demo, where their output goes, noticing when one exits, and
//! stopping them all (SIGTERM, a grace period, then SIGKILL).
//!
//! No orphan may survive the demo, even when the demo itself is SIGKILLed and cannot clean
//! up. Two mechanisms cover that:
//! - every child asks the kernel for `PR_SET_PDEATHSIG(SIGKILL)` before it execs, so it is
//!   killed as soon as the demo's main thread dies (the death signal follows the *thread*
//!   that forked, which is why children are only ever spawned from the main thread);
//! - children stay in the demo's process group (the default; nothing here calls
//!   `setpgid`), so a Ctrl-C in the terminal reaches all of them at once.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// How long a child may take to drain after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How often exits are polled while waiting.
const POLL_EVERY: Duration = Duration::from_millis(50);

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

/// Every child the demo started, in start order.
pub struct Processes {
    log_dir: PathBuf,
    children: Vec<Managed>,
}

impl Processes {
    /// Children's logs go to `log_dir/<name>.log`.
    pub fn new(log_dir: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&log_dir)
            .with_context(|| format!("cannot create {}", log_dir.display()))?;
        Ok(Processes {
            log_dir,
            children: Vec::new(),
        })
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.log_dir.join(format!("{name}.log"))
    }

    /// Starts `command` as child `name`: stdin closed, stderr (and stdout unless the caller
    /// already redirected it) into a fresh `<name>.log`, killed if the demo dies.
    pub fn spawn(
        &mut self,
        name: &str,
        command: &mut Command,
        own_stdout: bool,
    ) -> anyhow::Result<u32> {
        let log_path = self.log_path(name);
        let log = File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        if !own_stdout {
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

    /// SIGTERM to every running child, then SIGKILL to those still running after the grace
    /// period; returns once all are reaped.
    pub async fn stop_all(&mut self) {
        self.reap_exited();
        let running: Vec<&Managed> = self.children.iter().filter(|c| c.exit.is_none()).collect();
        if running.is_empty() {
            return;
        }
        for managed in &running {
            send_signal(managed.pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            self.reap_exited();
            if self.children.iter().all(|c| c.exit.is_some()) {
                return;
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
        for managed in self.children.iter_mut().filter(|c| c.exit.is_none()) {
            eprintln!(
                "{} (pid {}) did not stop within {:?} of SIGTERM: killing it",
                managed.name, managed.pid, STOP_GRACE
            );
            let _ = managed.child.kill();
            managed.exit = managed.child.wait().ok();
        }
    }
}

/// Makes the child ask for SIGKILL when the demo dies, and refuse to run if the demo is
/// already gone by the time it gets there (the race between fork and prctl).
fn die_with_parent(command: &mut Command) {
    let demo_pid = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs between fork and exec, and only makes async-signal-safe
    // system calls (prctl, getppid) without allocating.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != demo_pid {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Sends `signal` to `pid`; false if there is no such process.
pub fn send_signal(pid: u32, signal: i32) -> bool {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid as libc::pid_t, signal) == 0 }
}

/// "exit code 1" / "killed by signal 9".
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

/// The last `lines` lines of a log file (reads at most its last 64 KiB).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_are_reaped_and_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut procs = Processes::new(dir.path().join("logs")).unwrap();
        let quick = procs
            .spawn(
                "quick",
                Command::new("sh").args(["-c", "echo hello >&2; exit 3"]),
                false,
            )
            .unwrap();
        let slow = procs
            .spawn("slow", Command::new("sleep").arg("600"), false)
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while procs.get("quick").unwrap().exit().is_none() {
            procs.reap_exited();
            assert!(Instant::now() < deadline, "quick child never exited");
            std::thread::sleep(POLL_EVERY);
        }
        assert_eq!(
            describe_exit(procs.get("quick").unwrap().exit()),
            "exit code 3"
        );
        assert!(log_tail(&procs.log_path("quick"), 5).contains("hello"));
        assert_ne!(quick, slow);
        runtime.block_on(procs.stop_all());
        assert_eq!(
            describe_exit(procs.get("slow").unwrap().exit()),
            "killed by signal 15"
        );
    }
}
