//! Helpers for the multi-process integration tests: the real binaries, freshly built, and
//! where the shared sample dumps are, a unique temporary directory per test, free loopback
//! ports, child processes that are killed when a test ends, and waiting on conditions with
//! generous deadlines (the CI machine has 2 shared, noisy cores: never assert on timings).
//! Signals and `/proc` reads are the tools crate's supervisor's.

pub mod cluster_secret;
pub mod garage;
pub mod slow_link;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use tools::proc_stats::process_gone;
pub use tools::supervisor::{send_signal, Signal};

/// Path of a workspace binary (`indexer`, `searcher`, `wikisearch`), built by cargo the
/// first time a test of this run asks for one, in the test's own profile and with the
/// features of `cargo test --workspace` (so nothing is compiled twice): a plain
/// `cargo test` never drives a stale binary.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test executable has a path");
        let dir = tools::binaries::profile_dir(&exe);
        tools::binaries::build_workspace_bins(&dir, true)
            .unwrap_or_else(|e| panic!("cannot build the binaries: {e:#}"));
        dir
    });
    let path = dir.join(name);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// Sends `request` (raw bytes, so no client library fixes them up) as one HTTP/1.1
/// exchange over a fresh loopback connection, reading for at most `read_timeout`; returns
/// the status (0 if none came) and the body.
pub fn raw_http(port: u16, request: &[u8], read_timeout: Duration) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(read_timeout)).unwrap();
    stream.write_all(request).expect("send the request");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// The workspace root (the tests crate lives at `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests crate is inside the workspace")
        .to_path_buf()
}

/// A file of the shared sample corpus (`../shared/corpus/<file>` from the workspace root),
/// read in place, never copied.
pub fn shared_corpus(file: &str) -> PathBuf {
    let path = workspace_root().join("../shared/corpus").join(file);
    assert!(path.exists(), "missing shared sample {}", path.display());
    path
}

/// The shared benchmark queries.
pub fn shared_queries() -> PathBuf {
    workspace_root().join("../shared/bench/queries-aol.jsonl")
}

/// A fresh temporary directory for one test, named after it; removed when dropped.
pub fn temp_dir(test_name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("search-it-{test_name}-"))
        .tempdir()
        .expect("create temp dir")
}

/// A loopback port free for a process the test starts next.
///
/// Taken below the kernel's ephemeral range (`ip_local_port_range`), never from it: a port
/// of that range found free by binding port 0 can be taken, before the process binds it,
/// as the source port of any outgoing connection (the suite makes thousands), and the
/// process then fails to start (a 90 s wait for a node that never came up, seen in CI).
/// Below the range the kernel hands out no port by itself; each test process starts at its
/// own offset and never hands out a port twice, and a port something listens on is skipped.
pub fn free_port() -> u16 {
    ports::next()
}

mod ports {
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::OnceLock;

    /// Lowest port handed out (below it: well-known and registered services).
    const FLOOR: u32 = 10_000;

    /// The ports handed out, `[FLOOR, end)`, and the next one (an offset into the span).
    struct Ports {
        end: u32,
        next: AtomicU32,
    }

    pub fn next() -> u16 {
        static PORTS: OnceLock<Option<Ports>> = OnceLock::new();
        let Some(ports) = PORTS.get_or_init(Ports::below_ephemeral) else {
            return ephemeral();
        };
        let span = ports.end - FLOOR;
        for _ in 0..span {
            let port = (FLOOR + ports.next.fetch_add(1, Ordering::Relaxed) % span) as u16;
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
        ephemeral()
    }

    impl Ports {
        /// `None` when the ephemeral range leaves too little room below it.
        fn below_ephemeral() -> Option<Ports> {
            let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
            let end: u32 = range.split_whitespace().next()?.parse().ok()?;
            let span = end.checked_sub(FLOOR).filter(|span| *span >= 2_000)?;
            // Concurrent test processes (two checkouts testing at once) start far apart.
            let seed = std::process::id().wrapping_mul(7_919)
                ^ std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0);
            Some(Ports {
                end,
                next: AtomicU32::new(seed % span),
            })
        }
    }

    /// A port of the ephemeral range that was free a moment ago (the fallback).
    fn ephemeral() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind 127.0.0.1:0")
            .port()
    }
}

