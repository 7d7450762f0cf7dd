//! What `eval` measured, as one typed model: printed as a table or serialized as JSON.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Figures of one class of known-item queries.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassFigures {
    pub queries: usize,
    pub mrr: f64,
    pub success_at_1: f64,
    pub success_at_10: f64,
}

/// Every class on one engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineFigures {
    pub engine: String,
    pub title: ClassFigures,
    /// Redirect titles searched on an index built without them (the class proper).
    pub redirect_held_out: Option<ClassFigures>,
    /// Redirect titles searched on the engine's own index (with aliases, if it has them).
    pub redirect: ClassFigures,
    pub anchor: ClassFigures,
    /// Share of the AOL benchmark queries with no hit.
    pub aol_zero_results: Option<f64>,
}

/// One `eval` run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub dump: String,
    pub articles: usize,
    /// Ranks searched for the right answer.
    pub depth: usize,
    /// The engine first, then the baseline if asked.
    pub engines: Vec<EngineFigures>,
    /// What the engine costs against the baseline (`--cost`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<super::cost::CostFigures>,
}

impl EvalReport {
    /// A table: one row per engine and class.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{}: {} articles, MRR over the top {}\n\n| engine | class | queries | MRR | success@1 | success@10 |\n| --- | --- | --- | --- | --- | --- |\n",
            self.dump, self.articles, self.depth
        );
        for engine in &self.engines {
            let mut rows = vec![("title", engine.title)];
            if let Some(held_out) = engine.redirect_held_out {
                rows.push(("redirect (held out)", held_out));
            }
            rows.push(("redirect (this index)", engine.redirect));
            rows.push(("anchor", engine.anchor));
            for (class, f) in rows {
                if f.queries == 0 {
                    let _ = writeln!(out, "| {} | {class} | 0 | - | - | - |", engine.engine);
                    continue;
                }
                let _ = writeln!(
                    out,
                    "| {} | {class} | {} | {:.3} | {:.3} | {:.3} |",
                    engine.engine, f.queries, f.mrr, f.success_at_1, f.success_at_10
                );
            }
            if let Some(rate) = engine.aol_zero_results {
                let _ = writeln!(
                    out,
                    "| {} | AOL queries with no hit | | {:.1}% | | |",
                    engine.engine,
                    rate * 100.0
                );
            }
        }
        if let Some(cost) = &self.cost {
            out.push_str(&cost.table());
        }
        out
    }
}
