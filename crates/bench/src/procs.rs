//! What processes cost, read from Linux `/proc` (through the `procfs` crate):
//! CPU seconds and memory of a process and all its descendants, the CPU of
//! a Chromium tree split by process type, and how busy the whole machine's
//! CPUs were.
//!
//! Memory is counted two ways: RSS (what `ps` shows; shared pages counted in
//! every process that maps them, so a sum over forked processes overstates)
//! and PSS (each shared page divided among its sharers, from
//! `/proc/PID/smaps_rollup`), which sums honestly over many processes. The
//! benchmark compares PSS.
//!
//! # Layout
//!
//! - [`sample_tree`]: CPU, RSS and PSS of a tree ([`Which`] processes).
//! - [`ProcessKind`] and [`sample_kinds`]: Chromium's processes told apart
//!   by their command line, and a tree's CPU as a [`CpuByKind`].
//! - [`process_cpu_s`]: one process's CPU.
//! - [`MachineCpu`]: the machine's busy share, from `/proc/stat`.

use std::collections::{HashMap, HashSet};
use std::ops::Index;

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
    /// Only descendants that are Chromium's renderers
    /// ([`ProcessKind::Renderer`]).
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
    let table = process_table(root)?;
    let members: Vec<u32> = match which {
        Which::All => std::iter::once(root)
            .chain(descendants(&table, root))
            .collect(),
        Which::Renderers => descendants(&table, root)
            .into_iter()
            .filter(|pid| kind_of(*pid) == Some(ProcessKind::Renderer))
            .collect(),
    };
    let page = procfs::page_size();
    let mut sample = TreeSample::default();
    for pid in &members {
        let Some(entry) = table.get(pid) else {
            continue;
        };
        sample.processes += 1;
        sample.cpu_s += entry.cpu_s();
        sample.rss_bytes += entry.rss_pages.saturating_mul(page);
        if pss {
            sample.pss_bytes += pss_bytes(*pid).unwrap_or(0);
        }
    }
    Ok(sample)
}

/// Every process now, by pid; [`ProcError::Gone`] if `root` is not among them.
fn process_table(root: u32) -> Result<HashMap<u32, Entry>, ProcError> {
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
    if table.contains_key(&root) {
        return Ok(table);
    }
    let pid = i32::try_from(root).unwrap_or(i32::MAX);
    let source = Process::new(pid)
        .err()
        .unwrap_or(procfs::ProcError::NotFound(None));
    Err(ProcError::Gone { pid: root, source })
}

impl Entry {
    fn cpu_s(&self) -> f64 {
        self.cpu_ticks as f64 / procfs::ticks_per_second().max(1) as f64
    }
}

/// What a process of a Chromium tree is, from its command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcessKind {
    /// The browser process: no `--type` (the tree's root).
    Browser,
    /// `--type=renderer`: the tabs' pages, their JS and wasm.
    Renderer,
    /// `--type=utility --utility-sub-type=network.mojom.NetworkService`:
    /// every connection, HTTP and TLS of the browser.
    Network,
    /// `--type=gpu-process` (compositing, even headless with `--disable-gpu`).
    Gpu,
    /// Any other `--type`: other utilities (storage, audio), the zygotes.
    Other,
}

impl ProcessKind {
    /// Every kind, in the order the report shows them.
    pub const ALL: [ProcessKind; 5] = [
        ProcessKind::Renderer,
        ProcessKind::Network,
        ProcessKind::Browser,
        ProcessKind::Gpu,
        ProcessKind::Other,
    ];

