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

use crate::proc_stats::{command_line, process_gone};
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

/// If `pid` is a `wikisearch keep --owner OWNER -- ...` process, its OWNER. A node an
/// earlier drill started again runs under a keeper; whoever replaces that node must hand
/// the new one to the keeper's owner (the demo), not to the keeper, which exits with the
/// node it kept.
pub fn keeper_owner(pid: u32) -> Option<u32> {
    owner_in_command_line(&command_line(pid)?)
}

fn owner_in_command_line(args: &[String]) -> Option<u32> {
    let end = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let args = &args[..end];
    if args.get(1).map(String::as_str) != Some("keep") {
        return None;
    }
    let at = args.iter().position(|a| a == "--owner")?;
    args.get(at + 1)?.parse().ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn a_keepers_owner_is_read_from_its_command_line() {
        let keeper = args("/x/wikisearch keep --owner 4242 -- /x/searcher node --id n2");
        assert_eq!(owner_in_command_line(&keeper), Some(4242));
        // The kept command's own flags are not the keeper's.
        let other = args("/x/searcher node --owner 7 --id n2");
        assert_eq!(owner_in_command_line(&other), None);
        let demo = args("/x/wikisearch demo -- keep --owner 9");
        assert_eq!(owner_in_command_line(&demo), None);
    }
}
