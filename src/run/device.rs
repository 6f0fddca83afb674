//! One virtual device: what a phone's sensor page does, step for step.
//!
//! 1. [`join`]: `sentantAll`, then `sentantLoad` of the WebApp's device
//!    template with this device's name (only if no sentant has that name),
//!    then `sentantGet(id)` with the sensor page's field list;
//! 2. its websocket (or a shared one): join the control topic, send the
//!    `awaitSignal(id, "update")` document, and on "connected" send
//!    `update {}`;
//! 3. [`fire_send`]: each planned value as `set_sensor {sensor: v}` and
//!    `update {}`, fired together;
//! 4. every `update` signal counted, and matched to the send that carried
//!    its value for the end-to-end latency.

use std::collections::VecDeque;
use std::rc::Rc;

use r2_core::colour::Colour;
use r2_core::config::SocketsMode;
use r2_core::graphql::{self, GqlResponse, SentantRef};
use r2_core::metrics::{Op, RunMetrics};
use r2_core::phoenix::{Frame, Incoming, CONTROL_TOPIC};
use r2_core::scenario::{PlannedSend, Planner, Scenario, ScenarioKind, Trace};
use std::sync::Arc;
use serde_json::{json, Value};
use wasm_bindgen_futures::spawn_local;

use super::http::HttpError;
use super::socket::{websocket_url, PhxSocket, SocketEvent};
use super::{Inner, Run, SharedSocket, Tile};
use crate::browser::now_ms;

/// A planned send this late (ms) is skipped, not fired: a phone that froze
/// sends its current value, not a backlog, and a burst of stale sends would
/// only bury the tab deeper. Its lateness is still recorded.
const MAX_CATCH_UP_MS: f64 = 1000.0;
/// Sends remembered per device to match signals to (a device sends ≤ 5/s).
const RECENT_SENDS: usize = 8;

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
    /// Its sentant was unloaded.
    Deleted,
    /// Its sentant could not be unloaded.
    DeleteFailed(String),
}

/// The device's subscription to its own `update` signal.
#[derive(Debug, Clone, PartialEq)]
pub enum Subscription {
    /// None asked for (mode `none`, or not yet).
    None,
    /// The socket is opening or joining.
    Connecting { since_ms: f64 },
    /// The `doc` frame is sent; no reply yet.
    Requested { since_ms: f64 },
    /// The node confirmed it under this id.
    Live(String),
    /// The node refused it, or the socket failed.
    Failed(String),
}

/// A value sent, kept until its signal comes back.
#[derive(Debug, Clone, Copy)]
struct Sent {
    value: i64,
    actual_ms: f64,
    intended_ms: f64,
    answered: bool,
}

/// One virtual phone.
pub struct Device {
    name: String,
    id: Option<String>,
    life: Life,
    subscription: Subscription,
    socket: Option<PhxSocket>,
    planner: Option<Planner>,
    /// The planned send the scheduler will fire next.
    pending: Option<PlannedSend>,
    recent: VecDeque<Sent>,
    last_value: Option<i64>,
}

impl Device {
    pub fn new(name: String) -> Device {
        Device {
            name,
            id: None,
            life: Life::Waiting,
            subscription: Subscription::None,
            socket: None,
            planner: None,
            pending: None,
            recent: VecDeque::with_capacity(RECENT_SENDS),
            last_value: None,
        }
    }

    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
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

    /// Whether a value this device sent still waits for its signal.
    pub fn awaits_signal(&self) -> bool {
        matches!(self.subscription, Subscription::Live(_))
            && self.recent.back().is_some_and(|s| !s.answered)
    }

    pub(crate) fn mark_deleted(&mut self) {
        self.life = Life::Deleted;
    }
    pub(crate) fn mark_delete_failed(&mut self, why: String) {
        self.life = Life::DeleteFailed(why);
    }

    pub(crate) fn close_socket(&mut self) {
        self.socket = None;
        if !matches!(self.subscription, Subscription::Failed(_)) {
            self.subscription = Subscription::None;
        }
    }

    /// Plans this device's sends for a run over `(start_ms, ends_ms)`;
    /// `replay` plays `trace` when there is one.
    pub(crate) fn plan(
        &mut self,
        kind: ScenarioKind,
        seed: u64,
        trace: Option<&Arc<Trace>>,
        index: u32,
        (start_ms, ends_ms): (f64, f64),
    ) {
        let scenario = match (kind, trace) {
            (ScenarioKind::Replay, Some(trace)) => Scenario::replay(trace.clone(), seed, index, start_ms),
            _ => Scenario::new(kind, seed, index, start_ms),
        };
        self.planner = Some(Planner::new(scenario, ends_ms));
    }

