//! The run's websockets: each device's link to its `update` signal — its
//! own socket (`per-device`, as phones) or a place on a shared one
//! (`shared`) — and the projectors' sockets, all held by one
//! [`Sockets`](crate::net::Sockets) in the run, from which the live count is
//! computed.
//!
//! Each socket is an [`r2_core::subscription::SocketMachine`] driven by
//! [`crate::net::Socket`]: joining, heartbeats, reconnecting with
//! phoenix.js's back-off and resubscribing are the machine's. What is the
//! run's is here: what each effect means for the devices and the metrics
//! (the gap a device spent without its subscription, `update` on
//! "connected" as a phone sends it, a refused subscription meaning the
//! sentant is gone).
//!
//! A socket's effects arrive while the run is not borrowed; the handler
//! updates the run and returns [`FollowUp`]s, carried out after the borrow
//! ends (sending requests, re-creating a sentant).

use std::rc::Rc;

use r2_core::config::SocketsMode;
use r2_core::subscription::{Effect, Reconnect, SocketOptions};

use super::device::{self, Device};
use super::{projector, Inner, Phase, Run};
use crate::browser::now_ms;
use crate::net::{websocket_url, Socket};

/// A socket's place in the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Slot {
    /// Device `index`'s own socket.
    Device(u32),
    /// Shared socket `k`.
    Shared(usize),
    /// Projector socket `slot`.
    Projector(usize),
}

/// What a subscription serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SubKey {
    /// Device `index`'s `update`.
    Device(u32),
    /// Projector socket `slot`'s subscription.
    Projector(usize),
}

/// The run's sockets.
pub(crate) type RunSockets = crate::net::Sockets<Slot, SubKey>;

/// What a socket effect asks for once the run is no longer borrowed.
pub(crate) enum FollowUp {
    /// A device is "connected": send `update {}` to this sentant.
    UpdateOnConnect(String),
    /// Device `index`'s sentant is gone from the node.
    Vanished(u32),
}

