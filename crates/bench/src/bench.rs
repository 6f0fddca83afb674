//! The benchmark's order of work: each page series at rising device counts
//! until a run does not keep up, the baseline at its counts, then the
//! `webapp` series over HTTPS (each count once with h2 offered, once with
//! HTTP/1.1 only, against two more nodes with the real node's behaviour),
//! then a class of `webapp` phones with their own sockets over several
//! browsers and `webapp` phones sending with `transport=socket` (against a
//! node with the real node's behaviour), all within the time budget; each
//! row is printed as it comes. A run of a
//! page series that does not keep up while other processes take much of the
//! CPU (this machine is shared) is run again once the machine is quieter.

use std::time::{Duration, Instant};

use r2_core::config::RunConfig;
use r2_core::config::SocketsMode;
use r2_core::names::NAME_PREFIX;
use r2_core::profile::{Load, Profile};
use r2_core::scenario::ScenarioKind;

use r2_node::fidelity::Alpn;

use crate::baseline::{run_baseline, Transport};
use crate::class::{self, ClassRow};
use crate::floor::{
    run_floor, run_push_floor, run_socket_floor, run_webapp_floor, Floor, SocketFloor,
};
use crate::measure::Window;
use crate::node::{Behaviour, NodeHandle};
use crate::plan::{BenchPlan, HTTPS_ALPNS, JOIN_SPREAD_S};
use crate::procs::{MachineCpu, ProcessKind};
use crate::report::{self, table_head, table_line, PageRow, Report, DISTURBED_CORES};
use crate::tab::{run_tab, Outcome, Scheme, TabError, Wire};

/// Time a page run is expected to take besides its scenario: browser, idle
/// page, joining, the page's drain and cleanup.
const PAGE_OVERHEAD_S: f64 = JOIN_SPREAD_S + 15.0;
/// Expected extra time per device (joining and deleting).
const PAGE_PER_DEVICE_S: f64 = 0.01;
/// How long to wait at most for a quieter machine before running a disturbed run again.
const QUIET_WAIT: Duration = Duration::from_secs(60);
/// How long the machine's CPU is sampled to tell whether it is quiet.
const QUIET_SAMPLE: Duration = Duration::from_secs(2);
/// Time the floor's run is expected to take besides its requests.
const FLOOR_OVERHEAD_S: f64 = 5.0;
/// Expected time of a baseline run besides its scenario, and per process.
const BASELINE_OVERHEAD_S: f64 = 10.0;
const BASELINE_PER_DEVICE_S: f64 = 0.02;

/// Runs `plan` against `node`, passing each line of progress (Markdown
/// table rows, notes) to `say`.
pub async fn run_bench(plan: &BenchPlan, node: &NodeHandle, say: &mut dyn FnMut(String)) -> Report {
    let started = Instant::now();
    let mut report = Report::new(plan.clone(), node.describe().to_owned());
    say(format!(
        "r2-bench: {} page series at {:?} devices, {} s each; baseline up to {} processes; budget {} s",
        plan.series.len(),
        plan.counts,
        plan.duration_s,
        plan.baseline_max,
        plan.budget.as_secs()
    ));
    for (index, (scenario, sockets)) in plan.series.iter().enumerate() {
        if index == plan.baseline_after_series {
            baselines(plan, node, started, &mut report, say).await;
        }
        say(format!("\nseries `{scenario}`, `{sockets}`:\n"));
        say(report::table_head(report::PAGE_HEADERS));
        for &devices in &plan.counts {
            let config = plan.run_config(*scenario, *sockets, devices);
            let Some(mut row) =
                page_run(plan, node, &config, Scheme::Http, started, &mut report, say).await
            else {
                break;
            };
            say_page_row(&report, &row, say);
            let others = row.run.window.others_cores(report.machine.cores);
            if plan.rerun_disturbed && !row.keeps_up() && others >= DISTURBED_CORES {
                row.disturbed = true;
                report.pages.push(row);
                say(format!(
                    "other processes used {others:.1} cores during that run: waiting (a minute at most) for a quieter machine to run it again"
                ));
                if !wait_for_quiet(report.machine.cores).await {
                    say(
                        "the machine did not get quieter: running it again all the same".to_owned(),
                    );
                }
                let Some(again) =
                    page_run(plan, node, &config, Scheme::Http, started, &mut report, say).await
                else {
                    break;
                };
                say_page_row(&report, &again, say);
                row = again;
            }
            let keeps_up = row.keeps_up();
            report.pages.push(row);
            if !keeps_up {
                let series = format!("`{scenario}`, `{sockets}`");
                skip_larger(&mut report, &series, "devices", &plan.counts, devices);
                break;
            }
        }
    }
    if plan.baseline_after_series >= plan.series.len() {
        baselines(plan, node, started, &mut report, say).await;
    }
    floor(plan, node, started, &mut report, say).await;
    push_floor(plan, node, started, &mut report, say).await;
    https_series(plan, node, started, &mut report, say).await;
    webapp_series(plan, node, started, &mut report, say).await;
    other_series(plan, node, started, &mut report, say).await;
    socket_floors(plan, node, started, &mut report, say).await;
    lean_series(plan, node, started, &mut report, say).await;
    report.machine.finish();
    report.elapsed = started.elapsed();
    report
}

