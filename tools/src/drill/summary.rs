//! What a drill prints: the live timeline (the load generator's per-second rows with the
//! drill's own events between them) and the closing summary — failed requests, partial
//! answers, p99 before / during / after the fault, and per target node the time until the
//! front-end ejected it and until it served again.
//!
//! Phases are cut at the injection and at the moment the last target served again. A
//! per-second row overlapping a cut counts as "during", so the fault's first and last
//! moments are never credited to the healthy phases. The rows carry each second's p99, not
//! its histogram, so a phase's p99 is its worst second's p99 (an upper bound of the phase's
//! true p99, and what an operator watching the timeline sees).

use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use crate::bench::report::LoadReport;
use crate::bench::timeline::TimelineRow;

use super::faults::{Fault, TargetOutcome};
use super::restore::Restored;
use super::switch::SwitchTimes;

/// Prints timeline rows and events as they happen, in text or JSON lines.
pub struct Printer {
    json: bool,
    t0: Instant,
    events: Mutex<Vec<EventLine>>,
}

/// One event of the drill, at `t_s` seconds from the start of the load.
#[derive(Clone, Debug, Serialize)]
pub struct EventLine {
    pub t_s: f64,
    pub event: String,
}

impl Printer {
    pub fn new(json: bool, t0: Instant) -> Self {
        Printer {
            json,
            t0,
            events: Mutex::default(),
        }
    }

    /// Seconds from the start of the load to `at` (negative before it).
    pub fn t(&self, at: Instant) -> f64 {
        match at.checked_duration_since(self.t0) {
            Some(after) => after.as_secs_f64(),
            None => -self.t0.duration_since(at).as_secs_f64(),
        }
    }

    pub fn header(&self, line: &str) {
        if self.json {
            let value = serde_json::json!({"type": "drill", "plan": line});
            println!("{value}");
        } else {
            println!("{line}");
            println!("{}", TimelineRow::header());
        }
    }

    pub fn row(&self, row: &TimelineRow) {
        if self.json {
            println!("{}", row.to_json_line());
        } else {
            println!("{}", row.to_line());
        }
    }

    pub fn event(&self, at: Instant, event: String) {
        let line = EventLine {
            t_s: self.t(at),
            event,
        };
        if self.json {
            let mut value = serde_json::to_value(&line).expect("events serialize");
            value["type"] = "event".into();
            println!("{value}");
        } else {
            println!("  >> {:>6.2} s  {}", line.t_s, line.event);
        }
        self.events.lock().expect("events lock").push(line);
    }

    pub fn events(&self) -> Vec<EventLine> {
        self.events.lock().expect("events lock").clone()
    }
}

/// One answer of the front-end sampled during the fault: what a user saw.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Probe {
    pub t_s: f64,
    pub url: String,
    pub status: u16,
    pub partial: Option<bool>,
    pub coverage: Option<f64>,
    pub hits: Option<usize>,
    pub took_ms: Option<f64>,
    pub shards_failed: Option<u64>,
    /// `shard: reason` of each failure the answer listed.
    pub failures: Vec<String>,
    pub error: Option<String>,
}

impl Probe {
    /// Reads the fields of a `/search` answer.
    pub fn from_answer(t_s: f64, url: String, status: u16, body: &serde_json::Value) -> Self {
        let failures = body["shards"]["failures"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|f| {
                        let shard = f["shard"].as_str().unwrap_or("?");
                        let reason = f["reason"].as_str().unwrap_or("?");
                        format!("{shard}: {reason}")
                    })
                    .collect()
            })
            .unwrap_or_default();
        Probe {
            t_s,
            url,
            status,
            partial: body["partial"].as_bool(),
            coverage: body["coverage"].as_f64(),
            hits: body["hits"].as_array().map(Vec::len),
            took_ms: body["took_ms"].as_f64(),
            shards_failed: body["shards"]["failed"].as_u64(),
            failures,
            error: body["error"].as_str().map(str::to_string),
        }
    }

    fn describe(&self) -> String {
        let mut text = format!("HTTP {}", self.status);
        if let Some(partial) = self.partial {
            text.push_str(&format!(", partial: {partial}"));
        }
        if let Some(coverage) = self.coverage {
            text.push_str(&format!(", coverage {coverage:.3}"));
        }
        if let Some(hits) = self.hits {
            text.push_str(&format!(", {hits} hits"));
        }
        if let Some(took) = self.took_ms {
            text.push_str(&format!(", took {took:.1} ms"));
        }
        for failure in &self.failures {
            text.push_str(&format!("; failed shard {failure}"));
        }
        if let Some(error) = &self.error {
            text.push_str(&format!("; error: {error}"));
        }
        text
    }
}

