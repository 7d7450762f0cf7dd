//! `wikisearch demo`: from a Wikipedia dump to a running local cluster with the search page,
//! in one command.
//!
//! Steps: check the flags, the dump and the front-end's port (before any work); lock the
//! data directory; build the index with K real `indexer build` processes, or reuse the
//! last build when nothing changed ([`build`]); write the cluster file on free ports
//! ([`cluster_file`]); start N `searcher node` processes and one `searcher frontend`
//! (through the [`Supervisor`]); wait until the front-end sees every node up and print the page URL,
//! the node table and how to kill and restart a node ([`status`]); then supervise until
//! Ctrl-C or SIGTERM and stop every child. The demo restarts nothing by itself: killing a
//! node is how a user watches failover, and the printed command brings it back. Every node
//! coordinates too (serves the page and the API at its own address), so killing the
//! front-end does not end the demo either: the open page carries on with the nodes.

mod build;
mod cluster_file;
mod status;

use std::fs::File;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context as _};
use nix::fcntl::{Flock, FlockArg};
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::binaries::Binaries;
use crate::supervisor::{describe_exit, log_tail, Supervisor};
use build::{BuildPlan, Outcome};
use status::Frontend;

/// Where the README's first command finds the sample dump (run from the repository root).
const DEFAULT_DUMP: &str = "../shared/corpus/enwiki-sample.xml.bz2";
/// How long nodes and the front-end may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Flags of `wikisearch demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// The dump to index (`.xml`, `.xml.bz2`, multistream `.xml.bz2`), relative to the
    /// current directory.
    #[arg(long, default_value = DEFAULT_DUMP)]
    pub dump: PathBuf,
    /// Address of the front-end (search page and JSON API).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where shards, node data, logs and the cluster file go.
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// Indexer processes (K); each builds shards/K shards from its slice of the dump.
    #[arg(long, default_value_t = 2)]
    pub indexers: u32,
    /// Searcher node processes (N).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Copies of every shard (R), each on a different node.
    #[arg(long, default_value_t = 2)]
    pub replicas: usize,
    /// Shards in total (S), a multiple of --indexers.
    #[arg(long, default_value_t = 6)]
    pub shards: u32,
    /// Build the index again even if the input and settings are unchanged.
    #[arg(long)]
    pub rebuild: bool,
}

/// Runs the demo until Ctrl-C or SIGTERM.
pub fn run_cli(args: DemoArgs) -> anyhow::Result<()> {
    check_settings(&args)?;
    let dump = check_dump(&args.dump)?;
    check_port_free(args.listen)?;
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("cannot create {}", args.data.display()))?;
    let data = args
        .data
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", args.data.display()))?;
    let _lock = lock_data_dir(&data)?;
    let bins = Binaries::locate()?;
    // A current-thread runtime: everything, child spawning included, stays on the main
    // thread, which is the thread the children's death signal is tied to.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let mut procs = Supervisor::new(data.join("logs"))?;
    let plan = BuildPlan {
        dump,
        shards: args.shards,
        indexers: args.indexers,
        indexer: bins.indexer.clone(),
    };
    let result = runtime.block_on(async {
        let mut stop = StopSignals::install()?;
        run_cluster(&args, &data, &plan, &bins.searcher, &mut procs, &mut stop).await
    });
    println!("Stopping the demo's processes...");
    procs.stop_all();
    println!("Stopped.");
    result
}

/// Build, start, wait, supervise; the caller stops the children whatever happens.
async fn run_cluster(
    args: &DemoArgs,
    data: &Path,
    plan: &BuildPlan,
    searcher: &Path,
    procs: &mut Supervisor,
    stop: &mut StopSignals,
) -> anyhow::Result<()> {
    if let Outcome::Interrupted = build::ensure_built(data, plan, args.rebuild, procs, stop).await?
    {
        return Ok(());
    }
    let (config_path, config) = cluster_file::write(data, args.nodes, args.replicas, args.listen)?;
    for node in &config.nodes {
        let mut command = Command::new(searcher);
        command
            .arg("node")
            .arg("--config")
            .arg(&config_path)
            .arg("--id")
            .arg(&node.id);
        procs.spawn(&node.id, &mut command)?;
    }
    let mut command = Command::new(searcher);
    command
        .arg("frontend")
        .arg("--config")
        .arg(&config_path)
        .arg("--listen")
        .arg(args.listen.to_string());
    procs.spawn("frontend", &mut command)?;
    println!("Starting {} nodes and the front-end...", config.nodes.len());
    let frontend = Frontend::new(args.listen)?;
    let Some(doc) = status::wait_ready(&frontend, &config, procs, stop, START_TIMEOUT).await?
    else {
        return Ok(());
    };
    status::print_ready(&doc, &config, procs, searcher, &config_path, data);
    supervise(procs, stop, searcher, &config_path, args.listen).await
}