/// Prints a row of a page series as it comes.
fn say_page_row(report: &Report, row: &PageRow, say: &mut dyn FnMut(String)) {
    let before = report::previous(&report.pages, row);
    say(report::table_line(&report::page_cells(
        row,
        before,
        report.plan.duration_s,
        report.machine.cores,
    )));
}

/// Prints `row` of a series not set beside the previous count (no memory slope).
fn say_lone_row(report: &Report, row: &PageRow, say: &mut dyn FnMut(String)) {
    say(report::table_line(&report::page_cells(
        row,
        None,
        report.plan.duration_s,
        report.machine.cores,
    )));
}

/// The `webapp` phones over HTTPS at each of the plan's counts, with each
/// of [`HTTPS_ALPNS`] offered by a node of its own (the real node's
/// behaviour), alternating so that both see the same machine.
async fn https_series(
    plan: &BenchPlan,
    node: &NodeHandle,
    started: Instant,
    report: &mut Report,
    say: &mut dyn FnMut(String),
) {
    if plan.https_counts.is_empty() {
        return;
    }
    say("\n`webapp` over HTTPS, h2 against HTTP/1.1:\n".to_owned());
    say(report::table_head(report::HTTPS_HEADERS));
    let mut nodes = Vec::new();
    for alpn in HTTPS_ALPNS {
        match node.another(Behaviour::Real(alpn)).await {
            Ok(sibling) => nodes.push(sibling),
            Err(e) => {
                let note = format!(
                    "`webapp` over HTTPS offering {}: no node: {}",
                    alpn.describe(),
                    chain(&e)
                );
                say(note.clone());
                report.failures.push(note);
            }
        }
    }
    'counts: for &devices in &plan.https_counts {
        for https_node in &nodes {
            let config = plan.https_config(devices);
            let Some(row) = page_run(
                plan,
                https_node,
                &config,
                Scheme::Https,
                started,
                report,
                say,
            )
            .await
            else {
                break 'counts;
            };
            say(report::table_line(&report::https_cells(
                &row,
                plan.duration_s,
            )));
            report.https.push(row);
        }
    }
    if let Some(h2) = nodes.first().filter(|_| HTTPS_ALPNS[0] == Alpn::H2AndHttp1) {
        webapp_floor(plan, h2, started, report, say).await;
    }
    for https_node in nodes {
        https_node.stop().await;
    }
}

