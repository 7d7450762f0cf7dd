//! Copying a shard from a live replica: the serving side (one range of one file per call,
//! over the authenticated RPC) and the copying side ([`copy_from_peer`]), used by healing
//! when the shard store cannot give a good copy: an object corrupted or missing, a store
//! unreachable. The copy goes through the one install path (`replicas::install_with`):
//! into a temporary directory, every file verified against the manifest, renamed into
//! place; so a peer's bad byte is refused exactly as a store's is.
//!
//! Only files the replica's manifest lists are served (no path from the request reaches
//! the file system), only from a verified copy the node serves, and only when the asker's
//! manifest names the same content (its blake3), so two builds of a shard never mix.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;
use std::time::Duration;

use shard_proto::manifest::ShardManifest;
use shard_proto::wire::{ChunkRequest, ChunkResponse, MAX_CHUNK_BYTES};

use super::leaf::{BadRequest, Leaf};
use crate::rpc::NodeClient;

/// How long one chunk may take to arrive.
const CHUNK_BUDGET: Duration = Duration::from_secs(30);

/// The range of a served replica's file that `request` asks for.
pub fn read_chunk(leaf: &Leaf, request: &ChunkRequest) -> Result<ChunkResponse, BadRequest> {
    if request.len > MAX_CHUNK_BYTES {
        return Err(BadRequest(format!(
            "a chunk is at most {MAX_CHUNK_BYTES} bytes, not {}",
            request.len
        )));
    }
    let replica = leaf
        .replica(None, &request.shard)
        .map_err(|reason| BadRequest(format!("shard {}: {reason}", request.shard)))?;
    let entry = (replica.manifest.files.iter())
        .find(|f| f.name == request.file)
        .ok_or_else(|| {
            BadRequest(format!(
                "shard {} has no file {:?}",
                request.shard, request.file
            ))
        })?;
    if entry.blake3 != request.blake3 {
        return Err(BadRequest(format!(
            "shard {}: file {} here is another build (blake3 {})",
            request.shard, entry.name, entry.blake3
        )));
    }
    let len = (request.len as u64).min(entry.bytes.saturating_sub(request.offset));
    let path = replica.dir.join(&entry.name);
    let mut data = vec![0; len as usize];
    File::open(&path)
        .and_then(|mut file| {
            file.seek(SeekFrom::Start(request.offset))?;
            file.read_exact(&mut data)
        })
        .map_err(|e| BadRequest(format!("reading {}: {e}", path.display())))?;
    Ok(ChunkResponse {
        file_bytes: entry.bytes,
        data,
    })
}

/// Copies the files `manifest` lists, and the manifest, from `peer`'s replica into the
/// empty directory `dest`, checking each file's size and blake3 as it arrives. Runs on a
/// blocking thread of the runtime (the RPC itself runs on the runtime).
pub fn copy_from_peer(
    peer: &NodeClient,
    manifest: &ShardManifest,
    dest: &Path,
) -> Result<(), String> {
    let runtime = tokio::runtime::Handle::current();
    for entry in &manifest.files {
        let path = dest.join(&entry.name);
        let mut file = File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut hasher = blake3::Hasher::new();
        let mut offset = 0;
        while offset < entry.bytes {
            let request = ChunkRequest {
                shard: manifest.shard,
                file: entry.name.clone(),
                blake3: entry.blake3.clone(),
                offset,
                len: MAX_CHUNK_BYTES,
            };
            let chunk = runtime
                .block_on(peer.replica_chunk(&request, CHUNK_BUDGET))
                .map_err(|e| format!("node {}: {}: {e}", peer.node_id(), entry.name))?;
            if chunk.data.is_empty() || chunk.file_bytes != entry.bytes {
                return Err(format!(
                    "node {}: {} is {} bytes there, {} in the manifest",
                    peer.node_id(),
                    entry.name,
                    chunk.file_bytes,
                    entry.bytes
                ));
            }
            hasher.update(&chunk.data);
            file.write_all(&chunk.data)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            offset += chunk.data.len() as u64;
        }
        let got = hasher.finalize().to_hex();
        if got.as_str() != entry.blake3 {
            return Err(format!(
                "node {}: {} arrived with blake3 {got}, manifest says {}",
                peer.node_id(),
                entry.name,
                entry.blake3
            ));
        }
    }
    manifest.clone().write(dest).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use shard_proto::ShardId;

    use super::*;
    use crate::node::replicas;
    use crate::test_support::{build_store, write_secret};

    #[test]
    fn chunks_come_only_from_listed_files_of_the_same_build() {
        let tmp = tempfile::tempdir().unwrap();
        build_store(&tmp.path().join("store"), 2);
        write_secret(tmp.path());
        let text = format!(
            "shard_store = \"store\"\nreplication = 1\n[auth]\nsecret_file = \"secret\"\n\
             [[node]]\nid = \"a\"\nrpc = \"127.0.0.1:1\"\ndata_dir = \"{}\"\n",
            tmp.path().join("a").display()
        );
        let path = tmp.path().join("cluster.toml");
        std::fs::write(&path, text).unwrap();
        let config = crate::cluster::ClusterConfig::load(&path).unwrap();
        let schema = shard_proto::WikiSchema::new();
        let installed = replicas::install_assigned(&config, "a", &schema).unwrap();
        let leaf = Leaf::new("a".into(), schema, installed.serving);
        let shard = *leaf.serving().iter().next().unwrap();
        let replica = leaf.replica(None, &shard).unwrap();
        let file = replica
            .manifest
            .files
            .iter()
            .max_by_key(|f| f.bytes)
            .unwrap();
        let on_disk = std::fs::read(replica.dir.join(&file.name)).unwrap();
        let ask = |name: &str, blake3: &str, offset: u64, len: u32| {
            let request = ChunkRequest {
                shard,
                file: name.to_string(),
                blake3: blake3.to_string(),
                offset,
                len,
            };
            read_chunk(&leaf, &request)
        };

        let half = (file.bytes / 2) as u32;
        let chunk = ask(&file.name, &file.blake3, 10, half).unwrap();
        assert_eq!(chunk.file_bytes, file.bytes);
        assert_eq!(chunk.data, on_disk[10..10 + half as usize]);
        let tail = ask(&file.name, &file.blake3, file.bytes - 3, MAX_CHUNK_BYTES).unwrap();
        assert_eq!(tail.data, on_disk[on_disk.len() - 3..]);

        let refused = |result: Result<ChunkResponse, BadRequest>| result.unwrap_err().0;
        assert!(refused(ask("../cluster.toml", &file.blake3, 0, 10)).contains("no file"));
        assert!(refused(ask("meta.json.manifest", &file.blake3, 0, 10)).contains("no file"));
        assert!(refused(ask(&file.name, "00", 0, 10)).contains("another build"));
        assert!(refused(ask(&file.name, &file.blake3, 0, MAX_CHUNK_BYTES + 1)).contains("at most"));
        let elsewhere: ShardId = "n0of1-s7of8".parse().unwrap();
        let request = ChunkRequest {
            shard: elsewhere,
            file: file.name.clone(),
            blake3: file.blake3.clone(),
            offset: 0,
            len: 10,
        };
        assert!(refused(read_chunk(&leaf, &request)).contains("not served"));
    }
}
