//! The load generator: a run of virtual devices that behave, towards the
//! node, exactly as phones running the IoT demo's sensor page.
//!
//! A [`Run`] is a cheap handle on shared state (`Rc<RefCell<..>>`: the page is
//! single-threaded). Its phases are driven by async tasks that stop by
//! themselves when the run leaves the phase they serve — no timer is ever
//! leaked:
//!
//! - [`Run::create`] joins devices at the configured rate, each one as a phone
//!   pressing "connect" ([`device`]);
//! - [`Run::start`] plans every device's sends with `r2_core`'s
//!   [`RunPlan`] (scenario, throttle, spread starts) and fires them from one
//!   scheduler task ([`schedule`]);
//! - [`Run::stop`] ends the sends and waits for what is in flight;
//! - [`Run::delete`] unloads, by id, the sentants this run created and lists
//!   any of its own still on the node.
//!
//! The UI reads a [`Snapshot`] a few times a second.

mod assets;
pub mod device;
mod link;
pub mod probe;
mod projector;
mod schedule;
mod webapp;

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use futures::channel::oneshot;
use gloo_timers::future::TimeoutFuture;
use r2_core::colour::Colour;
use r2_core::config::{RunConfig, SocketsMode};
use r2_core::gate::FetchGate;
use r2_core::graphql::SentantRef;
use r2_core::metrics::{tab_bottleneck, Bucket, RunMetrics};
use r2_core::names::RunNames;
use r2_core::plan::RunPlan;
use r2_core::scenario::Trace;
use r2_core::shard::{Shard, ShardResult};
use r2_core::subscription::Reconnect;
use r2_core::summary::{RunFacts, Summary};
use serde::{Deserialize, Serialize};
use wasm_bindgen_futures::spawn_local;

use crate::browser::now_ms;
use crate::heap::HeapUse;
use crate::net::Client;
use crate::net::NetError;
use device::{Device, Devices};
use schedule::Scheduler;

/// Requests in flight at once while deleting (a browser opens 6 connections per host).
const DELETE_CONCURRENCY: usize = 6;
/// Attempts to unload one sentant before it is reported as not deleted
/// (with the reconnect back-off between them: about 20 s in all).
const DELETE_ATTEMPTS: u32 = 12;
/// Attempts to list the run's sentants in cleanup (with the reconnect
/// back-off between them: about 4 s in all).
const LIST_ATTEMPTS: u32 = 10;
/// First contacts tried when the node answers 5xx or not in time.
const PROBE_ATTEMPTS: u32 = 3;
/// The pause before the n-th retry of first contact, times n (ms).
const PROBE_RETRY_MS: u32 = 300;
/// The hiccup meter's period.
const HICCUP_MS: u32 = 10;
/// Seconds of 1-second buckets the live charts show.
pub(crate) const LIVE_SECONDS: usize = 600;
/// Upper bounds (ms) of the latency histogram's bars; the last bar is everything above.
pub const HISTOGRAM_BOUNDS_MS: &[f64] =
    &[5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0];
/// How long Delete waits for joins under way to end.
const JOIN_SETTLE_MS: f64 = 30_000.0;
/// How long to wait, after the last send, for answers and signals still on their way.
const DRAIN_MS: f64 = 10_000.0;

/// Where a run is in its life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Phase {
    /// Devices are joining.
    Creating,
    /// Devices have joined; nothing is being sent.
    Ready,
    /// Scenarios are running until `ends_ms`.
    Running { started_ms: f64, ends_ms: f64 },
    /// Sends have ended; answers and signals still on their way are awaited.
    Stopping,
    /// The run is idle after a stop.
    Stopped,
    /// Own sentants are being unloaded.
    Deleting,
    /// Everything this run created is gone (or reported as left over).
    Deleted,
    /// The node could not be used at all (first contact failed).
    Failed(String),
}

