//! Entry points for fuzzing: each takes arbitrary bytes and drives one of
//! the node's parsers of untrusted input the way the node does, checking a
//! property beyond "does not panic" where there is one. The cargo-fuzz
//! targets in `crates/node/fuzz/` call them (and panic on a [`Violation`]);
//! the stable test `tests/fuzz_inputs.rs` feeds them seeded mutations of the
//! same seed corpus, so CI exercises them without nightly.
//!
//! # Layout
//!
//! - [`frame_decode`], [`graphql_request`], [`sentant_definition`]: the
//!   parsers.
//! - [`registry_apply`]: sequences of loads (raw text or
//!   [`hostile_definition`]s), sends, unloads, subscriptions and waits run
//!   on a [`Registry`] with [`fuzz_limits`]; the node must stay within its
//!   limits and still serve a device afterwards.
//! - [`hostile_definition`]: valid definitions that attack the node
//!   (doubling strings, self-send loops, fan-out, `__internal` storms,
//!   absurd delays, nesting, ping-pong), shared with the tests.

use std::sync::Arc;
use std::time::Duration;

use r2_core::phoenix::{Frame, Vsn};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::{
    fidelity::Values,
    http::{operation_type, parse_graphql_request},
    limits::Limits,
    sentant::{Machine, Registry, SentantDef, SwarmDef},
    stats::Stats,
};

/// A property of a parser that an input broke.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Violation(pub String);

/// A websocket frame, text or (as the node reads binary frames) lossy
/// UTF-8, decoded as V1 and V2; a frame that decodes must survive an
/// encode/decode round trip unchanged, but for floats moving by an ulp or
/// so: serde_json parses them best-effort (its `float_roundtrip` feature is
/// off), so `99902222222222222222222901` reads back one ulp away.
pub fn frame_decode(data: &[u8]) -> Result<(), Violation> {
    let text = String::from_utf8_lossy(data);
    for vsn in [Vsn::V1, Vsn::V2] {
        let Ok(frame) = Frame::decode(&text, vsn) else {
            continue;
        };
        let encoded = frame.encode(vsn);
        match Frame::decode(&encoded, vsn) {
            Ok(again) if same_frame(&again, &frame) => {}
            other => {
                return Err(Violation(format!(
                    "{vsn:?} round trip of {text:?} gave {other:?} from {encoded:?}"
                )))
            }
        }
    }
    Ok(())
}

/// Equal frames, floats within a few ulps.
fn same_frame(a: &Frame, b: &Frame) -> bool {
    a.topic == b.topic
        && a.event == b.event
        && same_value(&a.join_ref, &b.join_ref)
        && same_value(&a.reference, &b.reference)
        && same_value(&a.payload, &b.payload)
}

/// Equal JSON values, floats within a few ulps.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs()),
                _ => false,
            }
        }
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same_value(x, y))
        }
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .all(|(k, x)| ys.get(k).is_some_and(|y| same_value(x, y)))
        }
        _ => a == b,
    }
}

/// The `Content-Type`s the `graphql_request` target chooses from (its first
/// byte, modulo their number).
pub const CONTENT_TYPES: [Option<&str>; 8] = [
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("application/graphql"),
    Some("text/plain"),
    None,
    Some("Application/JSON; charset=utf-8"),
    Some("application/vnd.api+json"),
    Some("multipart/form-data; boundary=x"),
];

/// A `POST /reality2` request as the node reads it: byte 0 picks the
/// content type from [`CONTENT_TYPES`], byte 1 is the length of the query
/// string that follows, the rest is the body. A request that is accepted
/// has its GraphQL document parsed as well.
pub fn graphql_request(data: &[u8]) -> Result<(), Violation> {
    let (content_type, rest) = match data.split_first() {
        Some((&first, rest)) => (
            CONTENT_TYPES[usize::from(first) % CONTENT_TYPES.len()],
            rest,
        ),
        None => (None, data),
    };
    let (query, body) = match rest.split_first() {
        Some((&len, rest)) => rest.split_at(usize::from(len).min(rest.len())),
        None => (&[][..], rest),
    };
    let query = String::from_utf8_lossy(query);
    let query = (!query.is_empty()).then_some(query.as_ref());
    if let Ok(mut request) = parse_graphql_request(query, content_type, body) {
        operation_type(&mut request);
    }
    Ok(())
}

