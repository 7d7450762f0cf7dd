//! Wikitext to indexable plain text: one linear pass over the page's bytes that keeps what
//! a reader sees as prose (headings, link anchors, bold/italic and list text) and drops
//! what is not (templates, tables, `<ref>`s, comments, magic words, File links,
//! language links), decodes HTML entities and pulls out the page's categories.
//!
//! Why purpose-built instead of a wikitext parser crate: `parse_wiki_text` is unmaintained
//! and hangs on real enwiki pages, `parse-wiki-text-2` runs at ~20 MB/s and needs a
//! timeout, `wikrs` strips superlinearly (see `NOTES.md`). Indexing needs text, not a
//! tree, so a byte-level state machine does the job at hundreds of MB/s.
//!
//! How it stays linear whatever the input:
//! - Text runs are copied with a table-driven scan for the few bytes that can start
//!   markup. Every other look-ahead is bounded or stops at the next byte that could start
//!   a new look-ahead of the same kind, so look-aheads never overlap; a failed search for
//!   a closing tag is remembered per tag name and never repeated.
//! - Nesting is an explicit stack (`Vec<Frame>`, capped at `MAX_DEPTH`), never recursion.
//!   Every construct's text is written to the output as it is read; closing a construct
//!   whose content is dropped just truncates the output back to where it started (O(1)),
//!   so nothing is ever copied twice.
//!
//! Unclosed or malformed constructs are rendered as text, as MediaWiki renders them: an
//! unclosed `{{`, `{{{` or `{|` keeps its opener and content (`"{{a b"`); a `[[` whose
//! target is not a valid title stays literal; stray closers (`}}`, `]]`, `|}`) are text.
//! Two deliberate exceptions: an unclosed piped link `[[a|b` keeps only `b` (its target
//! was already consumed), and an unclosed `<!--` hides the rest of the page (MediaWiki
//! does the same). An extension tag without its closing tag (`<ref>` alone) is dropped
//! and what follows it is ordinary text.

mod entities;
mod links;
mod tags;
#[cfg(test)]
mod tests;

use crate::page::SiteInfo;

/// Namespace prefixes that give `[[Prefix:...]]` links a meaning other than "a link".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CleanOptions {
    /// `[[Category:X]]` names (localized ns 14 plus English "Category").
    pub category_prefixes: Vec<String>,
    /// `[[File:X|...]]` names, dropped with their captions (ns 6, ns -2, "File", "Image").
    pub file_prefixes: Vec<String>,
    /// Also list the page's article links (`Cleaned::links`): the link pass wants them,
    /// the shard build does not, so it saves the allocations.
    pub collect_links: bool,
}

impl CleanOptions {
    /// Prefixes for a wiki: its localized category (ns 14), file (ns 6) and media (ns -2)
    /// namespace names, plus the English names every wiki also accepts.
    pub fn for_site(site: &SiteInfo) -> CleanOptions {
        let mut opts = CleanOptions::default();
        let add = |list: &mut Vec<String>, ns: i32| {
            if let Some(name) = site.namespaces.get(&ns) {
                let name = name.trim();
                if !name.is_empty() && !list.iter().any(|p| same_prefix(p, name)) {
                    list.push(name.to_string());
                }
            }
        };
        add(&mut opts.category_prefixes, 14);
        add(&mut opts.file_prefixes, 6);
        add(&mut opts.file_prefixes, -2);
        opts
    }
}

impl Default for CleanOptions {
    /// English Wikipedia's prefixes.
    fn default() -> Self {
        CleanOptions {
            category_prefixes: vec!["Category".into()],
            file_prefixes: vec!["File".into(), "Image".into(), "Media".into()],
            collect_links: false,
        }
    }
}

/// The indexable content of one page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// Plain text: paragraphs separated by newlines, at most one blank line in a row.
    pub body: String,
    /// Category names without prefix or sort key, in page order.
    pub categories: Vec<String>,
    /// The page starts with `#REDIRECT` (any case).
    pub is_redirect: bool,
    /// Length in bytes of the lead section: the body before the first top-level heading
    /// (the whole body when there is none). Always a char boundary of `body`.
    pub lead_len: usize,
    /// Links to other pages, in page order (only with `CleanOptions::collect_links`).
    pub links: Vec<WikiLink>,
}

/// One `[[target]]` or `[[target|anchor]]` link of a page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WikiLink {
    /// The target as written (entities not decoded, `_` not replaced, may hold `#section`).
    pub target: String,
    /// The text shown for a piped link, trimmed; `None` for a plain `[[target]]`, whose
    /// text is the target itself.
    pub anchor: Option<String>,
}

