//! The query every search runs, as one tantivy [`Query`]: the person's parsed query plus
//! the three signals of [`Ranking`](super::Ranking), scored per document as
//! `base + (exact + phrase) + prior`.
//!
//! One scorer holds all four parts (rather than a `BooleanQuery` wrapped in a prior) so
//! that [`TopRanked`](super::TopRanked) can bound what the signals may still add to a
//! document: the exact bonus is a cheap membership test, but the phrase bonus reads
//! positions and the prior a fast field, so both are computed only for documents whose
//! bound can still enter the top k. Any other collector gets the same scores through
//! [`Scorer::score`].

use std::fmt;

use tantivy::query::{Bm25Weight, EnableScoring, Explanation, PhraseQuery, Query, Scorer, Weight};
use tantivy::schema::Field;
use tantivy::{DocId, DocSet, Score, SeekDangerResult, SegmentReader, TERMINATED};

use super::prior;

/// The parts of a ranked query (built by [`rank_with`](super::rank_with)).
pub struct RankQuery {
    pub(super) base: Box<dyn Query>,
    /// Matches the documents whose title or a redirect title is the query.
    pub(super) exact: Option<Box<dyn Query>>,
    pub(super) exact_boost: Score,
    pub(super) phrase: Option<PhraseQuery>,
    pub(super) phrase_boost: Score,
    /// The `links_in` fast field, when the prior is on.
    pub(super) links: Option<Field>,
    pub(super) prior_weight: Score,
    pub(super) prior_half: Score,
}

impl Clone for RankQuery {
    fn clone(&self) -> Self {
        RankQuery {
            base: self.base.box_clone(),
            exact: self.exact.as_ref().map(|q| q.box_clone()),
            exact_boost: self.exact_boost,
            phrase: self.phrase.clone(),
            phrase_boost: self.phrase_boost,
            links: self.links,
            prior_weight: self.prior_weight,
            prior_half: self.prior_half,
        }
    }
}

impl fmt::Debug for RankQuery {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "Rank(query={:?}, exact={:?}+{}, phrase={:?}*{}, prior={}/{})",
            self.base,
            self.exact,
            self.exact_boost,
            self.phrase,
            self.phrase_boost,
            self.prior_weight,
            self.prior_half
        )
    }
}

impl Query for RankQuery {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let base = self.base.weight(enable_scoring)?;
        let EnableScoring::Enabled {
            statistics_provider,
            ..
        } = enable_scoring
        else {
            // Without scores the signals change nothing: the base query's matches.
            return Ok(base);
        };
        // Membership only: the bonus is a constant.
        let unscored = match enable_scoring.searcher() {
            Some(searcher) => EnableScoring::disabled_from_searcher(searcher),
            None => EnableScoring::disabled_from_schema(enable_scoring.schema()),
        };
        let exact = match &self.exact {
            Some(query) => Some(query.weight(unscored)?),
            None => None,
        };
        let (phrase, phrase_max) = match &self.phrase {
            Some(query) => {
                let bm25 = Bm25Weight::for_terms(statistics_provider, &query.phrase_terms())?;
                (
                    Some(query.weight(enable_scoring)?),
                    self.phrase_boost * bm25.max_score(),
                )
            }
            None => (None, 0.0),
        };
        Ok(Box::new(RankWeight {
            base,
            exact,
            exact_boost: self.exact_boost,
            phrase,
            phrase_boost: self.phrase_boost,
            phrase_max,
            links: self
                .links
                .map(|f| enable_scoring.schema().get_field_name(f).to_string()),
            prior_weight: self.prior_weight,
            prior_half: self.prior_half,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a tantivy::Term, bool)) {
        self.base.query_terms(visitor);
        if let Some(exact) = &self.exact {
            exact.query_terms(visitor);
        }
        if let Some(phrase) = &self.phrase {
            phrase.query_terms(visitor);
        }
    }
}

struct RankWeight {
    base: Box<dyn Weight>,
    exact: Option<Box<dyn Weight>>,
    exact_boost: Score,
    phrase: Option<Box<dyn Weight>>,
    phrase_boost: Score,
    /// Highest score the phrase bonus can add (before the segment's boost).
    phrase_max: Score,
    links: Option<String>,
    prior_weight: Score,
    prior_half: Score,
}

type LinksColumn = std::sync::Arc<dyn tantivy::columnar::ColumnValues<u64>>;

impl RankWeight {
    /// The segment's link counts; a segment where no document has one has no column
    /// (documents built without the link pass): all zeros then.
    fn links(&self, reader: &SegmentReader) -> tantivy::Result<Option<LinksColumn>> {
        let Some(field) = &self.links else {
            return Ok(None);
        };
        let column = reader.fast_fields().column_opt::<u64>(field)?;
        Ok(column.map(|c| c.first_or_default_col(0)))
    }
}

impl Weight for RankWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let exact = match &self.exact {
            Some(weight) => Some(Membership::new(weight.scorer(reader, 1.0)?)),
            None => None,
        };
        let phrase = match &self.phrase {
            Some(weight) => Some(Membership::new(
                weight.scorer(reader, boost * self.phrase_boost)?,
            )),
            None => None,
        };
        Ok(Box::new(RankScorer {
            base: self.base.scorer(reader, boost)?,
            exact,
            exact_boost: self.exact_boost,
            phrase,
            phrase_max: boost * self.phrase_max,
            links: self.links(reader)?,
            prior_weight: self.prior_weight,
            prior_half: self.prior_half,
            scored: None,
        }))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let base = self.base.explain(reader, doc)?;
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Ok(base);
        }
        let total = scorer.score();
        let mut explanation = Explanation::new("query + exact + phrase + link prior", total);
        explanation.add_detail(base);
        if let Some(rank) = scorer.downcast_mut::<RankScorer>() {
            let (exact, phrase) = rank.bonuses(doc);
            explanation.add_const("exact title or redirect match", exact);
            explanation.add_const("phrase in the body", phrase);
            explanation.add_const("link prior", rank.prior_at(doc));
        }
        Ok(explanation)
    }

    fn count(&self, reader: &SegmentReader) -> tantivy::Result<u32> {
        self.base.count(reader)
    }
}

