//! Step 2 of the link pass, at the start of `indexer build --links DIR`: reads the K link
//! tables and works out the [`ArticleSignals`] of this slice's articles.
//!
//! Tables are read one at a time, three times: first the redirects (which of them point
//! at this slice's articles: their aliases), then the redirects again for the ones that
//! point at one of those aliases (a double redirect, which MediaWiki leaves broken until a
//! bot repairs it: followed one more hop, since the reader who typed its title means the
//! same article), then the link targets (a link to an alias counts for its article).
//! The two redirect passes decode only a table's head ([`LinkTable::read_head`]): the
//! targets, most of a table, are decoded once, by the last pass. Memory is this slice's
//! articles and their aliases and anchors, plus one table at a time; every result is a sum or a sorted list, so it does not depend on K or on the
//! order of the tables.

use foldhash::{HashMap, HashSet};
use std::path::Path;

use corpus::Split;
use serde::Serialize;

use super::{ArticleSignals, LinkTable, MAX_ANCHORS};
use crate::error::Result;

/// What the link pass contributed to a build (goes into the build summary).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LinkReport {
    /// Articles of this slice with at least one incoming link.
    pub linked_articles: u64,
    /// Links (counted once per linking article) to this slice's articles.
    pub links_in: u64,
    /// Redirects attached to this slice's articles as aliases (0 with `--no-aliases`).
    pub redirects_attached: u64,
    /// Redirects whose target is neither an article nor another redirect of the dump,
    /// among those this build counts (targets whose hash modulo K is this slice: each
    /// counted by one build).
    pub redirects_unresolved: u64,
}

/// The signals of this slice's articles, by canonical title.
#[derive(Debug, Default)]
pub struct Signals {
    by_title: HashMap<String, ArticleSignals>,
    pub report: LinkReport,
}

impl Signals {
    /// The signals of the article titled `title` (canonical); none if it has none.
    pub fn get(&self, title: &str) -> ArticleSignals {
        self.by_title.get(title).cloned().unwrap_or_default()
    }
}

/// Per own article, while the tables are read.
#[derive(Default)]
struct Gathered {
    redirects: Vec<String>,
    links: u64,
    anchors: HashMap<String, u64>,
}

/// Reads the K tables in `dir` and returns the signals of slice `split`'s articles;
/// `aliases: false` attaches no redirect titles (evaluation holds them out).
pub fn resolve(dir: &Path, split: Split, aliases: bool) -> Result<Signals> {
    let own_table = LinkTable::read_head(dir, split.node, split.nodes)?;
    let mut own: HashMap<String, Gathered> = own_table
        .articles
        .into_iter()
        .map(|title| (title, Gathered::default()))
        .collect();
    let mut report = LinkReport::default();
    let mut alias_of: HashMap<String, String> = HashMap::default();
    let mut counted_targets: Vec<String> = Vec::new();
    // Articles and redirect titles this build counts the unresolved redirects against.
    let mut counted_pages: HashSet<String> = HashSet::default();
    let counts_here = |title: &str| owner_of(title, split.nodes) == split.node;
    for node in 0..split.nodes {
        let table = LinkTable::read_head(dir, node, split.nodes)?;
        counted_pages.extend(table.articles.into_iter().filter(|t| counts_here(t)));
        for redirect in table.redirects {
            if counts_here(&redirect.target) {
                counted_targets.push(redirect.target.clone());
            }
            if counts_here(&redirect.title) {
                counted_pages.insert(redirect.title.clone());
            }
            if own.contains_key(&redirect.target) {
                alias_of.insert(redirect.title, redirect.target);
            }
        }
    }
    report.redirects_unresolved = counted_targets
        .iter()
        .filter(|t| !counted_pages.contains(*t))
        .count() as u64;
    drop((counted_targets, counted_pages));
    // Double redirects, gathered apart so that a third hop is never taken (which hops
    // would be taken would then depend on the order of the tables).
    let mut second_hop: HashMap<String, String> = HashMap::default();
    for node in 0..split.nodes {
        for redirect in LinkTable::read_head(dir, node, split.nodes)?.redirects {
            if let Some(article) = alias_of.get(&redirect.target) {
                second_hop.insert(redirect.title, article.clone());
            }
        }
    }
    second_hop.retain(|title, _| !alias_of.contains_key(title) && !own.contains_key(title));
    alias_of.extend(second_hop);
    if aliases {
        for (alias, article) in &alias_of {
            if let Some(article) = own.get_mut(article) {
                article.redirects.push(alias.clone());
                report.redirects_attached += 1;
            }
        }
    }
    for node in 0..split.nodes {
        let table = LinkTable::read(dir, node, split.nodes)?;
        for target in table.targets {
            let title = alias_of.get(&target.title).unwrap_or(&target.title);
            let Some(article) = own.get_mut(title) else {
                continue;
            };
            article.links += target.links;
            report.links_in += target.links;
            for (anchor, n) in target.anchors {
                *article.anchors.entry(anchor).or_default() += n;
            }
        }
    }
    let by_title = own
        .into_iter()
        .filter(|(_, g)| g.links > 0 || !g.redirects.is_empty())
        .map(|(title, g)| (title, finish(g)))
        .collect::<HashMap<_, _>>();
    report.linked_articles = by_title.values().filter(|s| s.links_in > 0).count() as u64;
    Ok(Signals { by_title, report })
}

