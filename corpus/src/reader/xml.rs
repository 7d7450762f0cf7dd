//! Streaming MediaWiki XML (export 0.10 / 0.11) parser over any `BufRead`.
//!
//! Elements are matched by local name (the namespace URI changes between export
//! versions); unknown elements and attributes (`<origin>`, `sha1`, `<content>` slots,
//! `bytes=`) are ignored; `<text/>` and `<text deleted="deleted"/>` give empty wikitext.
//! The input may be a whole document or a fragment (a split that starts at a `<page>` and
//! may end with a bare `</mediawiki>`), so unmatched end tags at top level are allowed
//! while nesting inside a page is still checked.
//!
//! Per page the only allocations are the page's own strings; the event buffer, the
//! element stack and the scratch field buffer are reused (and shrunk after a huge page).

use std::io::BufRead;
use std::path::{Path, PathBuf};

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::QName;
use quick_xml::Reader;

use super::io::{FaultKind, InputFault, Utf8Faults, Utf8Repair};
use super::{PageEvent, Skip, SkipReason};
use crate::error::{Error, Result};
use crate::page::{Page, SiteInfo};
use crate::split::Split;

/// Pages larger than this (wikitext bytes) are skipped; MediaWiki itself caps at 2 MiB.
pub const DEFAULT_MAX_PAGE_BYTES: usize = 16 << 20;
/// Cap on small fields (title, ids, timestamp): MediaWiki titles are at most 255 bytes.
const MAX_FIELD_BYTES: usize = 64 << 10;
/// Reused buffers above this size are dropped after a page, to keep memory bounded.
const KEEP_BUFFER_BYTES: usize = 1 << 20;

/// The elements we care about, by local name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    MediaWiki,
    SiteInfo,
    Page,
    Title,
    Ns,
    Id,
    Redirect,
    Revision,
    Timestamp,
    Text,
    Other,
}

impl Tag {
    fn of(local_name: &str) -> Tag {
        match local_name {
            "mediawiki" => Tag::MediaWiki,
            "siteinfo" => Tag::SiteInfo,
            "page" => Tag::Page,
            "title" => Tag::Title,
            "ns" => Tag::Ns,
            "id" => Tag::Id,
            "redirect" => Tag::Redirect,
            "revision" => Tag::Revision,
            "timestamp" => Tag::Timestamp,
            "text" => Tag::Text,
            _ => Tag::Other,
        }
    }
}

/// Which field the text being read belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Capture {
    None,
    Title,
    Ns,
    Id,
    RevisionId,
    Timestamp,
    Text,
}

/// A page being assembled.
#[derive(Default)]
struct PageState {
    page: Page,
    has_id: bool,
    text_bytes: u64,
    too_large: bool,
    invalid_utf8: Option<String>,
    malformed: Option<String>,
}

/// Pages of one XML stream (or fragment).
pub(crate) struct XmlPages {
    reader: Reader<Box<dyn BufRead + Send>>,
    path: PathBuf,
    /// Added to the reader's position to report offsets in the whole input.
    base_offset: u64,
    offset_kind: String,
    /// Set when the input can only be partitioned by counting pages.
    ordinal_split: Option<Split>,
    ordinal: u64,
    /// Whether this input holds the end of the document (so `</mediawiki>` must appear).
    expect_footer: bool,
    footer_seen: bool,
    pending_page: Option<u64>,
    last_page: Option<u64>,
    pub(crate) max_page_bytes: usize,
    buf: Vec<u8>,
    skip_buf: Vec<u8>,
    scratch: String,
    stack: Vec<Tag>,
    page_qname: String,
    utf8_faults: Utf8Faults,
}

