//! [`TopRanked`]: the top k documents and the exact hit count in one pass, as
//! `(TopDocs, Count)` would return them, but computing the phrase bonus and the link
//! prior only for documents that can still enter the top k.
//!
//! For each match of a [`RankScorer`] the base score and the exact bonus are known
//! cheaply; the phrase bonus is at most `phrase_max`, and the prior is the document's own
//! when the searcher's priors were computed beforehand ([`LinkColumns`]), else below
//! `prior_weight`. A document whose `base + (exact + phrase_max) + prior bound` does not
//! beat the k-th best score so far cannot enter (float addition is monotonic, so the
//! bound holds after rounding too), and is only counted. Every document that can enter is
//! scored in full, so the result is exactly the unpruned one: same documents, same
//! scores, ties broken by document address as `TopDocs` does.
//!
//! Without the phrase bonus (the default [`RANKING`](super::RANKING)) a document's full
//! score costs no more than its bound, so [`TopRanked::search`] scores every match inside
//! tantivy's own loop over the base query instead (`Weight::for_each`, where a union of
//! terms is walked without a virtual call per document). Measured in README,
//! "Relevance" (cost).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering as Atomic};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::query::{Bm25StatisticsProvider, EnableScoring, Query, Scorer, Weight};
use tantivy::{DocAddress, DocId, Score, Searcher, SegmentOrdinal, SegmentReader, TERMINATED};

use super::scorer::{LinkColumns, RankQuery, RankScorer, RankWeight, Signals};

/// Documents walked between two calls of the interruption check.
pub const CHECK_EVERY: u32 = 4096;

/// What an interrupted search fails with.
pub type Check<'a> = &'a (dyn Fn() -> tantivy::Result<()> + Sync);

/// Collects `(top k by score, hit count)`; `k` must be at least 1.
pub struct TopRanked<'a> {
    k: usize,
    check: Option<Check<'a>>,
    bar: Option<&'a SharedBar>,
    links: Option<&'a LinkColumns>,
}

/// A score that k documents of the same search are known to reach, shared by the
/// collectors of the shards one node searches for one request (scores are global, so
/// they compare across shards, as Lucene's shared minimum competitive score across
/// slices). A document whose bound stays below it cannot be in the search's top k, so
/// its phrase and prior are skipped; one that ties it is still scored (the front-end
/// breaks ties by page id).
#[derive(Debug)]
pub struct SharedBar(AtomicU32);

impl Default for SharedBar {
    fn default() -> Self {
        SharedBar(AtomicU32::new(Score::NEG_INFINITY.to_bits()))
    }
}

impl SharedBar {
    fn get(&self) -> Score {
        Score::from_bits(self.0.load(Atomic::Relaxed))
    }

    /// Raises the bar to `score` if it is higher.
    fn raise(&self, score: Score) {
        let mut current = self.0.load(Atomic::Relaxed);
        while score > Score::from_bits(current) {
            match self.0.compare_exchange_weak(
                current,
                score.to_bits(),
                Atomic::Relaxed,
                Atomic::Relaxed,
            ) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }
}

impl<'a> TopRanked<'a> {
    pub fn new(k: usize) -> TopRanked<'a> {
        TopRanked {
            k: k.max(1),
            check: None,
            bar: None,
            links: None,
        }
    }

