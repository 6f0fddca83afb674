//! Entry points for fuzzing: each takes arbitrary bytes and drives one of
//! the node's parsers of untrusted input the way the node does, checking a
//! property beyond "does not panic" where there is one. The cargo-fuzz
//! targets in `crates/node/fuzz/` call them (and panic on a [`Violation`]);
//! the stable test `tests/fuzz_inputs.rs` feeds them seeded mutations of the
//! same seed corpus, so CI exercises them without nightly.

use std::sync::Arc;

use r2_core::phoenix::{Frame, Vsn};
use serde_json::{Map, Value};

use crate::{
    fidelity::Values,
    http::{operation_type, parse_graphql_request},
    sentant::{Machine, SentantDef, SwarmDef},
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
        for empty in [frame_decode, graphql_request, sentant_definition] {
            assert_eq!(empty(b""), Ok(()));
        }
    }
}
