//! The benchmark's results as rows, verdicts and Markdown: one row per page
//! run and per baseline run, the largest device count each series keeps up
//! with, the page : baseline ratios, the goals, what ran out where a run
//! broke, and what would move it.

use std::fmt::Write as _;
use std::time::Duration;

use r2_core::config::SocketsMode;
use r2_core::metrics::Percentiles;
use r2_core::scenario::ScenarioKind;

use crate::baseline::{BaselineOutcome, BaselineRun};
use crate::machine::MachineFacts;
use crate::plan::{BenchPlan, MAX_LAG_P99_MS, MIN_ACHIEVED_RATIO};
use crate::tab::{Outcome, TabRun};

/// The machine is called saturated at this busy share of all its CPUs.
pub const SATURATED_PCT: f64 = 90.0;
/// Requests in flight beyond the browser's 6 connections per host.
pub const BROWSER_CONNECTIONS: u64 = 6;
/// The goals of the issue.
pub const GOAL_DEVICES: u32 = 2000;
pub const GOAL_RATIO: f64 = 20.0;
pub const GOAL_TAB_BYTES_PER_DEVICE: f64 = 20.0 * 1024.0;

const MIB: f64 = 1024.0 * 1024.0;

/// What a run that did not keep up ran out of.
#[derive(Debug, Clone, PartialEq)]
pub enum Limit {
    /// The run did not finish in its time.
    Time { phase: String, after: Duration },
    /// Not every device could be created.
    Devices {
        created: u64,
        requested: u32,
        error: Option<String>,
    },
    /// The tab's main thread was late (the page's own bottleneck check).
    MainThread { why: String },
    /// The machine's CPUs were busy.
    MachineCpu {
        cores: usize,
        busy_pct: f64,
        browser_s: f64,
        node_s: Option<f64>,
        wall_s: f64,
    },
    /// Requests queued in the tab beyond the browser's connections.
    Http { in_flight: u64 },
    /// Requests failed.
    Errors { count: u64, kind: String },
    /// Fewer requests were answered than intended, with no other sign.
    Sends { ratio: f64 },
}

impl Limit {
    /// The limit in words.
    pub fn describe(&self) -> String {
        match self {
            Limit::Time { phase, after } => {
                format!("time: still `{phase}` after {} s", after.as_secs())
            }
            Limit::Devices {
                created,
                requested,
                error,
            } => format!(
                "devices: {created} of {requested} created{}",
                error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
            ),
            Limit::MainThread { why } => format!("the tab's main thread: {why}"),
            Limit::MachineCpu {
                cores,
                busy_pct,
                browser_s,
                node_s,
                wall_s,
            } => format!(
                "CPU: the machine's {cores} cores were {busy_pct:.0} % busy (browser {browser_s:.1} s, node {} of CPU in {wall_s:.1} s)",
                node_s.map_or("?".to_owned(), |n| format!("{n:.1} s"))
            ),
            Limit::Http { in_flight } => format!(
                "HTTP: up to {in_flight} requests in flight over the browser's {BROWSER_CONNECTIONS} connections to the node"
            ),
            Limit::Errors { count, kind } => format!("errors: {count} ({kind})"),
            Limit::Sends { ratio } => {
                format!("sends: {:.1} % of the intended requests answered", 100.0 * ratio)
            }
        }
    }

    /// What would move this limit.
    pub fn remedy(&self) -> &'static str {
        match self {
            Limit::Time { .. } => "joining is quadratic (each device's `sentantAll` lists every sentant, as a phone's does): one listing per batch of joining devices, and more unloads in flight while deleting",
            Limit::Devices { .. } => "a browser opens about 255 websockets: `shared` subscriptions (or more tabs and machines) for more devices",
            Limit::MainThread { .. } => "move the device timers, throttle and send scheduler into a Web Worker (or several), and repaint the device tiles less often at high counts",
            Limit::MachineCpu { .. } => "give the node its own machine: on these 2 cores Chromium, the node and the measurement share the CPU",
            Limit::Http { .. } | Limit::Sends { .. } => "HTTP/2 to the node (many requests on one connection instead of 6 per host over HTTP/1.1), or batching several devices' sends into one request",
            Limit::Errors { .. } => "see the errors' kinds in the page's summary: most are timeouts of a saturated node or tab",
        }
    }
}

