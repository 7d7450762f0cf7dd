//! A shard's clean documents parked on disk until its turn to be indexed.
//!
//! A node builds its M shards in lanes, each lane's shards one after the other (see
//! `turns.rs`): while the input is read, the first shard of each lane is indexed live
//! and every other shard's documents, once cleaned and given their link signals, are
//! appended to that shard's spool file; then each spool is replayed into its shard's
//! writer. A spool holds exactly what [`super::shard_writer::to_tantivy`] takes, so a
//! replayed document is the document the live path would have indexed.
//!
//! Format (private to one build, never read by another version): records of
//! `id u64, links_in u64, lead_len u64, title, url, body, categories, redirects,
//! anchors`, integers little-endian, a string as `u32` byte length then UTF-8 bytes, a
//! list as `u32` count then strings. No checksum: the file lives for one build in the
//! shard's temporary directory (removed with it on failure) and is read back once.

use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::links::ArticleSignals;

/// Name of the spool file in a shard's temporary directory.
pub const SPOOL_FILE: &str = "docs.spool";
const BUFFER: usize = 1 << 20;

/// Appends documents to one shard's spool.
pub struct SpoolWriter {
    path: PathBuf,
    out: BufWriter<File>,
    docs: u64,
    bytes: u64,
}

impl SpoolWriter {
    /// Creates (truncates) the spool file in the shard's temporary directory `dir`.
    pub fn create(dir: &Path) -> Result<SpoolWriter> {
        let path = dir.join(SPOOL_FILE);
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        Ok(SpoolWriter {
            out: BufWriter::with_capacity(BUFFER, file),
            path,
            docs: 0,
            bytes: 0,
        })
    }

    /// Appends one cleaned document and its link signals.
    pub fn write(&mut self, doc: &corpus::Document, signals: &ArticleSignals) -> Result<()> {
        let mut record = Vec::with_capacity(64 + doc.body.len() + doc.title.len());
        for n in [doc.id, signals.links_in, doc.lead_len as u64] {
            record.extend_from_slice(&n.to_le_bytes());
        }
        for s in [&doc.title, &doc.url, &doc.body] {
            put_str(&mut record, s)?;
        }
        for list in [&doc.categories, &signals.redirects, &signals.anchors] {
            put_len(&mut record, list.len())?;
            for s in list {
                put_str(&mut record, s)?;
            }
        }
        self.out
            .write_all(&record)
            .map_err(|e| Error::io(&self.path, e))?;
        self.docs += 1;
        self.bytes += record.len() as u64;
        Ok(())
    }

    /// Flushes the file; returns what was written.
    pub fn finish(mut self) -> Result<Spooled> {
        self.out.flush().map_err(|e| Error::io(&self.path, e))?;
        Ok(Spooled {
            path: self.path,
            docs: self.docs,
            bytes: self.bytes,
        })
    }
}

/// A finished spool file.
#[derive(Debug)]
pub struct Spooled {
    pub path: PathBuf,
    pub docs: u64,
    pub bytes: u64,
}

impl Spooled {
    /// Reads the documents back, in the order they were written.
    pub fn read(&self) -> Result<SpoolReader> {
        let file = File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        Ok(SpoolReader {
            path: self.path.clone(),
            input: BufReader::with_capacity(BUFFER, file),
        })
    }

    /// Deletes the file (its documents are in the shard's writer).
    pub fn remove(self) -> Result<()> {
        std::fs::remove_file(&self.path).map_err(|e| Error::io(&self.path, e))
    }
}

/// Iterates over a spool's documents.
pub struct SpoolReader {
    path: PathBuf,
    input: BufReader<File>,
}

