//! The in-process baseline (`wikisearch baseline in-process`): the same searches as the
//! cluster (parse, count, top-k, stored fields, snippet) run by `threads` OS threads
//! directly on one index, with no network and no serialization — the limit any server
//! around this index can approach. Reports the same figures as the load generator. The
//! same loop drives the shards of a store in one process ([`ShardedIndex`]), to measure what
//! sharding costs apart from distribution.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::queries::{kind_table, BenchQuery};
use super::report::{LoadReport, Outcome, Recorder, RunSetup};
use super::sharded_index::ShardedIndex;
use super::single_index::{ResultsPage, SearchError, SingleIndex};
use crate::error::{Error, Result};

/// What to run.
#[derive(Clone, Debug)]
pub struct InProcessSpec {
    pub queries: Vec<BenchQuery>,
    pub threads: usize,
    pub duration: Duration,
    pub max_requests: Option<u64>,
    pub size: usize,
}

/// What the loop searches: first pages of `size` hits.
pub trait PageSearch: Send + Sync + 'static {
    fn first_page(&self, query: &str, size: usize)
        -> std::result::Result<ResultsPage, SearchError>;
    /// Where the documents are, for the report.
    fn describe(&self) -> String;
}

impl PageSearch for SingleIndex {
    fn first_page(
        &self,
        query: &str,
        size: usize,
    ) -> std::result::Result<ResultsPage, SearchError> {
        self.search(query, 0, size)
    }

    fn describe(&self) -> String {
        self.dir().display().to_string()
    }
}

impl PageSearch for ShardedIndex {
    fn first_page(
        &self,
        query: &str,
        size: usize,
    ) -> std::result::Result<ResultsPage, SearchError> {
        self.search(query, size)
    }

    fn describe(&self) -> String {
        format!("shards of {}", self.store().display())
    }
}

/// Runs the searches on `threads` threads until the duration (or count) is reached.
pub fn run(index: Arc<dyn PageSearch>, spec: &InProcessSpec) -> Result<LoadReport> {
    if spec.queries.is_empty() || spec.threads == 0 || spec.duration.is_zero() {
        return Err(Error::Other(
            "the in-process baseline needs queries, at least one thread and a duration".into(),
        ));
    }
    let (kind_names, kind_ids) = kind_table(&spec.queries);
    let issued = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + spec.duration;
    let workers: Vec<_> = (0..spec.threads)
        .map(|_| {
            let worker = Worker {
                index: index.clone(),
                queries: spec.queries.clone(),
                kind_ids: kind_ids.clone(),
                kinds: kind_names.len(),
                issued: issued.clone(),
                max_requests: spec.max_requests,
                deadline,
                size: spec.size,
            };
            std::thread::Builder::new()
                .name("in-process-bench".into())
                .spawn(move || worker.run())
                .map_err(|e| Error::Other(format!("cannot start a bench thread: {e}")))
        })
        .collect::<Result<_>>()?;
    let mut total = Recorder::new(kind_names.len());
    for worker in workers {
        let recorder = worker
            .join()
            .map_err(|_| Error::Other("a bench thread panicked".into()))?;
        total.merge(&recorder);
    }
    let setup = RunSetup {
        target: format!("in-process:{}", index.describe()),
        mode: "in-process".into(),
        concurrency: Some(spec.threads),
        rate: None,
        duration_s: spec.duration.as_secs_f64(),
        size: spec.size as u32,
    };
    Ok(total.report(setup, &kind_names, start.elapsed()))
}

/// One thread's share of the run.
struct Worker {
    index: Arc<dyn PageSearch>,
    queries: Vec<BenchQuery>,
    kind_ids: Vec<usize>,
    kinds: usize,
    issued: Arc<AtomicU64>,
    max_requests: Option<u64>,
    deadline: Instant,
    size: usize,
}

impl Worker {
    fn run(self) -> Recorder {
        let mut recorder = Recorder::new(self.kinds);
        while Instant::now() < self.deadline {
            let n = self.issued.fetch_add(1, Ordering::Relaxed);
            if self.max_requests.is_some_and(|max| n >= max) {
                break;
            }
            let query = (n % self.queries.len() as u64) as usize;
            let started = Instant::now();
            let outcome = match self.index.first_page(&self.queries[query].text, self.size) {
                Ok(page) => Outcome::Answered {
                    partial: None,
                    empty: page.hits.is_empty(),
                },
                // A request the server would refuse (400) or fail (500): an error either way.
                Err(SearchError::BadRequest(_)) => Outcome::Status(400),
                Err(SearchError::Internal(message)) => Outcome::Transport(message),
            };
            recorder.record(self.kind_ids[query], started.elapsed(), &outcome);
        }
        recorder
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::single_index::tests::write_test_index;

    #[test]
    fn runs_every_query_and_counts_refusals_as_errors() {
        let tmp = tempfile::tempdir().unwrap();
        write_test_index(tmp.path());
        let index = Arc::new(SingleIndex::open(tmp.path()).unwrap());
        let queries =
            super::super::queries::parse("observatory\n\"los angeles\"\ntitle:(\n").unwrap();
        let spec = InProcessSpec {
            queries,
            threads: 2,
            duration: Duration::from_secs(30),
            max_requests: Some(30),
            size: 10,
        };
        let report = run(index, &spec).unwrap();
        assert_eq!((report.overall.requests, report.overall.errors), (30, 10));
        assert_eq!(report.kinds["phrase"].requests, 10);
        assert!(report.overall.latency_ms.p50 > 0.0);
    }
}