/// Reports children that exit, with the command that restarts each, until a stop signal.
async fn supervise(
    procs: &mut Supervisor,
    stop: &mut StopSignals,
    searcher: &Path,
    config_path: &Path,
    listen: SocketAddr,
) -> anyhow::Result<()> {
    loop {
        for exited in procs.reap_exited() {
            if exited.name == "frontend" {
                println!(
                    "the front-end (pid {}) exited ({}); the page carries on with the coordinating nodes. The end of {}:\n{}\nRestart it with: {}",
                    exited.pid,
                    describe_exit(exited.exit()),
                    exited.log.display(),
                    log_tail(&exited.log, 10),
                    status::frontend_restart_command(searcher, config_path, listen)
                );
                continue;
            }
            println!(
                "{} (pid {}) exited ({}); the other replicas answer for it. Restart it with: {}",
                exited.name,
                exited.pid,
                describe_exit(exited.exit()),
                status::restart_command(searcher, config_path, &exited.name)
            );
        }
        tokio::select! {
            _ = stop.recv() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

/// SIGINT and SIGTERM, listened to from the start so that a stop during the build still
/// stops the children cleanly.
pub struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<Self> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
        })
    }

    /// Completes on the next SIGINT or SIGTERM.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {},
            _ = self.terminate.recv() => {},
        }
    }
}

fn check_settings(args: &DemoArgs) -> anyhow::Result<()> {
    if args.indexers == 0 || args.shards == 0 || args.nodes == 0 {
        bail!("--indexers, --shards and --nodes must be at least 1");
    }
    if !args.shards.is_multiple_of(args.indexers) {
        bail!(
            "--shards {} is not a multiple of --indexers {}: every indexer builds the same number of shards",
            args.shards,
            args.indexers
        );
    }
    if args.replicas == 0 || args.replicas > args.nodes {
        bail!(
            "--replicas {} must be between 1 and --nodes {} (each copy lives on a different node)",
            args.replicas,
            args.nodes
        );
    }
    Ok(())
}

/// The dump's absolute path, or a message saying what to pass.
fn check_dump(dump: &Path) -> anyhow::Result<PathBuf> {
    match dump.canonicalize() {
        Ok(path) if path.is_file() => Ok(path),
        Ok(path) => bail!(
            "{} is not a file: pass --dump PATH to a Wikipedia XML dump",
            path.display()
        ),
        Err(e) => {
            let cwd = std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default();
            let hint = if dump == Path::new(DEFAULT_DUMP) {
                " (the sample dump is looked for relative to the current directory: run the demo \
                 from the repository root)"
            } else {
                ""
            };
            bail!(
                "no dump at {} ({e}; current directory {cwd}){hint}. Pass --dump PATH to a Wikipedia \
                 XML dump: .xml, .xml.bz2 or pages-articles-multistream.xml.bz2",
                dump.display()
            )
        }
    }
}

/// Fails clearly, before any work, if the front-end's address cannot be bound.
fn check_port_free(listen: SocketAddr) -> anyhow::Result<()> {
    match TcpListener::bind(listen) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => bail!(
            "{listen} is already in use (another demo or server?): pick a free address with \
             --listen 127.0.0.1:PORT"
        ),
        Err(e) => bail!("cannot listen on {listen}: {e}"),
    }
}

/// Holds an exclusive lock on `DATA/demo.lock` so two demos never share a data directory;
/// the kernel releases it when the demo exits, however it exits.
fn lock_data_dir(data: &Path) -> anyhow::Result<Flock<File>> {
    let path = data.join("demo.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let Ok(mut file) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
        let holder = std::fs::read_to_string(&path).unwrap_or_default();
        bail!(
            "another demo (pid {}) is using {}: stop it, or pass a different --data and --listen",
            holder.trim(),
            data.display()
        );
    };
    file.set_len(0)?;
    write!(file, "{}", std::process::id())?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        demo: DemoArgs,
    }

    fn args(extra: &[&str]) -> DemoArgs {
        Wrapper::parse_from(std::iter::once("demo").chain(extra.iter().copied())).demo
    }

    #[test]
    fn defaults_match_the_issue() {
        let a = args(&[]);
        assert_eq!((a.indexers, a.nodes, a.replicas, a.shards), (2, 3, 2, 6));
        assert_eq!(a.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(a.dump, Path::new(DEFAULT_DUMP));
        check_settings(&a).unwrap();
    }

    #[test]
    fn bad_settings_are_clear_errors() {
        let err = check_settings(&args(&["--shards", "5"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a multiple"), "{err}");
        let err = check_settings(&args(&["--replicas", "4"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("between 1 and --nodes 3"), "{err}");
        let err = check_dump(Path::new("/no/such/dump.xml.bz2"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("Pass --dump PATH"), "{err}");
    }

    #[test]
    fn a_taken_port_is_a_clear_error() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let err = check_port_free(taken.local_addr().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("already in use"), "{err}");
    }

    #[test]
    fn one_data_directory_serves_one_demo() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_data_dir(dir.path()).unwrap();
        let err = lock_data_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("another demo"), "{err}");
        drop(held);
        lock_data_dir(dir.path()).unwrap();
    }
}