    /// Plans the next send; returns when it is due, if before `ends_ms`.
    pub(crate) fn next_send(&mut self, ends_ms: f64) -> Option<f64> {
        self.pending = self
            .planner
            .as_mut()?
            .next()
            .filter(|next| next.intended_ms < ends_ms);
        if self.pending.is_none() {
            self.planner = None;
        }
        self.pending.as_ref().map(|next| next.intended_ms)
    }

    pub fn tile(&self) -> Tile {
        Tile {
            label: self
                .name
                .rsplit('-')
                .next()
                .unwrap_or(&self.name)
                .to_owned(),
            value: self.last_value,
            colour: self.last_value.map(Colour::from),
            live: self.is_live(),
        }
    }

    /// A signal arrived carrying `value`: returns the send it answers, as
    /// (intended, actual) send times.
    fn on_signal(&mut self, value: Option<i64>) -> Option<(f64, f64)> {
        let value = value?;
        self.last_value = Some(value);
        let sent = self
            .recent
            .iter_mut()
            .rev()
            .find(|s| s.value == value && !s.answered)?;
        sent.answered = true;
        Some((sent.intended_ms, sent.actual_ms))
    }

    fn remember(&mut self, sent: Sent) {
        if self.recent.len() == RECENT_SENDS {
            self.recent.pop_front();
        }
        self.recent.push_back(sent);
    }
}

/// Runs one GraphQL request, counting it in the fetch queue and the metrics.
pub(crate) async fn request(
    run: &Run,
    op: Op,
    query: &str,
    variables: Value,
) -> Result<GqlResponse, HttpError> {
    let http = run.with(|inner| {
        inner.fetch_in_flight += 1;
        inner
            .metrics
            .set_fetch_queue(u64::from(inner.fetch_in_flight));
        inner.http.clone()
    });
    let started = now_ms();
    let result = http.request(query, &variables).await;
    let elapsed = now_ms() - started;
    run.with(|inner| {
        inner.fetch_in_flight -= 1;
        inner
            .metrics
            .set_fetch_queue(u64::from(inner.fetch_in_flight));
        match &result {
            Ok(_) => inner.metrics.record_http(op, elapsed),
            Err(err) => inner
                .metrics
                .record_error(&err.kind(), &format!("{}: {err}", op.as_str())),
        }
    });
    result
}

/// Joins device `index` as a phone pressing "connect".
pub(crate) async fn join(run: Run, index: u32) {
    let name = run.with(|inner| {
        let device = &mut inner.devices[index as usize];
        device.life = Life::Joining;
        device.name.clone()
    });
    match load(&run, &name).await {
        Ok(id) => {
            run.with(|inner| {
                let device = &mut inner.devices[index as usize];
                device.id = Some(id.clone());
                device.life = Life::Live;
                inner.metrics.devices_created += 1;
            });
            subscribe(&run, index, &id);
        }
        Err(why) => run.with(|inner| inner.devices[index as usize].life = Life::Failed(why)),
    }
}

