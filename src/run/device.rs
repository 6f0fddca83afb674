//! One virtual device: what a phone's sensor page does, step for step.
//!
//! 1. [`join`]: `sentantAll`, then `sentantLoad` of the WebApp's device
//!    template with this device's name (only if no sentant has that name),
//!    then `sentantGet(id)` with the sensor page's field list;
//! 2. its websocket (or a shared one, see [`super::link`]): join the control
//!    topic, send the `awaitSignal(id, "update")` document, and on
//!    "connected" send `update {}`;
//! 3. [`fire_send`]: each planned value as `set_sensor {sensor: v}` and
//!    `update {}`, fired together;
//! 4. every `update` signal counted, and matched to the send that carried
//!    its value for the end-to-end latency (or counted stale: see
//!    [`r2_core::sent`]).
//!
//! A device whose sentant vanished from the node (a restart, someone else's
//! delete) is reported, and loaded again if the run says `recreate`.

use std::ops::{Index, IndexMut, Range};

use futures::channel::oneshot;
use gloo_timers::future::TimeoutFuture;
use r2_core::colour::Colour;
use r2_core::config::Transport;
use r2_core::graphql::{self, AnswerData, GqlResponse, NodeError, SentantAll, SentantRef};
use r2_core::metrics::{Op, RunMetrics};
use r2_core::names::RunNames;
use r2_core::plan::RunPlan;
use r2_core::profile::Profile;
use r2_core::scenario::{PlannedSend, Planner};
use r2_core::sent::{RecentSends, SignalMatch};
use r2_core::shard::Shard;
use r2_core::subscription::{Reconnect, RequestError, Signal};
use r2_core::throttle::THROTTLE_MS;
use r2_core::webapp::{Fields, Request};
use serde_json::{json, Value};
use wasm_bindgen_futures::spawn_local;

use super::link;
use super::webapp::{self, Pages};
use super::{Inner, Phase, Run, Tile};
use crate::browser::now_ms;
use crate::net::NetError;

/// A planned send this late (ms) is skipped, not fired: a phone that froze
/// sends its current value, not a backlog, and a burst of stale sends would
/// only bury the tab deeper. Its lateness is still recorded.
const MAX_CATCH_UP_MS: f64 = 1000.0;
/// Attempts to load a vanished device's sentant again (with the reconnect
/// back-off between them: about a minute in all).
const RECREATE_ATTEMPTS: u32 = 20;

/// The devices one engine runs, addressed by their place in the whole run:
/// engine `k` of a split run holds only its share ([`Shard::range`]), and
/// every index (in names, seeds, sockets) stays the run's.
pub struct Devices {
    first: u32,
    list: Vec<Device>,
}

impl Devices {
    /// The devices of `shard` among `count`, named by `names`.
    pub fn new(names: &RunNames, count: u32, shard: Shard) -> Devices {
        let range = shard.range(count);
        Devices {
            first: range.start,
            list: range.map(|i| Device::new(names.device_name(i))).collect(),
        }
    }

    /// How many devices this engine runs.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Their indices in the whole run.
    pub fn indices(&self) -> Range<u32> {
        self.first..self.first + self.list.len() as u32
    }

    /// Whether device `index` of the run is one of these.
    pub fn holds(&self, index: u32) -> bool {
        self.indices().contains(&index)
    }

