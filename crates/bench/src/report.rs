//! The benchmark's results as rows, verdicts and Markdown: one row per page
//! run and per baseline run, where each page run's CPU went (by Chromium
//! process type, and the node), the `webapp` phones over HTTPS with h2 and
//! with HTTP/1.1 side by side, the largest device count each series keeps
//! up with, the page : baseline ratios, the goals, what ran out where a run
//! broke, and what would move it.

use std::fmt::Write as _;
use std::time::Duration;

use r2_core::config::{HttpPath, RunConfig, SocketsMode};
use r2_core::metrics::Percentiles;
use r2_core::plan::RunPlan;
use r2_core::profile::Profile;
use r2_core::scenario::ScenarioKind;
use r2_node::fidelity::Alpn;

use crate::baseline::{BaselineOutcome, BaselineRun, Transport};
use crate::class::{class_goals, class_markdown, per_second, ClassRow};
use crate::floor::{Floor, PushFloorRun, SocketFloor, WebAppFloor};
use crate::machine::MachineFacts;
use crate::measure::Window;
use crate::plan::{
    BenchPlan, HTTPS_SOCKETS, HTTPS_VIEWERS, MAX_LAG_P99_MS, MIN_ACHIEVED_RATIO, SOCKET_WORKERS,
};
use crate::procs::ProcessKind;
use crate::tab::{Marginal, Outcome, TabRun, Wire};

/// The machine is called saturated at this busy share of all its CPUs.
pub const SATURATED_PCT: f64 = 90.0;
/// Requests in flight beyond the browser's 6 connections per host.
pub const BROWSER_CONNECTIONS: u64 = 6;
/// The goals of the issue: `lean` devices in one tab over HTTP, the
/// WebApp's wire shape (`transport=socket` has its own, below).
pub const GOAL_DEVICES: u32 = 300;
pub const GOAL_RATIO: f64 = 20.0;
/// The page's CPU per answered request is to be this many times less than
/// the seed's script's as it runs (a new TLS connection per request).
pub const GOAL_SEED_PER_REQUEST: f64 = 20.0;
pub const GOAL_TAB_BYTES_PER_DEVICE: f64 = 20.0 * 1024.0;
/// With `transport=socket`: this many `sweep` devices in one tab ...
pub const GOAL_SOCKET_DEVICES: u32 = 2000;
/// ... each using at most 1/this of a baseline process's CPU per second.
pub const GOAL_SOCKET_CPU_TIMES: f64 = 5.0;

/// How much less renderer CPU per request the lean request path must cost,
/// at every count, to count as measurably cheaper than `gloo-net`'s (a
/// share: the spread between two runs of one configuration here is a few
/// per cent).
pub const LEAN_MARGIN: f64 = 0.10;
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
        bench_s: f64,
        others_s: f64,
        wall_s: f64,
    },
    /// Requests queued in the tab beyond the browser's connections.
    Http { in_flight: u64 },
    /// Requests failed.
    Errors { count: u64, kind: String },
    /// Fewer requests were answered than intended, with no other sign.
    Sends { ratio: f64 },
    /// Per device the page spends more CPU than a baseline process: its cost
    /// is per request, and the browser's is larger.
    CpuPerRequest { page_ms: f64, baseline_ms: f64 },
    /// Chromium alone, a bare page making the same request with `fetch`,
    /// spends more CPU per request than the goal allows the page.
    BrowserFloor {
        floor_ms: f64,
        allowed_ms: f64,
        rate: f64,
    },
    /// The requests the device goal means, at Chromium's floor, need more
    /// cores than the machine has.
    FloorCores {
        devices: u32,
        rate: f64,
        floor_ms: f64,
        cores_needed: f64,
        cores: usize,
    },
    /// The requests and pushes of a class, at Chromium's floors, need more
    /// cores than the machine has.
    ChromiumFloors {
        requests_per_s: f64,
        request_ms: f64,
        pushes_per_s: f64,
        push_ms: f64,
        cores_needed: f64,
        cores: usize,
    },
    /// What Chromium alone did with a `webapp` run's traffic over HTTPS: a
    /// bare page making its requests and reading its pushes.
    WebAppFloor {
        phones: u32,
        /// Where the bare page made the traffic (`main thread`, `K workers`).
        threads: String,
        requests_per_s: f64,
        pushes_per_s: f64,
        browser_cores: f64,
        cores: usize,
        node_cores: Option<f64>,
        busy_pct: f64,
        lag_p99_ms: Option<f64>,
    },
    /// The browser's fixed memory outweighs the devices.
    MemoryFloor {
        idle_mib: f64,
        page_kib_per_device: f64,
        baseline_kib_per_device: f64,
    },
    /// Each device adds too much to the tab.
    TabMemory {
        kib_per_device: f64,
        heap_mib: f64,
        wasm_mib: f64,
        /// What the engine's allocator held while the scenarios ran, and at most.
        engine_running_mib: f64,
        engine_peak_mib: f64,
    },
}

impl Limit {
    /// The machine's CPU, when its `cores` were saturated over `window`.
    pub fn machine_cpu(window: &Window, cores: usize) -> Option<Limit> {
        (window.machine_busy_pct >= SATURATED_PCT).then(|| Limit::MachineCpu {
            cores,
            busy_pct: window.machine_busy_pct,
            browser_s: window.client_cpu_s,
            node_s: window.node_cpu_s,
            bench_s: window.bench_cpu_s,
            others_s: window.others_cores(cores) * window.wall_s,
            wall_s: window.wall_s,
        })
    }

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
                bench_s,
                others_s,
                wall_s,
            } => {
                format!(
                    "CPU: the machine's {cores} cores were {busy_pct:.0} % busy over {wall_s:.1} s: browser {browser_s:.1} s, node {}, measuring {bench_s:.1} s, other processes {others_s:.1} s of CPU",
                    node_s.map_or("?".to_owned(), |n| format!("{n:.1} s"))
                )
            }
            Limit::Http { in_flight } => format!(
                "HTTP: up to {in_flight} requests in flight over the browser's {BROWSER_CONNECTIONS} connections to the node"
            ),
            Limit::Errors { count, kind } => format!("errors: {count} (most: `{kind}`)"),
            Limit::Sends { ratio } => {
                format!("sends: {:.1} % of the intended requests answered", 100.0 * ratio)
            }
            Limit::CpuPerRequest { page_ms, baseline_ms } => format!(
                "CPU per request: the browser spent {page_ms:.2} ms of CPU per answered request (renderer, network service, browser process), a baseline process {baseline_ms:.2} ms; the baseline's processes sleep between requests, so per device both pay per request"
            ),
            Limit::BrowserFloor {
                floor_ms,
                allowed_ms,
                rate,
            } => format!(
                "Chromium's floor: a bare page with no code of ours, making the same GraphQL POST with `fetch` {rate:.0} times a second, costs the browser {floor_ms:.2} ms of CPU per answered request, more than the {allowed_ms:.2} ms the goal allows: no page in this browser meets it on this machine"
            ),
            Limit::FloorCores {
                devices,
                rate,
                floor_ms,
                cores_needed,
                cores,
            } => format!(
                "Chromium's floor: {devices} devices make about {rate:.0} requests a second; at the {floor_ms:.2} ms of CPU a bare page's `fetch` costs the browser per request, that is {cores_needed:.1} cores for the browser alone, of this machine's {cores}"
            ),
            Limit::ChromiumFloors {
                requests_per_s,
                request_ms,
                pushes_per_s,
                push_ms,
                cores_needed,
                cores,
            } => format!(
                "Chromium's floors: {requests_per_s:.0} requests a second at {request_ms:.2} ms of browser CPU each (a bare page's `fetch`) and {pushes_per_s:.0} pushes a second at {push_ms:.3} ms each (a bare page's websockets) are {cores_needed:.1} cores for the browsers alone, of this machine's {cores}, before any page code and the node"
            ),
            Limit::WebAppFloor {
                phones,
                threads,
                requests_per_s,
                pushes_per_s,
                browser_cores,
                cores,
                node_cores,
                busy_pct,
                lag_p99_ms,
            } => format!(
                "Chromium's floor over HTTPS: a bare page with no code of ours, making the {phones}-phone run's {requests_per_s:.0} requests a second and reading {pushes_per_s:.0} pushes a second on its {threads}, kept the browser's processes {browser_cores:.2} cores busy of this machine's {cores} (the node {}), the machine {busy_pct:.0} % busy; its own 10 ms timers fired late p99 {} ms, {}",
                node_cores.map_or("?".to_owned(), |n| format!("{n:.2}")),
                lag_cell(*lag_p99_ms),
                match lag_p99_ms {
                    Some(lag) if *lag > MAX_LAG_P99_MS => format!("over the goal's {MAX_LAG_P99_MS} ms with no page code at all"),
                    Some(_) => format!("within the goal's {MAX_LAG_P99_MS} ms: the rest of the run's lag is the page's own work on top of it"),
                    None => "not measured".to_owned(),
                }
            ),
            Limit::MemoryFloor {
                idle_mib,
                page_kib_per_device,
                baseline_kib_per_device,
            } => format!(
                "memory: the browser holds {idle_mib:.0} MiB before any device; each device then adds {page_kib_per_device:.0} KiB against {baseline_kib_per_device:.0} KiB per baseline process"
            ),
            Limit::TabMemory {
                kib_per_device,
                heap_mib,
                wasm_mib,
                engine_running_mib,
                engine_peak_mib,
            } => format!(
                "tab memory: {kib_per_device:.1} KB per device (JS heap {heap_mib:.1} MB, wasm {wasm_mib:.1} MB at the peak; of the wasm, the engine's allocator held {engine_running_mib:.1} MB while the scenarios ran and {engine_peak_mib:.1} MB at most)"
            ),
        }
    }

    /// What would move this limit.
    pub fn remedy(&self) -> &'static str {
        match self {
            Limit::Time { .. } => "joining is quadratic (each device's `sentantAll` lists every sentant, as a phone's does): one listing per batch of joining devices, and more unloads in flight while deleting",
            Limit::Devices { .. } => "a browser opens about 255 websockets: `shared` subscriptions (or more tabs and machines) for more devices",
            Limit::MainThread { .. } => "the engine's timers already run in a Web Worker, alone on its thread: spread a run's devices over more workers (`workers=K`; by default one per 250 `lean` devices, a `webapp` phone weighed by the pushes it receives, up to the machine's cores), or send fewer frames per value (`transport=socket` sends each on a socket the device holds)",
            Limit::MachineCpu { .. } => "more cores for the browser (its renderer and network service work in parallel processes), the node on its own machine, and no other load on the machine: on these 2 cores they all share the CPU",
            Limit::Http { .. } | Limit::Sends { .. } => "fewer requests: `transport=socket` (a `doc` frame per send on a socket the device holds), or batching several devices' sends into one request; HTTP/2 to the node, measured in this report, lowers latency under load, not CPU per request",
            Limit::Errors { .. } => "see the errors' kinds in the page's summary: most are timeouts of a saturated node or tab",
            Limit::CpuPerRequest { .. } => "fewer requests per value: batching several devices' sends into one request (aliased `sentantSend` mutations in one document) or HTTP/2 to the node; the browser's fetch path costs more CPU per request than a plain `urllib` call, and no change inside the page's wasm removes that",
            Limit::BrowserFloor { .. } | Limit::FloorCores { .. } | Limit::ChromiumFloors { .. } | Limit::WebAppFloor { .. } => "the WebApp's wire shape costs one `fetch` per value, and Chromium's `fetch` path costs this much whatever the page does: fewer requests (`transport=socket`, a labelled departure) or more cores",
            Limit::MemoryFloor { .. } => "the browser's fixed memory only pays off at thousands of devices per tab: the tab must reach those counts (the limits above) and add less per device",
            Limit::TabMemory { .. } => "keep less per device in the tab: the JS heap grows with the requests in flight and the device tiles' DOM, the wasm memory with each device's state",
        }
    }
}

/// The error kind the page records for a planned send it skipped because
/// the tab fell more than a second behind (`src/run/device.rs`).
pub const SKIPPED_LATE: &str = "skipped_late";

/// Other processes using this many cores' worth of CPU during a run that
/// did not keep up make it disturbed: it is run again.
pub const DISTURBED_CORES: f64 = 0.5;

/// One page run, judged.
#[derive(Debug, Clone)]
pub struct PageRow {
    pub run: TabRun,
    /// It did not keep up while other processes used ≥ [`DISTURBED_CORES`],
    /// and was run again (the next row of its series).
    pub disturbed: bool,
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

