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
        write!(
            f,
            "{:?} fault at byte offset {}: {}",
            self.kind, self.offset, self.detail
        )
    }
}

impl std::error::Error for InputFault {}

impl InputFault {
    pub fn io(kind: FaultKind, offset: u64, detail: impl Into<String>) -> io::Error {
        io::Error::other(InputFault {
            kind,
            offset,
            detail: detail.into(),
        })
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
        MmapSlice {
            map,
            start,
            pos: start,
            end,
            progress,
        }
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
        self.progress
            .store((self.pos - self.start) as u64, Ordering::Relaxed);
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
        DecodeFaults {
            inner,
            progress,
            what,
        }
    }
}

impl<R: Read> Read for DecodeFaults<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.inner.read(out).map_err(|err| {
            if InputFault::find(&err).is_some() {
                return err;
            }
            let offset = self.progress.load(Ordering::Relaxed);
            InputFault::io(
                FaultKind::Decompress,
                offset,
                format!("{}: {err}", self.what),
            )
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
            let unit = if self.big_endian {
                u16::from_be_bytes(pair)
            } else {
                u16::from_le_bytes(pair)
            };
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
            self.out
                .extend_from_slice(ch.encode_utf8(&mut utf8).as_bytes());
            i += 2;
        }
        self.raw.drain(..whole);
        self.raw_offset += whole as u64;
        Ok(())
    }

    fn fault(&self, detail: &str) -> io::Error {
        InputFault::io(
            FaultKind::Encoding,
            self.raw_offset,
            format!("UTF-16 input: {detail}"),
        )
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

/// Offsets (in the repaired output) where invalid UTF-8 was replaced, oldest first.
pub(crate) type Utf8Faults = Arc<std::sync::Mutex<std::collections::VecDeque<u64>>>;

const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// Passes UTF-8 through, replacing each invalid sequence by U+FFFD and recording where,
/// so that the XML parser (which gives up on invalid UTF-8) can read on and the page
/// holding the fault is skipped with its id instead of stopping the whole dump.
pub(crate) struct Utf8Repair<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    /// Output offset of `buf[0]`.
    out_offset: u64,
    carry: Vec<u8>,
    eof: bool,
    faults: Utf8Faults,
}

impl<R: Read> Utf8Repair<R> {
    pub fn new(inner: R, faults: Utf8Faults) -> Self {
        Utf8Repair {
            inner,
            buf: Vec::with_capacity(256 << 10),
            pos: 0,
            out_offset: 0,
            carry: Vec::new(),
            eof: false,
            faults,
        }
    }

    fn refill(&mut self) -> io::Result<()> {
        self.out_offset += self.buf.len() as u64;
        let mut raw = std::mem::take(&mut self.buf);
        raw.clear();
        raw.append(&mut self.carry);
        if !self.eof {
            let have = raw.len();
            raw.resize(have + (256 << 10), 0);
            let read = loop {
                match self.inner.read(&mut raw[have..]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            raw.truncate(have + read.as_ref().copied().unwrap_or(0));
            if read? == 0 {
                self.eof = true;
            }
        }
        self.pos = 0;
        if std::str::from_utf8(&raw).is_ok() {
            self.buf = raw;
            return Ok(());
        }
        self.buf = self.repair(&raw);
        Ok(())
    }

    /// Copies `raw` replacing invalid sequences; an incomplete sequence at the end is
    /// kept for the next read unless the input has ended.
    fn repair(&mut self, raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(raw.len() + 16);
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        let mut chunks = raw.utf8_chunks().peekable();
        while let Some(chunk) = chunks.next() {
            out.extend_from_slice(chunk.valid().as_bytes());
            let invalid = chunk.invalid();
            if invalid.is_empty() {
                continue;
            }
            let last = chunks.peek().is_none();
            let incomplete = std::str::from_utf8(invalid).is_err_and(|e| e.error_len().is_none());
            if last && incomplete && !self.eof && invalid.len() < 4 {
                self.carry.extend_from_slice(invalid);
            } else {
                faults.push_back(self.out_offset + out.len() as u64);
                out.extend_from_slice(REPLACEMENT);
            }
        }
        out
    }
}

impl<R: Read> Read for Utf8Repair<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Utf8Repair<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos >= self.buf.len() && !(self.eof && self.carry.is_empty()) {
            self.refill()?;
        }
        Ok(&self.buf[self.pos.min(self.buf.len())..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos += amt;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repair(input: &[u8], chunk: usize) -> (Vec<u8>, Vec<u64>) {
        struct Chunked<'a>(&'a [u8], usize);
        impl Read for Chunked<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(out.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let faults = Utf8Faults::default();
        let mut out = Vec::new();
        Utf8Repair::new(Chunked(input, chunk), faults.clone())
            .read_to_end(&mut out)
            .unwrap();
        let faults = faults.lock().unwrap().iter().copied().collect();
        (out, faults)
    }

    #[test]
    fn utf8_repair_replaces_and_records() {
        let input = "aé€😀b".as_bytes();
        for chunk in 1..8 {
            assert_eq!(
                repair(input, chunk),
                (input.to_vec(), vec![]),
                "chunk {chunk}"
            );
        }
        let (out, faults) = repair(b"ab\xFFcd\xE2\x82", 3);
        assert_eq!(out, "ab\u{FFFD}cd\u{FFFD}".as_bytes());
        assert_eq!(faults, [2, 7]);
    }

    #[test]
    fn utf16_decodes_surrogate_pairs() {
        let text = "Бг 😀";
        let mut raw: Vec<u8> = Vec::new();
        for unit in text.encode_utf16() {
            raw.extend_from_slice(&unit.to_le_bytes());
        }
        let mut out = String::new();
        Utf16Reader::new(&raw[..], false)
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, text);
        let err = Utf16Reader::new(&[0x00u8, 0xD8, 0x41, 0x00][..], false).read_to_string(&mut out);
        assert!(InputFault::find(&err.unwrap_err()).is_some());
    }
}
