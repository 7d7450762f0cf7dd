//! JSON-lines corpora: one document a line, `{"url","title","body"}` (the tantivy
//! wiki-articles corpus) or `{"id","title","url","body"}`.
//!
//! When `id` is absent the page id is derived from the URL (or, without a URL, the
//! title): the FNV-1a 64-bit hash of its UTF-8 bytes with the top bit cleared, so the id
//! is stable across runs, machines and splits and fits an `i64` column.
//! A bad line (invalid UTF-8, invalid JSON, no id/url/title, over the size limit) is
//! skipped with its reason; reading goes on with the next line.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::xml::DEFAULT_MAX_PAGE_BYTES;
use super::{PageEvent, Skip, SkipReason};
use crate::error::{Error, Result};
use crate::page::Page;
use crate::split::Split;

#[derive(Deserialize)]
struct JsonDoc {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    body: Option<String>,
}

/// Pages of one JSON-lines input (or line-aligned slice of it).
pub(crate) struct JsonPages {
    input: Box<dyn BufRead + Send>,
    path: PathBuf,
    base_offset: u64,
    offset: u64,
    ordinal_split: Option<Split>,
    ordinal: u64,
    pub(crate) max_page_bytes: usize,
    line: Vec<u8>,
}

/// One line, read with a bound.
enum Line {
    Eof,
    Fits,
    TooLong(u64),
}

impl JsonPages {
    pub fn new(
        input: Box<dyn BufRead + Send>,
        path: &Path,
        base_offset: u64,
        ordinal_split: Option<Split>,
    ) -> JsonPages {
        JsonPages {
            input,
            path: path.to_path_buf(),
            base_offset,
            offset: 0,
            ordinal_split: ordinal_split.filter(|s| !s.is_whole()),
            ordinal: 0,
            max_page_bytes: DEFAULT_MAX_PAGE_BYTES,
            line: Vec::new(),
        }
    }

    pub fn next_event(&mut self) -> Result<Option<PageEvent>> {
        loop {
            let offset = self.base_offset + self.offset;
            let line = self.read_line()?;
            if matches!(line, Line::Eof) {
                return Ok(None);
            }
            if matches!(line, Line::Fits) && self.line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let ordinal = self.ordinal;
            self.ordinal += 1;
            if self.ordinal_split.is_some_and(|s| !s.owns_ordinal(ordinal)) {
                continue;
            }
            let event = match line {
                Line::TooLong(len) => skip(
                    SkipReason::TooLarge,
                    offset,
                    format!(
                        "line is {len} bytes, over the {} byte limit",
                        self.max_page_bytes
                    ),
                ),
                _ => parse_line(&self.line, offset),
            };
            if self.line.capacity() > 1 << 20 {
                self.line = Vec::new();
            }
            return Ok(Some(event));
        }
    }

    /// Reads one line into `self.line`, never holding more than the size limit.
    fn read_line(&mut self) -> Result<Line> {
        self.line.clear();
        let mut total = 0u64;
        let mut saw_any = false;
        loop {
            let available = match self.input.fill_buf() {
                Ok(bytes) => bytes,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(self.read_error(err)),
            };
            if available.is_empty() {
                break;
            }
            saw_any = true;
            let (take, done) = match available.iter().position(|&b| b == b'\n') {
                Some(at) => (at + 1, true),
                None => (available.len(), false),
            };
            if total as usize + take <= self.max_page_bytes + 1 {
                self.line.extend_from_slice(&available[..take]);
            }
            total += take as u64;
            self.input.consume(take);
            self.offset += take as u64;
            if done {
                break;
            }
        }
        Ok(match (saw_any, total as usize > self.max_page_bytes + 1) {
            (false, _) => Line::Eof,
            (true, true) => Line::TooLong(total),
            (true, false) => Line::Fits,
        })
    }

    fn read_error(&self, err: std::io::Error) -> Error {
        match super::io::InputFault::find(&err) {
            Some(fault) if fault.kind == super::io::FaultKind::Decompress => Error::Decompress {
                path: self.path.clone(),
                offset: fault.offset,
                detail: fault.detail.clone(),
            },
            Some(fault) => Error::Encoding {
                path: self.path.clone(),
                offset: fault.offset,
                offset_kind: "byte offset".into(),
                detail: fault.detail.clone(),
            },
            None => Error::io(&self.path, err),
        }
    }
}

fn skip(reason: SkipReason, offset: u64, detail: String) -> PageEvent {
    PageEvent::Skipped(Skip {
        reason,
        page_id: None,
        title: None,
        offset,
        detail,
    })
}

fn parse_line(line: &[u8], offset: u64) -> PageEvent {
    let text = match std::str::from_utf8(line) {
        Ok(text) => text,
        Err(err) => return skip(SkipReason::InvalidUtf8, offset, format!("line: {err}")),
    };
    let doc: JsonDoc = match serde_json::from_str(text) {
        Ok(doc) => doc,
        Err(err) => {
            return skip(
                SkipReason::Malformed,
                offset,
                format!("invalid JSON: {err}"),
            )
        }
    };
    let id = match doc.id.as_ref().map(json_id) {
        Some(Some(id)) => id,
        Some(None) => {
            let detail = format!(
                "\"id\" {} is not an unsigned integer",
                doc.id.unwrap_or_default()
            );
            return skip(SkipReason::Malformed, offset, detail);
        }
        None => match doc.url.as_deref().or(doc.title.as_deref()) {
            Some(key) => derived_id(key),
            None => {
                let detail = "no \"id\", \"url\" or \"title\" to identify the document".into();
                return skip(SkipReason::MissingId, offset, detail);
            }
        },
    };
    PageEvent::Page(Page {
        id,
        ns: 0,
        title: doc.title.unwrap_or_default(),
        redirect_target: None,
        revision_id: None,
        timestamp: None,
        wikitext: doc.body.unwrap_or_default(),
        url: Some(doc.url.unwrap_or_default()),
    })
}

fn json_id(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// FNV-1a 64 of the key, top bit cleared (see the module docs).
pub fn derived_id(key: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= byte as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash & (u64::MAX >> 1)
}