    /// The run's series in words: profile, scenario, subscriptions, wire.
    pub fn label(&self) -> String {
        let config = &self.run.config;
        let mut label = format!(
            "`{}`, `{}`, `{}`, {}",
            config.profile,
            config.scenario,
            config.sockets,
            self.run.wire.describe()
        );
        if config.transport != r2_core::config::Transport::Http {
            label.push_str(&format!(", `transport={}`", config.transport));
        }
        if config.on_main_thread() {
            label.push_str(", `workers=0`");
        }
        label
    }

    /// Answered requests a second over the scenario phase.
    pub fn scenario_rate(&self) -> f64 {
        self.scenario_requests() as f64 / self.run.window.wall_s
    }

    /// Browser CPU ms per device per second of the scenario phase.
    pub fn cpu_ms_per_device_s(&self) -> Option<f64> {
        let window = &self.run.window;
        (window.wall_s > 0.0 && self.devices() > 0)
            .then(|| 1000.0 * window.client_cpu_s / f64::from(self.devices()) / window.wall_s)
    }

    /// CPU ms per answered request of the scenario phase, for `cpu_s`
    /// seconds of it; `None` when nothing was answered.
    pub fn ms_per_request(&self, cpu_s: f64) -> Option<f64> {
        let requests = self.scenario_requests();
        (requests > 0).then(|| 1000.0 * cpu_s / requests as f64)
    }

    /// Answered `sentantSend` requests.
    pub fn achieved(&self) -> u64 {
        self.run.summary.as_ref().map_or(0, |s| s.sends_ok)
    }

    /// The `sentantSend` requests the run intended: two for each value its
    /// devices' scenarios plan within the duration, plus the `update`s sent
    /// on connecting ([`PageRow::on_connect`]). The plan is recomputed
    /// here with r2-core's [`RunPlan`], which draws what the page draws, for
    /// every device requested, all live from the start (the page starts its
    /// scenarios once every device joined); in a profile whose devices send
    /// while others join (`webapp`) each starts when it joined, and the
    /// page's own count (`sends_planned`) is taken.
    pub fn intended(&self) -> u64 {
        let Some(s) = &self.run.summary else {
            return 0;
        };
        let config = &self.run.config;
        let planned = if config.profile.sends_while_joining() {
            s.sends_planned
        } else {
            RunPlan::new(config, None).sends_planned_from_start(config.devices)
        };
        2 * planned + self.on_connect(u64::from(config.devices))
    }

    /// The `update {}` sent when a subscription connects, for `devices`
    /// devices: one by each device's sensor page, and one by each
    /// projector for each device's card; none without subscriptions.
    pub fn on_connect(&self, devices: u64) -> u64 {
        match &self.run.summary {
            Some(s) if s.sockets_mode != SocketsMode::None => devices * (1 + u64::from(s.viewers)),
            _ => 0,
        }
    }

    /// Achieved / intended (0 when nothing was intended).
    pub fn ratio(&self) -> f64 {
        ratio(self.achieved(), self.intended())
    }

    /// Answered requests of the scenario phase: all answered, less the
    /// `update`s sent on connecting (while joining).
    pub fn scenario_requests(&self) -> u64 {
        self.run.summary.as_ref().map_or(0, |s| {
            s.sends_ok
                .saturating_sub(self.on_connect(s.devices_created))
        })
    }

    /// The dedicated workers the run's engine ran in, as its summary says
    /// (`worker`, `K workers`; 0 for `main thread` or no summary).
    pub fn engine_workers(&self) -> u32 {
        self.run
            .summary
            .as_ref()
            .map_or(0, |summary| summary.engine_workers())
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

    /// Every device created, lag p99 ≤ 20 ms and at least 99 % of the
    /// intended requests answered.
    pub fn keeps_up(&self) -> bool {
        self.run.outcome == Outcome::Finished
            && self
                .run
                .summary
                .as_ref()
                .is_some_and(|s| s.devices_created == u64::from(s.devices_requested))
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
        limits.extend(Limit::machine_cpu(&self.run.window, cores));
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
            limits.push(Limit::Sends {
                ratio: self.ratio(),
            });
        }
        limits
    }
}

/// The run a row's memory slope is taken from: the last finished,
/// undisturbed run of the same series at fewer devices.
pub fn previous<'a>(pages: &'a [PageRow], row: &PageRow) -> Option<&'a PageRow> {
    let series = |config: &RunConfig| RunConfig {
        devices: 0,
        join_rate: 0.0,
        ..config.clone()
    };
    pages
        .iter()
        .filter(|p| {
            series(&p.run.config) == series(&row.run.config)
                && p.devices() < row.devices()
                && !p.disturbed
                && p.run.outcome == Outcome::Finished
        })
        .max_by_key(|p| p.devices())
}

/// What each device of `row` added ([`crate::tab::TabMemory::marginal`]).
pub fn marginal(row: &PageRow, previous: Option<&PageRow>) -> Option<Marginal> {
    row.run.memory.marginal(
        row.devices(),
        previous.map(|p| (p.devices(), &p.run.memory)),
    )
}

