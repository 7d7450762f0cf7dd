//! [`InFlight`]: counting work in progress with a guard, so every return path (errors,
//! panics unwinding, cancelled futures) uncounts it. Nodes report the count in their health
//! answers; nodes and the front-end also read it to spend spare capacity only when there is
//! some (splitting a request over idle threads, fetching documents speculatively).

use std::sync::atomic::{AtomicUsize, Ordering};

/// One unit of work counted in `counter` until dropped.
pub struct InFlight<'a> {
    counter: &'a AtomicUsize,
    /// How many others were in flight when this one entered.
    pub others: usize,
}

impl<'a> InFlight<'a> {
    pub fn enter(counter: &'a AtomicUsize) -> Self {
        let others = counter.fetch_add(1, Ordering::Relaxed);
        InFlight { counter, others }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_until_dropped_and_sees_the_others() {
        let counter = AtomicUsize::new(0);
        let first = InFlight::enter(&counter);
        let second = InFlight::enter(&counter);
        assert_eq!((first.others, second.others), (0, 1));
        drop(first);
        assert_eq!(counter.load(Ordering::Relaxed), 1);
        drop(second);
        assert_eq!(counter.load(Ordering::Relaxed), 0);
    }
}
