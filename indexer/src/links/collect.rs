//! `indexer links`: step 1 of the link pass. Reads one slice of the input, cleans its
//! articles with link collection on, and writes the slice's [`LinkTable`].
//!
//! One reader thread drives the corpus reader (which decompresses on its own threads) and
//! sends batches of pages through a bounded channel; a rayon pool cleans them, each
//! thread folding its pages into its own partial table, merged at the end. Memory is the
//! slice's distinct link targets and anchor texts.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Instant;

use corpus::wikitext::{clean, CleanOptions};
use corpus::{canonical_title, classify, OpenOptions, Page, PageEvent, PageKind, Split};
use crossbeam_channel::bounded;
use rayon::iter::{ParallelBridge, ParallelIterator};
use serde::Serialize;
use shard_proto::title_key;

use super::{LinkTable, LinkTarget, Redirect, MAX_ANCHOR_BYTES, TABLE_FORMAT};
use crate::error::{Error, Result};
use crate::slice_args::SliceArgs;

/// Pages per batch sent to the cleaners.
const BATCH_PAGES: usize = 64;

/// Flags of `indexer links`.
#[derive(Debug, Clone, clap::Args)]
pub struct LinksArgs {
    /// Input dump, as for `indexer build`.
    #[arg(long)]
    pub input: PathBuf,
    /// Directory the K link tables are exchanged through (give the same one to every
    /// `indexer build --links`).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub slice: SliceArgs,
    /// Worker threads; 0 = one per core.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Print one JSON summary object on stdout at the end.
    #[arg(long)]
    pub json: bool,
}

/// What `indexer links` did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CollectSummary {
    pub table: String,
    pub node: u32,
    pub nodes: u32,
    pub articles: u64,
    pub redirects: u64,
    pub link_targets: u64,
    pub links: u64,
    pub seconds: f64,
}

