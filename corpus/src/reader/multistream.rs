//! Multistream bzip2 (the format of `enwiki-...-pages-articles-multistream.xml.bz2`):
//! finding stream boundaries (from the index file, or by scanning for the stream magic),
//! aligning a split to them, and decompressing streams in parallel with rayon while
//! keeping their order and a bounded look-ahead.
//!
//! A stream starts byte-aligned with `BZh1`..`BZh9` followed by either the block magic
//! (`0x314159265359`, first block) or the end-of-stream magic (`0x177245385090`, an empty
//! stream). Inside compressed data blocks are bit-aligned, so a false match needs 80
//! specific bits at a byte-aligned position: about one in 10^24 positions.

use std::io::{self, BufRead, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bzip2::read::MultiBzDecoder;
use crossbeam_channel::{Receiver, Sender};
use memmap2::Mmap;
use rayon::prelude::*;

use super::io::{FaultKind, InputFault};
use crate::error::{Error, Result};

const BLOCK_MAGIC: [u8; 6] = [0x31, 0x41, 0x59, 0x26, 0x53, 0x59];
const EOS_MAGIC: [u8; 6] = [0x17, 0x72, 0x45, 0x38, 0x50, 0x90];
/// How far into a bzip2 file we look for a second stream before calling it single-stream.
const MULTISTREAM_PROBE_BYTES: usize = 64 << 20;
/// Refuse to inflate a single stream beyond this (a dump stream holds 100 pages).
const MAX_STREAM_OUTPUT: u64 = 1 << 30;

/// True when `bytes` starts with a bzip2 stream header.
pub(crate) fn is_stream_start(bytes: &[u8]) -> bool {
    bytes.len() >= 10
        && bytes.starts_with(b"BZh")
        && (b'1'..=b'9').contains(&bytes[3])
        && (bytes[4..10] == BLOCK_MAGIC || bytes[4..10] == EOS_MAGIC)
}

/// First stream start in `map[from..to)` (the header may extend past `to`).
pub(crate) fn find_stream_start(map: &[u8], from: usize, to: usize) -> Option<usize> {
    let to = to.min(map.len());
    let mut at = from;
    while at < to {
        let rel = map[at..to].iter().position(|&b| b == b'B')?;
        at += rel;
        if is_stream_start(&map[at..]) {
            return Some(at);
        }
        at += 1;
    }
    None
}

/// Whether a bzip2 file holds more than one stream (probes the first 64 MiB).
pub(crate) fn looks_multistream(map: &[u8]) -> bool {
    find_stream_start(map, 4, MULTISTREAM_PROBE_BYTES).is_some()
}

/// Where the streams of a multistream file start.
pub(crate) enum Boundaries {
    /// Sorted, deduplicated offsets from the index (0 prepended: the siteinfo stream).
    Index(Arc<Vec<u64>>),
    /// Found by scanning the mapped file.
    Scan,
}

impl Boundaries {
    /// First stream start at or after `pos`, or `len`.
    pub fn align(&self, map: &[u8], pos: u64) -> u64 {
        let len = map.len() as u64;
        if pos == 0 {
            return 0;
        }
        match self {
            Boundaries::Index(offsets) => {
                let at = offsets.partition_point(|&o| o < pos);
                offsets.get(at).copied().unwrap_or(len)
            }
            Boundaries::Scan => {
                find_stream_start(map, pos as usize, map.len()).map_or(len, |at| at as u64)
            }
        }
    }

    /// The next stream start strictly after `pos` and before `end`, else `end`.
    fn next_after(&self, map: &[u8], pos: u64, end: u64) -> u64 {
        match self {
            Boundaries::Index(offsets) => {
                let at = offsets.partition_point(|&o| o <= pos);
                offsets.get(at).copied().filter(|&o| o < end).unwrap_or(end)
            }
            Boundaries::Scan => {
                find_stream_start(map, pos as usize + 4, end as usize).map_or(end, |at| at as u64)
            }
        }
    }

    fn clone_ref(&self) -> Boundaries {
        match self {
            Boundaries::Index(offsets) => Boundaries::Index(Arc::clone(offsets)),
            Boundaries::Scan => Boundaries::Scan,
        }
    }
}

/// Reads a multistream index (`offset:pageid:title` lines, plain or bzip2) into sorted
/// unique stream offsets, checked against the dump's length.
pub(crate) fn read_index(path: &Path, dump_len: u64) -> Result<Vec<u64>> {
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::NotFound {
            path: path.to_path_buf(),
        },
        _ => Error::io(path, e),
    })?;
    let mut raw = io::BufReader::new(file);
    let head = raw.fill_buf().map_err(|e| Error::io(path, e))?.to_vec();
    let reader: Box<dyn BufRead> = if head.starts_with(b"BZh") {
        Box::new(io::BufReader::new(MultiBzDecoder::new(raw)))
    } else {
        Box::new(raw)
    };
    let mut offsets = vec![0u64];
    for (number, line) in reader.split(b'\n').enumerate() {
        let line_no = number as u64 + 1;
        let line = line.map_err(|e| Error::Index {
            path: path.to_path_buf(),
            line: line_no,
            detail: format!("unreadable: {e}"),
        })?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let offset = parse_index_line(&line).map_err(|detail| Error::Index {
            path: path.to_path_buf(),
            line: line_no,
            detail,
        })?;
        if offset >= dump_len {
            return Err(Error::Index {
                path: path.to_path_buf(),
                line: line_no,
                detail: format!("offset {offset} is past the end of the dump ({dump_len} bytes)"),
            });
        }
        offsets.push(offset);
    }
    offsets.sort_unstable();
    offsets.dedup();
    Ok(offsets)
}

