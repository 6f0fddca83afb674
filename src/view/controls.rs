//! The control panel: the run's settings and the Create / Start / Stop / Delete buttons.

use std::collections::BTreeMap;

use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::app::Command;
use crate::run::Phase;
use crate::state::FIELDS;

#[derive(Properties, PartialEq)]
pub struct ControlsProps {
    pub fields: BTreeMap<String, String>,
    pub error: Option<String>,
    pub phase: Option<Phase>,
    pub on_edit: Callback<(String, String)>,
    pub on_command: Callback<Command>,
}

/// Choices for the fields that take one of a few words.
fn choices(field: &str) -> Option<&'static [&'static str]> {
    match field {
        "scenario" => Some(&["sweep", "rotate", "taps", "replay"]),
        "sockets" => Some(&["per-device", "shared", "none"]),
        "profile" => Some(r2_core::profile::Profile::WORDS),
        "reconnect" => Some(r2_core::profile::Reconnect::WORDS),
        _ => None,
    }
}

/// The form's run, refused before it starts when one browser cannot hold its
/// websockets (with the way out).
fn socket_cap_warning(fields: &BTreeMap<String, String>) -> Option<String> {
    let state = crate::state::AppState {
        fields: fields.clone(),
        ..Default::default()
    };
    let config = state.config().ok()?;
    config.load().check_socket_cap().err().map(|e| e.to_string())
}

#[function_component(Controls)]
pub fn controls(props: &ControlsProps) -> Html {
    let field = |name: &'static str, label: &'static str| {
        let value = props.fields.get(name).cloned().unwrap_or_default();
        let on_edit = props.on_edit.clone();
        let oninput = Callback::from(move |e: InputEvent| {
            let input: HtmlInputElement = e.target_unchecked_into();
            on_edit.emit((name.to_owned(), input.value()));
        });
        let input = match choices(name) {
            Some(options) => {
                let on_edit = props.on_edit.clone();
                let onchange = Callback::from(move |e: Event| {
                    let select: web_sys::HtmlSelectElement = e.target_unchecked_into();
                    on_edit.emit((name.to_owned(), select.value()));
                });
                html! { <select id={format!("f-{name}")} {onchange}>
                    { for options.iter().map(|o| html! { <option value={*o} selected={value == *o}>{ *o }</option> }) }
                </select> }
            }
            None => html! { <input id={format!("f-{name}")} value={value} {oninput} /> },
        };
        html! { <label>{ label }{ input }</label> }
    };
    let phase = props.phase.clone();
    let can = |command: Command| match (&phase, command) {
        (None | Some(Phase::Deleted | Phase::Failed(_)), Command::Create) => props.error.is_none(),
        (Some(Phase::Ready | Phase::Stopped), Command::Start) => true,
        (Some(Phase::Running { .. }), Command::Stop) => true,
        (Some(Phase::Ready | Phase::Stopped), Command::Delete) => true,
        _ => false,
    };
    let button = |command: Command, label: &'static str| {
        let on_command = props.on_command.clone();
        html! { <button id={format!("b-{}", label.to_lowercase())} disabled={!can(command)}
        onclick={Callback::from(move |_| on_command.emit(command))}>{ label }</button> }
    };
    html! {
        <section class="controls" aria-label="run settings">
            <div class="fields">{ for FIELDS.iter().map(|(name, label)| field(name, label)) }</div>
            if let Some(error) = &props.error { <p class="error" id="r2-form-error">{ error }</p> }
            if let Some(warning) = socket_cap_warning(&props.fields) { <p class="warning" id="r2-form-warning">{ warning }</p> }
            <div class="buttons">
                { button(Command::Create, "Create") }
                { button(Command::Start, "Start") }
                { button(Command::Stop, "Stop") }
                { button(Command::Delete, "Delete") }
            </div>
        </section>
    }
}