/// A sentant or swarm definition as `sentantLoad` / `swarmLoad` read it; a
/// definition that loads is given `init` and each of its public events, as a
/// loaded sentant would be, with values replaced both as text (the real node)
/// and typed (`--lenient`).
pub fn sentant_definition(data: &[u8]) -> Result<(), Violation> {
    let text = String::from_utf8_lossy(data);
    let _ = SwarmDef::parse(&text);
    let Ok(def) = SentantDef::parse(&text) else {
        return Ok(());
    };
    if def.name.trim().is_empty() {
        return Err(Violation(format!("{text:?} loaded with a blank name")));
    }
    let def = Arc::new(def);
    for values in [Values::Text, Values::Typed] {
        let mut machine = Machine::with_values(Arc::clone(&def), values);
        let mut effects = Vec::new();
        machine.handle("init", &Map::new(), &mut effects);
        for event in def.events() {
            let parameters = match &event.parameters {
                Value::Object(map) => map.clone(),
                _ => Map::new(),
            };
            machine.handle(&event.event, &parameters, &mut effects);
        }
    }
    Ok(())
}

/// How many kinds of [`hostile_definition`] there are.
pub const HOSTILE_KINDS: u8 = 8;

/// A valid sentant definition that attacks the node; `kind` picks the
/// attack (modulo [`HOSTILE_KINDS`]), `n` its size and name. Each starts on
/// `init` and on its public event `go`:
///
/// 0. a string that doubles each event (`"__v____v__"`) sent to itself;
/// 1. an immediate self-send loop;
/// 2. a fan-out loop: each event sent to itself `2 + n % 6` times;
/// 3. an `__internal` listener that answers every load with a send to the
///    new sentant and to itself;
/// 4. a ticker with an absurd `delay` (1e30, -5, NaN, "soon", 1e-9, "1e400",
///    0.5, a string of 1e30);
/// 5. a value whose nesting doubles each event (`{"a": "__v__", "b": "__v__"}`);
/// 6. a growing value published as a signal each event;
/// 7. ping-pong between two sentants (`hostile-7-N` and `hostile-7-(N xor 1)`).
pub fn hostile_definition(kind: u8, n: u8) -> String {
    let kind = kind % HOSTILE_KINDS;
    let name = format!("hostile-{kind}-{n}");
    let send = |to: Value, event: &str| json!({"command": "send", "parameters": {"event": event, "to": to}});
    let get_v = json!({"command": "get", "plugin": "ai.reality2.vars", "parameters": {"key": "v"}});
    let set_v = |value: Value| json!({"command": "set", "plugin": "ai.reality2.vars", "parameters": {"key": "v", "value": value}});
    let init_v = set_v(json!("xy"));
    let (init, go): (Vec<Value>, Vec<Value>) = match kind {
        0 => (
            vec![init_v, send(json!(name), "go")],
            vec![get_v, set_v(json!("__v____v__")), send(json!(name), "go")],
        ),
        1 => (vec![send(Value::Null, "go")], vec![send(Value::Null, "go")]),
        2 => {
            let targets = vec![json!(name); 2 + usize::from(n % 6)];
            (
                vec![send(json!(targets), "go")],
                vec![send(json!(targets), "go")],
            )
        }
        3 => (vec![], vec![send(json!(["__id__", name.clone()]), "go")]),
        4 => {
            const DELAYS: [&str; 8] = [
                "1e30",
                "-5",
                "\"NaN\"",
                "\"soon\"",
                "1e-9",
                "\"1e400\"",
                "0.5",
                "\"1e30\"",
            ];
            let delay: Value =
                serde_json::from_str(DELAYS[usize::from(n) % DELAYS.len()]).unwrap_or(Value::Null);
            let tick = json!({"command": "send", "parameters": {"event": "go", "delay": delay}});
            (vec![tick.clone()], vec![tick])
        }
        5 => (
            vec![init_v, send(Value::Null, "go")],
            vec![
                get_v,
                set_v(json!({"a": "__v__", "b": "__v__"})),
                send(Value::Null, "go"),
            ],
        ),
        6 => (
            vec![init_v, send(Value::Null, "go")],
            vec![
                get_v,
                set_v(json!("__v____v____v__")),
                json!({"command": "get", "plugin": "ai.reality2.vars", "parameters": {"key": "v"}}),
                json!({"command": "signal", "public": true, "parameters": {"event": "grown"}}),
                send(Value::Null, "go"),
            ],
        ),
        _ => {
            let other = format!("hostile-7-{}", n ^ 1);
            (
                vec![send(json!(other), "go")],
                vec![send(json!(other), "go")],
            )
        }
    };
    let mut transitions = vec![
        json!({"event": "init", "actions": init}),
        json!({"event": "go", "public": true, "actions": go}),
    ];
    if kind == 3 {
        transitions.push(json!({"event": "__internal", "actions": [send(json!(["__id__", name.clone()]), "go")]}));
    }
    json!({"sentant": {"name": name, "automations": [{"name": "a", "transitions": transitions}]}})
        .to_string()
}