/// The class (`webapp` phones with their own sockets over several browsers
/// at once) and `webapp` phones in one tab sending with `transport=socket`,
/// each at its counts until a run does not keep up, against one more node
/// with the real node's behaviour, its TLS offering h2 and HTTP/1.1.
async fn webapp_series(
    plan: &BenchPlan,
    node: &NodeHandle,
    started: Instant,
    report: &mut Report,
    say: &mut dyn FnMut(String),
) {
    if plan.class_counts.is_empty() && plan.webapp_socket_counts.is_empty() {
        return;
    }
    let real = match node.another(Behaviour::Real(Alpn::H2AndHttp1)).await {
        Ok(real) => real,
        Err(e) => {
            let note = format!(
                "the class and `webapp` `transport=socket` series: no node: {}",
                chain(&e)
            );
            say(note.clone());
            report.failures.push(note);
            return;
        }
    };
    if !plan.class_counts.is_empty() {
        say(
            "\na class: `webapp` phones with their own sockets over several browsers:\n".to_owned(),
        );
        say(table_head(class::CLASS_HEADERS));
    }
    for &devices in &plan.class_counts {
        let Some(row) = class_run(plan, &real, devices, started, report, say).await else {
            break;
        };
        say(table_line(&class::class_cells(
            &row,
            plan.duration_s,
            report.machine.cores,
        )));
        let keeps_up = row.keeps_up();
        report.classes.push(row);
        // A whole class is run whatever a smaller one did (a goal of its own).
        if !keeps_up && devices >= class::GOAL_CLASS {
            skip_larger(report, "the class", "phones", &plan.class_counts, devices);
            break;
        }
    }
    let series = LoneSeries {
        name: "`webapp`, `sweep`, `shared`, transport=socket, over HTTPS",
        counts: &plan.webapp_socket_counts,
        config_of: BenchPlan::webapp_socket_config,
        scheme: Scheme::Https,
    };
    lone_series(plan, &real, series, started, report, say).await;
    real.stop().await;
}

/// One class run of `devices` phones; `None` (with a note) when the budget
/// would be exceeded, the class does not fit Chromium's socket cap, or it
/// could not be measured.
async fn class_run(
    plan: &BenchPlan,
    node: &NodeHandle,
    devices: u32,
    started: Instant,
    report: &mut Report,
    say: &mut dyn FnMut(String),
) -> Option<ClassRow> {
    let Some(configs) = plan.class_configs(devices) else {
        note(report, say, format!("the class at {devices} phones and more: not run, its projector's own sockets alone reach Chromium's cap"), true);
        return None;
    };
    // The browsers run at once; each starts its own Chromium.
    let expected = plan.duration_s + PAGE_OVERHEAD_S * 2.0 + PAGE_PER_DEVICE_S * f64::from(devices);
    if !fits(plan, started, expected) {
        note(report, say, format!(
            "the class at {devices} phones and more: not run, the time budget of {} s would be exceeded",
            plan.budget.as_secs()
        ), true);
        return None;
    }
    match class::run_class(node, &configs, plan.run_timeout(devices)).await {
        Ok(row) => {
            if row.tabs.iter().any(|t| t.run.outcome != Outcome::Finished) {
                if let Err(e) = node.unload_named(NAME_PREFIX).await {
                    report.failures.push(format!(
                        "cleaning up after the class of {devices}: {}",
                        chain(&e)
                    ));
                }
            }
            if report.machine.browser.is_none() {
                report.machine.browser = row.tabs.first().map(|t| t.run.browser_version.clone());
            }
            Some(row)
        }
        Err(e) => {
            note(
                report,
                say,
                format!("the class at {devices} phones: not measured: {}", chain(&e)),
                false,
            );
            // Whatever the browsers left.
            let _ = node.unload_named(NAME_PREFIX).await;
            None
        }
    }
}

/// Notes the counts of `series` larger than `broke_at` as not run: the
/// series broke there.
fn skip_larger(report: &mut Report, series: &str, unit: &str, counts: &[u32], broke_at: u32) {
    let larger: Vec<u32> = counts.iter().copied().filter(|n| *n > broke_at).collect();
    if !larger.is_empty() {
        report.skipped.push(format!(
            "{series} at {larger:?} {unit}: not run, the series broke at {broke_at}"
        ));
    }
}

/// Says `text` and keeps it with the runs skipped or, when not `skipped`,
/// the runs that could not be measured.
fn note(report: &mut Report, say: &mut dyn FnMut(String), text: String, skipped: bool) {
    say(text.clone());
    if skipped {
        report.skipped.push(text);
    } else {
        report.failures.push(text);
    }
}