    /// The kind a command line (`/proc/PID/cmdline`) names. Arguments are
    /// NUL-separated, or, where Chromium's zygote rewrote a child's title,
    /// space-separated in one string: both are read.
    pub fn of_cmdline(cmdline: &[u8]) -> ProcessKind {
        let mut kind = None;
        let mut sub_type = None;
        for arg in cmdline.split(|b| *b == 0 || *b == b' ') {
            if let Some(value) = arg.strip_prefix(b"--type=") {
                kind.get_or_insert(value);
            } else if let Some(value) = arg.strip_prefix(b"--utility-sub-type=") {
                sub_type.get_or_insert(value);
            }
        }
        match (kind, sub_type) {
            (None, _) => ProcessKind::Browser,
            (Some(b"renderer"), _) => ProcessKind::Renderer,
            (Some(b"gpu-process"), _) => ProcessKind::Gpu,
            (Some(b"utility"), Some(b"network.mojom.NetworkService")) => ProcessKind::Network,
            (Some(_), _) => ProcessKind::Other,
        }
    }

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            ProcessKind::Browser => "browser",
            ProcessKind::Renderer => "renderer",
            ProcessKind::Network => "network",
            ProcessKind::Gpu => "GPU",
            ProcessKind::Other => "other",
        }
    }

    /// Its place in [`ProcessKind::ALL`].
    fn slot(self) -> usize {
        ProcessKind::ALL
            .iter()
            .position(|k| *k == self)
            .unwrap_or_default()
    }
}

/// The kind of a live process, `None` if it is gone.
fn kind_of(pid: u32) -> Option<ProcessKind> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .map(|cmdline| ProcessKind::of_cmdline(&cmdline))
}

/// CPU seconds per [`ProcessKind`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuByKind([f64; ProcessKind::ALL.len()]);

impl CpuByKind {
    /// Counts `cpu_s` more seconds for `kind`.
    pub fn add(&mut self, kind: ProcessKind, cpu_s: f64) {
        self.0[kind.slot()] += cpu_s;
    }

    /// What each kind used since `earlier` (never below 0: a process that
    /// exited takes its CPU with it).
    pub fn since(&self, earlier: &CpuByKind) -> CpuByKind {
        let mut grown = CpuByKind::default();
        for kind in ProcessKind::ALL {
            grown.add(kind, (self[kind] - earlier[kind]).max(0.0));
        }
        grown
    }

    /// All kinds together.
    pub fn total(&self) -> f64 {
        self.0.iter().sum()
    }
}

impl Index<ProcessKind> for CpuByKind {
    type Output = f64;

    fn index(&self, kind: ProcessKind) -> &f64 {
        &self.0[kind.slot()]
    }
}