    /// Device `index` of the run, if this engine runs it.
    pub fn get(&self, index: usize) -> Option<&Device> {
        index
            .checked_sub(self.first as usize)
            .and_then(|i| self.list.get(i))
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Device> {
        self.list.iter()
    }

    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, Device> {
        self.list.iter_mut()
    }

    /// Each device with its index in the whole run.
    pub fn enumerate(&self) -> impl Iterator<Item = (u32, &Device)> {
        self.indices().zip(self.list.iter())
    }
}

impl Index<usize> for Devices {
    type Output = Device;
    /// Device `index` of the run; only an engine's own devices are asked for.
    fn index(&self, index: usize) -> &Device {
        &self.list[index - self.first as usize]
    }
}

impl IndexMut<usize> for Devices {
    fn index_mut(&mut self, index: usize) -> &mut Device {
        &mut self.list[index - self.first as usize]
    }
}

/// Where a device is in its life.
#[derive(Debug, Clone, PartialEq)]
pub enum Life {
    /// Not yet started joining.
    Waiting,
    /// Joining: loading its sentant, opening its socket.
    Joining,
    /// Joined: its sentant exists and it can send.
    Live,
    /// Could not join (the reason, for the summary).
    Failed(String),
    /// Its sentant is gone from the node (and not re-created).
    Vanished,
    /// Its sentant was unloaded.
    Deleted,
    /// Its sentant could not be unloaded.
    DeleteFailed(String),
}

/// One virtual phone.
pub struct Device {
    name: String,
    id: Option<String>,
    life: Life,
    /// Since when the device has been without its subscription because its
    /// sentant vanished (a socket's drops are timed by its machine).
    pub(crate) gap_since: Option<f64>,
    /// Its sends in run time, and the clock's time at the run's start.
    planner: Option<(Planner, f64)>,
    /// The planned send the scheduler will fire next (on the page's clock).
    pending: Option<PlannedSend>,
    recent: RecentSends,
    last_value: Option<i64>,
    /// Which WebApp page runs (profile `webapp`).
    pub(crate) pages: Pages,
    /// Whether its connect page's `monitor` reported its sentant created.
    pub(crate) own_load_seen: bool,
}

impl Device {
    pub fn new(name: String) -> Device {
        Device {
            name,
            id: None,
            life: Life::Waiting,
            gap_since: None,
            planner: None,
            pending: None,
            recent: RecentSends::new(),
            last_value: None,
            pages: Pages::None,
            own_load_seen: false,
        }
    }

    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub(crate) fn set_life(&mut self, life: Life) {
        self.life = life;
    }
    /// The device's sentant, loaded by this run: ours from now on.
    pub(crate) fn set_id(&mut self, id: String) {
        self.id = Some(id);
    }
    pub fn is_waiting(&self) -> bool {
        self.life == Life::Waiting
    }
    pub fn is_joining(&self) -> bool {
        matches!(self.life, Life::Waiting | Life::Joining)
    }
    pub fn is_live(&self) -> bool {
        self.life == Life::Live
    }
    pub fn is_failed(&self) -> bool {
        matches!(self.life, Life::Failed(_) | Life::DeleteFailed(_))
    }
    pub fn is_deleted(&self) -> bool {
        self.life == Life::Deleted
    }
    /// Whether this run loaded a sentant for the device.
    pub fn was_created(&self) -> bool {
        self.id.is_some()
    }

    /// Whether the last value this device sent still waits for its signal
    /// (whether it can come depends on the subscription: [`link::any_awaits_signal`]).
    pub fn awaits_signal(&self) -> bool {
        self.recent.awaits_signal()
    }

    pub(crate) fn mark_deleted(&mut self) {
        self.life = Life::Deleted;
    }
    pub(crate) fn mark_delete_failed(&mut self, why: String) {
        self.life = Life::DeleteFailed(why);
    }

    /// Plans this device's sends as device `index` of `plan`, for a run
    /// that started at `started_ms` (the page's clock), the device able to
    /// send from `now_ms`.
    pub(crate) fn plan(&mut self, plan: &RunPlan, index: u32, started_ms: f64, now_ms: f64) {
        let live_ms = (now_ms - started_ms).max(0.0);
        self.planner = Some((plan.device(index, live_ms), started_ms));
    }

    /// Plans the next send; returns when it is due (the page's clock).
    fn next_send(&mut self) -> Option<f64> {
        let (planner, started_ms) = self.planner.as_mut()?;
        self.pending = planner.next().map(|next| PlannedSend {
            intended_ms: *started_ms + next.intended_ms,
            ..next
        });
        if self.pending.is_none() {
            self.planner = None;
        }
        self.pending.as_ref().map(|next| next.intended_ms)
    }

    /// The sends still to plan before `until_ms` (the page's clock), which
    /// ends the plan.
    fn sends_left_before(&mut self, until_ms: f64) -> u64 {
        let Some((planner, started_ms)) = self.planner.take() else {
            return 0;
        };
        planner
            .take_while(|next| started_ms + next.intended_ms < until_ms)
            .count() as u64
    }

    pub fn tile(&self) -> Tile {
        Tile {
            value: self.last_value,
            colour: self.last_value.map(Colour::from),
            live: self.is_live(),
        }
    }

