//! Simulated projector pages (`viewers=K`), each as the WebApp's `?view`
//! page: it loads, and one second later runs the WebApp's set-up —
//! `sentantGet(name: "monitor")` (and `sentantLoad(monitor)` when there is
//! none), `sentantLoad(view)`, and `sentantAll` with the long fields — with
//! a socket on `monitor`'s `internal` and one on `view`'s `update`; then a
//! card per sentant on the node but `monitor`, `view` and `.deleted`, each
//! with its own socket on that sentant's `update` and an `update` sent on
//! "connected". It follows `monitor`: a sentant created gets
//! `sentantGet(id)` (long fields) and a card; a sentant deleted has its card
//! renamed `.deleted` (its socket stays open, as the page leaves it).
//!
//! The projectors are opened before the devices join, as a teacher puts
//! the projector up before the class connects. Their sockets heartbeat and
//! reconnect as the run's devices do (they are the run's sockets). Every
//! `view` signal carries a device's name and value; matched to the value
//! that device sent, it gives the projector's latency.

use gloo_timers::future::TimeoutFuture;
use r2_core::graphql::{self, SentantRef};
use r2_core::metrics::Op;
use r2_core::profile::SETUP_DELAY_MS;
use r2_core::subscription::Signal;
use r2_core::webapp::{Fields, Request};

use super::device::{self, lookup, request};
use super::link::{self, FollowUp};
use super::{assets, Inner, Run};

/// Names the `?view` page shows no card for.
const NOT_CARDS: &[&str] = &["monitor", "view", ".deleted"];

/// What one projector socket listens to.
#[derive(Debug, Clone, PartialEq)]
enum Role {
    /// `view`'s `update`: every device's value, re-published.
    View,
    /// `monitor`'s `internal`: sentants created and deleted.
    Monitor,
    /// The card of one sentant (`deleted`: renamed `.deleted` by the page).
    Card { deleted: bool },
}

impl Role {
    fn signal(&self) -> &'static str {
        match self {
            Role::Monitor => "internal",
            Role::View | Role::Card { .. } => "update",
        }
    }
}

/// One projector websocket (the socket itself is in the run's
/// [`link::RunSockets`], in slot `Projector(index)`).
struct ProjectorSocket {
    viewer: u32,
    role: Role,
    sentant: String,
}

/// The simulated projectors of a run.
#[derive(Default)]
pub(crate) struct Projectors {
    sockets: Vec<ProjectorSocket>,
    /// `view` and `monitor` as the run found them before anything of it
    /// ran (`None`: absent, so this run's pages loaded them).
    pub(crate) found: Option<(Option<SentantRef>, Option<SentantRef>)>,
    /// `view` and `monitor` as this run's pages loaded them.
    pub(crate) loaded: (Option<SentantRef>, Option<SentantRef>),
}

impl Projectors {
    /// Whether projector `viewer` already has a card for `sentant`.
    fn has_card(&self, viewer: u32, sentant: &str) -> bool {
        self.sockets.iter().any(|s| {
            s.viewer == viewer && s.sentant == sentant && matches!(s.role, Role::Card { .. })
        })
    }
}

/// Opens `viewers` projector pages; each runs until the run closes its sockets.
pub(crate) fn start(run: &Run, viewers: u32) {
    for viewer in 0..viewers {
        wasm_bindgen_futures::spawn_local(page(run.clone(), viewer));
    }
}

/// One `?view` page.
async fn page(run: Run, viewer: u32) {
    assets::page_load(&run).await;
    TimeoutFuture::new(SETUP_DELAY_MS).await;
    let monitor = async {
        let get = Request::SentantGetByName {
            name: "monitor",
            fields: Fields::Short,
        };
        let found = lookup(&run, Op::SentantGet, &get)
            .await
            .ok()
            .and_then(|a| graphql::sentant_ref(&a, "sentantGet").ok());
        match found {
            Some(monitor) => Some(monitor),
            None => load(&run, &graphql::monitor_definition()).await,
        }
    };
    let view_definition = graphql::view_definition();
    let view = load(&run, &view_definition);
    let all = async {
        device::sentant_all(&run, Fields::Long)
            .await
            .unwrap_or_default()
    };
    let (monitor, view, all) = futures::future::join3(monitor, view, all).await;
    if let Some(monitor) = monitor {
        run.with(|inner| inner.projectors.loaded.1 = Some(monitor.clone()));
        open(&run, viewer, Role::Monitor, monitor.id);
    }
    if let Some(view) = view {
        run.with(|inner| inner.projectors.loaded.0 = Some(view.clone()));
        open(&run, viewer, Role::View, view.id);
    }
    for sentant in all
        .into_iter()
        .filter(|s| !NOT_CARDS.contains(&s.name.as_str()))
    {
        open(&run, viewer, Role::Card { deleted: false }, sentant.id);
    }
}

