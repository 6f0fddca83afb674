//! What processes cost, read from Linux `/proc` (through the `procfs` crate):
//! CPU seconds and memory of a process and all its descendants, and how busy
//! the whole machine's CPUs were.
//!
//! Memory is counted two ways: RSS (what `ps` shows; shared pages counted in
//! every process that maps them, so a sum over forked processes overstates)
//! and PSS (each shared page divided among its sharers, from
//! `/proc/PID/smaps_rollup`), which sums honestly over many processes. The
//! benchmark compares PSS.

use std::collections::{HashMap, HashSet};

use procfs::process::Process;
use procfs::{CurrentSI, KernelStats};

/// Why `/proc` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// The process this tree starts from is not there (any more).
    #[error("process {pid} is not running")]
    Gone {
        pid: u32,
        #[source]
        source: procfs::ProcError,
    },
    /// The list of processes or the kernel's counters could not be read.
    #[error("reading /proc")]
    Read(#[source] procfs::ProcError),
}

/// Which processes of a tree to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The root and every descendant.
    All,
    /// Only descendants whose command line has `--type=renderer` (Chromium's
    /// renderers; the zygote rewrites their title into one string).
    Renderers,
}

/// A process tree's costs at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TreeSample {
    /// User + system CPU seconds of the live processes so far.
    pub cpu_s: f64,
    pub rss_bytes: u64,
    pub pss_bytes: u64,
    pub processes: usize,
}

impl TreeSample {
    /// The larger memory figures of two samples (CPU and count from `self`).
    pub fn with_peaks_of(self, other: &TreeSample) -> TreeSample {
        TreeSample {
            rss_bytes: self.rss_bytes.max(other.rss_bytes),
            pss_bytes: self.pss_bytes.max(other.pss_bytes),
            processes: self.processes.max(other.processes),
            ..self
        }
    }
}

/// One process as the tree walk needs it.
struct Entry {
    ppid: u32,
    cpu_ticks: u64,
    rss_pages: u64,
}

/// Samples process `root` and its descendants (or only its renderers).
/// Processes that exit during the scan are skipped; `pss` reads each
/// process's `smaps_rollup` (slower: leave it off for CPU-only samples).
pub fn sample_tree(root: u32, which: Which, pss: bool) -> Result<TreeSample, ProcError> {
    let table: HashMap<u32, Entry> = procfs::process::all_processes()
        .map_err(ProcError::Read)?
        .filter_map(|p| {
            let stat = p.ok()?.stat().ok()?;
            let pid = u32::try_from(stat.pid).ok()?;
            let entry = Entry {
                ppid: u32::try_from(stat.ppid).unwrap_or(0),
                cpu_ticks: stat.utime.saturating_add(stat.stime),
                rss_pages: stat.rss,
            };
            Some((pid, entry))
        })
        .collect();
    if !table.contains_key(&root) {
        let pid = i32::try_from(root).unwrap_or(i32::MAX);
        let source = Process::new(pid)
            .err()
            .unwrap_or(procfs::ProcError::NotFound(None));
        return Err(ProcError::Gone { pid: root, source });
    }
    let members: Vec<u32> = match which {
        Which::All => std::iter::once(root)
            .chain(descendants(&table, root))
            .collect(),
        Which::Renderers => descendants(&table, root)
            .into_iter()
            .filter(|pid| is_renderer(*pid))
            .collect(),
    };
    let page = procfs::page_size();
    let ticks = procfs::ticks_per_second().max(1) as f64;
    let mut sample = TreeSample::default();
    for pid in &members {
        let Some(entry) = table.get(pid) else {
            continue;
        };
        sample.processes += 1;
        sample.cpu_s += entry.cpu_ticks as f64 / ticks;
        sample.rss_bytes += entry.rss_pages.saturating_mul(page);
        if pss {
            sample.pss_bytes += pss_bytes(*pid).unwrap_or(0);
        }
    }
    Ok(sample)
}

/// CPU seconds of one process (its threads included), `None` if it is gone.
pub fn process_cpu_s(pid: u32) -> Option<f64> {
    let stat = Process::new(i32::try_from(pid).ok()?).ok()?.stat().ok()?;
    Some(stat.utime.saturating_add(stat.stime) as f64 / procfs::ticks_per_second().max(1) as f64)
}