    /// A signal arrived carrying `value`: which send it answers.
    fn on_signal(&mut self, value: Option<i64>) -> SignalMatch {
        if value.is_some() {
            self.last_value = value;
        }
        self.recent.on_signal(value)
    }

    /// When this device last sent `value` (ms), if it still remembers.
    pub(crate) fn sent_at(&self, value: i64) -> Option<f64> {
        self.recent.sent_at(value)
    }

    /// Its `update` on connecting left now: its signal takes a turn.
    pub(crate) fn update_sent(&mut self, now_ms: f64) {
        self.recent.update_sent(now_ms);
    }
}

/// Plans device `index`'s next send, counts it as planned, and gives it to
/// the scheduler.
pub(crate) fn queue_next(inner: &mut Inner, index: u32) {
    if let Some(at_ms) = inner.devices[index as usize].next_send() {
        inner.metrics.sends_planned += 1;
        inner.scheduler.push(at_ms, index);
    }
}

/// Device `index` can send from `now_ms`: plans its sends and queues the first.
pub(crate) fn start_plan(inner: &mut Inner, index: u32, now_ms: f64) {
    let Phase::Running { started_ms, .. } = inner.phase else {
        return;
    };
    let Some(plan) = inner.plan.as_ref() else {
        return;
    };
    inner.devices[index as usize].plan(plan, index, started_ms, now_ms);
    queue_next(inner, index);
}

/// The scenarios end at `until_ms` (the page's clock): counts every send
/// the devices' plans held before it that was not yet planned, and ends the plans.
pub(crate) fn end_plans(inner: &mut Inner, until_ms: f64) {
    let left: u64 = inner
        .devices
        .iter_mut()
        .map(|d| d.sends_left_before(until_ms))
        .sum();
    inner.metrics.sends_planned += left;
}

/// Runs one GraphQL request, counting it in the fetch queue and the metrics.
pub(crate) async fn request(
    run: &Run,
    op: Op,
    request: &Request<'_>,
) -> Result<GqlResponse, NetError> {
    request_with(run, op, request, |_| false).await
}

/// A lookup whose "no such sentant" (the node's `name` or `id` error with a
/// null answer) is an ordinary answer, timed and not counted as an error.
pub(crate) async fn lookup(
    run: &Run,
    op: Op,
    request: &Request<'_>,
) -> Result<GqlResponse, NetError> {
    request_with(run, op, request, |err| {
        matches!(err.node_error(), Some(NodeError::Name | NodeError::Id))
    })
    .await
}

/// [`request`], the answer's `data` read as `D`, where errors that `absent`
/// accepts are answers, not errors.
async fn request_with<D: AnswerData>(
    run: &Run,
    op: Op,
    request: &Request<'_>,
    absent: fn(&NetError) -> bool,
) -> Result<GqlResponse<D>, NetError> {
    let (http, wait) = run.with(|inner| {
        in_flight(inner, 1);
        let wait = (!inner.fetch_gate.enter()).then(|| {
            let (slot, given) = oneshot::channel();
            inner.fetch_gate.wait(slot);
            inner.metrics.fetches_held += 1;
            given
        });
        (inner.http.clone(), wait)
    });
    // Timed from here: a wait for a slot is part of what the device sees.
    let started = now_ms();
    let slot = match wait {
        None => Some(FetchSlot(run)),
        Some(given) => Waiting { run, given }.slot().await,
    };
    let result = match slot {
        // The slot is given back as the request ends.
        Some(_slot) => http.request_as(request).await,
        None => Err(NetError::Unsent),
    };
    answered(run, op, started, &result, absent);
    result
}

/// A slot of the engine's [`FetchGate`](r2_core::gate::FetchGate) held by a
/// request in flight; given back (to the next request waiting, if any) when
/// the request ends or is dropped.
struct FetchSlot<'a>(&'a Run);

impl Drop for FetchSlot<'_> {
    fn drop(&mut self) {
        self.0
            .with(|inner| inner.fetch_gate.leave(|slot| slot.send(()).is_ok()));
    }
}

/// A request waiting for a slot, which the gate hands over on `given`.
struct Waiting<'a> {
    run: &'a Run,
    given: oneshot::Receiver<()>,
}

impl<'a> Waiting<'a> {
    /// The slot, once handed over; `None` when the run ended first (the gate
    /// dropped its waiters).
    async fn slot(mut self) -> Option<FetchSlot<'a>> {
        let given = (&mut self.given).await.is_ok();
        let run = self.run;
        drop(self);
        given.then_some(FetchSlot(run))
    }
}

