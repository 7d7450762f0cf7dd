//! Byte plumbing under the parsers: a memory-mapped slice as a `BufRead` that publishes
//! its position, a byte-counting `Read`, a UTF-16 → UTF-8 transcoder, and `InputFault`,
//! the payload that carries a decompression/encoding fault (with its offset) through
//! `std::io::Error` up to the parser, which turns it into a typed [`crate::Error`].

use std::io::{self, BufRead, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use memmap2::Mmap;

/// What went wrong below the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultKind {
    Decompress,
    Encoding,
}

/// A fault in the byte stream, with the offset where it was seen.
#[derive(Debug)]
pub(crate) struct InputFault {
    pub kind: FaultKind,
    pub offset: u64,
    pub detail: String,
}

impl std::fmt::Display for InputFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} fault at byte offset {}: {}", self.kind, self.offset, self.detail)
    }
}

impl std::error::Error for InputFault {}

impl InputFault {
    pub fn io(kind: FaultKind, offset: u64, detail: impl Into<String>) -> io::Error {
        io::Error::other(InputFault { kind, offset, detail: detail.into() })
    }

    /// The fault inside an `io::Error`, if it carries one.
    pub fn find(err: &io::Error) -> Option<&InputFault> {
        err.get_ref()?.downcast_ref::<InputFault>()
    }
}

/// `map[pos..end]` as a zero-copy `BufRead`; stores bytes consumed into `progress`.
pub(crate) struct MmapSlice {
    map: Arc<Mmap>,
    start: usize,
    pos: usize,
    end: usize,
    progress: Arc<AtomicU64>,
}

impl MmapSlice {
    pub fn new(map: Arc<Mmap>, start: usize, end: usize, progress: Arc<AtomicU64>) -> Self {
        MmapSlice { map, start, pos: start, end, progress }
    }
}

impl Read for MmapSlice {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.fill_buf()?.len().min(out.len());
        out[..n].copy_from_slice(&self.map[self.pos..self.pos + n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for MmapSlice {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        Ok(&self.map[self.pos..self.end])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.end);
        // A plain store (not a read-modify-write): cheap enough to do per event.
        self.progress.store((self.pos - self.start) as u64, Ordering::Relaxed);
    }
}

/// Maps the errors of a decoder into `InputFault`s at the compressed offset reached.
pub(crate) struct DecodeFaults<R> {
    inner: R,
    progress: Arc<AtomicU64>,
    what: &'static str,
}

impl<R: Read> DecodeFaults<R> {
    pub fn new(inner: R, progress: Arc<AtomicU64>, what: &'static str) -> Self {
        DecodeFaults { inner, progress, what }
    }
}

impl<R: Read> Read for DecodeFaults<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.inner.read(out).map_err(|err| {
            if InputFault::find(&err).is_some() {
                return err;
            }
            let offset = self.progress.load(Ordering::Relaxed);
            InputFault::io(FaultKind::Decompress, offset, format!("{}: {err}", self.what))
        })
    }
}

/// Decodes UTF-16 (after its byte-order mark) into UTF-8, streaming and bounded.
pub(crate) struct Utf16Reader<R> {
    inner: R,
    big_endian: bool,
    raw: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    /// Offset (in UTF-16 input bytes, BOM included) of `raw[0]`.
    raw_offset: u64,
    pending_high: Option<u16>,
    eof: bool,
}

impl<R: Read> Utf16Reader<R> {
    /// `inner` starts right after the BOM (2 bytes).
    pub fn new(inner: R, big_endian: bool) -> Self {
        Utf16Reader {
            inner,
            big_endian,
            raw: Vec::with_capacity(64 * 1024),
            out: Vec::with_capacity(96 * 1024),
            out_pos: 0,
            raw_offset: 2,
            pending_high: None,
            eof: false,
        }
    }

    fn refill(&mut self) -> io::Result<()> {
        self.out.clear();
        self.out_pos = 0;
        while self.out.is_empty() && !self.eof {
            let have = self.raw.len();
            self.raw.resize(64 * 1024, 0);
            let n = self.inner.read(&mut self.raw[have..])?;
            self.raw.truncate(have + n);
            if n == 0 {
                self.eof = true;
                if !self.raw.is_empty() || self.pending_high.is_some() {
                    return Err(self.fault("input ends in the middle of a UTF-16 character"));
                }
            }
            self.decode_units()?;
        }
        Ok(())
    }

    fn decode_units(&mut self) -> io::Result<()> {
        let whole = self.raw.len() & !1;
        let mut i = 0;
        while i < whole {
            let pair = [self.raw[i], self.raw[i + 1]];
            let unit = if self.big_endian { u16::from_be_bytes(pair) } else { u16::from_le_bytes(pair) };
            let ch = match (self.pending_high.take(), unit) {
                (None, 0xD800..=0xDBFF) => {
                    self.pending_high = Some(unit);
                    i += 2;
                    continue;
                }
                (Some(high), 0xDC00..=0xDFFF) => {
                    let code = 0x10000 + (((high as u32) - 0xD800) << 10) + (unit as u32 - 0xDC00);
                    char::from_u32(code)
                }
                (None, 0xDC00..=0xDFFF) | (Some(_), _) => None,
                (None, _) => char::from_u32(unit as u32),
            };
            let Some(ch) = ch else {
                self.raw_offset += i as u64;
                return Err(self.fault("unpaired UTF-16 surrogate"));
            };
            let mut utf8 = [0u8; 4];
            self.out.extend_from_slice(ch.encode_utf8(&mut utf8).as_bytes());
            i += 2;
        }
        self.raw.drain(..whole);
        self.raw_offset += whole as u64;
        Ok(())
    }

    fn fault(&self, detail: &str) -> io::Error {
        InputFault::io(FaultKind::Encoding, self.raw_offset, format!("UTF-16 input: {detail}"))
    }
}

impl<R: Read> Read for Utf16Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.out_pos >= self.out.len() {
            self.refill()?;
        }
        let n = (self.out.len() - self.out_pos).min(buf.len());
        buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

/// Reads up to `limit` bytes from the start of `reader` (fewer only at end of input).
pub(crate) fn read_prefix<R: Read>(reader: &mut R, limit: usize) -> io::Result<Vec<u8>> {
    let mut prefix = Vec::with_capacity(limit);
    reader.take(limit as u64).read_to_end(&mut prefix)?;
    Ok(prefix)
}
