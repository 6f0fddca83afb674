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
use r2_core::subscription::{Effect, Reconnect, SocketOptions, PUSH_TIMEOUT_MS};

use super::device::{self, Device};
use super::webapp::{self, PageLoad};
use super::{projector, Inner, Phase, Run};
use crate::browser::now_ms;
use crate::net::{websocket_url, Socket};

/// What a WebApp page's set-up watches, each on its own socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Watch {
    /// `monitor`'s `internal`: sentants created and deleted.
    Monitor,
    /// `view`'s `update`: every device's value, re-published.
    View,
}

impl Watch {
    fn signal(self) -> &'static str {
        match self {
            Watch::Monitor => "internal",
            Watch::View => "update",
        }
    }
}

/// How long a node lets a silent websocket live (Phoenix's default): a
/// frozen page's sockets end then.
const IDLE_TIMEOUT_MS: u32 = 60_000;

/// A socket's place in the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Slot {
    /// Device `index`'s own socket.
    Device(u32),
    /// A WebApp page's set-up socket of device `index` (profile `webapp`).
    Setup(u32, PageLoad, Watch),
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
    /// A WebApp page's set-up subscription of device `index`.
    Setup(u32, PageLoad, Watch),
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
    /// A connect page's monitor callback: `sentantGet` of this new sentant.
    MonitorCallback(String),
    /// Projector page `viewer` saw this sentant (id) created: its card.
    ProjectorCard(u32, String),
}