/// Per-target figures, in seconds.
#[derive(Clone, Debug, Serialize)]
pub struct NodeFigures {
    pub node: String,
    pub pid_before: Option<u32>,
    /// From the fault to the front-end reporting the node `down`; `None`: never ejected.
    pub ejected_after_s: Option<f64>,
    /// From the heal (SIGCONT, restart, partition removed) to the node `up` again.
    pub serving_after_heal_s: Option<f64>,
    /// From the fault to the node `up` again.
    pub out_for_s: Option<f64>,
}

/// The drill's result.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub fault: Fault,
    pub shard: Option<String>,
    pub injected_at_s: Option<f64>,
    pub healed_at_s: Option<f64>,
    pub requests: u64,
    pub failed: u64,
    pub partial: u64,
    pub failed_during: u64,
    pub partial_during: u64,
    pub p99_before_ms: Option<f64>,
    pub p99_during_ms: Option<f64>,
    pub p99_after_ms: Option<f64>,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub deadline_ms: u64,
    pub hedges: Option<u64>,
    pub retries: Option<u64>,
    pub nodes: Vec<NodeFigures>,
    /// The coverage answers should report while the shard is down: one minus the document
    /// share of every shard whose replicas were all killed (`kill-shard` only).
    pub expected_coverage: Option<f64>,
    pub probes: Vec<Probe>,
    pub error_samples: std::collections::BTreeMap<String, u64>,
    /// Why answers were partial (the shards missing and the reasons), the first few.
    pub partial_samples: std::collections::BTreeMap<String, u64>,
    /// Polls of `/cluster` that failed: the front-end's own API stopped answering.
    pub cluster_poll_errors: u64,
    /// `--no-restart`: the restore of every shard's copies without the lost nodes.
    pub restored: Option<RestoredFigures>,
    /// `switch`: from each move of the alias to the first answer from its generation.
    pub switched: Option<SwitchFigures>,
    pub events: Vec<EventLine>,
}

/// A generation switch and the switch back, timed.
#[derive(Clone, Debug, Serialize)]
pub struct SwitchFigures {
    pub from: String,
    pub to: String,
    pub to_answering_s: f64,
    pub back_answering_s: f64,
}

/// The restore after a permanent loss.
#[derive(Clone, Debug, Serialize)]
pub struct RestoredFigures {
    /// From the loss to every shard serving R copies again; `None`: not restored.
    pub after_s: Option<f64>,
    #[serde(flatten)]
    pub restored: Restored,
}

/// Where a row falls relative to the fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Before,
    During,
    After,
}

fn phase_of(row: &TimelineRow, injected_s: Option<f64>, healed_s: Option<f64>) -> Phase {
    let start = row.t_s - row.window_s;
    match (injected_s, healed_s) {
        (None, _) => Phase::Before,
        (Some(injected), _) if row.t_s <= injected => Phase::Before,
        (Some(_), Some(healed)) if start >= healed => Phase::After,
        _ => Phase::During,
    }
}

/// What the fault script and the load measured, put together.
pub struct Inputs<'a> {
    pub fault: Fault,
    pub shard: Option<String>,
    pub report: &'a LoadReport,
    pub outcomes: &'a [TargetOutcome],
    pub printer: &'a Printer,
    pub deadline_ms: u64,
    pub expected_coverage: Option<f64>,
    pub probes: Vec<Probe>,
    pub cluster_poll_errors: u64,
    pub restored: Option<Restored>,
    pub switched: Option<SwitchTimes>,
}

