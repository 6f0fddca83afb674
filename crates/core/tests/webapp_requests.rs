//! Every request of a recorded WebApp phone (`tests/fixtures/webapp-phone-trace.json` at the workspace root,
//! a copy of the project's shared trace), rebuilt by [`r2_core::webapp::Request`]
//! from its variables, is the same text byte for byte: the operation text,
//! the `variables` string (JavaScript's key order, `Json` arguments as JSON
//! text) and the headers.

use r2_core::webapp::{Fields, Request, AWAIT_SIGNAL};
use serde_json::Value;

fn trace() -> Value {
    let text = include_str!("../../../tests/fixtures/webapp-phone-trace.json");
    serde_json::from_str(text).expect("the trace is JSON")
}

fn events<'a>(trace: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    trace["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(move |e| e["kind"] == kind)
}

fn text<'a>(vars: &'a Value, key: &str) -> &'a str {
    vars[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {vars}"))
}

#[test]
fn every_recorded_request_is_rebuilt_byte_for_byte() {
    let trace = trace();
    let mut rebuilt = 0;
    for event in events(&trace, "http") {
        let query = event["query"].as_str().expect("query");
        let variables = event["variables"].as_str().expect("variables");
        let vars: Value = serde_json::from_str(variables).expect("variables is JSON text");
        let long = query.contains("description");
        let fields = if long { Fields::Long } else { Fields::Short };
        let parameters: Value;
        let request = match event["operation"].as_str().expect("operation") {
            "sentantGet" if vars.get("name").is_some() => Request::SentantGetByName {
                name: text(&vars, "name"),
                fields,
            },
            "sentantGet" => Request::SentantGetById {
                id: text(&vars, "id"),
                fields,
            },
            "sentantAll" => Request::SentantAll { fields },
            "sentantLoad" => Request::SentantLoad {
                definition: text(&vars, "definition"),
            },
            "sentantSend" => {
                assert_eq!(text(&vars, "passthrough"), "{}");
                parameters = serde_json::from_str(text(&vars, "parameters")).expect("JSON text");
                Request::SentantSend {
                    id: text(&vars, "id"),
                    event: text(&vars, "event"),
                    parameters: &parameters,
                }
            }
            other => panic!("an operation the WebApp does not send: {other}"),
        };
        assert_eq!(request.query(), query, "query of {event}");
        assert_eq!(request.variables(), variables, "variables of {event}");
        let body: Value = serde_json::from_str(&request.body()).expect("body is JSON");
        assert_eq!(body["query"], query);
        assert_eq!(body["variables"], variables);
        assert_eq!(event["headers"]["Content-Type"], "application/json");
        assert_eq!(event["headers"]["Accept"], "*/*");
        rebuilt += 1;
    }
    // The trace's 9 join requests, `update` on connect and 14 two-send values.
    assert!(rebuilt >= 30, "only {rebuilt} requests in the trace");
}

#[test]
fn the_recorded_subscription_text_is_the_webapps() {
    let trace = trace();
    let docs: Vec<Value> = events(&trace, "ws_send")
        .map(|e| serde_json::from_str::<Value>(e["frame"].as_str().expect("frame")).expect("JSON"))
        .filter(|f| f["event"] == "doc")
        .collect();
    assert_eq!(docs.len(), 5, "five sockets, one doc each");
    for doc in docs {
        assert_eq!(doc["payload"]["query"], AWAIT_SIGNAL);
    }
}
