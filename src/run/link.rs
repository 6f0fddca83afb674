//! Each device's link to its `update` signal: its own websocket (`per-device`,
//! as phones) or a place on a shared one (`shared`), and what happens when a
//! socket drops: reconnect with phoenix.js's back-off, join, resubscribe,
//! send `update` on "connected" as a phone does, and measure the gap the
//! device spent without its subscription.
//!
//! Socket events arrive while the run is not borrowed; a handler updates the
//! run and returns [`Effect`]s, which are carried out after the borrow ends
//! (sending requests, scheduling a reconnect, re-creating a sentant).

use std::rc::Rc;

use gloo_timers::future::TimeoutFuture;
use r2_core::config::SocketsMode;
use r2_core::graphql;
use r2_core::metrics::RunMetrics;
use r2_core::phoenix::{Frame, Incoming, CONTROL_TOPIC};
use serde_json::{json, Value};
use wasm_bindgen_futures::spawn_local;

use super::device::{self, Device, Subscription};
use super::socket::{websocket_url, PhxSocket, SocketEvent};
use super::{Inner, Phase, Run, SharedSocket};
use crate::browser::now_ms;

/// phoenix.js's reconnect delays (ms); after the last, every 5 s.
const BACKOFF_MS: &[u32] = &[10, 50, 100, 150, 200, 250, 500, 1000, 2000];
const BACKOFF_AFTER_MS: u32 = 5000;

/// The delay before reconnect attempt `attempt` (1-based), as phoenix.js.
pub fn backoff_ms(attempt: u32) -> u32 {
    BACKOFF_MS
        .get(attempt.saturating_sub(1) as usize)
        .copied()
        .unwrap_or(BACKOFF_AFTER_MS)
}

/// What a socket event asks for once the run is no longer borrowed.
enum Effect {
    /// A device is "connected": send `update {}` to its sentant.
    UpdateOnConnect(String),
    /// Reopen device `index`'s socket after `delay_ms`.
    Reconnect { index: u32, delay_ms: u32 },
    /// Reopen shared socket `k` after `delay_ms`.
    ReconnectShared { k: usize, delay_ms: u32 },
    /// Device `index`'s sentant is gone from the node.
    Vanished(u32),
}

fn carry_out(run: &Run, effects: Vec<Effect>) {
    for effect in effects {
        match effect {
            Effect::UpdateOnConnect(id) => {
                spawn_local(device::send_update_on_connect(run.clone(), id))
            }
            Effect::Reconnect { index, delay_ms } => {
                spawn_local(reconnect(run.clone(), index, delay_ms))
            }
            Effect::ReconnectShared { k, delay_ms } => {
                spawn_local(reconnect_shared(run.clone(), k, delay_ms))
            }
            Effect::Vanished(index) => device::vanished(run, index),
        }
    }
}

/// Whether the run still wants its sockets (not deleting, not failed).
pub(crate) fn wants_sockets(inner: &Inner) -> bool {
    !matches!(
        inner.phase,
        Phase::Deleting | Phase::Deleted | Phase::Failed(_)
    )
}