impl Drop for Waiting<'_> {
    /// Dropped after a slot was handed over but before it was taken: the
    /// slot passes on.
    fn drop(&mut self) {
        self.given.close();
        if let Ok(Some(())) = self.given.try_recv() {
            drop(FetchSlot(self.run));
        }
    }
}

/// One more (or fewer) request awaiting its answer.
fn in_flight(inner: &mut Inner, change: i32) {
    inner.fetch_in_flight = inner.fetch_in_flight.saturating_add_signed(change);
    inner
        .metrics
        .set_fetch_queue(u64::from(inner.fetch_in_flight));
}

/// Counts a request's answer, sent at `started`: timed, or its error.
fn answered<T>(
    run: &Run,
    op: Op,
    started: f64,
    result: &Result<T, NetError>,
    absent: fn(&NetError) -> bool,
) {
    let elapsed = now_ms() - started;
    run.with(|inner| {
        in_flight(inner, -1);
        match result {
            Ok(_) => inner.metrics.record_http(op, elapsed),
            Err(err) if absent(err) => inner.metrics.record_http(op, elapsed),
            Err(err) => inner
                .metrics
                .record_error(&err.kind(), &format!("{}: {err}", op.as_str())),
        }
    });
}

/// Sends `request` as a `doc` frame on device `index`'s socket
/// (`transport=socket`), counted as a request in flight until its reply.
async fn request_on_socket(
    run: &Run,
    index: u32,
    op: Op,
    request: &Request<'_>,
) -> Result<(), NetError> {
    // The WebApp's variables are JSON text; a `doc` frame carries the object itself.
    let variables = request.variables_object();
    let answer = run.with(|inner| {
        in_flight(inner, 1);
        link::device_socket(inner, index).map(|socket| socket.request(request.query(), &variables))
    });
    let started = now_ms();
    let result = match answer {
        Some(answer) => answer.await.map(drop).map_err(NetError::from),
        None => Err(NetError::from(RequestError::NotConnected)),
    };
    answered(run, op, started, &result, |_| false);
    result
}

/// Joins device `index` as its profile's client does.
pub(crate) async fn join(run: Run, index: u32) {
    match run.with(|inner| inner.config.profile) {
        Profile::WebApp => webapp::join(run, index).await,
        Profile::Lean | Profile::Seed => load_and_subscribe(run, index, false).await,
    }
}

/// Device `index` can send now: while the scenarios run, its own starts
/// (a phone sends from the moment its sensor card exists).
pub(crate) fn became_live(run: &Run, index: u32) {
    run.with(|inner| {
        let device = &inner.devices[index as usize];
        if device.planner.is_some() || !device.is_live() {
            return;
        }
        start_plan(inner, index, now_ms());
    });
}

/// Whether a failed join or re-creation is tried again after `attempt`
/// attempts — re-creating after a restart (the node may not be back yet),
/// or with `recreate` a first join (as a student taps connect again), while
/// the run still wants its devices — having waited the back-off if so.
pub(crate) async fn try_again(run: &Run, again: bool, attempt: u32) -> bool {
    let retry = run.with(|inner| {
        (again || inner.config.recreate)
            && attempt < RECREATE_ATTEMPTS
            && link::wants_sockets(inner)
    });
    if retry {
        TimeoutFuture::new(Reconnect::backoff_ms(attempt) as u32).await;
    }
    retry
}

