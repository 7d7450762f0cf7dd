//! The shard store on S3-compatible object storage (`shard_store = "s3://bucket/prefix"`),
//! through the `object_store` crate: the same layout as a directory store (see
//! [`crate::store`]), one object per file, `<prefix>/<shard dir>/<file>` and
//! `<prefix>/nIofK.slice.json`.
//!
//! Endpoint, region and credentials come from the usual `AWS_*` environment variables
//! (`AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_ALLOW_HTTP`, ...), overridden by the cluster file's `[s3]` table ([`S3Config`]).
//! Transient failures (refused connections, 5xx, timeouts of idempotent requests) are
//! retried with exponential backoff by `object_store` itself ([`RetryConfig`]); what is
//! left is a permanent error, reported with the object's `s3://` URL.
//!
//! Callers are synchronous (replica installation runs on a blocking thread, the indexer
//! has no runtime), so every operation runs on one process-wide runtime of this module
//! and the caller waits for it: never dropped, so it is safe to call from anywhere,
//! inside another runtime included.

use std::fmt;
use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
    WriteMultipart,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::manifest::FileEntry;

/// Files above this size are uploaded in parts (S3's minimum part is 5 MiB).
const MULTIPART_THRESHOLD: u64 = 16 << 20;
/// Size of one part of a multipart upload.
const PART_BYTES: usize = 8 << 20;
/// Parts of one file in flight at once.
const PARTS_IN_FLIGHT: usize = 4;

/// The cluster file's `[s3]` table: every field overrides its `AWS_*` variable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// e.g. `http://127.0.0.1:3900` for a local Garage or MinIO (default: AWS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<String>,
    /// Allow a plain `http://` endpoint (default: only with an `http://` endpoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_http: Option<bool>,
    /// Retries of one request on a transient error, with exponential backoff.
    pub max_retries: usize,
    /// No retry starts later than this after the first attempt.
    pub retry_timeout_s: u64,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            allow_http: None,
            max_retries: 10,
            retry_timeout_s: 180,
        }
    }
}

/// `s3://bucket/prefix`: where a store lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Without leading or trailing `/`; may be empty.
    pub prefix: String,
}

impl FromStr for S3Location {
    type Err = Error;

    fn from_str(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| Error::Store(format!("{url:?} is not an s3:// URL")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::Store(format!("{url:?} names no bucket")));
        }
        Ok(S3Location {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix.as_str() {
            "" => write!(f, "s3://{}", self.bucket),
            prefix => write!(f, "s3://{}/{prefix}", self.bucket),
        }
    }
}

/// An opened S3 store (cheap to clone).
#[derive(Clone)]
pub struct RemoteStore {
    store: Arc<dyn ObjectStore>,
    location: S3Location,
}

impl fmt::Debug for RemoteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RemoteStore({})", self.location)
    }
}

/// What [`RemoteStore::list`] finds at the top of the store.
#[derive(Debug, Default)]
pub struct Listing {
    /// "Directories": the names of the common prefixes (shard directories).
    pub dirs: Vec<String>,
    /// The names of the objects directly under the prefix (slice records).
    pub files: Vec<String>,
}

