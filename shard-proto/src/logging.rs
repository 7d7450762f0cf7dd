//! Process logging for every binary of the workspace: stderr, filtered by `RUST_LOG`, and
//! rate-limited per call site, so that no input can flood the log.
//!
//! Anything a request can trigger may log (a refused query, a shard that failed on odd
//! input, a caught panic, a warning inside tantivy, `accept` failing under fd
//! exhaustion), and one hostile frame can trigger it a million times. Rather than
//! remembering a special macro at each such place, the limit is one filter in front of
//! the only log output: each call site (one `warn!` line in the source, or tantivy's
//! `log` records, which share one call site per level) may print [`BURST`] lines per
//! [`WINDOW`]; the rest are counted, and the count is printed once the window is over.
//! Caught panics go through the same path (the panic hook logs them as events), instead
//! of the default hook's unconditional print.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::callsite::Identifier;
use tracing::subscriber::Interest;
use tracing::Metadata;
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{filter::FilterExt, EnvFilter, Layer};

/// Lines one call site may print per [`WINDOW`].
pub const BURST: u32 = 20;
/// The rate limit's window.
pub const WINDOW: Duration = Duration::from_secs(10);

/// Logs to stderr, filtered by `RUST_LOG` (default `info`) and rate-limited per call site;
/// panics are logged through the same limit.
pub fn init_logging() {
    let env = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let output = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_filter(env.and(RateLimit::new(BURST, WINDOW)));
    if tracing_subscriber::registry()
        .with(output)
        .try_init()
        .is_ok()
    {
        std::panic::set_hook(Box::new(|info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("unnamed");
            tracing::error!(thread = name, "panic: {info}");
        }));
    }
}

/// A per-call-site limit of `burst` events per `window` (spans are never limited).
pub struct RateLimit {
    burst: u32,
    window: Duration,
    state: Mutex<Sites>,
}

#[derive(Default)]
struct Sites {
    /// Call site → (window start, events seen in it, where the site is).
    sites: HashMap<Identifier, Site>,
}

struct Site {
    window_start: Instant,
    seen: u32,
    location: String,
}

impl RateLimit {
    pub fn new(burst: u32, window: Duration) -> Self {
        RateLimit {
            burst,
            window,
            state: Mutex::new(Sites::default()),
        }
    }

    /// Whether one more event of `meta`'s call site may print at `now`. When a site's
    /// window ends with events suppressed, says how many (straight to stderr: logging
    /// from inside the log filter would re-enter it).
    pub fn admit(&self, meta: &Metadata<'_>, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let site = state.sites.entry(meta.callsite()).or_insert_with(|| Site {
            window_start: now,
            seen: 0,
            location: format!(
                "{}:{}",
                meta.file().unwrap_or(meta.target()),
                meta.line().unwrap_or(0)
            ),
        });
        if now.duration_since(site.window_start) >= self.window {
            if site.seen > self.burst {
                let suppressed = site.seen - self.burst;
                let _ = writeln!(
                    std::io::stderr(),
                    "log: {suppressed} more lines from {} were suppressed in {:?}",
                    site.location,
                    self.window
                );
            }
            site.window_start = now;
            site.seen = 0;
        }
        site.seen = site.seen.saturating_add(1);
        site.seen <= self.burst
    }
}

impl<S> Filter<S> for RateLimit {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        !meta.is_event() || self.admit(meta, Instant::now())
    }

    fn callsite_enabled(&self, _: &'static Metadata<'static>) -> Interest {
        // Never cache a decision: the answer changes with time.
        Interest::sometimes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex as StdMutex};

    /// A writer that keeps every line in memory.
    #[derive(Clone, Default)]
    struct Lines(Arc<StdMutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn printed(lines: &Lines) -> usize {
        lines
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    }

    #[test]
    fn a_site_prints_its_burst_per_window_then_resumes() {
        let lines = Lines::default();
        let writer = lines.clone();
        let window = Duration::from_millis(200);
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(move || writer.clone())
            .with_filter(RateLimit::new(3, window));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let flood = |n| (0..n).for_each(|i| tracing::warn!(i, "hostile input"));
            flood(1000);
            assert_eq!(printed(&lines), 3);
            // Another call site has its own budget.
            tracing::warn!("another site");
            assert_eq!(printed(&lines), 4);
            // Once the window is over, the site prints again.
            std::thread::sleep(window * 2);
            flood(10);
            assert_eq!(printed(&lines), 7);
        });
    }
}