/// Runs a command to completion, panicking with its output if it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Polls `condition` until it returns `Some` or `deadline` passes (then panics with `what`).
pub fn wait_for<T>(what: &str, deadline: Duration, mut condition: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = condition() {
            return value;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed (SIGKILL) and reaped when dropped, so a failing test leaves no
/// server behind.
pub struct ChildGuard {
    pub child: Child,
    pub name: String,
}

impl ChildGuard {
    pub fn spawn(name: &str, cmd: &mut Command) -> Self {
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        ChildGuard {
            child,
            name: name.to_string(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (SIGKILL, SIGSTOP, SIGCONT, SIGTERM...).
    pub fn signal(&self, signal: Signal) {
        send_signal(self.pid(), signal);
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        send_signal(self.pid(), Signal::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the tests run as root (the partition test needs CAP_NET_ADMIN).
pub fn is_root() -> bool {
    tools::proc_stats::effective_uid() == 0
}

/// Whether a process with this pid is still running (zombies count as gone).
pub fn process_alive(pid: u32) -> bool {
    !process_gone(pid)
}

/// GET a URL and parse the JSON body, whatever the status; `None` on a transport error.
pub fn get_json(url: &str) -> Option<(u16, serde_json::Value)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut response = agent.get(url).call().ok()?;
    let status = response.status().as_u16();
    let body: serde_json::Value = response.body_mut().read_json().ok()?;
    Some((status, body))
}

/// A running `wikisearch demo` started by a test: its printed output (collected line by line
/// as it arrives) and the pids from the node table it prints once the cluster is up.
/// Dropping it SIGKILLs the demo, whose children then die with it (PR_SET_PDEATHSIG).
pub struct Demo {
    pub guard: ChildGuard,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// `(name, pid)` of every process in the printed table (`node-1`..., `frontend`).
    pub pids: Vec<(String, u32)>,
    output: std::sync::Arc<std::sync::Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// How long a demo may take to index the sample and start (debug binaries, 2 noisy cores).
pub const DEMO_START_DEADLINE: Duration = Duration::from_secs(600);

impl Demo {
    /// Starts `wikisearch demo --data DATA --listen 127.0.0.1:<free port> EXTRA...` from the
    /// workspace root (where the default `--dump ../shared/corpus/enwiki-sample.xml.bz2`
    /// resolves, as in the README) and waits until it prints its node table.
    pub fn start(data: &Path, extra: &[&str]) -> Demo {
        let port = free_port();
        let mut cmd = Command::new(bin("wikisearch"));
        cmd.current_dir(workspace_root())
            .arg("demo")
            .arg("--data")
            .arg(data)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(extra)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut guard = ChildGuard::spawn("wikisearch demo", &mut cmd);
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut readers = Vec::new();
        for stream in [
            guard
                .child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            guard
                .child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let output = std::sync::Arc::clone(&output);
            readers.push(std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stream)
                    .lines()
                    .map_while(Result::ok)
                {
                    let mut all = output.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            }));
        }
        let mut demo = Demo {
            guard,
            url: format!("http://127.0.0.1:{port}"),
            pids: Vec::new(),
            output,
            readers,
        };
        wait_for(
            "the demo to print its node table",
            DEMO_START_DEADLINE,
            || {
                if let Ok(Some(status)) = demo.guard.child.try_wait() {
                    panic!(
                        "the demo exited ({status}) before it was ready; output:\n{}",
                        demo.output()
                    );
                }
                demo.output().contains("kill -9 ").then_some(())
            },
        );
        demo.pids = parse_demo_table(&demo.output());
        assert!(
            demo.pids.iter().any(|(name, _)| name == "frontend"),
            "no front-end in the demo's table:\n{}",
            demo.output()
        );
        demo
    }

    /// Everything the demo printed so far (stdout and stderr).
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// The pid the demo printed for `name`.
    pub fn pid(&self, name: &str) -> u32 {
        self.pids
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, pid)| *pid)
            .unwrap_or_else(|| panic!("no {name} in the demo's table:\n{}", self.output()))
    }

    /// Node ids from the table.
    pub fn node_ids(&self) -> Vec<String> {
        self.pids
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| n.starts_with("node-"))
            .collect()
    }

    /// The restart command the demo printed after "restart it with: ".
    pub fn restart_command(&self) -> String {
        let output = self.output();
        output
            .lines()
            .find_map(|l| {
                l.split_once("restart it with: ")
                    .map(|(_, cmd)| cmd.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no restart command in the demo's output:\n{output}"))
    }

    /// Waits for the demo to exit on its own (after a signal), then for its last lines.
    pub fn wait_exit(&mut self, deadline: Duration) -> std::process::ExitStatus {
        let child = &mut self.guard.child;
        let status = wait_for("the demo to exit", deadline, || {
            child.try_wait().ok().flatten()
        });
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        status
    }
}

/// `(name, pid)` rows of the demo's table: lines `  <name> <pid> <port> ...`.
pub fn parse_demo_table(output: &str) -> Vec<(String, u32)> {
    output
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            let pid = words.next()?.parse().ok()?;
            let _port: u16 = words.next()?.parse().ok()?;
            (name.starts_with("node-") || name == "frontend").then(|| (name.to_string(), pid))
        })
        .collect()
}

/// Starts `searcher ARGS --config DIR/cluster.toml` with its log in `DIR/logs/NAME.log`
/// (the directory must exist). The cluster secret comes from the file only: a
/// `WIKISEARCH_CLUSTER_SECRET` in the test's environment is not passed on.
pub fn spawn_searcher(dir: &Path, name: &str, args: &[&str]) -> ChildGuard {
    let log = std::fs::File::create(dir.join("logs").join(format!("{name}.log"))).expect("log");
    let mut cmd = Command::new(bin("searcher"));
    cmd.args(args)
        .arg("--config")
        .arg(dir.join("cluster.toml"))
        .env("RUST_LOG", "info")
        .env_remove("WIKISEARCH_CLUSTER_SECRET")
        .stdout(std::process::Stdio::null())
        .stderr(log);
    ChildGuard::spawn(name, &mut cmd)
}
