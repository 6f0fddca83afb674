//! What a page put on the wire, as Chromium's own network log saw it, and a
//! comparison of two such traces.
//!
//! [`WireTrace`] has the form of the project's recorded real phone
//! (`webapp-phone-trace.json`): `asset`, `http` (GraphQL POSTs with their
//! query, `variables` text and headers), `ws_open`, `ws_send`, `ws_recv` and
//! `ws_close` events, `t_ms` from the first request, sockets named `s1`, `s2`,
//! ... in the order they opened. [`NetworkLog`] records one from a tab's
//! DevTools `Network.*` events; [`compare`] lists every way a trace differs
//! from a reference in what matters for fidelity — the same operations in the
//! same order (requests fired together may swap), the same variables' keys,
//! query texts and headers, as many sockets opened and closed, the same frames
//! per socket modulo ids and refs, and sends that keep the throttle's rule.
//!
//! # Layout
//!
//! - [`WireEvent`], [`WireTrace`]: the trace and its JSON form.
//! - [`NetworkLog`]: the recorder over a page's CDP events.
//! - [`compare`] and its helpers: the differences, as plain sentences.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::cdp::{AbortOnDrop, Event};

/// Requests of the reference fired within this many ms of each other may
/// appear in either order (the browser starts them in the same task).
pub const SAME_TICK_MS: f64 = 15.0;
/// The sensor page's throttle: two value sends at least this far apart (ms).
pub const THROTTLE_MS: f64 = 200.0;
/// The slack on it: a recorded request's time is when the browser's network
/// events saw it, not when the page sent it, and on a loaded machine the two
/// differ by as much as requests fired in one task ([`SAME_TICK_MS`]; a run
/// of the whole suite on 2 cores once recorded two sends 192 ms apart).
const THROTTLE_SLACK_MS: f64 = SAME_TICK_MS;

/// One thing on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireEvent {
    pub t_ms: f64,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub op_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<HashMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<String>,
}

impl WireEvent {
    fn new(t_ms: f64, kind: &str) -> WireEvent {
        WireEvent {
            t_ms,
            kind: kind.to_owned(),
            path: None,
            bytes: None,
            method: None,
            operation: None,
            op_type: None,
            query: None,
            variables: None,
            headers: None,
            socket: None,
            url: None,
            frame: None,
        }
    }

    /// The `variables` as JSON (the WebApp sends a string holding JSON).
    fn variables_json(&self) -> Value {
        self.variables
            .as_deref()
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or(Value::Null)
    }

    /// The keys of `variables`, in the order sent.
    fn variable_keys(&self) -> Vec<String> {
        keys_in_order(self.variables.as_deref().unwrap_or("{}"))
    }

    /// The `event` of a `sentantSend`, if this is one.
    pub fn send_event(&self) -> Option<String> {
        (self.operation.as_deref() == Some("sentantSend"))
            .then(|| self.variables_json()["event"].as_str().map(str::to_owned))
            .flatten()
    }

    /// A short name for messages: `sentantSend(update)`, `ws_send s3 doc`.
    fn label(&self) -> String {
        match self.kind.as_str() {
            "http" => match self.send_event() {
                Some(event) => format!("sentantSend({event})"),
                None => format!(
                    "{}({})",
                    self.operation.as_deref().unwrap_or("?"),
                    self.variable_keys().join(",")
                ),
            },
            _ => format!("{} {}", self.kind, self.socket.as_deref().unwrap_or("")),
        }
    }
}

/// A page's traffic, in the order it happened.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WireTrace {
    #[serde(default)]
    pub what: String,
    #[serde(default)]
    pub events: Vec<WireEvent>,
}

impl WireTrace {
    /// Reads a trace in the fixture's JSON form.
    pub fn from_json(text: &str) -> anyhow::Result<WireTrace> {
        Ok(serde_json::from_str(text)?)
    }

    /// The GraphQL POSTs.
    pub fn http(&self) -> impl Iterator<Item = &WireEvent> {
        self.events.iter().filter(|e| e.kind == "http")
    }