fn carry_out(run: &Run, follow_ups: Vec<FollowUp>) {
    for follow_up in follow_ups {
        match follow_up {
            FollowUp::UpdateOnConnect(id) => {
                wasm_bindgen_futures::spawn_local(device::send_update_on_connect(run.clone(), id))
            }
            FollowUp::Vanished(index) => device::vanished(run, index),
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

/// The run's reconnect policy.
fn reconnect(_inner: &Inner) -> Reconnect {
    Reconnect::Phoenix
}

/// A new socket for `slot` whose effects go to the run.
fn new_socket(run: &Run, slot: Slot, options: SocketOptions) -> Socket<SubKey> {
    let weak = run.weak();
    let handler = Rc::new(move |effect: Effect<SubKey>| {
        if let Some(run) = Run::from_weak(&weak) {
            let follow_ups = run.with(|inner| on_effect(inner, slot, effect));
            carry_out(&run, follow_ups);
        }
    });
    let url = run.with(|inner| websocket_url(&inner.node));
    Socket::new(&url, options, handler)
}

/// A seed for a socket's reconnect jitter: the run's seed and the slot.
fn seed(inner: &Inner, slot: Slot) -> u64 {
    let n = match slot {
        Slot::Device(i) => u64::from(i),
        Slot::Shared(k) => (1 << 32) | k as u64,
        Slot::Projector(p) => (2 << 32) | p as u64,
    };
    inner.config.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Starts device `index`'s subscription as the configured mode does it.
pub(crate) fn subscribe(run: &Run, index: u32) {
    let mode = run.with(|inner| inner.config.sockets);
    match mode {
        SocketsMode::None => {}
        SocketsMode::PerDevice => {
            let slot = Slot::Device(index);
            let options =
                run.with(|inner| SocketOptions::phone(reconnect(inner), seed(inner, slot)));
            let socket = new_socket(run, slot, options);
            run.with(|inner| {
                let id = inner.devices[index as usize]
                    .id()
                    .unwrap_or_default()
                    .to_owned();
                socket.subscribe(SubKey::Device(index), &id, "update");
                inner.sockets.start(slot, socket);
            });
        }
        SocketsMode::Shared => run.with(|inner| {
            let slot = Slot::Shared(shared_socket_of(inner, index));
            let id = inner.devices[index as usize].id().unwrap_or_default();
            if let Some(socket) = inner.sockets.get(&slot) {
                socket.subscribe(SubKey::Device(index), id, "update");
            }
        }),
    }
}

/// Ends device `index`'s subscription (its sentant is gone): its own
/// socket is closed, its place on a shared one given up.
pub(crate) fn unsubscribe(inner: &mut Inner, index: u32) {
    match inner.config.sockets {
        SocketsMode::None => {}
        SocketsMode::PerDevice => {
            inner.sockets.remove(&Slot::Device(index));
        }
        SocketsMode::Shared => {
            let slot = Slot::Shared(shared_socket_of(inner, index));
            if let Some(socket) = inner.sockets.get(&slot) {
                socket.unsubscribe(&SubKey::Device(index));
            }
        }
    }
    inner.metrics.set_sockets(inner.sockets.live() as u64);
}

/// The shared socket that carries device `index`'s subscription.
fn shared_socket_of(inner: &Inner, index: u32) -> usize {
    let count = inner
        .devices
        .len()
        .div_ceil(super::SUBSCRIPTIONS_PER_SHARED_SOCKET)
        .max(1);
    index as usize % count
}

/// Opens shared socket `k` (`shared` mode).
pub(crate) fn open_shared_socket(run: &Run, k: usize) {
    let slot = Slot::Shared(k);
    let options = run.with(|inner| SocketOptions::shared(reconnect(inner), seed(inner, slot)));
    let socket = new_socket(run, slot, options);
    run.with(|inner| {
        inner.sockets.start(slot, socket);
    });
}

/// Opens a projector socket in `slot` subscribed to `sentant`'s `signal`.
pub(crate) fn open_projector_socket(run: &Run, slot: usize, sentant: &str, signal: &str) {
    let place = Slot::Projector(slot);
    let options = run.with(|inner| SocketOptions::phone(reconnect(inner), seed(inner, place)));
    let socket = new_socket(run, place, options);
    socket.subscribe(SubKey::Projector(slot), sentant, signal);
    run.with(|inner| {
        inner.sockets.start(place, socket);
    });
}

/// Whether device `index`'s subscription is live now.
pub(crate) fn is_subscribed(inner: &Inner, index: u32) -> bool {
    let slot = match inner.config.sockets {
        SocketsMode::None => return false,
        SocketsMode::PerDevice => Slot::Device(index),
        SocketsMode::Shared => Slot::Shared(shared_socket_of(inner, index)),
    };
    inner.sockets.get(&slot).is_some_and(|socket| {
        socket.with_machine(|m| {
            matches!(
                m.subscription(&SubKey::Device(index)),
                Some(r2_core::subscription::SubState::Live { .. })
            )
        })
    })
}

/// Whether a subscribed device still waits for the signal of a value it sent.
pub(crate) fn any_awaits_signal(inner: &Inner) -> bool {
    inner
        .devices
        .iter()
        .enumerate()
        .any(|(i, d)| d.awaits_signal() && is_subscribed(inner, i as u32))
}

/// What one socket effect means for the run.
fn on_effect(inner: &mut Inner, slot: Slot, effect: Effect<SubKey>) -> Vec<FollowUp> {
    let now = now_ms();
    let mut follow_ups = Vec::new();
    let metrics = &mut inner.metrics;
    match effect {
        Effect::Opened { after_ms } => {
            metrics.ws_connect.record_ms(after_ms);
            metrics.set_sockets(inner.sockets.live() as u64);
        }
        Effect::Joined { after_ms } => metrics.ws_joined.record_ms(after_ms),
        Effect::JoinRefused(why) => metrics.record_error("ws_join", &why),
        Effect::Connected(SubKey::Device(index)) => {
            // A phone sends `update` on "connected"; on a shared socket, once live.
            if let (Slot::Device(_), Some(id)) = (slot, inner.devices[index as usize].id()) {
                follow_ups.push(FollowUp::UpdateOnConnect(id.to_owned()));
            }
        }
        Effect::Connected(SubKey::Projector(p)) => {
            follow_ups.extend(projector::connected(inner, p).map(FollowUp::UpdateOnConnect))
        }
        Effect::Live {
            key: SubKey::Device(index),
            after_ms,
            gap_ms,
            ..
        } => {
            metrics.ws_subscribed.record_ms(after_ms);
            let device = &mut inner.devices[index as usize];
            // A gap from a drop (the machine's) or from the sentant vanishing (the device's).
            let vanished_gap = device.gap_since.take().map(|since| now - since);
            if let Some(gap) = gap_ms.or(vanished_gap) {
                metrics.subscription_gap.record_ms(gap);
            }
            if let (Slot::Shared(_), Some(id)) = (slot, device.id()) {
                follow_ups.push(FollowUp::UpdateOnConnect(id.to_owned()));
            }
        }
        Effect::Live {
            key: SubKey::Projector(p),
            ..
        } => projector::settled(inner, p),
        Effect::Refused {
            key: SubKey::Device(index),
            error,
        } => {
            metrics.record_error("ws_subscribe", &format!("subscription refused: {error}"));
            if error.is_gone() {
                follow_ups.push(FollowUp::Vanished(index));
            }
        }
        Effect::Refused {
            key: SubKey::Projector(p),
            error,
        } => {
            metrics.record_error("projector_subscribe", &error.to_string());
            projector::settled(inner, p);
        }
        Effect::Signal {
            key: SubKey::Device(index),
            signal,
        } => {
            let device: &mut Device = &mut inner.devices[index as usize];
            device::receive_signal(metrics, device, index, &signal, now);
        }
        Effect::Signal {
            key: SubKey::Projector(p),
            signal,
        } => projector::signal(inner, p, &signal, now),
        Effect::Dropped { code, .. } => {
            metrics.set_sockets(inner.sockets.live() as u64);
            let what = match slot {
                Slot::Device(_) => "socket",
                Slot::Shared(_) => "shared socket",
                Slot::Projector(p) => {
                    projector::settled(inner, p);
                    "projector socket"
                }
            };
            inner
                .metrics
                .record_error("ws_closed", &format!("{what} closed (code {code})"));
        }
        Effect::Reconnecting { .. } => metrics.reconnects += 1,
        Effect::Malformed(why) => metrics.record_error("ws_malformed", &why),
        Effect::Open | Effect::Send(_) | Effect::Close | Effect::Timer { .. } => {}
    }
    follow_ups
}

/// Closes every socket of the run on purpose (no reconnect follows).
pub(crate) fn close_all(inner: &mut Inner) {
    inner.sockets.close_all();
    projector::forget_sockets(&mut inner.projectors);
    inner.metrics.set_sockets(0);
}
