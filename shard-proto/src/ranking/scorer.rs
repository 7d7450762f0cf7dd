//! The query every search runs, as one tantivy [`Query`]: the person's parsed query plus
//! the three signals of [`Ranking`](super::Ranking), scored per document as
//! `base + (exact + phrase) + prior`.
//!
//! One scorer holds all four parts (rather than a `BooleanQuery` wrapped in a prior) so
//! that [`TopRanked`](super::TopRanked) can bound what the signals may still add to a
//! document: the exact bonus is a cheap membership test, but the phrase bonus reads
//! positions and the prior a fast field (or a table, [`LinkColumns`]), so both are
//! computed only for documents whose bound can still enter the top k. [`Signals`] are
//! the cheap parts alone, which `TopRanked` adds inside tantivy's loop when there is no
//! phrase to bound. Any other collector gets the same scores through [`Scorer::score`].

use std::fmt;
use std::sync::Arc;

use tantivy::fastfield::FastFieldReaders;
use tantivy::index::SegmentId;
use tantivy::query::{Bm25Weight, EnableScoring, Explanation, PhraseQuery, Query, Scorer, Weight};
use tantivy::schema::Field;
use tantivy::{
    DocId, DocSet, Score, Searcher, SeekDangerResult, SegmentOrdinal, SegmentReader, TERMINATED,
};

use super::{prior, RANKING};
use crate::schema::WikiSchema;

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
        if !enable_scoring.is_scoring_enabled() {
            // Without scores the signals change nothing: the base query's matches.
            return self.base.weight(enable_scoring);
        }
        Ok(Box::new(self.rank_weight(enable_scoring)?))
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

impl RankQuery {
    /// The weight, as its own type (for [`TopRanked`](super::TopRanked)); with scoring
    /// disabled it has no signal weights (each signal then adds 0).
    pub(super) fn rank_weight(
        &self,
        enable_scoring: EnableScoring<'_>,
    ) -> tantivy::Result<RankWeight> {
        let base = self.base.weight(enable_scoring)?;
        let EnableScoring::Enabled {
            statistics_provider,
            ..
        } = enable_scoring
        else {
            return Err(tantivy::TantivyError::InvalidArgument(
                "a ranked weight needs scoring".into(),
            ));
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
        Ok(RankWeight {
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
        })
    }
}

pub(super) struct RankWeight {
    pub(super) base: Box<dyn Weight>,
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

/// One segment's `links_in` values.
pub type LinksColumn = Arc<dyn tantivy::columnar::ColumnValues<u64>>;

/// The segment's link counts; a segment where no document has one has no column
/// (documents built without the link pass): all zeros then.
fn open_links(fast_fields: &FastFieldReaders, field: &str) -> tantivy::Result<Option<LinksColumn>> {
    let column = fast_fields.column_opt::<u64>(field)?;
    Ok(column.map(|c| c.first_or_default_col(0)))
}

/// Every segment's link counts of one searcher, opened once and handed to each search
/// ([`TopRanked::with_links`](super::TopRanked::with_links)), with every document's prior
/// under [`RANKING`](super::RANKING) computed from them.
///
/// Why: opening a column decodes its block index, which `perf` on `wikisearch eval
/// --cost` showed costing as much per search as ranking a one-word query adds; and with
/// each document's prior known, a collector bounds a document by its own prior instead of
/// the prior's ceiling, so far fewer documents are scored in full. A serving replica
/// opens them with its searcher, as it does its `id` column (4 bytes per document).
#[derive(Default)]
pub struct LinkColumns {
    /// By segment ordinal.
    segments: Vec<SegmentLinks>,
}

/// One segment's link counts and priors.
#[derive(Clone)]
pub(super) struct SegmentLinks {
    /// The segment they were read from.
    segment: SegmentId,
    column: Option<LinksColumn>,
    /// Each document's prior under [`RANKING`](super::RANKING)'s weights.
    priors: Arc<[Score]>,
}

impl LinkColumns {
    /// Opens the `links_in` column of every segment of `searcher`.
    pub fn open(searcher: &Searcher, schema: &WikiSchema) -> tantivy::Result<LinkColumns> {
        let field = schema.schema.get_field_name(schema.fields.links_in);
        let ranking = &super::RANKING;
        let segments = searcher
            .segment_readers()
            .iter()
            .map(|segment| {
                let column = open_links(segment.fast_fields(), field)?;
                let priors = (0..segment.max_doc())
                    .map(|doc| {
                        let links = column.as_ref().map_or(0, |c| c.get_val(doc));
                        prior(links, ranking.prior_weight, ranking.prior_half)
                    })
                    .collect();
                Ok(SegmentLinks {
                    segment: segment.segment_id(),
                    column,
                    priors,
                })
            })
            .collect::<tantivy::Result<_>>()?;
        Ok(LinkColumns { segments })
    }

    /// What `reader`, segment `ordinal` of the search, holds (`None` if these columns
    /// were opened from another searcher, whose segments differ: then it opens its own).
    pub(super) fn segment(
        &self,
        ordinal: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> Option<&SegmentLinks> {
        (self.segments.get(ordinal as usize)).filter(|s| s.segment == reader.segment_id())
    }
}

impl RankWeight {
    /// Whether the phrase bonus is on (it reads positions: worth bounding per document).
    pub(super) fn has_phrase(&self) -> bool {
        self.phrase.is_some()
    }