/// The lean request path (`http=lean`) against `gloo-net`'s: at each count
/// a `gloo-net` run and its lean twin, one after the other, so both meet the
/// same machine; every count is run (what is compared is the CPU per request,
/// kept up or not).
async fn lean_series(
    plan: &BenchPlan,
    node: &NodeHandle,
    started: Instant,
    report: &mut Report,
    say: &mut dyn FnMut(String),
) {
    if plan.lean_counts.is_empty() {
        return;
    }
    say(
        "\nseries `sweep`, `shared`, `gloo-net` and the lean request path (`http=lean`) in turn:\n"
            .to_owned(),
    );
    say(report::table_head(report::PAGE_HEADERS));
    for &devices in &plan.lean_counts {
        let lean = plan.lean_config(devices);
        let gloo = RunConfig {
            http: r2_core::config::HttpPath::Gloo,
            ..lean.clone()
        };
        for config in [gloo, lean] {
            let Some(row) = page_run(plan, node, &config, Scheme::Http, started, report, say).await
            else {
                return;
            };
            say_lone_row(report, &row, say);
            report.lean.push(row);
        }
    }
}

/// The `transport=socket` series (split over two workers, and held to one)
/// and the engine on the main thread (`workers=0`), each at its counts until
/// a run does not keep up.
async fn other_series(
    plan: &BenchPlan,
    node: &NodeHandle,
    started: Instant,
    report: &mut Report,
    say: &mut dyn FnMut(String),
) {
    let series: [(&str, &[u32], ConfigOf); 3] = [
        (
            "transport=socket",
            &plan.socket_counts,
            BenchPlan::socket_config,
        ),
        (
            "transport=socket, workers=1 (one worker)",
            &plan.socket_one_worker_counts,
            BenchPlan::socket_one_worker_config,
        ),
        (
            "workers=0 (the engine on the main thread)",
            &plan.main_thread_counts,
            BenchPlan::main_thread_config,
        ),
    ];
    for (name, counts, config_of) in series {
        let name = format!("`sweep`, `shared`, {name}");
        let series = LoneSeries {
            name: &name,
            counts,
            config_of,
            scheme: Scheme::Http,
        };
        lone_series(plan, node, series, started, report, say).await;
    }
}

type ConfigOf = fn(&BenchPlan, u32) -> RunConfig;

/// A series whose rows stand alone (in [`Report::extra`]).
struct LoneSeries<'a> {
    name: &'a str,
    counts: &'a [u32],
    config_of: ConfigOf,
    scheme: Scheme,
}

/// `series` at each of its counts until a run does not keep up.
async fn lone_series(
    plan: &BenchPlan,
    node: &NodeHandle,
    series: LoneSeries<'_>,
    started: Instant,
    report: &mut Report,
    say: &mut dyn FnMut(String),
) {
    if series.counts.is_empty() {
        return;
    }
    say(format!("\nseries {}:\n", series.name));
    say(report::table_head(report::PAGE_HEADERS));
    for &devices in series.counts {
        let config = (series.config_of)(plan, devices);
        let Some(row) = page_run(plan, node, &config, series.scheme, started, report, say).await
        else {
            break;
        };
        say_lone_row(report, &row, say);
        let keeps_up = row.keeps_up();
        report.extra.push(row);
        if !keeps_up {
            skip_larger(report, series.name, "devices", series.counts, devices);
            break;
        }
    }
}

/// One page run; `None` (with a note) when the budget would be exceeded or
/// it could not be measured.
async fn page_run(
    plan: &BenchPlan,
    node: &NodeHandle,
    config: &RunConfig,
    scheme: Scheme,
    started: Instant,
    report: &mut Report,
    say: &mut dyn FnMut(String),
) -> Option<PageRow> {
    let (scenario, sockets, devices) = (config.scenario, config.sockets, config.devices);
    let series = match scheme {
        Scheme::Http => format!("`{scenario}`, `{sockets}`"),
        Scheme::Https => format!(
            "`{}` `{scenario}`, `{sockets}` over HTTPS offering {}",
            config.profile.as_str(),
            node.behaviour().alpn().describe()
        ),
    };
    let expected = plan.duration_s + PAGE_OVERHEAD_S + PAGE_PER_DEVICE_S * f64::from(devices);
    if !fits(plan, started, expected) {
        let note = format!(
            "{series}, {devices} devices and more: not run, the time budget of {} s would be exceeded",
            plan.budget.as_secs()
        );
        say(note.clone());
        report.skipped.push(note);
        return None;
    }
    let run = match run_tab(node, config, scheme, plan.run_timeout(devices)).await {
        Ok(run) => run,
        Err(e) => {
            let note = format!("{series}, {devices} devices: not measured: {}", chain(&e));
            say(note.clone());
            report.failures.push(note);
            return None;
        }
    };
    if report.machine.browser.is_none() {
        report.machine.browser = Some(run.browser_version.clone());
    }
    if run.outcome != Outcome::Finished {
        // A run cut short leaves its sentants: the page's names only.
        if let Err(e) = node.unload_named(NAME_PREFIX).await {
            report.failures.push(format!(
                "cleaning up after {devices} devices: {}",
                chain(&e)
            ));
        }
    }
    Some(PageRow {
        run,
        disturbed: false,
    })
}

