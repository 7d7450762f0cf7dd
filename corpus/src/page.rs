//! The raw page as read from a dump, and the dump's `<siteinfo>` (site name, base URL,
//! localized namespace names), which the cleaner and URL builder need.

use std::collections::BTreeMap;

/// One `<page>` of a dump (or one line of a JSON-lines corpus).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Page {
    pub id: u64,
    pub ns: i32,
    pub title: String,
    /// `<redirect title="..."/>` when the page is a redirect.
    pub redirect_target: Option<String>,
    pub revision_id: Option<u64>,
    pub timestamp: Option<String>,
    /// Wikitext of the (last) revision; empty for `<text/>` or deleted text. For
    /// JSON-lines inputs this is the already-plain `body`.
    pub wikitext: String,
    /// JSON-lines inputs carry a URL; dump pages do not.
    pub url: Option<String>,
}

/// What `<siteinfo>` says about the wiki.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SiteInfo {
    pub sitename: String,
    /// `<base>`: URL of the main page, e.g. `https://en.wikipedia.org/wiki/Main_Page`.
    pub base_url: Option<String>,
    /// Language code, from the base URL's host (`el.wikivoyage.org` → `el`) or the dbname.
    pub lang: Option<String>,
    /// Namespace key → localized name (`14` → `Κατηγορία`); ns 0 maps to "".
    pub namespaces: BTreeMap<i32, String>,
}

impl SiteInfo {
    /// Derives `lang` from the base URL host or, failing that, the dbname (`bgwiki`).
    pub(crate) fn derive_lang(base_url: Option<&str>, dbname: Option<&str>) -> Option<String> {
        let from_host = base_url.and_then(|url| {
            let host = url.split("://").nth(1)?.split('/').next()?;
            let first = host.split('.').next()?;
            let is_lang = host.matches('.').count() >= 2
                && !first.is_empty()
                && first.len() <= 12
                && first.chars().all(|c| c.is_ascii_lowercase() || c == '-');
            is_lang.then(|| first.to_string())
        });
        from_host.or_else(|| {
            let db = dbname?;
            [
                "wikivoyage",
                "wiktionary",
                "wikibooks",
                "wikinews",
                "wikiquote",
                "wiki",
            ]
            .iter()
            .find_map(|suffix| db.strip_suffix(suffix))
            .filter(|lang| !lang.is_empty())
            .map(|lang| lang.replace('_', "-"))
        })
    }
}
