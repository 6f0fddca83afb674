//! Simulated projector pages (`viewers=K`), each as the WebApp's view page:
//! load `view` and find-or-load `monitor`, subscribe `monitor`'s `internal`
//! and `view`'s `update` (each on its own websocket, as the WebApp does), and
//! one more websocket per device with `awaitSignal(id, "update")` and an
//! `update` sent on connect — the device list page.
//!
//! Every `view` signal carries a device's name and value; matched to the
//! value that device sent, it gives the projector's latency. `view` and
//! `monitor` are unloaded at the end only if this run loaded them.

use std::rc::Rc;

use gloo_timers::future::TimeoutFuture;
use r2_core::graphql::{self, SentantRef};
use r2_core::metrics::Op;
use r2_core::phoenix::{Frame, Incoming, CONTROL_TOPIC};
use serde_json::{json, Value};
use wasm_bindgen_futures::spawn_local;

use super::device::{self, request};
use super::http::HttpError;
use super::socket::{websocket_url, PhxSocket, SocketEvent};
use super::{Inner, Run};
use crate::browser::now_ms;

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

/// One projector websocket.
struct ProjectorSocket {
    role: Role,
    sentant: String,
    socket: Option<PhxSocket>,
    open: bool,
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
pub(crate) async fn start(run: &Run, viewers: u32) -> Result<(), HttpError> {
    let all = request(run, Op::SentantAll, graphql::SENTANT_ALL, json!({})).await?;
    let existing = graphql::sentant_list(&all)?;
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

async fn load(run: &Run, definition: &str) -> Result<SentantRef, HttpError> {
    let loaded = request(
        run,
        Op::SentantLoad,
        graphql::SENTANT_LOAD,
        json!({ "definition": definition }),
    )
    .await?;
    Ok(graphql::sentant_ref(&loaded, "sentantLoad")?)
}

fn open(run: &Run, role: Role, sentant: String) {
    let slot = run.with(|inner| {
        inner.projectors.sockets.push(ProjectorSocket {
            role,
            sentant,
            socket: None,
            open: false,
            settled: false,
        });
        inner.projectors.sockets.len() - 1
    });
    let weak = run.weak();
    let handler: Rc<dyn Fn(SocketEvent)> = Rc::new(move |event| {
        if let Some(run) = Run::from_weak(&weak) {
            if let Some(id) = run.with(|inner| on_event(inner, slot, event)) {
                // The device list page sends each device an `update` on connect.
                spawn_local(device::send_update_on_connect(run.clone(), id));
            }
        }
    });
    let url = run.with(|inner| websocket_url(&inner.node));
    match PhxSocket::open(&url, handler) {
        Ok(socket) => run.with(|inner| inner.projectors.sockets[slot].socket = Some(socket)),
        Err(why) => run.with(|inner| inner.metrics.record_error("ws_open", &why)),
    }
}

/// Returns the device sentant to send `update` to once its socket is connected.
fn on_event(inner: &mut Inner, slot: usize, event: SocketEvent) -> Option<String> {
    let now = now_ms();
    let Inner {
        projectors,
        metrics,
        sockets_live,
        devices,
        names,
        ..
    } = inner;
    let ps = &mut projectors.sockets[slot];
    match event {
        SocketEvent::Open => {
            ps.open = true;
            *sockets_live += 1;
            metrics.set_sockets(*sockets_live);
            if let Some(socket) = &ps.socket {
                socket.send(&Frame::join_control(json!(0)));
            }
        }
        SocketEvent::Frame(frame) => match frame.classify() {
            Incoming::Reply { status, response } if frame.topic == CONTROL_TOPIC => {
                if status != "ok" {
                    ps.settled = true;
                    metrics.record_error("projector_subscribe", &response.to_string());
                } else if response.get("subscriptionId").is_some() {
                    ps.settled = true;
                } else {
                    // Joined: "connected" → the doc, and for the device list an `update`.
                    let doc = Frame::doc(
                        json!(0),
                        graphql::AWAIT_SIGNAL,
                        json!({ "id": ps.sentant, "signal": ps.role.signal() }),
                    );
                    if let Some(socket) = &ps.socket {
                        socket.send(&doc);
                    }
                    if let Role::Device(_) = ps.role {
                        return Some(ps.sentant.clone());
                    }
                }
            }
            Incoming::Data { result, .. } => {
                metrics.projector_signals += 1;
                if ps.role == Role::View {
                    let parameters = result.pointer("/data/awaitSignal/parameters");
                    let name = parameters
                        .and_then(|p| p.get("name"))
                        .and_then(Value::as_str);
                    let value = parameters
                        .and_then(|p| p.get("sensor"))
                        .and_then(Value::as_i64);
                    let index = name.and_then(|n| names.device_index(n));
                    if let (Some(index), Some(value)) = (index, value) {
                        if let Some(sent_ms) =
                            devices.get(index as usize).and_then(|d| d.sent_at(value))
                        {
                            metrics.projector_latency.record_ms(now - sent_ms);
                        }
                    }
                }
            }
            _ => {}
        },
        SocketEvent::Malformed(err) => metrics.record_error("ws_malformed", &err.to_string()),
        SocketEvent::Closed { code, .. } => {
            ps.settled = true;
            if std::mem::take(&mut ps.open) {
                *sockets_live = sockets_live.saturating_sub(1);
                metrics.set_sockets(*sockets_live);
            }
            metrics.record_error(
                "ws_closed",
                &format!("projector socket closed (code {code})"),
            );
        }
    }
    None
}

/// Closes every projector socket on purpose; returns how many were open.
pub(crate) fn close_all(projectors: &mut Projectors) -> u64 {
    let open = projectors.sockets.iter().filter(|s| s.open).count() as u64;
    projectors.sockets.clear();
    open
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
            if !device::gone(&err) {
                run.with(|inner| {
                    inner
                        .metrics
                        .record_error("projector_unload", &err.to_string())
                });
            }
        }
    }
}
