//! How a parsed query is scored (issue 15): the weighted fields of the query parser plus
//! three signals, each computed the same way on every shard so that a cluster still ranks
//! exactly as one index would:
//!
//! - **Exact title match**: a constant bonus when the whole query, keyed by
//!   [`title_key`], equals the article's title or one of its redirect titles (the
//!   `title_key` / `redirect_keys` keyword fields; a term lookup, no statistics involved).
//! - **Phrase bonus**: for 2 to [`MAX_PHRASE_WORDS`] words, a BM25 phrase match of the
//!   words within a small slop in the body. Its terms are the query's own terms, so the
//!   front-end's statistics phase already covers them. **Off in [`RANKING`]** (weight 0):
//!   measured with `wikisearch eval` (README, "Relevance"), it added at most 0.008 MRR to
//!   any class (Greek held-out redirects 0.640 → 0.648) and cost +0.46x CPU per query on
//!   the generated 100k-page dump (in the title instead: no gain, +0.22x): its bound
//!   makes most candidates need the phrase checked. It stays a tunable signal
//!   (`eval --phrase`), cheap to turn on once a rescoring window (the phrase checked
//!   only for a global top W) bounds its cost.
//! - **Incoming-link prior**: `weight * n / (n + half)` for an article with `n` incoming
//!   links (the `links_in` fast field), added per document. It saturates: a page with
//!   `half` links gets half the weight, the most linked pages cannot drown the text
//!   match.
//!
//! The person's query must still match; the bonuses only reorder what it finds, so the
//! hit count is that of the query alone. [`RankQuery`] scores all of it in one scorer, and
//! [`TopRanked`] collects the top k with the phrase and the prior computed only for the
//! documents that can still enter it (the same result as scoring every match).

mod scorer;
mod top;

use tantivy::query::{BooleanQuery, Occur, PhraseQuery, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{Score, Term};

pub use scorer::{LinkColumns, RankQuery};
pub use top::{Check, SharedBar, TopRanked, CHECK_EVERY};

use crate::analysis::MAX_TOKEN_BYTES;
use crate::schema::{title_key, WikiSchema};

/// BM25 weight of each scored field, in the order of [`WikiSchema::scored_fields`]:
/// title, redirects, anchors, body, categories. Tuned with `wikisearch eval` on the
/// Greek sample (README, "Relevance"): anchors 1.5 → 2.5 lifted anchor MRR 0.70 → 0.82,
/// body 1.0 → 0.7 kept the anchor gain without costing titles or redirects; without the
/// lead field (weight 1.5 before), body 0.5-1.0 were within 0.01 MRR of each other.
pub const FIELD_WEIGHTS: [f32; 5] = [3.0, 2.5, 2.5, 0.7, 0.5];
/// Longest query that gets a phrase bonus, in words (longer ones are rarely phrases and
/// cost the most to check).
pub const MAX_PHRASE_WORDS: usize = 6;

/// The weights of the signals added to the fields' BM25 scores.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ranking {
    /// Added when the query is an article's title or redirect title (after [`title_key`]).
    pub exact_boost: Score,
    /// Multiplies the phrase match's BM25 score (0: no phrase bonus).
    pub phrase_boost: Score,
    /// Positions the phrase's words may move (0: exact phrase).
    pub phrase_slop: u32,
    /// The prior's ceiling (0: no prior).
    pub prior_weight: Score,
    /// Incoming links at which the prior reaches half its ceiling.
    pub prior_half: Score,
}

/// The ranking every search uses.
/// Measured: exact 12 → 20 took Greek title success@1 0.996 → 0.999; prior 3 → 5 took
/// held-out redirect MRR 0.618 → 0.624; a phrase boost of 1 cost anchor MRR 0.03. With
/// stemmed name fields (more of them match, so BM25 scores grow), exact 20 → 100 took
/// Greek title success@1 0.996 → 1.000 and redirect-with-aliases 0.970 → 0.995, and on
/// the generated 100k-page dump redirect-with-aliases 0.770 → 0.918 (its rare made-up
/// words gave other pages BM25 scores above a smaller bonus), costing nothing elsewhere:
/// an exact title or redirect title match comes first.
pub const RANKING: Ranking = Ranking {
    exact_boost: 100.0,
    phrase_boost: 0.0,
    phrase_slop: 2,
    prior_weight: 5.0,
    prior_half: 30.0,
};