/// The small limits [`registry_apply`] runs under, so that every limit is
/// reached quickly.
pub fn fuzz_limits() -> Limits {
    Limits {
        max_hops: 16,
        max_inbox: 32,
        max_value_bytes: 4096,
        max_parameters_bytes: 16 * 1024,
        max_sentants: 16,
        max_swarm: 8,
        max_subscriptions_per_socket: 4,
        max_subscriptions_per_sentant: 4,
        ..Limits::default()
    }
}

/// Events [`registry_apply`] sends.
const EVENTS: [&str; 6] = ["go", "init", "update", "set_sensor", "__internal", "tick"];

/// A sequence of operations on a registry with [`fuzz_limits`], in a
/// runtime whose clock only moves when every task waits: each byte picks an
/// operation (its low 3 bits) and its argument (the high 5 bits), and some
/// take the next byte or bytes as well:
///
/// - 0: load [`hostile_definition`] of kind `arg` and size the next byte;
/// - 1: load the next `next byte` bytes as a sentant or swarm definition;
/// - 2: send event `EVENTS[arg]` to loaded sentant `next byte`, with
///   parameters `{"v": "__v____v__", "sensor": next byte}`;
/// - 3: unload loaded sentant `arg`;
/// - 4: subscribe to signal `update`/`grown`/`debug` of loaded sentant `arg`;
/// - 5..: let `arg * 10` ms pass.
///
/// Then 10 s pass. Properties: the registry holds no more sentants than its
/// limit, and a device loaded afterwards (one unloaded first if full)
/// answers `set_sensor` and `update` with its `update` signal within 1 s
/// (plus the registry's patience for the absent `view`).
pub fn registry_apply(data: &[u8]) -> Result<(), Violation> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| Violation(format!("no runtime: {e}")))?;
    runtime.block_on(apply(data))
}

