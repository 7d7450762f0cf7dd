//! What `/proc` (Linux) says about a process, read in one place: its CPU time, the CPU
//! time of some of its threads (picked by name), its parent, and whether it still runs.
//! The benchmarks charge each process of a setup its CPU time from here, from outside the
//! process: nothing about measuring leaks into the serving code or its wire protocol.

use std::path::Path;

/// The fields of a `/proc/<pid>[/task/<tid>]/stat` file this crate uses.
#[derive(Clone, Debug, PartialEq)]
pub struct Stat {
    /// The command name (a thread's name for a task), at most 15 bytes.
    pub comm: String,
    /// `R`, `S`, `D`, `Z`, `T`...
    pub state: char,
    pub ppid: u32,
    /// User + system time, in clock ticks.
    pub cpu_ticks: u64,
}

impl Stat {
    /// Parses a `stat` line: the name is parenthesised and may hold spaces and `)`, so the
    /// fields are counted from the last `)`.
    pub fn parse(line: &str) -> Option<Stat> {
        let open = line.find('(')?;
        let (name, rest) = line[open + 1..].rsplit_once(')')?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After the name: state (field 3), ppid (4) ... utime (14) and stime (15).
        let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
        Some(Stat {
            comm: name.to_string(),
            state: fields.first()?.chars().next()?,
            ppid: fields.get(1)?.parse().ok()?,
            cpu_ticks: ticks(11)? + ticks(12)?,
        })
    }

    fn read(path: &Path) -> Option<Stat> {
        Stat::parse(&std::fs::read_to_string(path).ok()?)
    }
}

/// User + system CPU seconds of process `pid`; `None` once it is gone.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = Stat::read(&Path::new("/proc").join(pid.to_string()).join("stat"))?;
    Some(seconds(stat.cpu_ticks))
}

/// User + system CPU seconds of the threads of `pid` whose name starts with `prefix`
/// (a node's search pool: `searcher::node::server::SEARCH_THREAD_PREFIX`). Threads that
/// already exited are not counted.
pub fn threads_cpu_seconds(pid: u32, prefix: &str) -> Option<f64> {
    let tasks = Path::new("/proc").join(pid.to_string()).join("task");
    let ticks = std::fs::read_dir(tasks)
        .ok()?
        .filter_map(|task| Stat::read(&task.ok()?.path().join("stat")))
        .filter(|stat| stat.comm.starts_with(prefix))
        .map(|stat| stat.cpu_ticks)
        .sum();
    Some(seconds(ticks))
}

/// The parent of process `pid`, if it runs.
pub fn parent_pid(pid: u32) -> Option<u32> {
    Some(Stat::read(&Path::new("/proc").join(pid.to_string()).join("stat"))?.ppid)
}

/// Whether the process is gone: no such pid, or a zombie waiting to be reaped.
pub fn process_gone(pid: u32) -> bool {
    Stat::read(&Path::new("/proc").join(pid.to_string()).join("stat"))
        .is_none_or(|stat| stat.state == 'Z')
}

/// The effective user id of this process (0: root).
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn seconds(ticks: u64) -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    ticks as f64 / per_second.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names_parse() {
        let line = "42 (leaf-0) (x)) S 7 42 42 0 -1 4194560 1 0 0 0 150 25 0 0 20 0 3 0";
        let stat = Stat::parse(line).unwrap();
        assert_eq!(stat.comm, "leaf-0) (x)");
        assert_eq!((stat.state, stat.ppid, stat.cpu_ticks), ('S', 7, 175));
        assert_eq!(Stat::parse("42 (truncated"), None);
    }

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
