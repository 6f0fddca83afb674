//! GraphQL documents, request bodies and answers, exactly as the IoT demo
//! WebApp sends and reads them.
//!
//! The operation texts are those of `reality2-protocol.md`, with the field
//! lists the WebApp asks for. Request bodies follow the WebApp's
//! `JSON.stringify({query, variables: JSON.stringify(vars)})`: `variables` is a
//! *string* holding JSON, and `Json`-typed arguments (`parameters`,
//! `passthrough`) are strings holding JSON too.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};

use crate::text::excerpt;

/// `sentantAll`, as the device page counts sentants.
pub const SENTANT_ALL: &str = "{ sentantAll { id name } }";
/// Loads (or redefines) a sentant from a definition text.
pub const SENTANT_LOAD: &str =
    "mutation SentantLoad($definition: String!) { sentantLoad(definition: $definition) { id name } }";
/// Unloads a sentant by id.
pub const SENTANT_UNLOAD: &str =
    "mutation SentantUnload($id: UUID4!) { sentantUnload(id: $id) { id name } }";
/// Sends an event (with `Json` parameters and passthrough) to a sentant.
pub const SENTANT_SEND: &str = "mutation SentantSend($id: UUID4!, $event: String!, $parameters: Json, $passthrough: Json) { sentantSend(id: $id, event: $event, parameters: $parameters, passthrough: $passthrough) { id name } }";
/// `sentantGet` by id, with the sensor page's field list.
pub const SENTANT_GET_BY_ID: &str = "query SentantGet($id: UUID4!) { sentantGet(id: $id) { name id description events { event parameters } signals } }";
/// `sentantGet` by name (how the projector looks for `monitor`).
pub const SENTANT_GET_BY_NAME: &str =
    "query SentantGet($name: String!) { sentantGet(name: $name) { id name } }";
/// The subscription every device page opens on its own sentant.
pub const AWAIT_SIGNAL: &str = "subscription AwaitSignal($id: UUID4!, $signal: String!) { awaitSignal(id: $id, signal: $signal) { event parameters } }";

/// The WebApp's device sentant, as `JSON.stringify(template)` writes it.
/// Every `__name__` is replaced by the device name before loading
/// ([`device_definition`]); `__sensor__` is for the node's vars plugin.
pub const DEVICE_TEMPLATE: &str = concat!(
    r#"{"sentant":{"name":"__name__","automations":[{"name":"counter","transitions":["#,
    r#"{"event":"init","actions":["#,
    r#"{"command":"set","plugin":"ai.reality2.vars","parameters":{"key":"name","value":"__name__"}},"#,
    r#"{"command":"set","plugin":"ai.reality2.vars","parameters":{"key":"sensor","value":0}}]},"#,
    r#"{"event":"set_sensor","public":true,"parameters":{"sensor":"integer"},"actions":["#,
    r#"{"command":"set","plugin":"ai.reality2.vars","parameters":{"key":"sensor","value":"__sensor__"}}]},"#,
    r#"{"event":"update","public":true,"actions":["#,
    r#"{"command":"get","plugin":"ai.reality2.vars","parameters":{"key":"sensor"}},"#,
    r#"{"command":"get","plugin":"ai.reality2.vars","parameters":{"key":"name"}},"#,
    r#"{"command":"send","parameters":{"event":"update","to":"view"}},"#,
    r#"{"command":"signal","public":true,"parameters":{"event":"update"}}]}]}]}}"#
);

/// The name the device template's placeholder stands for.
const NAME_PLACEHOLDER: &str = "__name__";

/// The device definition for `name`: [`DEVICE_TEMPLATE`] with every
/// `__name__` replaced by the name, JSON-escaped (so a quote or backslash in
/// the name cannot break the JSON).
pub fn device_definition(name: &str) -> String {
    let quoted = Value::String(name.to_owned()).to_string();
    let escaped = &quoted[1..quoted.len() - 1];
    DEVICE_TEMPLATE.replace(NAME_PLACEHOLDER, escaped)
}

/// The `view` sentant, byte for byte as the WebApp loads it (its source's
/// key order): re-publishes every `update` it is sent as its own public
/// signal `update`.
pub const VIEW_DEFINITION: &str = r#"{"sentant":{"name":"view","automations":[{"name":"view","transitions":[{"event":"update","public":true,"actions":[{"command":"signal","public":true,"parameters":{"event":"update"}}]}]}]}}"#;