fn carry_out(run: &Run, follow_ups: Vec<FollowUp>) {
    for follow_up in follow_ups {
        match follow_up {
            FollowUp::UpdateOnConnect(id) => {
                wasm_bindgen_futures::spawn_local(device::send_update_on_connect(run.clone(), id))
            }
            FollowUp::Vanished(index) => device::vanished(run, index),
            FollowUp::MonitorCallback(id) => {
                wasm_bindgen_futures::spawn_local(webapp::monitor_callback(run.clone(), id))
            }
            FollowUp::ProjectorCard(viewer, id) => projector::card(run, viewer, id),
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
fn reconnect(inner: &Inner) -> Reconnect {
    inner.config.reconnect
}

/// A new socket for `slot` whose effects go to the run; its requests
/// (`transport=socket`) time out as the run's HTTP requests do, or after
/// phoenix.js's push timeout when those never time out.
fn new_socket(run: &Run, slot: Slot, options: SocketOptions) -> Socket<SubKey> {
    let timeout = run.with(|inner| inner.config.request_timeout_ms());
    let options = SocketOptions {
        request_timeout_ms: timeout.map_or(PUSH_TIMEOUT_MS, f64::from),
        ..options
    };
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
        Slot::Setup(i, page, watch) => {
            (3 << 32) | u64::from(i) << 2 | (page as u64) << 1 | watch as u64
        }
        Slot::Shared(k) => (1 << 32) | k as u64,
        Slot::Projector(p) => (2 << 32) | p as u64,
    };
    inner.config.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Opens (or takes a place on a shared socket for) a WebApp page's set-up
/// subscription of device `index` to `sentant`.
pub(crate) fn watch(run: &Run, index: u32, page: PageLoad, watch: Watch, sentant: &str) {
    let key = SubKey::Setup(index, page, watch);
    match run.with(|inner| inner.config.sockets_mode()) {
        SocketsMode::None => {}
        SocketsMode::PerDevice => {
            let slot = Slot::Setup(index, page, watch);
            let options =
                run.with(|inner| SocketOptions::phone(reconnect(inner), seed(inner, slot)));
            let socket = new_socket(run, slot, options);
            socket.subscribe(key, sentant, watch.signal());
            run.with(|inner| {
                inner.sockets.start(slot, socket);
            });
        }
        SocketsMode::Shared => run.with(|inner| {
            let slot = Slot::Shared(shared_socket_of(inner, index));
            if let Some(socket) = inner.sockets.get(&slot) {
                socket.subscribe(key, sentant, watch.signal());
            }
        }),
    }
}

/// Device `index`'s `page` was navigated away from: its set-up sockets
/// freeze (open, silent) until the node's idle timeout closes them; on a
/// shared socket their subscriptions end after that timeout.
pub(crate) fn freeze_page(run: &Run, index: u32, page: PageLoad) {
    let shared = run.with(|inner| {
        for watch in [Watch::Monitor, Watch::View] {
            if let Some(socket) = inner.sockets.get(&Slot::Setup(index, page, watch)) {
                socket.freeze();
            }
        }
        (inner.config.sockets_mode() == SocketsMode::Shared)
            .then(|| Slot::Shared(shared_socket_of(inner, index)))
    });
    if let Some(slot) = shared {
        let weak = run.weak();
        wasm_bindgen_futures::spawn_local(async move {
            gloo_timers::future::TimeoutFuture::new(IDLE_TIMEOUT_MS).await;
            let Some(run) = Run::from_weak(&weak) else {
                return;
            };
            run.with(|inner| {
                if let Some(socket) = inner.sockets.get(&slot) {
                    for watch in [Watch::Monitor, Watch::View] {
                        socket.unsubscribe(&SubKey::Setup(index, page, watch));
                    }
                }
            });
        });
    }
}

/// Starts device `index`'s subscription as the configured mode does it.
pub(crate) fn subscribe(run: &Run, index: u32) {
    let mode = run.with(|inner| inner.config.sockets_mode());
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
    match inner.config.sockets_mode() {
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
    let place = index.saturating_sub(inner.devices.indices().start);
    place as usize % inner.shared_sockets.max(1)
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

/// The socket that carries device `index`'s own subscription.
pub(crate) fn device_socket(inner: &Inner, index: u32) -> Option<&Socket<SubKey>> {
    let slot = match inner.config.sockets_mode() {
        SocketsMode::None => return None,
        SocketsMode::PerDevice => Slot::Device(index),
        SocketsMode::Shared => Slot::Shared(shared_socket_of(inner, index)),
    };
    inner.sockets.get(&slot)
}

/// Whether device `index`'s subscription is live now.
pub(crate) fn is_subscribed(inner: &Inner, index: u32) -> bool {
    device_socket(inner, index).is_some_and(|socket| {
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
            if matches!(slot, Slot::Device(_) | Slot::Setup(..)) {
                metrics.wire.device_socket_opens += 1;
            }
        }
        Effect::Joined { after_ms } => metrics.ws_joined.record_ms(after_ms),
        Effect::JoinRefused(why) => metrics.record_error("ws_join", &why),
        Effect::Connected(SubKey::Device(index)) => {
            // A phone sends `update` on "connected"; on a shared socket, once live.
            if let (Slot::Device(_), Some(id)) = (slot, inner.devices[index as usize].id()) {
                follow_ups.push(FollowUp::UpdateOnConnect(id.to_owned()));
                inner.devices[index as usize].update_sent(now);
            }
        }
        Effect::Connected(SubKey::Setup(..)) => {}
        Effect::Live {
            key: SubKey::Setup(..),
            after_ms,
            ..
        } => metrics.ws_subscribed.record_ms(after_ms),
        Effect::Refused {
            key: SubKey::Setup(_, _, watch),
            error,
        } => metrics.record_error(
            "ws_subscribe",
            &format!("{watch:?} subscription refused: {error}"),
        ),
        Effect::Signal {
            key: SubKey::Setup(index, page, watch),
            signal,
        } => follow_ups.extend(setup_signal(inner, index, page, watch, &signal, now)),
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
                device.update_sent(now);
            }
        }
        Effect::Live {
            key: SubKey::Projector(_),
            ..
        } => {}
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
            key: SubKey::Projector(_),
            error,
        } => {
            metrics.record_error("projector_subscribe", &error.to_string());
        }
        Effect::Signal {
            key: SubKey::Device(index),
            signal,
        } => {
            metrics.wire.device_frames += 1;
            let device: &mut Device = &mut inner.devices[index as usize];
            device::receive_signal(metrics, device, index, &signal, now);
        }
        Effect::Signal {
            key: SubKey::Projector(p),
            signal,
        } => follow_ups.extend(projector::signal(inner, p, &signal, now)),
        Effect::Dropped { code, .. } => {
            metrics.set_sockets(inner.sockets.live() as u64);
            let what = match slot {
                // A frozen page's socket ends at the node's idle timeout, as designed.
                Slot::Setup(index, page, _) if !inner.devices[index as usize].pages.runs(page) => {
                    return follow_ups
                }
                Slot::Setup(..) => "page socket",
                Slot::Device(_) => "socket",
                Slot::Shared(_) => "shared socket",
                Slot::Projector(_) => "projector socket",
            };
            inner
                .metrics
                .record_error("ws_closed", &format!("{what} closed (code {code})"));
        }
        Effect::Reconnecting { .. } => metrics.reconnects += 1,
        Effect::Malformed(why) => metrics.record_error("ws_malformed", &why),
        // Carried out by the socket itself.
        Effect::Open
        | Effect::Send(_)
        | Effect::Close
        | Effect::Timer { .. }
        | Effect::Answered { .. } => {}
    }
    follow_ups
}

/// A signal on a WebApp page's set-up socket: `view`'s carry every
/// device's values (the view latency on the phones), `monitor`'s the
/// sentants created, which the connect page's callback looks up.
fn setup_signal(
    inner: &mut Inner,
    index: u32,
    page: PageLoad,
    watch: Watch,
    signal: &r2_core::subscription::Signal,
    now: f64,
) -> Option<FollowUp> {
    let runs = inner.devices[index as usize].pages.runs(page);
    match watch {
        Watch::View => {
            inner.metrics.wire.device_frames += 1;
            inner.metrics.view_signals += 1;
            let from = signal
                .text("name")
                .and_then(|n| inner.names.device_index(n));
            if let (Some(from), Some(value)) = (from, signal.sensor()) {
                let sent = inner
                    .devices
                    .get(from as usize)
                    .and_then(|d| d.sent_at(value));
                if let (true, Some(sent_ms)) = (from != index, sent) {
                    inner.metrics.view_latency.record_ms(now - sent_ms);
                }
            }
            None
        }
        Watch::Monitor => {
            // The connect page's callback looks up the device it just loaded
            // (named as the node reports it: the answer with its id may not
            // be in yet).
            let device = &mut inner.devices[index as usize];
            let own = signal.text("activity") == Some("created")
                && signal.text("name") == Some(device.name());
            if !(own && runs && page == PageLoad::Connect) {
                return None;
            }
            device.own_load_seen = true;
            signal
                .text("id")
                .map(|id| FollowUp::MonitorCallback(id.to_owned()))
        }
    }
}

/// Closes every socket of the run on purpose (no reconnect follows).
pub(crate) fn close_all(inner: &mut Inner) {
    inner.sockets.close_all();
    projector::forget_sockets(&mut inner.projectors);
    inner.metrics.set_sockets(0);
}
