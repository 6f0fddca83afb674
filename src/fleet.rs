//! Tabs as one fleet: every tab reports its figures once a second, any tab
//! shows the per-tab rows and totals, and the control view (`?control`)
//! starts and stops them all. Tabs of one browser meet on a
//! `BroadcastChannel`; with `&fleet=NAME`, pages on any machine also meet
//! through the node, on the control sentant `r2s-control-NAME` ([`NodeFleet`]).
//! Its traffic is counted apart from the test load.
//!
//! Every message is sealed with the fleet's secret ([`FleetKey`]): the
//! control view's address carries it (`&key=`, made when absent) and keeps
//! it in this browser's storage, so tabs of the same browser find it there;
//! a page on another machine needs `&key=` in its address. A message that
//! does not open (no seal, another secret, dated in the future, an old
//! command) is counted as refused and otherwise ignored.
//!
//! Layout: the secret ([`Secret`], [`fleet_key_for_control`]); the ways to
//! the other pages ([`FleetChannel`], [`NodeFleet`], [`Fleet`]); the hook
//! ([`use_fleet`], [`Heard`]); the views ([`FleetTable`], [`Control`]).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use gloo_storage::{LocalStorage, Storage};
use gloo_timers::callback::Interval;
use r2_core::fleet::{
    control_definition, control_name, is_fresh, totals, FleetCommand, FleetError, FleetKey,
    FleetMessage, TabReport,
};
use r2_core::graphql;
use r2_core::subscription::{Effect, Reconnect, SocketOptions};
use r2_core::webapp::{Fields, Request};
use wasm_bindgen_futures::spawn_local;

use crate::browser::{origin, query_string, random_u64};
use crate::net::{websocket_url, Client, NetError, Socket};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BroadcastChannel, MessageEvent};
use yew::prelude::*;

/// The channel's name: every r2-stress tab of this origin is on it.
pub const CHANNEL: &str = "r2-stress";
/// Where the control view keeps the fleet's secret for this browser's tabs.
pub const KEY_STORAGE_KEY: &str = "r2-stress.fleet-key";

/// Where this page's fleet secret comes from.
#[derive(Debug, Clone)]
pub enum Secret {
    /// `&key=` in the page's address.
    Given(FleetKey),
    /// `&key=` is unusable: the page is in no fleet.
    Bad(String),
    /// None given: whatever the control view of this browser last kept,
    /// read anew for each message (the control view may open later).
    Stored,
}

impl Secret {
    /// The page's secret, from its address.
    pub fn from_url() -> Secret {
        match url_param("key") {
            Some(secret) => match FleetKey::new(&secret) {
                Ok(key) => Secret::Given(key),
                Err(e) => Secret::Bad(format!("&key= is not usable: {e}")),
            },
            None => Secret::Stored,
        }
    }

    /// The key to seal and open with now, if there is one.
    pub fn key(&self) -> Option<FleetKey> {
        match self {
            Secret::Given(key) => Some(key.clone()),
            Secret::Bad(_) => None,
            Secret::Stored => LocalStorage::get::<String>(KEY_STORAGE_KEY)
                .ok()
                .and_then(|s| FleetKey::new(&s).ok()),
        }
    }

    /// Why this page cannot take part in the fleet, if it cannot now.
    pub fn problem(&self) -> Option<String> {
        match (self, self.key()) {
            (Secret::Bad(why), _) => Some(why.clone()),
            (_, None) => Some(
                "no fleet secret yet: open the control view (?control) in this browser, or add the &key= it shows"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// The control view's secret: the address's, else the one this browser
/// kept, else a new one. It is kept for this browser's tabs and written
/// into the address, so the address is what joins other machines.
pub fn fleet_key_for_control() -> Result<FleetKey, String> {
    let key = match Secret::from_url() {
        Secret::Given(key) => key,
        Secret::Bad(why) => return Err(why),
        Secret::Stored => Secret::Stored.key().unwrap_or_else(|| {
            let mut random = [0u8; 16];
            random[..8].copy_from_slice(&random_u64().to_le_bytes());
            random[8..].copy_from_slice(&random_u64().to_le_bytes());
            FleetKey::generate(random)
        }),
    };
    if LocalStorage::set(KEY_STORAGE_KEY, key.secret()).is_err() {
        web_sys::console::warn_1(
            &"r2-stress: could not keep the fleet secret for this browser's tabs".into(),
        );
    }
    if url_param("key").is_none() {
        let query = format!("{}&key={}", query_string(), key.secret());
        if let Some(history) = web_sys::window().and_then(|w| w.history().ok()) {
            let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&format!("?{query}")));
        }
    }
    Ok(key)
}

/// A parameter of the page's address.
fn url_param(name: &str) -> Option<String> {
    form_urlencoded::parse(query_string().as_bytes())
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.into_owned())
}

/// The open channel and its message handler; dropping it closes both.
pub struct FleetChannel {
    channel: BroadcastChannel,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
}

impl FleetChannel {
    /// Joins the fleet; every sealed message from another tab goes to `on_message`.
    pub fn open(on_message: impl Fn(&serde_json::Value) + 'static) -> Option<FleetChannel> {
        let channel = BroadcastChannel::new(CHANNEL).ok()?;
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let text = ev.data().as_string().unwrap_or_default();
            on_message(&serde_json::from_str(&text).unwrap_or_default());
        });
        channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        Some(FleetChannel {
            channel,
            _on_message: on_message,
        })
    }

    /// Sends a sealed message to every other tab.
    pub fn post(&self, sealed: &serde_json::Value) {
        let _ = self
            .channel
            .post_message(&JsValue::from_str(&sealed.to_string()));
    }
}