/// Cleans one page's wikitext. Linear time and bounded stack on any input; never panics.
/// The body is never longer than the input.
pub fn clean(wikitext: &str, opts: &CleanOptions) -> Cleaned {
    Cleaner::new(wikitext, opts).run().0
}

/// Deepest nesting we track; deeper openers are plain text. Real pages nest < 20 deep.
const MAX_DEPTH: usize = 512;
/// Longest link target we accept (MediaWiki titles are at most 255 bytes, plus a section).
const MAX_TARGET: usize = 512;
/// Longest external URL we accept in `[url label]`.
const MAX_URL: usize = 4096;
/// Longest magic word (`__EXPECTUNUSEDCATEGORY__` and localized forms).
const MAX_MAGIC: usize = 64;

/// Bytes that may start markup; everything else is copied in bulk.
static SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    let bytes = b"{}[]<&'\n_";
    while i < bytes.len() {
        t[bytes[i] as usize] = true;
        i += 1;
    }
    t
};

/// An open construct.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `{{...}}`: dropped.
    Template,
    /// `{{{...}}}`: dropped.
    Param,
    /// `{|...|}`: dropped.
    Table,
    /// Anchor of `[[target|anchor]]`: kept.
    Link,
    /// Caption of a File link, a category's sort key: dropped.
    DropLink,
    /// Label of `[url label]`: kept.
    ExtLink,
}

impl Kind {
    fn dropped(self) -> bool {
        !matches!(self, Kind::Link | Kind::ExtLink)
    }
}

#[derive(Clone, Copy, Debug)]
struct Frame {
    kind: Kind,
    /// For the anchor of a piped article link being collected: its index in
    /// `Cleaner::links` plus one (0: none).
    link: u32,
    /// Output length when the construct opened: where a dropped one truncates to.
    out_start: usize,
    /// Categories found before it opened: those found inside a dropped one are dropped.
    cats_start: usize,
}

struct Cleaner<'a> {
    text: &'a str,
    src: &'a [u8],
    opts: &'a CleanOptions,
    pos: usize,
    out: String,
    categories: Vec<String>,
    stack: Vec<Frame>,
    /// Open `Template` + `Param` frames.
    braces: usize,
    /// Open `Table` frames.
    tables: usize,
    /// Open `Link` + `DropLink` frames.
    brackets: usize,
    /// Output length where the current heading's text began, while in a heading line.
    heading: Option<usize>,
    /// Output length where the first heading outside any construct began.
    lead_end: Option<usize>,
    /// Collected links (with `CleanOptions::collect_links`).
    links: Vec<WikiLink>,
    /// Per extension tag: no closing tag exists at or after this input offset.
    no_close_from: [usize; tags::EXTENSION_TAGS.len()],
    /// Bytes examined, for the linearity tests.
    steps: u64,
}

impl<'a> Cleaner<'a> {
    fn new(text: &'a str, opts: &'a CleanOptions) -> Self {
        Cleaner {
            text,
            src: text.as_bytes(),
            opts,
            pos: 0,
            out: String::with_capacity(text.len()),
            categories: Vec::new(),
            stack: Vec::new(),
            braces: 0,
            tables: 0,
            brackets: 0,
            heading: None,
            lead_end: None,
            links: Vec::new(),
            no_close_from: [usize::MAX; tags::EXTENSION_TAGS.len()],
            steps: 0,
        }
    }

    /// Cleans the page; also returns the work counter.
    fn run(mut self) -> (Cleaned, u64) {
        let is_redirect = self.skip_redirect();
        let mut line_start = true;
        while self.pos < self.src.len() {
            if line_start {
                line_start = false;
                self.line_start();
                continue;
            }
            self.copy_text_run();
            let Some(&b) = self.src.get(self.pos) else {
                break;
            };
            match b {
                b'\n' => {
                    self.newline();
                    line_start = true;
                }
                b'{' => self.open_braces(),
                b'}' => self.close_braces(),
                b'[' => self.open_bracket(),
                b']' => self.close_bracket(),
                b'<' => self.angle(),
                b'&' => self.entity(),
                b'\'' => self.apostrophes(),
                _ => self.underscore(),
            }
        }
        self.end_heading();
        let lead_end = self.lead_end.unwrap_or(self.out.len());
        let (body, lead_len) = trim_in_place(self.out, lead_end);
        let cleaned = Cleaned {
            body,
            categories: self.categories,
            is_redirect,
            lead_len,
            links: self.links,
        };
        (cleaned, self.steps)
    }

    // ---- text -------------------------------------------------------------------------