impl SpoolReader {
    /// The next document, or `None` at the end of the file.
    pub fn next_doc(&mut self) -> Result<Option<(corpus::Document, ArticleSignals)>> {
        let mut first = [0u8; 8];
        match self.input.read_exact(&mut first) {
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
            other => other.map_err(|e| self.error(e))?,
        }
        let id = u64::from_le_bytes(first);
        let links_in = self.u64()?;
        let lead_len = self.u64()? as usize;
        let (title, url, body) = (self.string()?, self.string()?, self.string()?);
        let (categories, redirects, anchors) = (self.list()?, self.list()?, self.list()?);
        let doc = corpus::Document {
            id,
            title,
            url,
            body,
            categories,
            lead_len,
        };
        let signals = ArticleSignals {
            redirects,
            anchors,
            links_in,
        };
        Ok(Some((doc, signals)))
    }

    fn error(&self, e: std::io::Error) -> Error {
        Error::io(&self.path, e)
    }

    fn u64(&mut self) -> Result<u64> {
        let mut b = [0u8; 8];
        self.input.read_exact(&mut b).map_err(|e| self.error(e))?;
        Ok(u64::from_le_bytes(b))
    }

    fn len(&mut self) -> Result<usize> {
        let mut b = [0u8; 4];
        self.input.read_exact(&mut b).map_err(|e| self.error(e))?;
        Ok(u32::from_le_bytes(b) as usize)
    }

    fn string(&mut self) -> Result<String> {
        let mut bytes = vec![0u8; self.len()?];
        self.input
            .read_exact(&mut bytes)
            .map_err(|e| self.error(e))?;
        String::from_utf8(bytes)
            .map_err(|e| self.error(std::io::Error::new(ErrorKind::InvalidData, e)))
    }

    fn list(&mut self) -> Result<Vec<String>> {
        (0..self.len()?).map(|_| self.string()).collect()
    }
}

fn put_len(out: &mut Vec<u8>, len: usize) -> Result<()> {
    let len = u32::try_from(len)
        .map_err(|_| Error::Invariant(format!("a spooled field of {len} bytes exceeds 4 GiB")))?;
    out.extend_from_slice(&len.to_le_bytes());
    Ok(())
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<()> {
    put_len(out, s.len())?;
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_read_back_as_written() {
        let tmp = tempfile::tempdir().unwrap();
        let docs: Vec<_> = (0..300u64)
            .map(|n| {
                let doc = corpus::Document {
                    id: n * 7,
                    title: format!("Title {n} é"),
                    url: format!("https://x/{n}"),
                    body: "word ".repeat(n as usize),
                    categories: (0..n % 3).map(|c| format!("Cat {c}")).collect(),
                    lead_len: n as usize,
                };
                let signals = ArticleSignals {
                    redirects: (0..n % 4).map(|r| format!("Alias {r}")).collect(),
                    anchors: vec![String::new(); (n % 2) as usize],
                    links_in: n * n,
                };
                (doc, signals)
            })
            .collect();
        let mut spool = SpoolWriter::create(tmp.path()).unwrap();
        for (doc, signals) in &docs {
            spool.write(doc, signals).unwrap();
        }
        let spooled = spool.finish().unwrap();
        assert_eq!(spooled.docs, 300);
        let mut reader = spooled.read().unwrap();
        for expected in &docs {
            assert_eq!(reader.next_doc().unwrap().as_ref(), Some(expected));
        }
        assert_eq!(reader.next_doc().unwrap(), None);
        spooled.remove().unwrap();
        assert!(!tmp.path().join(SPOOL_FILE).exists());
    }

    #[test]
    fn a_truncated_spool_is_an_error_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let mut spool = SpoolWriter::create(tmp.path()).unwrap();
        let doc = corpus::Document {
            id: 1,
            title: "T".into(),
            url: "u".into(),
            body: "body text".into(),
            categories: vec![],
            lead_len: 0,
        };
        spool.write(&doc, &ArticleSignals::default()).unwrap();
        let spooled = spool.finish().unwrap();
        let len = std::fs::metadata(&spooled.path).unwrap().len();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&spooled.path)
            .unwrap();
        file.set_len(len - 3).unwrap();
        let err = spooled.read().unwrap().next_doc().unwrap_err().to_string();
        assert!(err.contains(SPOOL_FILE), "{err}");
    }
}
