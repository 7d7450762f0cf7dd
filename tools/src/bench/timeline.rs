//! The per-second timeline of a load run (`wikisearch bench --timeline`): QPS, p50, p99,
//! errors and partial answers of the requests completed in each second, plus the hedges
//! and retries the front-end made in it.
//!
//! Hedges and retries are not visible from outside a response, so they come from the
//! target's Prometheus `/metrics`: each second the counters whose names contain `hedge`
//! (resp. `retr`) are summed and differenced with the previous scrape. A target without
//! `/metrics` (the baselines) shows `-`. A counter that went down means the front-end
//! restarted, and its new value is the increase, as Prometheus' `rate()` treats resets.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

use super::report::{KindStats, LatencySummary};

/// One second of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TimelineRow {
    /// 1-based index of the row.
    pub second: u64,
    /// Seconds from the start of the run to the end of this row's window.
    pub t_s: f64,
    /// Length of the window (1 s except for the last row).
    pub window_s: f64,
    /// Requests completed in the window.
    pub requests: u64,
    pub qps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    pub partial: u64,
    /// Hedged requests the front-end sent in the window; `None` without `/metrics`.
    pub hedges: Option<u64>,
    /// Retries the front-end made in the window; `None` without `/metrics`.
    pub retries: Option<u64>,
}

impl TimelineRow {
    /// The row of a window's requests.
    pub fn from_window(second: u64, t: Duration, window: Duration, stats: &KindStats) -> Self {
        let window_s = window.as_secs_f64();
        let latency = LatencySummary::of(&stats.latency);
        TimelineRow {
            second,
            t_s: t.as_secs_f64(),
            window_s,
            requests: stats.requests,
            qps: if window_s > 0.0 {
                stats.requests as f64 / window_s
            } else {
                0.0
            },
            p50_ms: latency.p50,
            p99_ms: latency.p99,
            errors: stats.errors,
            partial: stats.partial,
            hedges: None,
            retries: None,
        }
    }

    /// The heading matching [`TimelineRow::to_line`].
    pub fn header() -> String {
        format!(
            "{:>6}{:>9}{:>10}{:>10}{:>8}{:>9}{:>8}{:>9}",
            "t s", "qps", "p50 ms", "p99 ms", "errors", "partial", "hedges", "retries"
        )
    }

    /// One aligned text line.
    pub fn to_line(&self) -> String {
        let opt = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
        format!(
            "{:>6.0}{:>9.0}{:>10.2}{:>10.2}{:>8}{:>9}{:>8}{:>9}",
            self.t_s.round(),
            self.qps,
            self.p50_ms,
            self.p99_ms,
            self.errors,
            self.partial,
            opt(self.hedges),
            opt(self.retries)
        )
    }

    /// One JSON line, tagged `"type": "second"` to tell it from the final summary.
    pub fn to_json_line(&self) -> String {
        let mut value = serde_json::to_value(self).expect("rows serialize");
        value["type"] = "second".into();
        value.to_string()
    }
}

/// Hedge and retry counter sums of one `/metrics` scrape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailoverCounters {
    pub hedges: u64,
    pub retries: u64,
}

impl FailoverCounters {
    /// Sums the counters of a Prometheus text exposition whose names contain `hedge` (but
    /// not `won`) or `retr`. Only counters count (a gauge such as a hedge budget, or a histogram of
    /// hedge delays, would make the difference meaningless).
    pub fn parse(text: &str) -> Self {
        let types = metric_types(text);
        let mut sums = FailoverCounters::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, value)) = parse_sample(line) else {
                continue;
            };
            if !is_counter_sample(name, &types) || !value.is_finite() || value < 0.0 {
                continue;
            }
            let lower = name.to_ascii_lowercase();
            // Hedges that won the race are a subset of the hedges, not more of them.
            if lower.contains("hedge") && !lower.contains("won") {
                sums.hedges += value as u64;
            }
            if lower.contains("retr") {
                sums.retries += value as u64;
            }
        }
        sums
    }

    /// The increase since `earlier`, treating a decrease as a counter reset.
    pub fn since(self, earlier: FailoverCounters) -> FailoverCounters {
        let increase = |now: u64, before: u64| if now >= before { now - before } else { now };
        FailoverCounters {
            hedges: increase(self.hedges, earlier.hedges),
            retries: increase(self.retries, earlier.retries),
        }
    }
}

