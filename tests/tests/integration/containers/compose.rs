//! The Compose cluster of `deploy/compose/` driven by a test: the images built from the
//! binaries this test run built (`deploy/compose/build-images.sh`, nothing pulled), a
//! project of its own (unique name, free front-end port, fresh secrets, a copy of the
//! cluster file with healing set to seconds), `docker` calls on its containers, and a
//! guard that always runs `compose down -v` (containers, network, volumes), printing the
//! end of every container's log first if the test failed.
//!
//! Works with the Compose plugin (`docker compose`) and the older standalone
//! `docker-compose` (1.29, what Debian 12 ships).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tests::{bin, run_ok, shared_corpus, workspace_root};

/// Image tags of the test's own builds (a user's `wikisearch:latest` is left alone).
const IMAGE: &str = "wikisearch-test:latest";
const GARAGE_IMAGE: &str = "wikisearch-garage-test:latest";

/// The Compose command this machine has, or why there is none (Docker absent).
pub fn compose_command() -> Result<Vec<String>, String> {
    fn works(args: &[&str]) -> bool {
        Command::new(args[0])
            .args(&args[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
    if !works(&["docker", "info"]) {
        return Err("no Docker daemon answers `docker info`".into());
    }
    if works(&["docker", "compose", "version"]) {
        return Ok(vec!["docker".into(), "compose".into()]);
    }
    if works(&["docker-compose", "version"]) {
        return Ok(vec!["docker-compose".into()]);
    }
    Err("Docker has no Compose (`docker compose` or `docker-compose`)".into())
}

/// The image id of a tag, if it exists.
fn image_id(tag: &str) -> Option<String> {
    let out = Command::new("docker")
        .args(["image", "inspect", "-f", "{{.Id}}", tag])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Builds both images from the binaries of this test run (stripped, as a user's are),
/// removing the previous run's (left untagged by the new build).
pub fn build_images(garage: &Path) {
    let previous: Vec<String> = [IMAGE, GARAGE_IMAGE]
        .into_iter()
        .filter_map(image_id)
        .collect();
    let bin_dir = bin("searcher")
        .parent()
        .expect("binaries live in a directory")
        .to_path_buf();
    bin("indexer");
    bin("wikisearch");
    let script = workspace_root().join("deploy/compose/build-images.sh");
    let output = run_ok(
        Command::new("bash")
            .arg(script)
            .env("WIKISEARCH_SKIP_BUILD", "1")
            .env("WIKISEARCH_BIN_DIR", &bin_dir)
            .env("WIKISEARCH_TAG", IMAGE)
            .env("WIKISEARCH_GARAGE_TAG", GARAGE_IMAGE)
            .env("WIKISEARCH_GARAGE", garage)
            .env("WIKISEARCH_WRITE_ENV", "0"),
    );
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        if line.ends_with(" MB") {
            println!("image {line}");
        }
    }
    let current: Vec<String> = [IMAGE, GARAGE_IMAGE]
        .into_iter()
        .filter_map(image_id)
        .collect();
    for old in previous.iter().filter(|id| !current.contains(id)) {
        let _ = Command::new("docker")
            .args(["rmi", old])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// One Compose project: `down -v` when dropped.
pub struct Project {
    compose: Vec<String>,
    pub name: String,
    /// `docker-compose.yml`, then any override files, merged in order.
    files: Vec<PathBuf>,
    env: Vec<(String, String)>,
    pub port: u16,
    /// Service → container id, read once every container runs (`ps` of Compose 2 omits
    /// stopped containers, and the faults stop them).
    containers: std::collections::BTreeMap<String, String>,
}

/// `n` random bytes as hex, from the kernel.
fn random_hex(n: usize) -> String {
    use std::io::Read as _;
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Project {
    /// A project named after this process, its cluster file `cluster_file` (a copy the
    /// test wrote), its front-end on `port`.
    pub fn new(compose: Vec<String>, cluster_file: &Path, port: u16) -> Project {
        let env = [
            ("WIKISEARCH_IMAGE", IMAGE.to_string()),
            ("WIKISEARCH_GARAGE_IMAGE", GARAGE_IMAGE.to_string()),
            ("WIKISEARCH_PORT", port.to_string()),
            (
                "WIKISEARCH_CLUSTER_FILE",
                cluster_file.display().to_string(),
            ),
            (
                "WIKISEARCH_DUMP",
                shared_corpus("enwiki-sample.xml.bz2").display().to_string(),
            ),
            ("WIKISEARCH_CLUSTER_SECRET", random_hex(32)),
            ("GARAGE_RPC_SECRET", random_hex(32)),
            ("WIKISEARCH_S3_KEY_ID", format!("GK{}", random_hex(12))),
            ("WIKISEARCH_S3_SECRET", random_hex(32)),
        ];
        Project {
            compose,
            // Compose 1 keeps only [a-z0-9_-] of a project name.
            name: format!("wsit{}", std::process::id()),
            files: vec![workspace_root().join("deploy/compose/docker-compose.yml")],
            env: env.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            port,
            containers: Default::default(),
        }
    }

    /// The project with `file` merged over `docker-compose.yml` (Compose's `-f` order).
    pub fn with_override(mut self, file: PathBuf) -> Project {
        self.files.push(file);
        self
    }

    /// `compose -p NAME -f FILE... args...`, with the project's variables.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.compose[0]);
        cmd.args(&self.compose[1..])
            .args(["-p", self.name.as_str()]);
        for file in &self.files {
            cmd.arg("-f").arg(file);
        }
        cmd.args(args);
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        cmd
    }

    /// `compose up -d`: returns once every container is started (the indexer jobs
    /// done); then notes the id of each of `services`' containers.
    pub fn up(&mut self, services: &[&str]) {
        run_ok(&mut self.command(&["up", "-d", "--no-color"]));
        for &service in services {
            let out = run_ok(&mut self.command(&["ps", "-q", service]));
            let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
            assert!(!id.is_empty(), "no container for service {service}");
            self.containers.insert(service.to_string(), id);
        }
    }

    /// The container id of a service given to [`Project::up`].
    fn container(&self, service: &str) -> &str {
        &self.containers[service]
    }

    /// `docker ARGS... <the service's container>`, checked.
    pub fn docker(&self, args: &[&str], service: &str) -> Output {
        run_ok(
            Command::new("docker")
                .args(args)
                .arg(self.container(service)),
        )
    }

    /// `compose run --rm --no-deps SERVICE ARGS...` (a one-off container of the service's
    /// image, network and environment), checked.
    pub fn run(&self, service: &str, args: &[&str]) -> Output {
        let mut all = vec!["run", "--rm", "--no-deps", service];
        all.extend_from_slice(args);
        run_ok(&mut self.command(&all))
    }

    /// `docker stop` (SIGTERM, then the node drains); the exit code it stopped with.
    pub fn stop(&self, service: &str) -> i64 {
        self.docker(&["stop", "-t", "30"], service);
        let out = self.docker(&["inspect", "-f", "{{.State.ExitCode}}"], service);
        let code = String::from_utf8_lossy(&out.stdout);
        code.trim().parse().expect("an exit code")
    }

    /// The end of every container's log.
    fn print_logs(&self) {
        if let Ok(out) = self
            .command(&["logs", "--no-color", "--tail", "25"])
            .output()
        {
            eprintln!("--- compose logs\n{}", String::from_utf8_lossy(&out.stdout));
        }
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_logs();
        }
        let down = self
            .command(&["down", "-v", "--remove-orphans", "-t", "5"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !down.is_ok_and(|s| s.success()) {
            eprintln!("compose down -v of project {} failed", self.name);
        }
    }
}
