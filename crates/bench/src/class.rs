//! A class from one machine: `webapp` phones holding their own sockets
//! (five each in their first minute), one projector with a card socket per
//! phone, the phones spread over as many headless Chromium instances as
//! Chromium's websocket cap needs ([`crate::plan::class_split`]), all
//! running at once against one node over HTTPS, as phones reach the real
//! node.
//!
//! The node holds `view` and `monitor` before the browsers start (as after
//! a class's first phone), so that none of them unloads them as its own
//! while the others run. Each browser is one page run ([`run_tab`]); the
//! class is judged as one:
//! its requests are the browsers' together (the projector in the first
//! browser sends an `update` for every phone's card, whichever browser the
//! phone is in), it keeps up when every browser does and the class answered
//! what it intended, and its CPU is every browser's over its own scenario
//! phase, summed.
//!
//! # Layout
//!
//! - [`run_class`]: the browsers at once, and the node's counters around them.
//! - [`ClassRow`]: one class run judged: requests, latencies, CPU, limits.
//! - [`class_cells`], [`class_markdown`], [`class_goals`]: the report's rows,
//!   section and goals.

use std::fmt::Write as _;
use std::time::Duration;

use futures::future::join_all;
use r2_core::config::RunConfig;
use r2_core::metrics::Percentiles;
use r2_core::summary::Summary;

use crate::floor::{FloorRun, PushFloorRun, WebAppFloor};
use crate::measure::Window;
use crate::node::{NodeHandle, NodeStats};
use crate::plan::{CLASS_VIEWERS, MIN_ACHIEVED_RATIO};
use crate::procs::ProcessKind;
use crate::report::{reach, table, Goal, Limit, PageRow};
use crate::tab::{run_tab, Scheme, TabError, TabRun};

/// The whole class the goals ask one machine to hold ...
pub const GOAL_CLASS: u32 = 60;
/// ... and the largest class they aim at.
pub const GOAL_CLASS_MAX: u32 = 200;

/// One class run: each browser's page run, and the node's counters over
/// all of them.
#[derive(Debug, Clone)]
pub struct ClassRow {
    pub tabs: Vec<PageRow>,
    /// The node's counters from before the first browser started to after
    /// the last one ended.
    pub node: NodeStats,
}

