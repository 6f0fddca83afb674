//! Where a run's engine lives (issue 12): by default in a dedicated Web
//! Worker, so the devices, their scheduler, sockets and metrics never wait
//! for the page's drawing, and a tab's drawing never delays a send; with
//! `workers=0` on the page's main thread, as before.
//!
//! Either way the page holds an [`Engine`]: it gives commands and receives a
//! [`Snapshot`] a few times a second, only when something changed. The page
//! only draws.
//!
//! # Layout
//!
//! - [`Engine`]: the page's handle on a run, wherever it runs.
//! - [`Setup`], [`ToEngine`], [`FromEngine`]: the messages between page and
//!   worker, as JSON ([`Json`], a `gloo-worker` codec).
//! - [`EngineWorker`]: the worker's side (`gloo-worker`), registered by the
//!   `r2-stress-engine` binary that Trunk builds beside the page.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use gloo_timers::callback::{Interval, Timeout};
use gloo_worker::{Codec, HandlerId, Spawnable, Worker, WorkerBridge, WorkerScope};
use r2_core::config::RunConfig;
use r2_core::names::RunNames;
use r2_core::scenario::Trace;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::spawn_local;
use yew::Callback;

use crate::run::{Phase, Run, Snapshot};

/// How often the engine looks for a changed snapshot (ms).
pub const REFRESH_MS: u32 = 250;
/// The worker's loader script, beside the page (`index.html`'s
/// `data-bin="r2-stress-engine"` link; Trunk does not hash a worker's files).
const WORKER_LOADER: &str = "r2-stress-engine_loader.js";
/// How long the worker may take to post its first snapshot before the page
/// says it did not start (s).
const WORKER_START_S: u32 = 15;

/// What the engine needs to make a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Setup {
    pub config: RunConfig,
    /// The node's address (the page's origin when the form gives none).
    pub node: String,
    /// This tab's tag and its run number, for the devices' names.
    pub tab: u64,
    pub number: u32,
    /// The motion `replay` plays, as its JSON (`None`: the built-in one).
    pub trace: Option<String>,
    /// Whether the page is hidden as the run is made.
    pub hidden: bool,
    /// The page's address: the referrer of the devices' requests.
    pub page: String,
}

/// A command from the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToEngine {
    /// Make the run (the first message a worker gets).
    New(Box<Setup>),
    Create,
    Start,
    Stop,
    Delete,
    /// Create, run, stop and delete by itself (`autostart=1`).
    Autorun,
    /// The page became hidden or visible.
    Hidden(bool),
}

/// What the engine tells the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FromEngine {
    Snapshot(Box<Snapshot>),
}

/// Messages as JSON text: every type here already has a JSON form (the
/// summary is JSON), and JSON keeps `serde`'s optional fields.
pub struct Json;

impl Codec for Json {
    fn encode<I: Serialize>(input: I) -> JsValue {
        // The messages are plain data: serialising them cannot fail.
        JsValue::from_str(&serde_json::to_string(&input).unwrap_or_default())
    }

    fn decode<O: for<'de> Deserialize<'de>>(input: JsValue) -> O {
        let text = input.as_string().unwrap_or_default();
        serde_json::from_str(&text).expect("the page and its worker come from one build")
    }
}

/// The page's handle on a run; dropping it ends the worker (or the refresh).
pub struct Engine {
    place: Place,
    latest: Rc<RefCell<Option<Rc<Snapshot>>>>,
}

enum Place {
    Main {
        run: Run,
        _refresh: Interval,
    },
    Worker {
        bridge: WorkerBridge<EngineWorker>,
        _watchdog: Timeout,
    },
}

impl Engine {
    /// Makes the run of `setup`, in a worker unless `config.workers` is 0;
    /// `on_snapshot` gets every changed snapshot, `on_problem` a worker that
    /// did not start (its script missing, or refused by the browser).
    pub fn new(
        setup: Setup,
        on_snapshot: Callback<Rc<Snapshot>>,
        on_problem: Callback<String>,
    ) -> Engine {
        let latest: Rc<RefCell<Option<Rc<Snapshot>>>> = Rc::default();
        let keep = {
            let latest = latest.clone();
            move |snapshot: Rc<Snapshot>| {
                *latest.borrow_mut() = Some(snapshot.clone());
                on_snapshot.emit(snapshot);
            }
        };
        let place = if setup.config.workers == 0 {
            let run = make_run(&setup);
            let refresh = {
                let (run, mut changes) = (run.clone(), Changes::default());
                Interval::new(REFRESH_MS, move || {
                    if let Some(snapshot) = changes.next(&run) {
                        keep(Rc::new(snapshot));
                    }
                })
            };
            Place::Main {
                run,
                _refresh: refresh,
            }
        } else {
            let bridge = EngineWorker::spawner()
                .encoding::<Json>()
                .callback(move |FromEngine::Snapshot(snapshot)| keep(Rc::new(*snapshot)))
                .spawn_with_loader(WORKER_LOADER);
            bridge.send(ToEngine::New(Box::new(setup)));
            let watchdog = {
                let latest = latest.clone();
                Timeout::new(WORKER_START_S * 1000, move || {
                    if latest.borrow().is_none() {
                        on_problem.emit(format!(
                            "the run engine's worker did not start within {WORKER_START_S} s ({WORKER_LOADER} beside the page did not load or run): open the page with workers=0 to run the engine on the page's main thread"
                        ));
                    }
                })
            };
            Place::Worker {
                bridge,
                _watchdog: watchdog,
            }
        };
        Engine { place, latest }
    }