impl Phase {
    /// A word for the UI.
    pub fn label(&self) -> &'static str {
        match self {
            Phase::Creating => "creating devices",
            Phase::Ready => "ready",
            Phase::Running { .. } => "running",
            Phase::Stopping => "stopping",
            Phase::Stopped => "stopped",
            Phase::Deleting => "deleting",
            Phase::Deleted => "deleted",
            Phase::Failed(_) => "failed",
        }
    }
}

/// One tile of the device grid: the colour the device's signals brought
/// back (its name follows from its place: [`RunNames::device_name`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tile {
    pub value: Option<i64>,
    pub colour: Option<Colour>,
    pub live: bool,
}

/// What the UI shows of a run, taken a few times a second (and what the
/// engine's worker posts to the page).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub phase: Phase,
    pub prefix: String,
    pub requested: u32,
    pub joined: u32,
    pub live: u32,
    pub failed: u32,
    pub deleted: u32,
    pub sockets_live: u32,
    pub sends_ok: u64,
    pub sends_failed: u64,
    pub signals: u64,
    pub projector_signals: u64,
    /// `view` signals the devices received (profile `webapp`).
    pub view_signals: u64,
    pub errors: u64,
    pub sends_per_s: f64,
    pub signals_per_s: f64,
    pub fetch_queue: u32,
    pub remaining_s: Option<f64>,
    pub started_wall_ms: Option<f64>,
    /// One per device, in order; shared, so an unchanged grid costs a
    /// comparison, not a redraw.
    pub tiles: Rc<Vec<Tile>>,
    /// The last [`LIVE_SECONDS`] 1-second buckets.
    pub series: Rc<Vec<Bucket>>,
    /// Why the tab, not the node, is limiting the run, if it is (live).
    pub bottleneck: Option<String>,
    /// Signal latency (corrected) per [`HISTOGRAM_BOUNDS_MS`] bar, once the run has stopped.
    pub latency_histogram: Vec<(String, u64)>,
    pub summary: Option<Rc<Summary>>,
    pub leftovers: Vec<String>,
    /// Whether the page is hidden now, and for how long it was during the run (s).
    pub hidden: bool,
    pub hidden_s: f64,
    /// The wasm memory of the engine's worker, bytes (0 when the engine runs
    /// on the page: the page's own memory holds it then).
    pub worker_wasm_bytes: u64,
    /// What the allocator of the instance running the engine holds (the
    /// worker's, or the page's own when the engine runs on the page); once
    /// the run is over, what it held as the summary was written.
    pub engine_heap: HeapUse,
    /// Of one engine of a split run, once its summary is written: all it
    /// measured, for the page to make the whole run's summary.
    pub result: Option<Rc<ShardResult>>,
}

/// The size of this wasm instance's memory if it runs in a worker, bytes.
fn worker_wasm_bytes() -> u64 {
    use wasm_bindgen::JsCast;
    if web_sys::window().is_some() {
        return 0;
    }
    wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .map(|m| {
            m.buffer()
                .unchecked_into::<js_sys::ArrayBuffer>()
                .byte_length() as u64
        })
        .unwrap_or(0)
}

/// A run of virtual devices; clones share the run.
#[derive(Clone)]
pub struct Run {
    inner: Rc<RefCell<Inner>>,
}

