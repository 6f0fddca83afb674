//! Simulated projector pages (`viewers=K`), each as the WebApp's view page:
//! load `view` and find-or-load `monitor`, subscribe `monitor`'s `internal`
//! and `view`'s `update` (each on its own websocket, as the WebApp does), and
//! one more websocket per device with `awaitSignal(id, "update")` and an
//! `update` sent on connect — the device list page.
//!
//! Every `view` signal carries a device's name and value; matched to the
//! value that device sent, it gives the projector's latency. `view` and
//! `monitor` are unloaded at the end only if this run loaded them.

use gloo_timers::future::TimeoutFuture;
use r2_core::graphql::{self, SentantRef};
use r2_core::metrics::Op;
use r2_core::subscription::Signal;
use r2_core::webapp::Request;

use super::device::{self, request};
use super::{link, Inner, Run};
use crate::browser::now_ms;
use crate::net::NetError;

/// How long the projectors' subscriptions may take to set up (ms).
const SETUP_MS: f64 = 10_000.0;

/// What one projector socket listens to.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    /// `view`'s `update`: every device's value, re-published.
    View,
    /// `monitor`'s `internal`: sentants created and deleted.
    Monitor,
    /// The device list page's socket for device `index`.
    Device(u32),
}

impl Role {
    fn signal(self) -> &'static str {
        match self {
            Role::Monitor => "internal",
            Role::View | Role::Device(_) => "update",
        }
    }
}

/// One projector websocket (the socket itself is in the run's
/// [`link::RunSockets`], in slot `Projector(index)`).
struct ProjectorSocket {
    role: Role,
    sentant: String,
    /// Subscribed, or refused or closed: no longer being set up.
    settled: bool,
}

/// The simulated projectors of a run.
#[derive(Default)]
pub(crate) struct Projectors {
    sockets: Vec<ProjectorSocket>,
    /// `view` and `monitor`, with whether this run loaded them.
    view: Option<(SentantRef, bool)>,
    monitor: Option<(SentantRef, bool)>,
}

/// Loads `view` (as the projector page does) and finds or loads `monitor`,
/// then opens every projector socket. Returns why it could not, if so.
pub(crate) async fn start(run: &Run, viewers: u32) -> Result<(), NetError> {
    let existing = device::sentant_all(run).await?;
    let had = |name: &str| existing.iter().find(|s| s.name == name).cloned();
    let view = match had("view") {
        // The projector page loads `view` every time: the node redefines it and keeps its id.
        Some(found) => (
            load(run, &graphql::view_definition())
                .await
                .unwrap_or(found),
            false,
        ),
        None => (load(run, &graphql::view_definition()).await?, true),
    };
    let monitor = match had("monitor") {
        Some(found) => (found, false),
        None => (load(run, &graphql::monitor_definition()).await?, true),
    };
    let plan: Vec<(Role, String)> = run.with(|inner| {
        let devices: Vec<(Role, String)> = inner
            .devices
            .iter()
            .enumerate()
            .filter(|(_, d)| d.is_live())
            .filter_map(|(i, d)| d.id().map(|id| (Role::Device(i as u32), id.to_owned())))
            .collect();
        let mut plan = Vec::new();
        for _ in 0..viewers {
            plan.push((Role::Monitor, monitor.0.id.clone()));
            plan.push((Role::View, view.0.id.clone()));
            plan.extend(devices.iter().cloned());
        }
        inner.projectors.view = Some(view);
        inner.projectors.monitor = Some(monitor);
        plan
    });
    for (role, sentant) in plan {
        open(run, role, sentant);
    }
    // Ready means the projectors are watching: wait for their subscriptions.
    let deadline = now_ms() + SETUP_MS;
    while now_ms() < deadline
        && run.with(|inner| inner.projectors.sockets.iter().any(|s| !s.settled))
    {
        TimeoutFuture::new(20).await;
    }
    Ok(())
}

async fn load(run: &Run, definition: &str) -> Result<SentantRef, NetError> {
    let loaded = request(run, Op::SentantLoad, &Request::SentantLoad { definition }).await?;
    Ok(graphql::sentant_ref(&loaded, "sentantLoad")?)
}

fn open(run: &Run, role: Role, sentant: String) {
    let slot = run.with(|inner| {
        inner.projectors.sockets.push(ProjectorSocket {
            role,
            sentant: sentant.clone(),
            settled: false,
        });
        inner.projectors.sockets.len() - 1
    });
    link::open_projector_socket(run, slot, &sentant, role.signal());
}

/// Projector socket `slot` is "connected": the device list page sends its
/// device an `update` (returned: the sentant to send it to).
pub(crate) fn connected(inner: &Inner, slot: usize) -> Option<String> {
    let ps = inner.projectors.sockets.get(slot)?;
    matches!(ps.role, Role::Device(_)).then(|| ps.sentant.clone())
}

/// Projector socket `slot` is no longer being set up (subscribed, refused or closed).
pub(crate) fn settled(inner: &mut Inner, slot: usize) {
    if let Some(ps) = inner.projectors.sockets.get_mut(slot) {
        ps.settled = true;
    }
}

/// A signal on projector socket `slot`: counted, and on `view`'s, matched to
/// the value its device sent for the projector's latency.
pub(crate) fn signal(inner: &mut Inner, slot: usize, signal: &Signal, now: f64) {
    let Inner {
        projectors,
        metrics,
        devices,
        names,
        ..
    } = inner;
    metrics.projector_signals += 1;
    if projectors.sockets.get(slot).map(|ps| ps.role) != Some(Role::View) {
        return;
    }
    let index = signal.text("name").and_then(|n| names.device_index(n));
    if let (Some(index), Some(value)) = (index, signal.sensor()) {
        if let Some(sent_ms) = devices.get(index as usize).and_then(|d| d.sent_at(value)) {
            metrics.projector_latency.record_ms(now - sent_ms);
        }
    }
}

/// Forgets the projector sockets (the run closed them).
pub(crate) fn forget_sockets(projectors: &mut Projectors) {
    projectors.sockets.clear();
}

/// Unloads `view` and `monitor` if this run loaded them.
pub(crate) async fn unload_own(run: &Run) {
    let own: Vec<String> = run.with(|inner| {
        let p = &mut inner.projectors;
        [p.view.take(), p.monitor.take()]
            .into_iter()
            .flatten()
            .filter(|(_, ours)| *ours)
            .map(|(s, _)| s.id)
            .collect()
    });
    for id in own {
        if let Err(err) = device::unload(run, &id).await {
            if !err.is_gone() {
                run.with(|inner| {
                    inner
                        .metrics
                        .record_error("projector_unload", &err.to_string())
                });
            }
        }
    }
}
