//! Tabs as one fleet: every tab reports its figures once a second, any tab
//! shows the per-tab rows and totals, and the control view (`?control`)
//! starts and stops them all. Tabs of one browser meet on a
//! `BroadcastChannel`; with `&fleet=NAME`, pages on any machine also meet
//! through the node, on the control sentant `r2s-control-NAME` ([`NodeFleet`]).
//! Its traffic is counted apart from the test load.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use gloo_timers::callback::Interval;
use r2_core::fleet::{
    control_definition, control_name, is_fresh, totals, FleetCommand, FleetMessage, TabReport,
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

/// The open channel and its message handler; dropping it closes both.
pub struct FleetChannel {
    channel: BroadcastChannel,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
}

impl FleetChannel {
    /// Joins the fleet; every message from another tab goes to `on_message`.
    pub fn open(on_message: impl Fn(FleetMessage) + 'static) -> Option<FleetChannel> {
        let channel = BroadcastChannel::new(CHANNEL).ok()?;
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            if let Some(message) = ev
                .data()
                .as_string()
                .and_then(|t| FleetMessage::from_json(&t))
            {
                on_message(message);
            }
        });
        channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        Some(FleetChannel {
            channel,
            _on_message: on_message,
        })
    }

    /// Sends `message` to every other tab.
    pub fn post(&self, message: &FleetMessage) {
        let _ = self
            .channel
            .post_message(&JsValue::from_str(&message.to_json()));
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
    /// subscribes to it; every message goes to `on_message`.
    pub async fn join(
        node: &str,
        fleet: &str,
        on_message: Rc<dyn Fn(FleetMessage)>,
    ) -> Result<NodeFleet, NetError> {
        let http = Client::new(node, Some(FLEET_TIMEOUT_MS));
        let all = http
            .request(&Request::SentantAll {
                fields: Fields::Short,
            })
            .await?;
        let name = control_name(fleet);
        let id = match graphql::sentant_list(&all)?
            .into_iter()
            .find(|s| s.name == name)
        {
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
                if let Some(message) = FleetMessage::from_value(&signal.parameters) {
                    on_message(message);
                }
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

    /// Sends `message` to every page of the fleet, through the node.
    pub fn post(&self, message: &FleetMessage) {
        let (http, id, parameters) = (self.http.clone(), self.id.clone(), message.to_value());
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

/// This page's ways to the rest of the fleet.
#[derive(Default)]
pub struct Fleet {
    channel: Option<FleetChannel>,
    node: Option<NodeFleet>,
}

impl Fleet {
    /// Sends `message` to the other tabs of this browser and, with a fleet
    /// name, to every page of the fleet through the node.
    pub fn post(&self, message: &FleetMessage) {
        if let Some(channel) = &self.channel {
            channel.post(message);
        }
        if let Some(node) = &self.node {
            node.post(message);
        }
    }

    /// The messages this page sent through the node.
    pub fn node_messages(&self) -> Option<u64> {
        self.node.as_ref().map(|n| n.posted.get())
    }
}

/// The fleet name from the page's URL (`&fleet=NAME`), if any.
pub fn fleet_name() -> Option<String> {
    form_urlencoded::parse(query_string().as_bytes())
        .find(|(k, v)| k == "fleet" && !v.is_empty())
        .map(|(_, v)| v.into_owned())
}

/// The node the fleet meets on: `&node=` or the page's origin.
fn fleet_node() -> String {
    form_urlencoded::parse(query_string().as_bytes())
        .find(|(k, v)| k == "node" && !v.is_empty())
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(origin)
}

/// The other tabs' latest reports, by tab.
pub type Reports = BTreeMap<String, TabReport>;

/// Joins the fleet for this component's lifetime: keeps the other tabs'
/// reports (refreshed once a second), hands each command to `on_command`
/// once, and returns the fleet for posting.
#[hook]
pub fn use_fleet(
    on_command: Callback<FleetCommand>,
) -> (UseStateHandle<Reports>, Rc<RefCell<Fleet>>) {
    let reports = use_state(Reports::new);
    let fleet: Rc<RefCell<Fleet>> = use_mut_ref(Fleet::default);
    {
        let (reports, fleet) = (reports.clone(), fleet.clone());
        use_effect_with((), move |_| {
            let received: Rc<RefCell<Reports>> = Rc::default();
            let seen: Rc<RefCell<BTreeSet<u64>>> = Rc::default();
            let inbox = received.clone();
            let on_message: Rc<dyn Fn(FleetMessage)> = Rc::new(move |message| match message {
                FleetMessage::Report(report) => {
                    inbox.borrow_mut().insert(report.tab.clone(), report);
                }
                FleetMessage::Command { command, id } => {
                    if seen.borrow_mut().insert(id) {
                        on_command.emit(command);
                    }
                }
            });
            fleet.borrow_mut().channel = FleetChannel::open({
                let on_message = on_message.clone();
                move |message| on_message(message)
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
            let refresh = Interval::new(1000, move || {
                let now = js_sys::Date::now();
                received.borrow_mut().retain(|_, r| is_fresh(r, now));
                reports.set(received.borrow().clone());
            });
            move || {
                drop(refresh);
                *fleet.borrow_mut() = Fleet::default();
            }
        });
    }
    (reports, fleet)
}

#[derive(Properties, PartialEq)]
pub struct FleetTableProps {
    pub reports: Reports,
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
        </section>
    }
}

/// The control view (`?control`, with `&fleet=NAME` for pages on other
/// machines): every tab's figures, and buttons that give every tab the same
/// command at once.
#[function_component(Control)]
pub fn control() -> Html {
    let (reports, fleet) = use_fleet(Callback::noop());
    let button = |command: FleetCommand, label: &'static str| {
        let fleet = fleet.clone();
        let onclick = Callback::from(move |_| {
            fleet.borrow().post(&FleetMessage::Command {
                command,
                id: random_u64(),
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
            <FleetTable reports={(*reports).clone()} />
            if let Some(name) = fleet_name() {
                <p class="hint" id="r2-fleet-node">{ format!(
                    "Pages on other machines join with &fleet={name} (control sentant {}); its messages are not test load.",
                    control_name(&name)) }</p>
            }
        </main>
    }
}
