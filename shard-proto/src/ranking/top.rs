//! [`TopRanked`]: the top k documents and the exact hit count in one pass, as
//! `(TopDocs, Count)` would return them, but computing the phrase bonus and the link
//! prior only for documents that can still enter the top k.
//!
//! For each match of a [`RankScorer`] the base score and the exact bonus are known
//! cheaply; the phrase bonus is at most `phrase_max` and the prior below `prior_weight`.
//! A document whose `base + (exact + phrase_max) + prior_weight` does not beat the k-th
//! best score so far cannot enter (float addition is monotonic, so the bound holds after
//! rounding too), and is only counted. Every document that can enter is scored in full,
//! so the result is exactly the unpruned one: same documents, same scores, ties broken by
//! document address as `TopDocs` does. Measured in README, "Relevance" (cost).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU32, Ordering as Atomic};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::query::{Scorer, Weight};
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader, TERMINATED};

use super::scorer::RankScorer;

/// Documents walked between two calls of the interruption check.
pub const CHECK_EVERY: u32 = 4096;

/// What an interrupted search fails with.
pub type Check<'a> = &'a (dyn Fn() -> tantivy::Result<()> + Sync);

/// Collects `(top k by score, hit count)`; `k` must be at least 1.
pub struct TopRanked<'a> {
    k: usize,
    check: Option<Check<'a>>,
    bar: Option<&'a SharedBar>,
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
        }
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
            Some(ranked) => self.walk_ranked(ranked, reader, &mut heap)?,
            None => self.walk(scorer.as_mut(), reader, &mut heap)?,
        };
        let top = heap
            .into_sorted()
            .into_iter()
            .map(|(score, doc)| (score, DocAddress::new(segment_ord, doc)))
            .collect();
        Ok(SegmentTop { top, count })
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
    fn walk_ranked(
        &self,
        scorer: &mut RankScorer,
        reader: &SegmentReader,
        heap: &mut Heap,
    ) -> tantivy::Result<usize> {
        let alive = reader.alive_bitset();
        let (phrase_max, prior_max) = (scorer.phrase_max, scorer.prior_weight);
        let (mut count, mut since_check) = (0, 0);
        let mut doc = scorer.base.doc();
        while doc != TERMINATED {
            if alive.is_none_or(|bits| bits.is_alive(doc)) {
                count += 1;
                let base = scorer.base.score();
                let exact = scorer.exact_at(doc);
                let bound = base + (exact + phrase_max) + prior_max;
                if heap.may_enter(bound) && self.bar.is_none_or(|bar| bound >= bar.get()) {
                    let score = scorer.finish(doc, base, exact);
                    heap.offer(score, doc);
                    if let (Some(bar), Some(worst)) = (self.bar, heap.full_worst()) {
                        bar.raise(worst);
                    }
                }
            }
            since_check += 1;
            if since_check == CHECK_EVERY {
                since_check = 0;
                self.check()?;
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

    /// Whether a document scoring at most `bound` could enter. Docs arrive in increasing
    /// order, so one that ties the worst kept loses the tie.
    fn may_enter(&self, bound: Score) -> bool {
        match self.entries.peek() {
            Some(worst) if self.entries.len() >= self.k => bound > worst.0,
            _ => true,
        }
    }

    fn offer(&mut self, score: Score, doc: DocId) {
        if self.may_enter(score) {
            self.entries.push(Entry(score, doc));
            if self.entries.len() > self.k {
                self.entries.pop();
            }
        }
    }

    /// The worst kept score once k are kept.
    fn full_worst(&self) -> Option<Score> {
        match self.entries.peek() {
            Some(worst) if self.entries.len() >= self.k => Some(worst.0),
            _ => None,
        }
    }

    fn into_sorted(self) -> Vec<(Score, DocId)> {
        let mut top: Vec<(Score, DocId)> = self.entries.into_iter().map(|e| (e.0, e.1)).collect();
        top.sort_by(better);
        top
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