/// A scorer asked only "does `doc` match, and with what score", for increasing docs
/// (through `seek_danger`, which checks one document without scanning past it: a phrase
/// is checked only where the caller asks).
pub(super) struct Membership {
    scorer: Box<dyn Scorer>,
    /// No document before this one matches.
    next: DocId,
    /// The document the scorer was last found on (its state is valid there).
    found: Option<DocId>,
}

impl Membership {
    fn new(scorer: Box<dyn Scorer>) -> Membership {
        let next = scorer.doc();
        Membership {
            scorer,
            next,
            found: None,
        }
    }

    /// The score at `doc` if it matches. `doc` must not decrease between calls.
    fn score_at(&mut self, doc: DocId) -> Option<Score> {
        if self.next == TERMINATED || doc < self.next {
            return None;
        }
        if self.found != Some(doc) {
            match self.scorer.seek_danger(doc) {
                SeekDangerResult::Found => self.found = Some(doc),
                SeekDangerResult::SeekLowerBound(next) => {
                    self.next = next;
                    return None;
                }
            }
        }
        self.next = doc;
        Some(self.scorer.score())
    }
}

/// Scores the base query's matches with the signals added.
pub(super) struct RankScorer {
    pub(super) base: Box<dyn Scorer>,
    exact: Option<Membership>,
    exact_boost: Score,
    phrase: Option<Membership>,
    /// Highest phrase bonus in this segment.
    pub(super) phrase_max: Score,
    links: Option<LinksColumn>,
    /// The prior's ceiling (never reached).
    pub(super) prior_weight: Score,
    prior_half: Score,
    /// The last document scored and its score (a collector may ask twice).
    scored: Option<(DocId, Score)>,
}

impl RankScorer {
    /// The exact bonus of `doc` (cheap: a membership test on a few postings).
    pub(super) fn exact_at(&mut self, doc: DocId) -> Score {
        let found = self
            .exact
            .as_mut()
            .is_some_and(|exact| exact.score_at(doc).is_some());
        if found {
            self.exact_boost
        } else {
            0.0
        }
    }

    /// The phrase bonus of `doc` (reads positions).
    fn phrase_at(&mut self, doc: DocId) -> Score {
        match &mut self.phrase {
            Some(phrase) => phrase.score_at(doc).unwrap_or(0.0),
            None => 0.0,
        }
    }

    fn bonuses(&mut self, doc: DocId) -> (Score, Score) {
        (self.exact_at(doc), self.phrase_at(doc))
    }

    /// The link prior of `doc` (reads a fast field).
    pub(super) fn prior_at(&self, doc: DocId) -> Score {
        let links = self.links.as_ref().map_or(0, |c| c.get_val(doc));
        prior(links, self.prior_weight, self.prior_half)
    }

    /// The full score of the current document, given its base score and exact bonus
    /// (the one sum every path uses, so that every path gets the same floats).
    pub(super) fn finish(&mut self, doc: DocId, base: Score, exact: Score) -> Score {
        let phrase = self.phrase_at(doc);
        base + (exact + phrase) + self.prior_at(doc)
    }
}

impl DocSet for RankScorer {
    fn advance(&mut self) -> DocId {
        self.base.advance()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.base.seek(target)
    }

    fn doc(&self) -> DocId {
        self.base.doc()
    }

    fn size_hint(&self) -> u32 {
        self.base.size_hint()
    }

    fn cost(&self) -> u64 {
        self.base.cost()
    }
}

impl Scorer for RankScorer {
    fn score(&mut self) -> Score {
        let doc = self.base.doc();
        if let Some((scored, score)) = self.scored {
            if scored == doc {
                return score;
            }
        }
        let base = self.base.score();
        let exact = self.exact_at(doc);
        let score = self.finish(doc, base, exact);
        self.scored = Some((doc, score));
        score
    }
}
