//! When a node stops working on a call: [`Stop`] joins the call's deadline (its
//! `budget_millis`, counted from arrival) and a cancellation flag the server raises when the
//! caller hangs up (its connection closed, or the front-end dropped a hedge loser or a
//! timed-out attempt: hyper then drops the handler, and [`CancelOnDrop`] fires).
//!
//! Work checks it before queueing, before each shard and document, and inside tantivy's
//! search loop every [`CHECK_EVERY`] matching documents and between segments: through
//! [`Stoppable`], a collector wrapper, when counting, and through
//! [`TopRanked`](shard_proto::ranking::TopRanked)'s check ([`Stop::check_collecting`]) when
//! ranking. A stopped shard fails with the reason; nobody reads the answer anyway.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::query::Weight;
use tantivy::{DocSet, Score, SegmentOrdinal, SegmentReader, TantivyError, TERMINATED};

/// Matching documents scored between two checks: a check costs a clock read (~20 ns), a
/// document at least ~50 ns, so this keeps the overhead far under 1% while a stop is
/// noticed within about a millisecond of scoring.
pub use shard_proto::ranking::CHECK_EVERY;

/// Why work stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Stopped {
    #[error("deadline exceeded")]
    Deadline,
    #[error("cancelled: the caller went away")]
    Cancelled,
}

/// The deadline and cancellation flag of one call.
#[derive(Clone, Debug)]
pub struct Stop {
    deadline: Option<Instant>,
    cancelled: Arc<AtomicBool>,
}

impl Stop {
    /// A call that arrived at `arrived` with `budget_millis` to run, and the guard that
    /// cancels it when dropped.
    pub fn for_call(arrived: Instant, budget_millis: u32) -> (Stop, CancelOnDrop) {
        let stop = Stop {
            deadline: Some(arrived + Duration::from_millis(u64::from(budget_millis))),
            cancelled: Arc::new(AtomicBool::new(false)),
        };
        let guard = CancelOnDrop(Arc::clone(&stop.cancelled));
        (stop, guard)
    }

    /// No deadline and no caller to lose: for in-process use (baselines, tests).
    pub fn never() -> Stop {
        Stop {
            deadline: None,
            cancelled: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether work should stop now, and why.
    pub fn check(&self) -> Result<(), Stopped> {
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(Stopped::Cancelled);
        }
        match self.deadline {
            Some(deadline) if Instant::now() >= deadline => Err(Stopped::Deadline),
            _ => Ok(()),
        }
    }

    /// [`Stop::check`] as the error a collector gives up with.
    pub fn check_collecting(&self) -> tantivy::Result<()> {
        self.check().map_err(stopped)
    }

    /// The deadline, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

/// Raises its call's cancellation flag when dropped: held by the request handler, which
/// hyper drops when the client hangs up.
pub struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A collector that runs `inner` but gives up (with an error naming the reason) once `stop`
/// says so, checked between segments and every [`CHECK_EVERY`] documents.
pub struct Stoppable<'a, C> {
    pub inner: C,
    pub stop: &'a Stop,
}

fn stopped(reason: Stopped) -> TantivyError {
    TantivyError::InternalError(reason.to_string())
}

impl<C: Collector> Collector for Stoppable<'_, C> {
    type Fruit = C::Fruit;
    type Child = C::Child;

    fn for_segment(
        &self,
        segment_local_id: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        self.inner.for_segment(segment_local_id, segment)
    }

    fn requires_scoring(&self) -> bool {
        self.inner.requires_scoring()
    }

    fn merge_fruits(
        &self,
        fruits: Vec<<Self::Child as SegmentCollector>::Fruit>,
    ) -> tantivy::Result<Self::Fruit> {
        self.inner.merge_fruits(fruits)
    }