/// The state of a run, behind the handle.
pub(crate) struct Inner {
    pub(crate) config: RunConfig,
    /// The recorded motion the `replay` scenario plays (the built-in one if none).
    pub(crate) trace: Option<Arc<Trace>>,
    pub(crate) node: String,
    pub(crate) http: Client,
    pub(crate) names: RunNames,
    pub(crate) phase: Phase,
    /// The run's devices this engine runs (all of them unless split).
    pub(crate) devices: Devices,
    pub(crate) shard: Shard,
    /// Shared sockets this engine opens for its devices (`sockets=shared`).
    pub(crate) shared_sockets: usize,
    /// Every websocket of the run; the live count is computed from them.
    pub(crate) sockets: link::RunSockets,
    pub(crate) projectors: projector::Projectors,
    pub(crate) metrics: RunMetrics,
    /// The scenarios' plan, from the start of the run.
    pub(crate) plan: Option<RunPlan>,
    pub(crate) scheduler: Scheduler,
    pub(crate) fetch_in_flight: u32,
    /// The HTTP requests this engine may have in flight (its share of the
    /// tab's), and those waiting for a slot.
    pub(crate) fetch_gate: FetchGate<oneshot::Sender<()>>,
    /// Bumped at every phase change, so tasks of an older phase stop.
    pub(crate) generation: u64,
    pub(crate) summary: Option<Rc<Summary>>,
    /// What a split run's engine hands the page with its summary.
    pub(crate) result: Option<Rc<ShardResult>>,
    /// The allocator's figures when the summary was written: an ended run's
    /// snapshot shows these, so it does not change.
    heap_at_end: Option<HeapUse>,
    pub(crate) leftovers: Vec<SentantRef>,
    /// Why cleanup could not list them, if it could not.
    pub(crate) leftovers_unchecked: Option<String>,
    pub(crate) run_ms: (f64, f64),
    /// The wall clock when the scenario started (ms since the epoch), to
    /// compare starts across machines.
    pub(crate) started_wall_ms: Option<f64>,
    /// Since when the page has been hidden, if it is (not yet counted).
    pub(crate) hidden_since: Option<f64>,
    /// Bumped when joining must end (a delete): joins of an older value stop.
    pub(crate) joins: u64,
}

impl Inner {
    /// Counts the time hidden so far in the current phase.
    fn flush_hidden(&mut self, now: f64) {
        if let Some(since) = self.hidden_since.as_mut() {
            let sending = matches!(self.phase, Phase::Running { .. });
            self.metrics.record_hidden(now - *since, sending);
            *since = now;
        }
    }
}

impl Run {
    /// A run of `config` against the node at `node` (an `http(s)://` origin),
    /// naming its devices with `names`; `trace` is the motion `replay` plays.
    /// This engine runs `shard`'s share of the devices ([`Shard::WHOLE`]:
    /// all of them).
    pub fn new(
        config: RunConfig,
        node: String,
        names: RunNames,
        trace: Option<Arc<Trace>>,
        shard: Shard,
    ) -> Run {
        let devices = Devices::new(&names, config.devices, shard);
        // As many shared sockets as its own devices need.
        let shared_sockets = RunConfig {
            devices: devices.len() as u32,
            ..config.clone()
        }
        .load()
        .sockets()
        .0
        .max(1) as usize;
        let mut inner = Inner {
            shard,
            shared_sockets,
            http: Client::new(&node, config.request_timeout_ms()).with_path(config.http),
            trace,
            node,
            names,
            phase: Phase::Creating,
            devices,
            sockets: Default::default(),
            projectors: Default::default(),
            metrics: RunMetrics::new(now_ms(), config.devices),
            plan: None,
            scheduler: Scheduler::default(),
            fetch_in_flight: 0,
            fetch_gate: FetchGate::for_shard(config.fetch_slots(), shard),
            generation: 0,
            summary: None,
            result: None,
            heap_at_end: None,
            leftovers: Vec::new(),
            leftovers_unchecked: None,
            run_ms: (0.0, 0.0),
            started_wall_ms: None,
            // Whoever makes the run says whether the page is hidden
            // (`Run::set_hidden`): in a worker there is no page to ask.
            hidden_since: None,
            joins: 0,
            config,
        };
        inner.metrics.fetch_slots = inner.fetch_gate.cap();
        Run {
            inner: Rc::new(RefCell::new(inner)),
        }
    }

    pub(crate) fn from_weak(weak: &Weak<RefCell<Inner>>) -> Option<Run> {
        weak.upgrade().map(|inner| Run { inner })
    }