/// One page run with what it intended.
#[derive(Debug, Clone)]
pub struct PageRow {
    pub run: TabRun,
    /// `sentantSend` requests the run intended ([`crate::plan::intended_requests`]).
    pub intended: u64,
}

impl PageRow {
    pub fn scenario(&self) -> ScenarioKind {
        self.run.config.scenario
    }

    pub fn sockets(&self) -> SocketsMode {
        self.run.config.sockets
    }

    pub fn devices(&self) -> u32 {
        self.run.config.devices
    }

    /// Answered `sentantSend` requests.
    pub fn achieved(&self) -> u64 {
        self.run.summary.as_ref().map_or(0, |s| s.sends_ok)
    }

    /// Achieved / intended (0 when nothing was intended).
    pub fn ratio(&self) -> f64 {
        ratio(self.achieved(), self.intended)
    }

    pub fn lag_p99_ms(&self) -> Option<f64> {
        self.run.summary.as_ref().map(|s| s.scheduler_lag_ms.p99)
    }

    /// Errors the page counted, all kinds.
    pub fn errors(&self) -> u64 {
        self.run
            .summary
            .as_ref()
            .map_or(0, |s| s.errors.iter().map(|e| e.count).sum())
    }

    /// Lag p99 ≤ 20 ms and at least 99 % of the intended requests answered.
    pub fn keeps_up(&self) -> bool {
        self.run.outcome == Outcome::Finished
            && self.lag_p99_ms().is_some_and(|lag| lag <= MAX_LAG_P99_MS)
            && self.ratio() >= MIN_ACHIEVED_RATIO
    }

    /// What ran out, for a run that did not keep up (empty if it did).
    pub fn limits(&self, cores: usize) -> Vec<Limit> {
        if self.keeps_up() {
            return Vec::new();
        }
        let mut limits = Vec::new();
        if let Outcome::TimedOut { after, phase } = &self.run.outcome {
            limits.push(Limit::Time {
                phase: phase.clone(),
                after: *after,
            });
        }
        let window = &self.run.window;
        if window.machine_busy_pct >= SATURATED_PCT {
            limits.push(Limit::MachineCpu {
                cores,
                busy_pct: window.machine_busy_pct,
                browser_s: window.client_cpu_s,
                node_s: window.node_cpu_s,
                wall_s: window.wall_s,
            });
        }
        let Some(summary) = &self.run.summary else {
            return limits;
        };
        if summary.devices_created < u64::from(summary.devices_requested) {
            limits.push(Limit::Devices {
                created: summary.devices_created,
                requested: summary.devices_requested,
                error: summary
                    .errors
                    .iter()
                    .max_by_key(|e| e.count)
                    .map(|e| format!("{}: {}", e.kind, e.example)),
            });
        }
        if let Some(why) = &summary.tab_bottleneck_why {
            limits.push(Limit::MainThread { why: why.clone() });
        }
        if summary.fetch_queue_max > BROWSER_CONNECTIONS * 4 && self.ratio() < MIN_ACHIEVED_RATIO {
            limits.push(Limit::Http {
                in_flight: summary.fetch_queue_max,
            });
        }
        if let Some(top) = summary.errors.iter().max_by_key(|e| e.count) {
            limits.push(Limit::Errors {
                count: self.errors(),
                kind: top.kind.clone(),
            });
        }
        if limits.is_empty() {
            limits.push(Limit::Sends { ratio: self.ratio() });
        }
        limits
    }
}

/// `a / b`, 0 when `b` is 0.
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Page : baseline at one device count.
#[derive(Debug, Clone, PartialEq)]
pub struct Ratio {
    pub devices: u32,
    pub sockets: SocketsMode,
    /// CPU ms per device per second of scenario: page (all browser processes), baseline (device processes).
    pub page_cpu_ms: f64,
    pub baseline_cpu_ms: f64,
    /// PSS peak, all processes: page (the browser), baseline (driver and device processes).
    pub page_pss_mib: f64,
    pub baseline_pss_mib: f64,
    /// PSS each device added: page (browser peak − idle, / devices), baseline (PSS / processes).
    pub page_pss_per_device_kib: f64,
    pub baseline_pss_per_device_kib: f64,
}

