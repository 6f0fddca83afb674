//! The real node's replacement of `__key__` references in an action's
//! parameters ([`Values::Text`](crate::fidelity::Values::Text), the default),
//! as `Reality2.Automation.interpret` and `replace_variable_in_map` do it:
//!
//! - a string inside an object (the action's parameters, or an object in
//!   them) has each known reference replaced by the value's text
//!   ([`text_of`]) and **stays a string**: the `ai.reality2.vars` `set` of
//!   `"__sensor__"` with `sensor: 42` stores `"42"`;
//! - a string that is an item of a list is replaced the same way and then
//!   read back as a number when it is all number ([`number_of`]);
//! - the built-in `set` command reads its `value` back as a number the same
//!   way (so the built-in `set` of `"__sensor__"` keeps `42`);
//! - anything that is not a string stays as it is (the `init` value `0`).
//!
//! A value whose text is longer than [`MAX_TEXT`] leaves its reference as it
//! is (the real node has no bound; this one keeps a `set` loop that writes a
//! value into itself from growing without end). The node's value limit
//! (`--max-value-bytes`, [`crate::limits`]) applies as in the typed
//! replacement: a longer value or built string fails the action.

use serde_json::{Map, Value};

use super::automation::substitute;
use super::definition::ActionDef;
use crate::fidelity::{number_of, text_of};
use crate::limits::Hit;

/// The longest text one reference is replaced by, in bytes.
pub const MAX_TEXT: usize = 64 * 1024;

/// The action's parameters with references to `accumulated` replaced as
/// text; a value or built string of more than `max` bytes is refused
/// ([`Hit::ValueBytes`], the node's `--max-value-bytes`).
pub fn parameters(
    action: &ActionDef,
    accumulated: &Map<String, Value>,
    max: usize,
) -> Result<Map<String, Value>, Hit> {
    let mut parameters = in_map(&action.parameters, accumulated, max)?;
    if action.plugin.is_none() && action.command == "set" {
        if let Some(value) = parameters.get_mut("value") {
            *value = as_number(std::mem::take(value));
        }
    }
    Ok(parameters)
}

/// Every string of `map` (and of the objects and lists in it) replaced.
fn in_map(
    map: &Map<String, Value>,
    vars: &Map<String, Value>,
    max: usize,
) -> Result<Map<String, Value>, Hit> {
    map.iter()
        .map(|(key, value)| Ok((key.clone(), replaced(value, vars, max)?)))
        .collect()
}

/// `value` with its references replaced: strings stay strings.
fn replaced(value: &Value, vars: &Map<String, Value>, max: usize) -> Result<Value, Hit> {
    Ok(match value {
        Value::String(text) => Value::String(text_with(text, vars, max)?),
        Value::Object(map) => Value::Object(in_map(map, vars, max)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| replaced(item, vars, max).map(as_number))
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

/// A string that is all number as that number; anything else unchanged.
fn as_number(value: Value) -> Value {
    match value {
        Value::String(text) => number_of(&text).map_or(Value::String(text), Value::Number),
        other => other,
    }
}

/// `text` with each known reference replaced by its value's text.
fn text_with(text: &str, vars: &Map<String, Value>, max: usize) -> Result<String, Hit> {
    if !text.contains("__") {
        return Ok(text.to_owned());
    }
    substitute(
        text,
        vars,
        |value| text_of(value).filter(|text| text.len() <= MAX_TEXT),
        max,
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The default `--max-value-bytes`.
    const MAX: usize = 256 * 1024;

    fn action(value: Value) -> ActionDef {
        serde_json::from_value(value).expect("an action")
    }

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn strings_in_objects_are_replaced_as_text_and_stay_strings() {
        let vars = map(
            json!({"sensor": 42, "f": 2.5, "name": "dev", "obj": {"b": 1, "a": 2},
            "no": false, "nothing": null}),
        );
        let set = action(
            json!({"command": "set", "plugin": "ai.reality2.vars", "parameters": {
            "key": "sensor", "value": "__sensor__", "float": "__f__", "name": "hello __name__",
            "obj": "__obj__", "false": "__no__", "null": "__nothing__", "unknown": "__unknown__",
            "zero": 0, "nested": {"deep": "__sensor__"}}}),
        );
        assert_eq!(
            Value::Object(parameters(&set, &vars, MAX).expect("within the limit")),
            json!({"key": "sensor", "value": "42", "float": "2.5", "name": "hello dev",
                "obj": r#"{"a":2,"b":1}"#, "false": "__no__", "null": "__nothing__",
                "unknown": "__unknown__", "zero": 0, "nested": {"deep": "42"}})
        );
    }

    #[test]
    fn list_items_and_the_builtin_set_value_are_read_back_as_numbers() {
        let vars = map(json!({"sensor": "42", "n": 7}));
        let send = action(json!({"command": "send", "parameters": {
            "to": ["__sensor__", "x__n__", "12", {"k": "__n__"}], "event": "__n__"}}));
        assert_eq!(
            Value::Object(parameters(&send, &vars, MAX).expect("within the limit")),
            json!({"to": [42, "x7", 12, {"k": "7"}], "event": "7"})
        );
        let builtin =
            action(json!({"command": "set", "parameters": {"key": "s", "value": "__sensor__"}}));
        assert_eq!(
            parameters(&builtin, &vars, MAX).expect("within the limit")["value"],
            json!(42)
        );
        let plugin = action(json!({"command": "set", "plugin": "ai.reality2.vars",
            "parameters": {"key": "s", "value": "__sensor__"}}));
        assert_eq!(
            parameters(&plugin, &vars, MAX).expect("within the limit")["value"],
            json!("42")
        );
    }

    #[test]
    fn a_value_too_long_to_write_leaves_its_reference() {
        let vars = map(json!({"big": "x".repeat(MAX_TEXT + 1), "fits": "y".repeat(MAX_TEXT)}));
        assert_eq!(text_with("__big__", &vars, MAX).as_deref(), Ok("__big__"));
        assert_eq!(
            text_with("__fits__", &vars, MAX).map(|t| t.len()),
            Ok(MAX_TEXT)
        );
    }

    #[test]
    fn the_value_limit_holds_for_text_too() {
        let vars = map(json!({"s": "x".repeat(100), "obj": {"k": "y".repeat(100)}}));
        assert_eq!(text_with("__s__", &vars, 100).map(|t| t.len()), Ok(100));
        assert_eq!(text_with("a__s__", &vars, 100), Err(Hit::ValueBytes));
        assert_eq!(text_with("__obj__", &vars, 100), Err(Hit::ValueBytes));
        let set = action(json!({"command": "set", "plugin": "ai.reality2.vars",
            "parameters": {"key": "s", "value": "__s____s__"}}));
        assert_eq!(parameters(&set, &vars, 150), Err(Hit::ValueBytes));
    }
}
