//! The IoT WebApp's requests, byte for byte: its multi-line operation texts
//! and the request bodies it writes.
//!
//! The WebApp's client builds every body as
//! `JSON.stringify({query, variables: JSON.stringify(vars)})`: `variables` is
//! a string holding JSON whose keys keep JavaScript's insertion order
//! (`id`, `event`, `parameters`, `passthrough` for a send), and the `Json`
//! arguments `parameters` and `passthrough` are themselves strings holding
//! JSON. Its operation texts are template strings indented as in its source.
//! [`Request`] reproduces all of it; `tests/webapp_requests.rs` checks every
//! request of a recorded phone against it.
//!
//! # Layout
//!
//! - the operation texts ([`SENTANT_GET_BY_NAME`], [`SENTANT_GET_BY_ID_LONG`], ...);
//! - [`Fields`]: the short (`id name`) and long field lists;
//! - [`Request`]: one request, its [`Request::query`], [`Request::variables`]
//!   and [`Request::body`];
//! - [`AWAIT_SIGNAL`]: the subscription text the WebApp's sockets send.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::graphql::SENTANT_UNLOAD;

/// `sentantGet` by name, short fields (how every page looks for `monitor`).
pub const SENTANT_GET_BY_NAME: &str = "query SentantGet($name: String!) {\n            sentantGet(name: $name) {\n                id name\n            }\n        }";
/// `sentantGet` by name, long fields (the `?name=` page). Not in the recorded
/// trace: the by-id text with the name argument.
pub const SENTANT_GET_BY_NAME_LONG: &str = "query SentantGet($name: String!) {\n            sentantGet(name: $name) {\n                name id description events { event parameters } signals\n            }\n        }";
/// `sentantGet` by id, short fields.
pub const SENTANT_GET_BY_ID: &str = "query SentantGet($id: UUID4!) {\n            sentantGet(id: $id) {\n                id name\n            }\n        }";
/// `sentantGet` by id, long fields (the sensor page, the connect page's
/// monitor callback, the `?view` page's new cards).
pub const SENTANT_GET_BY_ID_LONG: &str = "query SentantGet($id: UUID4!) {\n            sentantGet(id: $id) {\n                name id description events { event parameters } signals\n            }\n        }";
/// `sentantAll`, short fields (the connect page counting devices).
pub const SENTANT_ALL: &str =
    "{\n            sentantAll {\n                id name\n            }\n        }";
/// `sentantAll`, long fields (the `?view` page). Not in the recorded trace:
/// the short text with the long field list.
pub const SENTANT_ALL_LONG: &str = "{\n            sentantAll {\n                name id description events { event parameters } signals\n            }\n        }";
/// `sentantLoad`.
pub const SENTANT_LOAD: &str = "mutation SentantLoad($definition: String!) {\n            sentantLoad(definition: $definition) {\n                id name\n            }\n        }";
/// `sentantSend`.
pub const SENTANT_SEND: &str = "mutation SentantSend($id: UUID4!, $event: String!, $parameters: Json, $passthrough: Json) {\n            sentantSend(id: $id, event: $event, parameters: $parameters, passthrough: $passthrough) {\n                id name\n            }\n        }";
/// `awaitSignal`, as every WebApp socket's `doc` frame carries it.
pub const AWAIT_SIGNAL: &str = "subscription AwaitSignal($id: UUID4!, $signal: String!) {\n            awaitSignal(id: $id, signal: $signal) {\n                event parameters\n            }\n        }";

/// Which fields a query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fields {
    /// `id name`.
    Short,
    /// `name id description events { event parameters } signals`.
    Long,
}

/// One request to the node, as the WebApp writes it (and `sentantUnload`,
/// which the WebApp never sends, in the one-line form).
#[derive(Debug, Clone, PartialEq)]
pub enum Request<'a> {
    SentantGetByName {
        name: &'a str,
        fields: Fields,
    },
    SentantGetById {
        id: &'a str,
        fields: Fields,
    },
    SentantAll {
        fields: Fields,
    },
    SentantLoad {
        definition: &'a str,
    },
    /// `parameters` is sent as `JSON.stringify(parameters)`; `passthrough`
    /// is always `"{}"`, as the WebApp sends it.
    SentantSend {
        id: &'a str,
        event: &'a str,
        parameters: &'a Value,
    },
    SentantUnload {
        id: &'a str,
    },
}

/// Variables in the order they are given: JavaScript's insertion order.
struct Ordered<'a>(&'a [(&'a str, Entry<'a>)]);

/// One variable's value.
enum Entry<'a> {
    Text(&'a str),
    /// A JSON value sent as its JSON text (the `Json` scalar's input form).
    JsonText(&'a Value),
}

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, entry) in self.0 {
            match entry {
                Entry::Text(text) => map.serialize_entry(key, text)?,
                Entry::JsonText(value) => map.serialize_entry(key, &value.to_string())?,
            }
        }
        map.end()
    }
}

/// The body `{"query", "variables"}` in that order.
#[derive(serde::Serialize)]
struct Body<'a> {
    query: &'a str,
    variables: &'a str,
}

/// `JSON.stringify` of a serializable value (serde_json writes strings as
/// JavaScript does: the same escapes, non-ASCII as is).
fn stringify(value: &impl Serialize) -> String {
    // Maps with string keys and strings cannot fail to serialize.
    serde_json::to_string(value).unwrap_or_default()
}

