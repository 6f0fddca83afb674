//! Sentant and swarm definitions: reading the JSON or YAML text a client sends
//! to `sentantLoad`/`swarmLoad`, checking its shape, and deriving what the
//! GraphQL `Sentant` type shows (`events`, `signals`).
//!
//! Like the real node, the text is first percent-decoded (the real resolver
//! runs `URI.decode` on it), then read as JSON, or as YAML when it is not JSON.
//! A sentant may be wrapped as `{"sentant": {...}}` or given bare; a swarm as
//! `{"swarm": {...}}`, bare, or as the first element of a list. Fields not
//! listed here (`plugins`, `data`, `keys`, ...) are accepted and ignored.

use std::collections::HashSet;

use percent_encoding::percent_decode_str;
use serde::Deserialize;
use serde_json::{Map, Value};

/// The plugin whose `set`/`get` commands keep a sentant's variables.
pub const VARS_PLUGIN: &str = "ai.reality2.vars";

/// Why a definition could not be read. Every variant is reported to clients as
/// the error word `definition`.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    /// Percent-decoding produced bytes that are not UTF-8.
    #[error("the definition is not UTF-8 after percent-decoding")]
    Encoding(#[source] std::str::Utf8Error),
    /// The text is neither JSON nor YAML.
    #[error("the definition is neither JSON ({json}) nor YAML")]
    Syntax {
        /// Why it is not JSON.
        json: serde_json::Error,
        /// Why it is not YAML.
        #[source]
        yaml: serde_norway::Error,
    },
    /// The document does not have the shape of a sentant or swarm definition.
    #[error("the definition does not have the expected shape")]
    Shape(#[from] serde_json::Error),
    /// Brackets nest deeper than [`MAX_NESTING`] (refused before YAML reads
    /// it: the YAML reader's time grows with the square of the nesting).
    #[error("the definition nests deeper than {MAX_NESTING} levels")]
    TooDeep,
    /// The sentant's name is empty.
    #[error("the sentant name is empty")]
    EmptyName,
}

/// A public event of a sentant, as the GraphQL `SentantEvent` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicEvent {
    /// The transition's event.
    pub event: String,
    /// The transition's declared `parameters` (`{}` when it declares none).
    pub parameters: Value,
}

/// An action of a transition.
#[derive(Debug, Clone, Deserialize)]
pub struct ActionDef {
    /// `set`, `get`, `send`, `signal`, `debug`, ...
    pub command: String,
    /// The plugin that runs the command (`ai.reality2.vars`), or none for a
    /// built-in command.
    #[serde(default)]
    pub plugin: Option<String>,
    /// The command's parameters; string values may hold `__name__` references
    /// to accumulated parameters.
    #[serde(default, deserialize_with = "null_as_default")]
    pub parameters: Map<String, Value>,
    /// Whether a `signal` action is public (it may also say so in its parameters).
    #[serde(default, deserialize_with = "null_as_default")]
    pub public: bool,
}

/// A transition of an automation.
#[derive(Debug, Clone, Deserialize)]
pub struct TransitionDef {
    /// The state it fires from; `None` (or `"*"`) means any state.
    #[serde(default)]
    pub from: Option<String>,
    /// The event that fires it.
    pub event: String,
    /// The state it moves to; `None` (or `"*"`) means stay.
    #[serde(default)]
    pub to: Option<String>,
    /// Whether the event is advertised in `events` and accepted by `sentantSend`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub public: bool,
    /// The declared parameters (documentation only, e.g. `{"sensor": "integer"}`).
    #[serde(default)]
    pub parameters: Option<Value>,
    /// What it does, in order.
    #[serde(default, deserialize_with = "null_as_default")]
    pub actions: Vec<ActionDef>,
}

/// An automation: a finite state machine starting in state `start`.
#[derive(Debug, Clone, Deserialize)]
pub struct AutomationDef {
    /// Its name.
    pub name: String,
    /// Its transitions, in order of precedence.
    #[serde(default, deserialize_with = "null_as_default")]
    pub transitions: Vec<TransitionDef>,
}