/// How far a series went: the largest count kept up (`kept`) and the one it
/// broke at, in `unit`s.
pub fn reach(kept: Option<u32>, broke: Option<u32>, unit: &str) -> String {
    match (kept, broke) {
        (Some(n), Some(b)) => format!("{n} {unit}; the series broke at {b}"),
        (Some(n), None) => format!("{n} {unit}"),
        (None, Some(b)) => format!("none kept up; the series broke at {b}"),
        (None, None) => "no run finished".to_owned(),
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
    /// How the baseline reached the node.
    pub transport: Transport,
    /// CPU ms per device per second of scenario: page (all browser processes), baseline (device processes).
    pub page_cpu_ms: f64,
    pub baseline_cpu_ms: f64,
    /// CPU ms per answered request over the scenario phase, page : baseline.
    pub page_cpu_per_request_ms: f64,
    pub baseline_cpu_per_request_ms: f64,
    /// PSS of the idle browser (the loaded page before the run).
    pub page_idle_pss_mib: f64,
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
        times(
            self.baseline_pss_per_device_kib,
            self.page_pss_per_device_kib,
        )
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

/// A ratio as `3.2×`; `–` when the page's side was too small to measure.
fn times_text(times: f64) -> String {
    if times.is_finite() {
        format!("{times:.1}×")
    } else {
        dash()
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
    /// The `webapp` phones over HTTPS, each count with h2 and with HTTP/1.1
    /// offered (not part of any capacity series).
    pub https: Vec<PageRow>,
    /// The `transport=socket` series and the engine on the main thread
    /// (not part of the capacity series above).
    pub extra: Vec<PageRow>,
    /// The lean request path's runs and their `gloo-net` twins, in turn.
    pub lean: Vec<PageRow>,
    /// The class runs: `webapp` phones with their own sockets over several
    /// browsers at once.
    pub classes: Vec<ClassRow>,
    /// Chromium's floor, measured beside the largest `sweep` `shared` run.
    pub floor: Option<Floor>,
    /// Chromium's push floor.
    pub push_floor: Option<PushFloorRun>,
    /// Chromium's floor for the largest `webapp` run over HTTPS (h2): on
    /// the page's main thread, then over as many workers as the run's
    /// engine had.
    pub webapp_floors: Vec<WebAppFloor>,
    /// Chromium's socket request floor, beside the largest
    /// `transport=socket` run that kept up, then beside the first that did
    /// not (when that is another).
    pub socket_floors: Vec<SocketFloor>,
    pub baselines: Vec<BaselineRun>,
    /// Runs not made, and why (time budget, a series that broke).
    pub skipped: Vec<String>,
    /// Runs that could not be measured, with the error.
    pub failures: Vec<String>,
    pub elapsed: Duration,
}

impl Report {
    /// A report of `plan` against `node` with nothing run yet.
    pub fn new(plan: BenchPlan, node: String) -> Report {
        Report {
            machine: MachineFacts::now(),
            plan,
            node,
            pages: Vec::new(),
            https: Vec::new(),
            extra: Vec::new(),
            lean: Vec::new(),
            classes: Vec::new(),
            floor: None,
            push_floor: None,
            webapp_floors: Vec::new(),
            socket_floors: Vec::new(),
            baselines: Vec::new(),
            skipped: Vec::new(),
            failures: Vec::new(),
            elapsed: Duration::ZERO,
        }
    }

    /// The largest device count of a series that kept up (lag p99 ≤ 20 ms,
    /// achieved/intended ≥ 0.99), `None` if none did.
    pub fn capacity(&self, scenario: ScenarioKind, sockets: SocketsMode) -> Option<u32> {
        self.series(scenario, sockets)
            .filter(|row| row.keeps_up())
            .map(PageRow::devices)
            .max()
    }

    fn series(
        &self,
        scenario: ScenarioKind,
        sockets: SocketsMode,
    ) -> impl Iterator<Item = &PageRow> {
        self.pages
            .iter()
            .filter(move |row| row.scenario() == scenario && row.sockets() == sockets)
    }

    /// The first run of a series that did not keep up.
    fn first_break(&self, scenario: ScenarioKind, sockets: SocketsMode) -> Option<&PageRow> {
        self.series(scenario, sockets)
            .find(|row| !row.keeps_up() && !row.disturbed)
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
                    && !row.disturbed
                    && row.run.window.wall_s > 0.0
            });
            for row in pages {
                let devices = f64::from(row.devices());
                let memory = &row.run.memory;
                ratios.push(Ratio {
                    devices: base.devices,
                    sockets: row.sockets(),
                    transport: base.transport,
                    page_cpu_ms: 1000.0 * row.run.window.client_cpu_s
                        / devices
                        / row.run.window.wall_s,
                    baseline_cpu_ms: 1000.0 * base.window.client_cpu_s
                        / processes as f64
                        / report.ran_s.max(f64::MIN_POSITIVE),
                    page_cpu_per_request_ms: 1000.0 * row.run.window.client_cpu_s
                        / row.scenario_requests().max(1) as f64,
                    baseline_cpu_per_request_ms: 1000.0 * base.window.client_cpu_s
                        / report.sends_ok.max(1) as f64,
                    page_idle_pss_mib: memory.browser_idle_pss_bytes as f64 / MIB,
                    page_pss_mib: memory.browser_peak_pss_bytes as f64 / MIB,
                    baseline_pss_mib: base.peaks.client.pss_bytes as f64 / MIB,
                    page_pss_per_device_kib: marginal(row, previous(&self.pages, row))
                        .map_or(0.0, |m| m.browser_pss_bytes)
                        / 1024.0,
                    baseline_pss_per_device_kib: base.peaks.client.pss_bytes as f64
                        / processes as f64
                        / 1024.0,
                });
            }
        }
        ratios
    }

    /// The issue's goals, each with whether it was met and, if not, why.
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
            let broke = self.first_break(scenario, SocketsMode::Shared);
            let kept = capacity.map_or("no count kept up".to_owned(), |n| format!("{n} devices"));
            let mut limits = broke
                .map(|row| row.limits(self.machine.cores))
                .unwrap_or_default();
            limits.extend(self.floor_cores(scenario));
            goals.push(Goal {
                name: format!("≥ {GOAL_DEVICES} devices in one tab, `shared`, `{scenario}`, lag p99 ≤ {MAX_LAG_P99_MS} ms"),
                measured: match broke {
                    Some(row) => format!("{kept}; the series broke at {}", row.devices()),
                    None => kept,
                },
                met: capacity.is_some_and(|n| n >= GOAL_DEVICES),
                limits,
            });
        }
        let all_ratios = self.ratios();
        // Per request, the page against each baseline at its largest count.
        for (transport, goal_times, name) in [
            (Transport::Http, 1.0, "browser CPU per answered request ≤ the Python baseline's (HTTP)"),
            (
                Transport::HttpsPerRequest,
                GOAL_SEED_PER_REQUEST,
                "browser CPU per answered request ≤ 1/20 of the seed's script as it runs (HTTPS, a new TLS connection per request)",
            ),
        ] {
            let largest = all_ratios
                .iter()
                .filter(|r| r.transport == transport)
                .max_by_key(|r| (r.devices, r.sockets == SocketsMode::Shared));
            if let Some(r) = largest {
                let allowed_ms = r.baseline_cpu_per_request_ms / goal_times;
                let mut measured = format!(
                    "at {} devices (`{}`): {:.2} : {:.2} ms per request, the baseline uses {}",
                    r.devices,
                    r.sockets,
                    r.page_cpu_per_request_ms,
                    r.baseline_cpu_per_request_ms,
                    times_text(times(r.baseline_cpu_per_request_ms, r.page_cpu_per_request_ms))
                );
                let mut limits = Vec::new();
                if let Some(floor) = &self.floor {
                    let floor_ms = floor.run.cpu_per_request_ms();
                    let _ = write!(
                        measured,
                        "; Chromium's floor (a bare page's `fetch` of the same request) {floor_ms:.2} ms"
                    );
                    if floor_ms > allowed_ms {
                        limits.push(Limit::BrowserFloor {
                            floor_ms,
                            allowed_ms,
                            rate: floor.run.rate,
                        });
                    }
                }
                goals.push(Goal {
                    name: name.to_owned(),
                    measured,
                    met: r.page_cpu_per_request_ms <= allowed_ms,
                    limits,
                });
            }
        }
        let ratios: Vec<Ratio> = all_ratios
            .into_iter()
            .filter(|r| r.transport == Transport::Http)
            .collect();
        let sweep_shared = ratios
            .iter()
            .filter(|r| r.sockets == SocketsMode::Shared)
            .max_by_key(|r| r.devices)
            .or_else(|| ratios.iter().max_by_key(|r| r.devices));
        if let Some(r) = sweep_shared {
            let worst = r.cpu().min(r.memory());
            let mut limits = Vec::new();
            if r.cpu() < GOAL_RATIO {
                limits.push(Limit::CpuPerRequest {
                    page_ms: r.page_cpu_per_request_ms,
                    baseline_ms: r.baseline_cpu_per_request_ms,
                });
            }
            if r.memory() < GOAL_RATIO {
                limits.push(Limit::MemoryFloor {
                    idle_mib: r.page_idle_pss_mib,
                    page_kib_per_device: r.page_pss_per_device_kib,
                    baseline_kib_per_device: r.baseline_pss_per_device_kib,
                });
            }
            goals.push(Goal {
                name: format!("≥ {GOAL_RATIO}× less CPU and memory per device than the baseline"),
                measured: format!(
                    "at {} devices (`{}`): CPU {}, memory {} all-in ({} per added device)",
                    r.devices,
                    r.sockets,
                    times_text(r.cpu()),
                    times_text(r.memory()),
                    times_text(r.memory_per_device())
                ),
                met: worst >= GOAL_RATIO,
                limits,
            });
        }
        // The largest finished `shared` run of lean devices, preferring one
        // with a slope from a smaller run of its series (the capacity series
        // or the `transport=socket` one) over an upper bound from the idle
        // page, then one that kept up: a run that fell behind holds its
        // piled-up requests too, which are not the devices' memory.
        let finished = |row: &&PageRow| {
            row.sockets() == SocketsMode::Shared
                && row.run.outcome == Outcome::Finished
                && !row.disturbed
        };
        let lean = |row: &&PageRow| row.run.config.profile == Profile::Lean;
        let tab = self
            .pages
            .iter()
            .filter(finished)
            .map(|row| (row, &self.pages[..]))
            .chain(
                self.extra
                    .iter()
                    .filter(finished)
                    .filter(lean)
                    .map(|row| (row, &self.extra[..])),
            )
            .filter_map(|(row, series)| Some((row, marginal(row, previous(series, row))?)))
            .max_by_key(|(row, added)| (added.from.is_some(), row.keeps_up(), row.devices()));
        if let Some((row, added)) = tab {
            let per_device = added.tab_bytes;
            let memory = &row.run.memory;
            let limits = vec![Limit::TabMemory {
                kib_per_device: per_device / 1024.0,
                heap_mib: memory.heap_peak_bytes as f64 / MIB,
                wasm_mib: memory.wasm_peak_bytes as f64 / MIB,
                engine_running_mib: memory.engine_running_bytes as f64 / MIB,
                engine_peak_mib: memory.engine_peak_bytes as f64 / MIB,
            }];
            goals.push(Goal {
                name: "≤ 20 KB of tab memory (JS heap + wasm) per virtual device".to_owned(),
                measured: format!(
                    "{:.1} KB per device at {} devices (`{}`, `shared`{}; {}{})",
                    per_device / 1024.0,
                    row.devices(),
                    row.scenario(),
                    match row.run.config.transport {
                        r2_core::config::Transport::Socket => ", `transport=socket`",
                        r2_core::config::Transport::Http => "",
                    },
                    added.from.map_or(
                        "from the idle page: an upper bound".to_owned(),
                        |n| format!("the slope from {n} devices")
                    ),
                    if row.keeps_up() {
                        ""
                    } else {
                        "; a run that did not keep up, its piled-up requests counted"
                    }
                ),
                met: per_device <= GOAL_TAB_BYTES_PER_DEVICE,
                limits,
            });
        }
        goals.extend(self.socket_goals());
        let floors = self
            .floor
            .as_ref()
            .map(|f| &f.run)
            .zip(self.push_floor.as_ref());
        goals.extend(class_goals(
            &self.classes,
            &self.https,
            self.machine.cores,
            floors,
            &self.webapp_floors,
        ));
        goals
    }

    /// The whole report in Markdown (what `bench/RESULTS.md` holds).
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(out, "# r2-stress capacity benchmark\n");
        let _ =
            writeln!(
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
            (
                "browser",
                m.browser.clone().unwrap_or_else(|| "?".to_owned()),
            ),
            ("baseline", m.python.clone()),
            ("node", self.node.clone()),
        ];
        out.push_str(&table(
            &["", ""],
            facts
                .into_iter()
                .map(|(k, v)| vec![k.to_owned(), v])
                .collect(),
        ));
        let plan = &self.plan;
        let _ = writeln!(
            out,
            "\nEach run: {} s of scenario, seed {}, devices joining over about 5 s; a series stops at its first run that does not keep up.\n",
            plan.duration_s, plan.seed
        );
        out.push_str(&self.pages_markdown());
        out.push_str(&self.https_markdown());
        out.push_str(&class_markdown(
            &self.classes,
            self.plan.duration_s,
            self.machine.cores,
        ));
        out.push_str(&self.extra_markdown());
        out.push_str(&self.split_markdown());
        out.push_str(&self.capacity_markdown());
        out.push_str(&self.baseline_markdown());
        out.push_str(&self.floor_markdown());
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
        if self.pages.is_empty() {
            return String::new();
        }
        let rows = self
            .pages
            .iter()
            .map(|row| {
                let before = previous(&self.pages, row);
                page_cells(row, before, self.plan.duration_s, self.machine.cores)
            })
            .collect();
        format!("## The page, one tab\n\n{}", table(PAGE_HEADERS, rows))
    }

    /// Every page run's CPU by process: Chromium's by process type, and the node's.
    fn split_markdown(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .pages
            .iter()
            .chain(&self.https)
            .chain(&self.extra)
            .filter(|row| row.run.window.wall_s > 0.0)
            .map(split_cells)
            .collect();
        if rows.is_empty() {
            return String::new();
        }
        let mut headers = vec!["run", "devices", "answered requests"];
        headers.extend(ProcessKind::ALL.map(ProcessKind::name));
        headers.extend(["node", "all browser processes"]);
        format!(
            "\n## Where the CPU went\n\nCPU seconds over each run's scenario phase, by process, with CPU ms per answered request in brackets: Chromium's processes by type (from each one's command line in `/proc`), and the node's process.\n\n{}",
            table(&headers, rows)
        )
    }

    /// The `transport=socket` series, the engine on the main thread, the
    /// lean request path.
    fn extra_markdown(&self) -> String {
        let mut out = String::new();
        type Pick = fn(&RunConfig) -> bool;
        let groups: [(Pick, &str); 4] = [
            (
                |c| {
                    c.transport == r2_core::config::Transport::Socket
                        && c.profile == Profile::Lean
                        && c.workers == Some(SOCKET_WORKERS)
                },
                "`lean` devices, `sweep`, `shared`, `transport=socket`: each value and update an Absinthe `doc` frame on the socket the device already holds, answered in its reply (not the WebApp's wire shape); the devices split over two Web Workers (`workers=2`), each on its own thread",
            ),
            (
                |c| c.transport == r2_core::config::Transport::Socket && c.workers == Some(1),
                "The same `transport=socket` devices with the engine held to one worker (`workers=1`), to set beside the split rows above",
            ),
            (
                |c| c.transport == r2_core::config::Transport::Socket && c.profile == Profile::WebApp,
                "`webapp` phones, `sweep`, `shared`, 1 projector, over HTTPS as the class above, each value and update an Absinthe `doc` frame on a socket the phone already holds (`transport=socket`: not the WebApp's wire shape), one tab",
            ),
            (
                |c| c.transport == r2_core::config::Transport::Http && c.on_main_thread(),
                "`lean` devices, `sweep`, `shared`, over HTTP as the series above, with the run's engine on the page's main thread (`workers=0`), to set beside the worker's rows above",
            ),
        ];
        for (pick, what) in groups {
            let rows: Vec<Vec<String>> = self
                .extra
                .iter()
                .filter(|r| pick(&r.run.config))
                .map(|row| {
                    let before = previous(&self.extra, row);
                    page_cells(row, before, self.plan.duration_s, self.machine.cores)
                })
                .collect();
            if rows.is_empty() {
                continue;
            }
            let _ = write!(out, "\n## {what}\n\n{}", table(PAGE_HEADERS, rows));
        }
        out.push_str(&self.lean_markdown());
        out
    }

    /// The lean request path against `gloo-net`'s, run in turn at each
    /// count: their rows, CPU per answered request side by side, and which
    /// is kept.
    fn lean_markdown(&self) -> String {
        let pairs = self.lean_pairs();
        if pairs.is_empty() {
            return String::new();
        }
        let rows = self
            .lean
            .iter()
            .map(|row| {
                let mut cells = page_cells(row, None, self.plan.duration_s, self.machine.cores);
                cells[0] = format!(
                    "`{}` {}",
                    row.scenario(),
                    match row.run.config.http {
                        HttpPath::Gloo => "(`gloo-net`)",
                        HttpPath::Lean => "(lean)",
                    }
                );
                cells
            })
            .collect();
        let mut out = format!(
            "\n## The lean request path (`http=lean`) against `gloo-net`'s\n\n`lean` devices, `sweep`, `shared`, over HTTP; at each count a run with `gloo-net`'s `Request` (the default) and then one with the lean path (`fetch(url, init)` with one header set shared by all requests and one `AbortSignal.timeout` per 100 ms batch of requests: no `Request` object, no timer or closure of its own per request; the same request on the wire).\n\n{}\n",
            table(PAGE_HEADERS, rows)
        );
        let mut cheaper = true;
        for (gloo, lean) in &pairs {
            let per_request = |row: &PageRow, cpu_s: f64| row.ms_per_request(cpu_s);
            let shown = |ms: Option<f64>| ms.map_or_else(dash, |ms| format!("{ms:.2}"));
            let (gloo_renderer, lean_renderer) = (
                per_request(gloo, gloo.run.window.renderer_cpu_s()),
                per_request(lean, lean.run.window.renderer_cpu_s()),
            );
            cheaper &= matches!(
                (gloo_renderer, lean_renderer),
                (Some(g), Some(l)) if l <= g * (1.0 - LEAN_MARGIN)
            );
            let _ = writeln!(
                out,
                "- {} devices, `gloo-net` : lean: browser CPU per answered request {} : {} ms, of which the renderer (where the request is made) {} : {} ms; lag p99 {} : {} ms.",
                gloo.devices(),
                shown(per_request(gloo, gloo.run.window.client_cpu_s)),
                shown(per_request(lean, lean.run.window.client_cpu_s)),
                shown(gloo_renderer),
                shown(lean_renderer),
                gloo.lag_p99_ms().map_or_else(dash, |l| format!("{l:.1}")),
                lean.lag_p99_ms().map_or_else(dash, |l| format!("{l:.1}")),
            );
        }
        let verdict = if cheaper {
            format!("the lean path costs the renderer at least {:.0} % less per request at every count: measurably cheaper", LEAN_MARGIN * 100.0)
        } else {
            format!("the lean path is not measurably cheaper (not {:.0} % less renderer CPU per request at every count): `gloo-net` stays the default, `http=lean` an option", LEAN_MARGIN * 100.0)
        };
        let _ = writeln!(out, "\n**{verdict}.**");
        out
    }

    /// The lean path's rows, each with its `gloo-net` twin.
    pub fn lean_pairs(&self) -> Vec<(&PageRow, &PageRow)> {
        self.lean
            .iter()
            .filter(|r| r.run.config.http == HttpPath::Lean)
            .filter_map(|lean| {
                let gloo = self.lean.iter().find(|g| {
                    g.run.config
                        == RunConfig {
                            http: HttpPath::Gloo,
                            ..lean.run.config.clone()
                        }
                })?;
                Some((gloo, lean))
            })
            .collect()
    }

    /// The rows of the `lean` `transport=socket` series (split or not).
    pub fn socket_rows(&self) -> impl Iterator<Item = &PageRow> + Clone {
        self.extra.iter().filter(|r| {
            r.run.config.transport == r2_core::config::Transport::Socket
                && r.run.config.profile == Profile::Lean
        })
    }

    /// The `transport=socket` goals: the devices one tab holds, and their
    /// CPU per device-second against a baseline process's.
    fn socket_goals(&self) -> Vec<Goal> {
        let socket: Vec<&PageRow> = self.socket_rows().collect();
        if socket.is_empty() {
            return Vec::new();
        }
        let mut goals = Vec::new();
        let kept = socket
            .iter()
            .filter(|r| r.keeps_up())
            .map(|r| r.devices())
            .max();
        let broke = socket.iter().find(|r| !r.keeps_up());
        goals.push(Goal {
            name: format!("`transport=socket`: ≥ {GOAL_SOCKET_DEVICES} `sweep` devices in one tab, lag p99 ≤ {MAX_LAG_P99_MS} ms"),
            measured: reach(kept, broke.map(|r| r.devices()), "devices"),
            met: kept.is_some_and(|n| n >= GOAL_SOCKET_DEVICES),
            limits: broke.map(|row| row.limits(self.machine.cores)).unwrap_or_default(),
        });
        // The baseline over HTTP at its largest count that finished.
        let baseline = self
            .baselines
            .iter()
            .filter(|b| b.transport == Transport::Http)
            .filter_map(|b| Some((b, b.report()?)))
            .max_by_key(|(b, _)| b.devices)
            .map(|(b, report)| {
                let processes = f64::from(report.processes.max(1));
                (
                    b.devices,
                    1000.0 * b.window.client_cpu_s
                        / processes
                        / report.ran_s.max(f64::MIN_POSITIVE),
                )
            });
        let largest = largest_kept_up(socket.iter().copied());
        if let (Some((base_devices, base_ms)), Some(row)) = (baseline, largest) {
            if let Some(page_ms) = row.cpu_ms_per_device_s() {
                let floor = self
                    .socket_floor_ms_per_device_s(row)
                    .map(|floor_ms| {
                        let goal_ms = base_ms / GOAL_SOCKET_CPU_TIMES;
                        let against = if floor_ms > goal_ms {
                            format!("above the goal's {goal_ms:.3} ms before any page code")
                        } else {
                            format!("under the goal's {goal_ms:.3} ms")
                        };
                        format!("; Chromium's floor for the same traffic (a bare page's `doc` requests and their signals at this run's rate) {floor_ms:.3} ms per device-second, {against}")
                    })
                    .unwrap_or_default();
                goals.push(Goal {
                    name: format!("`transport=socket`: browser CPU per device-second ≤ 1/{GOAL_SOCKET_CPU_TIMES} of a Python baseline process's"),
                    measured: format!(
                        "{page_ms:.3} ms per device-second at {} devices : {base_ms:.3} ms per process-second at {base_devices} baseline processes; the baseline uses {}{floor}",
                        row.devices(),
                        times_text(times(base_ms, page_ms))
                    ),
                    met: page_ms * GOAL_SOCKET_CPU_TIMES <= base_ms,
                    limits: Vec::new(),
                });
            }
        }
        goals
    }

    /// The `webapp` runs over HTTPS, h2 and HTTP/1.1 side by side.
    fn https_markdown(&self) -> String {
        if self.https.is_empty() {
            return String::new();
        }
        let rows = self
            .https
            .iter()
            .map(|row| https_cells(row, self.plan.duration_s))
            .collect();
        let mut out = format!(
            "\n## `webapp` phones over HTTPS: h2 against HTTP/1.1\n\n`webapp` phones, `sweep`, {HTTPS_VIEWERS} projector, `{HTTPS_SOCKETS}` subscriptions, the page loaded from the node's HTTPS address (its own origin, as the WebApp is the real node's) with Chromium taking its self-signed certificate; the node behaves as the real node, its TLS offering `h2` and `http/1.1` (as the real node) or `http/1.1` only (`--https-alpn http1`), one node process for each. **TLS connections** are the node's own counts by the protocol ALPN chose, over the whole run (page load included; websockets stay on HTTP/1.1).\n\n{}",
            table(HTTPS_HEADERS, rows)
        );
        let verdicts: Vec<String> = self.https.iter().filter_map(protocol_mismatch).collect();
        if verdicts.is_empty() {
            out.push_str("\nEvery run's requests went over the protocols offered (h2 runs: h2 connections counted; HTTP/1.1 runs: none).\n");
        } else {
            for line in verdicts {
                let _ = writeln!(out, "\n- **{line}**");
            }
        }
        for (h2, http1) in self.https_pairs() {
            let per_request = |row: &PageRow, cpu_s: f64| {
                row.ms_per_request(cpu_s)
                    .map_or_else(dash, |ms| format!("{ms:.2}"))
            };
            let window = |row: &PageRow| row.run.window;
            let node_s = |row: &PageRow| window(row).node_cpu_s.unwrap_or(0.0);
            let send_p99 = |row: &PageRow| {
                row.run
                    .summary
                    .as_ref()
                    .map_or_else(dash, |s| format!("{:.1}", s.send_latency_ms.p99))
            };
            let _ = writeln!(
                out,
                "\n- {} phones, h2 : HTTP/1.1: browser CPU per answered request {} : {} ms (network service {} : {}, renderer {} : {}), node {} : {} ms; send p99 {} : {} ms.",
                h2.devices(),
                per_request(h2, window(h2).client_cpu_s),
                per_request(http1, window(http1).client_cpu_s),
                per_request(h2, window(h2).cpu_split[ProcessKind::Network]),
                per_request(http1, window(http1).cpu_split[ProcessKind::Network]),
                per_request(h2, window(h2).renderer_cpu_s()),
                per_request(http1, window(http1).renderer_cpu_s()),
                per_request(h2, node_s(h2)),
                per_request(http1, node_s(http1)),
                send_p99(h2),
                send_p99(http1),
            );
        }
        out.push_str(&self.webapp_floor_markdown());
        out
    }

    /// Chromium's floor for the `webapp` traffic over HTTPS, beside the run
    /// whose traffic it made.
    fn webapp_floor_markdown(&self) -> String {
        let Some(first) = self.webapp_floors.first() else {
            return String::new();
        };
        let mut headers: Vec<String> = [
            "beside phones",
            "made on",
            "req/s",
            "answered",
            "failed",
            "websockets",
            "pushes read /s",
            "the run's node pushes /s",
            LAG_COLUMN,
            "browser cores",
            "node cores",
            "machine busy %",
        ]
        .map(str::to_owned)
        .into();
        headers.extend(cpu_columns("request"));
        let rows = self
            .webapp_floors
            .iter()
            .map(|floor| {
                let run = &floor.run;
                let mut row = vec![
                    floor.beside.to_string(),
                    floor.threads(),
                    per_second(run.answered, run.window.wall_s),
                    run.answered.to_string(),
                    run.failed.to_string(),
                    floor.sockets.to_string(),
                    format!("{:.0}", floor.pushes_per_s()),
                    format!("{:.0}", floor.beside_pushes_per_s),
                    lag_cell(run.lag_p99_ms),
                    format!("{:.2}", floor.browser_cores()),
                    run.window
                        .node_cores()
                        .map_or_else(dash, |n| format!("{n:.2}")),
                    format!("{:.0}", run.window.machine_busy_pct),
                ];
                row.extend(cpu_cells(&run.window, 2, |cpu_s| run.per_request_ms(cpu_s)));
                row
            })
            .collect();
        let mut out = format!(
            "\nChromium's floor for this traffic: a fresh headless Chromium opens a document of the h2 node's HTTPS origin that runs no code of ours, holds websockets subscribed to `view`'s `update` signal with a phone's frames, and makes the answered requests a second of the largest h2 run above (over its scenario phase, the `update`s on connecting included) with `fetch` (each answer read as text): every other one a `view` `update` (pushed by the node to every socket, as a phone's update is re-published to every phone), the rest a query the node answers at once; the sockets are as many as make that run's pushes a second. Each push is parsed (`JSON.parse`) and counted. It is made on the bare page's main thread, then split over as many dedicated workers as the page's engine had (each its share of the requests and sockets and its own 10 ms timer, their lags merged as the page merges its workers'). **browser cores**: all of the browser's processes' CPU over the run, a second; CPU per request includes the pushes.\n\n{}",
            table(&headers, rows)
        );
        if let Some(page) = self.https.iter().find(|row| {
            row.run.wire == Wire::Https(Alpn::H2AndHttp1) && row.devices() == first.beside
        }) {
            let window = &page.run.window;
            let page_cores = window
                .client_cores()
                .map_or_else(dash, |c| format!("{c:.2}"));
            for floor in &self.webapp_floors {
                let run = &floor.run;
                let _ = writeln!(
                    out,
                    "\n- {} phones, the page ({}) : the bare page ({}): browser {} : {:.2} cores, machine {:.0} : {:.0} % busy, timer lag p99 {} : {} ms.",
                    floor.beside,
                    page.run.summary.as_ref().map_or_else(dash, |s| s.engine.clone()),
                    floor.threads(),
                    page_cores,
                    floor.browser_cores(),
                    window.machine_busy_pct,
                    run.window.machine_busy_pct,
                    lag_cell(page.lag_p99_ms()),
                    lag_cell(run.lag_p99_ms),
                );
            }
        }
        out
    }

    /// The HTTPS runs at each count: (h2 offered, HTTP/1.1 only).
    pub fn https_pairs(&self) -> Vec<(&PageRow, &PageRow)> {
        let offered = |alpn: Alpn, devices: u32| {
            self.https
                .iter()
                .find(move |row| row.run.wire == Wire::Https(alpn) && row.devices() == devices)
        };
        let mut counts: Vec<u32> = self.https.iter().map(PageRow::devices).collect();
        counts.dedup();
        counts
            .into_iter()
            .filter_map(|n| Some((offered(Alpn::H2AndHttp1, n)?, offered(Alpn::Http1, n)?)))
            .collect()
    }

    fn capacity_markdown(&self) -> String {
        let mut out = format!(
            "\n## Capacity: the largest device count with lag p99 ≤ {MAX_LAG_P99_MS} ms and achieved/intended ≥ {MIN_ACHIEVED_RATIO}\n\n"
        );
        for (scenario, sockets) in &self.plan.series {
            let capacity = self.capacity(*scenario, *sockets);
            let broke = self.first_break(*scenario, *sockets).map(PageRow::devices);
            let text = match (capacity, broke) {
                (Some(n), Some(b)) => format!("**{n}** devices (the series broke at {b})"),
                (Some(n), None) => format!("**{n}** devices (the largest count run)"),
                (None, Some(b)) => format!("none: the series broke at its first count, {b}"),
                (None, None) => "not run".to_owned(),
            };
            let _ = writeln!(out, "- `{scenario}`, `{sockets}`: {text}");
        }
        out
    }

    fn baseline_markdown(&self) -> String {
        if self.baselines.is_empty() {
            return String::new();
        }
        let rows = self.baselines.iter().map(baseline_cells).collect();
        format!(
            "\n## The baseline: the seed's script, one Python process per device (`sweep`, no subscriptions)\n\nOver `http`: {}; over `https`: {}.\n\n{}\nThe baseline runs at the counts up to {} only: each device is a whole Python process (see the largest process's RSS), and thousands would not fit this machine.\n",
            Transport::Http.describe(),
            Transport::HttpsPerRequest.describe(),
            table(BASELINE_HEADERS, rows),
            self.plan.baseline_max
        )
    }

    /// Why Chromium alone keeps a series of `scenario` from the device goal:
    /// the requests a second [`GOAL_DEVICES`] devices make at the rate per
    /// device of the series' largest finished run, times the floor's CPU
    /// per request, against the machine's cores.
    fn floor_cores(&self, scenario: ScenarioKind) -> Option<Limit> {
        let floor = self.floor.as_ref()?;
        let row = self
            .series(scenario, SocketsMode::Shared)
            .filter(|row| row.run.outcome == Outcome::Finished && row.run.window.wall_s > 0.0)
            .max_by_key(|row| row.devices())?;
        let per_device_s =
            row.scenario_requests() as f64 / row.run.window.wall_s / f64::from(row.devices());
        let rate = per_device_s * f64::from(GOAL_DEVICES);
        let cores_needed = floor.run.cores_at(rate);
        (cores_needed > self.machine.cores as f64).then_some(Limit::FloorCores {
            devices: GOAL_DEVICES,
            rate,
            floor_ms: floor.run.cpu_per_request_ms(),
            cores_needed,
            cores: self.machine.cores,
        })
    }

    /// Chromium's floor beside the page run whose rate it took.
    fn floor_markdown(&self) -> String {
        if self.floor.is_none() && self.push_floor.is_none() && self.socket_floors.is_empty() {
            return String::new();
        }
        format!(
            "\n## Chromium's floor: the WebApp's traffic from a bare page\n{}{}{}",
            self.request_floor_markdown(),
            self.push_floor_markdown(),
            self.socket_floor_markdown()
        )
    }

    /// The socket request floors' table.
    fn socket_floor_markdown(&self) -> String {
        let Some(first) = self.socket_floors.first() else {
            return String::new();
        };
        let mut headers: Vec<String> = [
            "beside devices",
            "websockets",
            "req/s",
            "answered",
            "failed",
            "signals read",
            "node HTTP requests",
            LAG_COLUMN,
        ]
        .map(str::to_owned)
        .into();
        headers.extend(cpu_columns("request"));
        let rows = self
            .socket_floors
            .iter()
            .map(|floor| {
                let run = &floor.run;
                let mut row = vec![
                    floor.beside.to_string(),
                    floor.sockets.to_string(),
                    per_second(run.answered, run.window.wall_s),
                    run.answered.to_string(),
                    run.failed.to_string(),
                    run.signals.to_string(),
                    run.node_requests.to_string(),
                    lag_cell(run.lag_p99_ms),
                ];
                row.extend(cpu_cells(&run.window, 3, |cpu_s| run.per_request_ms(cpu_s)));
                row
            })
            .collect();
        format!(
            "\nWhat `transport=socket` sends and reads: the same bare page holds as many websockets to the node as a `transport=socket` run did (first the run of {} devices, the largest that kept up, else the largest that finished; then the first that did not keep up, if another), each joined to the control topic and subscribed to the `update` signal of a device sentant of its own (loaded for the floor), and sends the devices' requests on them in turn at that run's rate: for each value a `set_sensor` then an `update` `doc` to the socket's sentant. The page parses each reply and each signal (`JSON.parse`) and counts it; CPU per request includes the signals (one for every two requests, as in the run); the timer lag is the bare page's one thread's, no bound on the page's.\n\n{}",
            first.beside,
            table(&headers, rows)
        )
    }

    /// The socket request floor beside the run of `devices`, else the first.
    fn socket_floor_beside(&self, devices: u32) -> Option<&SocketFloor> {
        self.socket_floors
            .iter()
            .find(|f| f.beside == devices)
            .or(self.socket_floors.first())
    }

    /// What Chromium alone spends per device-second for `row`'s traffic
    /// (`transport=socket`): its requests, and the signals they bring, at
    /// the socket request floor beside it; `None` without that floor.
    fn socket_floor_ms_per_device_s(&self, row: &PageRow) -> Option<f64> {
        let floor = self.socket_floor_beside(row.devices())?;
        if row.run.window.wall_s <= 0.0 || row.devices() == 0 {
            return None;
        }
        let requests_per_device_s = row.scenario_rate() / f64::from(row.devices());
        Some(requests_per_device_s * floor.run.cpu_per_request_ms())
    }

    /// The push floor's table.
    fn push_floor_markdown(&self) -> String {
        let Some(run) = &self.push_floor else {
            return String::new();
        };
        let mut headers: Vec<String> = [
            "websockets",
            "updates/s",
            "pushes read",
            "node pushes",
            "pushes/s",
            LAG_COLUMN,
        ]
        .map(str::to_owned)
        .into();
        headers.extend(cpu_columns("push"));
        let mut row = vec![
            run.sockets.to_string(),
            format!("{:.0}", run.updates_per_s),
            run.pushes.to_string(),
            run.node_pushes.to_string(),
            per_second(run.pushes, run.window.wall_s),
            lag_cell(run.lag_p99_ms),
        ];
        row.extend(cpu_cells(&run.window, 3, |cpu_s| run.per_push_ms(cpu_s)));
        format!(
            "\nWhat a phone receives: the same bare page holds websockets to the node, each joined and subscribed to `view`'s `update` signal with the frames a phone's socket sends, while the benchmark sends `view` updates at a steady rate (each pushed to every socket); the page parses each push (`JSON.parse`) and counts it.\n\n{}",
            table(&headers, vec![row])
        )
    }

    /// The request floor beside the page run whose rate it took.
    fn request_floor_markdown(&self) -> String {
        let Some(floor) = &self.floor else {
            return String::new();
        };
        let page = self
            .series(ScenarioKind::Sweep, SocketsMode::Shared)
            .find(|row| row.devices() == floor.beside);
        let run = &floor.run;
        fn cells(
            what: String,
            rate: String,
            (answered, failed): (u64, u64),
            lag_p99_ms: Option<f64>,
            cpu: Vec<String>,
        ) -> Vec<String> {
            let mut row = vec![
                what,
                rate,
                answered.to_string(),
                failed.to_string(),
                lag_cell(lag_p99_ms),
            ];
            row.extend(cpu);
            row
        }
        let mut rows = vec![cells(
            "a bare page: `fetch` only".to_owned(),
            format!("{:.0}", run.rate),
            (run.answered, run.failed),
            run.lag_p99_ms,
            cpu_cells(&run.window, 2, |cpu_s| run.per_request_ms(cpu_s)),
        )];
        let mut note = String::new();
        if let Some(page) = page {
            let window = &page.run.window;
            let answered = page.scenario_requests();
            rows.push(cells(
                format!(
                    "the page: `{}`, `sweep`, `shared`, {} devices",
                    page.run.config.profile,
                    page.devices()
                ),
                per_second(answered, window.wall_s),
                (answered, page.errors()),
                page.lag_p99_ms(),
                cpu_cells(window, 2, |cpu_s| page.ms_per_request(cpu_s).unwrap_or(0.0)),
            ));
            if let Some(page_ms) = page.ms_per_request(window.client_cpu_s) {
                let floor_ms = run.cpu_per_request_ms();
                let _ = if page_ms > floor_ms {
                    write!(
                        note,
                        "\nOf the page's {page_ms:.2} ms of browser CPU per request, Chromium's floor is {floor_ms:.2} ms ({:.0} %): the page's own work (devices, scheduler, subscriptions, metrics, drawing) adds {:.2} ms.\n",
                        100.0 * floor_ms / page_ms,
                        page_ms - floor_ms,
                    )
                } else {
                    write!(
                        note,
                        "\nThe page spent {page_ms:.2} ms of browser CPU per request, the bare page {floor_ms:.2} ms: the page's own work (devices, scheduler, subscriptions, metrics, drawing) is within the spread between two runs, and its cost per request is Chromium's.\n",
                    )
                };
            }
        }
        let mut headers: Vec<String> = ["run", "req/s", "answered", "failed", LAG_COLUMN]
            .map(str::to_owned)
            .into();
        headers.extend(cpu_columns("request"));
        format!(
            "\nA fresh headless Chromium opens a document of the node's own origin that runs no code of ours and makes the WebApp's request (a GraphQL POST of JSON to `/reality2` with `fetch`, its answer read as text) at the rate of the largest `sweep` `shared` run over HTTP, for the scenario's duration: what any page makes this browser spend per request on this machine. **{LAG_COLUMN}**: how late a 10 ms timer fired on the thread that made the requests (the bare page's; the page's engine's), as the page's hiccup meter measures. The bare page makes all its traffic on its one thread, where the page spreads its own over its workers, so its lag is no bound on the page's.\n\n{}{note}",
            table(&headers, rows)
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
                    r.transport.as_str().to_owned(),
                    format!("{:.2} : {:.2}", r.page_cpu_ms, r.baseline_cpu_ms),
                    format!("**{}**", times_text(r.cpu())),
                    format!(
                        "{:.2} : {:.2}",
                        r.page_cpu_per_request_ms, r.baseline_cpu_per_request_ms
                    ),
                    format!("{:.0} : {:.0}", r.page_pss_mib, r.baseline_pss_mib),
                    format!("**{}**", times_text(r.memory())),
                    format!(
                        "{:.1} : {:.0}",
                        r.page_pss_per_device_kib, r.baseline_pss_per_device_kib
                    ),
                    times_text(r.memory_per_device()),
                ]
            })
            .collect();
        format!(
            "\n## Page : baseline, `sweep`\n\n{}",
            table(
                &[
                    "devices",
                    "page sockets",
                    "baseline over",
                    "CPU ms per device-second, page : baseline",
                    "baseline uses",
                    "CPU ms per request, page : baseline",
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
            if !goal.met && !goal.limits.is_empty() {
                let _ = writeln!(out, "  - why:");
                for limit in &goal.limits {
                    let _ = writeln!(out, "    - {}", limit.describe());
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

/// One of the issue's goals, judged.
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
    "JS heap / wasm MB (engine's wasm in use: running, at most)",
    "tab KB/ device added",
    "renderer PSS MB",
    "renderer CPU s",
    "browser CPU s",
    "node CPU s",
    "machine busy %",
    "errors",
    "keeps up",
    "what ran out",
];

/// The cells of one page row.
/// The cells of one page row; `previous` is the run its memory slope is
/// taken from ([`previous`]).
pub fn page_cells(
    row: &PageRow,
    previous: Option<&PageRow>,
    duration_s: f64,
    cores: usize,
) -> Vec<String> {
    let run = &row.run;
    let summary = run.summary.as_ref();
    let devices = match summary {
        Some(s) if s.devices_created < u64::from(s.devices_requested) => {
            format!("{} ({} created)", row.devices(), s.devices_created)
        }
        _ => row.devices().to_string(),
    };
    // A run split over several workers says so ("2 workers").
    let devices = match summary.map(|s| s.engine.as_str()) {
        Some(engine) if engine.ends_with(" workers") => format!("{devices} in {engine}"),
        _ => devices,
    };
    let signal = summary
        .map(|s| percentiles(&s.signal_latency_ms))
        .unwrap_or_else(dash);
    let window = &run.window;
    vec![
        format!("`{}`", row.scenario()),
        format!("`{}`", row.sockets()),
        devices,
        format!("{:.0}", row.intended() as f64 / duration_s),
        format!("{:.0}", row.achieved() as f64 / duration_s),
        format!("{:.3}", row.ratio()),
        row.lag_p99_ms().map_or_else(dash, |l| format!("{l:.1}")),
        summary.map_or_else(dash, |s| s.fetch_queue_max.to_string()),
        signal,
        format!(
            "{:.1} / {:.1} ({:.1}, {:.1})",
            run.memory.heap_peak_bytes as f64 / MIB,
            run.memory.wasm_peak_bytes as f64 / MIB,
            run.memory.engine_running_bytes as f64 / MIB,
            run.memory.engine_peak_bytes as f64 / MIB
        ),
        marginal(row, previous).map_or_else(dash, |m| {
            let kib = m.tab_bytes / 1024.0;
            match m.from {
                Some(_) => format!("{kib:.1}"),
                None => format!("≤ {kib:.1}"),
            }
        }),
        format!("{:.0}", run.memory.renderer_peak_pss_bytes as f64 / MIB),
        format!("{:.1}", window.renderer_cpu_s()),
        format!("{:.1}", window.client_cpu_s),
        window.node_cpu_s.map_or_else(dash, |s| format!("{s:.1}")),
        format!("{:.0}", window.machine_busy_pct),
        row.errors().to_string(),
        if row.keeps_up() {
            "yes".to_owned()
        } else if row.disturbed {
            format!(
                "**no**, disturbed: other processes used {:.1} cores; run again",
                window.others_cores(cores)
            )
        } else {
            "**no**".to_owned()
        },
        row.limits(cores)
            .iter()
            .map(Limit::describe)
            .collect::<Vec<_>>()
            .join("; "),
    ]
}

/// The cells of one row of the CPU split: each process type's CPU seconds
/// and ms per answered request.
pub fn split_cells(row: &PageRow) -> Vec<String> {
    let window = &row.run.window;
    let cell = |cpu_s: f64| match row.ms_per_request(cpu_s) {
        Some(ms) => format!("{cpu_s:.1} ({ms:.2})"),
        None => format!("{cpu_s:.1}"),
    };
    let label = if row.disturbed {
        format!("{} (disturbed, run again)", row.label())
    } else {
        row.label()
    };
    let mut cells = vec![
        label,
        row.devices().to_string(),
        row.scenario_requests().to_string(),
    ];
    cells.extend(ProcessKind::ALL.map(|kind| cell(window.cpu_split[kind])));
    cells.push(window.node_cpu_s.map_or_else(dash, cell));
    cells.push(cell(window.client_cpu_s));
    cells
}

pub const HTTPS_HEADERS: &[&str] = &[
    "devices",
    "TLS offers",
    "TLS connections h2 / http/1.1",
    "req/s intended",
    "req/s achieved",
    "achieved/ intended",
    "send p50 / p99 ms",
    "view p50 / p99 ms",
    "lag p99 ms",
    "fetch queue max",
    "browser CPU s",
    "browser CPU ms/ request",
    "network service ms/ request",
    "renderer ms/ request",
    "node CPU s",
    "node ms/ request",
    "machine busy %",
    "errors",
    "keeps up",
];

/// The cells of one HTTPS run.
pub fn https_cells(row: &PageRow, duration_s: f64) -> Vec<String> {
    let run = &row.run;
    let summary = run.summary.as_ref();
    let window = &run.window;
    let offers = match run.wire {
        Wire::Https(alpn) => alpn.describe().to_owned(),
        Wire::Http => "(plain http)".to_owned(),
    };
    let ms = |cpu_s: f64| {
        row.ms_per_request(cpu_s)
            .map_or_else(dash, |ms| format!("{ms:.2}"))
    };
    vec![
        row.devices().to_string(),
        offers,
        format!("{} / {}", run.node.tls_h2, run.node.tls_http1),
        format!("{:.0}", row.intended() as f64 / duration_s),
        format!("{:.0}", row.achieved() as f64 / duration_s),
        format!("{:.3}", row.ratio()),
        summary.map_or_else(dash, |s| percentiles(&s.send_latency_ms)),
        summary.map_or_else(dash, |s| percentiles(&s.view_latency_ms)),
        row.lag_p99_ms().map_or_else(dash, |l| format!("{l:.1}")),
        summary.map_or_else(dash, |s| s.fetch_queue_max.to_string()),
        format!("{:.1}", window.client_cpu_s),
        ms(window.client_cpu_s),
        ms(window.cpu_split[ProcessKind::Network]),
        ms(window.renderer_cpu_s()),
        window.node_cpu_s.map_or_else(dash, |s| format!("{s:.1}")),
        window.node_cpu_s.map_or_else(dash, ms),
        format!("{:.0}", window.machine_busy_pct),
        row.errors().to_string(),
        if row.keeps_up() {
            "yes".to_owned()
        } else {
            "**no**".to_owned()
        },
    ]
}

/// What is wrong with an HTTPS run's protocol, if anything: h2 offered but
/// no connection used it, or h2 used although only HTTP/1.1 was offered.
pub fn protocol_mismatch(row: &PageRow) -> Option<String> {
    let h2 = row.run.node.tls_h2;
    match row.run.wire {
        Wire::Https(Alpn::H2AndHttp1) if h2 == 0 => Some(format!(
            "{} phones with h2 offered: the node counted no h2 connection",
            row.devices()
        )),
        Wire::Https(Alpn::Http1) if h2 > 0 => Some(format!(
            "{} phones with HTTP/1.1 only: the node counted {h2} h2 connections",
            row.devices()
        )),
        _ => None,
    }
}

pub const BASELINE_HEADERS: &[&str] = &[
    "devices (processes)",
    "over",
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
        let mut cells = vec![run.devices.to_string(), run.transport.as_str().to_owned()];
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
        run.transport.as_str().to_owned(),
        per_s(report.requests_intended),
        per_s(report.sends_ok),
        format!("{:.3}", ratio(report.sends_ok, report.requests_intended)),
        format!("{:.1}", run.window.client_cpu_s),
        format!("{:.1}", report.driver_cpu_s),
        run.window
            .node_cpu_s
            .map_or_else(dash, |s| format!("{s:.1}")),
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

/// The columns of browser CPU per `unit` (request, push): all its
/// processes, then each process type.
/// The floors' column for their lag meter.
const LAG_COLUMN: &str = "timer lag p99 ms";

/// A lag p99 cell: ms, or `?` when it was not measured.
pub(crate) fn lag_cell(lag_p99_ms: Option<f64>) -> String {
    lag_p99_ms.map_or_else(|| "?".to_owned(), |ms| format!("{ms:.1}"))
}

fn cpu_columns(unit: &str) -> Vec<String> {
    let mut columns = vec![format!("browser CPU ms/ {unit}")];
    columns.extend(ProcessKind::ALL.map(|kind| format!("{} ms/ {unit}", kind.name())));
    columns
}

/// The cells under [`cpu_columns`]: `per` turns CPU seconds of `window`
/// into ms per unit, shown with `digits` decimals.
fn cpu_cells(window: &Window, digits: usize, per: impl Fn(f64) -> f64) -> Vec<String> {
    let mut cells = vec![format!("{:.digits$}", per(window.client_cpu_s))];
    cells.extend(ProcessKind::ALL.map(|kind| format!("{:.digits$}", per(window.cpu_split[kind]))));
    cells
}

/// A Markdown table.
pub fn table<S: AsRef<str>>(headers: &[S], rows: Vec<Vec<String>>) -> String {
    let mut out = table_head(headers);
    for row in &rows {
        out.push_str(&table_line(row));
    }
    out
}

/// A Markdown table's header and rule.
pub fn table_head<S: AsRef<str>>(headers: &[S]) -> String {
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

- **req/s intended**: the `sentantSend` requests the run should make, over the scenario's duration: two for each value its devices' scenarios planned within the duration (r2-core's `Planner` in the page: change-only, at most every 200 ms), plus the `update {}` sent when a subscription connects: one per device, and with projectors (`webapp`) one more per device and projector, for its card. It is recomputed here with r2-core's `RunPlan` (seed, scenario, start offsets, duration) for every device requested, all live from the start, as the page runs them; its scenarios draw the same numbers natively as in the browser, so this is what the page planned (its own count is `sends_planned`). Planned requests the tab skipped because it fell more than 1 s behind (`skipped_late`) or never made count as intended, not achieved. **req/s achieved**: the requests the node answered (`sends_ok`), over the same duration. For the baseline, intended is the steps each process's own sleep schedule fits into the duration if requests took no time, two requests each.
- **lag p99**: the page's hiccup meter (a 10 ms timer's lateness), p99 while the scenarios send (in the engine's worker, or on the main thread with `workers=0`). **fetch queue max**: the most requests in flight in the tab at once. **signal p50 / p99**: from a send to its `update` signal arriving on the subscription.
- **JS heap / wasm MB**: the tab's JS heap in use (`Runtime.getHeapUsage`) and its wasm linear memory, the largest seen (sampled each second); in brackets, what the run engine's allocator held of its wasm (counted by the page's allocator; the worker's, or the page's own with `workers=0`): the most while the scenarios ran, and the most at any time. A wasm memory only grows, so a burst (a join storm's answers in flight) stays in its size after the burst is gone. **tab KB/device added**: what each device added to their sum: the slope from the previous count of the series (peak minus peak, per device between them); for a series' first count, the peak minus the loaded page's before the run, per device, marked ≤: an upper bound, as it also holds what any run adds whatever its size. **renderer PSS**: the tab's renderer processes, from `/proc`, the largest seen.
- **CPU s**: over the scenario phase (from the first poll that sees `running` to the first that sees it over): the tab's renderer processes, all of the browser's processes, and the node's process, from `/proc`. **machine busy %**: all CPUs, from `/proc/stat`, over the same window; what the browser, the node and this benchmark (measuring) did not use of it went to other processes (the machine is shared), named in **what ran out**.
- **where the CPU went**: the same window's CPU of each of the browser's processes, grouped by the type its command line names (`/proc/PID/cmdline`, NUL-separated or, where Chromium's zygote rewrote a child's title, one string): **renderer** (`--type=renderer`: the tab's JS and wasm), **network** (`--type=utility --utility-sub-type=network.mojom.NetworkService`: connections, HTTP, TLS), **browser** (no `--type`: the browser process, which also relays every request between renderer and network service), **GPU** (`--type=gpu-process`), **other** (other utilities such as storage, and the zygotes); and the node's process. In brackets: per answered request of the scenario phase (all answered, less the `update`s on connecting). A process that exits during the window takes its CPU with it.
- **`webapp` over HTTPS**: the page loaded from the node's HTTPS address and told `node=` that address, Chromium started with `--ignore-certificate-errors`; a node process of its own for each protocol offer, with the real node's behaviour (no `--lenient`). **TLS connections h2 / http/1.1**: the node's `tls_h2` and `tls_http1` counters (`/r2-node/stats`) over the run. **send**: a request's round trip in the tab; **view**: from a device's value sent to `view`'s signal carrying it on another phone's socket.
- **baseline CPU**: the device processes' user + system time, `getrusage(RUSAGE_CHILDREN)` in the driver after joining them all; the driver's own (loading, forking, unloading) is apart. **PSS**: proportional set size summed over every process of the tree (shared pages divided among their sharers, from `/proc/PID/smaps_rollup`), the largest seen sampling every 0.5 s (page: every second); RSS sums overstate forked processes and are shown for comparison.
- **page : baseline**: CPU per device per second of scenario and per answered request (page: all browser processes; baseline: device processes); memory all-in (the whole browser against the whole script) and per added device (the browser's PSS slope as for the tab's memory; the script's PSS per process).
- **keeps up**: finished with every device created, lag p99 ≤ 20 ms, and achieved/intended ≥ 0.99. A run that does not keep up while other processes (neither the browser nor the node) used half a core or more is marked disturbed and, once the machine is quieter (or after a minute), run again; both rows are shown, and the second counts. **what ran out**: for a run that did not keep up, every sign seen: the page's own bottleneck check (late timers, sends behind plan, a piling fetch queue), the machine's CPUs ≥ 90 % busy, devices not created, errors.
";

/// The largest of `rows` that kept up, else the largest.
pub fn largest_kept_up<'a>(rows: impl Iterator<Item = &'a PageRow> + Clone) -> Option<&'a PageRow> {
    rows.clone()
        .filter(|r| r.keeps_up())
        .max_by_key(|r| r.devices())
        .or_else(|| rows.max_by_key(|r| r.devices()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::class::ClassRow;
    use crate::floor::{FloorRun, WebAppFloor};
    use crate::measure::Window;
    use crate::node::NodeStats;
    use crate::procs::CpuByKind;
    use crate::tab::TabMemory;
    use r2_core::config::RunConfig;
    use r2_core::metrics::RunMetrics;
    use r2_core::summary::{RunFacts, Summary};

    /// A finished run of `devices` devices (`created` of them live) that
    /// answered `ok` sends, failed `failed`, skipped `late` planned values,
    /// with the hiccup meter at `lag_ms`, on a machine `busy_pct` busy.
    fn row(
        devices: u32,
        created: u32,
        (ok, failed, late): (u64, u64, u64),
        lag_ms: f64,
        busy_pct: f64,
    ) -> PageRow {
        let config = RunConfig {
            devices,
            sockets: SocketsMode::Shared,
            // No projector: one `update` per device on connecting.
            viewers: Some(0),
            ..RunConfig::default()
        };
        let mut m = RunMetrics::new(0.0, devices);
        m.devices_created = created.into();
        (0..ok).for_each(|i| m.record_send(i as f64, i as f64, i as f64 + 5.0));
        (0..failed).for_each(|_| m.record_send_failed("timeout", "no answer in 10 s"));
        (0..late)
            .for_each(|_| m.record_error(SKIPPED_LATE, "a send planned 1200 ms ago was skipped"));
        // Two requests per value planned, less each device's `update` on connecting.
        m.sends_planned = (ok + failed).saturating_sub(devices.into()) / 2 + late;
        (0..200).for_each(|_| m.record_scheduler_lag(lag_ms));
        let facts = RunFacts {
            node: "http://127.0.0.1:1".into(),
            run_prefix: "r2s-x-1-".into(),
            duration_s: 15.0,
            leftovers: Vec::new(),
            leftovers_unchecked: None,
        };
        let summary = Summary::from_metrics(&m, &config, facts);
        PageRow {
            disturbed: false,
            run: TabRun {
                config,
                wire: Wire::Http,
                outcome: Outcome::Finished,
                summary: Some(summary),
                window: Window {
                    wall_s: 15.0,
                    client_cpu_s: 20.0,
                    cpu_split: CpuByKind::default(),
                    node_cpu_s: Some(8.0),
                    bench_cpu_s: 0.0,
                    machine_busy_pct: busy_pct,
                },
                memory: TabMemory::default(),
                node: NodeStats::default(),
                browser_version: "HeadlessChrome/1".into(),
                total_s: 30.0,
            },
        }
    }

    #[test]
    fn intended_counts_every_planned_request_the_page_accounted_for() {
        let r = row(10, 10, (990, 4, 3), 2.0, 50.0);
        assert_eq!(r.intended(), 990 + 4 + 2 * 3);
        assert_eq!(r.achieved(), 990);
        assert!((r.ratio() - 0.99).abs() < 1e-12);
        assert!(r.keeps_up(), "{:?}", r.limits(2));
        assert!(r.limits(2).is_empty());
        let cells = page_cells(&r, None, 15.0, 2);
        assert_eq!(cells.len(), PAGE_HEADERS.len());
        assert_eq!(&cells[3..6], ["67", "66", "0.990"]);
        assert_eq!(cells[17], "yes");
    }

    #[test]
    fn intended_is_recomputed_natively_for_devices_live_from_the_start() {
        let mut r = row(10, 10, (990, 4, 3), 2.0, 50.0);
        r.run.config.profile = r2_core::profile::Profile::Lean;
        r.run.config.duration_s = 15.0;
        let plan = RunPlan::new(&r.run.config, None);
        let planned = plan.sends_planned_from_start(10);
        assert!(planned > 10 * 15, "sweep sends at least once a second");
        assert_eq!(r.intended(), 2 * planned + 10);
        // The page's own count is not what is used.
        r.run.summary.as_mut().expect("summary").sends_planned = 1;
        assert_eq!(r.intended(), 2 * planned + 10);
    }

    #[test]
    fn a_run_that_falls_behind_says_what_ran_out() {
        let late = row(10, 10, (900, 0, 50), 45.0, 97.0);
        assert!(!late.keeps_up());
        let limits = late.limits(2);
        assert!(
            matches!(limits[0], Limit::MachineCpu { cores: 2, .. }),
            "{limits:?}"
        );
        assert!(
            limits.iter().any(|l| matches!(l, Limit::MainThread { .. })),
            "{limits:?}"
        );
        assert!(
            limits
                .iter()
                .any(|l| matches!(l, Limit::Errors { count: 50, .. })),
            "{limits:?}"
        );
        let missing = row(10, 7, (1000, 0, 0), 2.0, 40.0);
        assert!(!missing.keeps_up(), "3 devices were not created");
        assert!(matches!(
            missing.limits(2)[0],
            Limit::Devices {
                created: 7,
                requested: 10,
                ..
            }
        ));
        let failing = row(10, 10, (980, 20, 0), 2.0, 40.0);
        assert!(!failing.keeps_up(), "98 % answered");
        assert!(matches!(
            failing.limits(2)[0],
            Limit::Errors { count: 20, .. }
        ));
    }

    #[test]
    fn capacity_is_the_largest_count_that_kept_up() {
        // 100 devices first fell behind while other processes took the CPU
        // (99 % of 2 cores over 15 s, 10 + 8 s of it ours: 0.8 core others),
        // so it was run again.
        let mut disturbed = row(100, 100, (2000, 0, 300), 60.0, 99.0);
        disturbed.run.window.client_cpu_s = 10.0;
        disturbed.disturbed = true;
        let mut pages = vec![
            row(50, 50, (1000, 0, 0), 3.0, 30.0),
            disturbed,
            row(100, 100, (2000, 0, 0), 9.0, 60.0),
            row(200, 200, (2000, 0, 900), 80.0, 99.0),
        ];
        for (page, peak) in pages.iter_mut().zip([4u64, 99, 6, 10]) {
            page.run.memory.peak_bytes = peak << 20;
        }
        let before = previous(&pages, &pages[3]).expect("a smaller run");
        assert_eq!((before.devices(), before.disturbed), (100, false));
        let slope = marginal(&pages[3], Some(before)).expect("devices");
        assert_eq!(
            (slope.tab_bytes, slope.from),
            (f64::from(4u32 << 20) / 100.0, Some(100))
        );
        let cells = page_cells(&pages[1], previous(&pages, &pages[1]), 15.0, 2);
        assert!(
            cells[17].contains("disturbed: other processes used 0.8 cores"),
            "{}",
            cells[17]
        );
        let report = Report {
            pages,
            elapsed: Duration::from_secs(60),
            ..Report::new(BenchPlan::full(), "test".into())
        };
        assert_eq!(
            report.capacity(ScenarioKind::Sweep, SocketsMode::Shared),
            Some(100)
        );
        assert_eq!(
            report.capacity(ScenarioKind::Rotate, SocketsMode::Shared),
            None
        );
        let goals = report.goals();
        let devices = &goals[0];
        assert!(
            !devices.met && devices.measured == "100 devices; the series broke at 200",
            "{devices:?}"
        );
        assert!(devices
            .limits
            .iter()
            .any(|l| matches!(l, Limit::MachineCpu { .. })));
        let markdown = report.to_markdown();
        assert!(
            markdown.contains("- `sweep`, `shared`: **100** devices (the series broke at 200)"),
            "{markdown}"
        );
        assert!(
            markdown.contains("- `rotate`, `shared`: not run"),
            "{markdown}"
        );
        assert!(
            markdown.contains("What would move the limits seen here"),
            "{markdown}"
        );
        // The 200 devices fell behind: the 100 that kept up measure the
        // devices' memory (6 MiB against 50 devices' 4 MiB).
        let tab = goals.last().expect("the tab memory goal");
        assert!(
            tab.measured.starts_with(
                "41.0 KB per device at 100 devices (`sweep`, `shared`; the slope from 50 devices)"
            ),
            "{tab:?}"
        );
        // With no run that kept up past the first, the largest one says it
        // did not.
        let mut behind = report.clone();
        behind.pages.retain(|row| row.devices() != 100);
        let tab = behind.goals().pop().expect("the tab memory goal");
        assert!(
            tab.measured
                .starts_with("41.0 KB per device at 200 devices")
                && tab
                    .measured
                    .ends_with("; a run that did not keep up, its piled-up requests counted)"),
            "{tab:?}"
        );

        // Only the first count of the capacity series ran: the slope comes
        // from the `transport=socket` series (lean devices) instead of an
        // upper bound.
        let mut report = report;
        report.pages.truncate(1);
        let socket = |devices: u32, peak_mib: u64| {
            let mut r = row(devices, devices, (1000, 0, 0), 3.0, 30.0);
            r.run.config.profile = r2_core::profile::Profile::Lean;
            r.run.config.transport = r2_core::config::Transport::Socket;
            r.run.memory.peak_bytes = peak_mib << 20;
            r
        };
        report.extra = vec![socket(500, 40), socket(1000, 50)];
        let tab = report
            .goals()
            .into_iter()
            .find(|g| g.name.contains("tab memory"))
            .expect("the tab memory goal");
        assert!(
            tab.measured.starts_with(
                // These rows achieved too few of their intended requests to keep up.
                "20.5 KB per device at 1000 devices (`sweep`, `shared`, `transport=socket`; the slope from 500 devices; a run that did not keep up"
            ),
            "{tab:?}"
        );
    }

    #[test]
    fn the_floor_is_set_beside_its_run_and_bounds_the_device_goal() {
        // 1900 requests answered in the scenario phase (2000, less each
        // device's `update` on connecting), 20 s of browser CPU: 10.53 ms each.
        let mut page = row(100, 100, (2000, 0, 0), 9.0, 60.0);
        page.run.config.profile = r2_core::profile::Profile::Lean;
        let mut split = CpuByKind::default();
        split.add(ProcessKind::Renderer, 6.0);
        let floor = Floor {
            beside: 100,
            run: FloorRun {
                rate: 126.7,
                sent: 1900,
                answered: 1900,
                failed: 0,
                window: Window {
                    wall_s: 15.0,
                    client_cpu_s: 9.5,
                    cpu_split: split,
                    ..Window::default()
                },
                node_requests: 1900,
                node_pushes: 0,
                signals: 0,
                in_workers: 0,
                lag_p99_ms: None,
            },
        };
        let mut report = Report {
            pages: vec![page],
            floor: Some(floor),
            elapsed: Duration::from_secs(60),
            ..Report::new(BenchPlan::full(), "test".into())
        };
        report.machine.cores = 2;
        let markdown = report.to_markdown();
        for part in [
            "## Chromium's floor: the WebApp's traffic from a bare page",
            "| a bare page: `fetch` only | 127 | 1900 | 0 | ? | 5.00 | 3.16 |",
            "| the page: `lean`, `sweep`, `shared`, 100 devices | 127 | 1900 | 0 | 9.0 | 10.53 |",
            "Of the page's 10.53 ms of browser CPU per request, Chromium's floor is 5.00 ms (48 %): the page's own work (devices, scheduler, subscriptions, metrics, drawing) adds 5.53 ms.",
        ] {
            assert!(markdown.contains(part), "{part:?} missing:\n{markdown}");
        }
        // 300 devices at 1.27 requests a second each: 380 a second, at 5 ms
        // each 1.9 cores: within 2 cores, so not a limit...
        let goal = |report: &Report| report.goals().into_iter().next().expect("the device goal");
        assert!(!goal(&report)
            .limits
            .iter()
            .any(|l| matches!(l, Limit::FloorCores { .. })));
        // ... but at 10 ms each, 3.8 cores are.
        report
            .floor
            .as_mut()
            .expect("floor")
            .run
            .window
            .client_cpu_s = 19.0;
        let limits = goal(&report).limits;
        let Some(Limit::FloorCores {
            devices,
            rate,
            cores_needed,
            cores,
            ..
        }) = limits
            .iter()
            .find(|l| matches!(l, Limit::FloorCores { .. }))
        else {
            panic!("no floor limit: {limits:?}");
        };
        assert_eq!((*devices, rate.round(), *cores), (300, 380.0, 2));
        assert!((cores_needed - 3.8).abs() < 1e-9, "{cores_needed}");
        assert!(limits.iter().any(|l| l
            .describe()
            .contains("that is 3.8 cores for the browser alone, of this machine's 2")));
    }

    #[test]
    fn a_class_past_chromiums_floors_says_so() {
        // 60 phones: 1500 requests and 52 500 node pushes in 15 s, that is
        // 100 requests and 3500 pushes a second.
        let class = ClassRow {
            tabs: vec![row(60, 60, (1500, 0, 0), 500.0, 100.0)],
            node: NodeStats {
                deliveries: 52_500,
                ..NodeStats::default()
            },
        };
        let floor = FloorRun {
            rate: 100.0,
            sent: 1000,
            answered: 1000,
            failed: 0,
            window: Window {
                client_cpu_s: 5.0,
                ..Window::default()
            },
            node_requests: 1000,
            node_pushes: 0,
            signals: 0,
            in_workers: 0,
            lag_p99_ms: None,
        };
        let push = |cpu_s: f64| PushFloorRun {
            sockets: 100,
            updates_per_s: 20.0,
            updates: 100,
            pushes: 10_000,
            node_pushes: 10_000,
            window: Window {
                wall_s: 5.0,
                client_cpu_s: cpu_s,
                ..Window::default()
            },
            lag_p99_ms: Some(3.0),
        };
        let floors_of = |goals: Vec<Goal>| -> Vec<Limit> {
            goals
                .into_iter()
                .flat_map(|g| g.limits)
                .filter(|l| matches!(l, Limit::ChromiumFloors { .. }))
                .collect()
        };
        // 0.4 ms a push: 0.5 + 1.4 = 1.9 cores, within 2.
        let light = push(4.0);
        let goals = crate::class::class_goals(
            std::slice::from_ref(&class),
            &[],
            2,
            Some((&floor, &light)),
            &[],
        );
        assert!(floors_of(goals).is_empty());
        // 0.5 ms a push: 0.5 + 1.75 = 2.25 cores, past 2, in both class goals.
        let heavy = push(5.0);
        let goals = crate::class::class_goals(
            std::slice::from_ref(&class),
            &[],
            2,
            Some((&floor, &heavy)),
            &[],
        );
        let limits = floors_of(goals);
        assert_eq!(limits.len(), 2, "{limits:?}");
        let text = limits[0].describe();
        assert!(
            text.contains("100 requests a second at 5.00 ms")
                && text.contains("3500 pushes a second at 0.500 ms")
                && text.contains("are 2.2 cores for the browsers alone, of this machine's 2"),
            "{text}"
        );
        // Without floors, no such limit.
        let goals = crate::class::class_goals(std::slice::from_ref(&class), &[], 2, None, &[]);
        assert!(floors_of(goals).is_empty());
    }

    #[test]
    fn the_webapp_floor_is_set_beside_its_run_and_in_the_one_tab_goal() {
        // 60 phones over h2 in one worker that did not keep up (lag 150
        // ms): 1.5 cores of browser CPU (22.5 s over 15 s).
        let mut page = row(60, 60, (2100, 0, 0), 150.0, 90.0);
        page.run.wire = Wire::Https(Alpn::H2AndHttp1);
        page.run.window.client_cpu_s = 22.5;
        assert_eq!(page.engine_workers(), 1, "the summary's `worker`");
        for (engine, workers) in [("3 workers", 3), ("main thread", 0)] {
            let mut other = page.clone();
            other.run.summary.as_mut().expect("a summary").engine = engine.to_owned();
            assert_eq!(other.engine_workers(), workers, "{engine}");
        }
        let floor = |workers: u32, lag_p99_ms: f64| WebAppFloor {
            beside: 60,
            beside_pushes_per_s: 9000.0,
            sockets: 130,
            workers,
            run: FloorRun {
                rate: 140.0,
                sent: 2100,
                answered: 2100,
                failed: 0,
                window: Window {
                    wall_s: 15.0,
                    client_cpu_s: 21.0,
                    node_cpu_s: Some(4.5),
                    machine_busy_pct: 88.0,
                    ..Window::default()
                },
                node_requests: 2100,
                node_pushes: 135_000,
                signals: 135_000,
                in_workers: workers,
                lag_p99_ms: Some(lag_p99_ms),
            },
        };
        let mut report = Report {
            https: vec![page],
            webapp_floors: vec![floor(0, 12.0), floor(1, 35.0)],
            elapsed: Duration::from_secs(60),
            ..Report::new(BenchPlan::full(), "test".into())
        };
        report.machine.cores = 2;
        let markdown = report.to_markdown();
        for line in [
            "| 60 | main thread | 140 | 2100 | 0 | 130 | 9000 | 9000 | 12.0 | 1.40 | 0.30 | 88 | 10.00 |",
            "| 60 | 1 worker | 140 | 2100 | 0 | 130 | 9000 | 9000 | 35.0 | 1.40 | 0.30 | 88 | 10.00 |",
            "- 60 phones, the page (worker) : the bare page (main thread): browser 1.50 : 1.40 cores, machine 90 : 88 % busy, timer lag p99 150.0 : 12.0 ms.",
            "- 60 phones, the page (worker) : the bare page (1 worker): browser 1.50 : 1.40 cores, machine 90 : 88 % busy, timer lag p99 150.0 : 35.0 ms.",
        ] {
            assert!(markdown.contains(line), "{line}\n{markdown}");
        }
        let floor_limit = |report: &Report| -> Vec<String> {
            report
                .goals()
                .into_iter()
                .filter(|g| g.name.contains("from one tab"))
                .flat_map(|g| g.limits)
                .filter(|l| matches!(l, Limit::WebAppFloor { .. }))
                .map(|l| l.describe())
                .collect()
        };
        // The floor made as the page made its traffic: in one worker.
        let over = floor_limit(&report);
        assert_eq!(over.len(), 1, "{over:?}");
        assert!(
            over[0].contains("140 requests a second and reading 9000 pushes a second on its 1 worker, kept the browser's processes 1.40 cores busy of this machine's 2 (the node 0.30), the machine 88 % busy")
                && over[0].contains("late p99 35.0 ms, over the goal's 20 ms with no page code at all"),
            "{over:?}"
        );
        // Else the main thread's.
        let within = floor_limit(&Report {
            webapp_floors: vec![floor(0, 12.0)],
            ..report.clone()
        });
        assert!(
            within[0].contains("on its main thread")
                && within[0].contains("late p99 12.0 ms, within the goal's 20 ms"),
            "{within:?}"
        );
        let without = floor_limit(&Report {
            webapp_floors: Vec::new(),
            ..report
        });
        assert!(without.is_empty(), "{without:?}");
    }

    #[test]
    fn the_socket_floor_is_set_per_device_second_beside_its_run() {
        // 100 devices, 3100 answered in 15 s: 3000 in the scenario (100 on
        // connecting), 2 requests a device-second; a signal for every other send.
        let mut socket = row(100, 100, (3100, 0, 0), 3.0, 40.0);
        socket.run.config.transport = r2_core::config::Transport::Socket;
        socket.run.config.profile = Profile::Lean;
        if let Some(summary) = socket.run.summary.as_mut() {
            summary.signals_received = 1550;
        }
        let floor_run = |answered: u64, cpu_s: f64| FloorRun {
            rate: 200.0,
            sent: answered,
            answered,
            failed: 0,
            window: Window {
                wall_s: 15.0,
                client_cpu_s: cpu_s,
                ..Window::default()
            },
            node_requests: 0,
            node_pushes: 0,
            signals: 0,
            in_workers: 0,
            lag_p99_ms: Some(4.0),
        };
        let mut report = Report {
            extra: vec![socket.clone()],
            elapsed: Duration::from_secs(60),
            ..Report::new(BenchPlan::full(), "test".into())
        };
        assert_eq!(
            report.socket_floor_ms_per_device_s(&socket),
            None,
            "no floors"
        );
        // 0.2 ms a request, its signals' cost included.
        report.socket_floors.push(SocketFloor {
            beside: 100,
            sockets: 2,
            run: floor_run(3000, 0.6),
        });
        // 2 requests a device-second at 0.2 ms.
        let floor_ms = report
            .socket_floor_ms_per_device_s(&socket)
            .expect("the floor");
        assert!((floor_ms - 2.0 * 0.2).abs() < 1e-9, "{floor_ms}");
        // Beside another run, the floor beside this one is the one used.
        report.socket_floors.insert(
            0,
            SocketFloor {
                beside: 50,
                sockets: 1,
                run: floor_run(3000, 3.0),
            },
        );
        assert_eq!(report.socket_floor_ms_per_device_s(&socket), Some(floor_ms));
        let markdown = report.to_markdown();
        assert!(
            markdown.contains("What `transport=socket` sends and reads:")
                && markdown.contains("(first the run of 50 devices, the largest that kept up"),
            "{markdown}"
        );
    }

    #[test]
    fn the_cpu_split_and_the_https_runs_are_reported() {
        // 1020 answered, 20 of them the devices' `update` on connecting.
        let mut h2 = row(20, 20, (1020, 0, 0), 3.0, 60.0);
        h2.run.wire = Wire::Https(Alpn::H2AndHttp1);
        for (kind, s) in [
            (ProcessKind::Renderer, 4.0),
            (ProcessKind::Network, 1.0),
            (ProcessKind::Browser, 2.0),
            (ProcessKind::Gpu, 0.5),
        ] {
            h2.run.window.cpu_split.add(kind, s);
        }
        h2.run.node.tls_h2 = 1;
        h2.run.node.tls_http1 = 3;
        let mut http1 = h2.clone();
        http1.run.wire = Wire::Https(Alpn::Http1);
        http1.run.window.cpu_split.add(ProcessKind::Network, 1.0);
        http1.run.node.tls_h2 = 0;
        http1.run.node.tls_http1 = 9;

        assert_eq!(h2.scenario_requests(), 1000);
        // With a projector, each device's card sends one more `update` on connecting.
        let mut watched = h2.clone();
        watched.run.summary.as_mut().expect("summary").viewers = 1;
        assert_eq!(watched.on_connect(20), 40);
        assert_eq!(watched.scenario_requests(), 980);
        let cells = split_cells(&h2);
        assert_eq!(
            cells,
            [
                "`webapp`, `sweep`, `shared`, https h2, http/1.1",
                "20",
                "1000",
                "4.0 (4.00)",
                "1.0 (1.00)",
                "2.0 (2.00)",
                "0.5 (0.50)",
                "0.0 (0.00)",
                "8.0 (8.00)",
                "20.0 (20.00)",
            ]
        );
        assert_eq!(split_cells(&http1)[4], "2.0 (2.00)");
        let mut disturbed = h2.clone();
        disturbed.disturbed = true;
        assert!(split_cells(&disturbed)[0].ends_with("(disturbed, run again)"));
        let https = https_cells(&http1, 15.0);
        assert_eq!(https.len(), HTTPS_HEADERS.len());
        assert_eq!(&https[1..3], ["http/1.1", "0 / 9"]);
        assert_eq!(https[12], "2.00", "network service ms per request");
        assert_eq!(protocol_mismatch(&h2), None);
        assert_eq!(protocol_mismatch(&http1), None);

        let mut report = Report {
            pages: vec![row(50, 50, (1000, 0, 0), 3.0, 30.0)],
            https: vec![h2.clone(), http1.clone()],
            elapsed: Duration::from_secs(60),
            ..Report::new(BenchPlan::full(), "test".into())
        };
        let pairs = report.https_pairs();
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].0.run.wire, Wire::Https(Alpn::H2AndHttp1));
        assert_eq!(
            report.capacity(ScenarioKind::Sweep, SocketsMode::Shared),
            Some(50),
            "the HTTPS runs are no capacity series"
        );
        let markdown = report.to_markdown();
        for part in [
            "## `webapp` phones over HTTPS: h2 against HTTP/1.1",
            "went over the protocols offered",
            "- 20 phones, h2 : HTTP/1.1: browser CPU per answered request 20.00 : 20.00 ms (network service 1.00 : 2.00",
            "## Where the CPU went",
            "| `webapp`, `sweep`, `shared`, http | 50 |",
        ] {
            assert!(markdown.contains(part), "{part:?} missing:\n{markdown}");
        }
        report.https[0].run.node.tls_h2 = 0;
        report.https[1].run.node.tls_h2 = 2;
        let markdown = report.to_markdown();
        assert!(markdown.contains("20 phones with h2 offered: the node counted no h2 connection"));
        assert!(
            markdown.contains("20 phones with HTTP/1.1 only: the node counted 2 h2 connections")
        );
    }

    #[test]
    fn tables_have_a_rule_and_one_line_per_row() {
        let t = table(
            &["a", "b"],
            vec![vec!["1".into(), "2".into()], vec!["3".into(), "4".into()]],
        );
        assert_eq!(t, "| a | b |\n| --- | --- |\n| 1 | 2 |\n| 3 | 4 |\n");
    }

    #[test]
    fn ratios_guard_against_nothing() {
        assert_eq!(ratio(5, 0), 0.0);
        assert_eq!(ratio(99, 100), 0.99);
        assert_eq!(times(1.0, 0.0), f64::INFINITY);
        assert_eq!(times(0.0, 0.0), 0.0);
        assert_eq!(times(30.0, 1.5), 20.0);
        assert_eq!(times_text(times(30.0, 1.5)), "20.0×");
        assert_eq!(times_text(times(1.0, 0.0)), "–");
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
                bench_s: 0.05,
                others_s: 0.05,
                wall_s: 15.0,
            },
            Limit::Http { in_flight: 400 },
            Limit::Errors {
                count: 3,
                kind: "timeout".into(),
            },
            Limit::Sends { ratio: 0.9 },
            Limit::CpuPerRequest {
                page_ms: 2.4,
                baseline_ms: 0.7,
            },
            Limit::MemoryFloor {
                idle_mib: 250.0,
                page_kib_per_device: 900.0,
                baseline_kib_per_device: 3100.0,
            },
            Limit::TabMemory {
                kib_per_device: 58.0,
                heap_mib: 20.0,
                wasm_mib: 9.0,
                engine_running_mib: 4.8,
                engine_peak_mib: 6.7,
            },
        ];
        for limit in &limits {
            assert!(!limit.describe().is_empty() && !limit.remedy().is_empty());
        }
        assert!(limits[1].describe().contains("255 of 500"));
        assert!(
            limits[3].describe().contains(
                "97 % busy over 15.0 s: browser 20.0 s, node 9.0 s, measuring 0.1 s, other processes 0.1 s"
            ),
            "{}",
            limits[3].describe()
        );
        assert!(limits[6].describe().contains("90.0 %"));
    }
}