/// Waits (up to [`QUIET_WAIT`]) until other processes use less than
/// [`DISTURBED_CORES`] over a [`QUIET_SAMPLE`]; whether they did.
async fn wait_for_quiet(cores: usize) -> bool {
    let deadline = Instant::now() + QUIET_WAIT;
    while Instant::now() < deadline {
        let Ok(before) = MachineCpu::now() else {
            return false;
        };
        tokio::time::sleep(QUIET_SAMPLE).await;
        let Ok(after) = MachineCpu::now() else {
            return false;
        };
        if after.busy_pct_since(&before) / 100.0 * (cores as f64) < DISTURBED_CORES {
            return true;
        }
    }
    false
}

/// The baseline at each of its counts, while the budget allows.
async fn baselines(
    plan: &BenchPlan,
    node: &NodeHandle,
    started: Instant,
    report: &mut Report,
    say: &mut dyn FnMut(String),
) {
    let counts = plan.baseline_counts();
    if counts.is_empty() {
        return;
    }
    say("\nbaseline (one Python process per device, `sweep`):\n".to_owned());
    say(report::table_head(report::BASELINE_HEADERS));
    let runs = counts
        .into_iter()
        .flat_map(|devices| Transport::ALL.map(|transport| (devices, transport)));
    for (devices, transport) in runs {
        let expected =
            plan.duration_s + BASELINE_OVERHEAD_S + BASELINE_PER_DEVICE_S * f64::from(devices);
        if !fits(plan, started, expected) {
            let note = format!(
                "baseline at {devices} processes and more: not run, the time budget of {} s would be exceeded",
                plan.budget.as_secs()
            );
            say(note.clone());
            report.skipped.push(note);
            return;
        }
        let timeout = Duration::from_secs_f64(plan.duration_s + 60.0 + 0.1 * f64::from(devices));
        match run_baseline(
            node,
            transport,
            devices,
            plan.duration_s,
            plan.seed,
            timeout,
        )
        .await
        {
            Ok(run) => {
                say(report::table_line(&report::baseline_cells(&run)));
                report.baselines.push(run);
            }
            Err(e) => {
                let note = format!(
                    "baseline at {devices} processes over {transport}: not measured: {}",
                    chain(&e)
                );
                say(note.clone());
                report.failures.push(note);
                return;
            }
        }
    }
}

/// Chromium's request floor at the answered requests a second of the
/// largest `sweep` `shared` run over HTTP that finished.
async fn floor(
    plan: &BenchPlan,
    node: &NodeHandle,
    started: Instant,
    report: &mut Report,
    say: &mut dyn FnMut(String),
) {
    let Some(row) = largest_finished(&report.pages, |row| {
        row.scenario() == ScenarioKind::Sweep && row.sockets() == SocketsMode::Shared
    }) else {
        return;
    };
    let (beside, rate) = (row.devices(), row.scenario_rate());
    const WHAT: &str = "Chromium's floor";
    let Some(duration_s) = floor_duration(plan, started, report, WHAT) else {
        return;
    };
    match run_floor(node, rate, duration_s).await {
        Ok(run) => {
            say(format!(
                "\n{WHAT} at {rate:.0} req/s (beside {beside} `sweep` `shared` devices): {} answered, {} failed, {:.2} ms of browser CPU per request {}",
                run.answered,
                run.failed,
                run.cpu_per_request_ms(),
                split_text(&run.window, 2, |cpu_s| run.per_request_ms(cpu_s)),
            ));
            report.floor = Some(Floor { beside, run });
        }
        Err(e) => floor_failed(WHAT, &e, report, say),
    }
}