/// Plain BM25 over the fields, no signal (what evaluation compares against).
pub const NO_SIGNALS: Ranking = Ranking {
    exact_boost: 0.0,
    phrase_boost: 0.0,
    phrase_slop: 0,
    prior_weight: 0.0,
    prior_half: 1.0,
};

/// The query every search runs: `parsed` (what the person typed, as parsed) with the
/// signals of [`RANKING`]. `text` is the typed text; the front-end and the leaves must
/// pass the same one, so that they build the same query and ask for the same terms.
pub fn rank(schema: &WikiSchema, parsed: Box<dyn Query>, text: &str) -> Box<dyn Query> {
    rank_with(schema, parsed, text, &RANKING)
}

/// [`rank`] with explicit weights (for tuning and evaluation).
pub fn rank_with(
    schema: &WikiSchema,
    parsed: Box<dyn Query>,
    text: &str,
    ranking: &Ranking,
) -> Box<dyn Query> {
    let parsed = flat_disjunction(parsed);
    let f = &schema.fields;
    let key = title_key(text);
    let exact = (ranking.exact_boost > 0.0 && !key.is_empty()).then(|| {
        Box::new(BooleanQuery::new(vec![
            (Occur::Should, keyword_query(f.title_key, &key)),
            (Occur::Should, keyword_query(f.redirect_keys, &key)),
        ])) as Box<dyn Query>
    });
    // The key's words are the body's terms: the body is never stemmed.
    let words: Vec<&str> = key
        .split(' ')
        .filter(|w| !w.is_empty() && w.len() < MAX_TOKEN_BYTES)
        .collect();
    let phrase = (ranking.phrase_boost > 0.0 && (2..=MAX_PHRASE_WORDS).contains(&words.len()))
        .then(|| {
            let terms = words
                .iter()
                .enumerate()
                .map(|(at, w)| (at, Term::from_field_text(f.body, w)))
                .collect();
            PhraseQuery::new_with_offset_and_slop(terms, ranking.phrase_slop)
        });
    let prior_on = ranking.prior_weight > 0.0;
    if exact.is_none() && phrase.is_none() && !prior_on {
        return parsed;
    }
    Box::new(RankQuery {
        base: parsed,
        exact,
        exact_boost: ranking.exact_boost,
        phrase,
        phrase_boost: ranking.phrase_boost,
        links: prior_on.then_some(f.links_in),
        prior_weight: if prior_on { ranking.prior_weight } else { 0.0 },
        prior_half: ranking.prior_half.max(f32::MIN_POSITIVE),
    })
}

/// `query` with every optional clause that is itself a plain disjunction (the parser's
/// "this word in any of the five fields") spliced into it: `a b` becomes one union of the
/// ten field terms instead of a union of two unions. The same documents match with
/// the same summands (only their order of addition changes); each match is walked once
/// instead of once per level, and a union of term scorers is tantivy's fastest path.
/// Measured in README, "Relevance" (cost).
fn flat_disjunction(query: Box<dyn Query>) -> Box<dyn Query> {
    let Some(outer) = query.downcast_ref::<BooleanQuery>() else {
        return query;
    };
    let splices = outer
        .clauses()
        .iter()
        .any(|(o, q)| *o == Occur::Should && plain_disjunction(q.as_ref()).is_some());
    if !default_minimum(outer) || !splices {
        return query;
    }
    let mut clauses = Vec::new();
    for (occur, sub) in outer.clauses() {
        match plain_disjunction(sub.as_ref()).filter(|_| *occur == Occur::Should) {
            Some(inner) => clauses.extend(inner.clauses().iter().map(|(o, q)| (*o, q.box_clone()))),
            None => clauses.push((*occur, sub.box_clone())),
        }
    }
    Box::new(BooleanQuery::new(clauses))
}

/// Whether `q` has the minimum `BooleanQuery::new` sets: 1 for optional clauses alone,
/// 0 beside a required or excluded one (any other minimum is left alone).
fn default_minimum(q: &BooleanQuery) -> bool {
    let optional_only = q.clauses().iter().all(|(o, _)| *o == Occur::Should);
    q.get_minimum_number_should_match() == usize::from(optional_only)
}

