//! Device mode (`?device`): this browser — a real phone — becomes one device
//! of the run, as the IoT WebApp's sensor page is: it joins under a name
//! with the run's prefix (`?device&run=PREFIX&node=URL`), holds its own
//! websocket subscription, and sends `floor(alpha)` of its
//! `deviceorientation` events through the same 200 ms change-only throttle,
//! as `set_sensor` + `update`. Without a sensor, the WebApp's five colour
//! buttons send instead. It can record its orientation trace for the
//! `replay` scenario, and "Leave" unloads its own sentant (and nothing else).
//!
//! What it did is kept as JSON in `<pre id="r2-phone">` for tests and scripts:
//! `{ "state", "id", "name", "sent", "signals", "message", ... }`.
//!
//! # Layout
//!
//! - [`state`]: the pure [`state::PhoneState`] reducer (throttle included).
//! - [`hooks`]: the effects, each with its cleanup.
//! - [`node`]: the requests to the node.

pub mod hooks;
pub mod node;
pub mod state;

use std::rc::Rc;

use r2_core::colour::Colour;
use wasm_bindgen_futures::spawn_local;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::browser::{download, origin, query_string};
use crate::net::Client;
use state::{Link, PhoneAction, PhoneState, Recording, Settings, COLOUR_BUTTONS};

/// The file name a downloaded trace gets.
const TRACE_FILE: &str = "r2-stress-trace.json";

const TILE_STYLE: &str = "display:flex;align-items:center;justify-content:center;min-height:38vh;border-radius:12px;font-size:min(28vw,9rem);font-weight:700;color:#fff;text-shadow:0 2px 6px rgba(0,0,0,.35);margin:.8rem 0;";
const BUTTON_ROW_STYLE: &str = "display:flex;flex-wrap:wrap;gap:.5rem;margin:.6rem 0;";

#[function_component(Phone)]
pub fn phone() -> Html {
    let settings = use_memo((), |_| Settings::from_query(&query_string(), &origin()));
    let http = use_memo((), {
        let settings = settings.clone();
        move |_| Client::new(&settings.node, Some(settings.timeout_ms))
    });
    let state = use_reducer(|| PhoneState::new(settings.sensor_wait_ms));
    let dispatch = state.dispatcher();

    hooks::use_environment(dispatch.clone());
    hooks::use_join(
        state.join_attempt,
        http.clone(),
        settings.clone(),
        dispatch.clone(),
    );
    hooks::use_subscription(
        settings.node.clone(),
        state.live_id().map(str::to_owned),
        state.socket_epoch,
        http.clone(),
        dispatch.clone(),
    );
    hooks::use_sends(state.clone(), http.clone());
    hooks::use_orientation(
        state.sensor.is_listening(),
        state.sensor_wait_ms,
        dispatch.clone(),
    );
    hooks::use_unload_on_pagehide(state.live_id().map(str::to_owned), http.clone());
    hooks::use_store_recording(state.recordings, &state.recording);

    let value = state.shown_value();
    let tile_colour = value.map_or("#767676", |v| Colour::from(v).css());
    html! {
        <main class="r2 phone">
            <header>
                <h1>{ "r2-stress device mode" }</h1>
                <p class="tagline">
                    { state.name.clone().unwrap_or_else(|| "choosing a name…".into()) }
                    { format!(" · {}", link_words(&state.link)) }
                </p>
            </header>
            if let Some(problem) = &settings.problem {
                <p class="warning">{ format!("Some settings in the link were not usable ({problem}); defaults are used.") }</p>
            }
            <div id="phone-tile" style={format!("{TILE_STYLE}background:{tile_colour}")}>
                { value.map_or_else(|| "·".to_owned(), |v| v.to_string()) }
            </div>
            if let Some(message) = state.message() {
                <p class={if state.is_trouble() { "error" } else { "note" }} id="r2-phone-message" role="status">{ message }</p>
            }
            { motion_controls(&state, &dispatch) }
            { colour_buttons(&state, &dispatch) }
            { recording_controls(&state, &dispatch) }
            { link_controls(&state, &dispatch, &http) }
            <details>
                <summary>{ "What this device did" }</summary>
                <pre id="r2-phone">{ state.report().to_string() }</pre>
            </details>
        </main>
    }
}

fn link_words(link: &Link) -> &'static str {
    match link {
        Link::Joining => "joining the node…",
        Link::Live { .. } => "connected",
        Link::Leaving { .. } => "leaving…",
        Link::Left => "left the node",
        Link::Failed(_) => "not connected",
    }
}