async fn load(run: &Run, definition: &str) -> Option<SentantRef> {
    let loaded = request(run, Op::SentantLoad, &Request::SentantLoad { definition }).await;
    loaded
        .ok()
        .and_then(|a| graphql::sentant_ref(&a, "sentantLoad").ok())
}

fn open(run: &Run, viewer: u32, role: Role, sentant: String) {
    let signal = role.signal();
    let slot = run.with(|inner| {
        inner.projectors.sockets.push(ProjectorSocket {
            viewer,
            role,
            sentant: sentant.clone(),
        });
        inner.projectors.sockets.len() - 1
    });
    link::open_projector_socket(run, slot, &sentant, signal);
}

/// A sentant `monitor` reported created on projector `viewer`'s page: its
/// `sentantGet(id)`, then its card.
pub(crate) fn card(run: &Run, viewer: u32, id: String) {
    let run = run.clone();
    wasm_bindgen_futures::spawn_local(async move {
        let get = Request::SentantGetById {
            id: &id,
            fields: Fields::Long,
        };
        let found = lookup(&run, Op::SentantGet, &get)
            .await
            .ok()
            .and_then(|a| graphql::sentant_ref(&a, "sentantGet").ok());
        let Some(sentant) = found else {
            return;
        };
        let new = run.with(|inner| {
            link::wants_sockets(inner) && !inner.projectors.has_card(viewer, &sentant.id)
        });
        if new && !NOT_CARDS.contains(&sentant.name.as_str()) {
            open(&run, viewer, Role::Card { deleted: false }, sentant.id);
        }
    });
}

/// Projector socket `slot` is "connected": a card sends its sentant an
/// `update` (returned: the sentant to send it to).
pub(crate) fn connected(inner: &Inner, slot: usize) -> Option<String> {
    let ps = inner.projectors.sockets.get(slot)?;
    matches!(ps.role, Role::Card { .. }).then(|| ps.sentant.clone())
}

/// A signal on projector socket `slot`: counted; on `view`'s, matched to the
/// value its device sent for the projector's latency; on `monitor`'s, a
/// created sentant gets a card, a deleted one's card is renamed.
pub(crate) fn signal(
    inner: &mut Inner,
    slot: usize,
    signal: &Signal,
    now: f64,
) -> Option<FollowUp> {
    let Inner {
        projectors,
        metrics,
        devices,
        names,
        ..
    } = inner;
    metrics.projector_signals += 1;
    let (viewer, role) = projectors
        .sockets
        .get(slot)
        .map(|ps| (ps.viewer, ps.role.clone()))?;
    match role {
        Role::View => {
            let index = signal.text("name").and_then(|n| names.device_index(n));
            if let (Some(index), Some(value)) = (index, signal.sensor()) {
                if let Some(sent_ms) = devices.get(index as usize).and_then(|d| d.sent_at(value)) {
                    metrics.projector_latency.record_ms(now - sent_ms);
                }
            }
            None
        }
        Role::Monitor => {
            let id = signal.text("id")?.to_owned();
            match signal.text("activity")? {
                "created" if !NOT_CARDS.contains(&signal.text("name").unwrap_or("")) => {
                    Some(FollowUp::ProjectorCard(viewer, id))
                }
                "deleted" => {
                    for ps in projectors.sockets.iter_mut() {
                        if ps.viewer == viewer && ps.sentant == id {
                            if let Role::Card { deleted } = &mut ps.role {
                                *deleted = true;
                            }
                        }
                    }
                    None
                }
                _ => None,
            }
        }
        Role::Card { .. } => None,
    }
}

/// Forgets the projector sockets (the run closed them).
pub(crate) fn forget_sockets(projectors: &mut Projectors) {
    projectors.sockets.clear();
}

/// Unloads `view` and `monitor` if this run's pages loaded them (the node
/// had none when the run began).
pub(crate) async fn unload_own(run: &Run) {
    let own: Vec<String> = run.with(|inner| {
        let p = &mut inner.projectors;
        let (found_view, found_monitor) = p.found.clone().unwrap_or((None, None));
        let (view, monitor) = std::mem::take(&mut p.loaded);
        [(view, found_view), (monitor, found_monitor)]
            .into_iter()
            .filter_map(|(loaded, found)| loaded.filter(|_| found.is_none()))
            .map(|s| s.id)
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