/// The processes below `root` (not `root` itself).
fn descendants(table: &HashMap<u32, Entry>, root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&pid, entry) in table {
        children.entry(entry.ppid).or_default().push(pid);
    }
    let mut seen = HashSet::from([root]);
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &child in children.get(&parent).into_iter().flatten() {
            if seen.insert(child) {
                found.push(child);
                frontier.push(child);
            }
        }
    }
    found
}

fn is_renderer(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
        cmdline
            .split(|b| *b == 0 || *b == b' ')
            .any(|arg| arg == b"--type=renderer")
    })
}

/// PSS of one process, bytes (`None` if it is gone or unreadable).
fn pss_bytes(pid: u32) -> Option<u64> {
    let rollup = Process::new(i32::try_from(pid).ok()?)
        .ok()?
        .smaps_rollup()
        .ok()?;
    Some(
        rollup
            .memory_map_rollup
            .0
            .iter()
            .filter_map(|map| map.extension.map.get("Pss"))
            .sum(),
    )
}

/// The machine's CPU counters at one moment: busy and total ticks over all CPUs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MachineCpu {
    busy: u64,
    total: u64,
}

impl MachineCpu {
    /// Reads `/proc/stat`.
    pub fn now() -> Result<MachineCpu, ProcError> {
        let cpu = KernelStats::current().map_err(ProcError::Read)?.total;
        let idle = cpu.idle + cpu.iowait.unwrap_or(0);
        let busy = cpu.user
            + cpu.nice
            + cpu.system
            + cpu.irq.unwrap_or(0)
            + cpu.softirq.unwrap_or(0)
            + cpu.steal.unwrap_or(0);
        Ok(MachineCpu {
            busy,
            total: busy + idle,
        })
    }

    /// The share of all CPUs' time that was busy since `earlier`, in percent.
    pub fn busy_pct_since(&self, earlier: &MachineCpu) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        if total == 0 {
            return 0.0;
        }
        100.0 * self.busy.saturating_sub(earlier.busy) as f64 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Burns CPU until this process has used at least one clock tick.
    fn spin_a_tick() {
        let me = std::process::id();
        while process_cpu_s(me).is_none_or(|s| s == 0.0) {
            std::hint::black_box((0..100_000u64).sum::<u64>());
        }
    }

    #[test]
    fn a_tree_holds_its_children_and_their_costs() {
        spin_a_tick();
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep runs");
        let me = std::process::id();
        let all = sample_tree(me, Which::All, true).expect("own tree");
        let _ = child.kill();
        let _ = child.wait();
        assert!(all.processes >= 2, "me and sleep: {all:?}");
        assert!(all.cpu_s > 0.0, "{all:?}");
        assert!(all.rss_bytes > 1 << 20, "{all:?}");
        assert!(
            all.pss_bytes > 0 && all.pss_bytes <= all.rss_bytes,
            "{all:?}"
        );
        let renderers = sample_tree(me, Which::Renderers, false).expect("own tree");
        assert_eq!(renderers.processes, 0);
        assert!(process_cpu_s(me).is_some_and(|s| s > 0.0));
    }

    #[test]
    fn a_missing_root_is_gone() {
        // pid_max is at most 2^22: this pid cannot exist.
        assert!(matches!(
            sample_tree(u32::MAX - 1, Which::All, false),
            Err(ProcError::Gone { .. })
        ));
        assert_eq!(process_cpu_s(u32::MAX - 1), None);
    }

    #[test]
    fn descendants_follow_the_tree() {
        let entry = |ppid| Entry {
            ppid,
            cpu_ticks: 0,
            rss_pages: 0,
        };
        let table = HashMap::from([
            (1, entry(0)),
            (2, entry(1)),
            (3, entry(2)),
            (4, entry(9)),
            (5, entry(1)),
        ]);
        let mut below = descendants(&table, 1);
        below.sort_unstable();
        assert_eq!(below, vec![2, 3, 5]);
    }

    #[test]
    fn machine_cpu_busy_is_a_percentage() {
        let before = MachineCpu::now().expect("/proc/stat");
        // Busy until the kernel has counted some busy ticks since `before`.
        let after = loop {
            std::hint::black_box((0..100_000u64).sum::<u64>());
            let now = MachineCpu::now().expect("/proc/stat");
            if now.busy > before.busy {
                break now;
            }
        };
        let busy = after.busy_pct_since(&before);
        assert!(busy > 0.0 && busy <= 100.0, "{busy}");
        assert_eq!(after.busy_pct_since(&after), 0.0);
    }
}