impl RemoteStore {
    /// Opens the store at `location` with the `AWS_*` variables overridden by `config`.
    /// Nothing is sent yet: a wrong endpoint shows at the first request.
    pub fn open(location: &S3Location, config: &S3Config) -> Result<Self> {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&location.bucket);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        if let Some(key) = &config.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &config.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: config.max_retries,
            retry_timeout: Duration::from_secs(config.retry_timeout_s),
        };
        // Whole-object requests of large segment files: a generous request timeout, a
        // short connect timeout so a dead endpoint is retried (and reported) quickly.
        // These client options replace the ones `from_env` read, `AWS_ALLOW_HTTP` included,
        // so that variable is read here again.
        let env_allow = std::env::var("AWS_ALLOW_HTTP")
            .is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        let http_endpoint = (config.endpoint.as_deref()).is_some_and(|e| e.starts_with("http://"));
        let client = ClientOptions::new()
            .with_allow_http(config.allow_http.unwrap_or(env_allow || http_endpoint))
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(600));
        let store = builder
            .with_retry(retry)
            .with_client_options(client)
            .build()
            .map_err(|e| Error::Store(format!("{location}: {e}")))?;
        Ok(RemoteStore {
            store: Arc::new(store),
            location: location.clone(),
        })
    }

    /// The store's location.
    pub fn location(&self) -> &S3Location {
        &self.location
    }

    /// The key of `name` (a path relative to the store, `/`-separated).
    fn key(&self, name: &str) -> ObjectPath {
        match self.location.prefix.as_str() {
            "" => ObjectPath::from(name),
            prefix => ObjectPath::from(format!("{prefix}/{name}")),
        }
    }

    /// The `s3://` URL of `name`, for messages.
    pub fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.location)
    }

    fn error(&self, name: &str, source: object_store::Error) -> Error {
        Error::ObjectStore {
            object: self.url(name),
            source: Box::new(source),
        }
    }

    /// The shard directories and the files at the top of the store.
    pub fn list(&self) -> Result<Listing> {
        let store = Arc::clone(&self.store);
        let prefix = (!self.location.prefix.is_empty()).then(|| self.key(""));
        let listed = run(async move { store.list_with_delimiter(prefix.as_ref()).await })
            .map_err(|e| self.error("", e))?;
        let name = |path: &ObjectPath| path.filename().unwrap_or_default().to_string();
        Ok(Listing {
            dirs: listed.common_prefixes.iter().map(name).collect(),
            files: listed.objects.iter().map(|o| name(&o.location)).collect(),
        })
    }

    /// The whole object `name`, or `None` if there is none.
    pub fn get(&self, name: &str) -> Result<Option<Bytes>> {
        let (store, key) = (Arc::clone(&self.store), self.key(name));
        match run(async move { store.get(&key).await?.bytes().await }) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(name, e)),
        }
    }

    /// Writes the object `name` in one request (S3 replaces an object atomically).
    pub fn put(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        let (store, key) = (Arc::clone(&self.store), self.key(name));
        run(async move { store.put(&key, PutPayload::from(bytes)).await })
            .map(drop)
            .map_err(|e| self.error(name, e))
    }

    /// Uploads the local file `path` as `name`: in parts above [`MULTIPART_THRESHOLD`].
    pub fn upload_file(&self, name: &str, path: &Path) -> Result<()> {
        let len = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len();
        if len <= MULTIPART_THRESHOLD {
            let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            return self.put(name, bytes);
        }
        let (store, key) = (Arc::clone(&self.store), self.key(name));
        let source = path.to_path_buf();
        run(async move { multipart_upload(store, key, source).await }).map_err(|e| match e {
            Fetch::Store(e) => self.error(name, e),
            Fetch::Io(e) => Error::io(path, e),
        })
    }

    /// Downloads the object `name` into the new file `dest`, checking its size and blake3
    /// against `expect` on the way; a mismatch is an error naming the object.
    pub fn download_file(&self, name: &str, dest: &Path, expect: &FileEntry) -> Result<()> {
        let (store, key) = (Arc::clone(&self.store), self.key(name));
        let dest_owned = dest.to_path_buf();
        let outcome = run(async move { stream_to_file(store, key, dest_owned).await });
        let (bytes, hash) = outcome.map_err(|e| match e {
            Fetch::Store(e) => self.error(name, e),
            Fetch::Io(e) => Error::io(dest, e),
        })?;
        let corrupt = |reason: String| Error::Corrupt {
            object: self.url(name),
            reason,
        };
        if bytes != expect.bytes {
            return Err(corrupt(format!(
                "{bytes} bytes, the manifest says {}",
                expect.bytes
            )));
        }
        if hash != expect.blake3 {
            return Err(corrupt(format!(
                "blake3 {hash}, the manifest says {}",
                expect.blake3
            )));
        }
        Ok(())
    }

    /// Deletes every object under the directory `dir` (best effort: an error is returned
    /// after trying all of them).
    pub fn delete_dir(&self, dir: &str) -> Result<()> {
        let (store, prefix) = (Arc::clone(&self.store), self.key(dir));
        let outcome = run(async move {
            let mut failed = None;
            let mut listing = store.list(Some(&prefix));
            while let Some(meta) = listing.next().await {
                let deleted = match meta {
                    Ok(meta) => store.delete(&meta.location).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = deleted {
                    failed = Some(e);
                }
            }
            failed.map_or(Ok(()), Err)
        });
        outcome.map_err(|e| self.error(dir, e))
    }
}

/// Why a download failed: the store, or the local file.
enum Fetch {
    Store(object_store::Error),
    Io(std::io::Error),
}