impl Ratio {
    /// How many times more CPU the baseline used per device.
    pub fn cpu(&self) -> f64 {
        times(self.baseline_cpu_ms, self.page_cpu_ms)
    }

    /// How many times more memory the baseline used, all processes counted.
    pub fn memory(&self) -> f64 {
        times(self.baseline_pss_mib, self.page_pss_mib)
    }

    /// How many times more memory each baseline device added.
    pub fn memory_per_device(&self) -> f64 {
        times(self.baseline_pss_per_device_kib, self.page_pss_per_device_kib)
    }
}

/// `a / b`, infinite when `b` is 0 and `a` is not.
fn times(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else if a > 0.0 {
        f64::INFINITY
    } else {
        0.0
    }
}

/// Everything one invocation measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub machine: MachineFacts,
    pub plan: BenchPlan,
    /// How the node ran.
    pub node: String,
    pub pages: Vec<PageRow>,
    pub baselines: Vec<BaselineRun>,
    /// Runs not made, and why (time budget, a series that broke).
    pub skipped: Vec<String>,
    /// Runs that could not be measured, with the error.
    pub failures: Vec<String>,
    pub elapsed: Duration,
}

impl Report {
    /// The largest device count of a series that kept up (lag p99 ≤ 20 ms,
    /// achieved/intended ≥ 0.99), `None` if none did.
    pub fn capacity(&self, scenario: ScenarioKind, sockets: SocketsMode) -> Option<u32> {
        self.series(scenario, sockets)
            .filter(|row| row.keeps_up())
            .map(PageRow::devices)
            .max()
    }

    fn series(&self, scenario: ScenarioKind, sockets: SocketsMode) -> impl Iterator<Item = &PageRow> {
        self.pages
            .iter()
            .filter(move |row| row.scenario() == scenario && row.sockets() == sockets)
    }

    /// The first run of a series that did not keep up.
    fn first_break(&self, scenario: ScenarioKind, sockets: SocketsMode) -> Option<&PageRow> {
        self.series(scenario, sockets).find(|row| !row.keeps_up())
    }

    /// Page : baseline at each count where both ran the sweep and finished.
    pub fn ratios(&self) -> Vec<Ratio> {
        let mut ratios = Vec::new();
        for base in &self.baselines {
            let Some(report) = base.report() else {
                continue;
            };
            let processes = u64::from(report.processes.max(1));
            let pages = self.pages.iter().filter(|row| {
                row.scenario() == ScenarioKind::Sweep
                    && row.devices() == base.devices
                    && row.run.outcome == Outcome::Finished
                    && row.run.window.wall_s > 0.0
            });
            for row in pages {
                let devices = f64::from(row.devices());
                let memory = &row.run.memory;
                ratios.push(Ratio {
                    devices: base.devices,
                    sockets: row.sockets(),
                    page_cpu_ms: 1000.0 * row.run.window.client_cpu_s / devices / row.run.window.wall_s,
                    baseline_cpu_ms: 1000.0 * base.window.client_cpu_s
                        / processes as f64
                        / report.ran_s.max(f64::MIN_POSITIVE),
                    page_pss_mib: memory.browser_peak_pss_bytes as f64 / MIB,
                    baseline_pss_mib: base.peaks.client.pss_bytes as f64 / MIB,
                    page_pss_per_device_kib: memory
                        .browser_pss_per_device_bytes(u64::from(row.devices()))
                        .unwrap_or(0.0)
                        / 1024.0,
                    baseline_pss_per_device_kib: base.peaks.client.pss_bytes as f64
                        / processes as f64
                        / 1024.0,
                });
            }
        }
        ratios
    }