    /// Reads the link prior from `links`, the searcher's columns opened beforehand
    /// (without it each segment's column is opened per search).
    pub fn with_links(mut self, links: &'a LinkColumns) -> TopRanked<'a> {
        self.links = Some(links);
        self
    }

    /// Shares `bar` with the other collectors of the same search (see [`SharedBar`]):
    /// they return the same top k over all of them, each may return fewer of its own.
    pub fn sharing(mut self, bar: &'a SharedBar) -> TopRanked<'a> {
        self.bar = Some(bar);
        self
    }

    /// Calls `check` between segments and every [`CHECK_EVERY`] documents, giving up with
    /// its error (a deadline, a cancelled request).
    pub fn interrupted_by(mut self, check: Check<'a>) -> TopRanked<'a> {
        self.check = Some(check);
        self
    }

    fn check(&self) -> tantivy::Result<()> {
        self.check.map_or(Ok(()), |check| check())
    }
}

/// One segment's best documents and its count.
pub struct SegmentTop {
    top: Vec<(Score, DocAddress)>,
    count: usize,
}

impl Collector for TopRanked<'_> {
    type Fruit = (Vec<(Score, DocAddress)>, usize);
    type Child = Unused;

    fn for_segment(&self, _: SegmentOrdinal, _: &SegmentReader) -> tantivy::Result<Unused> {
        Ok(Unused)
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, segments: Vec<SegmentTop>) -> tantivy::Result<Self::Fruit> {
        let count = segments.iter().map(|s| s.count).sum();
        let mut top: Vec<(Score, DocAddress)> = segments.into_iter().flat_map(|s| s.top).collect();
        top.sort_by(better);
        top.truncate(self.k);
        Ok((top, count))
    }

    fn collect_segment(
        &self,
        weight: &dyn Weight,
        segment_ord: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentTop> {
        self.check()?;
        let mut scorer = weight.scorer(reader, 1.0)?;
        let mut heap = Heap::new(self.k);
        let count = match scorer.downcast_mut::<RankScorer>() {
            Some(ranked) => {
                self.hand_links(&mut ranked.signals, segment_ord, reader)?;
                self.walk_ranked(ranked, reader, &mut heap)?
            }
            None => self.walk(scorer.as_mut(), reader, &mut heap)?,
        };
        Ok(heap.into_segment_top(segment_ord, count))
    }
}

impl TopRanked<'_> {
    /// The top k of `query` on `searcher` and its hit count, scored with `stats` (the
    /// global statistics; else the searcher's own).
    ///
    /// A [`RankQuery`] is collected here rather than through tantivy's `Collector` calls,
    /// which only hand over a `dyn Weight`: with its weight's type known, a ranking without
    /// the phrase bonus walks its base query through tantivy's own loop
    /// ([`Self::walk_signals`]), where a union of terms is walked without a virtual call
    /// per document. Any other query goes through tantivy's search with this collector.
    pub fn search(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
        stats: Option<&dyn Bm25StatisticsProvider>,
    ) -> tantivy::Result<(Vec<(Score, DocAddress)>, usize)> {
        let Some(ranked) = query.downcast_ref::<RankQuery>() else {
            return match stats {
                Some(stats) => searcher.search_with_statistics_provider(query, self, stats),
                None => searcher.search(query, self),
            };
        };
        let scoring = match stats {
            Some(stats) => EnableScoring::enabled_from_statistics_provider(stats, searcher),
            None => EnableScoring::enabled_from_searcher(searcher),
        };
        let weight = ranked.rank_weight(scoring)?;
        let segments = (searcher.segment_readers().iter().enumerate())
            .map(|(ord, reader)| self.collect_ranked(&weight, ord as SegmentOrdinal, reader))
            .collect::<tantivy::Result<Vec<_>>>()?;
        self.merge_fruits(segments)
    }

    fn collect_ranked(
        &self,
        weight: &RankWeight,
        segment_ord: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentTop> {
        self.check()?;
        let mut heap = Heap::new(self.k);
        // The phrase is worth bounding; and where a panic aborts (a build with
        // `panic = "abort"`, such as a fuzzer's), an interruption cannot unwind out of
        // tantivy's loop, so the walk that checks in its own loop is used.
        let count = if weight.has_phrase() || cfg!(panic = "abort") {
            let mut scorer = weight.rank_scorer(reader, 1.0)?;
            self.hand_links(&mut scorer.signals, segment_ord, reader)?;
            self.walk_ranked(&mut scorer, reader, &mut heap)?
        } else {
            let mut signals = weight.signals(reader)?;
            self.hand_links(&mut signals, segment_ord, reader)?;
            self.walk_signals(weight, &mut signals, reader, &mut heap)?
        };
        Ok(heap.into_segment_top(segment_ord, count))
    }

    /// Gives `signals` the segment's link counts opened beforehand, or opens them.
    fn hand_links(
        &self,
        signals: &mut Signals,
        segment_ord: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<()> {
        match self
            .links
            .and_then(|links| links.segment(segment_ord, reader))
        {
            Some(segment) => signals.use_links(segment),
            None => signals.open_links()?,
        }
        Ok(())
    }

    /// A ranking without the phrase bonus: every match gets its full score, `base + exact
    /// + prior`, as cheap as its bound would be, inside tantivy's own loop over the base
    /// query (`Weight::for_each`: a union of terms walked without a virtual call per
    /// document). That loop cannot be stopped, so an interruption unwinds out of it (see
    /// [`Interrupted`]).
    fn walk_signals(
        &self,
        weight: &RankWeight,
        signals: &mut Signals,
        reader: &SegmentReader,
        heap: &mut Heap,
    ) -> tantivy::Result<usize> {
        // The priors computed when the searcher's link counts were opened: one load per
        // document (else each read from the column and computed).
        let priors = signals.priors();
        let mut walk = SignalWalk {
            exact_next: signals.exact_next(),
            since_check: 0,
            count: 0,
            worst: heap.worst(),
            bar_seen: self.bar(),
            priors: priors.as_deref(),
            alive: reader.alive_bitset(),
            signals,
            heap,
            top: self,
        };
        let mut collect = |doc: DocId, base: Score| walk.collect(doc, base);
        Interrupted::catch(|| weight.base.for_each(reader, &mut collect))?;
        Ok(walk.count)
    }

    /// The shared bar as it is now (-∞ without one).
    fn bar(&self) -> Score {
        self.bar.map_or(Score::NEG_INFINITY, SharedBar::get)
    }
}

/// The state of [`TopRanked::walk_signals`], called once per match from tantivy's loop:
/// what every document needs is in its fields, what few documents need is out of line.
struct SignalWalk<'w, 'c> {
    /// No document before it has the exact bonus.
    exact_next: DocId,
    since_check: u32,
    count: usize,
    /// The heap's worst kept score (-∞ until full): a document must beat it.
    worst: Score,
    /// The shared bar as last read (a stale bar is only lower: it bars less, never wrongly).
    bar_seen: Score,
    priors: Option<&'w [Score]>,
    alive: Option<&'w tantivy::fastfield::AliveBitSet>,
    signals: &'w mut Signals,
    heap: &'w mut Heap,
    top: &'w TopRanked<'c>,
}

impl SignalWalk<'_, '_> {
    #[inline]
    fn collect(&mut self, doc: DocId, base: Score) {
        self.since_check += 1;
        if self.since_check == CHECK_EVERY {
            self.tick();
        }
        if !self.alive.is_none_or(|bits| bits.is_alive(doc)) {
            return;
        }
        self.count += 1;
        let exact = if doc < self.exact_next {
            0.0
        } else {
            self.exact_at(doc)
        };
        let prior = match self.priors {
            Some(priors) => priors.get(doc as usize).copied().unwrap_or(0.0),
            None => self.signals.prior_at(doc),
        };
        // `RankScorer::finish`'s sum with a phrase bonus of 0: the same floats.
        let score = base + exact + prior;
        // Ties with the worst kept lose (documents come in increasing order); ties with
        // the bar are kept (the front-end breaks them by page id).
        if score > self.worst && score >= self.bar_seen {
            self.offer(score, doc);
        }
    }

    /// Every [`CHECK_EVERY`] documents: the interruption check and a fresh bar.
    #[cold]
    fn tick(&mut self) {
        self.since_check = 0;
        if let Err(error) = self.top.check() {
            std::panic::resume_unwind(Box::new(Interrupted(error)));
        }
        self.bar_seen = self.top.bar();
    }

    #[inline(never)]
    fn exact_at(&mut self, doc: DocId) -> Score {
        let exact = self.signals.exact_at(doc);
        self.exact_next = self.signals.exact_next();
        exact
    }

    #[inline(never)]
    fn offer(&mut self, score: Score, doc: DocId) {
        self.bar_seen = self.top.bar();
        if score >= self.bar_seen && self.heap.offer(score, doc) {
            self.worst = self.heap.worst();
            if let (Some(bar), true) = (self.top.bar, self.heap.is_full()) {
                bar.raise(self.worst);
            }
        }
    }
}

impl TopRanked<'_> {
    /// Any scorer: every match scored.
    fn walk(
        &self,
        scorer: &mut dyn Scorer,
        reader: &SegmentReader,
        heap: &mut Heap,
    ) -> tantivy::Result<usize> {
        let alive = reader.alive_bitset();
        let (mut count, mut since_check) = (0, 0);
        let mut doc = scorer.doc();
        while doc != TERMINATED {
            if alive.is_none_or(|bits| bits.is_alive(doc)) {
                count += 1;
                heap.offer(scorer.score(), doc);
            }
            since_check += 1;
            if since_check == CHECK_EVERY {
                since_check = 0;
                self.check()?;
            }
            doc = scorer.advance();
        }
        Ok(count)
    }

    /// A ranked query: the phrase and the prior only where the bound can still win.
    ///
    /// The loop keeps what it tests per document in locals (the heap's worst kept score,
    /// the shared bar as last read, the next exact match) so that a document that cannot
    /// enter costs its base score, two additions and two comparisons.
    fn walk_ranked(
        &self,
        scorer: &mut RankScorer,
        reader: &SegmentReader,
        heap: &mut Heap,
    ) -> tantivy::Result<usize> {
        let alive = reader.alive_bitset();
        let (phrase_max, prior_max) = (scorer.phrase_max, scorer.signals.prior_weight);
        let bar = || self.bar.map_or(Score::NEG_INFINITY, SharedBar::get);
        // A stale bar is only lower, so it bars less but never wrongly.
        let (mut worst, mut bar_seen) = (heap.worst(), bar());
        let mut exact_next = scorer.signals.exact_next();
        // Each document's own prior when known (a bound without slack), else the ceiling.
        let priors = scorer.signals.priors();
        let prior_bound = |doc: DocId| match &priors {
            Some(priors) => priors.get(doc as usize).copied().unwrap_or(prior_max),
            None => prior_max,
        };
        let (mut count, mut since_check) = (0, 0);
        let mut doc = scorer.base.doc();
        while doc != TERMINATED {
            if alive.is_none_or(|bits| bits.is_alive(doc)) {
                count += 1;
                let base = scorer.base.score();
                let exact = if doc < exact_next {
                    0.0
                } else {
                    let exact = scorer.signals.exact_at(doc);
                    exact_next = scorer.signals.exact_next();
                    exact
                };
                let bound = base + (exact + phrase_max) + prior_bound(doc);
                // Ties with the worst kept lose (documents come in increasing order);
                // ties with the bar are scored (the front-end breaks them by page id).
                if bound > worst && bound >= bar_seen {
                    bar_seen = bar();
                    if bound >= bar_seen && heap.offer(scorer.finish(doc, base, exact), doc) {
                        worst = heap.worst();
                        if let (Some(bar), true) = (self.bar, heap.is_full()) {
                            bar.raise(worst);
                        }
                    }
                }
            }
            since_check += 1;
            if since_check == CHECK_EVERY {
                since_check = 0;
                self.check()?;
                bar_seen = bar();
            }
            doc = scorer.base.advance();
        }
        Ok(count)
    }
}

/// Best first: higher score, then lower address (as `TopDocs`).
fn better<D: Ord>(a: &(Score, D), b: &(Score, D)) -> Ordering {
    b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1))
}

/// An entry of the heap, ordered so that the worst kept document is on top.
struct Entry(Score, DocId);

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    /// "Greater" is worse: lower score, then higher doc.
    fn cmp(&self, other: &Self) -> Ordering {
        better(&(self.0, self.1), &(other.0, other.1))
    }
}