/// The `monitor` sentant, byte for byte as the WebApp loads it: the node's
/// `__internal` event (sentant created/deleted) becomes the public signal
/// `internal`. (The transition itself is not public: the node sends
/// `__internal` to every sentant.)
pub const MONITOR_DEFINITION: &str = r#"{"sentant":{"name":"monitor","automations":[{"name":"Monitor","transitions":[{"event":"__internal","actions":[{"command":"signal","parameters":{"public":true,"event":"internal"}}]}]}]}}"#;

/// [`VIEW_DEFINITION`], owned.
pub fn view_definition() -> String {
    VIEW_DEFINITION.to_owned()
}

/// [`MONITOR_DEFINITION`], owned.
pub fn monitor_definition() -> String {
    MONITOR_DEFINITION.to_owned()
}

/// A POST body as the WebApp writes it: `{"query", "variables"}` where
/// `variables` is the variables object serialized into a JSON string.
pub fn webapp_body(query: &str, variables: &Value) -> String {
    json!({ "query": query, "variables": variables.to_string() }).to_string()
}

/// Variables for [`SENTANT_SEND`], as the WebApp's `sentantSend` makes them:
/// `parameters` and `passthrough` are JSON text (the `Json` input scalar);
/// the WebApp always sends `passthrough: JSON.stringify({})`.
pub fn send_variables(id: &str, event: &str, parameters: &Value) -> Value {
    json!({
        "id": id,
        "event": event,
        "parameters": parameters.to_string(),
        "passthrough": "{}",
    })
}

/// Variables for [`SENTANT_LOAD`].
pub fn load_variables(definition: &str) -> Value {
    json!({ "definition": definition })
}

/// Variables for [`SENTANT_GET_BY_ID`] and [`SENTANT_UNLOAD`].
pub fn id_variables(id: &str) -> Value {
    json!({ "id": id })
}

/// Variables for [`SENTANT_GET_BY_NAME`].
pub fn name_variables(name: &str) -> Value {
    json!({ "name": name })
}

/// The variables of [`AWAIT_SIGNAL`], typed: `{"id", "signal"}`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct AwaitSignalVariables<'a> {
    pub id: &'a str,
    pub signal: &'a str,
}

/// Variables for [`AWAIT_SIGNAL`], as a JSON value.
pub fn await_signal_variables(id: &str, signal: &str) -> Value {
    // Two strings always serialize.
    serde_json::to_value(AwaitSignalVariables { id, signal }).unwrap_or_default()
}

/// How many characters of a body an error keeps.
const EXCERPT_CHARS: usize = 200;

/// The node's error words: the `message` of an answer's first error (or of a
/// refused subscription), read once into a type instead of compared as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum NodeError {
    /// The event is not a public event of that sentant.
    #[error("invalid_event")]
    InvalidEvent,
    /// No sentant with that id.
    #[error("id")]
    Id,
    /// No sentant with that name.
    #[error("name")]
    Name,
    /// The definition could not be read.
    #[error("definition")]
    Definition,
    /// The sentant does not exist or does not have that public signal
    /// (a refused subscription).
    #[error("invalid_signal")]
    InvalidSignal,
    /// Any other message, kept as the node wrote it.
    #[error("{0}")]
    Other(String),
}

impl NodeError {
    /// The error a message names.
    pub fn from_message(message: &str) -> NodeError {
        match message {
            "invalid_event" => NodeError::InvalidEvent,
            "id" => NodeError::Id,
            "name" => NodeError::Name,
            "definition" => NodeError::Definition,
            "invalid_signal" => NodeError::InvalidSignal,
            other => NodeError::Other(other.to_owned()),
        }
    }

    /// The error of a refused subscription's `response`
    /// (`{"errors":[{"message": ...}]}`), or the response itself as text.
    pub fn from_response(response: &Value) -> NodeError {
        match response
            .pointer("/errors/0/message")
            .and_then(Value::as_str)
        {
            Some(message) => NodeError::from_message(message),
            None => NodeError::Other(response.to_string()),
        }
    }

    /// Whether the error says the sentant is not on the node (an unknown id,
    /// or a subscription to a sentant that is gone).
    pub fn is_gone(&self) -> bool {
        matches!(self, NodeError::Id | NodeError::InvalidSignal)
    }
}

