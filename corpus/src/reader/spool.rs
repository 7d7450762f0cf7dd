//! A page spool: the events one slice's reader produced, kept on local disk so that a
//! second pass over the same slice reads them back instead of decompressing and parsing
//! the dump again.
//!
//! Why: the indexer reads each slice twice, once for the link pass and once for the
//! build (the build needs every slice's link table before it indexes an article). For a
//! bzip2 dump the read is mostly decompression, about 25 of the link pass's 29 CPU s on a
//! 100k-page dump; with a spool the build's read costs a sequential read of its pages.
//!
//! Format (private to one machine's passes, never exchanged; version
//! [`SPOOL_FORMAT`]): the magic `WSPAGES\0`, then bincode records: one [`SpoolHeader`]
//! (where the events came from and the dump's `<siteinfo>`), the [`PageEvent`]s in read
//! order, and an end record with their count. A spool is written under a temporary name
//! and renamed once complete, so a pass that died half-way leaves no spool to be trusted;
//! a spool without its end record, or with records that do not decode, is an error that
//! names the file, and [`open_spool`] refuses one made from another input or slice.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{InputFormat, PageEvent, PageReader, Pages, ReadProgress};
use crate::error::{Error, Result};
use crate::page::SiteInfo;
use crate::split::Split;

/// Version of the spool format; bumped on any change of what is written.
const SPOOL_FORMAT: u32 = 1;
const MAGIC: &[u8; 8] = b"WSPAGES\0";
const BUFFER: usize = 1 << 20;
/// Largest record decoded: far above any page the reader delivers (its limit is
/// [`super::DEFAULT_MAX_PAGE_BYTES`], 16 MiB), and a corrupt length cannot make the
/// decoder allocate more.
const MAX_RECORD_BYTES: usize = 1 << 30;

/// What a spool was made from: it stands in for exactly this slice of this input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpoolSource {
    /// The input as it was opened (not canonicalized: the passes name it the same way).
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
    pub node: u32,
    pub nodes: u32,
}

impl SpoolSource {
    /// The slice `split` of the input `path` (read without opening it: a reader would
    /// start decompressing).
    pub fn new(path: &Path, split: Split) -> Result<SpoolSource> {
        let bytes = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len();
        Ok(SpoolSource {
            path: path.display().to_string(),
            bytes,
            node: split.node,
            nodes: split.nodes,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct SpoolHeader {
    format: u32,
    source: SpoolSource,
    /// The input's container format, as its reader detected it.
    input_format: InputFormat,
    site: SiteInfo,
}

#[derive(Debug, Serialize, Deserialize)]
enum Record {
    Event(PageEvent),
    End { events: u64 },
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_RECORD_BYTES>()
}

/// Writes a spool: [`PageSpoolWriter::write`] each event, then [`PageSpoolWriter::finish`].
pub struct PageSpoolWriter {
    path: PathBuf,
    partial: PathBuf,
    out: BufWriter<File>,
    events: u64,
}

impl PageSpoolWriter {
    /// Starts the spool `path` of the pages `reader` (opened on `source`) will yield
    /// (written as `path.partial` until finished).
    pub fn create(path: &Path, source: SpoolSource, reader: &PageReader) -> Result<Self> {
        let partial = path.with_extension("partial");
        let file = File::create(&partial).map_err(|e| Error::io(&partial, e))?;
        let mut writer = PageSpoolWriter {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(BUFFER, file),
            partial,
            events: 0,
        };
        writer.put_bytes(MAGIC)?;
        let header = SpoolHeader {
            format: SPOOL_FORMAT,
            source,
            input_format: reader.format(),
            site: reader.siteinfo().clone(),
        };
        writer.put(&header)?;
        Ok(writer)
    }

    /// Appends one event.
    pub fn write(&mut self, event: &PageEvent) -> Result<()> {
        self.events += 1;
        self.put(&RecordRef::Event(event))
    }

    /// Writes the end record, flushes and renames the spool to its final name.
    pub fn finish(mut self) -> Result<PathBuf> {
        self.put(&Record::End {
            events: self.events,
        })?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| Error::io(&self.partial, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&self.partial, e))?;
        std::fs::rename(&self.partial, &self.path).map_err(|e| Error::io(&self.path, e))?;
        Ok(self.path)
    }

    fn put<T: Serialize>(&mut self, value: &T) -> Result<()> {
        bincode::serde::encode_into_std_write(value, &mut self.out, config())
            .map_err(|e| Error::Other(format!("{}: {e}", self.partial.display())))?;
        Ok(())
    }

    fn put_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| Error::io(&self.partial, e))
    }
}

/// [`Record::Event`] by reference: encodes as the same bytes without cloning the page.
#[derive(Serialize)]
enum RecordRef<'a> {
    Event(&'a PageEvent),
}

/// Opens the spool `path` as a [`PageReader`] of `expected`'s slice; a spool made from
/// another input, size or slice, or by another format version, is refused.
pub fn open_spool(path: &Path, expected: &SpoolSource) -> Result<PageReader> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let total = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let bytes = Arc::new(AtomicU64::new(0));
    let mut input = Counted {
        inner: BufReader::with_capacity(BUFFER, file),
        bytes: Arc::clone(&bytes),
    };
    let mut magic = [0u8; 8];
    input
        .read_exact(&mut magic)
        .map_err(|e| Error::io(path, e))?;
    if &magic != MAGIC {
        return Err(bad(path, "not a page spool"));
    }
    let header: SpoolHeader = decode(&mut input, path)?;
    if header.format != SPOOL_FORMAT {
        return Err(bad(
            path,
            &format!("spool format {}, expected {SPOOL_FORMAT}", header.format),
        ));
    }
    if &header.source != expected {
        return Err(bad(
            path,
            &format!(
                "made from {:?}, not from this input and slice {expected:?}",
                header.source
            ),
        ));
    }
    let pages = SpoolPages {
        path: path.to_path_buf(),
        input,
        events: 0,
    };
    Ok(PageReader {
        path: PathBuf::from(&expected.path),
        format: header.input_format,
        site: header.site,
        progress: ReadProgress {
            bytes,
            total: Some(total),
        },
        pages: Pages::Spool(Box::new(pages)),
        done: false,
    })
}