/// Chromium's floor for the largest `webapp` run over HTTPS with h2
/// offered that finished: its answered requests and its node's pushes a
/// second, over its scenario phase, from a bare page of `node`'s HTTPS
/// origin (`node` offers h2 and HTTP/1.1), on the page's main thread and
/// split over as many dedicated workers as the run's engine had.
async fn webapp_floor(
    plan: &BenchPlan,
    node: &NodeHandle,
    started: Instant,
    report: &mut Report,
    say: &mut dyn FnMut(String),
) {
    let Some(row) = largest_finished(&report.https, |row| {
        row.run.wire == Wire::Https(Alpn::H2AndHttp1)
    }) else {
        return;
    };
    // Every answered request, the `update`s on connecting included: each
    // brings its pushes as the scenario's do.
    let wall_s = row.run.window.wall_s;
    let (beside, rate) = (row.devices(), row.achieved() as f64 / wall_s);
    let pushes_per_s = row.run.node.deliveries as f64 / wall_s;
    // On the page's main thread, and over as many workers as the run's
    // engine had (when it had any).
    let mut threads = vec![0];
    threads.extend(Some(row.engine_workers()).filter(|&k| k > 0));
    for workers in threads {
        const WHAT: &str = "Chromium's floor for the `webapp` traffic over HTTPS";
        let Some(duration_s) = floor_duration(plan, started, report, WHAT) else {
            return;
        };
        match run_webapp_floor(node, beside, workers, rate, pushes_per_s, duration_s).await {
            Ok(floor) => {
                let run = &floor.run;
                say(format!(
                    "\n{WHAT} (beside {beside} phones, {}): {rate:.0} req/s, {} answered, {} failed; {} websockets, {:.0} pushes read a second (the run's node made {pushes_per_s:.0}); the browser {:.2} cores {}, machine {:.0} % busy, its 10 ms timers late p99 {} ms",
                    floor.threads(),
                    run.answered,
                    run.failed,
                    floor.sockets,
                    floor.pushes_per_s(),
                    floor.browser_cores(),
                    split_text(&run.window, 2, |cpu_s| cpu_s / run.window.wall_s),
                    run.window.machine_busy_pct,
                    report::lag_cell(run.lag_p99_ms),
                ));
                report.webapp_floors.push(floor);
            }
            Err(e) => floor_failed(WHAT, &e, report, say),
        }
    }
}

/// The run of the most devices among `rows` that `which` picks and that
/// finished with a measured window: the run a floor is set beside.
fn largest_finished(rows: &[PageRow], which: impl Fn(&PageRow) -> bool) -> Option<&PageRow> {
    rows.iter()
        .filter(|row| {
            which(row) && row.run.outcome == Outcome::Finished && row.run.window.wall_s > 0.0
        })
        .max_by_key(|row| row.devices())
}

/// How long a floor runs; `None`, with a note, when `what` does not fit
/// the time budget.
fn floor_duration(
    plan: &BenchPlan,
    started: Instant,
    report: &mut Report,
    what: &str,
) -> Option<f64> {
    let duration_s = plan.duration_s.min(crate::floor::MAX_DURATION_S);
    if fits(plan, started, duration_s + FLOOR_OVERHEAD_S) {
        return Some(duration_s);
    }
    report
        .skipped
        .push(format!("{what}: not within the time budget"));
    None
}

/// A floor that could not be measured: said, and kept among the failures.
fn floor_failed(what: &str, e: &TabError, report: &mut Report, say: &mut dyn FnMut(String)) {
    let note = format!("{what}: {}", chain(e));
    say(note.clone());
    report.failures.push(note);
}

/// `(renderer …, network service …, browser process …)`: a window's CPU by
/// process, each given as `per` makes of its seconds.
fn split_text(window: &Window, decimals: usize, per: impl Fn(f64) -> f64) -> String {
    let of = |kind: ProcessKind| per(window.cpu_split[kind]);
    format!(
        "(renderer {:.decimals$}, network service {:.decimals$}, browser process {:.decimals$})",
        of(ProcessKind::Renderer),
        of(ProcessKind::Network),
        of(ProcessKind::Browser),
    )
}

