//! What a benchmark run measured: latency histograms and counters per query kind
//! ([`Recorder`]), their summary ([`LoadReport`]: p50/p90/p99/max, QPS, errors, partial
//! answers, per kind and overall), and how that summary is printed (a table, or one JSON
//! object).
//!
//! Latencies are kept in HDR histograms (3 significant digits, microsecond units), so
//! percentiles are exact to 0.1 % whatever the number of samples and merging per-thread
//! recorders is lossless.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::timeline::TimelineRow;

/// Counts `message` in `samples`, keeping only the first few distinct ones.
fn note_sample(samples: &mut BTreeMap<String, u64>, message: String, times: u64) {
    let kept = samples.len();
    match samples.get_mut(&message) {
        Some(count) => *count += times,
        None if kept < MAX_ERROR_SAMPLES => {
            samples.insert(message, times);
        }
        None => {}
    }
}

/// Longest latency a histogram tracks exactly (longer ones saturate at it).
const MAX_TRACKED_MICROS: u64 = 600_000_000;
/// Distinct error messages (and reasons of partial answers) kept as examples.
const MAX_ERROR_SAMPLES: usize = 16;

/// A latency histogram in microseconds.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKED_MICROS, 3).expect("static histogram bounds")
}

/// Microseconds of a duration, at least 1 (the histogram's lowest value).
pub fn micros(duration: Duration) -> u64 {
    (duration.as_micros() as u64).max(1)
}

/// How one request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer; `partial` when the body said `"partial": true` (with the shards it
    /// lacked and why, as the body listed them), `empty` when it held no hits (a benchmark
    /// whose queries match nothing measures nothing).
    Answered {
        partial: Option<String>,
        empty: bool,
    },
    /// An answer with another status (counted as an error, latency still recorded).
    Status(u16),
    /// No answer: connection refused or reset, timeout, unreadable body.
    Transport(String),
}

/// Counters and latencies of one query kind.
#[derive(Clone)]
pub struct KindStats {
    pub latency: Histogram<u64>,
    pub requests: u64,
    pub errors: u64,
    pub partial: u64,
    pub empty: u64,
}

impl Default for KindStats {
    fn default() -> Self {
        KindStats {
            latency: new_histogram(),
            requests: 0,
            errors: 0,
            partial: 0,
            empty: 0,
        }
    }
}

impl KindStats {
    /// Records one request. Latency is recorded whenever an answer came back (whatever
    /// its status), since a slow error page is still what the user waited for; transport
    /// failures carry no meaningful latency and are only counted.
    pub fn record(&mut self, latency: Duration, outcome: &Outcome) {
        self.requests += 1;
        match outcome {
            Outcome::Answered { partial, empty } => {
                self.latency.saturating_record(micros(latency));
                self.partial += u64::from(partial.is_some());
                self.empty += u64::from(*empty);
            }
            Outcome::Status(_) => {
                self.latency.saturating_record(micros(latency));
                self.errors += 1;
            }
            Outcome::Transport(_) => self.errors += 1,
        }
    }

    pub fn merge(&mut self, other: &KindStats) {
        self.latency
            .add(&other.latency)
            .expect("histograms share their bounds");
        self.requests += other.requests;
        self.errors += other.errors;
        self.partial += other.partial;
        self.empty += other.empty;
    }
}

/// Everything recorded during a run, per kind (indexed like the kind table), plus a few
/// example error messages and reasons of partial answers, with their counts.
#[derive(Clone)]
pub struct Recorder {
    pub kinds: Vec<KindStats>,
    pub error_samples: BTreeMap<String, u64>,
    pub partial_samples: BTreeMap<String, u64>,
}

impl Recorder {
    pub fn new(kind_count: usize) -> Self {
        Recorder {
            kinds: vec![KindStats::default(); kind_count],
            error_samples: BTreeMap::new(),
            partial_samples: BTreeMap::new(),
        }
    }

    pub fn record(&mut self, kind: usize, latency: Duration, outcome: &Outcome) {
        self.kinds[kind].record(latency, outcome);
        let message = match outcome {
            Outcome::Answered { partial: None, .. } => return,
            Outcome::Answered {
                partial: Some(why), ..
            } => return note_sample(&mut self.partial_samples, why.clone(), 1),
            Outcome::Status(code) => format!("HTTP {code}"),
            Outcome::Transport(reason) => reason.clone(),
        };
        self.note_error(message, 1);
    }

    /// Counts an error message (only the first few distinct ones are kept).
    pub fn note_error(&mut self, message: String, times: u64) {
        note_sample(&mut self.error_samples, message, times);
    }