async fn apply(data: &[u8]) -> Result<(), Violation> {
    let limits = fuzz_limits();
    let registry = Registry::with_limits(Arc::new(Stats::default()), Arc::new(limits.clone()));
    let mut loaded: Vec<Uuid> = Vec::new();
    let mut receivers = Vec::new();
    let mut bytes = data.iter().copied();
    let pick = |loaded: &[Uuid], i: u8| loaded.get(usize::from(i) % loaded.len().max(1)).copied();
    while let Some(op) = bytes.next() {
        let arg = op >> 3;
        match op & 7 {
            0 => {
                let text = hostile_definition(arg, bytes.next().unwrap_or(0));
                if let Ok(def) = SentantDef::parse(&text) {
                    loaded.extend(registry.try_load(def).ok().map(|s| s.id));
                }
            }
            1 => {
                let len = usize::from(bytes.next().unwrap_or(0));
                let chunk: Vec<u8> = bytes.by_ref().take(len).collect();
                let text = String::from_utf8_lossy(&chunk);
                if let Ok(swarm) = SwarmDef::parse(&text) {
                    if swarm.sentants.len() <= limits.max_swarm {
                        for def in swarm.sentants {
                            loaded.extend(registry.try_load(def).ok().map(|s| s.id));
                        }
                    }
                } else if let Ok(def) = SentantDef::parse(&text) {
                    loaded.extend(registry.try_load(def).ok().map(|s| s.id));
                }
            }
            2 => {
                let target = bytes.next().unwrap_or(0);
                if let Some(id) = pick(&loaded, target) {
                    let event = EVENTS[usize::from(arg) % EVENTS.len()];
                    let parameters = json!({"v": "__v____v__", "sensor": target});
                    let _ = registry.send(id, event, parameters, json!({}));
                }
            }
            3 => {
                if let Some(id) = pick(&loaded, arg) {
                    registry.unload(id);
                    loaded.retain(|other| *other != id);
                }
            }
            4 => {
                if let Some(id) = pick(&loaded, arg) {
                    let signal = ["update", "grown", "debug"][usize::from(arg) % 3];
                    receivers.extend(registry.subscribe(id, signal).ok());
                }
            }
            _ => tokio::time::sleep(Duration::from_millis(u64::from(arg) * 10)).await,
        }
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    if registry.len() > limits.max_sentants {
        return Err(Violation(format!(
            "{} sentants loaded, limit {}",
            registry.len(),
            limits.max_sentants
        )));
    }
    probe_device(&registry).await
}

/// Loads a device (unloading a sentant first when full) and checks it
/// answers `update` with its signal within 1 s (plus the registry's patience).
async fn probe_device(registry: &Arc<Registry>) -> Result<(), Violation> {
    if registry.len() >= registry.limits().max_sentants {
        if let Some(first) = registry.all().first() {
            registry.unload(first.id);
        }
    }
    let def = SentantDef::parse(&r2_core::graphql::device_definition("probe"))
        .map_err(|e| Violation(format!("device does not parse: {e}")))?;
    let device = registry
        .try_load(def)
        .map_err(|e| Violation(format!("device refused: {e}")))?;
    let mut updates = registry
        .subscribe(device.id, "update")
        .map_err(|e| Violation(format!("cannot subscribe: {e}")))?;
    let send = |event: &str, parameters: Value| {
        registry
            .send(device.id, event, parameters, json!({}))
            .map_err(|e| Violation(format!("{event} refused: {e}")))
    };
    send("set_sensor", json!({"sensor": 7}))?;
    send("update", json!({}))?;
    // The device sends `update` to `view` before it signals: with no `view`
    // loaded the real node's behaviour holds it for the registry's patience,
    // and stores the sensor as text.
    let fidelity = registry.fidelity();
    let within = Duration::from_secs(1) + fidelity.unknown_ids.longest();
    let sensor = match fidelity.values {
        Values::Text => json!("7"),
        Values::Typed => json!(7),
    };
    match tokio::time::timeout(within, updates.recv()).await {
        Ok(Some(signal)) if signal.parameters.get("sensor") == Some(&sensor) => Ok(()),
        other => Err(Violation(format!("the device did not answer: {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_inputs_pass_every_target() {
        let frame = Frame::doc(serde_json::json!(1), "{ a }", serde_json::json!({}));
        assert_eq!(frame_decode(frame.encode(Vsn::V1).as_bytes()), Ok(()));
        assert_eq!(frame_decode(frame.encode(Vsn::V2).as_bytes()), Ok(()));
        assert_eq!(graphql_request(b"\x00\x00{\"query\": \"{ a }\"}"), Ok(()));
        let device = r2_core::graphql::device_definition("d");
        assert_eq!(sentant_definition(device.as_bytes()), Ok(()));
        let huge = br#"["1", 99902222222222222222222901, "", "p", {"x": [1e-300, -0.0]}]"#;
        assert_eq!(frame_decode(huge), Ok(()), "floats may move by an ulp");
        assert!(!same_value(
            &serde_json::json!(1.0),
            &serde_json::json!(1.001)
        ));
        assert!(!same_value(
            &serde_json::json!([1]),
            &serde_json::json!([1, 2])
        ));
        for kind in 0..HOSTILE_KINDS {
            let text = hostile_definition(kind, 3);
            SentantDef::parse(&text).unwrap_or_else(|e| panic!("kind {kind}: {e}: {text}"));
            assert_eq!(
                registry_apply(&[kind << 3, 3, 2, 0, 7]),
                Ok(()),
                "kind {kind}"
            );
        }
        for empty in [
            frame_decode,
            graphql_request,
            sentant_definition,
            registry_apply,
        ] {
            assert_eq!(empty(b""), Ok(()));
        }
    }
}

#[cfg(test)]
mod hostile_tests {
    use super::*;
    use std::sync::atomic::Ordering;

    /// Loads `count` hostile sentants of `kind`, lets 10 s pass; the counters.
    fn storm(kind: u8, count: u8) -> Arc<Stats> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let stats = Arc::new(Stats::default());
            let registry = Registry::with_limits(Arc::clone(&stats), Arc::new(fuzz_limits()));
            for n in 0..count {
                let def = SentantDef::parse(&hostile_definition(kind, n)).expect("parses");
                registry.try_load(def).expect("loads");
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
            stats
        })
    }

    #[test]
    fn every_hostile_kind_is_stopped_by_a_limit() {
        let hops = |s: &Stats| s.limit_hops.load(Ordering::Relaxed);
        let values = |s: &Stats| {
            s.limit_value_bytes.load(Ordering::Relaxed)
                + s.limit_parameters_bytes.load(Ordering::Relaxed)
        };
        assert!(values(&storm(0, 1)) > 0, "doubling");
        assert!(hops(&storm(1, 1)) > 0, "self-send loop");
        assert!(hops(&storm(2, 1)) > 0, "fan-out");
        assert!(hops(&storm(3, 4)) > 0, "__internal storm");
        assert!(values(&storm(5, 1)) > 0, "nesting");
        assert!(hops(&storm(7, 2)) > 0, "ping-pong");
    }
}