    /// The goals, each with whether it was met and, if not, why.
    pub fn goals(&self) -> Vec<Goal> {
        let mut goals = Vec::new();
        let scenarios: Vec<ScenarioKind> = self
            .plan
            .series
            .iter()
            .filter(|(_, mode)| *mode == SocketsMode::Shared)
            .map(|(scenario, _)| *scenario)
            .collect();
        for scenario in scenarios {
            let capacity = self.capacity(scenario, SocketsMode::Shared);
            let limits = self
                .first_break(scenario, SocketsMode::Shared)
                .map(|row| row.limits(self.machine.cores))
                .unwrap_or_default();
            goals.push(Goal {
                name: format!("≥ {GOAL_DEVICES} devices in one tab, `shared`, `{scenario}`, lag p99 ≤ {MAX_LAG_P99_MS} ms"),
                measured: capacity.map_or("no count kept up".to_owned(), |n| format!("{n} devices")),
                met: capacity.is_some_and(|n| n >= GOAL_DEVICES),
                limits,
            });
        }
        let ratios = self.ratios();
        let sweep_shared = ratios
            .iter()
            .filter(|r| r.sockets == SocketsMode::Shared)
            .max_by_key(|r| r.devices)
            .or_else(|| ratios.iter().max_by_key(|r| r.devices));
        if let Some(r) = sweep_shared {
            let worst = r.cpu().min(r.memory());
            goals.push(Goal {
                name: format!("≥ {GOAL_RATIO}× less CPU and memory per device than the baseline"),
                measured: format!(
                    "at {} devices (`{}`): CPU {:.1}×, memory {:.1}× all-in ({:.1}× per added device)",
                    r.devices,
                    r.sockets,
                    r.cpu(),
                    r.memory(),
                    r.memory_per_device()
                ),
                met: worst >= GOAL_RATIO,
                limits: Vec::new(),
            });
        }
        let largest_shared = self
            .pages
            .iter()
            .filter(|row| row.sockets() == SocketsMode::Shared && row.run.outcome == Outcome::Finished)
            .max_by_key(|row| row.devices());
        if let Some(row) = largest_shared {
            let per_device = row
                .run
                .memory
                .per_device_bytes(u64::from(row.devices()))
                .unwrap_or(0.0);
            goals.push(Goal {
                name: "≤ 20 KB of tab memory (JS heap + wasm) per virtual device".to_owned(),
                measured: format!(
                    "{:.1} KB per device at {} devices (`{}`, `shared`)",
                    per_device / 1024.0,
                    row.devices(),
                    row.scenario()
                ),
                met: per_device <= GOAL_TAB_BYTES_PER_DEVICE,
                limits: Vec::new(),
            });
        }
        goals
    }

    /// The whole report in Markdown (what `bench/RESULTS.md` holds).
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(out, "# r2-stress capacity benchmark\n");
        let _ = writeln!(
            out,
            "Written by `cargo xtask bench` ({} form) on {}; the whole invocation took {:.0} s.\n",
            if self.plan.counts.len() == 1 { "quick" } else { "full" },
            m.date,
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(out, "## Machine\n");
        let load = |l: &[f32; 3]| format!("{:.2} / {:.2} / {:.2}", l[0], l[1], l[2]);
        let facts = [
            ("CPU", format!("{} × {}", m.cores, m.cpu_model)),
            ("memory", format!("{:.1} GiB", m.memory_gib)),
            ("kernel", m.kernel.clone()),
            ("load average (1/5/15 min) at start", load(&m.load_at_start)),
            (
                "load average at end",
                m.load_at_end.as_ref().map_or("?".to_owned(), load),
            ),
            ("browser", m.browser.clone().unwrap_or_else(|| "?".to_owned())),
            ("baseline", m.python.clone()),
            ("node", self.node.clone()),
        ];
        out.push_str(&table(
            &["", ""],
            facts.into_iter().map(|(k, v)| vec![k.to_owned(), v]).collect(),
        ));
        let plan = &self.plan;
        let _ = writeln!(
            out,
            "\nEach run: {} s of scenario, seed {}, devices joining over about 5 s; a series stops at its first run that does not keep up.\n",
            plan.duration_s, plan.seed
        );
        out.push_str(&self.pages_markdown());
        out.push_str(&self.capacity_markdown());
        out.push_str(&self.baseline_markdown());
        out.push_str(&self.ratios_markdown());
        out.push_str(&self.goals_markdown());
        if !self.skipped.is_empty() || !self.failures.is_empty() {
            let _ = writeln!(out, "\n## Not run or not measured\n");
            for line in self.skipped.iter().chain(&self.failures) {
                let _ = writeln!(out, "- {line}");
            }
        }
        out.push_str(DEFINITIONS);
        out
    }