impl XmlPages {
    pub fn new(
        input: Box<dyn BufRead + Send>,
        path: &Path,
        (base_offset, offset_kind): (u64, String),
        expect_footer: bool,
        ordinal_split: Option<Split>,
    ) -> XmlPages {
        let faults = Utf8Faults::default();
        let input: Box<dyn BufRead + Send> = Box::new(Utf8Repair::new(input, faults.clone()));
        let mut reader = Reader::from_reader(input);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.allow_unmatched_ends = true;
        config.expand_empty_elements = false;
        XmlPages {
            reader,
            path: path.to_path_buf(),
            base_offset,
            offset_kind,
            ordinal_split: ordinal_split.filter(|s| !s.is_whole()),
            ordinal: 0,
            expect_footer,
            footer_seen: false,
            pending_page: None,
            last_page: None,
            max_page_bytes: DEFAULT_MAX_PAGE_BYTES,
            buf: Vec::with_capacity(64 << 10),
            skip_buf: Vec::new(),
            scratch: String::new(),
            stack: Vec::with_capacity(16),
            page_qname: "page".to_string(),
            utf8_faults: faults,
        }
    }

    /// Reads up to the end of `<siteinfo>` (or the first `<page>`, which is kept for
    /// [`Self::next_event`]). `None` when the input has no siteinfo before its pages.
    pub fn read_header(&mut self) -> Result<Option<SiteInfo>> {
        loop {
            let pos = self.reader.buffer_position();
            let tag = match self.reader.read_event_into(&mut self.buf) {
                Ok(Event::Start(e)) => {
                    self.page_qname.clear();
                    self.page_qname.push_str(e.name().as_ref());
                    Tag::of(e.local_name().as_ref())
                }
                Ok(Event::End(e)) => {
                    self.footer_seen |= Tag::of(e.local_name().as_ref()) == Tag::MediaWiki;
                    continue;
                }
                Ok(Event::Decl(decl)) => {
                    let encoding = decl.encoding().and_then(|r| r.ok()).map(|c| c.into_owned());
                    self.check_declared_encoding(encoding.as_deref(), pos)?;
                    continue;
                }
                Ok(Event::Eof) => return Ok(None),
                Ok(_) => continue,
                Err(err) => return Err(self.xml_error(err)),
            };
            match tag {
                Tag::MediaWiki => {}
                Tag::SiteInfo => return self.parse_siteinfo().map(Some),
                Tag::Page => {
                    self.pending_page = Some(pos);
                    return Ok(None);
                }
                _ => self.skip_element()?,
            }
        }
    }

    /// The next page (or skipped page) of this input; `None` at its end.
    pub fn next_event(&mut self) -> Result<Option<PageEvent>> {
        loop {
            let pos = match self.pending_page.take() {
                Some(pos) => pos,
                None => match self.next_page_start()? {
                    Some(pos) => pos,
                    None => return Ok(None),
                },
            };
            let ordinal = self.ordinal;
            self.ordinal += 1;
            if let Some(split) = self.ordinal_split {
                if !split.owns_ordinal(ordinal) {
                    self.skip_element()?;
                    continue;
                }
            }
            return self.parse_page(pos).map(Some);
        }
    }

    /// Advances to the next `<page>` start at top level; returns its offset.
    fn next_page_start(&mut self) -> Result<Option<u64>> {
        loop {
            let pos = self.reader.buffer_position();
            let tag = match self.reader.read_event_into(&mut self.buf) {
                Ok(Event::Start(e)) => {
                    self.page_qname.clear();
                    self.page_qname.push_str(e.name().as_ref());
                    Tag::of(e.local_name().as_ref())
                }
                Ok(Event::End(e)) => {
                    self.footer_seen |= Tag::of(e.local_name().as_ref()) == Tag::MediaWiki;
                    continue;
                }
                Ok(Event::Eof) => return self.at_eof().map(|()| None),
                Ok(_) => continue,
                Err(err) => return Err(self.xml_error(err)),
            };
            match tag {
                Tag::Page => return Ok(Some(pos)),
                Tag::MediaWiki => {}
                _ => self.skip_element()?, // siteinfo (already read) or unknown
            }
        }
    }

    fn at_eof(&mut self) -> Result<()> {
        if self.expect_footer && !self.footer_seen {
            return Err(Error::Xml {
                path: self.path.clone(),
                offset: self.base_offset + self.reader.buffer_position(),
                offset_kind: self.offset_kind.clone(),
                last_page: self.last_page,
                detail: "input ends before </mediawiki>: truncated, or not a MediaWiki dump".into(),
            });
        }
        Ok(())
    }

