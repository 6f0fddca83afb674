//! Thin wrappers over the browser APIs the page uses: the monotonic clock,
//! the page's address, random numbers for tab tags.

use wasm_bindgen::JsValue;

/// Milliseconds since the page started (`performance.now()`), monotonic.
pub fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

/// The page's origin, e.g. `http://127.0.0.1:4006`.
pub fn origin() -> String {
    web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default()
}

/// The query string of the page's address, without the leading `?`.
pub fn query_string() -> String {
    web_sys::window()
        .and_then(|w| w.location().search().ok())
        .map(|s| s.trim_start_matches('?').to_owned())
        .unwrap_or_default()
}

/// A random 64-bit number from `crypto.getRandomValues`, falling back on the clock.
pub fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    let filled = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .map(|c| c.get_random_values_with_u8_array(&mut buf).is_ok())
        .unwrap_or(false);
    if filled {
        u64::from_le_bytes(buf)
    } else {
        (js_sys::Date::now() * 1000.0) as u64 ^ (now_ms() * 1e6) as u64
    }
}

/// The text of a JavaScript error value, for messages shown to the user.
pub fn js_error_text(err: &JsValue) -> String {
    if let Some(e) = err.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    err.as_string().unwrap_or_else(|| format!("{err:?}"))
}

use wasm_bindgen::JsCast;