    fn pages_markdown(&self) -> String {
        let rows = self
            .pages
            .iter()
            .map(|row| page_cells(row, self.plan.duration_s, self.machine.cores))
            .collect();
        format!("## The page, one tab\n\n{}", table(PAGE_HEADERS, rows))
    }

    fn capacity_markdown(&self) -> String {
        let mut out = format!(
            "\n## Capacity: the largest device count with lag p99 ≤ {MAX_LAG_P99_MS} ms and achieved/intended ≥ {MIN_ACHIEVED_RATIO}\n\n"
        );
        for (scenario, sockets) in &self.plan.series {
            let capacity = self.capacity(*scenario, *sockets);
            let _ = writeln!(
                out,
                "- `{scenario}`, `{sockets}`: {}",
                capacity.map_or("none of the counts run".to_owned(), |n| format!("**{n}** devices"))
            );
        }
        out
    }

    fn baseline_markdown(&self) -> String {
        if self.baselines.is_empty() {
            return String::new();
        }
        let rows = self
            .baselines
            .iter()
            .map(|run| baseline_cells(run))
            .collect();
        format!(
            "\n## The baseline: the seed's script, one Python process per device (`sweep`, no subscriptions)\n\n{}\nThe baseline runs at the counts up to {} only: each device is a whole Python process (see the largest process's RSS), and thousands would not fit this machine.\n",
            table(BASELINE_HEADERS, rows),
            self.plan.baseline_max
        )
    }

    fn ratios_markdown(&self) -> String {
        let ratios = self.ratios();
        if ratios.is_empty() {
            return String::new();
        }
        let rows = ratios
            .iter()
            .map(|r| {
                vec![
                    r.devices.to_string(),
                    format!("`{}`", r.sockets),
                    format!("{:.2} : {:.2}", r.page_cpu_ms, r.baseline_cpu_ms),
                    format!("**{:.1}×**", r.cpu()),
                    format!("{:.0} : {:.0}", r.page_pss_mib, r.baseline_pss_mib),
                    format!("**{:.1}×**", r.memory()),
                    format!("{:.1} : {:.0}", r.page_pss_per_device_kib, r.baseline_pss_per_device_kib),
                    format!("{:.1}×", r.memory_per_device()),
                ]
            })
            .collect();
        format!(
            "\n## Page : baseline, `sweep`\n\n{}",
            table(
                &[
                    "devices",
                    "page sockets",
                    "CPU ms per device-second, page : baseline",
                    "baseline uses",
                    "PSS MiB, page : baseline",
                    "baseline uses",
                    "PSS KiB added per device, page : baseline",
                    "baseline uses",
                ],
                rows
            )
        )
    }

    fn goals_markdown(&self) -> String {
        let mut out = String::from("\n## Goals\n\n");
        let mut remedies: Vec<&'static str> = Vec::new();
        for goal in self.goals() {
            let _ = writeln!(
                out,
                "- {} **{}**: {}.",
                goal.name,
                if goal.met { "met" } else { "missed" },
                goal.measured
            );
            if !goal.met {
                for limit in &goal.limits {
                    let _ = writeln!(out, "  - ran out of {}", limit.describe());
                    if !remedies.contains(&limit.remedy()) {
                        remedies.push(limit.remedy());
                    }
                }
            }
        }
        for row in self.pages.iter().filter(|r| !r.keeps_up()) {
            for limit in row.limits(self.machine.cores) {
                if !remedies.contains(&limit.remedy()) {
                    remedies.push(limit.remedy());
                }
            }
        }
        if !remedies.is_empty() {
            out.push_str("\nWhat would move the limits seen here:\n\n");
            for remedy in remedies {
                let _ = writeln!(out, "- {remedy}.");
            }
        }
        out
    }
}

/// One of the goals, judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Goal {
    pub name: String,
    pub measured: String,
    pub met: bool,
    /// What ran out, where known.
    pub limits: Vec<Limit>,
}

pub const PAGE_HEADERS: &[&str] = &[
    "scenario",
    "sockets",
    "devices",
    "req/s intended",
    "req/s achieved",
    "achieved/ intended",
    "lag p99 ms",
    "fetch queue max",
    "signal p50 / p99 ms",
    "tab MB (heap+wasm)",
    "tab KB/ device",
    "renderer CPU s",
    "browser CPU s",
    "node CPU s",
    "machine busy %",
    "errors",
    "keeps up",
    "what ran out",
];

