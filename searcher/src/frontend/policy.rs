//! Retry and hedge policy knobs, and the hedge budget.
//!
//! tower's `hedge::Hedge` re-sends to the same inner service and its `retry::Retry` knows
//! nothing of replicas or of one request carrying many shards, so the decisions are made
//! by the scatter loop in `scatter.rs` and the limits live here: hedges are capped by a token
//! bucket earning [`HEDGE_RATIO`] of a token per search (so at most ~5% of searches
//! hedge, with a small burst), which keeps a slow cluster from doubling its own load.

use parking_lot::Mutex;

/// Fraction of searches that may hedge.
pub const HEDGE_RATIO: f64 = 0.05;
/// Most hedges that can be saved up while all is well.
pub const HEDGE_BURST: f64 = 5.0;

/// A token bucket refilled by searches, not by time: "5% of requests" whatever the rate.
#[derive(Debug)]
pub struct HedgeBudget {
    tokens: Mutex<f64>,
    ratio: f64,
    burst: f64,
}

impl Default for HedgeBudget {
    fn default() -> Self {
        Self::new(HEDGE_RATIO, HEDGE_BURST)
    }
}

impl HedgeBudget {
    pub fn new(ratio: f64, burst: f64) -> Self {
        HedgeBudget {
            // Start with one token so the first slow node after start-up can be hedged.
            tokens: Mutex::new(1.0_f64.min(burst)),
            ratio,
            burst,
        }
    }

    /// One search happened: earn a fraction of a token.
    pub fn deposit(&self) {
        let mut tokens = self.tokens.lock();
        *tokens = (*tokens + self.ratio).min(self.burst);
    }

    /// Takes a token if there is one.
    pub fn try_take(&self) -> bool {
        let mut tokens = self.tokens.lock();
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_allows_about_five_percent() {
        let budget = HedgeBudget::new(0.05, 5.0);
        let mut hedged = 0;
        for _ in 0..1000 {
            budget.deposit();
            if budget.try_take() {
                hedged += 1;
            }
        }
        assert!((45..=55).contains(&hedged), "{hedged}");
    }

    #[test]
    fn budget_saves_at_most_the_burst() {
        let budget = HedgeBudget::new(0.05, 3.0);
        for _ in 0..10_000 {
            budget.deposit();
        }
        let taken = (0..10).filter(|_| budget.try_take()).count();
        assert_eq!(taken, 3);
    }
}
