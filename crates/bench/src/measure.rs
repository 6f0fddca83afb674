//! Costs over a run's scenario phase, the same way for the page and the
//! baseline: a [`Snapshot`] when the scenario starts and one when it stops
//! give a [`Window`] (CPU seconds of the client's processes, split by
//! Chromium's process types for a browser, of the node, how busy the machine
//! was); a [`Peaks`] sampler keeps the largest memory seen.

use std::time::Instant;

use crate::node::NodeHandle;
use crate::procs::{self, CpuByKind, MachineCpu, ProcError, ProcessKind, TreeSample, Which};

/// The client's processes (the browser's, or the baseline's) and the node, at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    at: Instant,
    client: TreeSample,
    /// The browser's CPU by process type (zero for the baseline).
    kinds: CpuByKind,
    node_cpu_s: Option<f64>,
    /// This benchmark's own process, when the node is not in it.
    bench_cpu_s: f64,
    machine: MachineCpu,
}

impl Snapshot {
    /// Reads the CPU counters of `client_root`'s tree (split by process
    /// type when it is a `browser`), of the node and of the machine.
    pub async fn take(
        client_root: u32,
        browser: bool,
        node: &NodeHandle,
    ) -> Result<Snapshot, ProcError> {
        let node_cpu_s = node.cpu_s();
        let me = std::process::id();
        let bench_cpu_s = if node.pid() == me {
            0.0
        } else {
            procs::process_cpu_s(me).unwrap_or(0.0)
        };
        let (client, kinds, machine) = blocking(move || {
            let client = procs::sample_tree(client_root, Which::All, false)?;
            let kinds = if browser {
                procs::sample_kinds(client_root)?
            } else {
                CpuByKind::default()
            };
            Ok((client, kinds, MachineCpu::now()?))
        })
        .await?;
        Ok(Snapshot {
            at: Instant::now(),
            client,
            kinds,
            node_cpu_s,
            bench_cpu_s,
            machine,
        })
    }
}

/// What the scenario phase cost.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Window {
    /// Wall-clock seconds between the two snapshots.
    pub wall_s: f64,
    /// CPU seconds of the client's processes (all of the browser's, or the
    /// baseline's driver and device processes).
    pub client_cpu_s: f64,
    /// CPU seconds of the browser's processes by type (renderers, network
    /// service, browser process, GPU, others); zero for the baseline.
    pub cpu_split: CpuByKind,
    /// CPU seconds of the node's process (in-process: the benchmark's,
    /// which holds the node).
    pub node_cpu_s: Option<f64>,
    /// CPU seconds of this benchmark's process (measuring), when the node
    /// is not in it.
    pub bench_cpu_s: f64,
    /// Busy share of all the machine's CPUs, percent.
    pub machine_busy_pct: f64,
}

impl Window {
    /// The costs between `start` and `end`.
    pub fn between(start: &Snapshot, end: &Snapshot) -> Window {
        Window {
            wall_s: end.at.saturating_duration_since(start.at).as_secs_f64(),
            client_cpu_s: (end.client.cpu_s - start.client.cpu_s).max(0.0),
            cpu_split: end.kinds.since(&start.kinds),
            node_cpu_s: end
                .node_cpu_s
                .zip(start.node_cpu_s)
                .map(|(b, a)| (b - a).max(0.0)),
            bench_cpu_s: (end.bench_cpu_s - start.bench_cpu_s).max(0.0),
            machine_busy_pct: end.machine.busy_pct_since(&start.machine),
        }
    }

    /// The same window with the client's CPU counted another way: the
    /// baseline's device processes have exited and been reaped by the end
    /// snapshot, so `/proc` no longer holds them, and their CPU comes from
    /// their parent's `getrusage(RUSAGE_CHILDREN)`.
    pub fn with_client_cpu_s(self, client_cpu_s: f64) -> Window {
        Window {
            client_cpu_s,
            ..self
        }
    }

    /// CPU seconds of Chromium's renderers (the tab itself); 0 for the baseline.
    pub fn renderer_cpu_s(&self) -> f64 {
        self.cpu_split[ProcessKind::Renderer]
    }

    /// Cores' worth of CPU that other processes (neither the client, the
    /// node nor this benchmark) used over the window, on a machine of
    /// `cores` CPUs.
    pub fn others_cores(&self, cores: usize) -> f64 {
        if self.wall_s <= 0.0 {
            return 0.0;
        }
        let busy_s = self.machine_busy_pct / 100.0 * cores as f64 * self.wall_s;
        let ours = self.client_cpu_s + self.node_cpu_s.unwrap_or(0.0) + self.bench_cpu_s;
        ((busy_s - ours) / self.wall_s).max(0.0)
    }

    /// Cores' worth of CPU the node used over the window.
    pub fn node_cores(&self) -> Option<f64> {
        self.cores_of(self.node_cpu_s)
    }

    /// Cores' worth of CPU the client's processes used over the window.
    pub fn client_cores(&self) -> Option<f64> {
        self.cores_of(Some(self.client_cpu_s))
    }

    /// `cpu_s` seconds of CPU over the window, in cores (`None` without it
    /// or without time).
    fn cores_of(&self, cpu_s: Option<f64>) -> Option<f64> {
        let wall = self.wall_s;
        cpu_s.filter(|_| wall > 0.0).map(|cpu| cpu / wall)
    }
}

/// The largest memory seen of a client's process tree (PSS and RSS summed over
/// its processes), sampled while a run goes on.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Peaks {
    pub client: TreeSample,
    pub renderers: TreeSample,
}

impl Peaks {
    /// Samples `client_root`'s tree (and its renderers when `renderers`)
    /// and keeps the larger figures. A tree that is gone leaves the peaks as
    /// they were.
    pub async fn observe(&mut self, client_root: u32, renderers: bool) {
        let sampled = blocking(move || {
            let client = procs::sample_tree(client_root, Which::All, true)?;
            let renderers = if renderers {
                procs::sample_tree(client_root, Which::Renderers, true)?
            } else {
                TreeSample::default()
            };
            Ok((client, renderers))
        })
        .await;
        if let Ok((client, renderers)) = sampled {
            self.client = self.client.with_peaks_of(&client);
            self.renderers = self.renderers.with_peaks_of(&renderers);
        }
    }
}

/// Runs a `/proc` scan off the async threads.
async fn blocking<T: Send + 'static>(
    scan: impl FnOnce() -> Result<T, ProcError> + Send + 'static,
) -> Result<T, ProcError> {
    tokio::task::spawn_blocking(scan)
        .await
        .unwrap_or_else(|join| Err(ProcError::Read(procfs::ProcError::Other(join.to_string()))))
}
