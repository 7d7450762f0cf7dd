//! `wikisearch keep --owner PID -- COMMAND...`: runs COMMAND for as long as process PID
//! lives, then stops it (SIGTERM, a grace period, SIGKILL).
//!
//! Why: every node the demo starts dies with the demo (a parent-death signal, see
//! [`crate::supervisor`]), but a node the drill kills and starts again is the drill's
//! child, not the demo's, and must outlive the drill (the drill leaves the cluster as it
//! found it). The drill starts such a node through this keeper, owned by whoever started
//! the node it replaces: the node dies with the keeper (parent-death signal), and the
//! keeper stops it once the owner is gone, so no node the drill restarted outlives the
//! demo it belongs to.

use std::ffi::OsString;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::proc_stats::process_gone;
use crate::supervisor::{describe_exit, die_with_parent, send_signal, Signal, STOP_GRACE};

/// How often the owner and the command are checked.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// Flags of `wikisearch keep`.
#[derive(Debug, clap::Args)]
pub struct KeepArgs {
    /// The process whose life bounds the command's.
    #[arg(long)]
    pub owner: u32,
    /// The command and its arguments (after `--`).
    #[arg(required = true, last = true)]
    pub command: Vec<OsString>,
}

/// Runs the command until it exits, or until the owner is gone and it has been stopped.
pub fn run_cli(args: KeepArgs) -> anyhow::Result<()> {
    let (program, rest) = args.command.split_first().context("no command to run")?;
    let mut command = Command::new(program);
    command.args(rest);
    die_with_parent(&mut command);
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {program:?}"))?;
    loop {
        if let Some(status) = child.try_wait()? {
            if status.success() {
                return Ok(());
            }
            bail!("{program:?} ended: {}", describe_exit(Some(status)));
        }
        if process_gone(args.owner) {
            send_signal(child.id(), Signal::SIGTERM);
            let deadline = Instant::now() + STOP_GRACE;
            while child.try_wait()?.is_none() {
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(POLL_EVERY);
            }
            return Ok(());
        }
        std::thread::sleep(POLL_EVERY);
    }
}
