//! `indexer links`: step 1 of the link pass. Reads one slice of the input, cleans its
//! articles with link collection on, and writes the slice's [`LinkTable`].
//!
//! One reader thread drives the corpus reader (which decompresses on its own threads) and
//! sends batches of pages through a bounded channel; worker threads clean them, each
//! folding its pages into its own partial table, which it sorts; the sorted parts are
//! merged in one linear pass at the end. Memory is the
//! slice's distinct link targets and anchor texts.
//!
//! With `--spool DIR` the reader thread also writes every page event it reads to a page
//! spool (`corpus::PageSpoolWriter`) that `indexer build --spool DIR` on the same machine
//! reads instead of the dump: the slice is decompressed and parsed once for both passes.

use std::cmp::Ordering;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::time::Instant;

use corpus::wikitext::{clean, CleanOptions};
use corpus::{
    canonical_title, classify, OpenOptions, Page, PageEvent, PageKind, PageSpoolWriter, Split,
    SpoolSource,
};
use crossbeam_channel::bounded;
use foldhash::HashMap;
use hashbrown::hash_table::{Entry, HashTable};
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
    /// Also keep the slice's pages in this local directory, for `indexer build --spool`
    /// on this machine to read instead of decompressing the dump again (as much disk as
    /// the slice's uncompressed XML; delete it after the builds).
    #[arg(long)]
    pub spool: Option<PathBuf>,
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
    let table = collect(&args.input, &open, args.spool.as_deref())?;
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

/// A slice's table while one worker thread gathers it.
#[derive(Default)]
struct Partial {
    articles: Vec<String>,
    redirects: Vec<Redirect>,
    /// Link targets in the order first seen.
    targets: Vec<Gathered>,
    /// Positions in `targets` by title, each beside its title's hash: growing the index
    /// moves 16-byte slots and rehashes from the stored hashes without reading a title
    /// again (a map holding whole entries spent a tenth of the pass's own CPU growing).
    index: HashTable<(u64, usize)>,
    /// foldhash, seeded per process, so a dump cannot be crafted to collide; several
    /// times faster than std's SipHash on these short titles (hashing was a fifth of the
    /// pass's CPU with SipHash).
    hasher: foldhash::fast::RandomState,
}

/// What one worker has seen linking to one title.
struct Gathered {
    title: String,
    /// Linking articles.
    links: u64,
    /// Anchor text -> linking articles.
    anchors: HashMap<String, u64>,
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
        // (target, anchor) pairs, each once: sorted, a target's pairs are adjacent.
        let mut seen: Vec<(String, Option<String>)> = cleaned
            .links
            .into_iter()
            .filter_map(|link| {
                let target = canonical_title(&link.target).filter(|t| *t != title)?;
                Some((target, link.anchor.filter(|a| useful_anchor(a))))
            })
            .collect();
        seen.sort_unstable();
        seen.dedup();
        for links in seen.chunk_by_mut(|a, b| a.0 == b.0) {
            let target = self.target(std::mem::take(&mut links[0].0));
            target.links += 1;
            for anchor in links.iter_mut().filter_map(|(_, anchor)| anchor.take()) {
                *target.anchors.entry(anchor).or_default() += 1;
            }
        }
        self.articles.push(title);
    }

    /// The entry of `title`, added if new.
    fn target(&mut self, title: String) -> &mut Gathered {
        let hash = self.hasher.hash_one(title.as_str());
        let targets = &mut self.targets;
        let at = match self.index.entry(
            hash,
            |&(h, at)| h == hash && targets[at].title == title,
            |&(h, _)| h,
        ) {
            Entry::Occupied(slot) => slot.get().1,
            Entry::Vacant(slot) => {
                targets.push(Gathered {
                    title,
                    links: 0,
                    anchors: HashMap::default(),
                });
                slot.insert((hash, targets.len() - 1));
                targets.len() - 1
            }
        };
        &mut targets[at]
    }

    /// The worker's part, its targets and their anchors sorted (done by each worker, so
    /// the parts merge in one linear pass instead of rehashing one into the other).
    fn into_sorted(self) -> Sorted {
        let mut targets: Vec<LinkTarget> = self
            .targets
            .into_iter()
            .map(|gathered| {
                let mut anchors: Vec<(String, u64)> = gathered.anchors.into_iter().collect();
                anchors.sort_unstable();
                LinkTarget {
                    title: gathered.title,
                    links: gathered.links,
                    anchors,
                }
            })
            .collect();
        targets.sort_unstable_by(|a, b| a.title.cmp(&b.title));
        Sorted {
            articles: self.articles,
            redirects: self.redirects,
            targets,
        }
    }

    #[cfg(test)]
    fn into_table(self, split: Split) -> LinkTable {
        self.into_sorted().into_table(split)
    }
}