impl Summary {
    pub fn build(inputs: Inputs<'_>) -> Summary {
        let p = inputs.printer;
        // A switch has no target node: its phase runs from the first move of the alias to
        // the first answer after the move back.
        let switch_window = inputs
            .switched
            .as_ref()
            .map(|s| (s.switched_at, s.back_at + s.back_answering));
        let injected = match switch_window {
            Some((from, _)) => Some(from),
            None => inputs.outcomes.iter().filter_map(|o| o.injected_at).min(),
        };
        let healed = match switch_window {
            Some((_, to)) => Some(to),
            None => inputs
                .outcomes
                .iter()
                .map(|o| o.serving_at.or(o.healed_at))
                .collect::<Option<Vec<_>>>()
                .and_then(|all| all.into_iter().max()),
        };
        let injected_s = injected.map(|at| p.t(at));
        let healed_s = healed.map(|at| p.t(at));
        let rows = &inputs.report.timeline;
        let worst_p99 = |phase: Phase| {
            rows.iter()
                .filter(|r| r.requests > 0 && phase_of(r, injected_s, healed_s) == phase)
                .map(|r| r.p99_ms)
                .reduce(f64::max)
        };
        let during: Vec<&TimelineRow> = rows
            .iter()
            .filter(|r| phase_of(r, injected_s, healed_s) == Phase::During)
            .collect();
        // `None` only when no row had the figure (a target without /metrics).
        let sum_opt =
            |f: fn(&TimelineRow) -> Option<u64>| rows.iter().filter_map(f).reduce(|a, b| a + b);
        let overall = &inputs.report.overall;
        Summary {
            fault: inputs.fault,
            shard: inputs.shard,
            injected_at_s: injected_s,
            healed_at_s: healed_s,
            requests: overall.requests,
            failed: overall.errors,
            partial: overall.partial,
            failed_during: during.iter().map(|r| r.errors).sum(),
            partial_during: during.iter().map(|r| r.partial).sum(),
            p99_before_ms: worst_p99(Phase::Before),
            p99_during_ms: worst_p99(Phase::During),
            p99_after_ms: worst_p99(Phase::After),
            p99_ms: overall.latency_ms.p99,
            max_ms: overall.latency_ms.max,
            deadline_ms: inputs.deadline_ms,
            hedges: sum_opt(|r| r.hedges),
            retries: sum_opt(|r| r.retries),
            nodes: inputs.outcomes.iter().map(node_figures).collect(),
            expected_coverage: inputs.expected_coverage,
            probes: inputs.probes,
            error_samples: inputs.report.error_samples.clone(),
            partial_samples: inputs.report.partial_samples.clone(),
            cluster_poll_errors: inputs.cluster_poll_errors,
            restored: inputs.restored.map(|restored| RestoredFigures {
                after_s: restored
                    .at
                    .zip(injected)
                    .map(|(at, lost)| at.duration_since(lost).as_secs_f64()),
                restored,
            }),
            switched: inputs.switched.map(|s| SwitchFigures {
                from: s.from,
                to: s.to,
                to_answering_s: s.to_answering.as_secs_f64(),
                back_answering_s: s.back_answering.as_secs_f64(),
            }),
            events: p.events(),
        }
    }

    /// Prints the summary (text, or one JSON line tagged `"type": "summary"`).
    pub fn print(&self, json: bool) {
        if json {
            let mut value = serde_json::to_value(self).expect("summary serializes");
            value["type"] = "summary".into();
            println!("{value}");
        } else {
            print!("{}", self.to_text());
        }
    }