/// The raw shape of a sentant definition.
#[derive(Deserialize)]
struct RawSentant {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    automations: Vec<AutomationDef>,
}

/// The raw shape of a swarm definition.
#[derive(Deserialize)]
struct RawSwarm {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    sentants: Vec<Value>,
}

/// A checked sentant definition, with what GraphQL shows derived once.
#[derive(Debug, Clone)]
pub struct SentantDef {
    /// The sentant's name, unique on the node.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// Its automations; each gets every event.
    pub automations: Vec<AutomationDef>,
    events: Vec<PublicEvent>,
    signals: Vec<String>,
    handled: HashSet<String>,
}

impl SentantDef {
    /// Reads a sentant definition from the text a client sent.
    pub fn parse(text: &str) -> Result<Self, DefinitionError> {
        Self::from_value(read_document(text)?)
    }

    /// Builds a definition from an already-read document (`{"sentant": {...}}` or bare).
    pub fn from_value(document: Value) -> Result<Self, DefinitionError> {
        let raw: RawSentant = serde_json::from_value(unwrap_key(document, "sentant"))?;
        if raw.name.trim().is_empty() {
            return Err(DefinitionError::EmptyName);
        }
        let transitions = || raw.automations.iter().flat_map(|a| a.transitions.iter());
        let events = unique(transitions().filter(|t| t.public).map(|t| {
            PublicEvent {
                event: t.event.clone(),
                parameters: t
                    .parameters
                    .clone()
                    .unwrap_or_else(|| Value::Object(Map::new())),
            }
        }));
        let signals = unique(
            transitions()
                .flat_map(|t| t.actions.iter())
                .filter_map(public_signal)
                .map(str::to_owned),
        );
        let handled = transitions().map(|t| t.event.clone()).collect();
        Ok(SentantDef {
            name: raw.name,
            description: raw.description,
            automations: raw.automations,
            events,
            signals,
            handled,
        })
    }

    /// The public events (transitions marked `"public": true`), without duplicates.
    pub fn events(&self) -> &[PublicEvent] {
        &self.events
    }

    /// The public signals (events of `signal` actions marked public), without duplicates.
    pub fn signals(&self) -> &[String] {
        &self.signals
    }

    /// Whether `sentantSend` may send `event` (it is a public transition event).
    pub fn is_public_event(&self, event: &str) -> bool {
        self.events.iter().any(|e| e.event == event)
    }

    /// Whether clients may subscribe to `signal` (a public signal, or `debug`).
    pub fn allows_signal(&self, signal: &str) -> bool {
        signal == "debug" || self.signals.iter().any(|s| s == signal)
    }

    /// Whether any transition listens for `event`; events no transition names
    /// would do nothing, so the engine does not queue them.
    pub fn handles(&self, event: &str) -> bool {
        self.handled.contains(event)
    }
}

/// A checked swarm definition. Members that are not valid sentant definitions
/// are skipped, as the real node does.
#[derive(Debug, Clone)]
pub struct SwarmDef {
    /// The swarm's name (`""` when it has none).
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// Its valid members, in order.
    pub sentants: Vec<SentantDef>,
}

impl SwarmDef {
    /// Reads a swarm definition from the text a client sent.
    pub fn parse(text: &str) -> Result<Self, DefinitionError> {
        let document = match read_document(text)? {
            Value::Array(items) => items.into_iter().next().unwrap_or(Value::Null),
            other => other,
        };
        let raw: RawSwarm = serde_json::from_value(unwrap_key(document, "swarm"))?;
        Ok(SwarmDef {
            name: raw.name.unwrap_or_default(),
            description: raw.description,
            sentants: raw
                .sentants
                .into_iter()
                .filter_map(|member| SentantDef::from_value(member).ok())
                .collect(),
        })
    }
}

/// How deeply a definition's brackets may nest (JSON and YAML readers refuse
/// deeper documents anyway).
pub const MAX_NESTING: usize = 128;