    /// Skips the element whose start tag was just read (its name is in `page_qname`).
    fn skip_element(&mut self) -> Result<()> {
        let name = std::mem::take(&mut self.page_qname);
        let result = self
            .reader
            .read_to_end_into(QName(&name), &mut self.skip_buf);
        self.page_qname = name;
        shrink(&mut self.skip_buf);
        result.map(|_| ()).map_err(|err| self.xml_error(err))
    }

    fn parse_page(&mut self, pos: u64) -> Result<PageEvent> {
        let offset = self.base_offset + pos;
        let mut st = PageState::default();
        let mut capture = Capture::None;
        self.stack.clear();
        self.stack.push(Tag::Page);
        while !self.stack.is_empty() {
            match self.reader.read_event_into(&mut self.buf) {
                Ok(Event::Start(e)) => {
                    let tag = Tag::of(e.local_name().as_ref());
                    let parent = *self.stack.last().unwrap_or(&Tag::Other);
                    capture = start_capture(parent, tag, &e, &mut st);
                    self.scratch.clear();
                    self.stack.push(tag);
                }
                Ok(Event::Empty(e)) => {
                    let parent = *self.stack.last().unwrap_or(&Tag::Other);
                    start_capture(parent, Tag::of(e.local_name().as_ref()), &e, &mut st);
                    capture = Capture::None;
                }
                Ok(Event::Text(e)) => {
                    append(capture, &e, &mut st, &mut self.scratch, self.max_page_bytes)
                }
                Ok(Event::CData(e)) => {
                    append(capture, &e, &mut st, &mut self.scratch, self.max_page_bytes)
                }
                Ok(Event::GeneralRef(e)) => {
                    let mut utf8 = [0u8; 4];
                    let text = resolve_entity(&e, &mut utf8, &mut st);
                    append(
                        capture,
                        text,
                        &mut st,
                        &mut self.scratch,
                        self.max_page_bytes,
                    );
                }
                Ok(Event::End(_)) => {
                    self.finish_field(capture, &mut st);
                    capture = Capture::None;
                    self.stack.pop();
                }
                Ok(Event::Eof) => return Err(self.truncated_in_page(offset, &st)),
                Ok(_) => {}
                Err(err) => return Err(self.xml_error(err)),
            }
        }
        shrink(&mut self.buf);
        self.note_utf8_faults(pos, &mut st);
        Ok(self.finish_page(st, offset))
    }

    /// Marks the page invalid if UTF-8 was repaired between its start and here.
    fn note_utf8_faults(&mut self, page_start: u64, st: &mut PageState) {
        let page_end = self.reader.buffer_position();
        let mut faults = self.utf8_faults.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(&at) = faults.front().filter(|&&at| at < page_end) {
            faults.pop_front();
            if at >= page_start && st.invalid_utf8.is_none() {
                let at = self.base_offset + at;
                st.invalid_utf8 = Some(format!("invalid UTF-8 at {} {at}", self.offset_kind));
            }
        }
    }

    fn finish_field(&mut self, capture: Capture, st: &mut PageState) {
        let value = self.scratch.trim();
        let bad = |what: &str| format!("{what} {value:?} is not a number");
        match capture {
            Capture::Title => st.page.title = value.to_string(),
            Capture::Ns => match value.parse() {
                Ok(ns) => st.page.ns = ns,
                Err(_) => drop(st.malformed.get_or_insert(bad("<ns>"))),
            },
            Capture::Id => match value.parse() {
                Ok(id) => {
                    st.page.id = id;
                    st.has_id = true;
                }
                Err(_) => drop(st.malformed.get_or_insert(bad("<id>"))),
            },
            Capture::RevisionId => st.page.revision_id = value.parse().ok(),
            Capture::Timestamp => st.page.timestamp = Some(value.to_string()),
            Capture::Text | Capture::None => {}
        }
        self.scratch.clear();
    }