/// `sentantAll`, `sentantLoad` (only if the name is free), `sentantGet`.
async fn load(run: &Run, name: &str) -> Result<String, String> {
    let all = request(run, Op::SentantAll, graphql::SENTANT_ALL, json!({}))
        .await
        .map_err(|e| e.to_string())?;
    let existing = graphql::sentant_list(&all).map_err(|e| e.to_string())?;
    if existing.iter().any(|s| s.name == name) {
        let why = format!("a sentant named {name:?} already exists: not loading over it");
        run.with(|inner| inner.metrics.record_error("name_taken", &why));
        return Err(why);
    }
    let definition = graphql::device_definition(name);
    let loaded = request(
        run,
        Op::SentantLoad,
        graphql::SENTANT_LOAD,
        json!({ "definition": definition }),
    )
    .await
    .map_err(|e| e.to_string())?;
    let sentant = graphql::sentant_ref(&loaded, "sentantLoad").map_err(|e| e.to_string())?;
    request(
        run,
        Op::SentantGet,
        graphql::SENTANT_GET_BY_ID,
        json!({ "id": sentant.id }),
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(sentant.id)
}

/// Starts the device's subscription as the configured mode does it.
fn subscribe(run: &Run, index: u32, id: &str) {
    let mode = run.with(|inner| inner.config.sockets);
    match mode {
        SocketsMode::None => {}
        SocketsMode::PerDevice => open_device_socket(run, index),
        SocketsMode::Shared => run.with(|inner| {
            let k = index as usize % inner.shared.len().max(1);
            inner.devices[index as usize].subscription =
                Subscription::Connecting { since_ms: now_ms() };
            if let Some(shared) = inner.shared.get_mut(k) {
                if shared.joined {
                    send_shared_doc(inner, k, index, id);
                } else {
                    shared.waiting.push(index);
                }
            }
        }),
    }
}

fn subscription_doc(reference: Value, id: &str) -> Frame {
    Frame::doc(
        reference,
        graphql::AWAIT_SIGNAL,
        json!({ "id": id, "signal": "update" }),
    )
}

/// Opens the device's own websocket, as every phone does.
fn open_device_socket(run: &Run, index: u32) {
    let weak = run.weak();
    let handler: Rc<dyn Fn(SocketEvent)> = Rc::new(move |event| {
        if let Some(run) = Run::from_weak(&weak) {
            on_device_socket(&run, index, event);
        }
    });
    let url = run.with(|inner| websocket_url(&inner.node));
    let since_ms = now_ms();
    let opened = PhxSocket::open(&url, handler);
    run.with(|inner| {
        let device = &mut inner.devices[index as usize];
        match opened {
            Ok(socket) => {
                device.socket = Some(socket);
                device.subscription = Subscription::Connecting { since_ms };
            }
            Err(why) => {
                inner.metrics.record_error("ws_open", &why);
                device.subscription = Subscription::Failed(why);
            }
        }
    });
}

/// A phone's socket: join ok = "connected" → send the doc, then `update {}`.
fn on_device_socket(run: &Run, index: u32, event: SocketEvent) {
    let connected = run.with(|inner| {
        let now = now_ms();
        let Inner {
            devices,
            metrics,
            sockets_live,
            ..
        } = inner;
        let device = &mut devices[index as usize];
        match event {
            SocketEvent::Open => {
                if let Subscription::Connecting { since_ms } = device.subscription {
                    metrics.ws_connect.record_ms(now - since_ms);
                }
                *sockets_live += 1;
                metrics.set_sockets(*sockets_live);
                if let Some(socket) = &device.socket {
                    socket.send(&Frame::join_control(json!(0)));
                }
                None
            }
            SocketEvent::Frame(frame) => match frame.classify() {
                Incoming::Reply { status, response } if frame.topic == CONTROL_TOPIC => {
                    if let Some(sub_id) = response.get("subscriptionId").and_then(Value::as_str) {
                        if let Subscription::Requested { since_ms } = device.subscription {
                            metrics.ws_subscribed.record_ms(now - since_ms);
                        }
                        device.subscription = Subscription::Live(sub_id.to_owned());
                        None
                    } else if status != "ok" {
                        let why = format!("subscription refused: {response}");
                        metrics.record_error("ws_subscribe", &why);
                        device.subscription = Subscription::Failed(why);
                        None
                    } else if let Subscription::Connecting { since_ms } = device.subscription {
                        metrics.ws_joined.record_ms(now - since_ms);
                        let id = device.id.clone().unwrap_or_default();
                        if let Some(socket) = &device.socket {
                            socket.send(&subscription_doc(json!(0), &id));
                        }
                        device.subscription = Subscription::Requested { since_ms: now };
                        Some(id)
                    } else {
                        None
                    }
                }
                Incoming::Data { result, .. } => {
                    receive_signal(metrics, device, index, result, now);
                    None
                }
                _ => None,
            },
            SocketEvent::Malformed(err) => {
                metrics.record_error("ws_malformed", &err.to_string());
                None
            }
            SocketEvent::Closed {
                code,
                reason,
                clean,
            } => {
                if !matches!(
                    device.subscription,
                    Subscription::None | Subscription::Failed(_)
                ) {
                    *sockets_live = sockets_live.saturating_sub(1);
                    metrics.set_sockets(*sockets_live);
                    let why = format!(
                        "socket closed (code {code}{}{reason})",
                        if reason.is_empty() { "" } else { ": " }
                    );
                    if !clean || code != 1000 {
                        metrics.record_error("ws_closed", &why);
                    }
                    device.subscription = Subscription::Failed(why);
                }
                None
            }
        }
    });
    if let Some(id) = connected {
        spawn_local(send_update_on_connect(run.clone(), id));
    }
}

/// Sends `sentantSend(id, event, parameters)` planned for `intended_ms` and
/// counts it: answered, or failed (its error is already recorded).
async fn send_event(run: Run, op: Op, id: String, parameters: Value, intended_ms: f64) {
    let variables = graphql::send_variables(&id, op.as_str(), &parameters);
    let sent_ms = now_ms();
    let result = request(&run, op, graphql::SENTANT_SEND, variables).await;
    let done_ms = now_ms();
    run.with(|inner| match result {
        Ok(_) => inner.metrics.record_send(intended_ms, sent_ms, done_ms),
        Err(_) => inner.metrics.sends_failed += 1,
    });
}

/// The sensor page's `update {}` on "connected", to fetch the current value.
async fn send_update_on_connect(run: Run, id: String) {
    send_event(run, Op::Update, id, json!({}), now_ms()).await;
}

/// Counts a signal and, if it carries a value this device sent, its latency.
fn receive_signal(
    metrics: &mut RunMetrics,
    device: &mut Device,
    index: u32,
    result: &Value,
    now: f64,
) {
    let value = result
        .pointer("/data/awaitSignal/parameters/sensor")
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)));
    match device.on_signal(value) {
        Some((intended_ms, sent_ms)) => metrics.record_signal(index, intended_ms, sent_ms, now),
        None => metrics.record_signal_only(index),
    }
}

