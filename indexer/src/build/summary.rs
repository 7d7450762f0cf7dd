//! What a build reports at the end (`--json` prints it as one object) and how the
//! process's CPU time and peak memory are measured: getrusage for CPU and `ru_maxrss`,
//! and a sampler of `RssAnon` for the memory the build itself allocates. The two differ
//! because the corpus reader maps the input file: the pages of it already read count in
//! `ru_maxrss` (they are clean page cache the kernel can drop at will), so `ru_maxrss`
//! grows with the input while the anonymous peak is what `--memory-mb` bounds.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, RecvTimeoutError, Sender};

use serde::Serialize;

/// The summary of one `indexer build`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BuildSummary {
    /// Documents indexed (= articles read: every article of the slice is indexed).
    pub docs: u64,
    /// Pages the reader could not deliver, by reason (`SkipReason::as_str`).
    pub skipped: BTreeMap<String, u64>,
    pub seconds: f64,
    pub docs_per_s: f64,
    /// Input bytes of this slice (compressed if compressed) per second, 10^6 bytes.
    pub mb_per_s: f64,
    /// Total size of the published index files.
    pub index_bytes: u64,
    /// The shard ids published, in order.
    pub shards: Vec<String>,
    /// Documents per shard, in the order of `shards`.
    pub shard_docs: Vec<u64>,
    /// Every `<page>` read, skipped ones included.
    pub pages: u64,
    pub articles: u64,
    pub redirects: u64,
    pub other_namespaces: u64,
    pub input_bytes: u64,
    pub input_format: String,
    pub node: u32,
    pub nodes: u32,
    pub threads: usize,
    pub memory_mb: u64,
    /// User + system CPU seconds of the whole process.
    pub cpu_seconds: f64,
    /// Peak resident set size of the process (ru_maxrss), MiB; includes the pages of the
    /// memory-mapped input read so far.
    pub peak_rss_mb: f64,
    /// Peak anonymous resident memory (RssAnon sampled every 100 ms), MiB: what the
    /// memory budget bounds.
    pub peak_anon_rss_mb: f64,
    /// What the link pass attached (`None`: built without `--links`).
    pub links: Option<crate::links::LinkReport>,
}

/// CPU time and peak RSS of this process so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ResourceUsage {
    pub cpu_seconds: f64,
    pub peak_rss_mb: f64,
}

impl ResourceUsage {
    /// Reads `getrusage(RUSAGE_SELF)`: user + system time, and `ru_maxrss` (KiB on Linux).
    pub fn now() -> Self {
        use nix::sys::resource::{getrusage, UsageWho};
        use nix::sys::time::TimeValLike;
        let Ok(usage) = getrusage(UsageWho::RUSAGE_SELF) else {
            return ResourceUsage::default();
        };
        let cpu_micros =
            usage.user_time().num_microseconds() + usage.system_time().num_microseconds();
        ResourceUsage {
            cpu_seconds: cpu_micros as f64 / 1e6,
            peak_rss_mb: usage.max_rss() as f64 / 1024.0,
        }
    }
}

/// Samples the process's anonymous RSS on a thread until [`AnonRssPeak::finish`].
pub struct AnonRssPeak {
    stop: Sender<()>,
    handle: JoinHandle<()>,
    peak_kb: Arc<AtomicU64>,
}

impl AnonRssPeak {
    const EVERY: Duration = Duration::from_millis(100);

    pub fn start() -> Self {
        let (stop, stopped) = bounded::<()>(0);
        let peak_kb = Arc::new(AtomicU64::new(anon_rss_kb().unwrap_or(0)));
        let peak = Arc::clone(&peak_kb);
        let handle = std::thread::Builder::new()
            .name("rss-sampler".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(Self::EVERY) {
                    peak.fetch_max(anon_rss_kb().unwrap_or(0), Ordering::Relaxed);
                }
            })
            .expect("spawn rss sampler");
        AnonRssPeak {
            stop,
            handle,
            peak_kb,
        }
    }

    /// Stops sampling; returns the peak in MiB (0 where /proc is unavailable).
    pub fn finish(self) -> f64 {
        drop(self.stop);
        let _ = self.handle.join();
        let last = anon_rss_kb().unwrap_or(0);
        self.peak_kb.fetch_max(last, Ordering::Relaxed) as f64 / 1024.0
    }
}

/// `RssAnon` of /proc/self/status, KiB.
fn anon_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

impl BuildSummary {
    /// Fills the derived rates and the resource figures.
    pub fn finish(&mut self, seconds: f64, usage: ResourceUsage) {
        self.seconds = seconds;
        let per_s = |x: f64| if seconds > 0.0 { x / seconds } else { 0.0 };
        self.docs_per_s = per_s(self.docs as f64);
        self.mb_per_s = per_s(self.input_bytes as f64 / 1e6);
        self.cpu_seconds = usage.cpu_seconds;
        self.peak_rss_mb = usage.peak_rss_mb;
    }

    /// Total skipped pages.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// The human-readable one-paragraph report printed without `--json`.
    pub fn human(&self) -> String {
        format!(
            "built {} shards ({}) with {} docs from {} pages ({} articles, {} redirects, {} \
             other namespaces, {} skipped) in {:.1} s: {:.0} docs/s, {:.1} MB/s input, \
             {:.1} MB of index, {:.1} CPU s, peak RSS {:.0} MiB ({:.0} MiB anonymous)",
            self.shards.len(),
            self.shards.join(", "),
            self.docs,
            self.pages,
            self.articles,
            self.redirects,
            self.other_namespaces,
            self.skipped_total(),
            self.seconds,
            self.docs_per_s,
            self.mb_per_s,
            self.index_bytes as f64 / 1e6,
            self.cpu_seconds,
            self.peak_rss_mb,
            self.peak_anon_rss_mb
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_usage_is_measured() {
        let usage = ResourceUsage::now();
        assert!(usage.peak_rss_mb > 1.0, "{usage:?}");
        assert!(usage.cpu_seconds >= 0.0);
    }

    #[test]
    fn anonymous_peak_sees_an_allocation() {
        let sampler = AnonRssPeak::start();
        let block = vec![1u8; 64 << 20];
        std::thread::sleep(AnonRssPeak::EVERY * 3);
        let peak = sampler.finish();
        assert!(peak >= 64.0, "{peak} MiB");
        drop(block);
    }

    #[test]
    fn json_has_the_contract_keys() {
        let mut summary = BuildSummary {
            docs: 10,
            input_bytes: 2_000_000,
            ..BuildSummary::default()
        };
        summary.finish(2.0, ResourceUsage::now());
        assert_eq!(summary.docs_per_s, 5.0);
        assert_eq!(summary.mb_per_s, 1.0);
        let json = serde_json::to_value(&summary).unwrap();
        for key in [
            "docs",
            "skipped",
            "seconds",
            "docs_per_s",
            "mb_per_s",
            "index_bytes",
            "shards",
            "pages",
            "articles",
            "redirects",
            "other_namespaces",
            "cpu_seconds",
            "peak_rss_mb",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
    }
}
