//! Opening an input: format detection by magic bytes, positioning on this node's slice,
//! and the [`PageReader`] iterator over its pages.
//!
//! How each format is split across K nodes (node i owns the records whose start lies in
//! the i-th K-th of the file's bytes, after aligning both ends the same way):
//! - plain XML: memory-mapped; slice ends are moved to the next `<page>` start, so a node
//!   touches only its ~1/K of the bytes (plus the `<siteinfo>` header);
//! - multistream bzip2: ends are moved to the next stream start (from the index when
//!   given, else by scanning for the stream magic); streams decode in parallel;
//! - JSON lines: ends are moved to the next line start;
//! - single-stream bzip2, gzip, UTF-16 XML and compressed JSON lines cannot be entered in
//!   the middle: every node decompresses and parses the whole input and keeps the pages
//!   whose ordinal is `node (mod K)`. Cost: each node pays the full decompression and a
//!   light parse of every page (pages of other slices are skipped without building
//!   strings), so K nodes do K times the decompression work of one.

mod io;
mod jsonl;
mod multistream;
mod spool;
mod xml;

use std::fmt;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use memmap2::Mmap;

use self::io::{read_prefix, DecodeFaults, MmapSlice, Utf16Reader};
use self::jsonl::JsonPages;
use self::multistream::{Boundaries, ParallelStreams};
use self::xml::XmlPages;
use crate::error::{Error, Result};
use crate::page::{Page, SiteInfo};
use crate::split::Split;

pub use self::jsonl::derived_id;
pub use self::spool::{open_spool, PageSpoolWriter, SpoolSource};
pub use self::xml::DEFAULT_MAX_PAGE_BYTES;

/// How many leading bytes of the (decompressed) content are sniffed.
const SNIFF_BYTES: usize = 4096;

/// Where and how to read.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    pub split: Split,
    /// Multistream index file (`offset:pageid:title` lines), plain or `.bz2`.
    pub index: Option<PathBuf>,
    /// Decompression threads for multistream bzip2; 0 = one per core.
    pub threads: usize,
}

/// The container format, detected from magic bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum InputFormat {
    Xml,
    Bzip2,
    Bzip2Multistream,
    Gzip,
    JsonLines,
}

impl fmt::Display for InputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InputFormat::Xml => "xml",
            InputFormat::Bzip2 => "bzip2",
            InputFormat::Bzip2Multistream => "bzip2-multistream",
            InputFormat::Gzip => "gzip",
            InputFormat::JsonLines => "jsonl",
        })
    }
}

/// One item of a [`PageReader`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PageEvent {
    Page(Page),
    Skipped(Skip),
}

/// A page that was read but not delivered, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Skip {
    pub reason: SkipReason,
    pub page_id: Option<u64>,
    pub title: Option<String>,
    /// Byte offset of the `<page>` (or line) in the XML/JSON text read by this slice.
    pub offset: u64,
    pub detail: String,
}

/// Why a page was skipped. Structural damage stops the reader instead (an `Err`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum SkipReason {
    /// No `<id>` (or, in JSON lines, no id, url or title).
    MissingId,
    /// The page's text is not valid UTF-8.
    InvalidUtf8,
    /// Wikitext (or line) over the size limit ([`DEFAULT_MAX_PAGE_BYTES`]).
    TooLarge,
    /// Unparsable field (non-numeric `<ns>`/`<id>`, unknown entity, invalid JSON...).
    Malformed,
}

impl SkipReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            SkipReason::MissingId => "missing_id",
            SkipReason::InvalidUtf8 => "invalid_utf8",
            SkipReason::TooLarge => "too_large",
            SkipReason::Malformed => "malformed",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Input bytes consumed so far, readable from another thread.
#[derive(Clone, Debug)]
pub struct ReadProgress {
    bytes: Arc<AtomicU64>,
    total: Option<u64>,
}

impl ReadProgress {
    /// Input bytes (compressed if compressed) of this slice consumed.
    pub fn bytes_read(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Bytes of this slice when known.
    pub fn total_bytes(&self) -> Option<u64> {
        self.total
    }
}

enum Pages {
    Xml(Box<XmlPages>),
    Json(Box<JsonPages>),
    /// Read back from a page spool (`spool.rs`): already limited when first read.
    Spool(Box<spool::SpoolPages>),
}

/// Iterator over the pages of one slice of an input. A fatal error is yielded once as
/// `Err` (after every page before it), then the iterator ends.
pub struct PageReader {
    path: PathBuf,
    format: InputFormat,
    site: SiteInfo,
    progress: ReadProgress,
    pages: Pages,
    done: bool,
}

impl PageReader {
    pub fn siteinfo(&self) -> &SiteInfo {
        &self.site
    }