    pub fn to_text(&self) -> String {
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1} ms"));
        let s = |v: Option<f64>| v.map_or_else(|| "never".to_string(), |v| format!("{v:.2} s"));
        let count = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
        let mut out = String::from("\nsummary\n");
        out.push_str(&format!(
            "  requests {}: failed {} ({} during the fault), partial {} ({} during); hedges {}, retries {}\n",
            self.requests,
            self.failed,
            self.failed_during,
            self.partial,
            self.partial_during,
            count(self.hedges),
            count(self.retries)
        ));
        out.push_str(&format!(
            "  p99 before {} | during {} | after {}  (worst second of each phase)\n",
            ms(self.p99_before_ms),
            ms(self.p99_during_ms),
            ms(self.p99_after_ms)
        ));
        out.push_str(&format!(
            "  whole run: p99 {:.1} ms, max {:.1} ms (deadline {} ms)\n",
            self.p99_ms, self.max_ms, self.deadline_ms
        ));
        if let Some(s) = &self.switched {
            out.push_str(&format!(
                "  switch {} → {}: first answer from {} after {:.2} s; back to {}: after {:.2} s\n",
                s.from, s.to, s.to, s.to_answering_s, s.from, s.back_answering_s
            ));
        }
        if let Some(r) = &self.restored {
            let done = match r.after_s {
                Some(after) => format!("again {after:.2} s after the loss"),
                None => format!("NOT again (short: {})", r.restored.short.join(", ")),
            };
            out.push_str(&format!(
                "  permanent loss: every shard has {} serving copies {done}; {} copies \
                 installed, {} bytes moved\n",
                r.restored.copies,
                r.restored.installed.len(),
                r.restored.bytes
            ));
        }
        for node in &self.nodes {
            let after = match self.restored {
                Some(_) => "left down (--no-restart)".to_string(),
                None => format!(
                    "serving again {} after the heal; out for {}",
                    s(node.serving_after_heal_s),
                    s(node.out_for_s)
                ),
            };
            out.push_str(&format!(
                "  node {}: ejected {} after the fault; {after}\n",
                node.node,
                s(node.ejected_after_s)
            ));
        }
        if let (Some(shard), Some(coverage)) = (&self.shard, self.expected_coverage) {
            out.push_str(&format!(
                "  shard {shard} (and any shard on the same nodes) holds {:.1}% of the \
                 documents: expected coverage {coverage:.3}\n",
                (1.0 - coverage) * 100.0
            ));
        }
        for probe in &self.probes {
            out.push_str(&format!(
                "  at {:.1} s {} → {}\n",
                probe.t_s,
                probe.url,
                probe.describe()
            ));
        }
        for (message, count) in &self.error_samples {
            out.push_str(&format!("  error x{count}: {message}\n"));
        }
        for (why, count) in &self.partial_samples {
            out.push_str(&format!("  partial x{count}: {why}\n"));
        }
        if self.cluster_poll_errors > 0 {
            out.push_str(&format!(
                "  GET /cluster failed {} times during the drill\n",
                self.cluster_poll_errors
            ));
        }
        out
    }
}

fn node_figures(outcome: &TargetOutcome) -> NodeFigures {
    let between = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
        (Some(a), Some(b)) => Some(b.saturating_duration_since(a).as_secs_f64()),
        _ => None,
    };
    NodeFigures {
        node: outcome.node.clone(),
        pid_before: outcome.pid_before,
        ejected_after_s: between(outcome.injected_at, outcome.ejected_at),
        serving_after_heal_s: between(outcome.healed_at, outcome.serving_at),
        out_for_s: between(outcome.injected_at, outcome.serving_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t_s: f64) -> TimelineRow {
        TimelineRow {
            t_s,
            window_s: 1.0,
            ..TimelineRow::default()
        }
    }

    #[test]
    fn rows_overlapping_a_cut_count_as_during() {
        let (inject, heal) = (Some(5.5), Some(9.2));
        assert_eq!(phase_of(&row(5.0), inject, heal), Phase::Before);
        assert_eq!(phase_of(&row(6.0), inject, heal), Phase::During);
        assert_eq!(phase_of(&row(10.0), inject, heal), Phase::During);
        assert_eq!(phase_of(&row(11.0), inject, heal), Phase::After);
        assert_eq!(phase_of(&row(11.0), None, None), Phase::Before);
        assert_eq!(phase_of(&row(30.0), inject, None), Phase::During);
    }
}