    /// The exact bonus and the prior of one segment, the link counts not opened yet.
    pub(super) fn signals(&self, reader: &SegmentReader) -> tantivy::Result<Signals> {
        let exact = match &self.exact {
            Some(weight) => Some(Membership::new(weight.scorer(reader, 1.0)?)),
            None => None,
        };
        Ok(Signals {
            exact,
            exact_boost: self.exact_boost,
            links: match &self.links {
                Some(field) => Links::Unopened(reader.fast_fields().clone(), field.clone()),
                None => Links::Off,
            },
            prior_weight: self.prior_weight,
            prior_half: self.prior_half,
        })
    }

    pub(super) fn rank_scorer(
        &self,
        reader: &SegmentReader,
        boost: Score,
    ) -> tantivy::Result<RankScorer> {
        let phrase = match &self.phrase {
            Some(weight) => Some(Membership::new(
                weight.scorer(reader, boost * self.phrase_boost)?,
            )),
            None => None,
        };
        Ok(RankScorer {
            base: self.base.scorer(reader, boost)?,
            signals: self.signals(reader)?,
            phrase,
            phrase_max: boost * self.phrase_max,
            scored: None,
        })
    }
}

impl Weight for RankWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(Box::new(self.rank_scorer(reader, boost)?))
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
            rank.signals.open_links()?;
            let (exact, phrase) = rank.bonuses(doc);
            explanation.add_const("exact title or redirect match", exact);
            explanation.add_const("phrase in the body", phrase);
            explanation.add_const("link prior", rank.signals.prior_at(doc));
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

/// Where a scorer reads its documents' link counts.
enum Links {
    /// The prior is off.
    Off,
    /// Not opened yet: the segment's fast fields and the field's name. A collector holding
    /// the searcher's [`LinkColumns`] hands the column over instead.
    Unopened(FastFieldReaders, String),
    /// The segment's column (`None`: no document of the segment has links).
    Open(Option<LinksColumn>),
    /// Every document's prior, computed with this scorer's weights.
    Priors(Arc<[Score]>),
}

/// The signals of one segment that cost little per document: the exact bonus (a
/// membership test) and the link prior (a table or a fast-field read).
pub(super) struct Signals {
    exact: Option<Membership>,
    exact_boost: Score,
    links: Links,
    /// The prior's ceiling (never reached).
    pub(super) prior_weight: Score,
    prior_half: Score,
}

impl Signals {
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

    /// A lower bound of the next document with the exact bonus (`TERMINATED`: none left),
    /// so that a walk skips the test below it.
    pub(super) fn exact_next(&self) -> DocId {
        self.exact.as_ref().map_or(TERMINATED, |exact| exact.next)
    }

    /// Reads the link counts from `segment` (opened beforehand) instead of opening them,
    /// and the priors too when they were computed with these weights.
    pub(super) fn use_links(&mut self, segment: &SegmentLinks) {
        let same_weights =
            (self.prior_weight, self.prior_half) == (RANKING.prior_weight, RANKING.prior_half);
        self.links = match self.links {
            Links::Off => Links::Off,
            _ if same_weights => Links::Priors(Arc::clone(&segment.priors)),
            _ => Links::Open(segment.column.clone()),
        };
    }

    /// Opens the segment's link counts if nobody handed them over.
    pub(super) fn open_links(&mut self) -> tantivy::Result<()> {
        if let Links::Unopened(fast_fields, field) = &self.links {
            self.links = Links::Open(open_links(fast_fields, field)?);
        }
        Ok(())
    }

    /// Every document's prior, when they are known in advance.
    pub(super) fn priors(&self) -> Option<Arc<[Score]>> {
        match &self.links {
            Links::Priors(priors) => Some(Arc::clone(priors)),
            _ => None,
        }
    }

    /// The link prior of `doc` (a table or a fast field).
    pub(super) fn prior_at(&mut self, doc: DocId) -> Score {
        if let Err(error) = self.open_links() {
            // Only a collector that does not open them first gets here (`TopRanked` and
            // `explain` report the error); the text match still ranks.
            tracing::error!(%error, "link counts unreadable: scored without the link prior");
            self.links = Links::Open(None);
        }
        let links = match &self.links {
            Links::Priors(priors) => return priors.get(doc as usize).copied().unwrap_or(0.0),
            Links::Open(Some(column)) => column.get_val(doc),
            _ => 0,
        };
        prior(links, self.prior_weight, self.prior_half)
    }
}

/// Scores the base query's matches with the signals added.
pub(super) struct RankScorer {
    pub(super) base: Box<dyn Scorer>,
    pub(super) signals: Signals,
    phrase: Option<Membership>,
    /// Highest phrase bonus in this segment.
    pub(super) phrase_max: Score,
    /// The last document scored and its score (a collector may ask twice).
    scored: Option<(DocId, Score)>,
}

impl RankScorer {
    /// The phrase bonus of `doc` (reads positions).
    fn phrase_at(&mut self, doc: DocId) -> Score {
        match &mut self.phrase {
            Some(phrase) => phrase.score_at(doc).unwrap_or(0.0),
            None => 0.0,
        }
    }

    fn bonuses(&mut self, doc: DocId) -> (Score, Score) {
        (self.signals.exact_at(doc), self.phrase_at(doc))
    }

    /// The full score of the current document, given its base score and exact bonus
    /// (the one sum every path uses, so that every path gets the same floats).
    pub(super) fn finish(&mut self, doc: DocId, base: Score, exact: Score) -> Score {
        let phrase = self.phrase_at(doc);
        base + (exact + phrase) + self.signals.prior_at(doc)
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
        let exact = self.signals.exact_at(doc);
        let score = self.finish(doc, base, exact);
        self.scored = Some((doc, score));
        score
    }
}