    /// Carries out `command`.
    pub fn send(&self, command: ToEngine) {
        match &self.place {
            Place::Main { run, .. } => obey(run, command),
            Place::Worker { bridge, .. } => bridge.send(command),
        }
    }

    /// The latest snapshot, if one came yet.
    pub fn latest(&self) -> Option<Rc<Snapshot>> {
        self.latest.borrow().clone()
    }

    /// Whether a new run may be made in this one's place.
    pub fn is_over(&self) -> bool {
        self.latest()
            .is_some_and(|s| matches!(s.phase, Phase::Deleted | Phase::Failed(_)))
    }
}

/// The run `setup` describes, its requests referred by the page.
fn make_run(setup: &Setup) -> Run {
    let trace = setup
        .trace
        .as_deref()
        .and_then(|json| Trace::from_json(json).ok())
        .map(Arc::new);
    let run = Run::new(
        setup.config.clone(),
        setup.node.clone(),
        RunNames::new(setup.tab, setup.number),
        trace,
    );
    run.with(|inner| inner.http = inner.http.clone().with_referrer(setup.page.clone()));
    if setup.hidden {
        run.set_hidden(true);
    }
    run
}

/// Carries out a command on the run (`New` is the worker's to handle).
fn obey(run: &Run, command: ToEngine) {
    let run = run.clone();
    match command {
        ToEngine::New(_) => {}
        ToEngine::Create => spawn_local(async move { run.create().await }),
        ToEngine::Start => spawn_local(async move { run.start().await }),
        ToEngine::Stop => spawn_local(async move { run.stop().await }),
        ToEngine::Delete => spawn_local(async move { run.delete().await }),
        ToEngine::Autorun => spawn_local(async move { run.autorun().await }),
        ToEngine::Hidden(hidden) => run.set_hidden(hidden),
    }
}

/// The snapshots worth handing on: only a changed one.
#[derive(Default)]
struct Changes {
    last: Option<Snapshot>,
}

impl Changes {
    fn next(&mut self, run: &Run) -> Option<Snapshot> {
        let snapshot = run.snapshot();
        if self.last.as_ref() == Some(&snapshot) {
            return None;
        }
        self.last = Some(snapshot.clone());
        Some(snapshot)
    }
}

/// The worker's side: one run, made by the first [`ToEngine::New`].
pub struct EngineWorker {
    run: Option<Run>,
    page: Option<HandlerId>,
    changes: Changes,
    _refresh: Interval,
}

/// The worker's own timer.
pub enum Tick {
    Refresh,
}

impl Worker for EngineWorker {
    type Message = Tick;
    type Input = ToEngine;
    type Output = FromEngine;

    fn create(scope: &WorkerScope<Self>) -> Self {
        let scope = scope.clone();
        EngineWorker {
            run: None,
            page: None,
            changes: Changes::default(),
            _refresh: Interval::new(REFRESH_MS, move || scope.send_message(Tick::Refresh)),
        }
    }

    fn update(&mut self, scope: &WorkerScope<Self>, Tick::Refresh: Tick) {
        let (Some(run), Some(page)) = (&self.run, self.page) else {
            return;
        };
        if let Some(snapshot) = self.changes.next(run) {
            scope.respond(page, FromEngine::Snapshot(Box::new(snapshot)));
        }
    }

    fn received(&mut self, _scope: &WorkerScope<Self>, command: ToEngine, page: HandlerId) {
        match (command, &self.run) {
            (ToEngine::New(setup), None) => {
                self.run = Some(make_run(&setup));
                self.page = Some(page);
            }
            (command, Some(run)) => obey(run, command),
            // A command before the run exists, or a second run: one worker
            // serves one run.
            (_, _) => {}
        }
    }
}

/// Serves the engine in the worker this binary runs in.
pub fn register() {
    use gloo_worker::Registrable;
    EngineWorker::registrar().encoding::<Json>().register();
}
