//! Helpers shared by the test modules: sample paths and whole-input scans.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use corpus::{open, OpenOptions, PageEvent, ScanStats, Split};

/// A file of the shared sample corpus.
pub fn sample(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus")).join(name)
}

/// Scans a whole input or slice; panics (test failure) on a fatal error.
pub fn scan(path: &Path, opts: &OpenOptions) -> ScanStats {
    let mut stats = ScanStats::default();
    for event in open(path, opts).unwrap_or_else(|e| panic!("open {}: {e}", path.display())) {
        let event = event.unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        stats.record(&event);
    }
    stats
}

/// Ids of every event (pages and skipped pages with an id) of one slice, in order.
pub fn slice_ids(path: &Path, split: Split, index: Option<&Path>) -> Vec<u64> {
    let opts = OpenOptions {
        split,
        index: index.map(Path::to_path_buf),
        threads: 2,
    };
    let reader = open(path, &opts).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    reader
        .map(
            |event| match event.unwrap_or_else(|e| panic!("read {}: {e}", path.display())) {
                PageEvent::Page(page) => page.id,
                PageEvent::Skipped(skip) => skip.page_id.expect("sample pages all have ids"),
            },
        )
        .collect()
}

/// Asserts that for K in 1..=5 the K slices partition the whole input's ids exactly.
pub fn assert_partitions(path: &Path, index: Option<&Path>) {
    let whole = slice_ids(path, Split::whole(), index);
    assert!(!whole.is_empty(), "{} yields no pages", path.display());
    let expected: BTreeSet<u64> = whole.iter().copied().collect();
    assert_eq!(
        expected.len(),
        whole.len(),
        "ids are unique in {}",
        path.display()
    );
    for nodes in 1..=5 {
        let mut seen = BTreeSet::new();
        let mut total = 0;
        for node in 0..nodes {
            let ids = slice_ids(path, Split::new(node, nodes).unwrap(), index);
            total += ids.len();
            for id in ids {
                assert!(
                    seen.insert(id),
                    "page {id} in two slices (K={nodes}) of {}",
                    path.display()
                );
            }
        }
        assert_eq!(
            total,
            whole.len(),
            "K={nodes}: slices of {} hold {total} pages",
            path.display()
        );
        assert_eq!(
            seen,
            expected,
            "K={nodes}: slices of {} differ from the whole",
            path.display()
        );
    }
}

/// A unique temporary directory for one test.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}