/// "Enable motion" (iOS asks from a tap) and the "no sensor" switch.
fn motion_controls(state: &PhoneState, dispatch: &UseReducerDispatcher<PhoneState>) -> Html {
    let enable = {
        let dispatch = dispatch.clone();
        Callback::from(move |_| hooks::ask_permission(dispatch.clone()))
    };
    let switch = {
        let dispatch = dispatch.clone();
        Callback::from(move |e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            dispatch.dispatch(PhoneAction::ShowButtons(input.checked()));
        })
    };
    html! {
        <section class="controls" aria-label="motion">
            if state.sensor.wants_tap() {
                <button id="phone-enable" onclick={enable}>{ "Enable motion" }</button>
            }
            <label style="display:flex;flex-direction:row;align-items:center;gap:.5rem">
                <input type="checkbox" id="phone-no-sensor" checked={state.buttons_shown()} style="width:auto"
                       disabled={state.sensor.is_unavailable()} onchange={switch} />
                { " No sensor: use the colour buttons" }
            </label>
        </section>
    }
}

/// The WebApp's five colour buttons.
fn colour_buttons(state: &PhoneState, dispatch: &UseReducerDispatcher<PhoneState>) -> Html {
    if !state.buttons_shown() {
        return html! {};
    }
    let live = state.live_id().is_some();
    html! {
        <section aria-label="colour buttons" style={BUTTON_ROW_STYLE}>
            { for COLOUR_BUTTONS.iter().map(|&value| {
                let colour = Colour::from(value);
                let dispatch = dispatch.clone();
                let onclick = Callback::from(move |_| dispatch.dispatch(PhoneAction::Tap(value)));
                html! {
                    <button id={format!("colour-{value}")} disabled={!live} {onclick}
                            style={format!("background:{};color:#fff;min-width:4.5rem;min-height:3rem", colour.css())}>
                        { colour.as_str() }
                    </button>
                }
            }) }
        </section>
    }
}

/// Record / stop, and the saved trace's download.
fn recording_controls(state: &PhoneState, dispatch: &UseReducerDispatcher<PhoneState>) -> Html {
    let act = |action: PhoneAction| {
        let dispatch = dispatch.clone();
        Callback::from(move |_| dispatch.dispatch(action.clone()))
    };
    let (button, note) = match &state.recording {
        Recording::On { .. } => (
            html! { <button id="phone-record-stop" onclick={act(PhoneAction::RecordStop)}>{ "Stop recording" }</button> },
            format!("recording: {} readings", state.recorded()),
        ),
        other => (
            html! { <button id="phone-record" onclick={act(PhoneAction::RecordStart)}>{ "Record motion" }</button> },
            match other {
                Recording::Saved(trace) => format!(
                    "last recording: {} readings, {:.1} s, saved in this browser",
                    trace.events().len(),
                    trace.period_ms() / 1000.0
                ),
                Recording::Failed(why) => why.clone(),
                _ => "record this phone's motion for the replay scenario".to_owned(),
            },
        ),
    };
    let download_button = match &state.recording {
        Recording::Saved(trace) => {
            let json = trace.to_json();
            let onclick = Callback::from(move |_| {
                if let Err(why) = download(TRACE_FILE, "application/json", &json) {
                    web_sys::console::warn_1(&format!("download failed: {why}").into());
                }
            });
            html! { <button id="phone-download" {onclick}>{ "Download trace" }</button> }
        }
        _ => html! {},
    };
    html! {
        <section aria-label="recording" style={BUTTON_ROW_STYLE}>
            { button }
            { download_button }
            <span id="phone-record-note">{ note }</span>
        </section>
    }
}

/// "Leave" (unloads this phone's sentant, only it) or "Join again".
fn link_controls(
    state: &PhoneState,
    dispatch: &UseReducerDispatcher<PhoneState>,
    http: &Rc<Client>,
) -> Html {
    match &state.link {
        Link::Live { id } => {
            let (id, http, dispatch) = (id.clone(), http.clone(), dispatch.clone());
            let onclick = Callback::from(move |_| {
                dispatch.dispatch(PhoneAction::Leave);
                let (id, http, dispatch) = (id.clone(), http.clone(), dispatch.clone());
                spawn_local(async move {
                    dispatch.dispatch(match node::unload(&http, &id).await {
                        Ok(()) => PhoneAction::Left,
                        Err(err) if err.is_gone() => PhoneAction::Left,
                        Err(err) => PhoneAction::LeaveFailed(err.to_string()),
                    });
                });
            });
            html! { <div style={BUTTON_ROW_STYLE}><button id="phone-leave" {onclick}>{ "Leave" }</button></div> }
        }
        Link::Left | Link::Failed(_) => {
            let dispatch = dispatch.clone();
            let onclick = Callback::from(move |_| dispatch.dispatch(PhoneAction::Rejoin));
            html! { <div style={BUTTON_ROW_STYLE}><button id="phone-rejoin" {onclick}>{ "Join again" }</button></div> }
        }
        Link::Joining | Link::Leaving { .. } => html! {},
    }
}