    pub(crate) fn weak(&self) -> Weak<RefCell<Inner>> {
        Rc::downgrade(&self.inner)
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.borrow_mut())
    }

    /// The run's phase now.
    pub fn phase(&self) -> Phase {
        self.inner.borrow().phase.clone()
    }

    /// The name prefix of this run's devices.
    pub fn prefix(&self) -> String {
        self.inner.borrow().names.prefix().to_owned()
    }

    /// The page became hidden or visible again.
    pub fn set_hidden(&self, hidden: bool) {
        self.with(|inner| {
            let now = now_ms();
            inner.flush_hidden(now);
            inner.hidden_since = hidden.then_some(now);
        })
    }

    fn enter(&self, phase: Phase) -> u64 {
        self.with(|inner| {
            inner.flush_hidden(now_ms());
            inner.phase = phase;
            inner.generation += 1;
            inner.generation
        })
    }

    fn is_current(&self, generation: u64) -> bool {
        self.inner.borrow().generation == generation
    }

    /// Joins every device, `join_rate` a second, and resolves when each has
    /// either joined or failed.
    pub async fn create(&self) {
        let generation = self.enter(Phase::Creating);
        // Never lose sockets silently: refuse a run one browser cannot hold.
        if let Err(cap) = self.with(|i| i.config.load().check_socket_cap()) {
            return self.fail("socket_cap", cap.to_string());
        }
        let (http, node) = self.with(|i| (i.http.clone(), i.node.clone()));
        let mut attempt = 0;
        let contact = loop {
            attempt += 1;
            let result = probe::probe(&http, &node).await;
            let retry = result
                .as_ref()
                .err()
                .and_then(probe::FirstContact::retryable_kind);
            if let (Some(kind), Err(contact)) = (&retry, &result) {
                self.with(|inner| inner.metrics.record_error(kind, &contact.to_string()));
            }
            match result {
                Err(_) if retry.is_some() && attempt < PROBE_ATTEMPTS => {
                    TimeoutFuture::new(PROBE_RETRY_MS * attempt).await
                }
                result => break result,
            }
        };
        let existing = match contact {
            Ok(existing) => existing,
            Err(contact) => return self.fail(contact.kind(), contact.to_string()),
        };
        let (indices, rate, mode, joins) = self.with(|i| {
            // Whether `view` and `monitor` were there before this run: if not,
            // its pages load them, and its Delete unloads them.
            let found = |name: &str| existing.iter().find(|s| s.name == name).cloned();
            i.projectors.found = Some((found("view"), found("monitor")));
            (
                i.devices.indices(),
                i.config.join_rate,
                i.config.sockets_mode(),
                i.joins,
            )
        });
        if mode == SocketsMode::Shared {
            for k in 0..self.with(|i| i.shared_sockets) {
                link::open_shared_socket(self, k);
            }
        }
        // The projector is up before the class connects (a split run's
        // first engine runs it).
        let viewers = self.with(|i| i.config.viewers());
        if self.with(|i| i.shard.is_first()) {
            projector::start(self, viewers);
        }
        let interval_ms = (1000.0 / rate.max(0.001)).max(0.0);
        let first = now_ms();
        // Joins go on when the scenarios start meanwhile (phones send from the
        // moment their sensor card exists); a delete or a failure ends them.
        let joining = || self.with(|i| i.joins == joins);
        // Each device joins when it would in the whole run.
        for index in indices {
            if !joining() {
                return;
            }
            let due = first + interval_ms * index as f64;
            let wait = due - now_ms();
            if wait >= 1.0 {
                TimeoutFuture::new(wait as u32).await;
            }
            spawn_local(device::join(self.clone(), index));
        }
        while joining() && self.with(|i| i.devices.iter().any(|d| d.is_joining())) {
            TimeoutFuture::new(50).await;
        }
        if self.is_current(generation) {
            self.enter(Phase::Ready);
        }
    }

    /// Ends the run before any device joined: the node (or the browser)
    /// cannot be used; the summary says why.
    fn fail(&self, kind: &str, why: String) {
        self.with(|inner| {
            inner.joins += 1;
            inner.metrics.record_error(kind, &why);
            inner.phase = Phase::Failed(why);
            inner.generation += 1;
        });
        self.write_summary();
    }

    /// Runs every live device's scenario for the configured duration, then stops.
    pub async fn start(&self) {
        let duration_ms = self.with(|i| i.config.duration_s * 1000.0);
        let started_ms = now_ms();
        let ends_ms = started_ms + duration_ms;
        let generation = self.enter(Phase::Running {
            started_ms,
            ends_ms,
        });
        self.with(|inner| {
            inner.run_ms = (started_ms, ends_ms);
            inner.started_wall_ms = Some(js_sys::Date::now());
            inner.plan = Some(RunPlan::new(&inner.config, inner.trace.clone()));
            for index in inner.devices.indices() {
                if inner.devices[index as usize].is_live() {
                    device::start_plan(inner, index, started_ms);
                }
            }
        });
        spawn_local(hiccup_meter(self.clone(), generation));
        schedule::run(self.clone(), generation, ends_ms).await;
        if self.is_current(generation) {
            self.stop().await;
        }
    }

    /// Ends the sends and waits (up to 10 s) for answers and signals still on their way.
    pub async fn stop(&self) {
        let generation = self.enter(Phase::Stopping);
        self.with(|inner| {
            inner.scheduler.clear();
            let now = now_ms();
            if inner.run_ms.1 > now {
                inner.run_ms.1 = now;
            }
            // Sends planned before the end that the scheduler had not yet
            // reached still count as planned: the count is the plan's.
            device::end_plans(inner, inner.run_ms.1);
        });
        let deadline = now_ms() + DRAIN_MS;
        while self.is_current(generation)
            && now_ms() < deadline
            && self.with(|i| i.fetch_in_flight > 0 || link::any_awaits_signal(i))
        {
            TimeoutFuture::new(20).await;
        }
        // Requests still waiting for a fetch slot are never sent (each
        // fails as `unsent` when its task next runs, before the summary).
        if self.with(|inner| inner.fetch_gate.cancel_waiting()) > 0 {
            TimeoutFuture::new(0).await;
        }
        if self.is_current(generation) {
            self.with(|inner| inner.phase = Phase::Stopped);
            self.write_summary();
        }
    }

    /// Closes the sockets and unloads, by id, every sentant this run created;
    /// then asks the node which of this run's sentants are still there.
    pub async fn delete(&self) {
        self.enter(Phase::Deleting);
        self.with(|inner| inner.joins += 1);
        // A join under way may still load its sentant: let it end first, so
        // that this delete knows every sentant of the run.
        let deadline = now_ms() + JOIN_SETTLE_MS;
        while now_ms() < deadline
            && self.with(|i| i.devices.iter().any(|d| d.is_joining() && !d.is_waiting()))
        {
            TimeoutFuture::new(50).await;
        }
        let targets: Vec<(u32, String)> = self.with(|inner| {
            link::close_all(inner);
            inner
                .devices
                .enumerate()
                .filter_map(|(i, d)| d.id().map(|id| (i, id.to_owned())))
                .collect()
        });
        let queue = Rc::new(RefCell::new(targets.into_iter()));
        let workers: Vec<_> = (0..DELETE_CONCURRENCY)
            .map(|_| delete_worker(self.clone(), queue.clone()))
            .collect();
        futures::future::join_all(workers).await;
        projector::unload_own(self).await;
        // A load whose answer was lost leaves a sentant this run never learned
        // the id of: its name, unique to this tab and run, still makes it ours.
        if let Ok(strays) = self.own_sentants_on_node().await {
            for stray in strays {
                let _ = device::unload(self, &stray.id).await;
            }
        }
        let leftovers = self.own_sentants_on_node().await;
        self.with(|inner| {
            // A failed listing's error is already counted with its request.
            (inner.leftovers, inner.leftovers_unchecked) = match leftovers {
                Ok(list) => (list, None),
                Err(err) => (Vec::new(), Some(err.to_string())),
            };
            inner.phase = Phase::Deleted;
        });
        self.write_summary();
    }

    /// This run's sentants on the node, asked again (with the reconnect
    /// back-off) while the node fails to answer: cleanup must not take a
    /// passing 5xx, timeout or network error for "nothing left".
    async fn own_sentants_on_node(&self) -> Result<Vec<SentantRef>, NetError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match device::own_sentants_on_node(self).await {
                Err(err) if err.is_transient() && attempt < LIST_ATTEMPTS => {
                    TimeoutFuture::new(Reconnect::backoff_ms(attempt) as u32).await
                }
                listed => return listed,
            }
        }
    }

    /// Create, run for the duration, stop, and (unless `keep`) delete. As a
    /// class does it in profile `webapp`: the scenarios start as the first
    /// device joins, and each phone sends from the moment its sensor card
    /// exists; otherwise once every device has joined.
    pub async fn autorun(&self) {
        if self.with(|i| i.config.profile.sends_while_joining()) {
            let start = async {
                while self.with(|i| {
                    i.phase == Phase::Creating && i.devices.iter().all(Device::is_waiting)
                }) {
                    TimeoutFuture::new(20).await;
                }
                if self.phase() == Phase::Creating {
                    self.start().await;
                }
            };
            futures::future::join(self.create(), start).await;
            if matches!(self.phase(), Phase::Failed(_) | Phase::Creating) {
                return;
            }
        } else {
            self.create().await;
            if self.phase() != Phase::Ready {
                return;
            }
            self.start().await;
        }
        if !self.with(|i| i.config.keep) {
            self.delete().await;
        }
    }

    fn write_summary(&self) {
        self.with(|inner| {
            inner.flush_hidden(now_ms());
            inner.metrics.tick(now_ms());
            let facts = RunFacts {
                node: inner.node.clone(),
                run_prefix: inner.names.prefix().to_owned(),
                duration_s: ((inner.run_ms.1 - inner.run_ms.0) / 1000.0).max(0.0),
                leftovers: inner.leftovers.clone(),
                leftovers_unchecked: inner.leftovers_unchecked.clone(),
            };
            if inner.shard.is_split() {
                inner.result = Some(Rc::new(ShardResult {
                    metrics: inner.metrics.clone(),
                    facts: facts.clone(),
                }));
            }
            inner.summary = Some(Rc::new(Summary::from_metrics(
                &inner.metrics,
                &inner.config,
                facts,
            )));
            inner.heap_at_end = Some(HeapUse::now());
        });
    }

    /// What the UI shows now: the devices walked once. Once the run is
    /// over, its 1-second buckets stop, so an idle run's snapshot does not
    /// change.
    pub fn snapshot(&self) -> Snapshot {
        let mut inner = self.inner.borrow_mut();
        let now = now_ms();
        if !matches!(
            inner.phase,
            Phase::Stopped | Phase::Deleted | Phase::Failed(_)
        ) {
            inner.metrics.tick(now);
        }
        let inner = &*inner;
        let (mut joined, mut live, mut failed, mut deleted) = (0, 0, 0, 0);
        let tiles = inner
            .devices
            .iter()
            .map(|d| {
                joined += u32::from(!d.is_waiting());
                live += u32::from(d.is_live());
                failed += u32::from(d.is_failed());
                deleted += u32::from(d.is_deleted());
                d.tile()
            })
            .collect();
        let (sends_per_s, signals_per_s) = inner
            .metrics
            .series
            .last()
            .map_or((0.0, 0.0), |b| (b.sends as f64, b.signals as f64));
        Snapshot {
            phase: inner.phase.clone(),
            prefix: inner.names.prefix().to_owned(),
            requested: inner.devices.len() as u32,
            joined,
            live,
            failed,
            deleted,
            sockets_live: inner.sockets.live() as u32,
            sends_ok: inner.metrics.sends_ok,
            sends_failed: inner.metrics.sends_failed,
            signals: inner.metrics.signals_received,
            projector_signals: inner.metrics.projector_signals,
            view_signals: inner.metrics.view_signals,
            errors: inner.metrics.errors_total,
            sends_per_s,
            signals_per_s,
            fetch_queue: inner.fetch_in_flight,
            started_wall_ms: inner.started_wall_ms,
            remaining_s: match inner.phase {
                Phase::Running { ends_ms, .. } => Some(((ends_ms - now) / 1000.0).max(0.0)),
                _ => None,
            },
            tiles: Rc::new(tiles),
            series: Rc::new(
                inner
                    .metrics
                    .series
                    .iter()
                    .rev()
                    .take(LIVE_SECONDS)
                    .rev()
                    .copied()
                    .collect(),
            ),
            bottleneck: tab_bottleneck(&inner.metrics),
            latency_histogram: match inner.summary {
                Some(_) => latency_histogram(&inner.metrics),
                None => Vec::new(),
            },
            summary: inner.summary.clone(),
            leftovers: inner.leftovers.iter().map(|s| s.name.clone()).collect(),
            hidden: inner.hidden_since.is_some(),
            hidden_s: (inner.metrics.hidden_ms
                + inner.hidden_since.map_or(0.0, |since| now - since))
                / 1000.0,
            worker_wasm_bytes: worker_wasm_bytes(),
            engine_heap: inner.heap_at_end.unwrap_or_else(HeapUse::now),
            result: inner.result.clone(),
        }
    }
}