    pub fn format(&self) -> InputFormat {
        self.format
    }

    pub fn progress(&self) -> ReadProgress {
        self.progress.clone()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Changes the per-page size limit (default [`DEFAULT_MAX_PAGE_BYTES`]).
    pub fn set_max_page_bytes(&mut self, limit: usize) {
        match &mut self.pages {
            Pages::Xml(pages) => pages.max_page_bytes = limit,
            Pages::Json(pages) => pages.max_page_bytes = limit,
            Pages::Spool(_) => {}
        }
    }
}

impl Iterator for PageReader {
    type Item = Result<PageEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = match &mut self.pages {
            Pages::Xml(pages) => pages.next_event(),
            Pages::Json(pages) => pages.next_event(),
            Pages::Spool(pages) => pages.next_event(),
        };
        match next {
            Ok(Some(event)) => Some(Ok(event)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(err) => {
                self.done = true;
                Some(Err(err))
            }
        }
    }
}

/// What the (decompressed) bytes hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Content {
    /// UTF-8 XML, after a BOM of this many bytes.
    Xml {
        bom: usize,
    },
    Utf16Xml {
        big_endian: bool,
    },
    Json {
        bom: usize,
    },
    Unknown,
}

fn sniff(head: &[u8]) -> Content {
    if head.starts_with(&[0xFF, 0xFE]) {
        return Content::Utf16Xml { big_endian: false };
    }
    if head.starts_with(&[0xFE, 0xFF]) {
        return Content::Utf16Xml { big_endian: true };
    }
    let bom = if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        3
    } else {
        0
    };
    match head[bom..].iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'<') => Content::Xml { bom },
        Some(b'{') => Content::Json { bom },
        _ => Content::Unknown,
    }
}

/// Opens INPUT (format detected from magic bytes), positioned on this split's slice.
pub fn open(path: &Path, opts: &OpenOptions) -> Result<PageReader> {
    let split = Split::new(opts.split.node, opts.split.nodes)?;
    let map = map_file(path)?;
    let head = map[..map.len().min(16)].to_vec();
    let is_bzip2 = multistream::is_stream_start(&head);
    if opts.index.is_some() && !is_bzip2 {
        return Err(Error::Other(format!(
            "{}: an index was given but the input is not bzip2",
            path.display()
        )));
    }
    let input = Input {
        path: path.to_path_buf(),
        map,
        split,
    };
    if is_bzip2 {
        if opts.index.is_some() || multistream::looks_multistream(&input.map) {
            return input.open_multistream(opts);
        }
        let bytes = Arc::new(AtomicU64::new(0));
        let raw = input.whole(&bytes);
        let decoded = bzip2::bufread::MultiBzDecoder::new(raw);
        let decoded = DecodeFaults::new(decoded, bytes.clone(), "bzip2");
        return input.open_sequential(InputFormat::Bzip2, Box::new(decoded), bytes);
    }
    if head.starts_with(&[0x1F, 0x8B]) {
        let bytes = Arc::new(AtomicU64::new(0));
        let decoded = flate2::bufread::MultiGzDecoder::new(input.whole(&bytes));
        let decoded = DecodeFaults::new(decoded, bytes.clone(), "gzip");
        return input.open_sequential(InputFormat::Gzip, Box::new(decoded), bytes);
    }
    input.open_plain()
}