impl Drop for FleetChannel {
    fn drop(&mut self) {
        self.channel.set_onmessage(None);
        self.channel.close();
    }
}

/// Request timeout for the fleet's own few requests (ms).
const FLEET_TIMEOUT_MS: u32 = 10_000;

/// The fleet's link through the node: the control sentant, subscribed to
/// its `fleet` signal on a socket of its own (heartbeat and reconnect as
/// phoenix.js; dropping it closes the socket).
pub struct NodeFleet {
    http: Client,
    id: String,
    _socket: Socket<()>,
    /// Messages posted through the node (shown apart from the test load).
    pub posted: Rc<Cell<u64>>,
}

impl NodeFleet {
    /// Finds (or loads) the control sentant of `fleet` on `node` and
    /// subscribes to it; every signal's parameters go to `on_message`.
    pub async fn join(
        node: &str,
        fleet: &str,
        on_message: Rc<dyn Fn(&serde_json::Value)>,
    ) -> Result<NodeFleet, NetError> {
        let http = Client::new(node, Some(FLEET_TIMEOUT_MS));
        let all = http.sentant_all(Fields::Short).await?;
        let name = control_name(fleet);
        let id = match all.into_iter().find(|s| s.name == name) {
            Some(found) => found.id,
            None => {
                let definition = control_definition(fleet);
                let loaded = http
                    .request(&Request::SentantLoad {
                        definition: &definition,
                    })
                    .await?;
                graphql::sentant_ref(&loaded, "sentantLoad")?.id
            }
        };
        let handler = Rc::new(move |effect: Effect<()>| {
            if let Effect::Signal { signal, .. } = effect {
                on_message(&signal.parameters);
            }
        });
        let socket = Socket::new(
            &websocket_url(node),
            SocketOptions::phone(Reconnect::Phoenix, random_u64()),
            handler,
        );
        socket.subscribe((), &id, "fleet");
        socket.start();
        Ok(NodeFleet {
            http,
            id,
            _socket: socket,
            posted: Rc::default(),
        })
    }

    /// Sends a sealed message to every page of the fleet, through the node.
    pub fn post(&self, sealed: &serde_json::Value) {
        let (http, id, parameters) = (self.http.clone(), self.id.clone(), sealed.clone());
        self.posted.set(self.posted.get() + 1);
        spawn_local(async move {
            let _ = http
                .request(&Request::SentantSend {
                    id: &id,
                    event: "fleet",
                    parameters: &parameters,
                })
                .await;
        });
    }
}

/// This page's ways to the rest of the fleet, and its secret.
pub struct Fleet {
    secret: Secret,
    channel: Option<FleetChannel>,
    node: Option<NodeFleet>,
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet {
            secret: Secret::from_url(),
            channel: None,
            node: None,
        }
    }
}

impl Fleet {
    /// Sends `message`, sealed, to the other tabs of this browser and, with
    /// a fleet name, to every page of the fleet through the node. Without a
    /// secret nothing is sent (see [`Secret::problem`]).
    pub fn post(&self, message: &FleetMessage) {
        let Some(key) = self.secret.key() else {
            return;
        };
        let sealed = key.seal(message);
        if let Some(channel) = &self.channel {
            channel.post(&sealed);
        }
        if let Some(node) = &self.node {
            node.post(&sealed);
        }
    }

