//! Deterministic synthetic Wikipedia dump generator, for benchmarks at scale.
//!
//! Writes a valid multistream `.xml.bz2` (export-0.11, like
//! `enwiki-...-pages-articles-multistream.xml.bz2`: a `<siteinfo>` stream, then
//! `pages_per_stream` pages a stream, then a `</mediawiki>` stream) and its index
//! (`offset:pageid:title` lines, bzip2). Everything is a pure function of the seed and
//! the page number, so streams are generated and compressed in parallel (rayon) in
//! bounded batches, and the output is byte-identical whatever the thread count.
//!
//! Text model: Zipf(1) vocabulary of [`VOCABULARY`] terms (rank 0.. are common English
//! words, then syllable words that get longer as they get rarer) so a large dump holds
//! hundreds of thousands of distinct terms; log-normal article lengths (median ~350
//! words, sigma 1, so a million pages have a few dozen over 20,000 words); real markup:
//! links, nested templates, infoboxes, refs, tables, File links, comments, entities,
//! categories; ~8% redirects and ~2% pages in other namespaces.
//!
//! With [`QueryTerms`] (read from a benchmark query file), the query terms replace
//! syllable words at Zipf ranks spread log-uniformly over ~100..30,000 and the queries'
//! multi-word sequences appear adjacently in prose a few times a page (skewed towards
//! some), so real queries find posting lists of realistic lengths and phrases match.
//! Without them the output is what it always was.
//!
//! [`Markup::Dense`] adds the markup real enwiki articles carry beyond the prose (an
//! infobox on every article, citation templates after many sentences, `{{convert}}`,
//! `{{lang}}` and footnotes inline, more tables, navboxes, "See also" and "External
//! links" sections, authority control, sort keys), more than the real articles of
//! `../shared/corpus/enwiki-sample.xml.bz2` carry (79% of the wikitext bytes are markup,
//! against 49% there and 37% in normal mode: `dense.rs`), so a benchmark pays at least
//! the cleaner's real cost. [`Markup::Normal`] draws exactly what it always drew.

mod dense;
mod queries;
mod text;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use bzip2::write::BzEncoder;
use bzip2::Compression;
use rayon::prelude::*;

use crate::error::{Error, Result};

pub use queries::{tokens, QueryTerms};
pub use text::VOCABULARY;

/// What to generate.
#[derive(Clone, Debug)]
pub struct SynthOptions {
    pub pages: u64,
    pub seed: u64,
    /// Pages a bzip2 stream (Wikimedia uses 100).
    pub pages_per_stream: u32,
    /// How much markup surrounds the prose.
    pub markup: Markup,
}

/// How much markup the generated articles carry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Markup {
    /// The generator's original mix (the default; output unchanged from earlier versions).
    #[default]
    Normal,
    /// More markup than real enwiki articles (see the module docs): a heavy case.
    Dense,
}

impl std::str::FromStr for Markup {
    type Err = Error;

    fn from_str(s: &str) -> Result<Markup> {
        match s {
            "normal" => Ok(Markup::Normal),
            "dense" => Ok(Markup::Dense),
            other => Err(Error::Other(format!(
                "unknown markup {other:?}: expected \"normal\" or \"dense\""
            ))),
        }
    }
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            pages: 1000,
            seed: 42,
            pages_per_stream: 100,
            markup: Markup::Normal,
        }
    }
}

/// What was written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SynthSummary {
    pub path: PathBuf,
    pub index: PathBuf,
    pub pages: u64,
    pub articles: u64,
    pub redirects: u64,
    pub other_namespaces: u64,
    /// bzip2 streams, header and footer included.
    pub streams: u64,
    /// Uncompressed XML bytes.
    pub xml_bytes: u64,
    /// Bytes of the `.xml.bz2`.
    pub compressed_bytes: u64,
}

