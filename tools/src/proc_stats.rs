//! What `/proc` (Linux) says about a process, read in one place (through `procfs`): its CPU time, the CPU
//! time of some of its threads (picked by name), its parent, and whether it still runs.
//! The benchmarks charge each process of a setup its CPU time from here, from outside the
//! process: nothing about measuring leaks into the serving code or its wire protocol.

use procfs::process::{Process, Stat};

/// The `stat` of process `pid`, while it exists.
fn stat(pid: u32) -> Option<Stat> {
    Process::new(i32::try_from(pid).ok()?).ok()?.stat().ok()
}

/// User + system CPU seconds of process `pid`; `None` once it is gone.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    stat(pid).map(|stat| seconds(stat.utime + stat.stime))
}

/// User + system CPU seconds of the threads of `pid` whose name starts with `prefix`
/// (a node's search pool: `searcher::node::server::SEARCH_THREAD_PREFIX`). Threads that
/// already exited are not counted.
pub fn threads_cpu_seconds(pid: u32, prefix: &str) -> Option<f64> {
    let tasks = Process::new(i32::try_from(pid).ok()?).ok()?.tasks().ok()?;
    let ticks = tasks
        .filter_map(|task| task.ok()?.stat().ok())
        .filter(|stat| stat.comm.starts_with(prefix))
        .map(|stat| stat.utime + stat.stime)
        .sum();
    Some(seconds(ticks))
}

/// The parent of process `pid`, if it runs.
pub fn parent_pid(pid: u32) -> Option<u32> {
    u32::try_from(stat(pid)?.ppid).ok()
}

/// The command line of process `pid` (program first), while it runs.
pub fn command_line(pid: u32) -> Option<Vec<String>> {
    Process::new(i32::try_from(pid).ok()?).ok()?.cmdline().ok()
}

/// Whether the process is gone: no such pid, or a zombie waiting to be reaped.
pub fn process_gone(pid: u32) -> bool {
    stat(pid).is_none_or(|stat| stat.state == 'Z')
}

/// The effective user id of this process (0: root).
pub fn effective_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn seconds(ticks: u64) -> f64 {
    ticks as f64 / procfs::ticks_per_second().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_and_its_named_threads_have_cpu_time() {
        let spinner = std::thread::Builder::new()
            .name("spin-test".into())
            .spawn(|| {
                let spin = std::time::Instant::now();
                while spin.elapsed() < std::time::Duration::from_millis(50) {
                    std::hint::black_box(0u64);
                }
                std::thread::sleep(std::time::Duration::from_secs(2));
            })
            .unwrap();
        let me = std::process::id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while threads_cpu_seconds(me, "spin-test").unwrap() == 0.0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no CPU seen for the thread"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(process_cpu_seconds(me).unwrap() > 0.0);
        assert_eq!(threads_cpu_seconds(me, "no-such-thread").unwrap(), 0.0);
        assert!(!process_gone(me));
        assert!(parent_pid(me).is_some());
        assert!(process_gone(u32::MAX));
        spinner.join().unwrap();
    }
}
