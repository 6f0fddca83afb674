//! The motion the `replay` scenario plays: the trace picker of the control
//! page, and where device mode keeps its recordings.
//!
//! [`TracePicker`] loads a trace when the page opens — the URL in `&trace=`
//! (relative to the page), else the shipped `traces/sample.json` — and hands
//! it up through `on_trace` (`None`: core's built-in motion). The user can
//! then pick the sample, a trace recorded in this browser by device mode, a
//! JSON file, or the built-in motion. Its `#r2-trace` element says what is in
//! use (`data-state`: `loading`, `loaded` or `builtin`).

use std::sync::Arc;

use r2_core::scenario::{Trace, TraceError};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{HtmlInputElement, Response};
use yew::prelude::*;

use crate::browser::{js_error_text, query_string};

/// The trace shipped with the page (`static/traces/`), relative to it.
pub const SAMPLE_TRACE_URL: &str = "traces/sample.json";
/// Where device mode keeps its last recording (`localStorage`).
pub const TRACE_STORAGE_KEY: &str = "r2-stress.trace";

/// Why a trace could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TraceLoadError {
    #[error("could not fetch {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("could not read the file: {0}")]
    File(String),
    #[error("no trace has been recorded in this browser")]
    NoneStored,
    #[error(transparent)]
    Trace(#[from] TraceError),
}

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// Keeps `trace` as this browser's last recording (best effort: storage may
/// be full or disabled).
pub fn store_trace(trace: &Trace) {
    if let Some(storage) = local_storage() {
        if storage
            .set_item(TRACE_STORAGE_KEY, &trace.to_json())
            .is_err()
        {
            web_sys::console::warn_1(&"could not keep the recording in local storage".into());
        }
    }
}

/// This browser's last recording, if there is one.
pub fn stored_trace() -> Result<Trace, TraceLoadError> {
    let text = local_storage()
        .and_then(|s| s.get_item(TRACE_STORAGE_KEY).ok().flatten())
        .ok_or(TraceLoadError::NoneStored)?;
    Ok(Trace::from_json(&text)?)
}

/// The text of a promise that resolves to a string (`Response.text()`, `Blob.text()`).
async fn promised_text(promise: js_sys::Promise) -> Result<String, String> {
    JsFuture::from(promise)
        .await
        .map(|v| v.as_string().unwrap_or_default())
        .map_err(|e| js_error_text(&e))
}

/// Fetches and checks the trace at `url`.
pub async fn fetch_trace(url: &str) -> Result<Trace, TraceLoadError> {
    let fetch_error = |reason: String| TraceLoadError::Fetch {
        url: url.to_owned(),
        reason,
    };
    let window = web_sys::window().ok_or_else(|| fetch_error("no window".into()))?;
    let response: Response = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(|e| fetch_error(js_error_text(&e)))?
        .unchecked_into();
    if !response.ok() {
        return Err(TraceLoadError::Status {
            url: url.to_owned(),
            status: response.status(),
        });
    }
    let text = promised_text(
        response
            .text()
            .map_err(|e| fetch_error(js_error_text(&e)))?,
    )
    .await
    .map_err(fetch_error)?;
    Ok(Trace::from_json(&text)?)
}

/// Reads and checks a trace file the user picked.
async fn file_trace(file: web_sys::File) -> Result<Trace, TraceLoadError> {
    let text = promised_text(file.text())
        .await
        .map_err(TraceLoadError::File)?;
    Ok(Trace::from_json(&text)?)
}

/// The `trace` parameter of a query string, if any.
fn trace_param(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, v)| k == "trace" && !v.trim().is_empty())
        .map(|(_, v)| v.trim().to_owned())
}

/// What the picker has.
#[derive(Debug, Clone, PartialEq)]
enum Picked {
    Loading(String),
    Loaded {
        from: String,
        trace: Arc<Trace>,
    },
    /// The built-in motion, and why (if it was not chosen).
    Builtin(Option<String>),
}