/// Loads device `index`'s sentant (again, when `again`) and subscribes.
async fn load_and_subscribe(run: Run, index: u32, again: bool) {
    let name = run.with(|inner| {
        let device = &mut inner.devices[index as usize];
        device.life = Life::Joining;
        device.name.clone()
    });
    let mut attempt = 0;
    let id = loop {
        attempt += 1;
        // A later attempt adopts the run's own name: an earlier one may
        // have loaded it before its answer was lost.
        match load(&run, &name, again || attempt > 1, JoinPosts::WhenLive).await {
            Ok(id) => break id,
            Err(why) => {
                if !try_again(&run, again, attempt).await {
                    return run
                        .with(|inner| inner.devices[index as usize].life = Life::Failed(why));
                }
            }
        }
    };
    // Ours from now on, whatever happens next: Delete will unload it.
    run.with(|inner| {
        inner.devices[index as usize].id = Some(id.clone());
        if again {
            inner.metrics.devices_recreated += 1;
        } else {
            inner.metrics.devices_created += 1;
        }
    });
    // The sensor page reads its sentant with its field list before it subscribes.
    let get = Request::SentantGetById {
        id: &id,
        fields: Fields::Long,
    };
    let got = request(&run, Op::SentantGet, &get).await;
    let live = got.is_ok();
    run.with(|inner| {
        inner.devices[index as usize].life = match got {
            Ok(_) => Life::Live,
            Err(err) => Life::Failed(err.to_string()),
        };
        if live && !again {
            inner.metrics.wire.joins += 1;
            inner.metrics.wire.join_posts += 3;
        }
    });
    if live {
        became_live(&run, index);
        link::subscribe(&run, index);
    }
}

/// Device `index`'s sentant is gone from the node: reported, and loaded
/// again if the run says `recreate` (with the same name; only if free).
pub(crate) fn vanished(run: &Run, index: u32) {
    let recreate = run.with(|inner| {
        let device = &mut inner.devices[index as usize];
        if !device.is_live() {
            return false;
        }
        device.life = Life::Vanished;
        device.gap_since.get_or_insert(now_ms());
        let message = format!("the sentant of {} is no longer on the node", device.name);
        link::unsubscribe(inner, index);
        inner.metrics.devices_vanished += 1;
        inner.metrics.record_error("vanished", &message);
        inner.config.recreate
            && !matches!(inner.phase, super::Phase::Deleting | super::Phase::Deleted)
    });
    if recreate {
        spawn_local(load_and_subscribe(run.clone(), index, true));
    }
}

/// When a load's requests count as join POSTs on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinPosts {
    /// Each as it is sent (the WebApp's "connect").
    AsSent,
    /// Not here: once the device is live (the lean device's three).
    WhenLive,
}