/// Splits `offset:pageid:title` on the first two colons only (titles contain colons).
fn parse_index_line(line: &[u8]) -> std::result::Result<u64, String> {
    let mut parts = line.splitn(3, |&b| b == b':');
    let (offset, page_id) = (parts.next().unwrap_or_default(), parts.next());
    if page_id.is_none() || parts.next().is_none() {
        return Err("expected offset:pageid:title".into());
    }
    let number = |field: &[u8], what: &str| {
        std::str::from_utf8(field)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                format!(
                    "{what} {:?} is not a number",
                    String::from_utf8_lossy(field)
                )
            })
    };
    number(page_id.unwrap_or_default(), "page id")?;
    number(offset, "offset")
}

/// Decompresses the streams of `map[start..end)` on a rayon pool, in order, into a
/// `BufRead`. A producer thread decodes batches of streams in parallel; a bounded channel
/// keeps at most two batches ahead of the parser.
pub(crate) struct ParallelStreams {
    rx: Receiver<io::Result<Chunk>>,
    current: Vec<u8>,
    pos: usize,
    progress: Arc<AtomicU64>,
    consumed: u64,
    done: bool,
}

struct Chunk {
    data: Vec<u8>,
    compressed: u64,
}

impl ParallelStreams {
    pub fn spawn(
        map: Arc<Mmap>,
        boundaries: &Boundaries,
        (start, end): (u64, u64),
        threads: usize,
        progress: Arc<AtomicU64>,
    ) -> Result<ParallelStreams> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("bz2-decode-{i}"))
            .build()
            .map_err(|e| Error::Other(format!("cannot start decompression threads: {e}")))?;
        let batch = pool.current_num_threads().max(1) * 2;
        let (tx, rx) = crossbeam_channel::bounded(batch * 2);
        let boundaries = boundaries.clone_ref();
        std::thread::Builder::new()
            .name("bz2-streams".into())
            .spawn(move || produce(&map, &boundaries, start, end, &pool, batch, &tx))
            .map_err(|e| Error::Other(format!("cannot start decompression thread: {e}")))?;
        Ok(ParallelStreams {
            rx,
            current: Vec::new(),
            pos: 0,
            progress,
            consumed: 0,
            done: false,
        })
    }
}

fn produce(
    map: &Mmap,
    boundaries: &Boundaries,
    start: u64,
    end: u64,
    pool: &rayon::ThreadPool,
    batch: usize,
    tx: &Sender<io::Result<Chunk>>,
) {
    let mut at = start;
    while at < end {
        let mut ranges = Vec::with_capacity(batch);
        while at < end && ranges.len() < batch {
            let next = boundaries.next_after(map, at, end);
            ranges.push((at, next));
            at = next;
        }
        let decoded: Vec<io::Result<Chunk>> = pool.install(|| {
            ranges
                .par_iter()
                .map(|&(a, b)| decode_range(map, a, b))
                .collect()
        });
        for chunk in decoded {
            let failed = chunk.is_err();
            if tx.send(chunk).is_err() || failed {
                return; // reader dropped, or the fault is reported: stop
            }
        }
    }
}

/// Decodes every stream in `map[a..b)` (usually one; an index range may hold several).
fn decode_range(map: &[u8], a: u64, b: u64) -> io::Result<Chunk> {
    let input = &map[a as usize..b as usize];
    let mut data = Vec::with_capacity(input.len() * 5);
    let mut decoder = MultiBzDecoder::new(input).take(MAX_STREAM_OUTPUT + 1);
    match decoder.read_to_end(&mut data) {
        Ok(_) if data.len() as u64 > MAX_STREAM_OUTPUT => Err(InputFault::io(
            FaultKind::Decompress,
            a,
            format!("bzip2 stream inflates beyond {MAX_STREAM_OUTPUT} bytes"),
        )),
        Ok(_) => Ok(Chunk {
            data,
            compressed: b - a,
        }),
        Err(err) => Err(InputFault::io(
            FaultKind::Decompress,
            a,
            format!("bzip2 stream at bytes {a}..{b}: {err}"),
        )),
    }
}

impl Read for ParallelStreams {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ParallelStreams {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos >= self.current.len() && !self.done {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.consumed += chunk.compressed;
                    self.progress.store(self.consumed, Ordering::Relaxed);
                    self.current = chunk.data;
                    self.pos = 0;
                }
                Ok(Err(err)) => {
                    self.done = true;
                    return Err(err);
                }
                Err(_) => self.done = true,
            }
        }
        Ok(&self.current[self.pos.min(self.current.len())..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos += amt;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_lines_split_on_first_two_colons() {
        assert_eq!(parse_index_line(b"718:10:Wikipedia:About: a:b"), Ok(718));
        assert!(parse_index_line(b"718:10").is_err());
        assert!(parse_index_line(b"x:10:T").is_err());
        assert!(parse_index_line(b"7:y:T").is_err());
    }
}
