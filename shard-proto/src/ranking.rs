//! How a parsed query is scored (issue 15): the weighted fields of the query parser plus
//! three signals, each computed the same way on every shard so that a cluster still ranks
//! exactly as one index would:
//!
//! - **Exact title match**: a constant bonus when the whole query, keyed by
//!   [`title_key`], equals the article's title or one of its redirect titles (the
//!   `title_key` / `redirect_keys` keyword fields; a term lookup, no statistics involved).
//! - **Phrase bonus**: for 2 to [`MAX_PHRASE_WORDS`] words, a BM25 phrase match of the
//!   words within a small slop in the lead. Its terms are the query's own terms, so the
//!   front-end's statistics phase already covers them. (In the body as well it cost 40%
//!   more CPU per query on the generated 100k-page dump and lowered the Greek anchor
//!   class from 0.858 to 0.851 MRR: the lead is where a topic's own words stand together.)
//! - **Incoming-link prior**: `weight * n / (n + half)` for an article with `n` incoming
//!   links (the `links_in` fast field), added per document. It saturates: a page with
//!   `half` links gets half the weight, the most linked pages cannot drown the text
//!   match.
//!
//! The person's query must still match ([`Occur::Must`]); the bonuses only reorder what
//! it finds, so the hit count is that of the query alone.

use std::fmt;

use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, EnableScoring, Explanation, Occur, PhraseQuery,
    Query, Scorer, TermQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, DocSet, Score, SegmentReader, Term};

use crate::analysis::MAX_TOKEN_BYTES;
use crate::schema::{title_key, WikiSchema};

/// BM25 weight of each scored field, in the order of [`WikiSchema::scored_fields`]:
/// title, redirects, anchors, lead, body, categories. Tuned with `wikisearch eval` on the
/// Greek sample (README, "Relevance"): anchors 1.5 → 2.5 lifted anchor MRR 0.70 → 0.82,
/// body 1.0 → 0.7 kept the anchor gain without costing titles or redirects.
pub const FIELD_WEIGHTS: [f32; 6] = [3.0, 2.5, 2.5, 1.5, 0.7, 0.5];
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
    phrase_boost: 0.5,
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
    let f = &schema.fields;
    let key = title_key(text);
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    if ranking.exact_boost > 0.0 && !key.is_empty() {
        let exact = BooleanQuery::new(vec![
            (Occur::Should, keyword_query(f.title_key, &key)),
            (Occur::Should, keyword_query(f.redirect_keys, &key)),
        ]);
        let bonus = ConstScoreQuery::new(Box::new(exact), ranking.exact_boost);
        clauses.push((Occur::Should, Box::new(bonus)));
    }
    // The key's words are the phrase fields' terms: those fields are never stemmed.
    let words: Vec<&str> = key
        .split(' ')
        .filter(|w| !w.is_empty() && w.len() < MAX_TOKEN_BYTES)
        .collect();
    if ranking.phrase_boost > 0.0 && (2..=MAX_PHRASE_WORDS).contains(&words.len()) {
        let terms = words
            .iter()
            .enumerate()
            .map(|(at, w)| (at, Term::from_field_text(f.lead, w)))
            .collect();
        let phrase = PhraseQuery::new_with_offset_and_slop(terms, ranking.phrase_slop);
        let bonus = BoostQuery::new(Box::new(phrase), ranking.phrase_boost);
        clauses.push((Occur::Should, Box::new(bonus)));
    }
    let combined: Box<dyn Query> = if clauses.is_empty() {
        parsed
    } else {
        clauses.insert(0, (Occur::Must, parsed));
        Box::new(BooleanQuery::new(clauses))
    };
    if ranking.prior_weight <= 0.0 {
        return combined;
    }
    Box::new(PriorQuery {
        inner: combined,
        field: f.links_in,
        weight: ranking.prior_weight,
        half: ranking.prior_half.max(f32::MIN_POSITIVE),
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

/// Adds the incoming-link prior of each document to the score of `inner`.
pub struct PriorQuery {
    inner: Box<dyn Query>,
    field: Field,
    weight: Score,
    half: Score,
}

impl Clone for PriorQuery {
    fn clone(&self) -> Self {
        PriorQuery {
            inner: self.inner.box_clone(),
            field: self.field,
            weight: self.weight,
            half: self.half,
        }
    }
}

impl fmt::Debug for PriorQuery {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "Prior(query={:?}, weight={}, half={})",
            self.inner, self.weight, self.half
        )
    }
}

impl Query for PriorQuery {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let inner = self.inner.weight(enable_scoring)?;
        if !enable_scoring.is_scoring_enabled() {
            return Ok(inner);
        }
        let field = enable_scoring
            .schema()
            .get_field_name(self.field)
            .to_string();
        Ok(Box::new(PriorWeight {
            inner,
            field,
            weight: self.weight,
            half: self.half,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        self.inner.query_terms(visitor)
    }
}

struct PriorWeight {
    inner: Box<dyn Weight>,
    field: String,
    weight: Score,
    half: Score,
}

impl PriorWeight {
    /// The segment's link counts; a segment where no document has one has no column
    /// (documents built without the link pass): all zeros then.
    fn links(&self, reader: &SegmentReader) -> tantivy::Result<Option<LinksColumn>> {
        let column = reader.fast_fields().column_opt::<u64>(&self.field)?;
        Ok(column.map(|c| c.first_or_default_col(0)))
    }
}

type LinksColumn = std::sync::Arc<dyn tantivy::columnar::ColumnValues<u64>>;

impl Weight for PriorWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(Box::new(PriorScorer {
            inner: self.inner.scorer(reader, boost)?,
            links: self.links(reader)?,
            weight: self.weight,
            half: self.half,
        }))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let inner = self.inner.explain(reader, doc)?;
        let links = self.links(reader)?.map_or(0, |c| c.get_val(doc));
        let bonus = prior(links, self.weight, self.half);
        let mut explanation = Explanation::new("inner + link prior", inner.value() + bonus);
        explanation.add_detail(inner);
        explanation.add_detail(Explanation::new_with_string(
            format!("prior of {links} incoming links"),
            bonus,
        ));
        Ok(explanation)
    }

    fn count(&self, reader: &SegmentReader) -> tantivy::Result<u32> {
        self.inner.count(reader)
    }
}

struct PriorScorer {
    inner: Box<dyn Scorer>,
    links: Option<LinksColumn>,
    weight: Score,
    half: Score,
}

impl DocSet for PriorScorer {
    fn advance(&mut self) -> DocId {
        self.inner.advance()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.inner.seek(target)
    }

    fn doc(&self) -> DocId {
        self.inner.doc()
    }

    fn size_hint(&self) -> u32 {
        self.inner.size_hint()
    }

    fn cost(&self) -> u64 {
        self.inner.cost()
    }
}

impl Scorer for PriorScorer {
    fn score(&mut self) -> Score {
        let links = self
            .links
            .as_ref()
            .map_or(0, |c| c.get_val(self.inner.doc()));
        self.inner.score() + prior(links, self.weight, self.half)
    }
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
                // One paragraph: the lead is the whole body.
                f.lead => *body,
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
        let (ranked, _) = titles(&index, "natural science", &RANKING);
        assert_eq!(ranked[0], "Two");
    }
}