/// Workers' parts with their targets sorted by title; articles and redirects are
/// sorted once, in the table.
#[derive(Default)]
struct Sorted {
    articles: Vec<String>,
    redirects: Vec<Redirect>,
    targets: Vec<LinkTarget>,
}

impl Sorted {
    fn merge(mut self, other: Sorted) -> Sorted {
        self.articles.extend(other.articles);
        self.redirects.extend(other.redirects);
        self.targets = merge_sorted(
            self.targets,
            other.targets,
            |a, b| a.title.cmp(&b.title),
            |mut a, b| {
                a.links += b.links;
                a.anchors = merge_sorted(
                    a.anchors,
                    b.anchors,
                    |x, y| x.0.cmp(&y.0),
                    |(text, n), (_, m)| (text, n + m),
                );
                a
            },
        );
        self
    }

    fn into_table(self, split: Split) -> LinkTable {
        let mut articles = self.articles;
        articles.sort_unstable();
        let mut redirects = self.redirects;
        redirects.sort_unstable_by(|a, b| (&a.title, &a.target).cmp(&(&b.title, &b.target)));
        LinkTable {
            format: TABLE_FORMAT,
            node: split.node,
            nodes: split.nodes,
            articles,
            redirects,
            targets: self.targets,
        }
    }
}

/// The union of two lists sorted by `order` with no two equal items each, sorted,
/// equal items of the two made one by `combine`.
fn merge_sorted<T>(
    a: Vec<T>,
    b: Vec<T>,
    order: impl Fn(&T, &T) -> Ordering,
    combine: impl Fn(T, T) -> T,
) -> Vec<T> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter(), b.into_iter());
    let (mut x, mut y) = (a.next(), b.next());
    loop {
        match (x.take(), y.take()) {
            (Some(p), Some(q)) => match order(&p, &q) {
                Ordering::Less => {
                    out.push(p);
                    (x, y) = (a.next(), Some(q));
                }
                Ordering::Greater => {
                    out.push(q);
                    (x, y) = (Some(p), b.next());
                }
                Ordering::Equal => {
                    out.push(combine(p, q));
                    (x, y) = (a.next(), b.next());
                }
            },
            (Some(rest), None) => {
                out.push(rest);
                out.extend(a);
                break;
            }
            (None, Some(rest)) => {
                out.push(rest);
                out.extend(b);
                break;
            }
            (None, None) => break,
        }
    }
    out
}

/// An anchor worth indexing: has words, is not a sentence.
fn useful_anchor(anchor: &str) -> bool {
    anchor.len() <= MAX_ANCHOR_BYTES && !title_key(anchor).is_empty()
}

/// The page spool of `split` in the directory `dir` (see `--spool`).
pub fn page_spool_path(dir: &Path, split: Split) -> PathBuf {
    dir.join(format!("pages-n{}of{}.spool", split.node, split.nodes))
}