    /// Events of one kind.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a WireEvent> + 'a {
        self.events.iter().filter(move |e| e.kind == kind)
    }

    /// The sockets, in the order they opened.
    pub fn sockets(&self) -> Vec<String> {
        self.of_kind("ws_open")
            .filter_map(|e| e.socket.clone())
            .collect()
    }

    /// The frames one socket sent, ids and refs blanked.
    pub fn frames_sent(&self, socket: &str) -> Vec<String> {
        self.of_kind("ws_send")
            .filter(|e| e.socket.as_deref() == Some(socket))
            .filter_map(|e| e.frame.as_deref().map(normalise_frame))
            .collect()
    }

    /// The trace without its value sends (each `set_sensor` and the `update`
    /// sent with it): the join, with its `update` on connect wherever that
    /// came (a phone may send a value before its socket is connected).
    pub fn join(&self) -> WireTrace {
        let values = self.value_sends();
        WireTrace {
            what: self.what.clone(),
            events: self
                .events
                .iter()
                .enumerate()
                .filter(|(i, _)| !values.contains(i))
                .map(|(_, e)| e.clone())
                .collect(),
        }
    }

    /// The positions of the value sends: every `set_sensor`, and the first
    /// `update` after each.
    fn value_sends(&self) -> Vec<usize> {
        let mut values = Vec::new();
        let mut owed = 0;
        for (i, e) in self.events.iter().enumerate() {
            match e.send_event().as_deref() {
                Some("set_sensor") => {
                    values.push(i);
                    owed += 1;
                }
                Some("update") if owed > 0 => {
                    values.push(i);
                    owed -= 1;
                }
                _ => {}
            }
        }
        values
    }

    /// The value sends' requests.
    pub fn values(&self) -> Vec<&WireEvent> {
        self.value_sends().into_iter().map(|i| &self.events[i]).collect()
    }
}

/// The top-level keys of a JSON object text, in the order the text has them
/// (a `Value` may sort them).
fn keys_in_order(text: &str) -> Vec<String> {
    struct Keys(Vec<String>);
    impl<'de> Deserialize<'de> for Keys {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Keys, D::Error> {
            struct Visit;
            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = Keys;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                    let mut keys = Vec::new();
                    while let Some(key) = map.next_key::<String>()? {
                        map.next_value::<serde::de::IgnoredAny>()?;
                        keys.push(key);
                    }
                    Ok(Keys(keys))
                }
            }
            d.deserialize_map(Visit)
        }
    }
    serde_json::from_str::<Keys>(text).map(|k| k.0).unwrap_or_default()
}