    /// The messages this page sent through the node.
    pub fn node_messages(&self) -> Option<u64> {
        self.node.as_ref().map(|n| n.posted.get())
    }
}

/// The fleet name from the page's URL (`&fleet=NAME`), if any.
pub fn fleet_name() -> Option<String> {
    url_param("fleet")
}

/// The node the fleet meets on: `&node=` or the page's origin.
fn fleet_node() -> String {
    url_param("node").unwrap_or_else(origin)
}

/// The other tabs' latest reports, by tab.
pub type Reports = BTreeMap<String, TabReport>;

/// Messages refused, by why ([`FleetError::kind`]).
pub type Refused = BTreeMap<&'static str, u64>;

/// What this page hears of the fleet, refreshed once a second.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Heard {
    /// The other tabs' fresh reports.
    pub reports: Reports,
    /// Messages that did not open with this fleet's secret.
    pub refused: Refused,
    /// Why this page is not in the fleet, if it is not.
    pub problem: Option<String>,
}

/// Joins the fleet for this component's lifetime: keeps the other tabs'
/// reports and the refusals (refreshed once a second), hands each command
/// that opens with the fleet's secret to `on_command` once, and returns the
/// fleet for posting.
#[hook]
pub fn use_fleet(
    on_command: Callback<FleetCommand>,
) -> (UseStateHandle<Heard>, Rc<RefCell<Fleet>>) {
    let heard = use_state(Heard::default);
    let fleet: Rc<RefCell<Fleet>> = use_mut_ref(Fleet::default);
    {
        let (heard, fleet) = (heard.clone(), fleet.clone());
        use_effect_with((), move |_| {
            let received: Rc<RefCell<Heard>> = Rc::default();
            let seen: Rc<RefCell<BTreeSet<u64>>> = Rc::default();
            let inbox = received.clone();
            let secret = fleet.borrow().secret.clone();
            let on_message: Rc<dyn Fn(&serde_json::Value)> = Rc::new(move |sealed| {
                let Some(key) = secret.key() else {
                    return;
                };
                match key.open(sealed, js_sys::Date::now()) {
                    Ok(FleetMessage::Report(report)) => {
                        inbox
                            .borrow_mut()
                            .reports
                            .insert(report.tab.clone(), report);
                    }
                    Ok(FleetMessage::Command { command, id, .. }) => {
                        if seen.borrow_mut().insert(id) {
                            on_command.emit(command);
                        }
                    }
                    Err(e) => refuse(&mut inbox.borrow_mut().refused, &e),
                }
            });
            fleet.borrow_mut().channel = FleetChannel::open({
                let on_message = on_message.clone();
                move |sealed| on_message(sealed)
            });
            if let Some(name) = fleet_name() {
                let fleet = Rc::downgrade(&fleet);
                spawn_local(async move {
                    let joined = NodeFleet::join(&fleet_node(), &name, on_message).await;
                    match (fleet.upgrade(), joined) {
                        (Some(fleet), Ok(node)) => fleet.borrow_mut().node = Some(node),
                        (_, Err(err)) => web_sys::console::warn_1(
                            &format!("r2-stress: fleet {name}: {err}").into(),
                        ),
                        _ => {}
                    }
                });
            }
            let secret = fleet.borrow().secret.clone();
            // What the view was last given (the state handle captured here
            // would keep showing the first value).
            let mut shown = Heard::default();
            let refresh = Interval::new(1000, move || {
                let now = js_sys::Date::now();
                let mut received = received.borrow_mut();
                received.reports.retain(|_, r| is_fresh(r, now));
                received.problem = secret.problem();
                if shown != *received {
                    shown = received.clone();
                    heard.set(shown.clone());
                }
            });
            move || {
                drop(refresh);
                *fleet.borrow_mut() = Fleet::default();
            }
        });
    }
    (heard, fleet)
}

/// Counts a refused message, and says so in the console once per kind.
fn refuse(refused: &mut Refused, error: &FleetError) {
    let count = refused.entry(error.kind()).or_default();
    if *count == 0 {
        web_sys::console::warn_1(
            &format!("r2-stress: a fleet message was refused: {error}").into(),
        );
    }
    *count += 1;
}

#[derive(Properties, PartialEq)]
pub struct FleetTableProps {
    pub reports: Reports,
    /// Messages refused (not sealed with this fleet's secret, or untimely).
    #[prop_or_default]
    pub refused: Refused,
    /// This tab's own report, if it has one.
    #[prop_or_default]
    pub own: Option<TabReport>,
}

