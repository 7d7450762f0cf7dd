//! Known-item relevance check used to tune the ranking (issue 15) until the `eval`
//! command is available: builds a dump with the link pass twice (with redirect aliases,
//! and with `--no-aliases` for the held-out redirect class), draws queries from the dump
//! itself (each with exactly one right article) and prints MRR@10, success@1 and
//! success@10 per class for plain BM25 (title^2 + body + categories, no signal) and for
//! the ranking with the given weights.
//!
//! - title: an article's title finds the article;
//! - redirect: a main-namespace redirect's title finds its target (held out: the index
//!   has no alias; with aliases: it has);
//! - anchor: the text of a piped link `[[Target|text]]` (text not Target's own title)
//!   finds Target (through a redirect too).
//!
//! Queries are the words of the text (what a lenient reading of it searches).
//!
//! ```text
//! cargo run --release -p indexer --example relevance -- \
//!     --input ../shared/corpus/elwikivoyage-sample.xml.bz2 --dir /tmp/relevance
//! ```

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use corpus::wikitext::{clean, CleanOptions};
use corpus::{canonical_title, classify, OpenOptions, PageEvent, PageKind, Split};
use indexer::build::{build, BuildOptions, ProgressMode};
use shard_proto::ranking::{rank_with, Ranking, NO_SIGNALS, RANKING};
use shard_proto::{query_parser, title_key, WikiSchema};
use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::Value;
use tantivy::{Index, ReloadPolicy, Searcher, TantivyDocument};

#[derive(Debug, Parser)]
struct Args {
    /// The dump to build and draw queries from.
    #[arg(long)]
    input: PathBuf,
    /// Work directory (indexes are rebuilt in it).
    #[arg(long)]
    dir: PathBuf,
    /// Most queries per class (every n-th is taken beyond it).
    #[arg(long, default_value_t = 1000)]
    max: usize,
    /// Field weights: title, redirects, anchors, body, categories.
    #[arg(long, value_delimiter = ',')]
    weights: Vec<f32>,
    #[arg(long)]
    exact: Option<f32>,
    #[arg(long)]
    phrase: Option<f32>,
    #[arg(long)]
    prior_weight: Option<f32>,
    #[arg(long)]
    prior_half: Option<f32>,
    /// Reuse the indexes of a previous run in --dir.
    #[arg(long)]
    reuse: bool,
}

/// Known-item queries: (typed text, page id of the one right article).
#[derive(Default)]
struct Classes {
    title: Vec<(String, u64)>,
    redirect: Vec<(String, u64)>,
    anchor: Vec<(String, u64)>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let aliases = args.dir.join("aliases");
    let held_out = args.dir.join("held-out");
    if !args.reuse {
        build_index(&args.input, &args.dir, &aliases, true)?;
        build_index(&args.input, &args.dir, &held_out, false)?;
    }
    let classes = draw_queries(&args.input, args.max)?;
    let schema = WikiSchema::new();
    let mut ranking = RANKING;
    ranking.exact_boost = args.exact.unwrap_or(ranking.exact_boost);
    ranking.phrase_boost = args.phrase.unwrap_or(ranking.phrase_boost);
    ranking.prior_weight = args.prior_weight.unwrap_or(ranking.prior_weight);
    ranking.prior_half = args.prior_half.unwrap_or(ranking.prior_half);
    let mut ranked_parser = query_parser(&schema);
    if args.weights.len() == 5 {
        for (field, w) in schema.scored_fields().into_iter().zip(&args.weights) {
            ranked_parser.set_field_boost(field, *w);
        }
    }
    let f = schema.fields;
    let mut plain_parser = QueryParser::new(
        schema.schema.clone(),
        vec![f.title, f.body, f.categories],
        tantivy::tokenizer::TokenizerManager::default(),
    );
    plain_parser.set_field_boost(f.title, 2.0);
    let with = open(&aliases)?;
    let without = open(&held_out)?;
    println!("ranking {ranking:?} weights {:?}", args.weights);
    println!(
        "{:<28} {:>6} {:>7} {:>6} {:>6}",
        "class / setup", "n", "MRR", "s@1", "s@10"
    );
    let setups: [(&str, &QueryParser, &Ranking); 2] = [
        ("plain BM25", &plain_parser, &NO_SIGNALS),
        ("ranked", &ranked_parser, &ranking),
    ];
    for (name, parser, ranking) in setups {
        let eval = |searcher: &Searcher, queries: &[(String, u64)], label: &str| {
            let m = measure(&schema, searcher, parser, ranking, queries);
            println!(
                "{:<28} {:>6} {:>7.3} {:>6.3} {:>6.3}",
                format!("{label} / {name}"),
                queries.len(),
                m.0,
                m.1,
                m.2
            );
        };
        eval(&with, &classes.title, "title");
        eval(&without, &classes.redirect, "redirect held out");
        eval(&with, &classes.redirect, "redirect, aliases");
        eval(&with, &classes.anchor, "anchor");
    }
    Ok(())
}

