//! The processes the comparison starts (nodes, front-end, baseline server): their output
//! goes to one log file each, a process that dies early is reported with the end of its
//! log, and all of them are stopped (SIGTERM, then SIGKILL after a grace period) when
//! the comparison ends, whether it succeeded or not.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::cpu::process_cpu_seconds;
use crate::drill::cluster_procs::process_gone;

/// How long a process may take to drain after SIGTERM.
const GRACE: Duration = Duration::from_secs(10);

/// Children started by this process, stopped on drop.
pub struct Processes {
    logs: PathBuf,
    children: Vec<(String, Child)>,
}

impl Processes {
    pub fn new(logs: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&logs)
            .with_context(|| format!("cannot create {}", logs.display()))?;
        Ok(Processes {
            logs,
            children: Vec::new(),
        })
    }

    /// Starts `command` with its stdout and stderr in `<logs>/<name>.log`.
    pub fn spawn(&mut self, name: &str, command: &mut Command) -> anyhow::Result<()> {
        let log_path = self.log_path(name);
        let log = File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {name}: {command:?}"))?;
        self.children.push((name.to_string(), child));
        Ok(())
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.logs.join(format!("{name}.log"))
    }

    /// CPU seconds (user + system) used so far by the children whose name starts with
    /// `prefix`, from `/proc` (0 where it cannot be read).
    pub fn cpu_seconds(&self, prefix: &str) -> f64 {
        self.children
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(_, child)| process_cpu_seconds(child.id()).unwrap_or(0.0))
            .sum()
    }

    /// Fails, with the end of its log, if any child has exited.
    pub fn check_alive(&self) -> anyhow::Result<()> {
        for (name, child) in &self.children {
            // try_wait needs &mut; /proc tells whether the pid still runs without reaping
            // it (an exited child is a zombie until reaped).
            if process_gone(child.id()) {
                let log = std::fs::read_to_string(self.log_path(name)).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                bail!(
                    "{name} (pid {}) exited; end of its log:\n{}",
                    child.id(),
                    tail.join("\n")
                );
            }
        }
        Ok(())
    }

    /// SIGTERM to all, then SIGKILL to whatever has not exited after the grace period.
    pub fn stop_all(&mut self) {
        for (_, child) in &self.children {
            signal(child.id(), libc::SIGTERM);
        }
        let deadline = Instant::now() + GRACE;
        for (name, mut child) in self.children.drain(..) {
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Ok(None) => {
                        eprintln!("{name} did not stop within {GRACE:?}: killing it");
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
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
    fn reports_an_exited_child_and_stops_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let mut procs = Processes::new(tmp.path().join("logs")).unwrap();
        procs
            .spawn("sleeper", Command::new("sleep").arg("60"))
            .unwrap();
        procs.check_alive().unwrap();
        procs
            .spawn(
                "quitter",
                Command::new("sh").args(["-c", "echo bye; exit 3"]),
            )
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let err = loop {
            match procs.check_alive() {
                Err(err) => break err.to_string(),
                Ok(()) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(()) => panic!("the exit was never noticed"),
            }
        };
        assert!(err.contains("quitter") && err.contains("bye"), "{err}");
        let sleeper = procs.children[0].1.id();
        procs.stop_all();
        assert!(process_gone(sleeper));
    }
}