/// Opens shared socket `k` (`shared` mode) and keeps it in the run.
pub(crate) fn open_shared_socket(run: &Run, k: usize) {
    let weak = run.weak();
    let handler: Rc<dyn Fn(SocketEvent)> = Rc::new(move |event| {
        if let Some(run) = Run::from_weak(&weak) {
            if let Some(id) = run.with(|inner| on_shared_socket(inner, k, event)) {
                // As a phone does on "connected": fetch the current value.
                spawn_local(send_update_on_connect(run.clone(), id));
            }
        }
    });
    let url = run.with(|inner| websocket_url(&inner.node));
    let opened = PhxSocket::open(&url, handler);
    run.with(|inner| {
        if inner.shared.len() <= k {
            inner.shared.resize_with(k + 1, || SharedSocket {
                socket: None,
                joined: false,
                waiting: Vec::new(),
                refs: Default::default(),
                next_ref: 1,
            });
        }
        match opened {
            Ok(socket) => inner.shared[k].socket = Some(socket),
            Err(why) => inner.metrics.record_error("ws_open", &why),
        }
    });
}

fn send_shared_doc(inner: &mut Inner, k: usize, index: u32, id: &str) {
    let shared = &mut inner.shared[k];
    let reference = shared.next_ref.to_string();
    shared.next_ref += 1;
    let sent = shared
        .socket
        .as_ref()
        .is_some_and(|s| s.send(&subscription_doc(json!(reference), id)));
    let device = &mut inner.devices[index as usize];
    if sent {
        shared.refs.insert(reference, index);
        device.subscription = Subscription::Requested { since_ms: now_ms() };
    } else {
        device.subscription = Subscription::Failed("shared socket not open".into());
    }
}

