//! The global link pass (issue 15): what the rest of the wiki says about an article.
//!
//! Redirects and links cross slices: a redirect and its target, a link and the article it
//! points to, are usually read by different indexer nodes. So the pass has two steps,
//! exchanged through files in a directory every indexer can read (the shard store):
//!
//! 1. `indexer links --node I --nodes K` reads slice I once ([`collect`]) and writes its
//!    [`LinkTable`]: the slice's article titles, its redirects (alias -> target) and, per
//!    link target, the number of articles linking to it and every piped-link anchor text
//!    with its count. File `links-n<I>of<K>.bin`.
//! 2. `indexer build --links DIR` ([`resolve`]) reads the K tables and keeps what its own
//!    articles need: their redirect titles, their incoming-link count (links through a
//!    redirect count for its target) and their most frequent anchor texts.
//!
//! Why a separate command rather than a rendezvous inside `build`: the K builds may run
//! one after another (tests, the README recipe on one machine), and a build waiting for
//! the tables of slices not yet read would wait forever. With two commands the order is
//! explicit (every `links`, then every `build`), and a build that misses a table fails at
//! once, naming the command that writes it.
//!
//! The signals of an article are sums and sorted lists over all K tables, so they are the
//! same for any K: the ranking does not depend on how many indexers built the index.
//! A redirect whose target is not an article of the dump (missing, in another namespace,
//! or itself a redirect) is counted, by the build whose slice number is the target's
//! hash modulo K, so the counts of the K builds add up to each such redirect once.

pub mod collect;
pub mod resolve;

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use collect::{collect, page_spool_path, LinksArgs};
pub use resolve::{resolve, LinkReport, Signals};

/// Anchor texts attached to an article, most frequent first.
pub const MAX_ANCHORS: usize = 10;
/// Longer anchor texts are sentences, not names: not kept.
pub const MAX_ANCHOR_BYTES: usize = 200;
/// Version of the table format; bumped on any change of [`LinkTable`].
pub const TABLE_FORMAT: u32 = 1;
const MAGIC: &[u8; 8] = b"WSLINKS\0";
/// Largest table accepted when decoding (a corrupt length cannot allocate more).
const MAX_TABLE_BYTES: usize = 1 << 36;

/// What the link pass attaches to one article.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArticleSignals {
    /// Titles of the redirects to it, sorted.
    pub redirects: Vec<String>,
    /// Its most frequent piped-link anchor texts (at most [`MAX_ANCHORS`]).
    pub anchors: Vec<String>,
    /// Articles linking to it, directly or through a redirect.
    pub links_in: u64,
}

/// One redirect page of the main namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redirect {
    /// The redirect's own title (the alias), canonical.
    pub title: String,
    /// The title it redirects to, canonical.
    pub target: String,
}

/// Everything the articles of one slice link to one title with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkTarget {
    /// The linked title, canonical.
    pub title: String,
    /// Articles of the slice with at least one link to it.
    pub links: u64,
    /// Piped-link anchor texts and how many articles use each, sorted by text.
    pub anchors: Vec<(String, u64)>,
}

/// One slice's contribution to the link pass (see the module docs). The fields' order is
/// the file's: [`TableHead`] decodes the fields before `targets`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkTable {
    pub format: u32,
    pub node: u32,
    pub nodes: u32,
    /// Canonical titles of the slice's articles, sorted.
    pub articles: Vec<String>,
    /// Main-namespace redirects of the slice, sorted by title.
    pub redirects: Vec<Redirect>,
    /// Link targets of the slice's articles, sorted by title.
    pub targets: Vec<LinkTarget>,
}

/// `DIR/links-n<I>of<K>.bin`.
pub fn table_path(dir: &Path, node: u32, nodes: u32) -> PathBuf {
    dir.join(format!("links-n{node}of{nodes}.bin"))
}