/// `# TYPE name kind` declarations.
fn metric_types(text: &str) -> HashMap<&str, &str> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("# TYPE "))
        .filter_map(|rest| {
            let mut parts = rest.split_whitespace();
            Some((parts.next()?, parts.next()?))
        })
        .collect()
}

/// Counters are `foo_total` samples of a `counter` family (declared as `foo` in
/// OpenMetrics, as `foo_total` in the classic format); `_created` timestamps are not counts.
fn is_counter_sample(name: &str, types: &HashMap<&str, &str>) -> bool {
    if name.ends_with("_created") {
        return false;
    }
    let family = name.strip_suffix("_total").unwrap_or(name);
    match types.get(name).or_else(|| types.get(family)) {
        Some(kind) => *kind == "counter",
        None => name.ends_with("_total"),
    }
}

/// Splits `name{labels} value [timestamp]` into name and value; label values may hold
/// spaces, braces and escaped quotes.
fn parse_sample(line: &str) -> Option<(&str, f64)> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    if rest.starts_with('{') {
        rest = &rest[labels_end(rest)?..];
    }
    let value = rest.split_whitespace().next()?;
    Some((name, value.parse().ok()?))
}

/// Byte index just past the `}` closing the label set that `text` starts with.
fn labels_end(text: &str) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '}' if !in_quotes => return Some(i + 1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::Outcome;

    #[test]
    fn row_figures_come_from_the_window() {
        let mut window = KindStats::default();
        for ms in 1..=200u64 {
            let outcome = if ms % 50 == 0 {
                Outcome::Status(500)
            } else {
                Outcome::Answered {
                    partial: (ms % 100 == 1).then(String::new),
                    empty: false,
                }
            };
            window.record(Duration::from_millis(ms), &outcome);
        }
        let row = TimelineRow::from_window(
            3,
            Duration::from_millis(2500),
            Duration::from_millis(500),
            &window,
        );
        assert_eq!(
            (row.second, row.requests, row.errors, row.partial),
            (3, 200, 4, 2)
        );
        assert_eq!(row.qps, 400.0);
        assert!((row.p50_ms - 100.0).abs() < 0.1, "{}", row.p50_ms);
        assert!((row.p99_ms - 198.0).abs() < 0.2, "{}", row.p99_ms);
        assert!(row.to_line().contains('-'), "no metrics shows as -");
        let json: serde_json::Value = serde_json::from_str(&row.to_json_line()).unwrap();
        assert_eq!(json["type"], "second");
        assert!(json["hedges"].is_null());
    }

    #[test]
    fn an_empty_window_is_a_zero_row() {
        let row = TimelineRow::from_window(
            1,
            Duration::from_secs(1),
            Duration::from_secs(1),
            &KindStats::default(),
        );
        assert_eq!(
            (row.requests, row.qps, row.p50_ms, row.p99_ms),
            (0, 0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn counts_hedge_and_retry_counters_only() {
        let text = r#"
# HELP frontend_hedges Hedged shard requests.
# TYPE frontend_hedges counter
frontend_hedges_total{node="n1"} 3
frontend_hedges_total{node="n2"} 4
frontend_hedges_created{node="n2"} 1700000000.0
# TYPE frontend_hedges_won counter
frontend_hedges_won_total 5
# TYPE frontend_hedge_delay_seconds histogram
frontend_hedge_delay_seconds_bucket{le="0.005"} 99
frontend_hedge_delay_seconds_count 99
# TYPE frontend_hedge_budget gauge
frontend_hedge_budget 50
# TYPE rpc_retries_total counter
rpc_retries_total{reason="connect {refused}",shard="n0of2-s1of3"} 2 1700000000
# TYPE requests counter
requests_total{outcome="ok"} 1000
"#;
        assert_eq!(
            FailoverCounters::parse(text),
            FailoverCounters {
                hedges: 7,
                retries: 2
            }
        );
    }

    #[test]
    fn untyped_total_samples_count_and_resets_restart_from_zero() {
        let counters = FailoverCounters::parse("search_retries_total 5\nhedges_sent 9\n");
        assert_eq!((counters.hedges, counters.retries), (0, 5));
        let before = FailoverCounters {
            hedges: 10,
            retries: 4,
        };
        let now = FailoverCounters {
            hedges: 13,
            retries: 1,
        };
        assert_eq!(
            now.since(before),
            FailoverCounters {
                hedges: 3,
                retries: 1
            }
        );
    }
}