    /// tantivy's own loop (`Weight::for_each`) cannot be interrupted, so this walks the
    /// scorer itself; the `(TopDocs, Count)` pair it wraps scores every match either way.
    fn collect_segment(
        &self,
        weight: &dyn Weight,
        segment_ord: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<<Self::Child as SegmentCollector>::Fruit> {
        self.stop.check().map_err(stopped)?;
        let mut child = self.inner.for_segment(segment_ord, reader)?;
        let scoring = self.inner.requires_scoring();
        let alive = reader.alive_bitset();
        let mut scorer = weight.scorer(reader, 1.0)?;
        let mut since_check = 0;
        let mut doc = scorer.doc();
        while doc != TERMINATED {
            if alive.is_none_or(|bits| bits.is_alive(doc)) {
                let score: Score = if scoring { scorer.score() } else { 0.0 };
                child.collect(doc, score);
            }
            since_check += 1;
            if since_check == CHECK_EVERY {
                since_check = 0;
                self.stop.check().map_err(stopped)?;
            }
            doc = scorer.advance();
        }
        Ok(child.harvest())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use tantivy::query::AllQuery;
    use tantivy::schema::{Schema, STORED, TEXT};
    use tantivy::{doc, DocId, Index};

    use super::*;

    /// Counts the documents it is shown and cancels `stop` at the `cancel_at`-th.
    struct CancelAt {
        cancel_at: u32,
        stop: Stop,
        seen: Arc<AtomicU32>,
    }

    struct CancelAtSegment {
        cancel_at: u32,
        stop: Stop,
        seen: Arc<AtomicU32>,
    }

    impl Collector for CancelAt {
        type Fruit = ();
        type Child = CancelAtSegment;

        fn for_segment(
            &self,
            _: SegmentOrdinal,
            _: &SegmentReader,
        ) -> tantivy::Result<Self::Child> {
            Ok(CancelAtSegment {
                cancel_at: self.cancel_at,
                stop: self.stop.clone(),
                seen: Arc::clone(&self.seen),
            })
        }

        fn requires_scoring(&self) -> bool {
            false
        }

        fn merge_fruits(&self, _: Vec<()>) -> tantivy::Result<()> {
            Ok(())
        }
    }

    impl SegmentCollector for CancelAtSegment {
        type Fruit = ();

        fn collect(&mut self, _: DocId, _: Score) {
            if self.seen.fetch_add(1, Ordering::Relaxed) + 1 == self.cancel_at {
                self.stop.cancelled.store(true, Ordering::Relaxed);
            }
        }

        fn harvest(self) {}
    }

    #[test]
    fn a_search_stops_within_one_check_of_its_cancellation() {
        let mut builder = Schema::builder();
        let text = builder.add_text_field("text", TEXT | STORED);
        let index = Index::create_in_ram(builder.build());
        let mut writer = index.writer_with_num_threads(1, 15_000_000).unwrap();
        let docs = 50_000u32;
        for i in 0..docs {
            writer
                .add_document(doc!(text => format!("doc {i}")))
                .unwrap();
        }
        writer.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        let run = |stop: Stop, cancel_at: u32| {
            let seen = Arc::new(AtomicU32::new(0));
            let inner = CancelAt {
                cancel_at,
                stop: stop.clone(),
                seen: Arc::clone(&seen),
            };
            let result = searcher.search(&AllQuery, &Stoppable { inner, stop: &stop });
            (result, seen.load(Ordering::Relaxed))
        };
        let (finished, seen) = run(Stop::never(), 0);
        assert!(finished.is_ok());
        assert_eq!(seen, docs, "without a stop every document is seen");
        let (stop, _guard) = Stop::for_call(Instant::now(), 60_000);
        let (stopped, seen) = run(stop, 10_000);
        let error = stopped.unwrap_err().to_string();
        assert!(error.contains("cancelled"), "{error}");
        assert!(
            (10_000..=10_000 + CHECK_EVERY).contains(&seen),
            "stopped after {seen} documents"
        );
    }

    #[test]
    fn a_spent_budget_stops_at_once_and_a_dropped_guard_cancels() {
        let (stop, _guard) = Stop::for_call(Instant::now(), 0);
        assert_eq!(stop.check(), Err(Stopped::Deadline));
        let (stop, guard) = Stop::for_call(Instant::now(), 60_000);
        assert_eq!(stop.check(), Ok(()));
        drop(guard);
        assert_eq!(stop.check(), Err(Stopped::Cancelled));
        assert_eq!(Stop::never().check(), Ok(()));
    }
}