/// A frame with what differs from run to run blanked, as text (so the key
/// order stays what was sent): sentant ids, subscription ids, refs, names
/// and sensor values.
pub fn normalise_frame(frame: &str) -> String {
    static BLANKS: std::sync::OnceLock<Vec<(regex::Regex, &'static str)>> = std::sync::OnceLock::new();
    let blanks = BLANKS.get_or_init(|| {
        [
            (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "ID"),
            (r"__absinthe__:doc:[A-Za-z0-9_-]+", "ID"),
            (r#""(ref|join_ref)":("[^"]*"|\d+)"#, r#""$1":"REF""#),
            (r#""name":"[^"]*""#, r#""name":"ID""#),
            (r#""sensor":("[^"]*"|-?[\d.]+)"#, r#""sensor":"VALUE""#),
        ]
        .into_iter()
        .map(|(pattern, with)| (regex::Regex::new(pattern).expect("a valid pattern"), with))
        .collect()
    });
    blanks
        .iter()
        .fold(frame.to_owned(), |text, (pattern, with)| pattern.replace_all(&text, *with).into_owned())
}

/// Records a tab's traffic from its DevTools `Network.*` events (the page
/// must have called `Network.enable` on its session, see
/// [`crate::Page::record_network`]).
pub struct NetworkLog {
    state: Arc<Mutex<LogState>>,
    _collector: AbortOnDrop,
}

#[derive(Default)]
struct LogState {
    /// The first request's `timestamp` (s, monotonic).
    first_s: Option<f64>,
    /// Socket request ids → names `s1`, `s2`, ...
    sockets: HashMap<String, String>,
    /// Asset request ids → the index of their event, to fill in the bytes.
    assets: HashMap<String, usize>,
    events: Vec<WireEvent>,
}

impl NetworkLog {
    pub(crate) fn start(events: mpsc::UnboundedReceiver<Event>) -> NetworkLog {
        let state = Arc::new(Mutex::new(LogState::default()));
        let collector = tokio::spawn(collect(state.clone(), events));
        NetworkLog {
            state,
            _collector: AbortOnDrop(collector),
        }
    }

    /// The trace so far. `/reality2` POSTs are `http`; other GETs under
    /// `asset_prefix` are `asset`s; the page's own files are left out.
    pub fn trace(&self, asset_prefixes: &[&str]) -> WireTrace {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let events = state
            .events
            .iter()
            .filter(|e| {
                e.kind != "asset"
                    || e.path
                        .as_deref()
                        .is_some_and(|p| asset_prefixes.iter().any(|a| p.starts_with(a)))
            })
            .cloned()
            .collect();
        WireTrace {
            what: "recorded by r2-testkit from Chromium's Network.* events".to_owned(),
            events,
        }
    }
}

async fn collect(state: Arc<Mutex<LogState>>, mut events: mpsc::UnboundedReceiver<Event>) {
    while let Some(event) = events.recv().await {
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        state.on_event(&event);
    }
}

impl LogState {
    fn t_ms(&mut self, params: &Value) -> f64 {
        let at = params["timestamp"].as_f64().unwrap_or(0.0);
        let first = *self.first_s.get_or_insert(at);
        ((at - first) * 1000.0).max(0.0)
    }

    fn on_event(&mut self, event: &Event) {
        let p = &event.params;
        let request_id = p["requestId"].as_str().unwrap_or("").to_owned();
        match event.method.as_str() {
            "Network.requestWillBeSent" => {
                let request = &p["request"];
                let url = request["url"].as_str().unwrap_or("");
                let method = request["method"].as_str().unwrap_or("");
                let t_ms = self.t_ms(p);
                if method == "POST" && url_path(url).starts_with("/reality2") {
                    let body = request["postData"].as_str().unwrap_or("");
                    self.events.push(http_event(t_ms, body, &request["headers"]));
                } else if method == "GET" {
                    let mut e = WireEvent::new(t_ms, "asset");
                    e.path = Some(url_path(url).to_owned());
                    e.bytes = Some(0);
                    self.assets.insert(request_id, self.events.len());
                    self.events.push(e);
                }
            }
            "Network.loadingFinished" => {
                if let Some(&index) = self.assets.get(&request_id) {
                    let bytes = p["encodedDataLength"].as_f64().unwrap_or(0.0);
                    self.events[index].bytes = Some(bytes as u64);
                }
            }
            "Network.webSocketCreated" => {
                let name = format!("s{}", self.sockets.len() + 1);
                self.sockets.insert(request_id, name.clone());
                // webSocketCreated has no timestamp: the last event's time.
                let t_ms = self.events.last().map_or(0.0, |e| e.t_ms);
                let mut e = WireEvent::new(t_ms, "ws_open");
                e.socket = Some(name);
                e.url = p["url"].as_str().map(str::to_owned);
                self.events.push(e);
            }
            "Network.webSocketFrameSent" | "Network.webSocketFrameReceived" => {
                let Some(socket) = self.sockets.get(&request_id).cloned() else {
                    return;
                };
                let kind = if event.method.ends_with("Sent") { "ws_send" } else { "ws_recv" };
                let t_ms = self.t_ms(p);
                let mut e = WireEvent::new(t_ms, kind);
                e.socket = Some(socket);
                e.frame = p["response"]["payloadData"].as_str().map(str::to_owned);
                self.events.push(e);
            }
            "Network.webSocketClosed" => {
                let Some(socket) = self.sockets.get(&request_id).cloned() else {
                    return;
                };
                let t_ms = self.t_ms(p);
                let mut e = WireEvent::new(t_ms, "ws_close");
                e.socket = Some(socket);
                self.events.push(e);
            }
            _ => {}
        }
    }
}

/// A `/reality2` POST as the fixture writes it.
fn http_event(t_ms: f64, body: &str, headers: &Value) -> WireEvent {
    let mut e = WireEvent::new(t_ms, "http");
    e.method = Some("POST".to_owned());
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let query = parsed["query"].as_str().unwrap_or("").to_owned();
    e.op_type = Some(operation_type(&query).to_owned());
    e.operation = operation_field(&query);
    e.variables = match &parsed["variables"] {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    e.query = Some(query);
    let wanted = ["Accept", "Content-Type"];
    e.headers = Some(
        headers
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| {
                let name = wanted.iter().find(|w| w.eq_ignore_ascii_case(k))?;
                Some(((*name).to_owned(), v.as_str().unwrap_or("").to_owned()))
            })
            .collect(),
    );
    e
}

fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/", |i| &rest[i..])
}

fn operation_type(query: &str) -> &'static str {
    let q = query.trim_start();
    if q.starts_with("mutation") {
        "mutation"
    } else if q.starts_with("subscription") {
        "subscription"
    } else {
        "query"
    }
}

/// The first field of the operation: `sentantGet`, `sentantLoad`, ...
fn operation_field(query: &str) -> Option<String> {
    let body = &query[query.find('{')? + 1..];
    let name: String = body
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Every way `actual` differs from `reference` in what a node and a wire
/// capture can see, as sentences (empty: indistinguishable).
///
/// The joins are compared request by request; the value sends that follow
/// depend on how the phone was turned, so each must have the shape of the
/// reference's sends, and together they must keep the throttle's rule.
pub fn compare(reference: &WireTrace, actual: &WireTrace) -> Vec<String> {
    let mut why = Vec::new();
    let (reference_join, actual_join) = (reference.join(), actual.join());
    compare_requests(&reference_join, &actual_join, &mut why);
    compare_value_sends(reference, actual, &mut why);
    compare_sockets(reference, actual, &mut why);
    check_throttle(actual, &mut why);
    why
}

/// Every value send has the shape of the reference's.
fn compare_value_sends(reference: &WireTrace, actual: &WireTrace, why: &mut Vec<String>) {
    let shapes = reference.values();
    for got in actual.values() {
        if !shapes.iter().any(|want| same_request(want, got)) {
            why.push(format!(
                "the value send {} has no counterpart among the reference's: query {:?}, variables {:?}, headers {:?}",
                got.label(),
                got.query,
                got.variables,
                got.headers
            ));
        }
    }
}

/// The requests: same operations in the same order (those the reference fired
/// in the same tick may swap), same query texts, variables' keys and headers.
fn compare_requests(reference: &WireTrace, actual: &WireTrace, why: &mut Vec<String>) {
    let expected: Vec<&WireEvent> = reference.http().collect();
    let mut got: Vec<&WireEvent> = actual.http().collect();
    if expected.len() != got.len() {
        why.push(format!(
            "{} requests, the reference made {}: got [{}], expected [{}]",
            got.len(),
            expected.len(),
            labels(&got),
            labels(&expected)
        ));
    }
    let mut i = 0;
    while i < expected.len().min(got.len()) {
        // The reference's requests fired in the same tick as expected[i].
        let tick_end = expected[i..]
            .iter()
            .take_while(|e| e.t_ms - expected[i].t_ms <= SAME_TICK_MS)
            .count()
            + i;
        let tick_end = tick_end.min(got.len());
        for k in i..tick_end {
            let want = expected[k];
            match got[k..tick_end].iter().position(|g| same_request(want, g)) {
                Some(found) => got.swap(k, k + found),
                None => why.push(format!(
                    "request {} should be {} with query {:?}, variables' keys {:?}, headers {:?}; got {} with query {:?}, variables {:?}, headers {:?}",
                    k + 1,
                    want.label(),
                    want.query.as_deref().unwrap_or(""),
                    want.variable_keys(),
                    want.headers,
                    got[k].label(),
                    got[k].query.as_deref().unwrap_or(""),
                    got[k].variables,
                    got[k].headers,
                )),
            }
        }
        i = tick_end.max(i + 1);
    }
}

fn labels(events: &[&WireEvent]) -> String {
    events.iter().map(|e| e.label()).collect::<Vec<_>>().join(", ")
}

fn same_request(want: &WireEvent, got: &WireEvent) -> bool {
    let (wv, gv) = (want.variables_json(), got.variables_json());
    want.operation == got.operation
        && want.query == got.query
        && want.variable_keys() == got.variable_keys()
        && want.send_event() == got.send_event()
        && want.headers == got.headers
        // The fixed texts must match exactly: the definitions, the monitor's name.
        && same_fixed_values(&wv, &gv)
}

/// Variables that are the same for every phone (definitions other than the
/// device's, `name: "monitor"`) are compared as text.
fn same_fixed_values(want: &Value, got: &Value) -> bool {
    let fixed = |v: &Value| -> Option<String> {
        let definition = v["definition"].as_str();
        match (definition, v["name"].as_str()) {
            (Some(d), _) if !d.contains("\"counter\"") => Some(d.to_owned()),
            (_, Some(n)) => Some(n.to_owned()),
            _ => None,
        }
    };
    fixed(want) == fixed(got)
}

/// The sockets: as many opened and closed, the same frames sent on each
/// (ids and refs blanked), and the same kinds of frames received.
fn compare_sockets(reference: &WireTrace, actual: &WireTrace, why: &mut Vec<String>) {
    let (want, got) = (reference.sockets(), actual.sockets());
    if want.len() != got.len() {
        why.push(format!(
            "{} websockets opened, the reference opened {}",
            got.len(),
            want.len()
        ));
    }
    let closed = |t: &WireTrace| t.of_kind("ws_close").count();
    if closed(reference) != closed(actual) {
        why.push(format!(
            "{} websockets closed, the reference closed {}",
            closed(actual),
            closed(reference)
        ));
    }
    // Sockets opened together may have opened in either order: match each
    // reference socket to an unused recorded one with the same frames.
    let mut unused: Vec<(String, Vec<String>)> =
        got.iter().map(|s| (s.clone(), actual.frames_sent(s))).collect();
    for socket in &want {
        let frames = reference.frames_sent(socket);
        match unused.iter().position(|(_, f)| *f == frames) {
            Some(found) => {
                unused.remove(found);
            }
            None => why.push(format!(
                "no recorded socket sent what the reference's {socket} sent: {frames:?}; unmatched: {:?}",
                unused.iter().map(|(s, f)| format!("{s}: {f:?}")).collect::<Vec<_>>()
            )),
        }
    }
}

/// Value sends keep the sensor page's rule: `set_sensor` and `update`
/// together, at least [`THROTTLE_MS`] after the previous value.
fn check_throttle(actual: &WireTrace, why: &mut Vec<String>) {
    let sends: Vec<(f64, String)> = actual
        .http()
        .filter_map(|e| e.send_event().map(|ev| (e.t_ms, ev)))
        .collect();
    let values: Vec<f64> = sends
        .iter()
        .filter(|(_, ev)| ev == "set_sensor")
        .map(|(t, _)| *t)
        .collect();
    for pair in values.windows(2) {
        if pair[1] - pair[0] < THROTTLE_MS - THROTTLE_SLACK_MS {
            why.push(format!(
                "two values sent {:.0} ms apart (at {:.0} and {:.0} ms): the throttle allows one per {THROTTLE_MS} ms",
                pair[1] - pair[0],
                pair[0],
                pair[1]
            ));
        }
    }
    for (k, (_, event)) in sends.iter().enumerate() {
        if event == "set_sensor" && sends.get(k + 1).map(|(_, e)| e.as_str()) != Some("update") {
            why.push(format!("the set_sensor sent at request {} is not followed by its update", k + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> WireTrace {
        let text = include_str!("../../../tests/fixtures/webapp-phone-trace.json");
        WireTrace::from_json(text).expect("the fixture reads")
    }

    #[test]
    fn the_reference_is_indistinguishable_from_itself() {
        let trace = fixture();
        assert_eq!(trace.sockets().len(), 5);
        // 8 POSTs of a join (9 for the first phone, which loads `monitor`) and the update on connect.
        assert_eq!(trace.join().http().count(), 10);
        assert_eq!(compare(&trace, &trace), Vec::<String>::new());
    }

    #[test]
    fn requests_fired_together_may_swap_but_nothing_else() {
        let reference = fixture();
        let mut swapped = reference.clone();
        // sentantGet(monitor) and sentantLoad(view) leave in the same tick.
        let (a, b) = (
            swapped.events.iter().position(|e| e.kind == "http").unwrap(),
            swapped.events.iter().filter(|e| e.kind == "http").nth(1).map(|e| e.t_ms).unwrap(),
        );
        let second = swapped.events.iter().position(|e| e.kind == "http" && e.t_ms == b).unwrap();
        swapped.events.swap(a, second);
        assert_eq!(compare(&reference, &swapped), Vec::<String>::new());

        let mut one_line = reference.clone();
        let q = one_line.events.iter_mut().find(|e| e.kind == "http").unwrap();
        q.query = Some(q.query.as_deref().unwrap().split_whitespace().collect::<Vec<_>>().join(" "));
        assert!(!compare(&reference, &one_line).is_empty());

        let mut reordered_keys = reference.clone();
        let send = reordered_keys
            .events
            .iter_mut()
            .find(|e| e.operation.as_deref() == Some("sentantSend"))
            .unwrap();
        let text = send.variables.clone().unwrap();
        assert!(text.starts_with("{\"id\":"), "{text}");
        // The same variables, keys in another order (as a Rust map would sort them).
        let v: Value = serde_json::from_str(&text).unwrap();
        send.variables = Some(format!(
            "{{\"event\":{},\"id\":{},\"parameters\":{},\"passthrough\":{}}}",
            v["event"], v["id"], v["parameters"], v["passthrough"]
        ));
        assert!(!compare(&reference, &reordered_keys).is_empty());

        let mut no_accept = reference.clone();
        for e in no_accept.events.iter_mut().filter(|e| e.kind == "http") {
            e.headers.as_mut().unwrap().remove("Accept");
        }
        assert!(!compare(&reference, &no_accept).is_empty());
    }

    #[test]
    fn a_missing_socket_or_frame_is_a_difference() {
        let reference = fixture();
        let mut fewer = reference.clone();
        fewer.events.retain(|e| e.socket.as_deref() != Some("s2"));
        let why = compare(&reference, &fewer);
        assert!(why.iter().any(|w| w.contains("4 websockets opened")), "{why:?}");
        let mut other_doc = reference.clone();
        let doc = other_doc
            .events
            .iter_mut()
            .find(|e| e.kind == "ws_send" && e.frame.as_deref().is_some_and(|f| f.contains("\"doc\"")))
            .unwrap();
        doc.frame = Some(doc.frame.as_deref().unwrap().replace("\"ref\":0", "\"ref\":1").replace("event parameters", "event parameters passthrough"));
        assert!(!compare(&reference, &other_doc).is_empty());
    }

    #[test]
    fn sends_faster_than_the_throttle_are_a_difference() {
        let reference = fixture();
        let mut fast = reference.clone();
        let mut shift = 0.0;
        for e in fast.events.iter_mut().filter(|e| e.send_event().is_some()) {
            if e.send_event().as_deref() == Some("set_sensor") {
                shift += 120.0;
            }
            e.t_ms -= shift;
        }
        let why = compare(&reference, &fast);
        assert!(why.iter().any(|w| w.contains("throttle")), "{why:?}");
    }

    #[test]
    fn frames_are_compared_modulo_ids_and_refs() {
        let a = r#"{"topic":"__absinthe__:control","event":"doc","payload":{"query":"q","variables":{"id":"299c5b2f-9a99-418b-bdee-bc0188d8af84","signal":"update"}},"ref":0}"#;
        let b = r#"{"topic":"__absinthe__:control","event":"doc","payload":{"query":"q","variables":{"id":"11111111-9a99-418b-bdee-bc0188d8af84","signal":"update"}},"ref":7}"#;
        assert_eq!(normalise_frame(a), normalise_frame(b));
        let c = b.replace("update", "internal");
        assert_ne!(normalise_frame(a), normalise_frame(&c));
    }
}