/// Why an answer could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The body is not JSON (an HTML error page, a truncated answer, ...).
    #[error("answer is not JSON: {excerpt:?}")]
    NotJson {
        excerpt: String,
        #[source]
        source: serde_json::Error,
    },
    /// JSON, but neither `data` nor `errors` is there, or they have the wrong shape.
    #[error("answer is not a GraphQL response: {excerpt:?}")]
    NotGraphQl {
        excerpt: String,
        #[source]
        source: Option<serde_json::Error>,
    },
    /// The field asked for is null or absent and the node said why.
    #[error("{field}: node answered with error \"{error}\"")]
    Rejected { field: String, error: NodeError },
    /// The field asked for is null or absent, with no error given.
    #[error("{field}: missing from the answer")]
    Missing { field: String },
    /// The field is there but is not a sentant `{id, name}` (or a list of them).
    #[error("{field}: not a sentant with string id and name: {excerpt:?}")]
    NotSentant { field: String, excerpt: String },
}

/// One entry of a response's `errors`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct GqlError {
    pub message: String,
    #[serde(default)]
    pub path: Vec<Value>,
    #[serde(default)]
    pub locations: Vec<Value>,
}

/// A GraphQL answer: `data` and `errors`. `data` is the JSON tree by
/// default (`Value::Null` when absent or null), or any [`AnswerData`] that
/// keeps only what its reader needs ([`SentantAll`]).
#[derive(Debug, Clone, PartialEq)]
pub struct GqlResponse<D = Value> {
    pub data: D,
    pub errors: Vec<GqlError>,
}

/// What an answer's `data` is read into.
pub trait AnswerData: DeserializeOwned + Default {
    /// Whether `data` was null or absent.
    fn is_absent(&self) -> bool;
}

impl AnswerData for Value {
    fn is_absent(&self) -> bool {
        self.is_null()
    }
}

impl<T: DeserializeOwned> AnswerData for Option<T> {
    fn is_absent(&self) -> bool {
        self.is_none()
    }
}

/// `data` of a `sentantAll` answer, read straight from the body into its
/// sentants. A join asks for every sentant on the node: in a run of
/// thousands, each answer lists thousands, and every device joining holds
/// one; the JSON tree of such an answer is several times the size of the
/// sentants it names.
#[derive(Debug, Default, Deserialize)]
pub struct SentantAll {
    #[serde(rename = "sentantAll", default)]
    listed: Option<Listed>,
}

/// `sentantAll`'s value: a list, each entry a sentant, null, or something
/// else (kept as an excerpt for the error); or not a list at all.
#[derive(Debug)]
enum Listed {
    List(Vec<Result<Option<SentantRef>, String>>),
    NotAList(String),
}

impl<'de> Deserialize<'de> for Listed {
    fn deserialize<De: Deserializer<'de>>(de: De) -> Result<Self, De::Error> {
        de.deserialize_any(ListedVisitor)
    }
}

struct ListedVisitor;