/// `q` if it is a union of optional clauses.
fn plain_disjunction(q: &dyn Query) -> Option<&BooleanQuery> {
    q.downcast_ref::<BooleanQuery>().filter(|inner| {
        inner.clauses().iter().all(|(o, _)| *o == Occur::Should) && default_minimum(inner)
    })
}

fn keyword_query(field: Field, key: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, key),
        IndexRecordOption::Basic,
    ))
}

/// The saturating prior for `links` incoming links.
pub fn prior(links: u64, weight: Score, half: Score) -> Score {
    let n = links as Score;
    weight * n / (n + half)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query_parser;
    use tantivy::collector::{Count, TopDocs};
    use tantivy::schema::Value;
    use tantivy::{doc, Index, IndexWriter, TantivyDocument};

    fn index(docs: &[(&str, &str, &[&str], u64)]) -> Index {
        let schema = WikiSchema::new();
        let f = schema.fields;
        let index = Index::create_in_ram(schema.schema.clone());
        let mut writer: IndexWriter = index.writer(15_000_000).unwrap();
        for (n, (title, body, redirects, links)) in docs.iter().enumerate() {
            let mut d = doc!(
                f.id => n as u64,
                f.title => *title,
                f.title_key => title_key(title),
                f.body => *body,
                f.links_in => *links,
            );
            for r in *redirects {
                d.add_text(f.redirects, r);
                d.add_text(f.redirect_keys, title_key(r));
            }
            writer.add_document(d).unwrap();
        }
        writer.commit().unwrap();
        index
    }

    fn titles(index: &Index, text: &str, ranking: &Ranking) -> (Vec<String>, usize) {
        let schema = WikiSchema::new();
        let parsed = query_parser(&schema).parse_query(text).unwrap();
        let query = rank_with(&schema, parsed, text, ranking);
        let searcher = index.reader().unwrap().searcher();
        let (top, count) = searcher
            .search(&query, &(TopDocs::with_limit(10).order_by_score(), Count))
            .unwrap();
        let titles = top
            .into_iter()
            .map(|(_, address)| {
                let d: TantivyDocument = searcher.doc(address).unwrap();
                let title = d.get_first(schema.fields.title).unwrap();
                title.as_str().unwrap().to_string()
            })
            .collect();
        (titles, count)
    }

    #[test]
    fn exact_redirect_match_wins_and_the_hit_count_is_the_querys() {
        let index = index(&[
            (
                "United States",
                "a country in north america",
                &["USA", "America"],
                50,
            ),
            (
                "America (band)",
                "america america america is a band",
                &[],
                2,
            ),
            ("Film", "a film about america", &[], 1),
        ]);
        let (plain, plain_count) = titles(&index, "america", &NO_SIGNALS);
        assert_eq!(plain[0], "America (band)");
        let (ranked, count) = titles(&index, "america", &RANKING);
        assert_eq!(ranked[0], "United States");
        assert_eq!(count, plain_count, "signals never add hits");
    }

    #[test]
    fn prior_saturates_and_breaks_ties() {
        assert_eq!(prior(0, 3.0, 30.0), 0.0);
        assert!((prior(30, 3.0, 30.0) - 1.5).abs() < 1e-6);
        assert!(prior(1_000_000, 3.0, 30.0) < 3.0);
        let index = index(&[
            ("Alpha", "same words here", &[], 1),
            ("Beta", "same words here", &[], 400),
        ]);
        let (ranked, _) = titles(&index, "words", &RANKING);
        assert_eq!(ranked, ["Beta", "Alpha"]);
    }

    #[test]
    fn phrase_bonus_prefers_the_words_together() {
        let index = index(&[
            ("One", "science is natural in ways", &[], 0),
            ("Two", "natural science is a branch", &[], 0),
        ]);
        let (ranked, _) = titles(&index, "natural science", &WITH_PHRASE);
        assert_eq!(ranked[0], "Two");
    }

    /// [`RANKING`] with the phrase bonus on (off in the engine, see the module's doc): the
    /// collector's and the scorer's tests cover both.
    const WITH_PHRASE: Ranking = Ranking {
        phrase_boost: 0.5,
        ..RANKING
    };

    /// An index of `n` made-up pages over a small vocabulary, in several segments with
    /// some deleted documents: many ties, phrases, exact titles and link counts.
    fn generated(n: u64, seed: u64) -> Index {
        generated_in(n, seed, 97)
    }

    /// [`generated`] with a commit (a new segment) every `per_segment` pages.
    fn generated_in(n: u64, seed: u64, per_segment: u64) -> Index {
        const WORDS: [&str; 12] = [
            "natural", "science", "river", "city", "old", "town", "music", "band", "north",
            "america", "history", "war",
        ];
        let schema = WikiSchema::new();
        let f = schema.fields;
        let index = Index::create_in_ram(schema.schema.clone());
        let mut writer: IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
        let mut seed = seed;
        let mut next = |m: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % m
        };
        for id in 0..n {
            let mut words = |count: u64| {
                (0..count)
                    .map(|_| WORDS[next(WORDS.len() as u64) as usize])
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let title = words(1 + id % 3);
            let body = words(26);
            writer
                .add_document(doc!(
                    f.id => id,
                    f.title => title.as_str(),
                    f.title_key => title_key(&title),
                    f.body => body,
                    f.links_in => id % 7 * 13,
                ))
                .unwrap();
            if id % per_segment == per_segment - 1 {
                writer.commit().unwrap();
            }
        }
        writer.delete_term(Term::from_field_u64(f.id, 5));
        writer.commit().unwrap();
        index
    }

    #[test]
    fn top_ranked_returns_exactly_what_scoring_every_match_returns() {
        // Small segments, and large ones (many blocks of postings per term).
        for index in [generated(600, 7), generated_in(20_000, 3, 8_000)] {
            top_ranked_matches_scoring_every_match(&index);
        }
    }

    fn top_ranked_matches_scoring_every_match(index: &Index) {
        let searcher = index.reader().unwrap().searcher();
        assert!(searcher.segment_readers().len() >= 3);
        let schema = WikiSchema::new();
        let parser = query_parser(&schema);
        for text in [
            "natural science",
            "old town",
            "north america history",
            "river",
            "city music band",
            "war",
            "+river -city",
            "\"old town\"",
        ] {
            for ranking in [RANKING, WITH_PHRASE] {
                let parsed = parser.parse_query(text).unwrap();
                let query = rank_with(&schema, parsed, text, &ranking);
                top_ranked_matches_scoring(&searcher, query.as_ref(), text);
            }
        }
    }

    fn top_ranked_matches_scoring(searcher: &tantivy::Searcher, query: &dyn Query, text: &str) {
        let links = LinkColumns::open(searcher, &WikiSchema::new()).unwrap();
        // Opened from another index: no segment matches, each is opened for the search.
        let other = generated(50, 99).reader().unwrap().searcher();
        let others = LinkColumns::open(&other, &WikiSchema::new()).unwrap();
        for k in [1, 3, 10, 50] {
            let expected = searcher
                .search(query, &(TopDocs::with_limit(k).order_by_score(), Count))
                .unwrap();
            // As a tantivy collector, through its own search (tantivy's loop over the
            // base query), and with the priors computed beforehand.
            let collected = searcher.search(query, &TopRanked::new(k)).unwrap();
            let searched = TopRanked::new(k).search(searcher, query, None).unwrap();
            let with_links = (TopRanked::new(k).with_links(&links))
                .search(searcher, query, None)
                .unwrap();
            let with_others = (TopRanked::new(k).with_links(&others))
                .search(searcher, query, None)
                .unwrap();
            for (how, got) in [
                ("collected", collected),
                ("searched", searched),
                ("with links", with_links),
                ("with another index's links", with_others),
            ] {
                assert_eq!(got.1, expected.1, "{text:?} k={k} {how}: count");
                // Same documents, same scores bit for bit, equal scores in address order.
                assert_eq!(got.0, expected.0, "{text:?} k={k} {how}");
            }
        }
    }

    #[test]
    fn an_interrupted_search_fails_with_the_checks_error() {
        let index = generated_in(20_000, 5, 20_000);
        let searcher = index.reader().unwrap().searcher();
        let schema = WikiSchema::new();
        let links = LinkColumns::open(&searcher, &schema).unwrap();
        for ranking in [RANKING, WITH_PHRASE] {
            let text = "river";
            let parsed = query_parser(&schema).parse_query(text).unwrap();
            let query = rank_with(&schema, parsed, text, &ranking);
            let calls = std::sync::atomic::AtomicUsize::new(0);
            // Passes the check before the segment and the first one inside it.
            let check = || match calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) {
                0 | 1 => Ok(()),
                _ => Err(tantivy::TantivyError::InternalError("deadline".into())),
            };
            let collector = TopRanked::new(10).interrupted_by(&check).with_links(&links);
            let err = collector
                .search(&searcher, query.as_ref(), None)
                .unwrap_err();
            assert!(err.to_string().contains("deadline"), "{err}");
            assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 3);
        }
    }

    #[test]
    fn a_flat_disjunction_matches_and_scores_as_the_parsed_query() {
        let index = generated(600, 11);
        let searcher = index.reader().unwrap().searcher();
        let schema = WikiSchema::new();
        let parser = query_parser(&schema);
        for text in [
            "natural science",
            "north america history war",
            "+river city -band",
            "\"old town\" music",
            "river",
        ] {
            let parsed = parser.parse_query(text).unwrap();
            let flat = flat_disjunction(parsed.box_clone());
            let all = |q: &dyn Query| {
                let mut hits = searcher
                    .search(q, &TopDocs::with_limit(1000).order_by_score())
                    .unwrap();
                hits.sort_by_key(|(_, address)| *address);
                hits
            };
            let (nested, flat) = (all(parsed.as_ref()), all(flat.as_ref()));
            assert!(!nested.is_empty(), "{text:?}");
            assert_eq!(nested.len(), flat.len(), "{text:?}: the same matches");
            for ((a, x), (b, y)) in nested.iter().zip(&flat) {
                assert_eq!(x, y, "{text:?}");
                assert!((a - b).abs() <= 1e-5 * a.abs(), "{text:?}: {a} vs {b}");
            }
        }
        // A word in any field is spliced: one union of every (word, field) term.
        let parsed = parser.parse_query("natural science").unwrap();
        let flat = flat_disjunction(parsed);
        let flat = flat.downcast_ref::<BooleanQuery>().unwrap();
        assert_eq!(flat.clauses().len(), 2 * schema.scored_fields().len());
        assert!(flat
            .clauses()
            .iter()
            .all(|(o, q)| *o == Occur::Should && q.downcast_ref::<BooleanQuery>().is_none()));
    }

    #[test]
    fn a_shared_bar_keeps_the_top_k_over_all_shards() {
        let shards = [generated(500, 1), generated(500, 2), generated(500, 3)];
        let searchers: Vec<_> = shards
            .iter()
            .map(|i| i.reader().unwrap().searcher())
            .collect();
        let schema = WikiSchema::new();
        let parser = query_parser(&schema);
        for text in [
            "natural science",
            "old town",
            "north america history",
            "war",
        ] {
            for ranking in [RANKING, WITH_PHRASE] {
                let parsed = parser.parse_query(text).unwrap();
                let query = rank_with(&schema, parsed, text, &ranking);
                shared_bar_keeps_the_top_k(&searchers, query.as_ref(), text);
            }
        }
    }

    fn shared_bar_keeps_the_top_k(searchers: &[tantivy::Searcher], query: &dyn Query, text: &str) {
        for k in [1, 5, 20] {
            // Per shard, then merged: (score, shard, address), best first.
            let merged = |bar: Option<&SharedBar>| {
                let mut all = Vec::new();
                let mut count = 0;
                for (shard, searcher) in searchers.iter().enumerate() {
                    let collector = match bar {
                        Some(bar) => TopRanked::new(k).sharing(bar),
                        None => TopRanked::new(k),
                    };
                    let (top, n) = collector.search(searcher, query, None).unwrap();
                    count += n;
                    all.extend(top.into_iter().map(|(s, a)| (s, shard, a)));
                }
                all.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
                all.truncate(k);
                (all, count)
            };
            let bar = SharedBar::default();
            assert_eq!(merged(Some(&bar)), merged(None), "{text:?} k={k}");
        }
    }
}