/// The k best `(score, doc)` of one segment, docs offered in increasing order.
struct Heap {
    k: usize,
    entries: BinaryHeap<Entry>,
}

impl Heap {
    fn new(k: usize) -> Heap {
        Heap {
            k,
            entries: BinaryHeap::with_capacity(k + 1),
        }
    }

    /// The score a document must beat to enter: the worst kept once k are kept (docs
    /// arrive in increasing order, so one that ties it loses the tie), else -∞.
    fn worst(&self) -> Score {
        match self.entries.peek() {
            Some(worst) if self.is_full() => worst.0,
            _ => Score::NEG_INFINITY,
        }
    }

    fn is_full(&self) -> bool {
        self.entries.len() >= self.k
    }

    /// Keeps `doc` if it beats the worst kept; returns whether it did.
    fn offer(&mut self, score: Score, doc: DocId) -> bool {
        if self.is_full() && score <= self.worst() {
            return false;
        }
        self.entries.push(Entry(score, doc));
        if self.entries.len() > self.k {
            self.entries.pop();
        }
        true
    }

    fn into_segment_top(self, segment_ord: SegmentOrdinal, count: usize) -> SegmentTop {
        let top = (self.into_sorted().into_iter())
            .map(|(score, doc)| (score, DocAddress::new(segment_ord, doc)))
            .collect();
        SegmentTop { top, count }
    }