/// Percent-decodes `text` and reads it as JSON, or else as YAML.
fn read_document(text: &str) -> Result<Value, DefinitionError> {
    let decoded = percent_decode_str(text)
        .decode_utf8()
        .map_err(DefinitionError::Encoding)?;
    serde_json::from_str(&decoded).or_else(|json| {
        if nests_deeper_than(&decoded, MAX_NESTING) {
            return Err(DefinitionError::TooDeep);
        }
        serde_norway::from_str(&decoded).map_err(|yaml| DefinitionError::Syntax { json, yaml })
    })
}

/// Whether `[`/`{` outside quoted strings nest deeper than `limit`.
fn nests_deeper_than(text: &str, limit: usize) -> bool {
    let (mut depth, mut quote, mut escaped) = (0usize, None, false);
    for c in text.chars() {
        match (quote, c) {
            (Some('"'), _) if escaped => escaped = false,
            (Some('"'), '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// `{key: inner, ...}` → `inner` when `inner` is an object; anything else unchanged.
fn unwrap_key(document: Value, key: &str) -> Value {
    match document {
        Value::Object(mut map) if map.get(key).is_some_and(Value::is_object) => {
            map.remove(key).unwrap_or(Value::Null)
        }
        other => other,
    }
}

/// The event of a `signal` action that is public, on the action or in its parameters.
fn public_signal(action: &ActionDef) -> Option<&str> {
    let public = action.public || action.parameters.get("public") == Some(&Value::Bool(true));
    (action.command == "signal" && public)
        .then(|| action.parameters.get("event").and_then(Value::as_str))
        .flatten()
}

/// Keeps the first of equal items, in order.
fn unique<T: PartialEq>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// Reads `null` as the type's default (YAML writes an empty key as null).
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sentant_with(transitions: Value) -> String {
        json!({"sentant": {"name": "s", "automations": [{"name": "a", "transitions": transitions}]}})
            .to_string()
    }

    #[test]
    fn events_are_the_public_transitions_with_their_parameters() {
        let def = SentantDef::parse(&sentant_with(json!([
            {"event": "init", "actions": []},
            {"event": "set_sensor", "public": true, "parameters": {"sensor": "integer"}},
            {"event": "update", "public": true},
            {"from": "other", "event": "update", "public": true},
        ])))
        .expect("valid definition");
        assert_eq!(
            def.events(),
            &[
                PublicEvent {
                    event: "set_sensor".into(),
                    parameters: json!({"sensor": "integer"})
                },
                PublicEvent {
                    event: "update".into(),
                    parameters: json!({})
                },
            ]
        );
        assert!(def.is_public_event("update"));
        assert!(!def.is_public_event("init"));
        assert!(def.handles("init"));
        assert!(!def.handles("nothing"));
    }

    #[test]
    fn signals_are_public_signal_actions_marked_on_the_action_or_its_parameters() {
        let def = SentantDef::parse(&sentant_with(json!([
            {"event": "a", "actions": [
                {"command": "signal", "public": true, "parameters": {"event": "on_action"}},
                {"command": "signal", "parameters": {"event": "in_parameters", "public": true}},
                {"command": "signal", "parameters": {"event": "private"}},
                {"command": "send", "public": true, "parameters": {"event": "not_a_signal"}},
                {"command": "signal", "public": true, "parameters": {"event": "on_action"}},
            ]},
        ])))
        .expect("valid definition");
        assert_eq!(
            def.signals(),
            &["on_action".to_owned(), "in_parameters".to_owned()]
        );
        assert!(def.allows_signal("in_parameters"));
        assert!(def.allows_signal("debug"));
        assert!(!def.allows_signal("private"));
    }

    #[test]
    fn yaml_and_bare_definitions_are_read() {
        let yaml = "sentant:\n  name: yaml one\n  description: from YAML\n  automations:\n    - name: a\n      transitions:\n        - event: go\n          public: true\n";
        let def = SentantDef::parse(yaml).expect("YAML definition");
        assert_eq!(def.name, "yaml one");
        assert_eq!(def.description.as_deref(), Some("from YAML"));
        assert!(def.is_public_event("go"));

        let bare = SentantDef::parse(r#"{"name": "bare"}"#).expect("bare definition");
        assert_eq!(bare.name, "bare");
        assert!(bare.automations.is_empty());
    }

    #[test]
    fn percent_encoded_text_is_decoded_first() {
        let def = SentantDef::parse("%7B%22sentant%22%3A%7B%22name%22%3A%22device%200001%22%7D%7D")
            .expect("percent-encoded definition");
        assert_eq!(def.name, "device 0001");
    }

    #[test]
    fn malformed_definitions_are_errors_not_panics() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let deep_map = format!("{}1{}", "{a: ".repeat(100_000), "}".repeat(100_000));
        let mut laughs = String::from("name: laughs\na0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for level in 1..10 {
            let previous = format!("*a{}", level - 1);
            laughs += &format!(
                "a{level}: &a{level} [{}]\n",
                [previous.as_str(); 9].join(", ")
            );
        }
        let cases = [
            &laughs,
            "",
            "not a definition",
            "{",
            "[]",
            "null",
            "42",
            r#"{"sentant": {"name": 5}}"#,
            r#"{"sentant": {"name": ""}}"#,
            r#"{"sentant": {"name": "x", "automations": {"a": 1}}}"#,
            r#"{"sentant": {"name": "x", "automations": [{"transitions": []}]}}"#,
            r#"{"sentant": {"name": "x", "automations": [{"name": "a", "transitions": [{"from": "s"}]}]}}"#,
            r#"{"sentant": {"name": "x", "automations": [{"name": "a", "transitions": [{"event": "e", "public": "yes"}]}]}}"#,
            r#"{"sentant": {"name": "x", "automations": [{"name": "a", "transitions": [{"event": "e", "actions": [{"parameters": {}}]}]}]}}"#,
            "%ff%fe",
            "a: &a [*a]",
            &deep,
            &deep_map,
        ];
        for case in cases {
            assert!(SentantDef::parse(case).is_err(), "accepted {:.60}", case);
        }
    }

    #[test]
    fn nesting_is_measured_outside_quoted_strings() {
        let nested = |n: usize| format!("{}{}", "{a: [".repeat(n), "]}".repeat(n));
        assert!(!nests_deeper_than(&nested(64), MAX_NESTING));
        assert!(nests_deeper_than(&nested(65), MAX_NESTING));
        let quoted = format!("x: \"{}\"\ny: '{}'", "[".repeat(500), "{".repeat(500));
        assert!(!nests_deeper_than(&quoted, MAX_NESTING));
        assert!(!nests_deeper_than(r#"a: "\" [[[" "#, 2));
        let def = format!("name: deep\ndescription: '{}'", "[".repeat(500));
        assert!(
            SentantDef::parse(&def).is_ok_and(|d| d.description.is_some_and(|t| t.len() == 500))
        );
    }

    #[test]
    fn huge_numbers_are_kept_or_refused_without_panicking() {
        let def = SentantDef::parse(&sentant_with(json!([
            {"event": "e", "public": true, "parameters": {"big": 1e300, "int": u64::MAX}},
        ])))
        .expect("valid definition");
        assert_eq!(def.events()[0].parameters["int"], json!(u64::MAX));
        // Out of JSON's range, so it is read as YAML, where it is the text "1e999".
        let out_of_range = SentantDef::parse(r#"{"sentant": {"name": "x", "description": 1e999}}"#)
            .map(|def| def.description);
        assert_eq!(out_of_range.ok().flatten().as_deref(), Some("1e999"));
    }

    #[test]
    fn swarms_load_their_valid_members() {
        let swarm = SwarmDef::parse(
            &json!({"swarm": {"name": "demo", "description": "two of three", "sentants": [
                {"sentant": {"name": "wrapped"}},
                {"name": "bare"},
                {"sentant": {"name": 7}},
            ]}})
            .to_string(),
        )
        .expect("valid swarm");
        assert_eq!(swarm.name, "demo");
        assert_eq!(swarm.description.as_deref(), Some("two of three"));
        let names: Vec<&str> = swarm.sentants.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["wrapped", "bare"]);
        assert!(SwarmDef::parse(r#"{"swarm": {"sentants": 3}}"#).is_err());
        assert!(SwarmDef::parse("nonsense").is_err());
    }
}
