//! Counters for `indexer scan`: pages by kind, skipped pages by reason, bytes and speed.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::document::{classify, PageKind};
use crate::reader::PageEvent;

/// What a scan saw. `pages` counts every `<page>` read, skipped ones included.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ScanStats {
    pub pages: u64,
    pub articles: u64,
    pub redirects: u64,
    pub other_namespaces: u64,
    /// Skip reason (`SkipReason::as_str`) → count.
    pub skipped: BTreeMap<String, u64>,
    pub bytes_read: u64,
    pub seconds: f64,
    pub mb_per_s: f64,
}

impl ScanStats {
    /// Counts one event.
    pub fn record(&mut self, ev: &PageEvent) {
        self.pages += 1;
        match ev {
            PageEvent::Page(page) => match classify(page) {
                PageKind::Article => self.articles += 1,
                PageKind::Redirect => self.redirects += 1,
                PageKind::OtherNamespace => self.other_namespaces += 1,
            },
            PageEvent::Skipped(skip) => {
                *self
                    .skipped
                    .entry(skip.reason.as_str().to_string())
                    .or_default() += 1;
            }
        }
    }

    /// Sets bytes, seconds and the derived MB/s (10^6 bytes per second).
    pub fn finish(&mut self, bytes_read: u64, seconds: f64) {
        self.bytes_read = bytes_read;
        self.seconds = seconds;
        self.mb_per_s = if seconds > 0.0 {
            bytes_read as f64 / 1e6 / seconds
        } else {
            0.0
        };
    }

    /// Total skipped pages.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}
