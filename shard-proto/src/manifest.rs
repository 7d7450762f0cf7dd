//! Shard manifests: the `manifest.json` written next to every shard's tantivy files. It says
//! which shard this is, which input and slice it came from, how many documents it holds,
//! what was skipped, which schema and tantivy built it, and lists every index file with its
//! size and blake3 hash.
//!
//! It is how a searcher node proves that a shard copy is complete and uncorrupted before
//! serving it: [`ShardManifest::read`] detects a damaged manifest (the manifest carries a
//! checksum of itself), [`ShardManifest::verify_files`] detects a missing, extra, truncated
//! or corrupted index file, and [`ShardManifest::check_schema`] refuses a shard built with
//! another schema. The indexer writes the manifest last, so its presence plus a successful
//! verification means the shard is whole.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::schema::WikiSchema;
use crate::shard_id::ShardId;

/// File name of the manifest inside a shard directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Bumped when the manifest's fields change meaning.
pub const MANIFEST_FORMAT: u32 = 1;
/// Where [`ShardManifest::write`] stages the manifest before renaming it into place.
const MANIFEST_TMP_FILE: &str = "manifest.json.tmp";

/// Where a shard's documents came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputInfo {
    /// The input path as given to the indexer.
    pub path: String,
    /// Size of the whole input file in bytes.
    pub bytes: u64,
    /// Detected input format (`xml`, `bzip2`, `bzip2-multistream`, ...).
    pub format: String,
}

/// One index file of the shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// File name relative to the shard directory (tantivy directories are flat).
    pub name: String,
    pub bytes: u64,
    /// blake3 of the file's content, lowercase hex.
    pub blake3: String,
}

/// The manifest of one shard (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardManifest {
    /// [`MANIFEST_FORMAT`] of the writer.
    pub format: u32,
    pub shard: ShardId,
    /// [`WikiSchema::fingerprint`] of the schema the shard was built with.
    pub schema: String,
    /// `tantivy::version_string()` of the builder.
    pub tantivy_version: String,
    pub input: InputInfo,
    /// Documents in the shard.
    pub docs: u64,
    /// Pages routed to this shard but not indexed, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Every index file (lock files and the manifest itself excluded), sorted by name.
    pub files: Vec<FileEntry>,
    /// Seconds since the Unix epoch when the shard was published.
    pub created_unix: u64,
    /// blake3 (hex) of this manifest serialized with `checksum` empty.
    pub checksum: String,
}

