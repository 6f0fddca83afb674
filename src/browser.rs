//! Thin wrappers over the browser APIs the page uses: the monotonic clock,
//! the page's address, random numbers for tab tags.

use wasm_bindgen::JsValue;

/// The global scope's `performance`, `location` and `crypto`, in the page
/// (`Window`) and in the run engine's worker (`WorkerGlobalScope`) alike.
mod global {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen]
    extern "C" {
        pub type Scope;
        #[wasm_bindgen(method, getter, structural)]
        pub fn performance(this: &Scope) -> Option<web_sys::Performance>;
        #[wasm_bindgen(method, getter, structural)]
        pub fn crypto(this: &Scope) -> Option<web_sys::Crypto>;
        #[wasm_bindgen(method, getter, structural)]
        pub fn location(this: &Scope) -> Option<Location>;
        /// `Location` or `WorkerLocation`: both have `origin`, `href` and `search`.
        pub type Location;
        #[wasm_bindgen(method, getter, structural)]
        pub fn origin(this: &Location) -> String;
        #[wasm_bindgen(method, getter, structural)]
        pub fn href(this: &Location) -> String;
        #[wasm_bindgen(method, getter, structural)]
        pub fn search(this: &Location) -> String;
        #[wasm_bindgen(method, structural, js_name = fetch)]
        pub fn fetch_with_init(
            this: &Scope,
            url: &str,
            init: &web_sys::RequestInit,
        ) -> js_sys::Promise;
        #[wasm_bindgen(method, getter, structural)]
        pub fn navigator(this: &Scope) -> Option<Navigator>;
        /// `Navigator` or `WorkerNavigator`.
        pub type Navigator;
        #[wasm_bindgen(method, getter, structural, js_name = hardwareConcurrency)]
        pub fn hardware_concurrency(this: &Navigator) -> Option<f64>;
    }

    thread_local! {
        static PERFORMANCE: Option<web_sys::Performance> = scope().performance();
    }

    pub fn scope() -> Scope {
        js_sys::global().unchecked_into()
    }

    pub fn now_ms() -> f64 {
        PERFORMANCE.with(|p| p.as_ref().map_or(0.0, |p| p.now()))
    }
}

/// Milliseconds since the page (or the engine's worker) started
/// (`performance.now()`), monotonic.
pub fn now_ms() -> f64 {
    global::now_ms()
}

/// The origin of the page (or of the worker's script, the same), e.g.
/// `http://127.0.0.1:4006`.
pub fn origin() -> String {
    global::scope()
        .location()
        .map(|l| l.origin())
        .unwrap_or_default()
}

/// The machine's logical cores as the browser reports them
/// (`navigator.hardwareConcurrency`; 1 when it does not say).
pub fn hardware_concurrency() -> u32 {
    global::scope()
        .navigator()
        .and_then(|n| n.hardware_concurrency())
        .map_or(1, |n| n.max(1.0) as u32)
}

/// `fetch(url, init)` in the global scope (page or worker).
pub fn fetch(url: &str, init: &web_sys::RequestInit) -> js_sys::Promise {
    global::scope().fetch_with_init(url, init)
}

/// The page's full address (the referrer its requests carry).
pub fn href() -> String {
    global::scope()
        .location()
        .map(|l| l.href())
        .unwrap_or_default()
}

/// The query string of the page's address, without the leading `?`.
pub fn query_string() -> String {
    global::scope()
        .location()
        .map(|l| l.search().trim_start_matches('?').to_owned())
        .unwrap_or_default()
}

/// A random 64-bit number from `crypto.getRandomValues`, falling back on the clock.
pub fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    let filled = global::scope()
        .crypto()
        .map(|c| c.get_random_values_with_u8_array(&mut buf).is_ok())
        .unwrap_or(false);
    if filled {
        u64::from_le_bytes(buf)
    } else {
        (js_sys::Date::now() * 1000.0) as u64 ^ (now_ms() * 1e6) as u64
    }
}

/// Whether the page is hidden now (another tab in front, the window
/// minimised or covered): the browser then throttles its timers.
pub fn is_hidden() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .is_some_and(|d| d.hidden())
}

/// Calls `on_change(hidden)` at every `visibilitychange` of the page, until
/// the returned listener is dropped.
pub fn on_visibility_change(
    on_change: impl Fn(bool) + 'static,
) -> Option<gloo_events::EventListener> {
    let document = web_sys::window()?.document()?;
    Some(gloo_events::EventListener::new(
        &document,
        "visibilitychange",
        move |_| on_change(is_hidden()),
    ))
}

/// The text of a JavaScript error value, for messages shown to the user.
pub fn js_error_text(err: &JsValue) -> String {
    if let Some(e) = err.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    err.as_string().unwrap_or_else(|| format!("{err:?}"))
}

use wasm_bindgen::JsCast;

/// The page as it stands, as one self-contained HTML file: its styles
/// inlined, its rendered body (charts included), no scripts.
pub fn page_as_html(title: &str) -> String {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return String::new();
    };
    let mut css = String::new();
    let sheets = document.style_sheets();
    for i in 0..sheets.length() {
        let Some(sheet) = sheets
            .item(i)
            .and_then(|s| s.dyn_into::<web_sys::CssStyleSheet>().ok())
        else {
            continue;
        };
        let Ok(rules) = sheet.css_rules() else {
            continue;
        };
        for j in 0..rules.length() {
            if let Some(rule) = rules.item(j) {
                css.push_str(&rule.css_text());
                css.push('\n');
            }
        }
    }
    let body = document.body().map(|b| b.inner_html()).unwrap_or_default();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>\n{css}</style></head>\n<body>{body}</body></html>\n",
        title.replace('<', "&lt;")
    )
}

/// Offers `text` as a file download named `filename`.
pub fn download(filename: &str, mime: &str, text: &str) -> Result<(), String> {
    let parts = js_sys::Array::of1(&JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)
        .map_err(|e| js_error_text(&e))?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|e| js_error_text(&e))?;
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let anchor: web_sys::HtmlAnchorElement = document
        .create_element("a")
        .map_err(|e| js_error_text(&e))?
        .unchecked_into();
    anchor.set_href(&url);
    anchor.set_download(filename);
    anchor.click();
    web_sys::Url::revoke_object_url(&url).map_err(|e| js_error_text(&e))
}