    /// Copies bytes up to the next one that may start markup.
    fn copy_text_run(&mut self) {
        let start = self.pos;
        let rest = &self.src[start..];
        let n = rest
            .iter()
            .position(|&b| SPECIAL[b as usize])
            .unwrap_or(rest.len());
        self.steps += n as u64 + 1;
        self.pos = start + n;
        self.out.push_str(&self.text[start..self.pos]);
    }

    /// Copies `n` input bytes at `pos` literally (`n` ends on a char boundary).
    fn literal(&mut self, n: usize) {
        self.out.push_str(&self.text[self.pos..self.pos + n]);
        self.pos += n;
    }

    /// Output length below which trimming must not reach: the innermost open construct's
    /// start, so truncating it later stays exact.
    fn floor(&self) -> usize {
        self.stack.last().map_or(0, |f| f.out_start)
    }

    /// Pops trailing bytes in `set` from the output, not below `floor`.
    fn trim_output_end(&mut self, floor: usize, set: &[u8]) {
        while self.out.len() > floor && set.contains(&self.out.as_bytes()[self.out.len() - 1]) {
            self.out.pop();
            self.steps += 1;
        }
    }

    fn push_separator(&mut self) {
        if !self.out.ends_with([' ', '\n']) && !self.out.is_empty() {
            self.out.push(' ');
        }
    }

    fn entity(&mut self) {
        match entities::decode(&self.src[self.pos..]) {
            Some((c, len)) => {
                self.out.push(c);
                self.pos += len;
                self.steps += len as u64;
            }
            None => self.literal(1),
        }
    }

    /// `''italic''`, `'''bold'''`: runs of two or more apostrophes are markup.
    fn apostrophes(&mut self) {
        let n = run_len(&self.src[self.pos..], b'\'');
        self.steps += n as u64;
        if n == 1 {
            self.literal(1);
        } else {
            self.pos += n;
        }
    }

    /// `__NOTOC__` and other behaviour switches (uppercase ASCII or any non-ASCII letters,
    /// so localized ones go too); other underscores are text.
    fn underscore(&mut self) {
        let rest = &self.src[self.pos..];
        if rest.starts_with(b"__") {
            let word = rest[2..]
                .iter()
                .take(MAX_MAGIC)
                .take_while(|&&b| b.is_ascii_uppercase() || b >= 0x80)
                .count();
            self.steps += word as u64 + 2;
            if word > 0 && rest[2 + word..].starts_with(b"__") {
                self.pos += word + 4;
                return;
            }
            self.literal(2);
        } else {
            self.literal(1);
        }
    }

    // ---- lines ------------------------------------------------------------------------

    fn skip_redirect(&mut self) -> bool {
        let ws = self
            .src
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        let rest = &self.src[ws..];
        let is_redirect = rest.len() >= 9 && rest[..9].eq_ignore_ascii_case(b"#redirect");
        if is_redirect {
            self.pos = ws + 9;
            if self.src.get(self.pos) == Some(&b':') {
                self.pos += 1;
            }
        }
        is_redirect
    }

    /// Markup that only means something at the start of a line: tables, headings, lists,
    /// horizontal rules.
    fn line_start(&mut self) {
        let rest = &self.src[self.pos..];
        let indent = rest
            .iter()
            .take_while(|&&b| matches!(b, b' ' | b'\t' | b':'))
            .count();
        self.steps += indent as u64 + 1;
        let after = &rest[indent..];
        if after.starts_with(b"{|") {
            self.pos += indent;
            self.push_frame(Kind::Table, 2);
            return;
        }
        if after.starts_with(b"|}") && self.tables > 0 {
            self.pos += indent + 2;
            self.close_until(|k| k == Kind::Table);
            return;
        }
        match rest.first() {
            Some(b'=') => {
                let n = run_len(rest, b'=');
                self.pos += n + run_len(&rest[n..], b' ');
                self.heading = Some(self.out.len());
                if self.lead_end.is_none() && self.stack.is_empty() {
                    self.lead_end = Some(self.out.len());
                }
            }
            Some(b'*' | b'#' | b':' | b';') => {
                let n = rest
                    .iter()
                    .take_while(|&&b| matches!(b, b'*' | b'#' | b':' | b';' | b' ' | b'\t'))
                    .count();
                self.pos += n;
            }
            Some(b'-') if rest.starts_with(b"----") => self.pos += run_len(rest, b'-'),
            _ => {}
        }
    }

    fn newline(&mut self) {
        self.end_heading();
        if self.stack.last().is_some_and(|f| f.kind == Kind::ExtLink) {
            self.pop_unclosed();
        }
        let floor = self.floor();
        self.trim_output_end(floor, b" \t");
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
        self.pos += 1;
    }

