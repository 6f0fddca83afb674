//! The root component: reads the run's settings from the URL, owns the
//! current run's [`Engine`] (in a Web Worker unless `workers=0`), and draws
//! the snapshots it posts, at most four a second. With `autostart=1` it
//! creates, runs, stops and deletes by itself, then writes the summary into
//! `#r2-summary`.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use gloo_timers::callback::Interval;
use r2_core::config::RunConfig;
use r2_core::fleet::{FleetCommand, FleetMessage, TabReport};
use r2_core::scenario::Trace;
use r2_core::shard::Shard;
use yew::prelude::*;

use crate::browser::{href, is_hidden, origin, query_string, random_u64};
use crate::engine::{Engine, Setup, ToEngine};
use crate::fleet::{use_fleet, Control, FleetTable};
use crate::run::Snapshot;
use crate::state::{Action, AppState, FIELDS};
use crate::view::{Charts, Controls, Counters, ReportView, Tiles};

/// The page's settings from its URL, the flags the form does not show, and
/// whether to run by itself.
fn from_url() -> (Result<RunConfig, String>, String) {
    let query = query_string();
    let config = RunConfig::from_query(&query).map_err(|e| e.to_string());
    let extra = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let key = p.split('=').next().unwrap_or("");
            key != "autostart" && !FIELDS.iter().any(|(name, _)| *name == key)
        })
        .collect::<Vec<_>>()
        .join("&");
    (config, extra)
}

/// The page: device mode with `?device` in the URL, the control view of
/// all tabs with `?control`, else the stress-test page.
#[function_component(Root)]
pub fn root() -> Html {
    let query = query_string();
    let has = |flag: &str| {
        query
            .split('&')
            .any(|p| p == flag || p.starts_with(&format!("{flag}=")))
    };
    if has("device") {
        html! { <crate::phone::Phone /> }
    } else if has("control") {
        html! { <Control /> }
    } else {
        html! { <App /> }
    }
}

/// This tab's figures for the other tabs.
fn tab_report(tab: u64, snapshot: Option<&Snapshot>) -> TabReport {
    let mut report = TabReport {
        tab: format!("{tab:016x}").chars().take(8).collect(),
        phase: "idle".into(),
        at_ms: js_sys::Date::now(),
        ..TabReport::default()
    };
    if let Some(s) = snapshot {
        report.tab = s.prefix.trim_end_matches('-').to_owned();
        report.phase = s.phase.label().to_owned();
        report.devices = u64::from(s.requested);
        report.live = u64::from(s.live);
        report.sockets = u64::from(s.sockets_live);
        report.sends_ok = s.sends_ok;
        report.sends_failed = s.sends_failed;
        report.signals = s.signals;
        report.errors = s.errors;
        report.sends_per_s = s.sends_per_s;
        report.signals_per_s = s.signals_per_s;
        report.hidden_s = s.hidden_s;
    }
    report.hidden = crate::browser::is_hidden();
    report
}

/// A warning for Start when this page or another tab of the fleet is hidden:
/// a hidden tab's timers are throttled, and its run will be invalid — unless
/// the run's engine is in a worker (`in_worker`), whose timers are not.
fn hidden_warning(others: &crate::fleet::Reports, in_worker: bool) -> Option<String> {
    if in_worker {
        return None;
    }
    let now = js_sys::Date::now();
    let hidden: Vec<&str> = others
        .values()
        .filter(|r| r.hidden && r2_core::fleet::is_fresh(r, now))
        .map(|r| r.tab.as_str())
        .collect();
    match (crate::browser::is_hidden(), hidden.is_empty()) {
        (true, _) => Some("warning: this tab is hidden, so the browser throttles its timers and the run will be invalid: bring it to the front, one window per tab".into()),
        (false, false) => Some(format!(
            "warning: tab(s) {} of the fleet are hidden, so their runs will be invalid: give every tab its own visible window",
            hidden.join(", ")
        )),
        (false, true) => None,
    }
}

/// A new run of `config`, its devices named for this tab's run `number`;
/// `trace` is the motion `replay` plays (`None`: the built-in one). Its
/// snapshots go to `on_snapshot`.
fn new_engine(
    config: RunConfig,
    tab: u64,
    number: u32,
    trace: Option<Arc<Trace>>,
    on_snapshot: Callback<Rc<Snapshot>>,
    on_problem: Callback<String>,
) -> Engine {
    let setup = Setup {
        node: config.node.clone().unwrap_or_else(origin),
        config,
        tab,
        number,
        trace: trace.map(|t| t.to_json()),
        hidden: is_hidden(),
        page: href(),
        // The engine splits the run over its workers.
        shard: Shard::WHOLE,
    };
    Engine::new(setup, on_snapshot, on_problem)
}