/// Sorted aliases; the most frequent anchors first (ties by text, so the choice is the
/// same whatever order the tables came in).
fn finish(g: Gathered) -> ArticleSignals {
    let mut redirects = g.redirects;
    redirects.sort_unstable();
    redirects.dedup();
    let mut anchors: Vec<(String, u64)> = g.anchors.into_iter().collect();
    anchors.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ArticleSignals {
        redirects,
        anchors: anchors
            .into_iter()
            .take(MAX_ANCHORS)
            .map(|(text, _)| text)
            .collect(),
        links_in: g.links,
    }
}

/// The slice that counts the unresolved redirects to `title`: a stable hash (blake3, the
/// same on every machine) modulo the number of slices.
fn owner_of(title: &str, nodes: u32) -> u32 {
    let hash = blake3::hash(title.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    (u64::from_le_bytes(first) % u64::from(nodes.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::super::{LinkTarget, Redirect, TABLE_FORMAT};
    use super::*;

    fn table(node: u32, nodes: u32, articles: &[&str], redirects: &[(&str, &str)]) -> LinkTable {
        LinkTable {
            format: TABLE_FORMAT,
            node,
            nodes,
            articles: articles.iter().map(|s| s.to_string()).collect(),
            redirects: redirects
                .iter()
                .map(|(title, target)| Redirect {
                    title: title.to_string(),
                    target: target.to_string(),
                })
                .collect(),
            targets: Vec::new(),
        }
    }

    fn target(title: &str, links: u64, anchors: &[(&str, u64)]) -> LinkTarget {
        LinkTarget {
            title: title.into(),
            links,
            anchors: anchors.iter().map(|(a, n)| (a.to_string(), *n)).collect(),
        }
    }

    #[test]
    fn aliases_links_through_redirects_and_unresolved_counts() {
        let dir = tempfile::tempdir().unwrap();
        let mut zero = table(
            0,
            2,
            &["Athens"],
            &[("Athina", "Athens"), ("Nowhere", "Gone")],
        );
        zero.targets = vec![target("Sparta", 1, &[("the city", 1)])];
        zero.write(dir.path()).unwrap();
        // A double redirect is followed one hop further, a triple one is not.
        let mut one = table(
            1,
            2,
            &["Sparta"],
            &[
                ("Lakedaimon", "Sparta"),
                ("Athenai", "Athina"),
                ("Old Athenai", "Athenai"),
            ],
        );
        one.targets = vec![
            target("Athina", 2, &[("the capital", 2)]),
            target("Athens", 1, &[("the capital", 1), ("athens", 1)]),
        ];
        one.write(dir.path()).unwrap();
        let zero_signals = resolve(dir.path(), Split::new(0, 2).unwrap(), true).unwrap();
        let athens = zero_signals.get("Athens");
        assert_eq!(athens.redirects, ["Athenai", "Athina"]);
        assert_eq!(
            athens.links_in, 3,
            "links to the alias count for the article"
        );
        assert_eq!(athens.anchors, ["the capital", "athens"]);
        let one_signals = resolve(dir.path(), Split::new(1, 2).unwrap(), false).unwrap();
        assert!(
            one_signals.get("Sparta").redirects.is_empty(),
            "--no-aliases"
        );
        assert_eq!(one_signals.get("Sparta").links_in, 1);
        let unresolved =
            zero_signals.report.redirects_unresolved + one_signals.report.redirects_unresolved;
        assert_eq!(
            unresolved, 1,
            "Nowhere -> Gone, counted by exactly one build (a redirect to a redirect is not)"
        );
        assert_eq!(zero_signals.report.redirects_attached, 2);
    }
}