    fn finish_page(&mut self, st: PageState, offset: u64) -> PageEvent {
        let page = st.page;
        let skip = |reason, detail: String| {
            PageEvent::Skipped(Skip {
                reason,
                page_id: st.has_id.then_some(page.id),
                title: (!page.title.is_empty()).then(|| page.title.clone()),
                offset,
                detail,
            })
        };
        if st.has_id {
            self.last_page = Some(page.id);
        }
        if let Some(detail) = st.invalid_utf8 {
            return skip(SkipReason::InvalidUtf8, detail);
        }
        if st.too_large {
            let detail = format!(
                "wikitext is {} bytes, over the {} byte limit",
                st.text_bytes, self.max_page_bytes
            );
            return skip(SkipReason::TooLarge, detail);
        }
        if let Some(detail) = st.malformed {
            return skip(SkipReason::Malformed, detail);
        }
        if !st.has_id {
            return skip(SkipReason::MissingId, "<page> has no <id>".into());
        }
        PageEvent::Page(page)
    }

    fn parse_siteinfo(&mut self) -> Result<SiteInfo> {
        let mut site = SiteInfo::default();
        let (mut base, mut dbname) = (None, None);
        let mut field: Option<String> = None;
        let mut namespace_key: Option<i32> = None;
        let mut depth = 1usize;
        while depth > 0 {
            match self.reader.read_event_into(&mut self.buf) {
                Ok(Event::Start(e)) => {
                    depth += 1;
                    field = Some(e.local_name().as_ref().to_string());
                    namespace_key = namespace_key_of(&e);
                    self.scratch.clear();
                }
                Ok(Event::Empty(e)) => {
                    if let Some(key) = namespace_key_of(&e) {
                        site.namespaces.insert(key, String::new());
                    }
                }
                Ok(Event::Text(e)) => self.scratch.push_str(&e),
                Ok(Event::GeneralRef(e)) => {
                    let mut utf8 = [0u8; 4];
                    let text = resolve_entity(&e, &mut utf8, &mut PageState::default());
                    self.scratch.push_str(text);
                }
                Ok(Event::End(_)) => {
                    depth -= 1;
                    let value = self.scratch.trim().to_string();
                    match field.take().as_deref() {
                        Some("sitename") => site.sitename = value,
                        Some("base") => base = Some(value),
                        Some("dbname") => dbname = Some(value),
                        Some("namespace") => {
                            if let Some(key) = namespace_key.take() {
                                site.namespaces.insert(key, value);
                            }
                        }
                        _ => {}
                    }
                    self.scratch.clear();
                }
                Ok(Event::Eof) => break,
                Ok(_) => {}
                Err(err) => return Err(self.xml_error(err)),
            }
        }
        site.lang = SiteInfo::derive_lang(base.as_deref(), dbname.as_deref());
        site.base_url = base;
        Ok(site)
    }

    fn check_declared_encoding(&self, encoding: Option<&str>, pos: u64) -> Result<()> {
        let Some(encoding) = encoding else {
            return Ok(());
        };
        let known = [
            "utf-8", "utf8", "utf-16", "utf-16le", "utf-16be", "us-ascii", "ascii",
        ];
        if known.iter().any(|k| k.eq_ignore_ascii_case(encoding)) {
            return Ok(());
        }
        Err(Error::Encoding {
            path: self.path.clone(),
            offset: self.base_offset + pos,
            offset_kind: self.offset_kind.clone(),
            detail: format!("declared encoding {encoding:?} is not supported (UTF-8 or UTF-16)"),
        })
    }

    fn truncated_in_page(&self, offset: u64, st: &PageState) -> Error {
        let page = if st.has_id {
            format!("page id {}", st.page.id)
        } else {
            "a page".into()
        };
        Error::Xml {
            path: self.path.clone(),
            offset: self.base_offset + self.reader.buffer_position(),
            offset_kind: self.offset_kind.clone(),
            last_page: self.last_page,
            detail: format!("input ends inside {page} that starts at {offset}: truncated"),
        }
    }