    /// Drops a heading's closing `==` (and spaces around it).
    fn end_heading(&mut self) {
        if let Some(start) = self.heading.take() {
            let floor = self.floor().max(start);
            self.trim_output_end(floor, b" \t");
            self.trim_output_end(floor, b"=");
            self.trim_output_end(floor, b" \t");
        }
    }

    // ---- the stack --------------------------------------------------------------------

    /// Opens a construct whose opener (`n` bytes at `pos`) is written out, so that if it
    /// never closes the reader sees the literal text.
    fn push_frame(&mut self, kind: Kind, n: usize) {
        if self.stack.len() >= MAX_DEPTH {
            self.literal(n);
            return;
        }
        self.stack.push(Frame {
            kind,
            link: 0,
            out_start: self.out.len(),
            cats_start: self.categories.len(),
        });
        match kind {
            Kind::Template | Kind::Param => self.braces += 1,
            Kind::Table => self.tables += 1,
            Kind::Link | Kind::DropLink => self.brackets += 1,
            Kind::ExtLink => {}
        }
        self.literal(n);
    }

    /// Pops the top frame, updating the counters. Its content stays as it is.
    fn pop_unclosed(&mut self) -> Option<Frame> {
        let frame = self.stack.pop()?;
        match frame.kind {
            Kind::Template | Kind::Param => self.braces -= 1,
            Kind::Table => self.tables -= 1,
            Kind::Link | Kind::DropLink => self.brackets -= 1,
            Kind::ExtLink => {}
        }
        self.steps += 1;
        Some(frame)
    }

    /// Closes the innermost frame matching `is`; frames above it were never closed and
    /// are popped as text. The caller has checked (by counter) that one is open, and each
    /// frame is popped once, so this is amortized O(1).
    fn close_until(&mut self, is: impl Fn(Kind) -> bool) -> Option<Kind> {
        while let Some(frame) = self.pop_unclosed() {
            if is(frame.kind) {
                if frame.link > 0 {
                    let anchor = self.out[frame.out_start..].trim();
                    self.links[frame.link as usize - 1].anchor = Some(anchor.to_string());
                }
                if frame.kind.dropped() {
                    self.out.truncate(frame.out_start);
                    self.categories.truncate(frame.cats_start);
                }
                return Some(frame.kind);
            }
        }
        None
    }

    // ---- braces -----------------------------------------------------------------------

    /// `{{` template, `{{{` parameter; longer runs are nested ones (`{{{{{a}}}}}` is a
    /// template around a parameter). A single `{` is text.
    fn open_braces(&mut self) {
        let n = run_len(&self.src[self.pos..], b'{');
        self.steps += n as u64;
        if n == 1 {
            return self.literal(1);
        }
        let params = n % 2;
        for _ in 0..(n - 3 * params) / 2 {
            self.push_frame(Kind::Template, 2);
        }
        if params == 1 {
            self.push_frame(Kind::Param, 3);
        }
    }

    fn close_braces(&mut self) {
        let mut n = run_len(&self.src[self.pos..], b'}');
        self.steps += n as u64;
        while n >= 2 && self.braces > 0 {
            let closed = self.close_until(|k| matches!(k, Kind::Template | Kind::Param));
            // A parameter takes three braces when there are three.
            let width = if n >= 3 && closed == Some(Kind::Param) {
                3
            } else {
                2
            };
            self.pos += width;
            n -= width;
        }
        self.literal(n);
    }
}

/// Length of the run of `b` at the start of `s`.
fn run_len(s: &[u8], b: u8) -> usize {
    s.iter().take_while(|&&x| x == b).count()
}

/// Removes leading and trailing whitespace without a second allocation; `mark` (a byte
/// offset into `s`) is moved along and returned, clamped to a char boundary of the result.
fn trim_in_place(mut s: String, mark: usize) -> (String, usize) {
    let end = s.trim_end().len();
    s.truncate(end);
    let start = s.len() - s.trim_start().len();
    s.drain(..start);
    let mut mark = mark.saturating_sub(start).min(s.len());
    while !s.is_char_boundary(mark) {
        mark -= 1;
    }
    (s, mark)
}

/// Namespace names compare case-insensitively, with `_` and ` ` the same.
fn same_prefix(a: &str, b: &str) -> bool {
    let norm = |c: char| if c == '_' { ' ' } else { c };
    a.chars()
        .map(norm)
        .flat_map(char::to_lowercase)
        .eq(b.chars().map(norm).flat_map(char::to_lowercase))
}
