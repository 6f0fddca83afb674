//! Tabs of one browser as one fleet, over a `BroadcastChannel`: every tab
//! reports its figures once a second, any tab shows the per-tab rows and
//! totals, and the control view (`?control`) starts and stops them all.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use gloo_timers::callback::Interval;
use r2_core::fleet::{is_fresh, totals, FleetCommand, FleetMessage, TabReport};
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
            if let Some(message) = ev.data().as_string().and_then(|t| FleetMessage::from_json(&t)) {
                on_message(message);
            }
        });
        channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        Some(FleetChannel { channel, _on_message: on_message })
    }

    /// Sends `message` to every other tab.
    pub fn post(&self, message: &FleetMessage) {
        let _ = self.channel.post_message(&JsValue::from_str(&message.to_json()));
    }
}

impl Drop for FleetChannel {
    fn drop(&mut self) {
        self.channel.set_onmessage(None);
        self.channel.close();
    }
}

/// The other tabs' latest reports, by tab.
pub type Reports = BTreeMap<String, TabReport>;

/// Joins the fleet for this component's lifetime: keeps the other tabs'
/// reports (refreshed once a second), hands commands to `on_command`, and
/// returns the channel for posting.
#[hook]
pub fn use_fleet(on_command: Callback<FleetCommand>) -> (UseStateHandle<Reports>, Rc<RefCell<Option<FleetChannel>>>) {
    let reports = use_state(Reports::new);
    let channel: Rc<RefCell<Option<FleetChannel>>> = use_mut_ref(|| None);
    {
        let (reports, channel) = (reports.clone(), channel.clone());
        use_effect_with((), move |_| {
            let received: Rc<RefCell<Reports>> = Rc::default();
            let inbox = received.clone();
            *channel.borrow_mut() = FleetChannel::open(move |message| match message {
                FleetMessage::Report(report) => {
                    inbox.borrow_mut().insert(report.tab.clone(), report);
                }
                FleetMessage::Command { command } => on_command.emit(command),
            });
            let refresh = Interval::new(1000, move || {
                let now = js_sys::Date::now();
                received.borrow_mut().retain(|_, r| is_fresh(r, now));
                reports.set(received.borrow().clone());
            });
            move || {
                drop(refresh);
                channel.borrow_mut().take();
            }
        });
    }
    (reports, channel)
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
        </tr> }
    };
    html! {
        <section class="fleet" aria-label="all tabs">
            <h2>{ format!("All tabs ({})", rows.len()) }</h2>
            <table>
                <tr><th>{ "tab" }</th><th>{ "phase" }</th><th>{ "live" }</th><th>{ "sockets" }</th><th>{ "sends ok" }</th>
                    <th>{ "failed" }</th><th>{ "signals" }</th><th>{ "errors" }</th><th>{ "sends/s" }</th></tr>
                { for rows.iter().map(|r| row(r, None)) }
                { row(&total, Some("r2-fleet-total")) }
            </table>
            <pre id="r2-fleet" hidden=true>{ serde_json::to_string(&total).unwrap_or_default() }</pre>
        </section>
    }
}

/// The control view (`?control`): every tab's figures, and buttons that
/// give every tab the same command at once.
#[function_component(Control)]
pub fn control() -> Html {
    let (reports, channel) = use_fleet(Callback::noop());
    let button = |command: FleetCommand, label: &'static str| {
        let channel = channel.clone();
        let onclick = Callback::from(move |_| {
            if let Some(channel) = channel.borrow().as_ref() {
                channel.post(&FleetMessage::Command { command });
            }
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
        </main>
    }
}