/// The events of an open spool.
pub(super) struct SpoolPages {
    path: PathBuf,
    input: Counted,
    events: u64,
}

impl SpoolPages {
    pub(super) fn next_event(&mut self) -> Result<Option<PageEvent>> {
        match decode(&mut self.input, &self.path)? {
            Record::Event(event) => {
                self.events += 1;
                Ok(Some(event))
            }
            Record::End { events } if events == self.events => Ok(None),
            Record::End { events } => Err(bad(
                &self.path,
                &format!("end record counts {events} events, read {}", self.events),
            )),
        }
    }
}

/// A buffered file that counts the bytes read (the reader's progress).
struct Counted {
    inner: BufReader<File>,
    bytes: Arc<AtomicU64>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn decode<T: serde::de::DeserializeOwned>(input: &mut Counted, path: &Path) -> Result<T> {
    bincode::serde::decode_from_std_read(input, config())
        .map_err(|e| bad(path, &format!("truncated or corrupt: {e}")))
}

fn bad(path: &Path, detail: &str) -> Error {
    Error::Other(format!("{}: page spool: {detail}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::{open, OpenOptions};

    const DUMP: &str = r#"<mediawiki xml:lang="el">
  <siteinfo><sitename>Βικιπαίδεια</sitename><dbname>elwiki</dbname>
    <base>https://el.wikipedia.org/wiki/Main</base></siteinfo>
  <page><title>Ελλάδα</title><ns>0</ns><id>7</id>
    <revision><id>1</id><text>'''Greece''' [[Αθήνα|the capital]]</text></revision></page>
  <page><title>No id</title><ns>0</ns>
    <revision><id>2</id><text>lost</text></revision></page>
  <page><title>Hellas</title><ns>0</ns><id>9</id><redirect title="Ελλάδα" />
    <revision><id>3</id><text>#REDIRECT [[Ελλάδα]]</text></revision></page>
</mediawiki>
"#;

    /// The dump's events, and a spool of them written while reading.
    fn spooled(dir: &Path) -> (PathBuf, SpoolSource, Vec<PageEvent>) {
        let dump = dir.join("dump.xml");
        std::fs::write(&dump, DUMP).unwrap();
        let source = SpoolSource::new(&dump, Split::whole()).unwrap();
        let reader = open(&dump, &OpenOptions::default()).unwrap();
        let mut writer =
            PageSpoolWriter::create(&dir.join("pages.spool"), source.clone(), &reader).unwrap();
        let mut events = Vec::new();
        for event in reader {
            let event = event.unwrap();
            writer.write(&event).unwrap();
            events.push(event);
        }
        (writer.finish().unwrap(), source, events)
    }

    #[test]
    fn a_spool_reads_back_the_events_and_the_siteinfo() {
        let dir = tempfile::tempdir().unwrap();
        let (path, source, events) = spooled(dir.path());
        assert_eq!(events.len(), 3, "two pages and a skip: {events:?}");
        let reader = open_spool(&path, &source).unwrap();
        assert_eq!(reader.siteinfo().lang.as_deref(), Some("el"));
        assert_eq!(reader.format(), InputFormat::Xml);
        assert_eq!(reader.path(), dir.path().join("dump.xml"));
        let progress = reader.progress();
        let read: Vec<PageEvent> = reader.map(Result::unwrap).collect();
        assert_eq!(read, events);
        assert_eq!(progress.bytes_read(), progress.total_bytes().unwrap());
        assert!(!dir.path().join("pages.partial").exists());
    }

    #[test]
    fn another_slice_a_truncated_spool_and_garbage_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (path, source, events) = spooled(dir.path());
        let other = SpoolSource {
            nodes: 2,
            ..source.clone()
        };
        let err = open_spool(&path, &other).err().unwrap().to_string();
        assert!(err.contains("not from this input and slice"), "{err}");

        let bytes = std::fs::read(&path).unwrap();
        let cut = dir.path().join("cut.spool");
        std::fs::write(&cut, &bytes[..bytes.len() - 1]).unwrap();
        let results: Vec<_> = open_spool(&cut, &source).unwrap().collect();
        let last = results.last().unwrap().as_ref().err().unwrap().to_string();
        assert!(last.contains("truncated or corrupt"), "{last}");
        assert_eq!(
            results.len(),
            events.len() + 1,
            "every event, then the error"
        );

        let garbage = dir.path().join("garbage.spool");
        std::fs::write(&garbage, b"not a spool at all").unwrap();
        let err = open_spool(&garbage, &source).err().unwrap().to_string();
        assert!(err.contains("not a page spool"), "{err}");
    }
}