/// Runs the class: one browser per config at once, each loaded over HTTPS
/// from `node`, each given up after `timeout`.
pub async fn run_class(
    node: &NodeHandle,
    configs: &[RunConfig],
    timeout: Duration,
) -> Result<ClassRow, TabError> {
    // `view` and `monitor` are there before the browsers start, as a
    // class's first phone leaves them: no browser then takes them for its
    // own and unloads them while the others still run.
    let demo = node.load_demo_sentants().await?;
    let before = node.stats().await?;
    let runs = join_all(
        configs
            .iter()
            .map(|config| run_tab(node, config, Scheme::Https, timeout)),
    )
    .await;
    let after = node.stats().await?;
    node.unload_ids(&demo).await?;
    let tabs = runs
        .into_iter()
        .map(|run| {
            run.map(|run| PageRow {
                run,
                disturbed: false,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ClassRow {
        tabs,
        node: after.since(&before),
    })
}

impl ClassRow {
    fn runs(&self) -> impl Iterator<Item = &TabRun> {
        self.tabs.iter().map(|row| &row.run)
    }

    /// Phones in the whole class.
    pub fn devices(&self) -> u32 {
        self.runs().map(|run| run.config.devices).sum()
    }

    /// Phones in each browser, the projector's first.
    pub fn split(&self) -> Vec<u32> {
        self.runs().map(|run| run.config.devices).collect()
    }

    /// The summaries of the browsers that wrote one.
    fn summaries(&self) -> impl Iterator<Item = &Summary> {
        self.runs().filter_map(|run| run.summary.as_ref())
    }

    /// A figure of every browser's summary, summed.
    fn sum(&self, of: fn(&Summary) -> u64) -> u64 {
        self.summaries().map(of).sum()
    }

    /// Phones created, all browsers.
    pub fn created(&self) -> u64 {
        self.sum(|s| s.devices_created)
    }

    /// Projector pages in the class.
    fn viewers(&self) -> u64 {
        self.runs().map(|run| u64::from(run.config.viewers())).sum()
    }

    /// The requests the class intended: two for each value every phone's
    /// page planned, an `update` by each phone's sensor page on connecting,
    /// and one by each projector for each phone's card (a phone created
    /// between the projector's listing and its `monitor` subscription would
    /// get no card, and the class would intend one `update` too many).
    pub fn intended(&self) -> u64 {
        2 * self.sum(|s| s.sends_planned) + u64::from(self.devices()) * (1 + self.viewers())
    }

    /// Requests the node answered, all browsers.
    pub fn achieved(&self) -> u64 {
        self.tabs.iter().map(PageRow::achieved).sum()
    }

    pub fn ratio(&self) -> f64 {
        match self.intended() {
            0 => 0.0,
            intended => self.achieved() as f64 / intended as f64,
        }
    }

    /// Answered requests less the `update`s on connecting.
    pub fn scenario_requests(&self) -> u64 {
        self.achieved()
            .saturating_sub(self.created() * (1 + self.viewers()))
    }

    /// The worst browser's scheduler lag p99.
    pub fn lag_p99_ms(&self) -> Option<f64> {
        self.tabs
            .iter()
            .map(PageRow::lag_p99_ms)
            .try_fold(0.0f64, |worst, lag| Some(worst.max(lag?)))
    }

    /// The worst browser's figure of a latency (each browser measures its
    /// own phones'; a `view` latency only where sender and receiver share
    /// a browser).
    fn worst(&self, of: fn(&Summary) -> &Percentiles) -> Option<Percentiles> {
        self.summaries()
            .map(of)
            .filter(|p| p.count > 0)
            .max_by(|a, b| a.p99.total_cmp(&b.p99))
            .cloned()
    }

    /// Signals the pages received: their phones' own, `view`'s and the
    /// projector's.
    pub fn pushes_received(&self) -> u64 {
        self.sum(|s| s.signals_received + s.view_signals + s.projector_signals)
    }

    /// Websockets the browsers held at once, each at its own peak, summed.
    pub fn sockets_peak(&self) -> u64 {
        self.sum(|s| s.sockets_live_max)
    }

    /// Every browser's costs over its own scenario phase: CPU summed, the
    /// longest window's wall time, the node's and the machine's busiest.
    pub fn window(&self) -> Window {
        let mut window = Window::default();
        for run in self.runs() {
            let w = &run.window;
            window.client_cpu_s += w.client_cpu_s;
            for kind in ProcessKind::ALL {
                window.cpu_split.add(kind, w.cpu_split[kind]);
            }
            window.wall_s = window.wall_s.max(w.wall_s);
            window.node_cpu_s = match (window.node_cpu_s, w.node_cpu_s) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            window.bench_cpu_s = window.bench_cpu_s.max(w.bench_cpu_s);
            window.machine_busy_pct = window.machine_busy_pct.max(w.machine_busy_pct);
        }
        window
    }

    /// Every browser kept up (all its phones created, lag p99 ≤ 20 ms, its
    /// requests answered) and the class answered ≥ 99 % of what it intended.
    pub fn keeps_up(&self) -> bool {
        !self.tabs.is_empty()
            && self.tabs.iter().all(PageRow::keeps_up)
            && self.ratio() >= MIN_ACHIEVED_RATIO
    }

    /// What ran out: the machine's CPU over the class, then the browsers'
    /// own limits but the CPU (the same machine), each kind once, from the
    /// first browser (the projector's) that hit it.
    pub fn limits(&self, cores: usize) -> Vec<Limit> {
        if self.keeps_up() {
            return Vec::new();
        }
        let mut limits: Vec<Limit> = Limit::machine_cpu(&self.window(), cores)
            .into_iter()
            .collect();
        for limit in self.tabs.iter().flat_map(|row| row.limits(cores)) {
            let per_tab_cpu = matches!(limit, Limit::MachineCpu { .. } | Limit::Sends { .. });
            let kind = std::mem::discriminant(&limit);
            if !per_tab_cpu && !limits.iter().any(|l| std::mem::discriminant(l) == kind) {
                limits.push(limit);
            }
        }
        if self.ratio() < MIN_ACHIEVED_RATIO || limits.is_empty() {
            limits.push(Limit::Sends {
                ratio: self.ratio(),
            });
        }
        limits
    }
}

pub const CLASS_HEADERS: &[&str] = &[
    "phones",
    "browsers (phones each)",
    "websockets at the peak",
    "req/s intended",
    "req/s achieved",
    "achieved/ intended",
    "send p50 / p99 ms",
    "view p50 / p99 ms",
    "pushes received /s",
    "node pushes /s",
    "lag p99 ms (worst browser)",
    "renderer CPU s",
    "browser CPU s",
    "node CPU s",
    "machine busy %",
    "errors",
    "keeps up",
    "what ran out",
];

/// The cells of one class run.
pub fn class_cells(row: &ClassRow, duration_s: f64, cores: usize) -> Vec<String> {
    let window = row.window();
    let created = row.created();
    let phones = if created < u64::from(row.devices()) {
        format!("{} ({created} created)", row.devices())
    } else {
        row.devices().to_string()
    };
    let latency = |p: Option<Percentiles>| {
        p.map_or_else(
            || "–".to_owned(),
            |p| format!("{:.1} / {:.1}", p.p50, p.p99),
        )
    };
    let split = row
        .split()
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(" + ");
    vec![
        phones,
        format!("{} ({split})", row.tabs.len()),
        row.sockets_peak().to_string(),
        format!("{:.0}", row.intended() as f64 / duration_s),
        format!("{:.0}", row.achieved() as f64 / duration_s),
        format!("{:.3}", row.ratio()),
        latency(row.worst(|s| &s.send_latency_ms)),
        latency(row.worst(|s| &s.view_latency_ms)),
        per_second(row.pushes_received(), window.wall_s),
        per_second(row.node.deliveries, window.wall_s),
        row.lag_p99_ms()
            .map_or_else(|| "–".to_owned(), |l| format!("{l:.1}")),
        format!("{:.1}", window.renderer_cpu_s()),
        format!("{:.1}", window.client_cpu_s),
        window
            .node_cpu_s
            .map_or_else(|| "–".to_owned(), |s| format!("{s:.1}")),
        format!("{:.0}", window.machine_busy_pct),
        row.tabs
            .iter()
            .map(PageRow::errors)
            .sum::<u64>()
            .to_string(),
        if row.keeps_up() { "yes" } else { "**no**" }.to_owned(),
        row.limits(cores)
            .iter()
            .map(Limit::describe)
            .collect::<Vec<_>>()
            .join("; "),
    ]
}

/// A count over the scenario's wall time, per second.
pub(crate) fn per_second(count: u64, wall_s: f64) -> String {
    if wall_s > 0.0 {
        format!("{:.0}", count as f64 / wall_s)
    } else {
        "–".to_owned()
    }
}

/// The report's section on the class runs (empty without any).
pub fn class_markdown(rows: &[ClassRow], duration_s: f64, cores: usize) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "\n## A class from one machine: `webapp` phones with their own sockets, over several browsers\n\n\
         `webapp` phones, `sweep`, `per-device` (each phone's own sockets: five in its first minute), {CLASS_VIEWERS} projector in the first browser (a socket for each phone's card besides `monitor` and `view`), every phone subscribed to `view` (each update fans out to every phone), the pages loaded over HTTPS from a node with the real node's behaviour (TLS offering `h2` and `http/1.1`). The phones are spread over as many headless Chromium instances, all at once, as keep each under Chromium's {} websockets per host. **req/s** count the class's requests together (the projector's card `update`s included); latencies and lag are the worst browser's; **pushes received** are the signals the pages handled (their phones', `view`'s, the projector's), **node pushes** every push the node made, including to the connect pages' sockets that a phone leaves open but no longer reads (as the WebApp's are); CPU is every browser's over its own scenario phase, summed.\n\n{}",
        r2_core::profile::CHROMIUM_SOCKETS_PER_HOST,
        table(
            CLASS_HEADERS,
            rows.iter()
                .map(|row| class_cells(row, duration_s, cores))
                .collect()
        )
    );
    let largest = rows
        .iter()
        .filter(|r| r.keeps_up())
        .map(ClassRow::devices)
        .max();
    let _ = writeln!(
        out,
        "\nThe largest class that kept up: {}.",
        largest.map_or("none".to_owned(), |n| format!("**{n} phones**"))
    );
    out
}

/// The goals on classes: a whole class from one machine with the phones'
/// own sockets, the largest class one machine holds, and 60 phones from one
/// tab with `shared` sockets (from the HTTPS rows, `https`). Chromium's
/// floors say what the browser alone needs: the request and push floors
/// (`floors`) in cores, and for the one tab the `webapp` floor made as the
/// page made its traffic (`webapp_floors`).
pub fn class_goals(
    rows: &[ClassRow],
    https: &[PageRow],
    cores: usize,
    floors: Option<(&FloorRun, &PushFloorRun)>,
    webapp_floors: &[WebAppFloor],
) -> Vec<Goal> {
    // What Chromium alone needs for a run's requests and pushes, when
    // that is more than the machine has.
    let floor_limit = |requests: u64, pushes: u64, wall_s: f64| -> Option<Limit> {
        let (floor, push) = floors?;
        if wall_s <= 0.0 {
            return None;
        }
        let (requests_per_s, pushes_per_s) = (requests as f64 / wall_s, pushes as f64 / wall_s);
        let cores_needed = floor.cores_at(requests_per_s) + push.cores_at(pushes_per_s);
        (cores_needed > cores as f64).then_some(Limit::ChromiumFloors {
            requests_per_s,
            request_ms: floor.cpu_per_request_ms(),
            pushes_per_s,
            push_ms: push.cpu_per_push_ms(),
            cores_needed,
            cores,
        })
    };
    let class_limits = |row: &ClassRow| {
        let mut limits = row.limits(cores);
        limits.extend(floor_limit(
            row.achieved(),
            row.node.deliveries,
            row.window().wall_s,
        ));
        limits
    };
    let mut goals = Vec::new();
    if !rows.is_empty() {
        let at_goal = rows.iter().find(|r| r.devices() == GOAL_CLASS);
        let kept = rows
            .iter()
            .filter(|r| r.keeps_up())
            .map(ClassRow::devices)
            .max();
        // The first class past the largest kept (a smaller one may break
        // and the series go on to a whole class).
        let broke = rows
            .iter()
            .find(|r| !r.keeps_up() && kept.is_none_or(|n| r.devices() > n));
        let describe = |row: &ClassRow| {
            format!(
                "{} phones in {} browsers: lag p99 {} ms, achieved/intended {:.3}, {} pushes received",
                row.devices(),
                row.tabs.len(),
                row.lag_p99_ms().map_or("?".to_owned(), |l| format!("{l:.1}")),
                row.ratio(),
                row.pushes_received()
            )
        };
        goals.push(Goal {
            name: format!("a whole class of {GOAL_CLASS} `webapp` phones from one machine, with their own sockets and the full `view` fan-out, lag p99 ≤ 20 ms"),
            measured: at_goal.map_or_else(
                || format!("not run at {GOAL_CLASS} phones"),
                describe,
            ),
            met: at_goal.is_some_and(ClassRow::keeps_up),
            limits: at_goal.map(class_limits).unwrap_or_default(),
        });
        goals.push(Goal {
            name: format!("the largest class one machine holds ≥ {GOAL_CLASS_MAX} phones"),
            measured: reach(kept, broke.map(ClassRow::devices), "phones"),
            met: kept.is_some_and(|n| n >= GOAL_CLASS_MAX),
            limits: broke.map(class_limits).unwrap_or_default(),
        });
    }
    let one_tab: Vec<&PageRow> = https.iter().filter(|r| r.devices() == GOAL_CLASS).collect();
    if !one_tab.is_empty() {
        let kept = one_tab.iter().find(|r| r.keeps_up());
        let shown = one_tab
            .iter()
            .map(|r| {
                format!(
                    "{}: lag p99 {} ms, achieved/intended {:.3}",
                    r.run.wire.describe(),
                    r.lag_p99_ms().map_or("?".to_owned(), |l| format!("{l:.1}")),
                    r.ratio()
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        goals.push(Goal {
            name: format!(
                "{GOAL_CLASS} `webapp` phones from one tab with `sockets=shared`, lag p99 ≤ 20 ms"
            ),
            measured: shown,
            met: kept.is_some(),
            limits: match kept {
                Some(_) => Vec::new(),
                None => {
                    let row = one_tab[0];
                    let mut limits = row.limits(cores);
                    limits.extend(floor_limit(
                        row.achieved(),
                        row.run.node.deliveries,
                        row.run.window.wall_s,
                    ));
                    // The floor made as the page made its traffic (as
                    // many workers), else on the bare page's main thread.
                    let floor = webapp_floors
                        .iter()
                        .find(|f| f.beside == row.devices() && f.workers == row.engine_workers())
                        .or_else(|| webapp_floors.iter().find(|f| f.beside == row.devices()));
                    limits.extend(floor.map(|floor| Limit::WebAppFloor {
                        threads: floor.threads(),
                        phones: floor.beside,
                        requests_per_s: floor.requests_per_s(),
                        pushes_per_s: floor.pushes_per_s(),
                        browser_cores: floor.browser_cores(),
                        cores,
                        node_cores: floor.run.window.node_cores(),
                        busy_pct: floor.run.window.machine_busy_pct,
                        lag_p99_ms: floor.run.lag_p99_ms,
                    }));
                    limits
                }
            },
        });
    }
    goals
}
