//! Where a run's engine lives (issue 12): by default in a dedicated Web
//! Worker, so the devices, their scheduler, sockets and metrics never wait
//! for the page's drawing, and a tab's drawing never delays a send; with
//! `workers=0` on the page's main thread, as before.
//!
//! Either way the page holds an [`Engine`]: it gives commands and receives a
//! [`Snapshot`] a few times a second, only when something changed. The page
//! only draws.
//!
//! A run may be split over K workers (`workers=K`, or by default one per
//! [`r2_core::shard::DEVICES_PER_WORKER`] `lean` devices, a device weighed
//! by the frames its values bring, up to the machine's cores:
//! [`r2_core::shard::auto_workers`]): each runs its share of the devices ([`Shard`]), the page merges
//! their snapshots ([`merge`]) and, for `autostart`, steps them through the
//! run together ([`Autorun`]): all create, all start (as the first phone
//! joins in profile `webapp`, else once every engine is ready), and once
//! all have stopped, all delete.
//!
//! # Layout
//!
//! - [`Engine`]: the page's handle on a run, wherever it runs.
//! - [`merge`]: a split run's snapshots made into one.
//! - [`Setup`], [`ToEngine`], [`FromEngine`]: the messages between page and
//!   worker, as JSON ([`Json`], a `gloo-worker` codec).
//! - [`EngineWorker`]: the worker's side (`gloo-worker`), registered by the
//!   `r2-stress-engine` binary that Trunk builds beside the page.

pub mod merge;

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use gloo_timers::callback::{Interval, Timeout};
use gloo_worker::{Codec, HandlerId, Spawnable, Worker, WorkerBridge, WorkerScope};
use r2_core::config::RunConfig;
use r2_core::names::RunNames;
use r2_core::scenario::Trace;
use r2_core::shard::Shard;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::spawn_local;
use yew::Callback;

use crate::browser::hardware_concurrency;
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
    /// The share of the devices this engine runs.
    #[serde(default)]
    pub shard: Shard,
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

/// The page's handle on a run; dropping it ends the workers (or the refresh).
pub struct Engine {
    place: Place,
    latest: Rc<RefCell<Option<Rc<Snapshot>>>>,
}

enum Place {
    Main {
        run: Run,
        _refresh: Interval,
    },
    Workers {
        split: Rc<Split>,
        _watchdog: Timeout,
    },
}

/// The workers of one run, each running a share of its devices.
struct Split {
    bridges: RefCell<Vec<WorkerBridge<EngineWorker>>>,
    /// Each worker's latest snapshot, in shard order.
    parts: RefCell<Vec<Option<Rc<Snapshot>>>>,
    config: RunConfig,
    autorun: RefCell<Autorun>,
}

/// Where the page is in stepping a split run's workers through `autostart`
/// (one worker runs its own [`Run::autorun`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Autorun {
    /// Not asked for.
    Off,
    /// Creating: start all when the first phone joined (`webapp`) or all are ready.
    Creating,
    /// Running: delete all when all have stopped (unless `keep`).
    Running,
    /// Nothing more to do.
    Done,
}

impl Split {
    fn send_all(&self, command: &ToEngine) {
        for bridge in self.bridges.borrow().iter() {
            bridge.send(command.clone());
        }
    }

    /// Whether every worker's run is over (deleted, or failed).
    fn is_over(&self) -> bool {
        self.parts.borrow().iter().all(|p| {
            p.as_ref()
                .is_some_and(|s| matches!(s.phase, Phase::Deleted | Phase::Failed(_)))
        })
    }

    /// Worker `index` posted `snapshot`: the whole run's, once every worker
    /// has posted one.
    fn received(&self, index: usize, snapshot: Rc<Snapshot>) -> Option<Rc<Snapshot>> {
        let parts: Vec<Rc<Snapshot>> = {
            let mut parts = self.parts.borrow_mut();
            parts[index] = Some(snapshot);
            parts.iter().cloned().collect::<Option<_>>()?
        };
        let commands = self.autorun_step(&parts);
        let bridges = self.bridges.borrow();
        for (index, command) in commands {
            if let Some(bridge) = bridges.get(index) {
                bridge.send(command);
            }
        }
        if let [one] = parts.as_slice() {
            return Some(one.clone());
        }
        Some(Rc::new(merge::snapshots(&parts, &self.config)))
    }

