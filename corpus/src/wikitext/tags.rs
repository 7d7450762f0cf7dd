//! Recognising `<tag ...>` markup in wikitext: which names are extension tags whose whole
//! element is removed (`<ref>`, `<math>`, `<gallery>`...) or kept verbatim (`<nowiki>`,
//! `<pre>`), which are HTML formatting tags dropped while their text is kept (`<small>`,
//! `<span>`, `<br/>`), and finding an element's closing tag without ever rescanning.

use super::{entities, Cleaner};

/// What to do with an element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TagKind {
    /// Extension element removed with its content (index into `EXTENSION_TAGS`).
    DropElement(usize),
    /// Extension element whose content is literal text (entities still decoded).
    Verbatim(usize),
    /// HTML tag that separates words (`<br>`, `<p>`, `<li>`...): dropped, leaves a space.
    Break,
    /// HTML formatting tag: dropped, its content stays.
    Inline,
}

/// Extension tags, in the order their "no closing tag after here" memo is kept.
/// `true` = content kept verbatim, `false` = element dropped.
pub(crate) const EXTENSION_TAGS: &[(&str, bool)] = &[
    ("ref", false),
    ("references", false),
    ("math", false),
    ("chem", false),
    ("ce", false),
    ("gallery", false),
    ("imagemap", false),
    ("timeline", false),
    ("score", false),
    ("hiero", false),
    ("graph", false),
    ("mapframe", false),
    ("maplink", false),
    ("templatedata", false),
    ("templatestyles", false),
    ("syntaxhighlight", false),
    ("source", false),
    ("inputbox", false),
    ("categorytree", false),
    ("includeonly", false),
    ("charinsert", false),
    ("section", false),
    ("indicator", false),
    ("nowiki", true),
    ("pre", true),
];

const BREAK_TAGS: &[&str] = &[
    "br",
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "dl",
    "dd",
    "dt",
    "hr",
    "tr",
    "td",
    "th",
    "table",
    "blockquote",
    "center",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "caption",
    "poem",
];

const INLINE_TAGS: &[&str] = &[
    "abbr",
    "b",
    "bdi",
    "bdo",
    "big",
    "cite",
    "code",
    "data",
    "del",
    "dfn",
    "em",
    "font",
    "i",
    "ins",
    "kbd",
    "mark",
    "noinclude",
    "onlyinclude",
    "q",
    "rb",
    "rp",
    "rt",
    "ruby",
    "s",
    "samp",
    "small",
    "span",
    "strike",
    "strong",
    "sub",
    "sup",
    "tbody",
    "tfoot",
    "thead",
    "time",
    "tt",
    "u",
    "var",
    "wbr",
];

/// Tag names longer than this are not tags we know.
const MAX_NAME: usize = 16;
/// How far we look for the `>` that ends a tag; attributes longer than this are not a tag.
const MAX_TAG_LEN: usize = 2048;

/// A parsed `<name attrs>`, `</name>` or `<name/>`.
#[derive(Debug)]
pub(crate) struct Tag {
    pub kind: TagKind,
    pub closing: bool,
    pub self_closing: bool,
    /// Bytes from `<` through `>`.
    pub len: usize,
}

/// Parses the tag starting at `s[0] == b'<'`. Returns `None` when it is not a tag we
/// know (the `<` is then text). Stops at the next `<`, so scans from successive `<`
/// never overlap: linear overall.
pub(crate) fn parse(s: &[u8]) -> Option<Tag> {
    let closing = s.get(1) == Some(&b'/');
    let name_start = 1 + closing as usize;
    let name_len = s[name_start..]
        .iter()
        .take(MAX_NAME + 1)
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    if name_len == 0 || name_len > MAX_NAME || !s[name_start].is_ascii_alphabetic() {
        return None;
    }
    let name_end = name_start + name_len;
    match s.get(name_end) {
        Some(b'>' | b'/' | b' ' | b'\t' | b'\n') => {}
        _ => return None,
    }
    let kind = classify(&s[name_start..name_end])?;
    let limit = s.len().min(MAX_TAG_LEN);
    let gt = name_end
        + s[name_end..limit]
            .iter()
            .position(|&b| b == b'>' || b == b'<')?;
    if s[gt] != b'>' {
        return None;
    }
    Some(Tag {
        kind,
        closing,
        self_closing: s[gt - 1] == b'/',
        len: gt + 1,
    })
}