/// Per-tab rows and the totals.
#[function_component(FleetTable)]
pub fn fleet_table(props: &FleetTableProps) -> Html {
    let rows: Vec<&TabReport> = props.own.iter().chain(props.reports.values()).collect();
    let total = totals(rows.iter().copied(), js_sys::Date::now());
    let row = |r: &TabReport, id: Option<&str>| {
        html! { <tr id={id.map(str::to_owned)}>
            <td>{ &r.tab }</td><td>{ &r.phase }</td><td>{ format!("{}/{}", r.live, r.devices) }</td>
            <td>{ r.sockets }</td><td>{ r.sends_ok }</td><td>{ r.sends_failed }</td><td>{ r.signals }</td>
            <td>{ r.errors }</td><td>{ format!("{:.0}", r.sends_per_s) }</td>
            <td>{ if r.hidden { format!("hidden ({:.0} s)", r.hidden_s) } else if r.hidden_s > 0.0 { format!("{:.0} s", r.hidden_s) } else { String::new() } }</td>
        </tr> }
    };
    html! {
        <section class="fleet" aria-label="all tabs">
            <h2>{ format!("All tabs ({})", rows.len()) }</h2>
            <table>
                <tr><th>{ "tab" }</th><th>{ "phase" }</th><th>{ "live" }</th><th>{ "sockets" }</th><th>{ "sends ok" }</th>
                    <th>{ "failed" }</th><th>{ "signals" }</th><th>{ "errors" }</th><th>{ "sends/s" }</th><th>{ "hidden" }</th></tr>
                { for rows.iter().map(|r| row(r, None)) }
                { row(&total, Some("r2-fleet-total")) }
            </table>
            <pre id="r2-fleet" hidden=true>{ serde_json::to_string(&total).unwrap_or_default() }</pre>
            if !props.refused.is_empty() {
                <p class="warning" id="r2-fleet-refused" data-count={props.refused.values().sum::<u64>().to_string()}>{ format!(
                    "refused {} fleet message(s) not sealed with this fleet's secret or untimely ({}): someone else may be sending to this fleet",
                    props.refused.values().sum::<u64>(),
                    props.refused.iter().map(|(k, n)| format!("{k}: {n}")).collect::<Vec<_>>().join(", ")) }</p>
            }
        </section>
    }
}

/// The control view (`?control`, with `&fleet=NAME` for pages on other
/// machines): every tab's figures, and buttons that give every tab the same
/// command at once.
#[function_component(Control)]
pub fn control() -> Html {
    // The secret first: the fleet hook reads it from the address.
    let key = use_memo((), |_| fleet_key_for_control());
    let (heard, fleet) = use_fleet(Callback::noop());
    let button = |command: FleetCommand, label: &'static str| {
        let fleet = fleet.clone();
        let onclick = Callback::from(move |_| {
            fleet.borrow().post(&FleetMessage::Command {
                command,
                id: random_u64(),
                at_ms: js_sys::Date::now(),
            });
        });
        html! { <button id={format!("c-{}", label.to_lowercase())} {onclick}>{ format!("{label} all") }</button> }
    };
    html! {
        <main class="r2">
            <header>
                <h1>{ "r2-stress control" }</h1>
                <p class="tagline">{ "Every r2-stress tab of this browser, started and stopped together." }</p>
            </header>
            <section class="controls">
                <div class="buttons">
                    { button(FleetCommand::Create, "Create") }
                    { button(FleetCommand::Start, "Start") }
                    { button(FleetCommand::Stop, "Stop") }
                    { button(FleetCommand::Delete, "Delete") }
                </div>
            </section>
            <FleetTable reports={heard.reports.clone()} refused={heard.refused.clone()} />
            { match (&*key, fleet_name()) {
                (Err(why), _) => html! { <p class="error" id="r2-fleet-problem">{ why }</p> },
                (Ok(key), Some(name)) => html! {
                    <p class="hint" id="r2-fleet-node">{ format!(
                        "Pages on other machines join with &fleet={name}&key={} (control sentant {}); its messages are not test load, and are sealed with the key.",
                        key.secret(), control_name(&name)) }</p>
                },
                (Ok(_), None) => html! {
                    <p class="hint" id="r2-fleet-node">{ "Tabs of this browser join by themselves; for pages on other machines, open this view with &fleet=NAME." }</p>
                },
            } }
        </main>
    }
}