/// `sentantAll`, then `sentantLoad` (only if the name is free): the new id.
///
/// When `again` (re-creating, or a later attempt), a sentant that already
/// has the name is this run's own, loaded by an attempt whose answer was
/// lost: it is adopted.
pub(crate) async fn load(
    run: &Run,
    name: &str,
    again: bool,
    posts: JoinPosts,
) -> Result<String, String> {
    let count_post = || {
        if posts == JoinPosts::AsSent {
            run.with(|inner| inner.metrics.wire.join_posts += 1);
        }
    };
    count_post();
    // Only the sentant of this name is kept from the listing: the join
    // still has its `sentantLoad` to wait for, and a listing names every
    // sentant on the node (each joining device would hold thousands).
    let taken = sentant_all(run, Fields::Short)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|s| s.name == name);
    match taken {
        Some(own) if again => return Ok(own.id),
        Some(_) => {
            let why = format!("a sentant named {name:?} already exists: not loading over it");
            run.with(|inner| inner.metrics.record_error("name_taken", &why));
            return Err(why);
        }
        None => {}
    }
    let definition = graphql::device_definition(name);
    count_post();
    let loaded = request(
        run,
        Op::SentantLoad,
        &Request::SentantLoad {
            definition: &definition,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let sentant = graphql::sentant_ref(&loaded, "sentantLoad").map_err(|e| e.to_string())?;
    Ok(sentant.id)
}

/// Sends `sentantSend(id, event, parameters)` planned for `intended_ms` and
/// counts it: answered, or failed (its error is already recorded). Phones
/// do not retry, and neither does this.
async fn send_event(
    run: Run,
    device: Option<u32>,
    op: Op,
    id: String,
    parameters: Value,
    intended_ms: f64,
) {
    let send = Request::SentantSend {
        id: &id,
        event: op.as_str(),
        parameters: &parameters,
    };
    let sent_ms = now_ms();
    if op == Op::Update {
        run.with(|inner| inner.metrics.wire.updates_sent += 1);
    }
    let transport = run.with(|inner| inner.config.transport);
    let result = match (transport, device) {
        (Transport::Socket, Some(index)) => request_on_socket(&run, index, op, &send).await,
        _ => request(&run, op, &send).await.map(drop),
    };
    let done_ms = now_ms();
    let is_gone = run.with(|inner| match result {
        Ok(_) => {
            inner.metrics.record_send(intended_ms, sent_ms, done_ms);
            false
        }
        Err(err) => {
            inner.metrics.sends_failed += 1;
            err.is_gone()
        }
    });
    if let (true, Some(index)) = (is_gone, device) {
        vanished(&run, index);
    }
}

/// The sensor page's `update {}` on "connected", to fetch the current value.
pub(crate) async fn send_update_on_connect(run: Run, id: String) {
    send_event(run, None, Op::Update, id, json!({}), now_ms()).await;
}

/// Counts a signal and, if it carries a value this device sent, its latency.
pub(crate) fn receive_signal(
    metrics: &mut RunMetrics,
    device: &mut Device,
    index: u32,
    signal: &Signal,
    now: f64,
) {
    match device.on_signal(signal.sensor()) {
        SignalMatch::Fresh {
            intended_ms,
            sent_ms,
        } => metrics.record_signal(index, intended_ms, sent_ms, now),
        SignalMatch::Stale => metrics.record_signal_stale(index),
        SignalMatch::Unmatched => metrics.record_signal_only(index),
    }
}

/// Sends `set_sensor {sensor: v}` and `update {}` for device `index`'s due
/// value, together, and plans its next send.
pub(crate) fn fire_send(run: &Run, inner: &mut Inner, index: u32) {
    let now = now_ms();
    let device = &mut inner.devices[index as usize];
    let Some(planned) = device.pending.take() else {
        return;
    };
    // The sensor page's throttle counts from the last send as it left: a
    // send that left late holds the next one back, never closer than 200 ms.
    // The phone would send the first reading after that, so that is when
    // this send is meant to leave (it is not late for it).
    let earliest = device.recent.last_sent_ms().map(|at| at + THROTTLE_MS);
    if let Some(at_ms) = earliest.filter(|at| now < *at) {
        device.pending = Some(PlannedSend {
            intended_ms: at_ms,
            ..planned
        });
        inner.scheduler.push(at_ms, index);
        return;
    }
    let late = now - planned.intended_ms;
    let id = device.id.clone().filter(|_| device.is_live());
    let Some(id) = id.filter(|_| late <= MAX_CATCH_UP_MS) else {
        // Not live (its sentant vanished, perhaps coming back): the value is
        // not sent, as a phone without its sentant would not; or too late.
        queue_next(inner, index);
        if late <= MAX_CATCH_UP_MS {
            return;
        }
        inner.metrics.send_lag.record_ms(late);
        inner.metrics.record_error(
            "skipped_late",
            &format!("a send planned {late:.0} ms ago was skipped: the tab fell behind"),
        );
        return;
    };
    device.recent.sent(planned.value, planned.intended_ms, now);
    queue_next(inner, index);
    let intended = planned.intended_ms;
    spawn_local(send_event(
        run.clone(),
        Some(index),
        Op::SetSensor,
        id.clone(),
        json!({ "sensor": planned.value }),
        intended,
    ));
    spawn_local(send_event(
        run.clone(),
        Some(index),
        Op::Update,
        id,
        json!({}),
        intended,
    ));
}

/// `sentantUnload(id)`.
pub(crate) async fn unload(run: &Run, id: &str) -> Result<(), NetError> {
    request(run, Op::SentantUnload, &Request::SentantUnload { id })
        .await
        .map(drop)
}

/// `sentantAll` with `fields`: every sentant on the node, read straight into
/// the list (each device joining holds one such answer).
pub(crate) async fn sentant_all(run: &Run, fields: Fields) -> Result<Vec<SentantRef>, NetError> {
    let all = request_with::<Option<SentantAll>>(
        run,
        Op::SentantAll,
        &Request::SentantAll { fields },
        |_| false,
    )
    .await?;
    Ok(graphql::sentants(all)?)
}

/// This run's sentants the node still holds (of a split run, this engine's).
pub(crate) async fn own_sentants_on_node(run: &Run) -> Result<Vec<SentantRef>, NetError> {
    let list = sentant_all(run, Fields::Short).await?;
    // A split run's engines each answer for their own devices only.
    Ok(run.with(|inner| {
        list.into_iter()
            .filter(|s| {
                inner.names.is_own(&s.name)
                    && (!inner.shard.is_split()
                        || inner
                            .names
                            .device_index(&s.name)
                            .is_some_and(|i| inner.devices.holds(i)))
            })
            .collect()
    }))
}