    pub fn merge(&mut self, other: &Recorder) {
        for (mine, theirs) in self.kinds.iter_mut().zip(&other.kinds) {
            mine.merge(theirs);
        }
        for (message, count) in &other.error_samples {
            self.note_error(message.clone(), *count);
        }
        for (why, count) in &other.partial_samples {
            note_sample(&mut self.partial_samples, why.clone(), *count);
        }
    }

    /// All kinds together.
    pub fn overall(&self) -> KindStats {
        let mut all = KindStats::default();
        for kind in &self.kinds {
            all.merge(kind);
        }
        all
    }

    /// The summary of a run that lasted `elapsed`.
    pub fn report(&self, setup: RunSetup, kind_names: &[String], elapsed: Duration) -> LoadReport {
        let secs = elapsed.as_secs_f64();
        let kinds = kind_names
            .iter()
            .zip(&self.kinds)
            .filter(|(_, stats)| stats.requests > 0)
            .map(|(name, stats)| (name.clone(), KindFigures::of(stats, secs)))
            .collect();
        LoadReport {
            setup,
            elapsed_s: secs,
            overall: KindFigures::of(&self.overall(), secs),
            kinds,
            error_samples: self.error_samples.clone(),
            partial_samples: self.partial_samples.clone(),
            timeline: Vec::new(),
            rerouted: 0,
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl LatencySummary {
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return LatencySummary::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        LatencySummary {
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            max: ms(histogram.max()),
            mean: histogram.mean() / 1000.0,
        }
    }
}

/// Figures of one kind (or of all requests).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct KindFigures {
    pub requests: u64,
    /// Requests completed per second of the run (answered or not).
    pub qps: f64,
    pub errors: u64,
    pub partial: u64,
    /// Answers without any hit.
    pub empty: u64,
    pub latency_ms: LatencySummary,
}

impl KindFigures {
    pub fn of(stats: &KindStats, secs: f64) -> Self {
        KindFigures {
            requests: stats.requests,
            qps: if secs > 0.0 {
                stats.requests as f64 / secs
            } else {
                0.0
            },
            errors: stats.errors,
            partial: stats.partial,
            empty: stats.empty,
            latency_ms: LatencySummary::of(&stats.latency),
        }
    }
}

/// How the load was applied.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSetup {
    /// The search URL, or `in-process:<index dir>`.
    pub target: String,
    /// `closed` (fixed concurrency), `open` (fixed arrival rate) or `in-process`.
    pub mode: String,
    /// Workers (closed loop) or threads (in-process).
    pub concurrency: Option<usize>,
    /// Requests per second asked for (open loop).
    pub rate: Option<f64>,
    pub duration_s: f64,
    pub size: u32,
}

/// The result of one run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadReport {
    #[serde(flatten)]
    pub setup: RunSetup,
    /// Wall time from the first request sent to the last one finished.
    pub elapsed_s: f64,
    pub overall: KindFigures,
    pub kinds: BTreeMap<String, KindFigures>,
    /// Distinct error messages with their counts (the first few).
    pub error_samples: BTreeMap<String, u64>,
    /// Distinct reasons of partial answers (the shards missing and why), the first few.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub partial_samples: BTreeMap<String, u64>,
    /// One row per second, when a timeline was asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<TimelineRow>,
    /// Requests sent again to another coordinator because theirs could not be reached
    /// (load spread over several): not failures, unless every one was unreachable.
    pub rerouted: u64,
}

impl LoadReport {
    /// One line describing the run.
    pub fn title(&self) -> String {
        let s = &self.setup;
        let load = match (s.mode.as_str(), s.concurrency, s.rate) {
            ("open", _, Some(rate)) => format!("open loop at {rate} req/s"),
            ("in-process", Some(threads), _) => format!("in-process, {threads} threads"),
            (_, Some(c), _) => format!("closed loop, concurrency {c}"),
            _ => s.mode.clone(),
        };
        format!(
            "{} | {load} | {:.1} s | top {}",
            s.target, self.elapsed_s, s.size
        )
    }