    /// The commands `autostart` gives next (to which worker), seeing every
    /// worker's snapshot.
    fn autorun_step(&self, parts: &[Rc<Snapshot>]) -> Vec<(usize, ToEngine)> {
        let mut autorun = self.autorun.borrow_mut();
        let failed = |p: &Snapshot| matches!(p.phase, Phase::Failed(_));
        let every = |command: ToEngine| -> Vec<(usize, ToEngine)> {
            (0..parts.len()).map(|i| (i, command.clone())).collect()
        };
        let all_in = |phase: Phase| parts.iter().all(|p| p.phase == phase);
        let (next, commands) = match *autorun {
            Autorun::Off | Autorun::Done => return Vec::new(),
            // A worker that could not reach the node: the others clean up,
            // and the failure stays the run's phase.
            _ if parts.iter().any(|p| failed(p)) => {
                let others = parts.iter().enumerate().filter(|(_, p)| !failed(p));
                let delete = others.map(|(i, _)| (i, ToEngine::Delete)).collect();
                (Autorun::Done, delete)
            }
            Autorun::Creating => {
                let go = if self.config.profile.sends_while_joining() {
                    parts.iter().any(|p| p.joined > 0)
                } else {
                    all_in(Phase::Ready)
                };
                if !go {
                    return Vec::new();
                }
                (Autorun::Running, every(ToEngine::Start))
            }
            Autorun::Running => {
                if !all_in(Phase::Stopped) {
                    return Vec::new();
                }
                let delete = if self.config.keep {
                    Vec::new()
                } else {
                    every(ToEngine::Delete)
                };
                (Autorun::Done, delete)
            }
        };
        *autorun = next;
        commands
    }
}

impl Engine {
    /// Makes the run of `setup`, in workers unless `config.workers` is 0;
    /// `on_snapshot` gets every changed snapshot, `on_problem` a worker that
    /// did not start (its script missing, or refused by the browser).
    pub fn new(
        mut setup: Setup,
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
        // The summary says how many workers ran, not "auto".
        let workers = setup.config.engine_workers(hardware_concurrency());
        setup.config.workers = Some(workers);
        let place = if workers == 0 {
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
            let split = Rc::new(Split {
                bridges: RefCell::new(Vec::new()),
                parts: RefCell::new(vec![None; workers as usize]),
                config: setup.config.clone(),
                autorun: RefCell::new(Autorun::Off),
            });
            let keep = Rc::new(keep);
            for shard in Shard::all(workers) {
                // The workers' callbacks hold the split weakly: dropping the
                // engine ends them.
                let (weak, keep): (Weak<Split>, _) = (Rc::downgrade(&split), keep.clone());
                let bridge = EngineWorker::spawner()
                    .encoding::<Json>()
                    .callback(move |FromEngine::Snapshot(snapshot)| {
                        let whole = weak.upgrade().and_then(|split| {
                            split.received(shard.index as usize, Rc::new(*snapshot))
                        });
                        if let Some(whole) = whole {
                            keep(whole);
                        }
                    })
                    .spawn_with_loader(WORKER_LOADER);
                bridge.send(ToEngine::New(Box::new(Setup {
                    shard,
                    ..setup.clone()
                })));
                split.bridges.borrow_mut().push(bridge);
            }
            let watchdog = {
                let split = Rc::downgrade(&split);
                Timeout::new(WORKER_START_S * 1000, move || {
                    let missing = split.upgrade().map_or(0, |s| {
                        s.parts.borrow().iter().filter(|p| p.is_none()).count()
                    });
                    let which = match (missing, workers) {
                        (0, _) => return,
                        (_, 1) => "the run engine's worker did not start".to_owned(),
                        (m, k) => format!("{m} of the run engine's {k} workers did not start"),
                    };
                    on_problem.emit(format!(
                        "{which} within {WORKER_START_S} s ({WORKER_LOADER} beside the page did not load or run): open the page with workers=0 to run the engine on the page's main thread"
                    ));
                })
            };
            Place::Workers {
                split,
                _watchdog: watchdog,
            }
        };
        Engine { place, latest }
    }

    /// Carries out `command`.
    pub fn send(&self, command: ToEngine) {
        match &self.place {
            Place::Main { run, .. } => obey(run, command),
            Place::Workers { split, .. } => match command {
                // Several workers step through the run together, led by the page.
                ToEngine::Autorun if split.bridges.borrow().len() > 1 => {
                    *split.autorun.borrow_mut() = Autorun::Creating;
                    split.send_all(&ToEngine::Create);
                }
                command => split.send_all(&command),
            },
        }
    }

    /// The latest snapshot, if one came yet.
    pub fn latest(&self) -> Option<Rc<Snapshot>> {
        self.latest.borrow().clone()
    }

    /// Whether a new run may be made in this one's place (every worker's
    /// part of it over).
    pub fn is_over(&self) -> bool {
        match &self.place {
            Place::Main { .. } => self
                .latest()
                .is_some_and(|s| matches!(s.phase, Phase::Deleted | Phase::Failed(_))),
            Place::Workers { split, .. } => split.is_over(),
        }
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
        setup.shard,
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
