//! Build progress for the operator: an indicatif bar on stderr when it is a terminal
//! (input bytes with ETA when the slice size is known, pages/s, MB/s, documents queued),
//! plain periodic log lines otherwise (CI logs, `--json` runs under a pipe), or nothing.
//!
//! A reporter thread samples shared counters, so the pipeline's hot paths only do
//! relaxed atomic increments.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use corpus::ReadProgress;
use crossbeam_channel::{bounded, RecvTimeoutError, Sender};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// A bar if stderr is a terminal, else log lines.
    #[default]
    Auto,
    /// Log lines every [`LOG_EVERY`].
    Log,
    /// Nothing (library callers, benchmarks).
    Quiet,
}

const LOG_EVERY: Duration = Duration::from_secs(10);
const BAR_EVERY: Duration = Duration::from_millis(250);

/// Counters the pipeline bumps and the reporter reads.
#[derive(Default)]
pub struct Counters {
    /// Pages read (every `<page>`, skipped ones included).
    pub pages: AtomicU64,
    /// Documents handed to the shard writers.
    pub docs: AtomicU64,
}

/// The running reporter; [`Reporter::finish`] stops it.
pub struct Reporter {
    stop: Option<Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Reporter {
    /// Starts reporting on `counters` and the reader's byte `progress`.
    pub fn start(mode: ProgressMode, counters: Arc<Counters>, progress: ReadProgress) -> Self {
        let mode = match mode {
            ProgressMode::Auto if std::io::stderr().is_terminal() => Some(true),
            ProgressMode::Auto | ProgressMode::Log => Some(false),
            ProgressMode::Quiet => None,
        };
        let Some(bar) = mode else {
            return Reporter {
                stop: None,
                handle: None,
            };
        };
        let (stop, stopped) = bounded::<()>(0);
        let handle = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                let sample = Sampler::new(counters, progress);
                if bar {
                    run_bar(sample, &stopped);
                } else {
                    run_log(sample, &stopped);
                }
            })
            .expect("spawn progress thread");
        Reporter {
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// Stops the reporter and waits for it (clears the bar).
    pub fn finish(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        drop(self.stop.take());
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// One reading of the counters, with rates since the start.
struct Sampler {
    counters: Arc<Counters>,
    progress: ReadProgress,
    start: Instant,
}

struct Sample {
    pages: u64,
    docs: u64,
    bytes: u64,
    pages_per_s: f64,
    mb_per_s: f64,
}

impl Sampler {
    fn new(counters: Arc<Counters>, progress: ReadProgress) -> Self {
        Sampler {
            counters,
            progress,
            start: Instant::now(),
        }
    }

    fn sample(&self) -> Sample {
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        let pages = self.counters.pages.load(Ordering::Relaxed);
        let bytes = self.progress.bytes_read();
        Sample {
            pages,
            docs: self.counters.docs.load(Ordering::Relaxed),
            bytes,
            pages_per_s: pages as f64 / secs,
            mb_per_s: bytes as f64 / 1e6 / secs,
        }
    }
}

fn run_bar(sampler: Sampler, stopped: &crossbeam_channel::Receiver<()>) {
    let bar = match sampler.progress.total_bytes() {
        Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
            .with_style(
                ProgressStyle::with_template("{wide_bar} {bytes}/{total_bytes} ETA {eta} | {msg}")
                    .expect("valid template"),
            ),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{spinner} {bytes} | {msg}").expect("valid template"),
        ),
    };
    loop {
        let s = sampler.sample();
        bar.set_position(s.bytes);
        bar.set_message(format!(
            "{} pages ({:.0}/s), {} docs, {:.1} MB/s",
            s.pages, s.pages_per_s, s.docs, s.mb_per_s
        ));
        match stopped.recv_timeout(BAR_EVERY) {
            Err(RecvTimeoutError::Timeout) => continue,
            _ => break,
        }
    }
    bar.finish_and_clear();
}

fn run_log(sampler: Sampler, stopped: &crossbeam_channel::Receiver<()>) {
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(LOG_EVERY) {
        let s = sampler.sample();
        let of_total = match sampler.progress.total_bytes() {
            Some(total) if total > 0 => format!(
                " of {:.1} MB ({:.0}%)",
                total as f64 / 1e6,
                100.0 * s.bytes as f64 / total as f64
            ),
            _ => String::new(),
        };
        tracing::info!(
            "read {:.1} MB{of_total}, {} pages ({:.0}/s), {} docs to shards, {:.1} MB/s",
            s.bytes as f64 / 1e6,
            s.pages,
            s.pages_per_s,
            s.docs,
            s.mb_per_s
        );
    }
}
