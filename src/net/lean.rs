//! The lean request path (`http=lean`, issue 12): the same request on the
//! wire as `gloo-net`'s in [`super::http`], with less made for each one.
//!
//! - one `Headers` (`Content-Type: application/json`, `Accept: */*`) shared
//!   by every request: `fetch` copies it;
//! - no `Request` object: `fetch(url, init)`, the body handed over as the
//!   one string it was serialised to;
//! - no timer and no closure of its own per request: the requests started
//!   within [`BATCH_MS`] of each other share one `AbortSignal.timeout`, the
//!   browser's own timer, which fires between the timeout and the timeout
//!   plus [`BATCH_MS`] after each;
//! - the answer read once, as text, for the caller to parse once.

use std::cell::RefCell;

use js_sys::Promise;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Headers, RequestInit, Response};

use crate::browser::{fetch, js_error_text, now_ms};

/// Requests started within this many ms of the first share its timeout.
pub const BATCH_MS: u32 = 100;

/// The signal requests started now share, and what it was made for.
struct Batch {
    opened_ms: f64,
    timeout_ms: u32,
    signal: AbortSignal,
}

thread_local! {
    static HEADERS: Option<Headers> = shared_headers();
    static BATCH: RefCell<Option<Batch>> = const { RefCell::new(None) };
}

fn shared_headers() -> Option<Headers> {
    let headers = Headers::new().ok()?;
    headers.set("Content-Type", "application/json").ok()?;
    headers.set("Accept", "*/*").ok()?;
    Some(headers)
}

/// The timeout signal of the batch a request started now belongs to.
fn batch_signal(timeout_ms: u32) -> AbortSignal {
    let now = now_ms();
    BATCH.with(|batch| {
        let mut batch = batch.borrow_mut();
        match &*batch {
            Some(b) if b.timeout_ms == timeout_ms && now - b.opened_ms < f64::from(BATCH_MS) => {
                b.signal.clone()
            }
            _ => {
                let signal = AbortSignal::timeout_with_u32(timeout_ms.saturating_add(BATCH_MS));
                *batch = Some(Batch {
                    opened_ms: now,
                    timeout_ms,
                    signal: signal.clone(),
                });
                signal
            }
        }
    })
}

/// An answer: its status and its body's text.
pub struct Answer {
    pub status: u16,
    pub ok: bool,
    pub text: String,
}

/// Why there is no answer.
pub enum Failure {
    /// The batch's timeout fired first.
    TimedOut,
    /// The browser could not make the request (its message).
    Network(String),
}

/// `POST url` with `body`, referred by `referrer`, abandoned after about
/// `timeout_ms` (`None`: never).
pub async fn post(
    url: &str,
    referrer: Option<&str>,
    timeout_ms: Option<u32>,
    body: &str,
) -> Result<Answer, Failure> {
    let init = RequestInit::new();
    init.set_method("POST");
    HEADERS.with(|headers| {
        if let Some(headers) = headers {
            init.set_headers(headers);
        }
    });
    init.set_body(&JsValue::from_str(body));
    if let Some(page) = referrer {
        init.set_referrer(page);
    }
    let signal = timeout_ms.map(batch_signal);
    init.set_signal(signal.as_ref());
    let failed = |e: JsValue| match &signal {
        Some(s) if s.aborted() => Failure::TimedOut,
        _ => Failure::Network(js_error_text(&e)),
    };
    let response: Response = JsFuture::from(fetch(url, &init))
        .await
        .map_err(failed)?
        .unchecked_into();
    let text: Promise = response.text().map_err(failed)?;
    let text = JsFuture::from(text).await.map_err(failed)?;
    Ok(Answer {
        status: response.status(),
        ok: response.ok(),
        text: text.as_string().unwrap_or_default(),
    })
}