/// CPU seconds so far of `root` and its descendants, by [`ProcessKind`].
pub fn sample_kinds(root: u32) -> Result<CpuByKind, ProcError> {
    let table = process_table(root)?;
    let mut split = CpuByKind::default();
    for pid in std::iter::once(root).chain(descendants(&table, root)) {
        if let (Some(entry), Some(kind)) = (table.get(&pid), kind_of(pid)) {
            split.add(kind, entry.cpu_s());
        }
    }
    Ok(split)
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

    /// Command lines as `/proc/PID/cmdline` holds them, from a headless
    /// Chromium 131 on Debian 12: the browser's NUL-separated, its children's
    /// rewritten by the zygote into one space-separated title (with a space
    /// inside a value, `--enable-crash-reporter=,built on Debian ...`).
    const BROWSER: &[u8] = b"/usr/lib/chromium/chromium\0--show-component-extension-options\0--enable-gpu-rasterization\0--no-default-browser-check\0about:blank\0--headless\0--no-sandbox\0--disable-gpu\0--remote-debugging-port=0\0--user-data-dir=/tmp/r2-chromium-x\0";
    const RENDERER: &[u8] = b"/usr/lib/chromium/chromium --type=renderer --crashpad-handler-pid=0 --enable-crash-reporter=,built on Debian GNU/Linux 12 (bookworm) --noerrdialogs --user-data-dir=/tmp/r2-chromium-x --change-stack-guard-on-fork=enable --no-sandbox --remote-debugging-port=0 --ozone-platform=headless --disable-gpu-compositing --lang=en-US --num-raster-threads=1 --renderer-client-id=7 --launch-time-ticks=214794531\0";
    const NETWORK: &[u8] = b"/usr/lib/chromium/chromium --type=utility --utility-sub-type=network.mojom.NetworkService --lang=en-US --service-sandbox-type=none --no-sandbox --use-angle=swiftshader-webgl --crashpad-handler-pid=0 --enable-crash-reporter=,built on Debian GNU/Linux 12 (bookworm) --noerrdialogs --user-data-dir=/tmp/r2-chromium-x --shared-files=v8_context_snapshot_data:100\0";
    const STORAGE: &[u8] = b"/usr/lib/chromium/chromium --type=utility --utility-sub-type=storage.mojom.StorageService --lang=en-US --service-sandbox-type=utility --no-sandbox\0";
    const GPU: &[u8] = b"/usr/lib/chromium/chromium --type=gpu-process --gpu-recent-crash-count=0 --no-sandbox --enable-gpu-rasterization --headless --ozone-platform=headless --use-angle=swiftshader-webgl --gpu-preferences=YAAAAAAAAAAgAAAEAAAAAAAA\0";
    const ZYGOTE: &[u8] = b"/usr/lib/chromium/chromium --type=zygote --no-zygote-sandbox --no-sandbox --headless --crashpad-handler-pid=0 --enable-crash-reporter=,built on Debian GNU/Linux 12 (bookworm)\0";

    #[test]
    fn chromium_processes_are_told_apart_by_their_command_lines() {
        let cases = [
            (BROWSER, ProcessKind::Browser),
            (RENDERER, ProcessKind::Renderer),
            (NETWORK, ProcessKind::Network),
            (STORAGE, ProcessKind::Other),
            (GPU, ProcessKind::Gpu),
            (ZYGOTE, ProcessKind::Other),
        ];
        for (cmdline, kind) in cases {
            assert_eq!(
                ProcessKind::of_cmdline(cmdline),
                kind,
                "{}",
                String::from_utf8_lossy(cmdline)
            );
        }
        // The same renderer with its arguments NUL-separated (not rewritten).
        let separated: Vec<u8> = RENDERER
            .iter()
            .map(|b| if *b == b' ' { 0 } else { *b })
            .collect();
        assert_eq!(ProcessKind::of_cmdline(&separated), ProcessKind::Renderer);
        // Only whole arguments count: a value that mentions a type does not.
        assert_eq!(
            ProcessKind::of_cmdline(b"chromium\0--js-flags=--type=renderer\0"),
            ProcessKind::Browser
        );
        // The network service is the utility whose sub-type says so.
        assert_eq!(
            ProcessKind::of_cmdline(
                b"chromium --type=utility --utility-sub-type=audio.mojom.AudioService"
            ),
            ProcessKind::Other
        );
        assert_eq!(ProcessKind::of_cmdline(b""), ProcessKind::Browser);
    }

    #[test]
    fn cpu_by_kind_subtracts_kind_by_kind() {
        let mut before = CpuByKind::default();
        before.add(ProcessKind::Renderer, 2.0);
        before.add(ProcessKind::Network, 1.0);
        let mut after = before;
        after.add(ProcessKind::Renderer, 3.0);
        after.add(ProcessKind::Gpu, 0.5);
        let mut shrunk = before;
        shrunk.0 = [0.0; ProcessKind::ALL.len()];
        let grown = after.since(&before);
        assert_eq!(grown[ProcessKind::Renderer], 3.0);
        assert_eq!(grown[ProcessKind::Network], 0.0);
        assert_eq!(grown[ProcessKind::Gpu], 0.5);
        assert_eq!(grown.total(), 3.5);
        assert_eq!(shrunk.since(&before).total(), 0.0, "never negative");
        let names: Vec<&str> = ProcessKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names, ["renderer", "network", "browser", "GPU", "other"]);
    }

    #[test]
    fn own_tree_is_split_by_kind() {
        spin_a_tick();
        let split = sample_kinds(std::process::id()).expect("own tree");
        // This test process has no `--type`: all of it counts as a browser.
        assert!(split[ProcessKind::Browser] > 0.0, "{split:?}");
        assert_eq!(split[ProcessKind::Renderer], 0.0);
        assert!(matches!(
            sample_kinds(u32::MAX - 1),
            Err(ProcError::Gone { .. })
        ));
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
