//! Where the real `searcher` and `indexer` binaries are: the tools start them as separate
//! processes, exactly as an operator would, and never run serving or indexing code of
//! their own in those roles.
//!
//! They (and `wikisearch` itself) are looked for beside the running executable (`target/<profile>/`, or one level up
//! from an example or a test in `examples/` or `deps/`). Run through `cargo run -p tools`,
//! the tools first build them with the same profile (one `cargo build --workspace --bins`,
//! quick when nothing changed), so `cargo run --release -p tools -- demo` on a fresh clone
//! never starts a missing or stale binary.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

/// Paths of the engine's binaries, and of this crate's own (`wikisearch`, which the
/// comparison starts as its single-process baseline server).
#[derive(Clone, Debug)]
pub struct Binaries {
    pub searcher: PathBuf,
    pub indexer: PathBuf,
    pub wikisearch: PathBuf,
}

impl Binaries {
    /// The binaries beside this executable, built first when this runs under `cargo run`
    /// of this package.
    pub fn locate() -> anyhow::Result<Binaries> {
        let exe = std::env::current_exe().context("cannot locate this executable")?;
        let dir = profile_dir(&exe);
        if launched_by_cargo_run() {
            build_beside(&dir)?;
        }
        Binaries::in_dir(&dir)
    }

    /// The binaries in `dir`, which must both exist.
    pub fn in_dir(dir: &Path) -> anyhow::Result<Binaries> {
        let binaries = Binaries {
            searcher: dir.join("searcher"),
            indexer: dir.join("indexer"),
            wikisearch: dir.join("wikisearch"),
        };
        for path in [&binaries.searcher, &binaries.indexer, &binaries.wikisearch] {
            if !path.is_file() {
                bail!(
                    "{} not found: build the binaries first \
                     (cargo build --release -p searcher -p indexer -p tools)",
                    path.display()
                );
            }
        }
        Ok(binaries)
    }
}

/// `target/<profile>` for an executable in it, or in its `examples/` or `deps/`.
pub fn profile_dir(exe: &Path) -> PathBuf {
    let dir = exe.parent().unwrap_or(Path::new("."));
    match dir.file_name().and_then(|name| name.to_str()) {
        Some("examples" | "deps") => dir.parent().unwrap_or(dir).to_path_buf(),
        _ => dir.to_path_buf(),
    }
}

/// `cargo run -p tools` (or `cargo run --example` of this package) sets these for the
/// program it starts; a `wikisearch` started by a test of another package sees that
/// package's name and uses what the test built.
fn launched_by_cargo_run() -> bool {
    std::env::var_os("CARGO").is_some()
        && std::env::var("CARGO_PKG_NAME").is_ok_and(|name| name == env!("CARGO_PKG_NAME"))
}

/// Builds the three binaries into `dir`'s target directory with `dir`'s profile.
fn build_beside(dir: &Path) -> anyhow::Result<()> {
    build_workspace_bins(dir, false)
}

/// Builds every binary of the workspace into `dir` (a `target/<profile>` directory) with
/// one `cargo build --workspace --bins`: one cargo invocation resolves features once for
/// the whole workspace, where one `-p` build per binary resolved them per package and
/// compiled tantivy and its dependencies again for each (9 minutes of a 2-core CI run).
/// `with_tests` adds `--tests`, so the features match those of `cargo test --workspace`
/// and a test run reuses everything that command has just compiled.
pub fn build_workspace_bins(dir: &Path, with_tests: bool) -> anyhow::Result<()> {
    let profile = dir
        .file_name()
        .and_then(|name| name.to_str())
        .context("the executable is not in a target/<profile> directory")?;
    let target_dir = dir.parent().context("no target directory")?;
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build
        .args(["build", "--workspace", "--bins"])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir);
    if with_tests {
        build.arg("--tests");
    }
    // A test (or a `cargo run` program) inherits what cargo set for its own package:
    // `CARGO_PKG_NAME`, `CARGO_MANIFEST_DIR`... A nested cargo compares the variables that
    // build scripts (ring's) and `env!` recorded against its own environment, would find
    // them changed, and compile ring, rustls and the workspace's crates once more.
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(set_by_cargo_for_one_package) {
            build.env_remove(key);
        }
    }
    // `debug` is the directory of the `dev` profile.
    match profile {
        "debug" => {}
        "release" => {
            build.arg("--release");
        }
        other => {
            build.arg(format!("--profile={other}"));
        }
    }
    eprintln!("building the workspace's binaries ({profile}) ...");
    let status = build
        .status()
        .context("cannot run cargo to build the binaries")?;
    if !status.success() {
        bail!("cargo build of the workspace's binaries failed ({status})");
    }
    Ok(())
}

/// Whether cargo sets `key` for the package it builds or runs (not for the whole build).
fn set_by_cargo_for_one_package(key: &str) -> bool {
    const KEYS: [&str; 9] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    key.starts_with("CARGO_PKG_") || key.starts_with("CARGO_BIN_EXE_") || KEYS.contains(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_dir_skips_examples_and_deps() {
        let release = Path::new("/t/target/release");
        assert_eq!(profile_dir(&release.join("wikisearch")), release);
        assert_eq!(profile_dir(&release.join("examples/search_bench")), release);
        assert_eq!(profile_dir(&release.join("deps/tools-0123")), release);
    }

    #[test]
    fn a_missing_binary_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Binaries::in_dir(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("searcher not found") && err.contains("cargo build"),
            "{err}"
        );
    }
}