/// Reads the slice of `input` that `open` selects and gathers its link table; with
/// `spool`, also keeps the slice's pages there ([`page_spool_path`]).
pub fn collect(input: &Path, open: &OpenOptions, spool: Option<&Path>) -> Result<LinkTable> {
    let reader = corpus::open(input, open)?;
    let mut spool = match spool {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            let source = SpoolSource::new(input, open.split)?;
            let path = page_spool_path(dir, open.split);
            Some(PageSpoolWriter::create(&path, source, &reader)?)
        }
        None => None,
    };
    let mut opts = CleanOptions::for_site(reader.siteinfo());
    opts.collect_links = true;
    let workers = open.threads.max(1);
    let (tx, rx) = bounded::<Vec<Page>>(workers.max(2));
    let (read, partial) = std::thread::scope(|scope| {
        let read = scope.spawn(move || -> Result<u64> {
            let mut pages = 0u64;
            let mut batch = Vec::with_capacity(BATCH_PAGES);
            for event in reader {
                let event = event.map_err(|error| Error::Read { pages, error })?;
                pages += 1;
                if let Some(spool) = &mut spool {
                    spool.write(&event)?;
                }
                if let PageEvent::Page(page) = event {
                    batch.push(page);
                    if batch.len() >= BATCH_PAGES && tx.send(std::mem::take(&mut batch)).is_err() {
                        return Ok(pages);
                    }
                }
            }
            let _ = tx.send(batch);
            if let Some(spool) = spool {
                let path = spool.finish()?;
                tracing::info!("kept the slice's pages in {}", path.display());
            }
            Ok(pages)
        });
        // One table per worker thread, sorted by it and merged once at the end (a table
        // per rayon split cost a merge and a rehash each: 5% of the pass).
        let spawned: std::io::Result<Vec<_>> = (0..workers)
            .map(|i| {
                let rx = rx.clone();
                let opts = &opts;
                std::thread::Builder::new()
                    .name(format!("links-{i}"))
                    .spawn_scoped(scope, move || {
                        let mut partial = Partial::default();
                        for page in rx.iter().flatten() {
                            partial.add_page(&page, opts);
                        }
                        partial.into_sorted()
                    })
            })
            .collect();
        drop(rx);
        let partials = spawned.map(|workers| {
            workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .reduce(Sorted::merge)
                .unwrap_or_default()
        });
        (read.join(), partials)
    });
    let pages = read.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
    let partial =
        partial.map_err(|e| Error::Config(format!("cannot start the link threads: {e}")))?;
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

    #[test]
    fn parts_gathered_apart_merge_into_the_table_of_one() {
        let opts = CleanOptions {
            collect_links: true,
            ..CleanOptions::default()
        };
        let pages: Vec<Page> = (0..40)
            .map(|i| {
                let text = format!(
                    "[[T{}|name {}]] [[T{}]] [[T{}|alias]] [[T{i}|own]]",
                    i % 7,
                    i % 3,
                    (i * 5) % 11,
                    i % 4
                );
                page(i, &format!("A{i}"), &text, None)
            })
            .collect();
        let mut whole = Partial::default();
        for p in &pages {
            whole.add_page(p, &opts);
        }
        let split = Split::new(0, 1).unwrap();
        let whole = whole.into_table(split);
        let parts = [0, 1, 2].map(|part| {
            let mut partial = Partial::default();
            for p in pages.iter().skip(part).step_by(3) {
                partial.add_page(p, &opts);
            }
            partial.into_sorted()
        });
        let merged = parts.into_iter().reduce(Sorted::merge).unwrap();
        assert_eq!(merged.into_table(split), whole);
        let t0 = whole.targets.iter().find(|t| t.title == "T0").unwrap();
        // "name 0".."name 2" from pages 0, 7, .., 35; "alias" from 0, 4, .., 36; A0's own.
        assert_eq!(t0.anchors.iter().map(|a| a.1).sum::<u64>(), 6 + 10 + 1);
    }
}