    /// The human-readable table.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.title());
        let _ = writeln!(
            out,
            "{:<14}{:>9}{:>10}{:>9}{:>9}{:>9}{:>9}{:>8}{:>9}{:>9}",
            "kind",
            "requests",
            "qps",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "errors",
            "partial",
            "no hits"
        );
        let rows = self.kinds.iter().map(|(name, f)| (name.as_str(), f));
        for (name, f) in rows.chain(std::iter::once(("all", &self.overall))) {
            let l = &f.latency_ms;
            let _ = writeln!(
                out,
                "{:<14}{:>9}{:>10.1}{:>9.2}{:>9.2}{:>9.2}{:>9.2}{:>8}{:>9}{:>9}",
                name, f.requests, f.qps, l.p50, l.p90, l.p99, l.max, f.errors, f.partial, f.empty
            );
        }
        for (message, count) in &self.error_samples {
            let _ = writeln!(out, "error x{count}: {message}");
        }
        for (why, count) in &self.partial_samples {
            let _ = writeln!(out, "partial x{count}: {why}");
        }
        if self.rerouted > 0 {
            let _ = writeln!(
                out,
                "rerouted: {} requests sent again to another coordinator (theirs unreachable)",
                self.rerouted
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn percentiles_of_one_to_a_hundred_ms() {
        let mut stats = KindStats::default();
        for n in 1..=100 {
            stats.record(
                ms(n),
                &Outcome::Answered {
                    partial: (n % 10 == 0).then(|| "s1: down".to_string()),
                    empty: n % 4 == 0,
                },
            );
        }
        let f = KindFigures::of(&stats, 2.0);
        assert_eq!((f.requests, f.errors, f.partial, f.empty), (100, 0, 10, 25));
        assert_eq!(f.qps, 50.0);
        let l = f.latency_ms;
        // 3 significant digits: values are exact to within 0.1 %.
        for (got, want) in [(l.p50, 50.0), (l.p90, 90.0), (l.p99, 99.0), (l.max, 100.0)] {
            assert!((got - want).abs() <= want * 0.001, "{got} vs {want}");
        }
        assert!((l.mean - 50.5).abs() < 0.1, "{}", l.mean);
    }

    #[test]
    fn errors_are_counted_and_only_answers_carry_latency() {
        let mut recorder = Recorder::new(2);
        recorder.record(0, ms(5), &Outcome::Status(503));
        recorder.record(0, ms(900), &Outcome::Transport("connection refused".into()));
        recorder.record(
            1,
            ms(1),
            &Outcome::Answered {
                partial: None,
                empty: false,
            },
        );
        let all = recorder.overall();
        assert_eq!((all.requests, all.errors), (3, 2));
        assert_eq!(all.latency.len(), 2);
        let max = LatencySummary::of(&all.latency).max;
        assert!((max - 5.0).abs() <= 0.005, "{max}");
        assert_eq!(recorder.error_samples["HTTP 503"], 1);
        assert_eq!(recorder.error_samples["connection refused"], 1);
    }

    #[test]
    fn merging_recorders_is_lossless() {
        let mut a = Recorder::new(1);
        let mut b = Recorder::new(1);
        for n in 1..=50 {
            let answered = Outcome::Answered {
                partial: None,
                empty: true,
            };
            a.record(0, ms(n), &answered);
            b.record(0, ms(n + 50), &answered);
        }
        b.record(0, ms(1), &Outcome::Status(500));
        a.merge(&b);
        let f = KindFigures::of(&a.kinds[0], 1.0);
        assert_eq!((f.requests, f.errors, f.empty), (101, 1, 100));
        assert!(
            (f.latency_ms.p99 - 99.0).abs() < 0.1,
            "{}",
            f.latency_ms.p99
        );
        assert_eq!(a.error_samples["HTTP 500"], 1);
    }

    #[test]
    fn report_skips_unused_kinds_and_prints_an_all_row() {
        let mut recorder = Recorder::new(2);
        recorder.record(
            1,
            ms(2),
            &Outcome::Answered {
                partial: Some("s0: deadline exceeded".to_string()),
                empty: false,
            },
        );
        let setup = RunSetup {
            target: "http://x/search".into(),
            mode: "closed".into(),
            concurrency: Some(1),
            rate: None,
            duration_s: 1.0,
            size: 10,
        };
        let names = ["term".to_string(), "union".to_string()];
        let report = recorder.report(setup, &names, Duration::from_secs(1));
        assert_eq!(report.kinds.keys().collect::<Vec<_>>(), ["union"]);
        let table = report.to_table();
        assert!(table.contains("union") && table.lines().any(|l| l.starts_with("all")));
        assert!(
            table.contains("partial x1: s0: deadline exceeded"),
            "{table}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["overall"]["partial"], 1);
        assert_eq!(json["partial_samples"]["s0: deadline exceeded"], 1);
        assert_eq!(json["mode"], "closed");
    }
}
