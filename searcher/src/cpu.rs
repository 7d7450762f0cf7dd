//! CPU time of processes and threads, read from `/proc` (Linux): what the benchmarks charge
//! each process of a setup, and what a node reports its search pool has cost.

/// User + system CPU seconds of process `pid`.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// User + system CPU seconds of thread `tid` of this process.
pub fn thread_cpu_seconds(tid: i32) -> Option<f64> {
    stat_cpu_seconds(&format!("/proc/self/task/{tid}/stat"))
}

/// Fields 14 and 15 (utime, stime) of a `stat` file, counted after the parenthesised
/// command name, which may hold spaces.
fn stat_cpu_seconds(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| ticks as f64 / per_second as f64)
}

/// The calling thread's id, as `/proc/self/task` names it.
pub fn current_thread_id() -> i32 {
    // SAFETY: gettid(2) has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_and_thread_have_cpu_time() {
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(50) {
            std::hint::black_box(0u64);
        }
        assert!(process_cpu_seconds(std::process::id()).unwrap() > 0.0);
        assert!(thread_cpu_seconds(current_thread_id()).unwrap() >= 0.0);
        assert!(thread_cpu_seconds(-1).is_none());
    }
}