fn build_index(input: &Path, dir: &Path, out: &Path, aliases: bool) -> Result<()> {
    let links = dir.join("links");
    let open = OpenOptions {
        split: Split::whole(),
        index: None,
        threads: 2,
    };
    indexer::links::collect(input, &open, None)?.write(&links)?;
    let _ = std::fs::remove_dir_all(out);
    build(&BuildOptions {
        input: input.to_path_buf(),
        out: out.to_path_buf(),
        shards: 1,
        split: Split::whole(),
        index: None,
        threads: 2,
        memory_mb: 256,
        progress: ProgressMode::Quiet,
        max_unexpected_skips_percent: indexer::build::DEFAULT_MAX_UNEXPECTED_SKIPS_PERCENT,
        links: Some(links),
        analysis: indexer::build::AnalysisChoice::Auto,
        spool: None,
        aliases,
    })?;
    Ok(())
}

fn open(store: &Path) -> Result<Searcher> {
    let dir = std::fs::read_dir(store)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.join("manifest.json").exists())
        .context("no shard")?;
    let reader = Index::open_in_dir(dir)?
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()?;
    Ok(reader.searcher())
}

/// Every n-th item so that at most `max` remain.
fn thin<T>(items: Vec<T>, max: usize) -> Vec<T> {
    let step = items.len().div_ceil(max.max(1)).max(1);
    items.into_iter().step_by(step).collect()
}

fn draw_queries(input: &Path, max: usize) -> Result<Classes> {
    let reader = corpus::open(input, &OpenOptions::default())?;
    let mut opts = CleanOptions::for_site(reader.siteinfo());
    opts.collect_links = true;
    let mut ids: HashMap<String, u64> = HashMap::new();
    let mut redirects: Vec<(String, String)> = Vec::new();
    let mut links: Vec<(String, String)> = Vec::new();
    for event in reader {
        let PageEvent::Page(page) = event? else {
            continue;
        };
        let Some(title) = canonical_title(&page.title) else {
            continue;
        };
        match classify(&page) {
            PageKind::Article => {
                ids.insert(title, page.id);
                for link in clean(&page.wikitext, &opts).links {
                    if let (Some(anchor), Some(target)) =
                        (link.anchor, canonical_title(&link.target))
                    {
                        links.push((anchor, target));
                    }
                }
            }
            PageKind::Redirect if page.ns == 0 => {
                if let Some(target) = page.redirect_target.as_deref().and_then(canonical_title) {
                    redirects.push((title, target));
                }
            }
            _ => {}
        }
    }
    let alias: HashMap<&str, &str> = redirects
        .iter()
        .map(|(a, t)| (a.as_str(), t.as_str()))
        .collect();
    let resolve = |t: &str| ids.get(alias.get(t).copied().unwrap_or(t)).copied();
    let mut classes = Classes::default();
    let mut titles: Vec<(String, u64)> = ids.iter().map(|(t, id)| (title_key(t), *id)).collect();
    titles.sort();
    classes.title = thin(titles, max);
    let mut redirect: Vec<(String, u64)> = redirects
        .iter()
        .filter_map(|(a, t)| Some((title_key(a), *ids.get(t)?)))
        .collect();
    redirect.sort();
    classes.redirect = thin(redirect, max);
    let mut seen = BTreeSet::new();
    for (anchor, target) in &links {
        let (key, Some(id)) = (title_key(anchor), resolve(target)) else {
            continue;
        };
        if !key.is_empty() && key != title_key(target) {
            seen.insert((key, id));
        }
    }
    classes.anchor = thin(seen.into_iter().collect(), max);
    for list in [
        &mut classes.title,
        &mut classes.redirect,
        &mut classes.anchor,
    ] {
        list.retain(|(q, _)| !q.is_empty());
    }
    Ok(classes)
}

/// (MRR@10, success@1, success@10).
fn measure(
    schema: &WikiSchema,
    searcher: &Searcher,
    parser: &QueryParser,
    ranking: &Ranking,
    queries: &[(String, u64)],
) -> (f64, f64, f64) {
    let (mut rr, mut at1, mut at10) = (0.0, 0.0, 0.0);
    for (text, want) in queries {
        let Ok(parsed) = parser.parse_query(text) else {
            continue;
        };
        let query = rank_with(schema, parsed, text, ranking);
        let collector = TopDocs::with_limit(10).order_by_score();
        let Ok(top) = searcher.search(query.as_ref(), &collector) else {
            continue;
        };
        let rank = top.iter().position(|(_, address)| {
            let doc: TantivyDocument = searcher.doc(*address).expect("stored doc");
            doc.get_first(schema.fields.id).and_then(|v| v.as_u64()) == Some(*want)
        });
        if let Some(r) = rank {
            rr += 1.0 / (r as f64 + 1.0);
            at1 += f64::from(r == 0);
            at10 += 1.0;
        }
    }
    let n = queries.len().max(1) as f64;
    (rr / n, at1 / n, at10 / n)
}