/// The index path of a dump: `X.xml.bz2` → `X-index.txt.bz2`.
pub fn index_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name
        .strip_suffix(".xml.bz2")
        .or_else(|| name.strip_suffix(".bz2"))
        .unwrap_or(&name);
    out.with_file_name(format!("{stem}-index.txt.bz2"))
}

/// A compressed stream of pages and its index entries.
struct Stream {
    compressed: Vec<u8>,
    xml_bytes: u64,
    entries: Vec<(u64, String)>,
    counts: text::Counts,
}

/// Writes OUT and its index (see [`index_path`]).
pub fn write_synthetic_dump(out: &Path, opts: &SynthOptions) -> Result<SynthSummary> {
    write_synthetic_dump_with(out, opts, None)
}

/// [`write_synthetic_dump`], with real query terms in the vocabulary when given. (A
/// separate argument rather than a [`SynthOptions`] field keeps every existing
/// `SynthOptions { .. }` literal valid.)
pub fn write_synthetic_dump_with(
    out: &Path,
    opts: &SynthOptions,
    query_terms: Option<&QueryTerms>,
) -> Result<SynthSummary> {
    if opts.pages_per_stream == 0 {
        return Err(Error::Other("pages_per_stream must be at least 1".into()));
    }
    let index = index_path(out);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |err| Error::io(path.clone(), err)
    };
    let mut dump = BufWriter::with_capacity(1 << 20, File::create(out).map_err(io(out))?);
    let index_file = BufWriter::new(File::create(&index).map_err(io(&index))?);
    let mut index_bz = BzEncoder::new(index_file, Compression::new(9));
    let model = text::Model::new(opts.seed, query_terms, opts.markup);
    let mut summary = SynthSummary {
        path: out.into(),
        index: index.clone(),
        ..Default::default()
    };

    let header = text::header();
    let mut offset = write_stream(&mut dump, header.as_bytes(), &mut summary).map_err(io(out))?;
    let per_stream = opts.pages_per_stream as u64;
    let streams = opts.pages.div_ceil(per_stream);
    let batch = (rayon::current_num_threads() * 4) as u64;
    let mut line = String::new();
    for first in (0..streams).step_by(batch as usize) {
        let last = (first + batch).min(streams);
        let built: Vec<Stream> = (first..last)
            .into_par_iter()
            .map(|s| {
                build_stream(
                    &model,
                    s * per_stream,
                    ((s + 1) * per_stream).min(opts.pages),
                )
            })
            .collect::<std::io::Result<_>>()
            .map_err(io(out))?;
        for stream in built {
            for (id, title) in &stream.entries {
                line.clear();
                line.push_str(&format!("{offset}:{id}:{title}\n"));
                index_bz.write_all(line.as_bytes()).map_err(io(&index))?;
            }
            dump.write_all(&stream.compressed).map_err(io(out))?;
            offset += stream.compressed.len() as u64;
            summary.streams += 1;
            summary.xml_bytes += stream.xml_bytes;
            summary.articles += stream.counts.articles;
            summary.redirects += stream.counts.redirects;
            summary.other_namespaces += stream.counts.other_namespaces;
        }
    }
    offset += write_stream(&mut dump, b"</mediawiki>\n", &mut summary).map_err(io(out))?;
    dump.flush().map_err(io(out))?;
    index_bz
        .finish()
        .and_then(|mut w| w.flush())
        .map_err(io(&index))?;
    summary.pages = summary.articles + summary.redirects + summary.other_namespaces;
    summary.compressed_bytes = offset;
    Ok(summary)
}

/// Compresses `xml` as one stream onto `dump`; returns its compressed size.
fn write_stream(
    dump: &mut impl Write,
    xml: &[u8],
    summary: &mut SynthSummary,
) -> std::io::Result<u64> {
    let compressed = compress(xml)?;
    dump.write_all(&compressed)?;
    summary.streams += 1;
    summary.xml_bytes += xml.len() as u64;
    Ok(compressed.len() as u64)
}