impl LinkTable {
    /// Writes the table atomically (temporary file, fsync, rename): a reader sees the
    /// whole table or none. Layout: magic, blake3 of the payload, bincode payload.
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = table_path(dir, self.node, self.nodes);
        let temp = dir.join(format!(
            ".tmp-links-n{}of{}-{}",
            self.node,
            self.nodes,
            std::process::id()
        ));
        let payload = bincode::serde::encode_to_vec(self, bincode::config::standard())
            .map_err(|e| Error::Links(format!("encoding the link table: {e}")))?;
        let written = File::create(&temp).and_then(|file| {
            let mut out = BufWriter::new(file);
            out.write_all(MAGIC)?;
            out.write_all(blake3::hash(&payload).as_bytes())?;
            out.write_all(&payload)?;
            out.into_inner().map_err(|e| e.into_error())?.sync_all()
        });
        if let Err(e) = written.and_then(|()| fs::rename(&temp, &path)) {
            let _ = fs::remove_file(&temp);
            return Err(Error::io(&path, e));
        }
        shard_proto::manifest::sync_dir(dir)?;
        Ok(path)
    }

    /// Reads and verifies the table of slice `node` of `nodes` in `dir`.
    pub fn read(dir: &Path, node: u32, nodes: u32) -> Result<LinkTable> {
        decode_table(dir, node, nodes)
    }

    /// Reads and verifies the table of slice `node` of `nodes` in `dir`, decoding only
    /// its articles and redirects: the targets, the bulk of a table, are skipped (the
    /// redirect passes of [`resolve`] read every table for these alone).
    pub fn read_head(dir: &Path, node: u32, nodes: u32) -> Result<TableHead> {
        decode_table(dir, node, nodes)
    }
}

/// The first fields of every [`LinkTable`]: checked before anything else is decoded.
#[derive(Clone, Copy, Debug, Deserialize)]
struct TableId {
    format: u32,
    node: u32,
    nodes: u32,
}

/// The fields of a [`LinkTable`] before its targets, in its order: a table's payload
/// decodes as this prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct TableHead {
    pub format: u32,
    pub node: u32,
    pub nodes: u32,
    pub articles: Vec<String>,
    pub redirects: Vec<Redirect>,
}

/// Reads the table file of slice `node` of `nodes`, checks its magic, checksum, format
/// and slice, and decodes its payload as `T` (the whole table, or a prefix of its fields).
fn decode_table<T: serde::de::DeserializeOwned>(dir: &Path, node: u32, nodes: u32) -> Result<T> {
    let path = table_path(dir, node, nodes);
    let file = File::open(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Links(format!(
            "{}: no link table for slice {node} of {nodes}: run `indexer links --node \
             {node} --nodes {nodes} --out {}` first (or build without --links)",
            path.display(),
            dir.display()
        )),
        _ => Error::io(&path, e),
    })?;
    let mut bytes = Vec::new();
    BufReader::new(file)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(&path, e))?;
    let bad = |why: &str| Error::Links(format!("{}: {why}", path.display()));
    if bytes.len() < 40 || &bytes[..8] != MAGIC {
        return Err(bad("not a link table"));
    }
    let payload = &bytes[40..];
    if blake3::hash(payload).as_bytes() != &bytes[8..40] {
        return Err(bad("checksum mismatch (corrupt or truncated)"));
    }
    let config = bincode::config::standard().with_limit::<MAX_TABLE_BYTES>();
    let decode_error = |e: bincode::error::DecodeError| bad(&format!("cannot decode: {e}"));
    let (id, _): (TableId, usize) =
        bincode::serde::decode_from_slice(payload, config).map_err(decode_error)?;
    if id.format != TABLE_FORMAT || id.node != node || id.nodes != nodes {
        return Err(bad(&format!(
            "holds format {} slice {} of {}, expected format {TABLE_FORMAT} slice {node} \
             of {nodes}",
            id.format, id.node, id.nodes
        )));
    }
    let (table, _): (T, usize) =
        bincode::serde::decode_from_slice(payload, config).map_err(decode_error)?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_round_trip_and_corruption_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let table = LinkTable {
            format: TABLE_FORMAT,
            node: 1,
            nodes: 2,
            articles: vec!["Athens".into()],
            redirects: vec![Redirect {
                title: "Athina".into(),
                target: "Athens".into(),
            }],
            targets: vec![LinkTarget {
                title: "Athens".into(),
                links: 3,
                anchors: vec![("the capital".into(), 2)],
            }],
        };
        let path = table.write(dir.path()).unwrap();
        assert_eq!(LinkTable::read(dir.path(), 1, 2).unwrap(), table);
        let head = LinkTable::read_head(dir.path(), 1, 2).unwrap();
        assert_eq!(
            (head.articles, head.redirects),
            (table.articles.clone(), table.redirects.clone())
        );
        let missing = LinkTable::read(dir.path(), 0, 2).unwrap_err().to_string();
        assert!(
            missing.contains("indexer links --node 0 --nodes 2"),
            "{missing}"
        );
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let corrupt = LinkTable::read(dir.path(), 1, 2).unwrap_err().to_string();
        assert!(corrupt.contains("checksum"), "{corrupt}");
    }
}