/// Chromium's socket request floor beside the largest `transport=socket`
/// run that kept up (else the largest that finished), and beside the first
/// that did not keep up when that is another: each run's rate, over as many
/// websockets as it held. The first prices its traffic; the second shows
/// what Chromium spends, and how late the bare page's own timer fires, at
/// the rate that broke.
async fn socket_floors(
    plan: &BenchPlan,
    node: &NodeHandle,
    started: Instant,
    report: &mut Report,
    say: &mut dyn FnMut(String),
) {
    let finished: Vec<&PageRow> = report
        .socket_rows()
        .filter(|row| row.run.outcome == Outcome::Finished && row.run.window.wall_s > 0.0)
        .collect();
    let Some(largest) = report::largest_kept_up(finished.iter().copied()) else {
        return;
    };
    let broke = finished.iter().find(|row| !row.keeps_up());
    let beside: Vec<(u32, f64, u32)> = std::iter::once(largest)
        .chain(
            broke
                .copied()
                .filter(|row| row.devices() != largest.devices()),
        )
        .map(|row| (row.devices(), row.scenario_rate(), socket_count(row)))
        .collect();
    for (devices, rate, sockets) in beside {
        const WHAT: &str = "Chromium's socket request floor";
        let Some(duration_s) = floor_duration(plan, started, report, WHAT) else {
            return;
        };
        match run_socket_floor(node, sockets, rate, duration_s).await {
            Ok(run) => {
                say(format!(
                    "\n{WHAT} at {rate:.0} req/s on {sockets} websockets (beside {devices} `transport=socket` devices): {} answered, {} failed, {} signals read, {:.3} ms of browser CPU per request {}, its 10 ms timer late p99 {} ms",
                    run.answered,
                    run.failed,
                    run.signals,
                    run.cpu_per_request_ms(),
                    split_text(&run.window, 3, |cpu_s| run.per_request_ms(cpu_s)),
                    report::lag_cell(run.lag_p99_ms),
                ));
                report.socket_floors.push(SocketFloor {
                    beside: devices,
                    sockets,
                    run,
                });
            }
            Err(e) => floor_failed(WHAT, &e, report, say),
        }
    }
}

/// The websockets a `transport=socket` run held: each worker its own
/// shared sockets.
fn socket_count(row: &PageRow) -> u32 {
    let workers = row.run.config.workers.unwrap_or(1).max(1);
    let per_worker = Load::new(
        Profile::Lean,
        SocketsMode::Shared,
        row.devices().div_ceil(workers),
        0,
    );
    workers * per_worker.sockets().1.max(1) as u32
}

/// Chromium's push floor, as the plan sizes it.
async fn push_floor(
    plan: &BenchPlan,
    node: &NodeHandle,
    started: Instant,
    report: &mut Report,
    say: &mut dyn FnMut(String),
) {
    let (sockets, updates_per_s) = plan.push_floor;
    if sockets == 0 {
        return;
    }
    const WHAT: &str = "Chromium's push floor";
    let Some(duration_s) = floor_duration(plan, started, report, WHAT) else {
        return;
    };
    match run_push_floor(node, sockets, updates_per_s, duration_s).await {
        Ok(run) => {
            say(format!(
                "{WHAT}: {sockets} websockets subscribed to `view`, {updates_per_s} updates a second: {} pushes read (the node made {}), {:.3} ms of browser CPU per push {}, its 10 ms timer late p99 {} ms",
                run.pushes,
                run.node_pushes,
                run.cpu_per_push_ms(),
                split_text(&run.window, 3, |cpu_s| run.per_push_ms(cpu_s)),
                report::lag_cell(run.lag_p99_ms),
            ));
            report.push_floor = Some(run);
        }
        Err(e) => floor_failed(WHAT, &e, report, say),
    }
}

/// Whether a run expected to take `expected_s` still fits the budget.
fn fits(plan: &BenchPlan, started: Instant, expected_s: f64) -> bool {
    started.elapsed().as_secs_f64() + expected_s <= plan.budget.as_secs_f64()
}

/// An error and its causes on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn errors_print_with_their_causes() {
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(chain(&e), "outer: inner");
    }

    #[test]
    fn the_budget_counts_what_is_spent() {
        let plan = BenchPlan {
            budget: Duration::from_secs(60),
            ..BenchPlan::quick()
        };
        let now = Instant::now();
        assert!(fits(&plan, now, 59.0));
        assert!(!fits(&plan, now, 61.0));
    }
}