/// Maps the file read-only. Dumps are immutable; mapping a file that another process
/// truncates would be undefined behaviour (SIGBUS), hence never map files being written.
fn map_file(path: &Path) -> Result<Arc<Mmap>> {
    let meta = std::fs::metadata(path).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound {
            path: path.to_path_buf(),
        },
        _ => Error::io(path, err),
    })?;
    if meta.is_dir() {
        return Err(Error::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    if meta.len() == 0 {
        return Err(Error::Empty {
            path: path.to_path_buf(),
        });
    }
    let file = std::fs::File::open(path).map_err(|err| Error::io(path, err))?;
    // SAFETY: read-only mapping of an input file that is not modified while we read it
    // (see above); all accesses are bounds-checked slices.
    let map = unsafe { Mmap::map(&file) }.map_err(|err| Error::io(path, err))?;
    Ok(Arc::new(map))
}

struct Input {
    path: PathBuf,
    map: Arc<Mmap>,
    split: Split,
}

impl Input {
    fn len(&self) -> u64 {
        self.map.len() as u64
    }

    fn whole(&self, bytes: &Arc<AtomicU64>) -> MmapSlice {
        MmapSlice::new(self.map.clone(), 0, self.map.len(), bytes.clone())
    }

    fn reader(
        &self,
        format: InputFormat,
        site: SiteInfo,
        bytes: Arc<AtomicU64>,
        total: u64,
        pages: Pages,
    ) -> PageReader {
        PageReader {
            path: self.path.clone(),
            format,
            site,
            progress: ReadProgress {
                bytes,
                total: Some(total),
            },
            pages,
            done: false,
        }
    }

    /// Inputs read from the start by every node, partitioned by page ordinal.
    fn open_sequential(
        &self,
        format: InputFormat,
        decoded: Box<dyn Read + Send>,
        bytes: Arc<AtomicU64>,
    ) -> Result<PageReader> {
        let mut decoded = BufReader::with_capacity(256 << 10, decoded);
        let head = read_prefix(&mut decoded, SNIFF_BYTES).map_err(|err| self.io_error(err))?;
        let content = sniff(&head);
        let skip = match content {
            Content::Xml { bom } | Content::Json { bom } => bom,
            Content::Utf16Xml { .. } => 2,
            Content::Unknown => return Err(self.unknown(&head)),
        };
        let rest = Cursor::new(head[skip..].to_vec()).chain(decoded);
        let input: Box<dyn BufRead + Send> = match content {
            Content::Utf16Xml { big_endian } => Box::new(BufReader::with_capacity(
                256 << 10,
                Utf16Reader::new(rest, big_endian),
            )),
            _ => Box::new(BufReader::with_capacity(256 << 10, rest)),
        };
        let split = Some(self.split);
        let total = self.len();
        if let Content::Json { .. } = content {
            let pages = Pages::Json(Box::new(JsonPages::new(input, &self.path, 0, split)));
            return Ok(self.reader(format, SiteInfo::default(), bytes, total, pages));
        }
        let kind = match (format, content) {
            (InputFormat::Xml, Content::Utf16Xml { .. }) => {
                "offset in the UTF-8 text decoded from UTF-16"
            }
            (InputFormat::Xml, _) => "byte offset",
            _ => "offset in the decompressed XML",
        };
        let mut pages = XmlPages::new(input, &self.path, (0, kind.into()), true, split);
        let site = pages.read_header()?.unwrap_or_default();
        Ok(self.reader(format, site, bytes, total, Pages::Xml(Box::new(pages))))
    }

    /// Uncompressed XML or JSON lines: memory-mapped, split by byte range.
    fn open_plain(self) -> Result<PageReader> {
        let head = &self.map[..self.map.len().min(SNIFF_BYTES)];
        let content = sniff(head);
        let bytes = Arc::new(AtomicU64::new(0));
        match content {
            Content::Unknown => Err(self.unknown(head)),
            Content::Utf16Xml { .. } => {
                let raw = self.whole(&bytes);
                self.open_sequential(InputFormat::Xml, Box::new(raw), bytes)
            }
            Content::Json { bom } => {
                let (start, end) = self.aligned_range(bom as u64, |pos| self.line_start(pos));
                let input = MmapSlice::new(
                    self.map.clone(),
                    start as usize,
                    end as usize,
                    bytes.clone(),
                );
                let pages = JsonPages::new(Box::new(input), &self.path, start, None);
                let site = SiteInfo::default();
                Ok(self.reader(
                    InputFormat::JsonLines,
                    site,
                    bytes,
                    end - start,
                    Pages::Json(Box::new(pages)),
                ))
            }
            Content::Xml { bom } => {
                let (start, end) = self.aligned_range(bom as u64, |pos| self.page_start(pos));
                let input = MmapSlice::new(
                    self.map.clone(),
                    start as usize,
                    end as usize,
                    bytes.clone(),
                );
                let expect_footer = end == self.len() && start < end;
                let offsets = (start, "byte offset".to_string());
                let mut pages =
                    XmlPages::new(Box::new(input), &self.path, offsets, expect_footer, None);
                let site = if start == bom as u64 {
                    pages.read_header()?
                } else {
                    let header = self.whole(&Arc::new(AtomicU64::new(0)));
                    let offsets = (0, "byte offset".to_string());
                    XmlPages::new(Box::new(header), &self.path, offsets, false, None)
                        .read_header()?
                };
                let site = site.unwrap_or_default();
                Ok(self.reader(
                    InputFormat::Xml,
                    site,
                    bytes,
                    end - start,
                    Pages::Xml(Box::new(pages)),
                ))
            }
        }
    }

    fn open_multistream(self, opts: &OpenOptions) -> Result<PageReader> {
        let bytes = Arc::new(AtomicU64::new(0));
        let first = bzip2::read::BzDecoder::new(&self.map[..]);
        let head = read_prefix(
            &mut DecodeFaults::new(first, bytes.clone(), "bzip2"),
            SNIFF_BYTES,
        )
        .map_err(|err| self.io_error(err))?;
        if !matches!(sniff(&head), Content::Xml { bom: 0 }) {
            // UTF-16 or JSON inside streams: stream boundaries are not record boundaries.
            let raw = self.whole(&bytes);
            let decoded = DecodeFaults::new(
                bzip2::bufread::MultiBzDecoder::new(raw),
                bytes.clone(),
                "bzip2",
            );
            return self.open_sequential(InputFormat::Bzip2Multistream, Box::new(decoded), bytes);
        }
        let boundaries = match &opts.index {
            Some(index) => Boundaries::Index(Arc::new(multistream::read_index(index, self.len())?)),
            None => Boundaries::Scan,
        };
        let (start, end) = self.aligned_range(0, |pos| boundaries.align(&self.map, pos));
        let streams = ParallelStreams::spawn(
            self.map.clone(),
            &boundaries,
            (start, end),
            opts.threads,
            bytes.clone(),
        )?;
        let expect_footer = end == self.len() && start < end;
        let kind =
            format!("offset in the XML decompressed from the streams at bytes {start}..{end}");
        let mut pages = XmlPages::new(
            Box::new(streams),
            &self.path,
            (0, kind),
            expect_footer,
            None,
        );
        let site = if start == 0 {
            pages.read_header()?
        } else {
            let first = bzip2::read::BzDecoder::new(self.whole(&Arc::new(AtomicU64::new(0))));
            let header = BufReader::new(DecodeFaults::new(
                first,
                Arc::new(AtomicU64::new(0)),
                "bzip2",
            ));
            let offsets = (0, "offset in the first stream".to_string());
            XmlPages::new(Box::new(header), &self.path, offsets, false, None).read_header()?
        };
        let site = site.unwrap_or_default();
        Ok(self.reader(
            InputFormat::Bzip2Multistream,
            site,
            bytes,
            end - start,
            Pages::Xml(Box::new(pages)),
        ))
    }

    /// This slice's `[start, end)`, both ends moved forward by `align` (the first slice
    /// starts at `first`, the last ends at the end of the file).
    fn aligned_range(&self, first: u64, align: impl Fn(u64) -> u64) -> (u64, u64) {
        let (lo, hi) = self.split.nominal_range(self.len());
        let start = if self.split.node == 0 {
            first
        } else {
            align(lo.max(first))
        };
        let end = if self.split.is_last() {
            self.len()
        } else {
            align(hi.max(first))
        };
        (start, end.max(start))
    }

    /// First `<page>` start at or after `pos` (or the file length). `<` is always escaped
    /// in text, so a literal `<page` is an element.
    fn page_start(&self, pos: u64) -> u64 {
        let map = &self.map[..];
        let mut at = pos as usize;
        while at < map.len() {
            let Some(rel) = map[at..].iter().position(|&b| b == b'<') else {
                break;
            };
            at += rel;
            let after = map.get(at + 5).copied();
            if map[at..].starts_with(b"<page")
                && matches!(after, Some(b'>' | b' ' | b'\t' | b'\r' | b'\n' | b'/'))
            {
                return at as u64;
            }
            at += 1;
        }
        self.len()
    }

    /// First line start at or after `pos` (or the file length).
    fn line_start(&self, pos: u64) -> u64 {
        if pos == 0 {
            return 0;
        }
        let from = pos as usize - 1;
        match self.map[from..].iter().position(|&b| b == b'\n') {
            Some(rel) => (from + rel + 1) as u64,
            None => self.len(),
        }
    }

    fn unknown(&self, head: &[u8]) -> Error {
        Error::UnknownFormat {
            path: self.path.clone(),
            head: head[..head.len().min(16)].to_vec(),
        }
    }

    fn io_error(&self, err: std::io::Error) -> Error {
        match io::InputFault::find(&err) {
            Some(fault) => Error::Decompress {
                path: self.path.clone(),
                offset: fault.offset,
                detail: fault.detail.clone(),
            },
            None => Error::io(&self.path, err),
        }
    }
}