#[derive(Properties, PartialEq)]
pub struct TracePickerProps {
    /// The trace `replay` should play (`None`: the built-in motion); called
    /// once when the first load settles, then on every choice.
    pub on_trace: Callback<Option<Arc<Trace>>>,
}

#[function_component(TracePicker)]
pub fn trace_picker(props: &TracePickerProps) -> Html {
    let picked = use_state(|| Picked::Builtin(None));

    // Loads from `load` (labelled `from`), then reports the outcome.
    let settle = {
        let picked = picked.clone();
        let on_trace = props.on_trace.clone();
        Callback::from(
            move |(from, outcome): (String, Result<Trace, TraceLoadError>)| match outcome {
                Ok(trace) => {
                    let trace = Arc::new(trace);
                    on_trace.emit(Some(trace.clone()));
                    picked.set(Picked::Loaded { from, trace });
                }
                Err(e) => {
                    on_trace.emit(None);
                    picked.set(Picked::Builtin(Some(format!("{from}: {e}"))));
                }
            },
        )
    };
    let fetch = {
        let picked = picked.clone();
        let settle = settle.clone();
        Callback::from(move |url: String| {
            picked.set(Picked::Loading(url.clone()));
            let settle = settle.clone();
            spawn_local(async move {
                let outcome = fetch_trace(&url).await;
                settle.emit((url, outcome));
            });
        })
    };
    {
        let fetch = fetch.clone();
        use_effect_with((), move |_| {
            fetch.emit(trace_param(&query_string()).unwrap_or_else(|| SAMPLE_TRACE_URL.to_owned()))
        });
    }

    let on_sample = {
        let fetch = fetch.clone();
        Callback::from(move |_| fetch.emit(SAMPLE_TRACE_URL.to_owned()))
    };
    let on_stored = {
        let settle = settle.clone();
        Callback::from(move |_| {
            settle.emit(("this browser's recording".to_owned(), stored_trace()))
        })
    };
    let on_builtin = {
        let picked = picked.clone();
        let on_trace = props.on_trace.clone();
        Callback::from(move |_| {
            on_trace.emit(None);
            picked.set(Picked::Builtin(None));
        })
    };
    let on_file = {
        let picked = picked.clone();
        Callback::from(move |e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            let Some(file) = input.files().and_then(|files| files.get(0)) else {
                return;
            };
            let name = file.name();
            picked.set(Picked::Loading(name.clone()));
            let settle = settle.clone();
            spawn_local(async move { settle.emit((name, file_trace(file).await)) });
        })
    };

    let (state, summary) = match &*picked {
        Picked::Loading(from) => ("loading", format!("loading {from}…")),
        Picked::Loaded { from, trace } => (
            "loaded",
            format!(
                "{from}: {} readings, {:.1} s",
                trace.events().len(),
                trace.period_ms() / 1000.0
            ),
        ),
        Picked::Builtin(None) => ("builtin", "the built-in motion".to_owned()),
        Picked::Builtin(Some(why)) => ("builtin", format!("the built-in motion ({why})")),
    };
    html! {
        <details class="trace">
            <summary>{ "Replay motion: " }<span id="r2-trace" data-state={state}>{ summary }</span></summary>
            <p>{ "The replay scenario plays this trace on every device, each from its start at its own time offset, through the sensor page's throttle. Record one with a phone in device mode." }</p>
            <div class="buttons">
                <button id="trace-sample" onclick={on_sample}>{ "Sample trace" }</button>
                <button id="trace-stored" onclick={on_stored}>{ "This browser's recording" }</button>
                <button id="trace-builtin" onclick={on_builtin}>{ "Built-in motion" }</button>
                <label>{ "Trace file: " }<input type="file" id="trace-file" accept=".json,application/json" onchange={on_file} /></label>
            </div>
        </details>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_parameter_is_decoded() {
        assert_eq!(
            trace_param("devices=3&trace=traces%2Fmine.json&x=1").as_deref(),
            Some("traces/mine.json")
        );
        assert_eq!(trace_param("trace=&devices=3"), None);
        assert_eq!(trace_param("devices=3"), None);
    }
}