    fn into_sorted(self) -> Vec<(Score, DocId)> {
        let mut top: Vec<(Score, DocId)> = self.entries.into_iter().map(|e| (e.0, e.1)).collect();
        top.sort_by(better);
        top
    }
}

/// An interruption check's error, carried out of tantivy's `Weight::for_each` (which
/// has no way to stop) by unwinding: `resume_unwind` runs no panic hook, and only this
/// payload is caught, any real panic goes on. The walk's state is all local and dropped.
struct Interrupted(tantivy::TantivyError);

impl Interrupted {
    /// Runs `walk`, turning an [`Interrupted`] unwind into its error.
    fn catch(walk: impl FnOnce() -> tantivy::Result<()>) -> tantivy::Result<()> {
        match std::panic::catch_unwind(AssertUnwindSafe(walk)) {
            Ok(result) => result,
            Err(payload) => match payload.downcast::<Interrupted>() {
                Ok(interrupted) => Err(interrupted.0),
                Err(panic) => std::panic::resume_unwind(panic),
            },
        }
    }
}

/// [`TopRanked`] walks each segment itself; tantivy still asks for a child collector.
pub struct Unused;

impl SegmentCollector for Unused {
    type Fruit = SegmentTop;

    fn collect(&mut self, _: DocId, _: Score) {}

    fn harvest(self) -> SegmentTop {
        SegmentTop {
            top: Vec::new(),
            count: 0,
        }
    }
}