/// Starts device `index`'s subscription as the configured mode does it.
pub(crate) fn subscribe(run: &Run, index: u32) {
    let mode = run.with(|inner| inner.config.sockets);
    match mode {
        SocketsMode::None => {}
        SocketsMode::PerDevice => open_device_socket(run, index),
        SocketsMode::Shared => run.with(|inner| {
            let k = shared_socket_of(inner, index);
            inner.devices[index as usize].subscription =
                Subscription::Connecting { since_ms: now_ms() };
            if inner.shared.get(k).is_some_and(|s| s.joined) {
                send_shared_doc(inner, k, index);
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

/// A subscription went live at `now`: ends the device's gap, if it had one.
fn went_live(metrics: &mut RunMetrics, device: &mut Device, sub_id: &str, now: f64) {
    if let Subscription::Requested { since_ms } = device.subscription {
        metrics.ws_subscribed.record_ms(now - since_ms);
    }
    if let Some(since) = device.gap_since.take() {
        metrics.subscription_gap.record_ms(now - since);
    }
    device.reconnect_attempt = 0;
    device.subscription = Subscription::Live(sub_id.to_owned());
}

/// The node refused a subscription: the sentant is gone (`invalid_signal`
/// for an id it does not know), or something else is wrong.
fn refused(
    metrics: &mut RunMetrics,
    device: &mut Device,
    index: u32,
    response: &Value,
) -> Option<Effect> {
    let why = format!("subscription refused: {response}");
    metrics.record_error("ws_subscribe", &why);
    device.subscription = Subscription::Failed(why);
    response
        .to_string()
        .contains("invalid_signal")
        .then_some(Effect::Vanished(index))
}

/// The socket of a device (or a shared one) dropped at `now`: the device
/// starts its gap and waits for the socket to come back.
fn dropped(device: &mut Device, now: f64) {
    if device.is_live() {
        device.gap_since.get_or_insert(now);
        device.subscription = Subscription::Dropped;
    }
}

/// Opens device `index`'s own websocket, as every phone does.
pub(crate) fn open_device_socket(run: &Run, index: u32) {
    let weak = run.weak();
    let handler: Rc<dyn Fn(SocketEvent)> = Rc::new(move |event| {
        if let Some(run) = Run::from_weak(&weak) {
            let effects = run.with(|inner| on_device_socket(inner, index, event));
            carry_out(&run, effects);
        }
    });
    let url = run.with(|inner| websocket_url(&inner.node));
    let since_ms = now_ms();
    let opened = PhxSocket::open(&url, handler);
    run.with(|inner| {
        let device = &mut inner.devices[index as usize];
        inner.sockets_live -= u64::from(device.close_socket());
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
        inner.metrics.set_sockets(inner.sockets_live);
    });
}

/// A phone's socket: join ok = "connected" → send the doc, then `update {}`.
fn on_device_socket(inner: &mut Inner, index: u32, event: SocketEvent) -> Vec<Effect> {
    let now = now_ms();
    let wants = wants_sockets(inner);
    let Inner {
        devices,
        metrics,
        sockets_live,
        ..
    } = inner;
    let device = &mut devices[index as usize];
    let mut effects = Vec::new();
    match event {
        SocketEvent::Open => {
            if let Subscription::Connecting { since_ms } = device.subscription {
                metrics.ws_connect.record_ms(now - since_ms);
            }
            device.socket_open = true;
            *sockets_live += 1;
            metrics.set_sockets(*sockets_live);
            if let Some(socket) = &device.socket {
                socket.send(&Frame::join_control(json!(0)));
            }
        }
        SocketEvent::Frame(frame) => match frame.classify() {
            Incoming::Reply { status, response } if frame.topic == CONTROL_TOPIC => {
                if let Some(sub_id) = response.get("subscriptionId").and_then(Value::as_str) {
                    went_live(metrics, device, sub_id, now);
                } else if status != "ok" {
                    effects.extend(refused(metrics, device, index, response));
                } else if let Subscription::Connecting { since_ms } = device.subscription {
                    metrics.ws_joined.record_ms(now - since_ms);
                    let id = device.id().unwrap_or_default().to_owned();
                    if let Some(socket) = &device.socket {
                        socket.send(&subscription_doc(json!(0), &id));
                    }
                    device.subscription = Subscription::Requested { since_ms: now };
                    effects.push(Effect::UpdateOnConnect(id));
                }
            }
            Incoming::Data { result, .. } => {
                device::receive_signal(metrics, device, index, result, now)
            }
            _ => {}
        },
        SocketEvent::Malformed(err) => metrics.record_error("ws_malformed", &err.to_string()),
        SocketEvent::Closed { code, reason, .. } => {
            if std::mem::take(&mut device.socket_open) {
                *sockets_live = sockets_live.saturating_sub(1);
                metrics.set_sockets(*sockets_live);
            }
            metrics.record_error(
                "ws_closed",
                &format!("socket closed (code {code}) {reason}"),
            );
            if wants && device.is_live() {
                dropped(device, now);
                device.reconnect_attempt += 1;
                effects.push(Effect::Reconnect {
                    index,
                    delay_ms: backoff_ms(device.reconnect_attempt),
                });
            } else {
                device.subscription = Subscription::Failed(format!("socket closed (code {code})"));
            }
        }
    }
    effects
}

/// Reopens device `index`'s socket after `delay_ms`, if it still needs it.
async fn reconnect(run: Run, index: u32, delay_ms: u32) {
    TimeoutFuture::new(delay_ms).await;
    let go = run.with(|inner| {
        let go = wants_sockets(inner)
            && inner.devices[index as usize].is_live()
            && inner.devices[index as usize].subscription == Subscription::Dropped;
        if go {
            inner.metrics.reconnects += 1;
        }
        go
    });
    if go {
        open_device_socket(&run, index);
    }
}

/// The shared socket that carries device `index`'s subscription.
fn shared_socket_of(inner: &Inner, index: u32) -> usize {
    index as usize % inner.shared.len().max(1)
}

/// Opens shared socket `k` (`shared` mode) and keeps it in the run.
pub(crate) fn open_shared_socket(run: &Run, k: usize) {
    let weak = run.weak();
    let handler: Rc<dyn Fn(SocketEvent)> = Rc::new(move |event| {
        if let Some(run) = Run::from_weak(&weak) {
            let effects = run.with(|inner| on_shared_socket(inner, k, event));
            carry_out(&run, effects);
        }
    });
    let url = run.with(|inner| websocket_url(&inner.node));
    let opened = PhxSocket::open(&url, handler);
    run.with(|inner| {
        if inner.shared.len() <= k {
            inner.shared.resize_with(k + 1, SharedSocket::default);
        }
        let shared = &mut inner.shared[k];
        if std::mem::take(&mut shared.open) {
            inner.sockets_live = inner.sockets_live.saturating_sub(1);
        }
        shared.joined = false;
        shared.refs.clear();
        match opened {
            Ok(socket) => shared.socket = Some(socket),
            Err(why) => inner.metrics.record_error("ws_open", &why),
        }
    });
}

fn send_shared_doc(inner: &mut Inner, k: usize, index: u32) {
    let shared = &mut inner.shared[k];
    // Refs from 1: "0" is the join's.
    shared.next_ref += 1;
    let reference = shared.next_ref.to_string();
    let device = &mut inner.devices[index as usize];
    let id = device.id().unwrap_or_default();
    let sent = shared
        .socket
        .as_ref()
        .is_some_and(|s| s.send(&subscription_doc(json!(reference), id)));
    if sent {
        shared.refs.insert(reference, index);
        device.subscription = Subscription::Requested { since_ms: now_ms() };
    } else {
        device.subscription = Subscription::Failed("shared socket not open".into());
    }
}

/// A shared socket: many `doc` frames, replies matched by ref, pushes routed
/// by subscription id.
fn on_shared_socket(inner: &mut Inner, k: usize, event: SocketEvent) -> Vec<Effect> {
    let now = now_ms();
    let mut effects = Vec::new();
    match event {
        SocketEvent::Open => {
            inner.shared[k].open = true;
            inner.sockets_live += 1;
            inner.metrics.set_sockets(inner.sockets_live);
            if let Some(socket) = &inner.shared[k].socket {
                socket.send(&Frame::join_control(json!("0")));
            }
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
                        inner.shared[k].attempt = 0;
                        let n = inner.shared.len();
                        let waiting: Vec<u32> = (0..inner.devices.len() as u32)
                            .filter(|&i| i as usize % n == k)
                            .filter(|&i| {
                                let d = &inner.devices[i as usize];
                                d.is_live()
                                    && matches!(
                                        d.subscription,
                                        Subscription::Connecting { .. } | Subscription::Dropped
                                    )
                            })
                            .collect();
                        for index in waiting {
                            send_shared_doc(inner, k, index);
                        }
                    } else {
                        inner.metrics.record_error("ws_join", &response.to_string());
                    }
                    return effects;
                }
                let Some(index) = inner.shared[k].refs.remove(&reference) else {
                    return effects;
                };
                let device = &mut inner.devices[index as usize];
                match response.get("subscriptionId").and_then(Value::as_str) {
                    Some(sub_id) if status == "ok" => {
                        went_live(&mut inner.metrics, device, sub_id, now);
                        inner.routes.insert(sub_id.to_owned(), index);
                        // As a phone does on "connected": fetch the current value.
                        effects
                            .extend(device.id().map(|id| Effect::UpdateOnConnect(id.to_owned())));
                    }
                    _ => effects.extend(refused(&mut inner.metrics, device, index, response)),
                }
            }
            Incoming::Data {
                subscription_id,
                result,
            } => {
                if let Some(&index) = inner.routes.get(subscription_id) {
                    let device = &mut inner.devices[index as usize];
                    device::receive_signal(&mut inner.metrics, device, index, result, now);
                }
            }
            _ => {}
        },
        SocketEvent::Malformed(err) => inner.metrics.record_error("ws_malformed", &err.to_string()),
        SocketEvent::Closed { code, reason, .. } => {
            if std::mem::take(&mut inner.shared[k].open) {
                inner.sockets_live = inner.sockets_live.saturating_sub(1);
                inner.metrics.set_sockets(inner.sockets_live);
            }
            inner.metrics.record_error(
                "ws_closed",
                &format!("shared socket closed (code {code}) {reason}"),
            );
            inner.shared[k].joined = false;
            let n = inner.shared.len();
            inner.routes.retain(|_, index| *index as usize % n != k);
            for (i, device) in inner.devices.iter_mut().enumerate() {
                if i % n == k {
                    dropped(device, now);
                }
            }
            if wants_sockets(inner) {
                inner.shared[k].attempt += 1;
                effects.push(Effect::ReconnectShared {
                    k,
                    delay_ms: backoff_ms(inner.shared[k].attempt),
                });
            }
        }
    }
    effects
}

/// Reopens shared socket `k` after `delay_ms`, if the run still wants it.
async fn reconnect_shared(run: Run, k: usize, delay_ms: u32) {
    TimeoutFuture::new(delay_ms).await;
    let go = run.with(|inner| {
        let go = wants_sockets(inner);
        if go {
            inner.metrics.reconnects += 1;
        }
        go
    });
    if go {
        open_shared_socket(&run, k);
    }
}

/// Closes every socket of the run on purpose (no reconnect follows).
pub(crate) fn close_all(inner: &mut Inner) {
    let mut closed = 0;
    for device in inner.devices.iter_mut() {
        closed += u64::from(device.close_socket());
    }
    for shared in inner.shared.iter_mut() {
        shared.socket = None;
        shared.joined = false;
        closed += u64::from(std::mem::take(&mut shared.open));
    }
    inner.routes.clear();
    closed += super::projector::close_all(&mut inner.projectors);
    inner.sockets_live = inner.sockets_live.saturating_sub(closed);
    inner.metrics.set_sockets(inner.sockets_live);
}

/// A heartbeat on every open socket of the run.
pub(crate) fn heartbeat_all(inner: &Inner) {
    let frame = Frame::heartbeat(json!(0));
    let devices = inner.devices.iter().filter_map(Device::socket);
    for socket in devices.chain(inner.shared.iter().filter_map(|s| s.socket.as_ref())) {
        socket.send(&frame);
    }
}