/// The cells of one page row.
pub fn page_cells(row: &PageRow, duration_s: f64, cores: usize) -> Vec<String> {
    let run = &row.run;
    let summary = run.summary.as_ref();
    let devices = match summary {
        Some(s) if s.devices_created < u64::from(s.devices_requested) => {
            format!("{} ({} created)", row.devices(), s.devices_created)
        }
        _ => row.devices().to_string(),
    };
    let signal = summary
        .map(|s| percentiles(&s.signal_latency_ms))
        .unwrap_or_else(dash);
    let window = &run.window;
    vec![
        format!("`{}`", row.scenario()),
        format!("`{}`", row.sockets()),
        devices,
        format!("{:.0}", row.intended as f64 / duration_s),
        format!("{:.0}", row.achieved() as f64 / duration_s),
        format!("{:.3}", row.ratio()),
        row.lag_p99_ms().map_or_else(dash, |l| format!("{l:.1}")),
        summary.map_or_else(dash, |s| s.fetch_queue_max.to_string()),
        signal,
        format!("{:.1}", run.memory.peak_bytes as f64 / MIB),
        run.memory
            .per_device_bytes(u64::from(row.devices()))
            .map_or_else(dash, |b| format!("{:.1}", b / 1024.0)),
        format!("{:.1}", window.renderer_cpu_s),
        format!("{:.1}", window.client_cpu_s),
        window.node_cpu_s.map_or_else(dash, |s| format!("{s:.1}")),
        format!("{:.0}", window.machine_busy_pct),
        row.errors().to_string(),
        if row.keeps_up() { "yes" } else { "**no**" }.to_owned(),
        row.limits(cores)
            .iter()
            .map(Limit::describe)
            .collect::<Vec<_>>()
            .join("; "),
    ]
}

pub const BASELINE_HEADERS: &[&str] = &[
    "devices (processes)",
    "req/s intended",
    "req/s achieved",
    "achieved/ intended",
    "device processes CPU s",
    "driver CPU s",
    "node CPU s",
    "machine busy %",
    "PSS peak MiB (all processes)",
    "RSS sum peak MiB",
    "largest process RSS MiB",
    "failed requests",
];

/// The cells of one baseline row.
pub fn baseline_cells(run: &BaselineRun) -> Vec<String> {
    let (report, timed_out) = match &run.outcome {
        BaselineOutcome::Finished(report) => (Some(report), None),
        BaselineOutcome::TimedOut { after } => (None, Some(after)),
    };
    let Some(report) = report else {
        let mut cells = vec![run.devices.to_string()];
        cells.push(format!(
            "timed out after {} s",
            timed_out.map_or(0, Duration::as_secs)
        ));
        cells.resize(BASELINE_HEADERS.len(), dash());
        return cells;
    };
    let per_s = |n: u64| format!("{:.0}", n as f64 / run.duration_s);
    vec![
        format!("{} ({})", run.devices, report.processes),
        per_s(report.requests_intended),
        per_s(report.sends_ok),
        format!("{:.3}", ratio(report.sends_ok, report.requests_intended)),
        format!("{:.1}", run.window.client_cpu_s),
        format!("{:.1}", report.driver_cpu_s),
        run.window.node_cpu_s.map_or_else(dash, |s| format!("{s:.1}")),
        format!("{:.0}", run.window.machine_busy_pct),
        format!("{:.0}", run.peaks.client.pss_bytes as f64 / MIB),
        format!("{:.0}", run.peaks.client.rss_bytes as f64 / MIB),
        format!("{:.1}", report.children_max_rss_kb as f64 / 1024.0),
        report.sends_failed.to_string(),
    ]
}

fn percentiles(p: &Percentiles) -> String {
    if p.count == 0 {
        dash()
    } else {
        format!("{:.1} / {:.1}", p.p50, p.p99)
    }
}

fn dash() -> String {
    "–".to_owned()
}

/// A Markdown table.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut out = table_head(headers);
    for row in &rows {
        out.push_str(&table_line(row));
    }
    out
}

/// A Markdown table's header and rule.
pub fn table_head(headers: &[&str]) -> String {
    let rule: Vec<&str> = headers.iter().map(|_| "---").collect();
    format!("{}{}", table_line(headers), table_line(&rule))
}