/// Uploads a local file in parts of [`PART_BYTES`], [`PARTS_IN_FLIGHT`] at once; a failed
/// upload is aborted, so no parts linger in the store.
async fn multipart_upload(
    store: Arc<dyn ObjectStore>,
    key: ObjectPath,
    path: std::path::PathBuf,
) -> std::result::Result<(), Fetch> {
    use tokio::io::AsyncReadExt as _;
    let mut file = tokio::fs::File::open(&path).await.map_err(Fetch::Io)?;
    let upload = store.put_multipart(&key).await.map_err(Fetch::Store)?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
    let mut buf = vec![0u8; PART_BYTES];
    loop {
        let n = match file.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                abort(writer, &key).await;
                return Err(Fetch::Io(e));
            }
        };
        writer.write(&buf[..n]);
        if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
            abort(writer, &key).await;
            return Err(Fetch::Store(e));
        }
    }
    // `finish` aborts the upload itself when it fails.
    writer.finish().await.map(drop).map_err(Fetch::Store)
}

async fn abort(writer: WriteMultipart, key: &ObjectPath) {
    if let Err(e) = writer.abort().await {
        tracing::warn!(object = %key, "aborting a multipart upload: {e}");
    }
}

/// Streams an object into a new file, hashing it; returns its size and blake3 (hex).
async fn stream_to_file(
    store: Arc<dyn ObjectStore>,
    key: ObjectPath,
    dest: std::path::PathBuf,
) -> std::result::Result<(u64, String), Fetch> {
    let mut stream = store.get(&key).await.map_err(Fetch::Store)?.into_stream();
    let mut file = std::io::BufWriter::new(std::fs::File::create(&dest).map_err(Fetch::Io)?);
    let mut hasher = blake3::Hasher::new();
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(Fetch::Store)?;
        hasher.update(&chunk);
        total += chunk.len() as u64;
        // A local write of one chunk: short enough to do on this runtime's thread.
        file.write_all(&chunk).map_err(Fetch::Io)?;
    }
    let file = file.into_inner().map_err(|e| Fetch::Io(e.into_error()))?;
    file.sync_all().map_err(Fetch::Io)?;
    Ok((total, hasher.finalize().to_hex().to_string()))
}

/// Runs `future` on the module's runtime and waits for it (see the module docs).
fn run<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> =
        OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("object-store")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });
    match runtime {
        Ok(runtime) => match futures::executor::block_on(runtime.spawn(future)) {
            Ok(output) => output,
            // The task panicked: carry the panic over to the caller.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        },
        Err(e) => panic!("cannot start the object store's runtime: {e}"),
    }
}

impl RemoteStore {
    /// The store under `dir` (a `/`-separated path relative to this one): the same
    /// client, a longer prefix.
    pub fn sub(&self, dir: &str) -> RemoteStore {
        let prefix = match self.location.prefix.as_str() {
            "" => dir.to_string(),
            prefix => format!("{prefix}/{dir}"),
        };
        RemoteStore {
            store: Arc::clone(&self.store),
            location: S3Location {
                bucket: self.location.bucket.clone(),
                prefix,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_print() {
        let at: S3Location = "s3://shards/wiki/en/".parse().unwrap();
        assert_eq!(at.bucket, "shards");
        assert_eq!(at.prefix, "wiki/en");
        assert_eq!(at.to_string(), "s3://shards/wiki/en");
        let bare: S3Location = "s3://shards".parse().unwrap();
        assert_eq!(
            (bare.prefix.as_str(), bare.to_string()),
            ("", "s3://shards".into())
        );
        assert!("s3:///x".parse::<S3Location>().is_err());
        assert!("/mnt/shards".parse::<S3Location>().is_err());
    }

    #[test]
    fn keys_sit_under_the_prefix() {
        let config = S3Config {
            endpoint: Some("http://127.0.0.1:1".into()),
            region: Some("garage".into()),
            access_key_id: Some("k".into()),
            secret_access_key: Some("s".into()),
            ..S3Config::default()
        };
        let store = RemoteStore::open(&"s3://b/p/q".parse().unwrap(), &config).unwrap();
        assert_eq!(
            store.key("n0of1.slice.json").as_ref(),
            "p/q/n0of1.slice.json"
        );
        assert_eq!(store.url("d/f"), "s3://b/p/q/d/f");
    }
}
