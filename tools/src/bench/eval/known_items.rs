//! Known-item queries drawn from a dump itself: each names exactly one right article.
//!
//! - **title**: an article's own title;
//! - **redirect**: a redirect's title (an alternative name), whose right answer is the
//!   article it redirects to (followed through one more redirect, as MediaWiki does);
//! - **anchor**: the text of a piped link `[[Target|text]]` whose right answer is Target,
//!   kept only when the text is not Target's title (that would be the title class again)
//!   and points to one article only over the whole dump (otherwise it has no one answer).
//!
//! Titles are compared as MediaWiki does: `_` is a space, the first letter is
//! case-insensitive, a `#section` is dropped. Each class is capped at a number of queries
//! drawn deterministically (by a hash of the query text), so runs compare.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::Context as _;
use corpus::{OpenOptions, PageEvent, PageKind};

/// A query and the page id of its one right answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownItem {
    pub query: String,
    pub target: u64,
}

/// The classes of known-item queries of one dump.
#[derive(Clone, Debug, Default)]
pub struct KnownItems {
    pub titles: Vec<KnownItem>,
    pub redirects: Vec<KnownItem>,
    pub anchors: Vec<KnownItem>,
    /// Articles in the dump (what an index of it holds).
    pub articles: usize,
}

/// Longest anchor text kept, in characters (longer ones are sentences, not names).
const MAX_ANCHOR_CHARS: usize = 80;

/// Reads the whole dump and draws at most `per_class` queries of each class.
pub fn draw(dump: &Path, per_class: usize) -> anyhow::Result<KnownItems> {
    let reader = corpus::open(dump, &OpenOptions::default())
        .with_context(|| format!("open {}", dump.display()))?;
    let mut articles: Vec<(u64, String, String)> = Vec::new();
    let mut redirects: Vec<(String, String)> = Vec::new();
    for event in reader {
        let PageEvent::Page(page) = event.with_context(|| format!("read {}", dump.display()))?
        else {
            continue;
        };
        match corpus::classify(&page) {
            PageKind::Article => articles.push((page.id, page.title, page.wikitext)),
            PageKind::Redirect if page.ns == 0 => {
                let target = page.redirect_target.unwrap_or_default();
                redirects.push((page.title, target));
            }
            _ => {}
        }
    }
    let titles: HashMap<String, u64> = articles
        .iter()
        .map(|(id, title, _)| (normalize_title(title), *id))
        .collect();
    let redirect_to: HashMap<String, String> = redirects
        .iter()
        .map(|(from, to)| (normalize_title(from), normalize_title(to)))
        .collect();
    let resolve = |title: &str| -> Option<u64> {
        let key = normalize_title(title);
        let key = redirect_to.get(&key).unwrap_or(&key);
        titles
            .get(key)
            .or_else(|| titles.get(redirect_to.get(key)?))
            .copied()
    };
    let title_items = articles
        .iter()
        .map(|(id, title, _)| KnownItem {
            query: title.clone(),
            target: *id,
        })
        .collect();
    let redirect_items = redirects
        .iter()
        .filter_map(|(from, _)| {
            let target = resolve(from)?;
            Some(KnownItem {
                query: from.clone(),
                target,
            })
        })
        .collect();
    let anchor_items = anchor_items(&articles, &resolve);
    Ok(KnownItems {
        titles: sample(title_items, per_class),
        redirects: sample(redirect_items, per_class),
        anchors: sample(anchor_items, per_class),
        articles: articles.len(),
    })
}

/// Piped links' texts whose target resolves, and that name one article over the dump.
fn anchor_items(
    articles: &[(u64, String, String)],
    resolve: &impl Fn(&str) -> Option<u64>,
) -> Vec<KnownItem> {
    let title_of: HashMap<u64, String> = articles
        .iter()
        .map(|(id, title, _)| (*id, normalize_text(title)))
        .collect();
    // Normalized text → (text as written first, every target it points to).
    let mut seen: BTreeMap<String, (String, Vec<u64>)> = BTreeMap::new();
    for (_, _, wikitext) in articles {
        for (target, text) in piped_links(wikitext) {
            let Some(id) = resolve(&target) else { continue };
            let key = normalize_text(&text);
            if key.is_empty() || title_of.get(&id) == Some(&key) {
                continue;
            }
            let entry = seen
                .entry(key)
                .or_insert_with(|| (text.clone(), Vec::new()));
            if !entry.1.contains(&id) {
                entry.1.push(id);
            }
        }
    }
    seen.into_values()
        .filter(|(_, targets)| targets.len() == 1)
        .map(|(text, targets)| KnownItem {
            query: text,
            target: targets[0],
        })
        .collect()
}

/// `[[Target|text]]` pairs of a wikitext whose text is plain words (no nested markup).
pub fn piped_links(wikitext: &str) -> Vec<(String, String)> {
    let mut links = Vec::new();
    let mut rest = wikitext;
    while let Some(start) = rest.find("[[") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find("]]") else { break };
        let inner = &rest[..end];
        if let Some((target, text)) = inner.split_once('|') {
            let text = text.replace("'''", "").replace("''", "");
            let text = text.trim();
            let plain = !text.is_empty()
                && text.chars().count() <= MAX_ANCHOR_CHARS
                && !text.contains(['[', '{', '<', '|', '\n'])
                && !target.contains(['[', '{', '\n']);
            if plain {
                links.push((target.trim().to_string(), text.to_string()));
            }
        }
        rest = &rest[end..];
    }
    links
}

/// A title as MediaWiki compares them: `_` is a space, spaces collapse, the `#section`
/// is dropped, the first letter is upper-case.
pub fn normalize_title(title: &str) -> String {
    let title = title.split('#').next().unwrap_or("");
    let spaced = title.replace('_', " ");
    let collapsed = spaced.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut chars = collapsed.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Text compared for sameness: lower-case words.
fn normalize_text(text: &str) -> String {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// At most `count` items, chosen by a hash of their query: the same for every run.
fn sample(mut items: Vec<KnownItem>, count: usize) -> Vec<KnownItem> {
    items.sort_by_cached_key(|item| *blake3::hash(item.query.as_bytes()).as_bytes());
    items.truncate(count);
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piped_links_are_read_and_markup_is_skipped() {
        let text = "See [[Foo bar|the foo]] and [[Baz]] or [[Qux|'''bold''' name]], \
                    [[File:x.png|thumb|a [[nested]] caption]] [[A|{{tpl}}]]";
        assert_eq!(
            piped_links(text),
            vec![
                ("Foo bar".to_string(), "the foo".to_string()),
                ("Qux".to_string(), "bold name".to_string()),
            ]
        );
    }

    #[test]
    fn titles_normalize_as_mediawiki_compares_them() {
        assert_eq!(normalize_title("foo_bar#History"), "Foo bar");
        assert_eq!(normalize_title("  αθήνα  "), "Αθήνα");
        assert_eq!(normalize_text("The Foo-Bar!"), "the foo bar");
    }

    #[test]
    fn the_english_sample_gives_every_class() {
        let dump = crate::test_support::sample_dump();
        let items = draw(&dump, 10_000).unwrap();
        assert_eq!(items.articles, 106);
        assert_eq!(items.titles.len(), 106);
        // Most of the sample's 100 redirects point past its first 206 pages.
        assert!(items.redirects.len() > 5, "{}", items.redirects.len());
        assert!(items.anchors.len() > 10, "{}", items.anchors.len());
        let capped = draw(&dump, 7).unwrap();
        assert_eq!(capped.titles.len(), 7);
        assert_eq!(capped.titles, draw(&dump, 7).unwrap().titles);
    }
}