/// One line of a Markdown table.
pub fn table_line<S: AsRef<str>>(cells: &[S]) -> String {
    let cells: Vec<&str> = cells.iter().map(AsRef::as_ref).collect();
    format!("| {} |\n", cells.join(" | "))
}

/// How each figure is defined, closing the report.
const DEFINITIONS: &str = "
## How the figures are defined

- **req/s intended**: the `sentantSend` requests the run should make, over the scenario's duration: for each device, two per send its scenario plans within the duration (r2-core's `Planner`, same seed and device index as the page: change-only, at most every 200 ms), plus the `update` each device sends when its subscription connects. **req/s achieved**: the requests the node answered (the page's `sends_ok`, which also counts the on-connect updates), over the same duration. For the baseline, intended is the steps each process's own sleep schedule fits into the duration if requests took no time, two requests each.
- **lag p99**: the page's hiccup meter (a 10 ms timer's lateness), p99 over joining and the scenario. **fetch queue max**: the most requests in flight in the tab at once. **signal p50 / p99**: from a send to its `update` signal arriving on the subscription.
- **tab MB**: the tab's JS heap in use (`Runtime.getHeapUsage`) plus its wasm linear memory, the largest seen (sampled each second). **tab KB/device**: that peak minus the same figure for the loaded page before the run, per device.
- **CPU s**: over the scenario phase (from the first poll that sees `running` to the first that sees it over): the tab's renderer processes, all of the browser's processes, and the node's process, from `/proc`. **machine busy %**: all CPUs, from `/proc/stat`, over the same window.
- **baseline CPU**: the device processes' user + system time, `getrusage(RUSAGE_CHILDREN)` in the driver after joining them all; the driver's own (loading, forking, unloading) is apart. **PSS**: proportional set size summed over every process of the tree (shared pages divided among their sharers, from `/proc/PID/smaps_rollup`), the largest seen sampling every 0.5 s (page: every second); RSS sums overstate forked processes and are shown for comparison.
- **page : baseline**: CPU per device per second of scenario (page: all browser processes; baseline: device processes); memory all-in (the whole browser against the whole script) and per added device (browser PSS at the peak minus the idle browser's, per device; the script's PSS per process).
- **keeps up**: finished, lag p99 ≤ 20 ms, and achieved/intended ≥ 0.99. **what ran out**: for a run that did not keep up, every sign seen: the page's own bottleneck check (late timers, sends behind plan, a piling fetch queue), the machine's CPUs ≥ 90 % busy, devices not created, errors.
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_a_rule_and_one_line_per_row() {
        let t = table(&["a", "b"], vec![vec!["1".into(), "2".into()], vec!["3".into(), "4".into()]]);
        assert_eq!(t, "| a | b |\n| --- | --- |\n| 1 | 2 |\n| 3 | 4 |\n");
    }

    #[test]
    fn ratios_guard_against_nothing() {
        assert_eq!(ratio(5, 0), 0.0);
        assert_eq!(ratio(99, 100), 0.99);
        assert_eq!(times(1.0, 0.0), f64::INFINITY);
        assert_eq!(times(0.0, 0.0), 0.0);
        assert_eq!(times(30.0, 1.5), 20.0);
    }

    #[test]
    fn every_limit_has_words_and_a_remedy() {
        let limits = [
            Limit::Time {
                phase: "creating devices".into(),
                after: Duration::from_secs(90),
            },
            Limit::Devices {
                created: 255,
                requested: 500,
                error: Some("websocket: refused".into()),
            },
            Limit::MainThread { why: "late".into() },
            Limit::MachineCpu {
                cores: 2,
                busy_pct: 97.0,
                browser_s: 20.0,
                node_s: Some(9.0),
                wall_s: 15.0,
            },
            Limit::Http { in_flight: 400 },
            Limit::Errors {
                count: 3,
                kind: "timeout".into(),
            },
            Limit::Sends { ratio: 0.9 },
        ];
        for limit in &limits {
            assert!(!limit.describe().is_empty() && !limit.remedy().is_empty());
        }
        assert!(limits[1].describe().contains("255 of 500"));
        assert!(limits[3].describe().contains("97 %"));
        assert!(limits[6].describe().contains("90.0 %"));
    }
}
