//! From page to indexable document: classification (article / redirect / other
//! namespace), wikitext cleaning via [`crate::wikitext::clean`], and the article URL.

use crate::page::{Page, SiteInfo};
use crate::wikitext::{clean, CleanOptions};

/// What a page is, for counting and for deciding what to index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PageKind {
    /// ns 0 and not a redirect: the pages a search engine indexes.
    Article,
    /// Any page with `<redirect>` (or `#REDIRECT` wikitext), whatever its namespace.
    Redirect,
    /// Not ns 0 and not a redirect (talk, templates, categories, ...).
    OtherNamespace,
}

/// Classifies on `<ns>` and `<redirect>`, never on the title: titles with colons in ns 0
/// are articles.
pub fn classify(page: &Page) -> PageKind {
    if page.redirect_target.is_some() {
        PageKind::Redirect
    } else if page.ns == 0 {
        PageKind::Article
    } else {
        PageKind::OtherNamespace
    }
}

/// A clean document, ready for the indexer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Document {
    pub id: u64,
    pub title: String,
    pub url: String,
    pub body: String,
    pub categories: Vec<String>,
    /// Bytes of `body` in the lead section (before the first heading); a char boundary.
    pub lead_len: usize,
}

/// Cleans the wikitext into an indexable document. JSON-lines pages (which carry a URL)
/// already hold plain text: their body is taken as is.
pub fn to_document(page: &Page, site: &SiteInfo) -> Document {
    let url = match page.url.as_deref() {
        Some(url) if !url.is_empty() => url.to_string(),
        _ => article_url(site, &page.title),
    };
    if page.url.is_some() {
        // Plain-text corpora mark sections only by blank lines: the first paragraph leads.
        let lead_len = page.wikitext.find("\n\n").unwrap_or(page.wikitext.len());
        return Document {
            id: page.id,
            title: page.title.clone(),
            url,
            body: page.wikitext.clone(),
            categories: Vec::new(),
            lead_len,
        };
    }
    let cleaned = clean(&page.wikitext, &CleanOptions::for_site(site));
    Document {
        id: page.id,
        title: page.title.clone(),
        url,
        body: cleaned.body,
        categories: cleaned.categories,
        lead_len: cleaned.lead_len,
    }
}

/// A page title as MediaWiki stores it, from a link target or a title: no `#section`,
/// `_` read as a space, runs of whitespace as one space, trimmed, first letter upper case
/// (`$wgCapitalLinks`, on for every Wikipedia and Wikivoyage). `None` when nothing is left
/// (`[[#Section]]` links to the page itself).
pub fn canonical_title(raw: &str) -> Option<String> {
    let raw = raw.split('#').next().unwrap_or("");
    let mut out = String::with_capacity(raw.len());
    for word in raw
        .split(|c: char| c == '_' || c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    let first = out.chars().next()?;
    if first.is_ascii() {
        // In place: no second allocation for the common case (the link pass calls this
        // for every link of the dump).
        out[..1].make_ascii_uppercase();
        return Some(out);
    }
    let rest = &out[first.len_utf8()..];
    Some(first.to_uppercase().chain(rest.chars()).collect())
}

/// `https://en.wikipedia.org/wiki/Title_With_Underscores`, percent-encoded the way
/// MediaWiki does (`wfUrlencode`: spaces become `_`; `;:@$!*(),/~` stay literal).
pub fn article_url(site: &SiteInfo, title: &str) -> String {
    let prefix = site_prefix(site);
    let mut url = String::with_capacity(prefix.len() + title.len() + 8);
    url.push_str(&prefix);
    for byte in title.trim().bytes() {
        match byte {
            b' ' => url.push('_'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => url.push(byte as char),
            b'-' | b'_' | b'.' | b'~' | b';' | b':' | b'@' | b'$' | b'!' | b'*' | b'(' | b')'
            | b',' | b'/' => url.push(byte as char),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                url.push('%');
                url.push(HEX[(byte >> 4) as usize] as char);
                url.push(HEX[(byte & 15) as usize] as char);
            }
        }
    }
    url
}

/// `https://host/wiki/` from `<base>`; falls back to the language's Wikipedia.
fn site_prefix(site: &SiteInfo) -> String {
    if let Some(base) = site.base_url.as_deref() {
        if let Some(at) = base.find("/wiki/") {
            return base[..at + "/wiki/".len()].to_string();
        }
        if let Some(scheme_end) = base.find("://") {
            let host_end = base[scheme_end + 3..]
                .find('/')
                .map_or(base.len(), |i| scheme_end + 3 + i);
            return format!("{}/wiki/", &base[..host_end]);
        }
    }
    format!(
        "https://{}.wikipedia.org/wiki/",
        site.lang.as_deref().unwrap_or("en")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_is_percent_encoded_with_underscores() {
        let site = SiteInfo {
            base_url: Some("https://en.wikipedia.org/wiki/Main_Page".into()),
            ..SiteInfo::default()
        };
        assert_eq!(
            article_url(&site, "AC/DC: Back in Black (album) é"),
            "https://en.wikipedia.org/wiki/AC/DC:_Back_in_Black_(album)_%C3%A9"
        );
    }

    #[test]
    fn canonical_titles_match_mediawiki_normalization() {
        assert_eq!(
            canonical_title("united_States#History").as_deref(),
            Some("United States")
        );
        assert_eq!(canonical_title("  Foo   bar ").as_deref(), Some("Foo bar"));
        assert_eq!(canonical_title("ελλάδα").as_deref(), Some("Ελλάδα"));
        assert_eq!(canonical_title("#Section"), None);
        assert_eq!(canonical_title(" _ "), None);
    }

    #[test]
    fn classify_uses_ns_and_redirect_not_title() {
        let mut page = Page {
            ns: 0,
            title: "Star Wars: Episode IV".into(),
            ..Page::default()
        };
        assert_eq!(classify(&page), PageKind::Article);
        page.ns = 4;
        assert_eq!(classify(&page), PageKind::OtherNamespace);
        page.redirect_target = Some("X".into());
        assert_eq!(classify(&page), PageKind::Redirect);
    }
}