impl Request<'_> {
    /// The operation text.
    pub fn query(&self) -> &'static str {
        match self {
            Request::SentantGetByName {
                fields: Fields::Short,
                ..
            } => SENTANT_GET_BY_NAME,
            Request::SentantGetByName {
                fields: Fields::Long,
                ..
            } => SENTANT_GET_BY_NAME_LONG,
            Request::SentantGetById {
                fields: Fields::Short,
                ..
            } => SENTANT_GET_BY_ID,
            Request::SentantGetById {
                fields: Fields::Long,
                ..
            } => SENTANT_GET_BY_ID_LONG,
            Request::SentantAll {
                fields: Fields::Short,
            } => SENTANT_ALL,
            Request::SentantAll {
                fields: Fields::Long,
            } => SENTANT_ALL_LONG,
            Request::SentantLoad { .. } => SENTANT_LOAD,
            Request::SentantSend { .. } => SENTANT_SEND,
            Request::SentantUnload { .. } => SENTANT_UNLOAD,
        }
    }

    /// `JSON.stringify(vars)`: the `variables` string of the body.
    pub fn variables(&self) -> String {
        self.with_variables(|vars| stringify(vars))
    }

    /// The variables as the JSON object a `doc` frame carries (the same
    /// text as [`Request::variables`], not wrapped in a string).
    pub fn variables_object(&self) -> Box<RawValue> {
        // Maps with string keys and strings cannot fail to serialize.
        self.with_variables(|vars| serde_json::value::to_raw_value(vars).unwrap_or_default())
    }

    /// `f` of the variables, in the WebApp's order.
    fn with_variables<T>(&self, f: impl FnOnce(&Ordered) -> T) -> T {
        let empty = Value::Object(Default::default());
        let entries: Vec<(&str, Entry)> = match self {
            Request::SentantGetByName { name, .. } => vec![("name", Entry::Text(name))],
            Request::SentantGetById { id, .. } | Request::SentantUnload { id } => {
                vec![("id", Entry::Text(id))]
            }
            Request::SentantAll { .. } => Vec::new(),
            Request::SentantLoad { definition } => vec![("definition", Entry::Text(definition))],
            Request::SentantSend {
                id,
                event,
                parameters,
            } => vec![
                ("id", Entry::Text(id)),
                ("event", Entry::Text(event)),
                ("parameters", Entry::JsonText(parameters)),
                ("passthrough", Entry::JsonText(&empty)),
            ],
        };
        f(&Ordered(&entries))
    }

    /// The POST body, exactly as the WebApp writes it.
    pub fn body(&self) -> String {
        stringify(&Body {
            query: self.query(),
            variables: &self.variables(),
        })
    }

    /// The operation's root field (`sentantGet`, `sentantSend`, ...), as
    /// answers name it.
    pub fn field(&self) -> &'static str {
        match self {
            Request::SentantGetByName { .. } | Request::SentantGetById { .. } => "sentantGet",
            Request::SentantAll { .. } => "sentantAll",
            Request::SentantLoad { .. } => "sentantLoad",
            Request::SentantSend { .. } => "sentantSend",
            Request::SentantUnload { .. } => "sentantUnload",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn send_variables_keep_javascripts_key_order() {
        let parameters = json!({"sensor": 42});
        let request = Request::SentantSend {
            id: "u-1",
            event: "set_sensor",
            parameters: &parameters,
        };
        assert_eq!(
            request.variables(),
            r#"{"id":"u-1","event":"set_sensor","parameters":"{\"sensor\":42}","passthrough":"{}"}"#
        );
        // A `doc` frame carries the same object itself, in the same order.
        assert_eq!(request.variables_object().get(), request.variables());
        let body: Value = serde_json::from_str(&request.body()).expect("JSON");
        assert_eq!(body["query"], SENTANT_SEND);
        assert_eq!(body["variables"], request.variables());
        assert!(request
            .body()
            .starts_with(r#"{"query":"mutation SentantSend("#));
    }

    #[test]
    fn empty_variables_are_an_empty_object() {
        let request = Request::SentantAll {
            fields: Fields::Short,
        };
        assert_eq!(request.variables(), "{}");
        assert_eq!(
            request.body(),
            r#"{"query":"{\n            sentantAll {\n                id name\n            }\n        }","variables":"{}"}"#
        );
    }

    #[test]
    fn every_text_names_its_variables_and_field() {
        let params = json!({});
        for request in [
            Request::SentantGetByName {
                name: "x",
                fields: Fields::Short,
            },
            Request::SentantGetByName {
                name: "x",
                fields: Fields::Long,
            },
            Request::SentantGetById {
                id: "x",
                fields: Fields::Short,
            },
            Request::SentantGetById {
                id: "x",
                fields: Fields::Long,
            },
            Request::SentantLoad { definition: "x" },
            Request::SentantSend {
                id: "x",
                event: "e",
                parameters: &params,
            },
            Request::SentantUnload { id: "x" },
        ] {
            let vars: Value = serde_json::from_str(&request.variables()).expect("JSON");
            for key in vars.as_object().expect("object").keys() {
                assert!(request.query().contains(&format!("${key}:")), "{request:?}");
            }
            assert!(request.query().contains(request.field()), "{request:?}");
        }
    }
}
