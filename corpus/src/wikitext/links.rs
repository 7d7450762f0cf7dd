//! Links: `[[target]]`, `[[target|anchor]]` with its link trail, categories, File/Image
//! links with captions, language links, and external `[url label]` links.

use super::{entities, same_prefix, Cleaner, Kind, MAX_TARGET, MAX_URL};

/// Bytes that cannot occur in a link target. `[` among them makes target scans from
/// successive `[[` disjoint, hence linear.
static TARGET_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    let bytes = b"[]{}|<>\n";
    while i < bytes.len() {
        t[bytes[i] as usize] = true;
        i += 1;
    }
    t
};

/// Schemes MediaWiki turns `[scheme... label]` into an external link for.
const URL_SCHEMES: &[&str] = &[
    "http://",
    "https://",
    "//",
    "ftp://",
    "ftps://",
    "sftp://",
    "mailto:",
    "news:",
    "irc://",
    "ircs://",
    "git://",
    "svn://",
    "gopher://",
    "telnet://",
    "ssh://",
    "nntp://",
    "mms://",
    "urn:",
    "geo:",
    "tel:",
    "sip:",
    "sips:",
    "sms:",
    "xmpp:",
    "magnet:",
    "worldwind://",
];

/// What a link is, from its target.
enum Target<'a> {
    /// An ordinary link; the target text as displayed.
    Normal(&'a str),
    /// `[[Category:Name]]`: the name.
    Category(&'a str),
    /// `[[File:...]]`: an image, dropped with its caption.
    File,
    /// `[[de:Foo]]`: a link to the article in another language.
    Language,
}

impl Cleaner<'_> {
    /// At `[`: an internal link (`[[`), an external link (`[http...`), or text.
    pub(super) fn open_bracket(&mut self) {
        if self.src[self.pos..].starts_with(b"[[") {
            self.internal_link();
        } else {
            self.external_link();
        }
    }

    /// At `]`: closes an external link label, an internal link, or is text.
    pub(super) fn close_bracket(&mut self) {
        if self.stack.last().is_some_and(|f| f.kind == Kind::ExtLink) {
            self.pop_unclosed();
            self.pos += 1;
        } else if self.brackets > 0 && self.src[self.pos..].starts_with(b"]]") {
            self.close_until(|k| matches!(k, Kind::Link | Kind::DropLink));
            self.pos += 2;
        } else {
            self.literal(1);
        }
    }

    fn internal_link(&mut self) {
        let start = self.pos + 2;
        if self.src.get(start) == Some(&b'[') {
            // `[[[x]]]`: the first `[` is text, `[[x]]` the link.
            return self.literal(1);
        }
        let rest = &self.src[start..];
        let scanned = rest
            .iter()
            .take(MAX_TARGET + 1)
            .position(|&b| TARGET_STOP[b as usize]);
        self.steps += scanned.unwrap_or(rest.len().min(MAX_TARGET)) as u64 + 1;
        let Some(len) = scanned else {
            return self.literal(2);
        };
        let end = start + len;
        let piped = rest[len] == b'|';
        let closed = rest[len..].starts_with(b"]]");
        let target = self.text[start..end].trim();
        if !(piped || closed) || target.is_empty() {
            return self.literal(2);
        }
        self.pos = if closed { end + 2 } else { end + 1 };
        match (self.classify(target), piped) {
            (Target::Normal(shown), false) => {
                self.record_link(shown);
                entities::decode_into(&mut self.out, shown);
            }
            (Target::Normal(shown), true) => {
                self.record_link(shown);
                if self.src[self.pos..].starts_with(b"]]") {
                    // Pipe trick `[[a|]]`: shows the target.
                    entities::decode_into(&mut self.out, shown);
                    self.pos += 2;
                } else {
                    self.push_frame(Kind::Link, 0);
                    self.attach_anchor();
                }
            }
            (Target::Category(name), piped) => {
                self.add_category(name);
                if piped {
                    self.push_frame(Kind::DropLink, 0);
                }
            }
            (Target::File, true) => self.push_frame(Kind::DropLink, 0),
            // An interwiki link with a label shows the label.
            (Target::Language, true) => self.push_frame(Kind::Link, 0),
            (Target::File | Target::Language, false) => {}
        }
    }

    /// Lists a link to `target` (with `CleanOptions::collect_links`).
    fn record_link(&mut self, target: &str) {
        if self.opts.collect_links {
            self.links.push(super::WikiLink {
                target: target.to_string(),
                anchor: None,
            });
        }
    }

    /// Makes the Link frame just opened collect its text as the last link's anchor.
    fn attach_anchor(&mut self) {
        let n = self.links.len();
        match self.stack.last_mut() {
            Some(frame) if self.opts.collect_links && frame.kind == Kind::Link => {
                frame.link = u32::try_from(n).unwrap_or(0);
            }
            _ => {}
        }
    }

    fn classify<'t>(&self, target: &'t str) -> Target<'t> {
        if let Some(shown) = target.strip_prefix(':') {
            // `[[:Category:X]]` is a visible link to the category page.
            return Target::Normal(shown.trim_start());
        }
        let Some((prefix, rest)) = target.split_once(':') else {
            return Target::Normal(target);
        };
        let prefix = prefix.trim();
        let is = |list: &[String]| list.iter().any(|p| same_prefix(p, prefix));
        if is(&self.opts.category_prefixes) {
            Target::Category(rest.trim())
        } else if is(&self.opts.file_prefixes) {
            Target::File
        } else if is_language_code(prefix) {
            Target::Language
        } else {
            Target::Normal(target)
        }
    }

    fn add_category(&mut self, name: &str) {
        if name.is_empty() {
            return;
        }
        let mut decoded = String::with_capacity(name.len());
        entities::decode_into(&mut decoded, name);
        self.categories.push(decoded.replace('_', " "));
    }

    /// `[url label]` keeps the label, `[url]` is dropped; anything else is text.
    fn external_link(&mut self) {
        let rest = &self.src[self.pos + 1..];
        let has_scheme = URL_SCHEMES
            .iter()
            .any(|s| rest.len() >= s.len() && rest[..s.len()].eq_ignore_ascii_case(s.as_bytes()));
        if !has_scheme {
            return self.literal(1);
        }
        let scanned = rest
            .iter()
            .take(MAX_URL + 1)
            .position(|&b| matches!(b, b' ' | b'\t' | b'\n' | b'[' | b']' | b'<' | b'"'));
        self.steps += scanned.unwrap_or(rest.len().min(MAX_URL)) as u64 + 1;
        match scanned.map(|n| (n, rest[n])) {
            Some((n, b']')) => self.pos += n + 2,
            Some((n, b' ' | b'\t')) => {
                self.pos += n + 2;
                self.push_frame(Kind::ExtLink, 0);
            }
            _ => self.literal(1),
        }
    }
}

/// `de`, `fr`, `zh-min-nan`, `be-x-old`, `simple`: prefixes of interlanguage links.
fn is_language_code(prefix: &str) -> bool {
    if prefix == "simple" {
        return true;
    }
    let mut parts = prefix.split('-');
    let lower = |p: &str, min, max| {
        (min..=max).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_lowercase())
    };
    parts.next().is_some_and(|p| lower(p, 2, 3)) && parts.all(|p| lower(p, 1, 8))
}