impl<'de> Visitor<'de> for ListedVisitor {
    type Value = Listed;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of sentants")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Listed, A::Error> {
        let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(entry) = seq.next_element::<Entry>()? {
            list.push(entry.0);
        }
        Ok(Listed::List(list))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Listed, A::Error> {
        let value = Value::deserialize(MapAccessDeserializer::new(map))?;
        Ok(Listed::NotAList(value.to_string()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Listed, E> {
        Ok(Listed::NotAList(Value::from(v).to_string()))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Listed, E> {
        Ok(Listed::NotAList(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Listed, E> {
        Ok(Listed::NotAList(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Listed, E> {
        Ok(Listed::NotAList(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Listed, E> {
        Ok(Listed::NotAList(v.to_string()))
    }
}

/// One entry of `sentantAll`: a sentant, null, or (as an excerpt) neither.
struct Entry(Result<Option<SentantRef>, String>);

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<De: Deserializer<'de>>(de: De) -> Result<Self, De::Error> {
        // Only an entry that is not a sentant is kept whole, for its excerpt.
        let value = Option::<EntryShape>::deserialize(de)?;
        Ok(Entry(match value {
            None => Ok(None),
            Some(EntryShape::Sentant(sentant)) => Ok(Some(sentant)),
            Some(EntryShape::Other(other)) => Err(other.to_string()),
        }))
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum EntryShape {
    Sentant(SentantRef),
    Other(Value),
}

/// A sentant as `{ id name }` names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, Deserialize)]
pub struct SentantRef {
    pub id: String,
    pub name: String,
}

impl<D> GqlResponse<D> {
    /// The first error's message, if any.
    pub fn first_error_message(&self) -> Option<&str> {
        self.errors.first().map(|e| e.message.as_str())
    }

    /// The first error, read as one of the node's error words.
    pub fn node_error(&self) -> Option<NodeError> {
        self.first_error_message().map(NodeError::from_message)
    }
}

impl GqlResponse {
    /// The value at a dotted path under `data` (`sentantLoad.id`,
    /// `sentantAll.0.name`), like the WebApp's `R2.JSONPath`. `None` when
    /// any step is missing.
    pub fn field(&self, path: &str) -> Option<&Value> {
        path.split('.')
            .try_fold(&self.data, |value, step| match value {
                Value::Array(items) => step.parse::<usize>().ok().and_then(|i| items.get(i)),
                Value::Object(map) => map.get(step),
                _ => None,
            })
    }

    /// The non-null value at `path`, or why it is not there.
    fn required(&self, path: &str) -> Result<&Value, ProtocolError> {
        match self.field(path) {
            Some(value) if !value.is_null() => Ok(value),
            _ => Err(match self.node_error() {
                Some(error) => ProtocolError::Rejected {
                    field: path.to_owned(),
                    error,
                },
                None => ProtocolError::Missing {
                    field: path.to_owned(),
                },
            }),
        }
    }
}

/// Reads an HTTP answer body, `data` as the JSON tree.
pub fn parse_response(body: &str) -> Result<GqlResponse, ProtocolError> {
    parse_response_as(body)
}

/// Reads an HTTP answer body in one pass, `data` straight into `D`.
pub fn parse_response_as<D: AnswerData>(body: &str) -> Result<GqlResponse<D>, ProtocolError> {
    let not_graphql = |source| ProtocolError::NotGraphQl {
        excerpt: excerpt(body, EXCERPT_CHARS),
        source,
    };
    let mut reader = serde_json::Deserializer::from_str(body);
    let read = Answer::<D>::deserialize(&mut reader).and_then(|answer| {
        reader.end()?;
        Ok(answer)
    });
    match read {
        Ok(Answer(Some(response))) => Ok(response),
        Ok(Answer(None)) => Err(not_graphql(None)),
        Err(e) if e.is_data() => Err(not_graphql(Some(e))),
        Err(source) => Err(ProtocolError::NotJson {
            excerpt: excerpt(body, EXCERPT_CHARS),
            source,
        }),
    }
}

/// A JSON body read as a GraphQL answer: `None` when it is JSON but not an
/// object holding `data` or `errors`.
struct Answer<D>(Option<GqlResponse<D>>);

impl<'de, D: AnswerData> Deserialize<'de> for Answer<D> {
    fn deserialize<De: Deserializer<'de>>(de: De) -> Result<Self, De::Error> {
        de.deserialize_any(AnswerVisitor(PhantomData))
    }
}

struct AnswerVisitor<D>(PhantomData<D>);

impl<D> AnswerVisitor<D> {
    fn neither<E>(self) -> Result<Answer<D>, E> {
        Ok(Answer(None))
    }
}

impl<'de, D: AnswerData> Visitor<'de> for AnswerVisitor<D> {
    type Value = Answer<D>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a GraphQL response")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Answer<D>, A::Error> {
        let mut response = GqlResponse {
            data: D::default(),
            errors: Vec::new(),
        };
        let mut seen = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "data" => {
                    seen = true;
                    response.data = map.next_value::<Option<D>>()?.unwrap_or_default();
                }
                "errors" => {
                    seen = true;
                    response.errors = map.next_value()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Answer(seen.then_some(response)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Answer<D>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.neither()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Answer<D>, E> {
        self.neither()
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Answer<D>, E> {
        self.neither()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Answer<D>, E> {
        self.neither()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Answer<D>, E> {
        self.neither()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Answer<D>, E> {
        self.neither()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Answer<D>, E> {
        self.neither()
    }
}

fn sentant_of(value: &Value, field: &str) -> Result<SentantRef, ProtocolError> {
    SentantRef::deserialize(value).map_err(|_| ProtocolError::NotSentant {
        field: field.to_owned(),
        excerpt: excerpt(&value.to_string(), EXCERPT_CHARS),
    })
}

/// The `{id, name}` at `field` (e.g. `sentantLoad`, `sentantGet`).
pub fn sentant_ref(resp: &GqlResponse, field: &str) -> Result<SentantRef, ProtocolError> {
    sentant_of(resp.required(field)?, field)
}

/// The sentants a `sentantAll` answer lists (null entries are skipped).
pub fn sentants(resp: GqlResponse<Option<SentantAll>>) -> Result<Vec<SentantRef>, ProtocolError> {
    let error = resp.node_error();
    match resp.data.and_then(|data| data.listed) {
        Some(Listed::List(entries)) => entries
            .into_iter()
            .filter_map(Result::transpose)
            .map(|entry| entry.map_err(|other| not_a_sentant(&other)))
            .collect(),
        Some(Listed::NotAList(other)) => Err(not_a_sentant(&other)),
        None => Err(match error {
            Some(error) => ProtocolError::Rejected {
                field: SENTANT_ALL_FIELD.to_owned(),
                error,
            },
            None => ProtocolError::Missing {
                field: SENTANT_ALL_FIELD.to_owned(),
            },
        }),
    }
}

const SENTANT_ALL_FIELD: &str = "sentantAll";

fn not_a_sentant(text: &str) -> ProtocolError {
    ProtocolError::NotSentant {
        field: SENTANT_ALL_FIELD.to_owned(),
        excerpt: excerpt(text, EXCERPT_CHARS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The listing read from the JSON tree: what [`sentants`] must agree with.
    fn sentant_list(resp: &GqlResponse) -> Result<Vec<SentantRef>, ProtocolError> {
        let value = resp.required(SENTANT_ALL_FIELD)?;
        let items = value
            .as_array()
            .ok_or_else(|| not_a_sentant(&value.to_string()))?;
        items
            .iter()
            .filter(|item| !item.is_null())
            .map(|item| sentant_of(item, SENTANT_ALL_FIELD))
            .collect()
    }

    /// The device template exactly as written in `reality2-protocol.md`.
    const PROTOCOL_TEMPLATE: &str = r#"{"sentant": {"name": "__name__", "automations": [{"name": "counter", "transitions": [
  {"event": "init", "actions": [
    {"command": "set", "plugin": "ai.reality2.vars", "parameters": {"key": "name", "value": "__name__"}},
    {"command": "set", "plugin": "ai.reality2.vars", "parameters": {"key": "sensor", "value": 0}}]},
  {"event": "set_sensor", "public": true, "parameters": {"sensor": "integer"}, "actions": [
    {"command": "set", "plugin": "ai.reality2.vars", "parameters": {"key": "sensor", "value": "__sensor__"}}]},
  {"event": "update", "public": true, "actions": [
    {"command": "get", "plugin": "ai.reality2.vars", "parameters": {"key": "sensor"}},
    {"command": "get", "plugin": "ai.reality2.vars", "parameters": {"key": "name"}},
    {"command": "send", "parameters": {"event": "update", "to": "view"}},
    {"command": "signal", "public": true, "parameters": {"event": "update"}}]}]}]}}"#;

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).expect("test text is JSON")
    }

    #[test]
    fn device_template_is_the_protocol_template() {
        assert_eq!(parse(DEVICE_TEMPLATE), parse(PROTOCOL_TEMPLATE));
        assert!(
            !DEVICE_TEMPLATE.contains(' '),
            "compact, like JSON.stringify"
        );
    }

    #[test]
    fn device_definition_replaces_every_name_and_escapes_it() {
        for name in ["r2s-abc-1-0001", r#"we"ird\ name"#, "ünï €"] {
            let def = parse(&device_definition(name));
            assert_eq!(def["sentant"]["name"], json!(name));
            let init = &def["sentant"]["automations"][0]["transitions"][0]["actions"][0];
            assert_eq!(init["parameters"]["value"], json!(name));
            let set = &def["sentant"]["automations"][0]["transitions"][1]["actions"][0];
            assert_eq!(set["parameters"]["value"], json!("__sensor__"));
            assert!(!def.to_string().contains("__name__"));
        }
    }

    #[test]
    fn view_and_monitor_signal_what_the_webapp_expects() {
        let view = parse(&view_definition());
        assert_eq!(view["sentant"]["name"], "view");
        let t = &view["sentant"]["automations"][0]["transitions"][0];
        assert_eq!(
            (&t["event"], &t["public"]),
            (&json!("update"), &json!(true))
        );
        assert_eq!(t["actions"][0]["command"], "signal");
        assert_eq!(t["actions"][0]["public"], true);
        assert_eq!(t["actions"][0]["parameters"]["event"], "update");

        let monitor = parse(&monitor_definition());
        assert_eq!(monitor["sentant"]["name"], "monitor");
        let t = &monitor["sentant"]["automations"][0]["transitions"][0];
        assert_eq!(t["event"], "__internal");
        assert_eq!(
            t["actions"][0]["parameters"],
            json!({"public": true, "event": "internal"})
        );
    }

    #[test]
    fn bodies_hold_json_strings_like_the_webapp() {
        let vars = send_variables("u-1", "set_sensor", &json!({"sensor": 42}));
        let body = parse(&webapp_body(SENTANT_SEND, &vars));
        assert_eq!(body["query"], SENTANT_SEND);
        let inner = body["variables"].as_str().expect("variables is a string");
        let inner = parse(inner);
        assert_eq!(inner["id"], "u-1");
        assert_eq!(inner["event"], "set_sensor");
        let params = inner["parameters"]
            .as_str()
            .expect("parameters is a string");
        assert_eq!(parse(params), json!({"sensor": 42}));
        assert_eq!(inner["passthrough"], "{}");
        assert_eq!(
            parse(&webapp_body(SENTANT_ALL, &json!({})))["variables"],
            "{}"
        );
    }

    #[test]
    fn documents_name_their_variables() {
        for (doc, vars) in [
            (SENTANT_LOAD, load_variables("x")),
            (SENTANT_UNLOAD, id_variables("x")),
            (SENTANT_GET_BY_ID, id_variables("x")),
            (SENTANT_GET_BY_NAME, name_variables("x")),
            (AWAIT_SIGNAL, await_signal_variables("x", "update")),
            (SENTANT_SEND, send_variables("x", "e", &json!({}))),
        ] {
            for key in vars.as_object().expect("object").keys() {
                assert!(doc.contains(&format!("${key}:")), "{doc} lacks ${key}");
            }
        }
    }

    #[test]
    fn parse_data_fields_and_sentants() {
        let resp =
            parse_response(r#"{"data":{"sentantLoad":{"id":"u-1","name":"d"}}}"#).expect("valid");
        assert_eq!(resp.field("sentantLoad.id"), Some(&json!("u-1")));
        assert_eq!(resp.field("sentantLoad.nope"), None);
        assert_eq!(
            sentant_ref(&resp, "sentantLoad").expect("sentant"),
            SentantRef {
                id: "u-1".into(),
                name: "d".into()
            }
        );
        let all = parse_response(
            r#"{"data":{"sentantAll":[{"id":"a","name":"x"},null,{"id":"b","name":"y"}]}}"#,
        )
        .expect("valid");
        assert_eq!(all.field("sentantAll.2.name"), Some(&json!("y")));
        let names: Vec<_> = sentant_list(&all)
            .expect("list")
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["x", "y"]);
    }

    /// `sentantAll` read straight into its sentants gives what the JSON
    /// tree gives, error for error.
    #[test]
    fn sentant_all_read_directly_agrees_with_the_tree() {
        let many: Vec<Value> = (0..500)
            .map(|i| json!({"id": format!("u-{i}"), "name": format!("d\\\"{i}"), "description": null}))
            .collect();
        let many = json!({"data": {"sentantAll": many}, "extensions": {"x": [1]}}).to_string();
        for body in [
            r#"{"data":{"sentantAll":[{"id":"a","name":"x"},null,{"id":"b","name":"y"}]}}"#,
            r#"{"data":{"sentantAll":[]}}"#,
            r#"{"data":{"sentantAll":[{"id":"a","name":"x"},{"id":3,"name":"y"}]}}"#,
            r#"{"data":{"sentantAll":{"id":"a"}}}"#,
            r#"{"data":{"sentantAll":"a"}}"#,
            r#"{"data":{"sentantAll":null}}"#,
            r#"{"data":{}}"#,
            r#"{"data":null,"errors":[{"message":"id"}]}"#,
            r#"{"errors":[{"message":"parse"}]}"#,
            &many,
        ] {
            let tree = sentant_list(&parse_response(body).expect("an answer"));
            let direct = sentants(parse_response_as(body).expect("an answer"));
            match (&tree, &direct) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{body}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{body}"),
                _ => panic!("{body}: {tree:?} against {direct:?}"),
            }
        }
        assert_eq!(
            sentants(parse_response_as(&many).unwrap()).unwrap().len(),
            500
        );
        for body in [
            "<html>",
            r#"{"hello":1}"#,
            r#"{"data":{"sentantAll":[]}} x"#,
        ] {
            assert_eq!(
                parse_response_as::<Option<SentantAll>>(body)
                    .map(drop)
                    .map_err(|e| e.to_string()),
                parse_response(body).map(drop).map_err(|e| e.to_string()),
                "{body}"
            );
        }
    }

    #[test]
    fn errors_are_reported_with_their_message() {
        let resp = parse_response(
            r#"{"data":null,"errors":[{"message":"invalid_event","locations":[{"line":1,"column":2}],"path":["sentantSend"]}]}"#,
        )
        .expect("valid");
        assert_eq!(resp.first_error_message(), Some("invalid_event"));
        assert_eq!(resp.errors[0].path, vec![json!("sentantSend")]);
        match sentant_ref(&resp, "sentantSend") {
            Err(ProtocolError::Rejected { field, error }) => {
                assert_eq!(
                    (field.as_str(), error),
                    ("sentantSend", NodeError::InvalidEvent)
                )
            }
            other => panic!("{other:?}"),
        }
        let only_errors = parse_response(r#"{"errors":[{"message":"parse"}]}"#).expect("valid");
        assert_eq!(only_errors.data, Value::Null);
        let empty = parse_response(r#"{"data":{"sentantGet":null}}"#).expect("valid");
        assert!(matches!(
            sentant_ref(&empty, "sentantGet"),
            Err(ProtocolError::Missing { .. })
        ));
    }

    #[test]
    fn node_error_words_are_read_once() {
        for (word, error) in [
            ("invalid_event", NodeError::InvalidEvent),
            ("id", NodeError::Id),
            ("name", NodeError::Name),
            ("definition", NodeError::Definition),
            ("invalid_signal", NodeError::InvalidSignal),
            ("something else", NodeError::Other("something else".into())),
        ] {
            assert_eq!(NodeError::from_message(word), error);
            assert_eq!(error.to_string(), word, "Display is the node's word");
        }
        let refused = json!({"errors": [{"message": "invalid_signal", "locations": []}]});
        assert_eq!(NodeError::from_response(&refused), NodeError::InvalidSignal);
        assert!(NodeError::from_response(&refused).is_gone());
        assert!(!NodeError::InvalidEvent.is_gone());
        assert_eq!(
            NodeError::from_response(&json!({"odd": 1})),
            NodeError::Other(r#"{"odd":1}"#.into())
        );
        let resp = parse_response(r#"{"data":null,"errors":[{"message":"id"}]}"#).expect("valid");
        assert_eq!(resp.node_error(), Some(NodeError::Id));
    }

    #[test]
    fn malformed_answers_are_refused_with_the_reason() {
        let html = format!("<html>{}</html>", "x".repeat(1000));
        match parse_response(&html) {
            Err(e @ ProtocolError::NotJson { .. }) => {
                assert!(std::error::Error::source(&e).is_some());
                let ProtocolError::NotJson { excerpt, .. } = &e else {
                    unreachable!()
                };
                assert!(excerpt.starts_with("<html>") && excerpt.chars().count() <= 201);
            }
            other => panic!("{other:?}"),
        }
        for body in [r#"{"hello":1}"#, "[1,2]", "42"] {
            assert!(
                matches!(
                    parse_response(body),
                    Err(ProtocolError::NotGraphQl { source: None, .. })
                ),
                "{body}"
            );
        }
        assert!(matches!(
            parse_response(r#"{"errors":"boom"}"#),
            Err(ProtocolError::NotGraphQl {
                source: Some(_),
                ..
            })
        ));
        let bad =
            parse_response(r#"{"data":{"sentantLoad":{"id":3},"sentantAll":{}}}"#).expect("valid");
        assert!(matches!(
            sentant_ref(&bad, "sentantLoad"),
            Err(ProtocolError::NotSentant { .. })
        ));
        assert!(matches!(
            sentant_list(&bad),
            Err(ProtocolError::NotSentant { .. })
        ));
    }
}