impl ShardManifest {
    /// Reads `dir/manifest.json` and checks its self-checksum, so that a truncated or
    /// edited manifest is refused rather than trusted.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        Self::from_bytes(&bytes, &path)
    }

    /// Parses a manifest's bytes and checks its self-checksum; `path` (a file or an
    /// object's URL) names it in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let path = path.to_path_buf();
        let invalid = |reason: String| Error::InvalidManifest {
            path: path.clone(),
            reason,
        };
        let manifest: ShardManifest =
            serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(invalid(format!(
                "format {} (this binary reads format {MANIFEST_FORMAT})",
                manifest.format
            )));
        }
        let expected = manifest.compute_checksum();
        if manifest.checksum != expected {
            return Err(invalid(format!(
                "checksum mismatch: recorded {:?}, content hashes to {expected}",
                manifest.checksum
            )));
        }
        Ok(manifest)
    }

    /// Computes the checksum and writes the manifest durably: temp file, fsync, rename,
    /// fsync of the directory.
    pub fn write(&mut self, dir: &Path) -> Result<()> {
        self.checksum = self.compute_checksum();
        let json = self.to_json();
        let tmp = dir.join(MANIFEST_TMP_FILE);
        let path = dir.join(MANIFEST_FILE);
        let mut file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        file.write_all(&json)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io(&tmp, e))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        sync_dir(dir)
    }

    /// Lists every index file of the tantivy index in `dir` with its size and blake3,
    /// sorted by name; lock files and the manifest are left out.
    pub fn describe_files(dir: &Path) -> Result<Vec<FileEntry>> {
        let mut files = Vec::new();
        for name in index_file_names(dir)? {
            let path = dir.join(&name);
            let (bytes, blake3) = hash_file(&path)?;
            files.push(FileEntry {
                name,
                bytes,
                blake3,
            });
        }
        Ok(files)
    }

    /// Checks the files in `dir` against the manifest: every listed file present with its
    /// size and hash, and no unlisted index file. The error names the offending file.
    pub fn verify_files(&self, dir: &Path) -> Result<()> {
        let fail = |reason: String| Error::Verification {
            shard: self.shard.to_string(),
            reason,
        };
        let present = index_file_names(dir)?;
        for entry in &self.files {
            self.verify_file(dir, entry, |_| {})?;
        }
        if let Some(extra) = present
            .iter()
            .find(|name| !self.files.iter().any(|f| &f.name == *name))
        {
            return Err(fail(format!("unexpected file {extra} not in the manifest")));
        }
        Ok(())
    }

    /// Checks one listed file of `dir` (size, then blake3); `pace` is called after each
    /// chunk read with its length, so a background scrub can throttle itself. The error
    /// names the file.
    pub fn verify_file(&self, dir: &Path, entry: &FileEntry, pace: impl FnMut(u64)) -> Result<()> {
        let fail = |reason: String| Error::Verification {
            shard: self.shard.to_string(),
            reason,
        };
        let path = dir.join(&entry.name);
        let size = match fs::metadata(&path) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(fail(format!("file {} is missing", entry.name)));
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        if size != entry.bytes {
            return Err(fail(format!(
                "file {} has {size} bytes, manifest says {}",
                entry.name, entry.bytes
            )));
        }
        let (_, hash) = hash_file_paced(&path, pace)?;
        if hash != entry.blake3 {
            return Err(fail(format!(
                "file {} is corrupted: blake3 {hash}, manifest says {}",
                entry.name, entry.blake3
            )));
        }
        Ok(())
    }

    /// Refuses a shard built with another schema than `schema` under any [`Analysis`]
    /// (another version or set of fields); returns the schema it was built with.
    ///
    /// [`Analysis`]: crate::Analysis
    pub fn check_schema(&self, schema: &WikiSchema) -> Result<WikiSchema> {
        if self.schema == schema.fingerprint() {
            return Ok(schema.clone());
        }
        WikiSchema::from_fingerprint(&self.schema).ok_or_else(|| Error::SchemaMismatch {
            expected: schema.fingerprint(),
            found: self.schema.clone(),
        })
    }

    /// How the shard's text was analyzed, if its schema is one this binary knows.
    pub fn analysis(&self) -> Option<crate::Analysis> {
        WikiSchema::from_fingerprint(&self.schema).map(|schema| schema.analysis)
    }

    /// Everything a node checks before serving `dir`: manifest integrity, schema, files.
    pub fn read_verified(dir: &Path, schema: &WikiSchema) -> Result<Self> {
        let manifest = Self::read(dir)?;
        manifest.check_schema(schema)?;
        manifest.verify_files(dir)?;
        Ok(manifest)
    }

    /// Total size of the index files.
    pub fn index_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a manifest always serializes")
    }

    /// blake3 of the canonical serialization with `checksum` blanked. Hashing the
    /// re-serialized value (not the raw bytes) keeps the check independent of formatting
    /// while any change of a value, or an added field (`deny_unknown_fields`), fails.
    fn compute_checksum(&self) -> String {
        let mut blank = self.clone();
        blank.checksum.clear();
        blake3::hash(&blank.to_json()).to_hex().to_string()
    }
}

/// fsyncs a directory, so that renames and new entries in it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Whether a file in a shard directory is part of the index proper.
fn is_index_file(name: &str) -> bool {
    !(name.ends_with(".lock") || name == MANIFEST_FILE || name == MANIFEST_TMP_FILE)
}

/// Names of the index files in `dir`, sorted. Subdirectories are an error: tantivy's
/// directories are flat, so one would be foreign.
fn index_file_names(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_index_file(&name) {
            continue;
        }
        let kind = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
        if !kind.is_file() {
            return Err(Error::InvalidManifest {
                path: PathBuf::from(dir),
                reason: format!("unexpected non-file entry {name} in a shard directory"),
            });
        }
        names.push(name);
    }
    names.sort();
    Ok(names)
}

/// Size and blake3 (hex) of a file, streamed in 1 MiB chunks.
fn hash_file(path: &Path) -> Result<(u64, String)> {
    hash_file_paced(path, |_| {})
}