/// `indexer links` from the command line.
pub fn run(args: &LinksArgs) -> anyhow::Result<()> {
    let open = args.slice.open_options(threads(args.threads))?;
    let split = open.split;
    let start = Instant::now();
    let table = collect(&args.input, &open)?;
    let path = table.write(&args.out)?;
    let summary = CollectSummary {
        table: path.display().to_string(),
        node: split.node,
        nodes: split.nodes,
        articles: table.articles.len() as u64,
        redirects: table.redirects.len() as u64,
        link_targets: table.targets.len() as u64,
        links: table.targets.iter().map(|t| t.links).sum(),
        seconds: start.elapsed().as_secs_f64(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!(
            "link table {}: {} articles, {} redirects, {} links to {} titles in {:.1} s",
            summary.table,
            summary.articles,
            summary.redirects,
            summary.links,
            summary.link_targets,
            summary.seconds
        );
    }
    Ok(())
}

fn threads(n: usize) -> usize {
    match n {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    }
}

/// A slice's table while it is being gathered.
#[derive(Default)]
struct Partial {
    articles: Vec<String>,
    redirects: Vec<Redirect>,
    /// Target title -> (linking articles, anchor text -> linking articles).
    targets: HashMap<String, (u64, HashMap<String, u64>)>,
}

impl Partial {
    fn add_page(&mut self, page: &Page, opts: &CleanOptions) {
        match classify(page) {
            PageKind::Article => self.add_article(page, opts),
            PageKind::Redirect if page.ns == 0 => {
                let title = canonical_title(&page.title);
                let target = page.redirect_target.as_deref().and_then(canonical_title);
                if let (Some(title), Some(target)) = (title, target) {
                    self.redirects.push(Redirect { title, target });
                }
            }
            PageKind::Redirect | PageKind::OtherNamespace => {}
        }
    }

    /// Counts each target once per article, and each anchor text once per article.
    fn add_article(&mut self, page: &Page, opts: &CleanOptions) {
        let Some(title) = canonical_title(&page.title) else {
            return;
        };
        let cleaned = clean(&page.wikitext, opts);
        let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for link in cleaned.links {
            let Some(target) = canonical_title(&link.target) else {
                continue;
            };
            if target == title {
                continue;
            }
            let anchors = seen.entry(target).or_default();
            if let Some(anchor) = link.anchor.filter(|a| useful_anchor(a)) {
                anchors.insert(anchor);
            }
        }
        for (target, anchors) in seen {
            let entry = self.targets.entry(target).or_default();
            entry.0 += 1;
            for anchor in anchors {
                *entry.1.entry(anchor).or_default() += 1;
            }
        }
        self.articles.push(title);
    }

    fn merge(mut self, other: Partial) -> Partial {
        self.articles.extend(other.articles);
        self.redirects.extend(other.redirects);
        for (target, (links, anchors)) in other.targets {
            let entry = self.targets.entry(target).or_default();
            entry.0 += links;
            for (anchor, n) in anchors {
                *entry.1.entry(anchor).or_default() += n;
            }
        }
        self
    }

    fn into_table(self, split: Split) -> LinkTable {
        let mut articles = self.articles;
        articles.sort_unstable();
        let mut redirects = self.redirects;
        redirects.sort_unstable_by(|a, b| (&a.title, &a.target).cmp(&(&b.title, &b.target)));
        let mut targets: Vec<LinkTarget> = self
            .targets
            .into_iter()
            .map(|(title, (links, anchors))| {
                let mut anchors: Vec<(String, u64)> = anchors.into_iter().collect();
                anchors.sort_unstable();
                LinkTarget {
                    title,
                    links,
                    anchors,
                }
            })
            .collect();
        targets.sort_unstable_by(|a, b| a.title.cmp(&b.title));
        LinkTable {
            format: TABLE_FORMAT,
            node: split.node,
            nodes: split.nodes,
            articles,
            redirects,
            targets,
        }
    }
}

/// An anchor worth indexing: has words, is not a sentence.
fn useful_anchor(anchor: &str) -> bool {
    anchor.len() <= MAX_ANCHOR_BYTES && !title_key(anchor).is_empty()
}

/// Reads the slice of `input` that `open` selects and gathers its link table.
pub fn collect(input: &std::path::Path, open: &OpenOptions) -> Result<LinkTable> {
    let reader = corpus::open(input, open)?;
    let mut opts = CleanOptions::for_site(reader.siteinfo());
    opts.collect_links = true;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(open.threads.max(1))
        .thread_name(|i| format!("links-{i}"))
        .build()
        .map_err(|e| Error::Config(format!("cannot start the link threads: {e}")))?;
    let (tx, rx) = bounded::<Vec<Page>>(open.threads.max(2));
    let (read, partial) = std::thread::scope(|scope| {
        let read = scope.spawn(move || -> Result<u64> {
            let mut pages = 0u64;
            let mut batch = Vec::with_capacity(BATCH_PAGES);
            for event in reader {
                let event = event.map_err(|error| Error::Read { pages, error })?;
                pages += 1;
                if let PageEvent::Page(page) = event {
                    batch.push(page);
                    if batch.len() >= BATCH_PAGES && tx.send(std::mem::take(&mut batch)).is_err() {
                        return Ok(pages);
                    }
                }
            }
            let _ = tx.send(batch);
            Ok(pages)
        });
        let partial = pool.install(|| {
            rx.into_iter()
                .par_bridge()
                .fold(Partial::default, |mut acc, batch| {
                    for page in &batch {
                        acc.add_page(page, &opts);
                    }
                    acc
                })
                .reduce(Partial::default, Partial::merge)
        });
        (read.join(), partial)
    });
    let pages = read.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
    tracing::info!("link pass read {pages} pages of slice {:?}", open.split);
    Ok(partial.into_table(open.split))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(id: u64, title: &str, text: &str, redirect: Option<&str>) -> Page {
        Page {
            id,
            ns: 0,
            title: title.into(),
            redirect_target: redirect.map(str::to_string),
            wikitext: text.into(),
            ..Page::default()
        }
    }

    #[test]
    fn articles_links_anchors_and_redirects_are_gathered() {
        let opts = CleanOptions {
            collect_links: true,
            ..CleanOptions::default()
        };
        let mut partial = Partial::default();
        let pages = [
            page(
                1,
                "Greece",
                "[[athens]] and [[Athens|the capital]], [[Athens#History|the capital]], \
                 [[Greece]], [[Category:Countries]]",
                None,
            ),
            page(
                2,
                "Sparta",
                "near [[Athens|the capital]] and [[Hellas]]",
                None,
            ),
            page(3, "Hellas", "#REDIRECT [[Greece]]", Some("Greece")),
        ];
        for p in &pages {
            partial.add_page(p, &opts);
        }
        let table = partial.into_table(Split::new(0, 1).unwrap());
        assert_eq!(table.articles, ["Greece", "Sparta"]);
        assert_eq!(
            table.redirects,
            [Redirect {
                title: "Hellas".into(),
                target: "Greece".into()
            }]
        );
        let athens = &table.targets[0];
        assert_eq!(athens.title, "Athens");
        assert_eq!(athens.links, 2, "one per linking article");
        assert_eq!(athens.anchors, [("the capital".to_string(), 2)]);
        assert_eq!(table.targets[1].title, "Hellas");
        assert_eq!(
            table.targets.len(),
            2,
            "no self link, no category: {table:?}"
        );
    }
}