fn classify(name: &[u8]) -> Option<TagKind> {
    let is = |n: &str| n.as_bytes().eq_ignore_ascii_case(name);
    if let Some(i) = EXTENSION_TAGS.iter().position(|(n, _)| is(n)) {
        return Some(if EXTENSION_TAGS[i].1 {
            TagKind::Verbatim(i)
        } else {
            TagKind::DropElement(i)
        });
    }
    if BREAK_TAGS.iter().any(|n| is(n)) {
        return Some(TagKind::Break);
    }
    INLINE_TAGS.iter().any(|n| is(n)).then_some(TagKind::Inline)
}

/// Finds `</name>` (ASCII case-insensitive, `</name >` allowed) in `s`. Returns the
/// offsets of its `<` and just past its `>`.
pub(crate) fn find_close(s: &[u8], name: &str) -> Option<(usize, usize)> {
    let name = name.as_bytes();
    let mut i = 0;
    while let Some(off) = s[i..].iter().position(|&b| b == b'<') {
        let lt = i + off;
        let rest = &s[lt + 1..];
        if rest.len() > name.len()
            && rest[0] == b'/'
            && rest[1..=name.len()].eq_ignore_ascii_case(name)
            && !rest
                .get(name.len() + 1)
                .is_some_and(|b| b.is_ascii_alphanumeric())
        {
            let after_name = lt + 2 + name.len();
            let end = s[after_name..]
                .iter()
                .take(MAX_TAG_LEN)
                .position(|&b| b == b'>')
                .map_or(after_name, |p| after_name + p + 1);
            return Some((lt, end));
        }
        i = lt + 1;
    }
    None
}

impl Cleaner<'_> {
    /// At `<`: a comment, a tag we know, or text.
    pub(super) fn angle(&mut self) {
        let rest = &self.src[self.pos..];
        if rest.starts_with(b"<!--") {
            // An unclosed comment hides the rest of the page, as in MediaWiki.
            let end = find_bytes(&rest[4..], b"-->").map_or(rest.len(), |i| i + 7);
            self.steps += end as u64;
            self.pos += end;
            return;
        }
        let Some(tag) = parse(rest) else {
            return self.literal(1);
        };
        self.steps += tag.len as u64;
        self.pos += tag.len;
        match tag.kind {
            TagKind::Inline => {}
            TagKind::Break => self.push_separator(),
            // A stray closing tag, or an empty `<ref name=x/>`.
            TagKind::DropElement(_) | TagKind::Verbatim(_) if tag.closing || tag.self_closing => {}
            TagKind::DropElement(i) => self.element(i, false),
            TagKind::Verbatim(i) => self.element(i, true),
        }
    }

    /// After an extension tag's opening tag: skips to its closing tag, writing the
    /// content out if verbatim. Without a closing tag only the opening tag goes; the
    /// failed search is remembered so no later one rescans the same bytes.
    fn element(&mut self, tag: usize, verbatim: bool) {
        if self.pos >= self.no_close_from[tag] {
            return;
        }
        match find_close(&self.src[self.pos..], EXTENSION_TAGS[tag].0) {
            Some((content_len, end)) => {
                self.steps += end as u64;
                if verbatim {
                    let content = &self.text[self.pos..self.pos + content_len];
                    entities::decode_into(&mut self.out, content);
                }
                self.pos += end;
            }
            None => {
                self.steps += (self.src.len() - self.pos) as u64;
                self.no_close_from[tag] = self.pos;
            }
        }
    }
}

fn find_bytes(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_tags() {
        let t = parse(b"<ref name=\"a\">x").unwrap();
        assert_eq!(t.kind, TagKind::DropElement(0));
        assert_eq!(t.len, 14);
        assert!(!t.closing && !t.self_closing);
        let t = parse(b"<ref name=x />").unwrap();
        assert!(t.self_closing);
        let t = parse(b"</SPAN>").unwrap();
        assert!(t.closing);
        assert_eq!(t.kind, TagKind::Inline);
        assert_eq!(parse(b"<br/>").unwrap().kind, TagKind::Break);
        assert_eq!(parse(b"<NoWiki>").unwrap().kind, TagKind::Verbatim(23));
    }

    #[test]
    fn rejects_non_tags() {
        assert!(parse(b"< 3").is_none());
        assert!(parse(b"<3").is_none());
        assert!(parse(b"<foo>").is_none());
        assert!(parse(b"<span").is_none());
        assert!(parse(b"<span a=1 <b>").is_none());
        assert!(parse(b"<refx>").is_none());
    }

    #[test]
    fn finds_closing_tag_but_not_a_longer_name() {
        let s = b"a</references></REF >b";
        assert_eq!(find_close(s, "ref"), Some((14, 21)));
        assert_eq!(find_close(b"x</ref", "ref"), Some((1, 6)));
        assert_eq!(find_close(b"x</re", "ref"), None);
    }
}
