//! Device mode's requests to the node, as the WebApp's sensor page makes
//! them: join (a free name, `sentantLoad`, `sentantGet`), the two sends per
//! value, `update` on connect, and unloading its own sentant — on "Leave",
//! and best-effort when the page goes away.

use r2_core::graphql::{self, ProtocolError};
use serde_json::{json, Value};
use wasm_bindgen::JsValue;
use web_sys::{Request, RequestInit};

use crate::run::http::{GraphqlHttp, HttpError};

/// How many random names to try before giving up (each clash is a 1 in
/// 36^5 chance, so more than one try means something odd).
const NAME_TRIES: usize = 3;

/// Why device mode could not join.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("the node's answer was not what a Reality2 node sends")]
    Protocol(#[from] ProtocolError),
    #[error("every name tried was taken ({0})")]
    NamesTaken(String),
}

/// A joined device: its sentant's id and name.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    pub id: String,
    pub name: String,
}

/// Picks a name not on the node (from `names`, tried in turn), reports it
/// through `naming`, loads the device template under it and reads it back.
/// Never loads over an existing sentant.
pub async fn join(
    http: &GraphqlHttp,
    mut names: impl FnMut() -> String,
    naming: impl Fn(&str),
) -> Result<Joined, JoinError> {
    let all = http.request(graphql::SENTANT_ALL, &json!({})).await?;
    let existing = graphql::sentant_list(&all)?;
    let mut tried = Vec::new();
    let name = loop {
        let candidate = names();
        if !existing.iter().any(|s| s.name == candidate) {
            break candidate;
        }
        tried.push(candidate);
        if tried.len() == NAME_TRIES {
            return Err(JoinError::NamesTaken(tried.join(", ")));
        }
    };
    naming(&name);
    let loaded = http
        .request(
            graphql::SENTANT_LOAD,
            &graphql::load_variables(&graphql::device_definition(&name)),
        )
        .await?;
    let sentant = graphql::sentant_ref(&loaded, "sentantLoad")?;
    http.request(
        graphql::SENTANT_GET_BY_ID,
        &graphql::id_variables(&sentant.id),
    )
    .await?;
    Ok(Joined {
        id: sentant.id,
        name: sentant.name,
    })
}

/// `sentantSend(id, event, parameters)`.
pub async fn send(
    http: &GraphqlHttp,
    id: &str,
    event: &str,
    parameters: Value,
) -> Result<(), HttpError> {
    http.request(
        graphql::SENTANT_SEND,
        &graphql::send_variables(id, event, &parameters),
    )
    .await
    .map(drop)
}

/// The sensor page's send of one value: `set_sensor {sensor: v}` then
/// `update {}`, both fired at once (the caller spawns each).
pub fn value_sends(value: i64) -> [(&'static str, Value); 2] {
    [
        ("set_sensor", json!({ "sensor": value })),
        ("update", json!({})),
    ]
}

/// Whether a failed request means the node no longer knows the sentant.
pub fn is_gone(err: &HttpError) -> bool {
    matches!(err, HttpError::Graphql(message) if message == "id")
}

/// `sentantUnload(id)`: only ever this phone's own sentant.
pub async fn unload(http: &GraphqlHttp, id: &str) -> Result<(), HttpError> {
    http.request(graphql::SENTANT_UNLOAD, &graphql::id_variables(id))
        .await
        .map(drop)
}

/// `sentantUnload(id)` as a `keepalive` fetch, which the browser completes
/// even as the page goes away (`pagehide`). Best effort: nothing waits for
/// the answer.
pub fn unload_as_page_goes(http: &GraphqlHttp, id: &str) {
    let body = graphql::webapp_body(graphql::SENTANT_UNLOAD, &graphql::id_variables(id));
    let init = RequestInit::new();
    init.set_method("POST");
    // `keepalive` is not in web-sys's `RequestInit`; it is a plain field.
    if js_sys::Reflect::set(&init, &JsValue::from_str("keepalive"), &JsValue::TRUE).is_err() {
        return;
    }
    init.set_body(&JsValue::from_str(&body));
    let Ok(request) = Request::new_with_str_and_init(http.url(), &init) else {
        return;
    };
    if request
        .headers()
        .set("Content-Type", "application/json")
        .is_err()
    {
        return;
    }
    if let Some(window) = web_sys::window() {
        // The promise is dropped: the page is going away.
        let _ = window.fetch_with_request(&request);
    }
}