/// The commands the control buttons give.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Command {
    Create,
    Start,
    Stop,
    Delete,
}

#[function_component(App)]
pub fn app() -> Html {
    let tab = use_memo((), |_| random_u64());
    let run_count = use_mut_ref(|| 0u32);
    let engine: Rc<RefCell<Option<Engine>>> = use_mut_ref(|| None);
    // The motion `replay` plays, from the trace picker (issue 5); autostart
    // waits until the picker's first load has settled.
    let trace: Rc<RefCell<Option<Arc<Trace>>>> = use_mut_ref(|| None);
    let trace_settled = use_state(|| false);
    let on_trace = {
        let (trace, settled) = (trace.clone(), trace_settled.clone());
        Callback::from(move |picked: Option<Arc<Trace>>| {
            *trace.borrow_mut() = picked;
            settled.set(true);
        })
    };
    let state = use_reducer(|| {
        let (config, extra) = from_url();
        let mut state = AppState::new(
            config.as_ref().unwrap_or(&RunConfig::default()),
            extra,
            &origin(),
        );
        if let Err(e) = config {
            state.form_error = Some(e);
        }
        state
    });

    // The engine hands on only a changed snapshot: an idle or finished run
    // renders nothing.
    let on_snapshot = {
        let dispatch = state.dispatcher();
        Callback::from(move |snapshot| dispatch.dispatch(Action::Snapshot(snapshot)))
    };
    let on_problem = {
        let dispatch = state.dispatcher();
        Callback::from(move |problem| dispatch.dispatch(Action::Error(problem)))
    };

    // The other tabs' latest reports, for the hidden-tab warning at Start.
    let fleet_reports: Rc<RefCell<crate::fleet::Reports>> = use_mut_ref(Default::default);
    let on_command = {
        let fleet_reports = fleet_reports.clone();
        let state = state.clone();
        let engine = engine.clone();
        let tab = tab.clone();
        let run_count = run_count.clone();
        let trace = trace.clone();
        let (on_snapshot, on_problem) = (on_snapshot.clone(), on_problem.clone());
        Callback::from(move |command: Command| {
            let mut current = engine.borrow_mut();
            match (command, current.as_ref()) {
                (Command::Create, current_engine) => {
                    if current_engine.is_some_and(|e| !e.is_over()) {
                        state.dispatch(Action::Error(
                            "delete the current run's devices first".into(),
                        ));
                        return;
                    }
                    match state.config() {
                        Ok(config) => {
                            *run_count.borrow_mut() += 1;
                            let new = new_engine(
                                config,
                                *tab,
                                *run_count.borrow(),
                                trace.borrow().clone(),
                                on_snapshot.clone(),
                                on_problem.clone(),
                            );
                            new.send(ToEngine::Create);
                            *current = Some(new);
                        }
                        Err(e) => state.dispatch(Action::Error(e.to_string())),
                    }
                }
                (Command::Start, Some(e)) => {
                    let in_worker = state.config().is_ok_and(|c| !c.on_main_thread());
                    if let Some(warning) = hidden_warning(&fleet_reports.borrow(), in_worker) {
                        state.dispatch(Action::Error(warning));
                    }
                    e.send(ToEngine::Start)
                }
                (Command::Stop, Some(e)) => e.send(ToEngine::Stop),
                (Command::Delete, Some(e)) => e.send(ToEngine::Delete),
                (_, None) => {}
            }
        })
    };

    // The other tabs: their figures, and commands from a control view (given
    // to the latest `on_command`, which sees the latest form).
    let latest_command = use_mut_ref(Callback::<Command>::noop);
    *latest_command.borrow_mut() = on_command.clone();
    let (fleet, fleet_link) = use_fleet({
        let latest = latest_command.clone();
        Callback::from(move |command: FleetCommand| {
            let command = match command {
                FleetCommand::Create => Command::Create,
                FleetCommand::Start => Command::Start,
                FleetCommand::Stop => Command::Stop,
                FleetCommand::Delete => Command::Delete,
            };
            latest.borrow().emit(command);
        })
    });
    *fleet_reports.borrow_mut() = fleet.reports.clone();
    {
        // A hidden page's timers are throttled: the run counts the time hidden.
        let engine = engine.clone();
        use_effect_with((), move |_| {
            let listener = crate::browser::on_visibility_change(move |hidden| {
                if let Some(engine) = engine.borrow().as_ref() {
                    engine.send(ToEngine::Hidden(hidden));
                }
            });
            move || drop(listener)
        });
    }
    {
        let (engine, fleet_link, tab) = (engine.clone(), fleet_link.clone(), tab.clone());
        use_effect_with((), move |_| {
            let interval = Interval::new(1000, move || {
                let snapshot = engine.borrow().as_ref().and_then(Engine::latest);
                fleet_link
                    .borrow()
                    .post(&FleetMessage::Report(tab_report(*tab, snapshot.as_deref())));
            });
            move || drop(interval)
        });
    }

    // `autostart=1` against a node that is not the page's origin waits for
    // the reader's consent: the node it asks about.
    let consent = use_state(|| None::<String>);
    let autorun = {
        // The whole run by itself, once.
        let engine = engine.clone();
        let state = state.clone();
        let tab = tab.clone();
        let run_count = run_count.clone();
        let trace = trace.clone();
        Callback::from(move |()| match state.config() {
            Ok(config) => {
                *run_count.borrow_mut() += 1;
                let new = new_engine(
                    config,
                    *tab,
                    *run_count.borrow(),
                    trace.borrow().clone(),
                    on_snapshot.clone(),
                    on_problem.clone(),
                );
                new.send(ToEngine::Autorun);
                *engine.borrow_mut() = Some(new);
            }
            Err(e) => state.dispatch(Action::Error(e.to_string())),
        })
    };
    {
        // `autostart=1`: when the trace is settled, and after consent if asked.
        let (autorun, consent) = (autorun.clone(), consent.clone());
        use_effect_with(*trace_settled, move |settled| {
            if let (true, (Ok(config), _)) = (*settled, from_url()) {
                if config.autostart_needs_consent(&origin()) {
                    consent.set(config.node.clone());
                } else if config.autostart {
                    autorun.emit(());
                }
            }
        });
    }
    let consent_view = consent.as_ref().map(|node| {
        let (yes, no) = (consent.clone(), consent.clone());
        let autorun = autorun.clone();
        let devices = state.fields.get("devices").cloned().unwrap_or_default();
        html! {
            <section class="consent" id="r2-consent" aria-label="start this run?">
                <p>{ format!("This link starts a run of {devices} devices against {node}, which is not the server this page came from. Start it?") }</p>
                <button id="r2-consent-start" onclick={Callback::from(move |_| { yes.set(None); autorun.emit(()); })}>{ "Start the run" }</button>
                <button id="r2-consent-cancel" onclick={Callback::from(move |_| no.set(None))}>{ "Don't start" }</button>
            </section>
        }
    });

    let snapshot = state.snapshot.clone();
    let on_edit = {
        let state = state.clone();
        Callback::from(move |(field, value): (String, String)| {
            state.dispatch(Action::Edit { field, value })
        })
    };
    html! {
        <main class="r2">
            <header>
                <h1>{ "r2-stress" }</h1>
                <p class="tagline">{ "A lecture theatre of phones in one tab, for a Reality2 node's IoT demo." }</p>
            </header>
            <Controls fields={state.fields.clone()} error={state.form_error.clone()}
                      phase={snapshot.as_ref().map(|s| s.phase.clone())}
                      on_edit={on_edit} on_command={on_command} />
            { for consent_view }
            <crate::view::trace::TracePicker on_trace={on_trace} />
            <crate::view::qr::JoinQr prefix={snapshot.as_ref().map(|s| AttrValue::from(s.prefix.clone()))} node={state.fields.get("node").cloned().map(AttrValue::from)} />
            if let Some(snapshot) = snapshot.clone() {
                <Counters snapshot={snapshot.clone()} />
                <Charts series={snapshot.series.clone()} bottleneck={snapshot.bottleneck.clone().map(AttrValue::from)} />
                <Tiles tiles={snapshot.tiles.clone()} prefix={AttrValue::from(snapshot.prefix.clone())} />
                <ReportView snapshot={snapshot.clone()} />
            }
            if !fleet.reports.is_empty() || !fleet.refused.is_empty() {
                <FleetTable reports={fleet.reports.clone()} refused={fleet.refused.clone()} own={tab_report(*tab, snapshot.as_deref())} />
            }
            if let (Some(problem), Some(name)) = (fleet.problem.clone(), crate::fleet::fleet_name()) {
                <p class="warning" id="r2-fleet-problem">{ format!("fleet {name}: {problem}") }</p>
            }
            <crate::view::leftovers::Leftovers node={state.fields.get("node").cloned().unwrap_or_else(origin)}
                exclude={snapshot.iter().map(|s| s.prefix.clone()).collect::<Vec<_>>()} />
        </main>
    }
}