fn hash_file_paced(path: &Path, mut pace: impl FnMut(u64)) -> Result<(u64, String)> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
        pace(n as u64);
    }
    Ok((total, hasher.finalize().to_hex().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::{doc, Index, IndexWriter};

    /// A real one-segment shard with a few documents and its manifest.
    fn build_shard(dir: &Path) -> ShardManifest {
        let schema = WikiSchema::new();
        let index = Index::create_in_dir(dir, schema.schema.clone()).unwrap();
        let mut writer: IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
        let f = schema.fields;
        for id in 0..50u64 {
            writer
                .add_document(doc!(f.id => id, f.title => format!("Title {id}"),
                    f.body => "some body text ".repeat(20), f.url => "https://x/", f.categories => "c"))
                .unwrap();
        }
        writer.commit().unwrap();
        writer.wait_merging_threads().unwrap();
        let mut manifest = ShardManifest {
            format: MANIFEST_FORMAT,
            shard: ShardId::new(0, 1, 0, 1).unwrap(),
            schema: schema.fingerprint(),
            tantivy_version: tantivy::version_string().to_string(),
            input: InputInfo {
                path: "in.xml".into(),
                bytes: 123,
                format: "xml".into(),
            },
            docs: 50,
            skipped: BTreeMap::from([("malformed".to_string(), 1)]),
            files: ShardManifest::describe_files(dir).unwrap(),
            created_unix: 1,
            checksum: String::new(),
        };
        manifest.write(dir).unwrap();
        manifest
    }

    /// The largest segment file: the one whose corruption matters most.
    fn largest_segment_file(manifest: &ShardManifest) -> String {
        manifest
            .files
            .iter()
            .filter(|f| !f.name.ends_with(".json"))
            .max_by_key(|f| f.bytes)
            .unwrap()
            .name
            .clone()
    }

    fn verify(dir: &Path) -> Result<ShardManifest> {
        ShardManifest::read_verified(dir, &WikiSchema::new())
    }

    #[test]
    fn round_trip_and_clean_shard_verifies() {
        let tmp = tempfile::tempdir().unwrap();
        let written = build_shard(tmp.path());
        let read = verify(tmp.path()).unwrap();
        assert_eq!(read, written);
        assert!(read.files.iter().any(|f| f.name == "meta.json"));
        assert!(read.files.iter().all(|f| !f.name.ends_with(".lock")));
        assert!(read.index_bytes() > 0);
    }

    #[test]
    fn corrupted_byte_in_segment_file_is_detected() {
        let tmp = tempfile::tempdir().unwrap();
        let manifest = build_shard(tmp.path());
        let name = largest_segment_file(&manifest);
        let path = tmp.path().join(&name);
        let mut bytes = fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        fs::write(&path, bytes).unwrap();
        let err = verify(tmp.path()).unwrap_err().to_string();
        assert!(err.contains(&name) && err.contains("corrupted"), "{err}");
    }

    #[test]
    fn truncated_or_missing_or_extra_file_is_detected() {
        let tmp = tempfile::tempdir().unwrap();
        let manifest = build_shard(tmp.path());
        let name = largest_segment_file(&manifest);
        let path = tmp.path().join(&name);
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        let err = verify(tmp.path()).unwrap_err().to_string();
        assert!(err.contains(&name) && err.contains("bytes"), "{err}");

        fs::remove_file(&path).unwrap();
        let err = verify(tmp.path()).unwrap_err().to_string();
        assert!(err.contains(&name) && err.contains("missing"), "{err}");

        fs::write(&path, &bytes).unwrap();
        verify(tmp.path()).unwrap();
        fs::write(tmp.path().join("stray.idx"), b"x").unwrap();
        let err = verify(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("stray.idx"), "{err}");
        fs::remove_file(tmp.path().join("stray.idx")).unwrap();
        // Lock files come and go with readers: they never fail verification.
        fs::write(tmp.path().join(".tantivy-meta.lock"), b"").unwrap();
        verify(tmp.path()).unwrap();
    }

    #[test]
    fn truncated_manifest_is_detected() {
        let tmp = tempfile::tempdir().unwrap();
        build_shard(tmp.path());
        let path = tmp.path().join(MANIFEST_FILE);
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() * 2 / 3]).unwrap();
        let err = verify(tmp.path()).unwrap_err();
        assert!(matches!(err, Error::InvalidManifest { .. }), "{err}");
    }

    #[test]
    fn edited_manifest_is_detected() {
        let tmp = tempfile::tempdir().unwrap();
        build_shard(tmp.path());
        let path = tmp.path().join(MANIFEST_FILE);
        let text = fs::read_to_string(&path).unwrap();
        let edited = text.replace("\"docs\": 50", "\"docs\": 51");
        assert_ne!(edited, text);
        fs::write(&path, edited).unwrap();
        let err = verify(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");

        // Reformatting alone (same values) is not an edit.
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        fs::write(&path, serde_json::to_vec(&value).unwrap()).unwrap();
        verify(tmp.path()).unwrap();
    }

    #[test]
    fn other_schema_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let mut manifest = build_shard(tmp.path());
        manifest.schema = "v0-0000000000000000".into();
        manifest.write(tmp.path()).unwrap();
        let err = verify(tmp.path()).unwrap_err();
        assert!(matches!(err, Error::SchemaMismatch { .. }), "{err}");
    }
}