/// The corrected signal latencies as histogram bars.
pub(crate) fn latency_histogram(metrics: &RunMetrics) -> Vec<(String, u64)> {
    let latency = &metrics.signal_latency_corrected;
    let mut low = 0.0;
    let mut bars: Vec<(String, u64)> = HISTOGRAM_BOUNDS_MS
        .iter()
        .map(|&high| {
            let bar = (format!("<{high}"), latency.count_between_ms(low, high));
            low = high;
            bar
        })
        .collect();
    bars.push((
        format!("≥{low}"),
        latency.count_between_ms(low, f64::INFINITY),
    ));
    bars
}

/// Unloads sentants from the shared queue until it is empty.
async fn delete_worker(run: Run, queue: Rc<RefCell<std::vec::IntoIter<(u32, String)>>>) {
    loop {
        let next = queue.borrow_mut().next();
        let Some((index, id)) = next else { return };
        for attempt in 1..=DELETE_ATTEMPTS {
            match device::unload(&run, &id)
                .await
                .map_err(|e| e.is_gone().then_some(()).ok_or(e))
            {
                // Unloaded, or the node no longer knows the id (it restarted,
                // or someone else unloaded it): either way it is gone.
                Ok(()) | Err(Ok(())) => {
                    run.with(|inner| {
                        inner.devices[index as usize].mark_deleted();
                        inner.metrics.devices_deleted += 1;
                    });
                    break;
                }
                Err(Err(err)) if attempt == DELETE_ATTEMPTS => {
                    run.with(|inner| {
                        inner.devices[index as usize].mark_delete_failed(err.to_string())
                    });
                }
                Err(_) => TimeoutFuture::new(Reconnect::backoff_ms(attempt) as u32).await,
            }
        }
    }
}

/// Records how late a 10 ms timer fires while the run is in `generation`:
/// the tab's own scheduling lag. It runs while the scenarios send (from
/// [`Run::start`]; in profile `webapp` that begins as the first phone
/// joins): the lag that decides whether the sends' figures measure the node.
async fn hiccup_meter(run: Run, generation: u64) {
    while run.is_current(generation) {
        let before = now_ms();
        TimeoutFuture::new(HICCUP_MS).await;
        let late = now_ms() - before - HICCUP_MS as f64;
        run.with(|inner| inner.metrics.record_scheduler_lag(late.max(0.0)));
    }
}