/// A shared socket: many `doc` frames, replies matched by ref, pushes routed
/// by subscription id. Returns the sentant id of a device whose subscription
/// just went live.
fn on_shared_socket(inner: &mut Inner, k: usize, event: SocketEvent) -> Option<String> {
    let now = now_ms();
    match event {
        SocketEvent::Open => {
            inner.sockets_live += 1;
            inner.metrics.set_sockets(inner.sockets_live);
            if let Some(socket) = &inner.shared[k].socket {
                socket.send(&Frame::join_control(json!("0")));
            }
            None
        }
        SocketEvent::Frame(frame) => match frame.classify() {
            Incoming::Reply { status, response } if frame.topic == CONTROL_TOPIC => {
                let reference = match &frame.reference {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if reference == "0" {
                    if status == "ok" {
                        inner.shared[k].joined = true;
                        let waiting = std::mem::take(&mut inner.shared[k].waiting);
                        for index in waiting {
                            let id = inner.devices[index as usize].id.clone().unwrap_or_default();
                            send_shared_doc(inner, k, index, &id);
                        }
                    } else {
                        inner.metrics.record_error("ws_join", &response.to_string());
                    }
                    return None;
                }
                let index = inner.shared[k].refs.remove(&reference)?;
                let device = &mut inner.devices[index as usize];
                match response.get("subscriptionId").and_then(Value::as_str) {
                    Some(sub_id) if status == "ok" => {
                        if let Subscription::Requested { since_ms } = device.subscription {
                            inner.metrics.ws_subscribed.record_ms(now - since_ms);
                        }
                        device.subscription = Subscription::Live(sub_id.to_owned());
                        inner.routes.insert(sub_id.to_owned(), index);
                        return device.id.clone();
                    }
                    _ => {
                        let why = format!("subscription refused: {response}");
                        inner.metrics.record_error("ws_subscribe", &why);
                        device.subscription = Subscription::Failed(why);
                    }
                }
                None
            }
            Incoming::Data {
                subscription_id,
                result,
            } => {
                if let Some(&index) = inner.routes.get(subscription_id) {
                    receive_signal(
                        &mut inner.metrics,
                        &mut inner.devices[index as usize],
                        index,
                        result,
                        now,
                    );
                }
                None
            }
            _ => None,
        },
        SocketEvent::Malformed(err) => {
            inner.metrics.record_error("ws_malformed", &err.to_string());
            None
        }
        SocketEvent::Closed { code, reason, .. } => {
            let shared = &mut inner.shared[k];
            if shared.socket.is_some() {
                inner.sockets_live = inner.sockets_live.saturating_sub(1);
                inner.metrics.set_sockets(inner.sockets_live);
                inner.metrics.record_error(
                    "ws_closed",
                    &format!("shared socket closed (code {code}) {reason}"),
                );
            }
            shared.joined = false;
            None
        }
    }
}

/// Sends `set_sensor {sensor: v}` and `update {}` for device `index`'s due
/// value, together, and plans its next send.
pub(crate) fn fire_send(run: &Run, inner: &mut Inner, index: u32, ends_ms: f64) {
    let now = now_ms();
    let device = &mut inner.devices[index as usize];
    let Some(id) = device.id.clone() else { return };
    let Some(planned) = device.pending.take() else {
        return;
    };
    let late = now - planned.intended_ms;
    if late > MAX_CATCH_UP_MS {
        if let Some(at_ms) = device.next_send(ends_ms) {
            inner.scheduler.push(at_ms, index);
        }
        inner.metrics.send_lag.record_ms(late);
        inner.metrics.record_error(
            "skipped_late",
            &format!("a send planned {late:.0} ms ago was skipped: the tab fell behind"),
        );
        return;
    }
    device.remember(Sent {
        value: planned.value,
        actual_ms: now,
        intended_ms: planned.intended_ms,
        answered: false,
    });
    if let Some(at_ms) = device.next_send(ends_ms) {
        inner.scheduler.push(at_ms, index);
    }
    let intended = planned.intended_ms;
    spawn_local(send_event(
        run.clone(),
        Op::SetSensor,
        id.clone(),
        json!({ "sensor": planned.value }),
        intended,
    ));
    spawn_local(send_event(run.clone(), Op::Update, id, json!({}), intended));
}

/// `sentantUnload(id)`.
pub(crate) async fn unload(run: &Run, id: &str) -> Result<(), HttpError> {
    let result = request(
        run,
        Op::SentantUnload,
        graphql::SENTANT_UNLOAD,
        json!({ "id": id }),
    )
    .await;
    match result {
        Ok(_) => {
            run.with(|inner| inner.metrics.devices_deleted += 1);
            Ok(())
        }
        Err(err) => Err(err),
    }
}

/// This run's sentants the node still holds.
pub(crate) async fn own_sentants_on_node(run: &Run) -> Result<Vec<SentantRef>, HttpError> {
    let all = request(run, Op::SentantAll, graphql::SENTANT_ALL, json!({})).await?;
    let list = graphql::sentant_list(&all)?;
    Ok(run.with(|inner| {
        list.into_iter()
            .filter(|s| inner.names.is_own(&s.name))
            .collect()
    }))
}

/// A heartbeat on every open socket of the run.
pub(crate) fn heartbeat_all(inner: &Inner) {
    let frame = Frame::heartbeat(json!(0));
    for socket in inner
        .devices
        .iter()
        .filter_map(|d| d.socket.as_ref())
        .chain(inner.shared.iter().filter_map(|s| s.socket.as_ref()))
    {
        socket.send(&frame);
    }
}