fn compress(xml: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = BzEncoder::new(Vec::with_capacity(xml.len() / 3), Compression::new(9));
    encoder.write_all(xml)?;
    encoder.finish()
}

/// Generates pages `[first, end)` as XML and compresses them.
fn build_stream(model: &text::Model, first: u64, end: u64) -> std::io::Result<Stream> {
    let mut xml = String::with_capacity(((end - first) as usize) * 6000);
    let mut entries = Vec::with_capacity((end - first) as usize);
    let mut counts = text::Counts::default();
    let mut scratch = String::new();
    for number in first..end {
        let (id, title) = model.write_page(number, &mut xml, &mut scratch, &mut counts);
        entries.push((id, title));
    }
    Ok(Stream {
        compressed: compress(xml.as_bytes())?,
        xml_bytes: xml.len() as u64,
        entries,
        counts,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{open, to_document, OpenOptions, PageEvent};

    const QUERIES: &str = "{\"query\": \"+griffith +observatory\", \"kind\": \"intersection\"}\n\
                           {\"query\": \"\\\"bowel obstruction\\\"\", \"kind\": \"phrase\"}\n\
                           west palm beach florida\n\
                           the\n";

    /// Every indexed article of a dump as the tokens of its title and body.
    fn article_tokens(dump: &Path) -> Vec<Vec<String>> {
        let reader = open(dump, &OpenOptions::default()).unwrap();
        let site = reader.siteinfo().clone();
        let mut articles = Vec::new();
        for event in reader {
            if let PageEvent::Page(page) = event.unwrap() {
                if page.ns == 0 && page.redirect_target.is_none() {
                    let doc = to_document(&page, &site);
                    articles.push(tokens(&format!("{} {}", doc.title, doc.body)));
                }
            }
        }
        articles
    }

    #[test]
    fn query_terms_and_phrases_occur_in_the_cleaned_articles() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("queries.xml.bz2");
        let queries = QueryTerms::parse(QUERIES).unwrap();
        let opts = SynthOptions {
            pages: 300,
            seed: 5,
            ..SynthOptions::default()
        };
        write_synthetic_dump_with(&out, &opts, Some(&queries)).unwrap();
        let articles = article_tokens(&out);
        assert!(articles.len() > 250, "{}", articles.len());

        let mut term_docs = BTreeMap::new();
        for term in queries.terms() {
            let docs = articles.iter().filter(|a| a.contains(term)).count();
            term_docs.insert(term.as_str(), docs);
        }
        assert!(term_docs.values().all(|&docs| docs > 0), "{term_docs:?}");
        assert_eq!(queries.phrases().len(), 3);
        for phrase in queries.phrases() {
            let docs = articles
                .iter()
                .filter(|a| a.windows(phrase.len()).any(|w| w == phrase.as_slice()))
                .count();
            assert!(
                docs > 0,
                "{phrase:?} never adjacent in {} articles",
                articles.len()
            );
        }
        // A common word stays common: "the" is still rank 0.
        assert!(term_docs["the"] > articles.len() * 9 / 10, "{term_docs:?}");
    }

    #[test]
    fn empty_query_terms_change_nothing_and_terms_are_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SynthOptions {
            pages: 120,
            seed: 8,
            pages_per_stream: 50,
            ..SynthOptions::default()
        };
        let dump = |name: &str, terms: Option<&QueryTerms>| {
            let path = dir.path().join(name);
            write_synthetic_dump_with(&path, &opts, terms).unwrap();
            std::fs::read(path).unwrap()
        };
        let plain = dump("plain.xml.bz2", None);
        assert_eq!(plain, dump("empty.xml.bz2", Some(&QueryTerms::default())));
        let queries = QueryTerms::parse(QUERIES).unwrap();
        let with_terms = dump("terms.xml.bz2", Some(&queries));
        assert_ne!(plain, with_terms);
        assert_eq!(with_terms, dump("again.xml.bz2", Some(&queries)));
    }
}
