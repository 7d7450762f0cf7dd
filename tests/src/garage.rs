//! A real S3-compatible server for the tests: Garage (a production object store written in
//! Rust), one single-node store per test on free loopback ports in the test's own
//! directory, with a bucket and a key of its own. Never a mock: the signatures, multipart
//! uploads, listings and errors the code meets are a real server's.
//!
//! The binary comes from `WIKISEARCH_GARAGE`, else `~/.cache/wikisearch-tools/bin/garage`
//! (where `.ci/run` installs it), else `garage` on the `PATH`. Without one a test fails,
//! unless `WIKISEARCH_SKIP_S3=1` asks to skip it (it then prints why).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{free_port, run_ok, wait_for, ChildGuard};

/// The bucket every test store has.
pub const BUCKET: &str = "shards";
/// Garage's S3 region (its config says so).
pub const REGION: &str = "garage";

/// The Garage binary, if there is one (see the module docs).
pub fn garage_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("WIKISEARCH_GARAGE") {
        return Some(PathBuf::from(path));
    }
    let cached = std::env::var_os("HOME")
        .map(|home| Path::new(&home).join(".cache/wikisearch-tools/bin/garage"));
    if let Some(cached) = cached.filter(|p| p.is_file()) {
        return Some(cached);
    }
    let on_path = std::env::var_os("PATH")?;
    std::env::split_paths(&on_path)
        .map(|dir| dir.join("garage"))
        .find(|p| p.is_file())
}

/// The Garage binary for `test`; `None` (with the reason printed) if it is missing and
/// `WIKISEARCH_SKIP_S3=1`; a missing binary otherwise fails the test.
pub fn require_garage(test: &str) -> Option<PathBuf> {
    if let Some(binary) = garage_binary() {
        return Some(binary);
    }
    let reason = "no garage binary (WIKISEARCH_GARAGE, ~/.cache/wikisearch-tools/bin/garage \
                  or PATH; .ci/run installs it)";
    if std::env::var("WIKISEARCH_SKIP_S3").as_deref() == Ok("1") {
        eprintln!("skipping {test}: {reason}, and WIKISEARCH_SKIP_S3=1");
        return None;
    }
    panic!("{test}: {reason}; set WIKISEARCH_SKIP_S3=1 to skip the S3 tests");
}

/// A running single-node Garage store with bucket [`BUCKET`] and one read-write key.
pub struct Garage {
    binary: PathBuf,
    dir: PathBuf,
    config: PathBuf,
    server: Option<ChildGuard>,
    starts: usize,
    pub s3_port: u16,
    pub key_id: String,
    pub secret_key: String,
}

impl Garage {
    /// Starts a store in `dir` (created) and sets up its layout, key and bucket.
    pub fn start(binary: &Path, dir: &Path) -> Garage {
        std::fs::create_dir_all(dir).expect("garage dir");
        let s3_port = free_port();
        let config = dir.join("garage.toml");
        std::fs::write(&config, config_text(dir, s3_port)).expect("write garage.toml");
        let mut garage = Garage {
            binary: binary.to_path_buf(),
            dir: dir.to_path_buf(),
            config,
            server: None,
            starts: 0,
            s3_port,
            key_id: String::new(),
            secret_key: String::new(),
        };
        garage.restart();
        garage.set_up();
        garage
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// The `AWS_*` variables a process needs to use the store.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint()),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_ACCESS_KEY_ID", self.key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.clone()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ]
    }

    /// The cluster file's `[s3]` table for this store, with extra `lines` (retries...).
    pub fn s3_table(&self, lines: &str) -> String {
        format!(
            "\n[s3]\nendpoint = \"{}\"\nregion = \"{REGION}\"\naccess_key_id = \"{}\"\n\
             secret_access_key = \"{}\"\n{lines}\n",
            self.endpoint(),
            self.key_id,
            self.secret_key
        )
    }

    /// Stops the server (SIGKILL: a crashed or unreachable store).
    pub fn stop(&mut self) {
        self.server = None;
    }

    /// Starts the server (again) on the same ports and data; returns once it answers.
    pub fn restart(&mut self) {
        self.starts += 1;
        let log_path = self.dir.join(format!("garage-{}.log", self.starts));
        let log = std::fs::File::create(&log_path).expect("garage log");
        let mut cmd = Command::new(&self.binary);
        cmd.arg("-c")
            .arg(&self.config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdout(Stdio::null())
            .stderr(log);
        self.server = Some(ChildGuard::spawn("garage", &mut cmd));
        wait_for("garage to answer `status`", Duration::from_secs(60), || {
            let out = self.command(&["status"]).output().ok()?;
            out.status.success().then_some(())
        });
        wait_for("garage's S3 port", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", self.s3_port)).ok()
        });
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("-c").arg(&self.config).args(args);
        cmd
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = run_ok(&mut self.command(args));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Single-node layout, a key, the bucket, the key's rights on it.
    fn set_up(&mut self) {
        let status = self.cli(&["status"]);
        let node = status
            .lines()
            .find(|l| l.contains("NO ROLE ASSIGNED"))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no unassigned node in `garage status`:\n{status}"))
            .to_string();
        self.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        self.cli(&["layout", "apply", "--version", "1"]);
        let key = self.cli(&["key", "create", "wikisearch-test"]);
        let field = |label: &str| {
            key.lines()
                .find(|l| l.trim_start().starts_with(label))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_else(|| panic!("no {label:?} in `garage key create`:\n{key}"))
        };
        self.key_id = field("Key ID");
        self.secret_key = field("Secret key");
        self.cli(&["bucket", "create", BUCKET]);
        self.cli(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            BUCKET,
            "--key",
            "wikisearch-test",
        ]);
    }
}

/// A single-node Garage configuration in `dir`, S3 on `s3_port`, RPC and admin on other
/// free ports.
fn config_text(dir: &Path, s3_port: u16) -> String {
    let (rpc, admin) = (free_port(), free_port());
    format!(
        "metadata_dir = \"{meta}\"\ndata_dir = \"{data}\"\ndb_engine = \"sqlite\"\n\
         replication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
         rpc_public_addr = \"127.0.0.1:{rpc}\"\n\
         rpc_secret = \"{secret}\"\n\n[s3_api]\ns3_region = \"{REGION}\"\n\
         api_bind_addr = \"127.0.0.1:{s3_port}\"\nroot_domain = \".s3.garage\"\n\n\
         [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\nadmin_token = \"wikisearch-test-admin\"\n",
        meta = dir.join("meta").display(),
        data = dir.join("data").display(),
        secret = "5f".repeat(32),
    )
}