    /// Turns a parser error into a typed error, unwrapping faults from below.
    fn xml_error(&self, err: quick_xml::Error) -> Error {
        if let quick_xml::Error::Io(io) = &err {
            if let Some(fault) = InputFault::find(io) {
                return match fault.kind {
                    FaultKind::Decompress => Error::Decompress {
                        path: self.path.clone(),
                        offset: fault.offset,
                        detail: fault.detail.clone(),
                    },
                    FaultKind::Encoding => Error::Encoding {
                        path: self.path.clone(),
                        offset: fault.offset,
                        offset_kind: "byte offset".into(),
                        detail: fault.detail.clone(),
                    },
                };
            }
        }
        Error::Xml {
            path: self.path.clone(),
            offset: self.base_offset + self.reader.error_position(),
            offset_kind: self.offset_kind.clone(),
            last_page: self.last_page,
            detail: err.to_string(),
        }
    }
}

/// Appends text to the field being captured, within the size limits.
fn append(
    capture: Capture,
    text: &str,
    st: &mut PageState,
    scratch: &mut String,
    max_page_bytes: usize,
) {
    match capture {
        Capture::None => {}
        Capture::Text => {
            st.text_bytes += text.len() as u64;
            if st.page.wikitext.len() + text.len() > max_page_bytes {
                st.too_large = true;
                st.page.wikitext = String::new(); // release it now: memory stays bounded
            } else if !st.too_large {
                st.page.wikitext.push_str(text);
            }
        }
        _ if scratch.len() + text.len() > MAX_FIELD_BYTES => {
            st.malformed
                .get_or_insert(format!("{capture:?} longer than {MAX_FIELD_BYTES} bytes"));
        }
        _ => scratch.push_str(text),
    }
}

/// Decides what a start tag inside a page captures; reads `<redirect title>`.
fn start_capture(parent: Tag, tag: Tag, e: &BytesStart<'_>, st: &mut PageState) -> Capture {
    match (parent, tag) {
        (Tag::Page, Tag::Title) => Capture::Title,
        (Tag::Page, Tag::Ns) => Capture::Ns,
        (Tag::Page, Tag::Id) => Capture::Id,
        (Tag::Page, Tag::Redirect) => {
            let title = e.try_get_attribute("title").ok().flatten();
            let target = title.and_then(|a| {
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .ok()
                    .map(|v| v.into_owned())
            });
            st.page.redirect_target = Some(target.unwrap_or_default());
            Capture::None
        }
        (Tag::Revision, Tag::Id) => Capture::RevisionId,
        (Tag::Revision, Tag::Timestamp) => Capture::Timestamp,
        (Tag::Revision, Tag::Text) => {
            // A later revision (history dumps) replaces the earlier text.
            st.page.wikitext.clear();
            st.text_bytes = 0;
            st.too_large = false;
            Capture::Text
        }
        _ => Capture::None,
    }
}

fn namespace_key_of(e: &BytesStart<'_>) -> Option<i32> {
    if e.local_name().as_ref() != "namespace" {
        return None;
    }
    e.try_get_attribute("key")
        .ok()
        .flatten()?
        .value
        .trim()
        .parse()
        .ok()
}

/// `&lt;` → `<`, `&#x3b1;` → `α`. An unknown named entity (no DTD declares any) marks
/// the page malformed; a bad character reference becomes U+FFFD.
fn resolve_entity<'a>(e: &'a BytesRef<'_>, utf8: &'a mut [u8; 4], st: &mut PageState) -> &'a str {
    let name: &str = e;
    match name {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "quot" => "\"",
        "apos" => "'",
        _ => match e.resolve_char_ref() {
            Ok(Some(ch)) => ch.encode_utf8(utf8),
            Ok(None) => {
                st.malformed
                    .get_or_insert(format!("unknown entity &{name};"));
                ""
            }
            Err(_) => "\u{FFFD}",
        },
    }
}

fn shrink(buf: &mut Vec<u8>) {
    if buf.capacity() > KEEP_BUFFER_BYTES {
        *buf = Vec::with_capacity(64 << 10);
    }
    buf.clear();
}
