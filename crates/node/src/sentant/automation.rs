//! The automations of one sentant, run as finite state machines, and the
//! actions their transitions perform.
//!
//! [`Machine`] is pure: handling an event updates the automation states and
//! the `ai.reality2.vars` variables, and lists the [`Effect`]s (sends to
//! sentants, published signals) for the registry's task to carry out.
//!
//! Each automation starts in state `start`. On an event, each automation fires
//! the first transition (in order) whose `from` (default `*`, any) and `event`
//! match, runs its actions, and moves to its `to` (default `*`, stay). The
//! *accumulated parameters* start as the event's parameters; each action's
//! result is merged into them, with `"result": "ok"` (or `{"error": WORD}`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::definition::{ActionDef, SentantDef, VARS_PLUGIN};
use super::textual;
use crate::fidelity::Values;
use crate::limits::{json_size, map_size, Hit, Hits, Limits};

/// The state every automation starts in.
pub const START_STATE: &str = "start";

/// The longest `delay` a `send` action may ask for (longer ones are cut to it).
pub const MAX_DELAY: Duration = Duration::from_secs(365 * 24 * 3600);

/// How deep a `__name__` substitution may nest values; deeper substitutions
/// are left as text, so no loop of `set` actions can grow a value without end.
pub const MAX_DEPTH: usize = 128;

/// Where a `send` action sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// The sentant itself (no `to`).
    Myself,
    /// A sentant by name, or by id when no sentant has that name.
    NameOrId(String),
}

/// Something a transition asks the node to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send `event` with `parameters` to each target, now or after `delay`.
    Send {
        /// Who gets it.
        targets: Vec<Target>,
        /// The event.
        event: String,
        /// Its parameters.
        parameters: Map<String, Value>,
        /// How long to wait first; a later delayed send of the same event
        /// replaces a pending one.
        delay: Option<Duration>,
    },
    /// Publish the signal `event` with `parameters` to its subscribers.
    Signal {
        /// The signal's event.
        event: String,
        /// Its parameters.
        parameters: Map<String, Value>,
    },
}

/// The byte limits a machine keeps (see [`crate::limits::Limits`]).
#[derive(Debug, Clone, Copy)]
struct Budget {
    /// Largest value an interpolation may substitute or build.
    value_bytes: usize,
    /// Largest parameters of one send or signal.
    parameters_bytes: usize,
}

/// The running automations and variables of one sentant.
#[derive(Debug)]
pub struct Machine {
    def: Arc<SentantDef>,
    states: Vec<String>,
    vars: Map<String, Value>,
    values: Values,
    budget: Budget,
    hits: Hits,
}

impl Machine {
    /// A machine with every automation in state `start` and no variables,
    /// replacing `__key__` references as the real node does ([`Values::Text`]),
    /// keeping the default limits.
    pub fn new(def: Arc<SentantDef>) -> Self {
        Machine::configured(def, Values::Text, &Limits::default())
    }

    /// [`Machine::new`], replacing references as `values` says.
    pub fn with_values(def: Arc<SentantDef>, values: Values) -> Self {
        Machine::configured(def, values, &Limits::default())
    }

    /// [`Machine::new`], keeping `limits`' value and parameters byte limits.
    pub fn with_limits(def: Arc<SentantDef>, limits: &Limits) -> Self {
        Machine::configured(def, Values::Text, limits)
    }

    /// A machine replacing references as `values` says and keeping `limits`'
    /// value and parameters byte limits.
    pub fn configured(def: Arc<SentantDef>, values: Values, limits: &Limits) -> Self {
        let states = vec![START_STATE.to_owned(); def.automations.len()];
        Machine {
            def,
            states,
            vars: Map::new(),
            values,
            budget: Budget {
                value_bytes: limits.max_value_bytes,
                parameters_bytes: limits.max_parameters_bytes,
            },
            hits: Hits::default(),
        }
    }

    /// The limits hit since they were last drained.
    pub fn hits(&mut self) -> &mut Hits {
        &mut self.hits
    }

    /// The current state of each automation, in definition order.
    pub fn states(&self) -> &[String] {
        &self.states
    }

    /// The `ai.reality2.vars` variables.
    pub fn vars(&self) -> &Map<String, Value> {
        &self.vars
    }

    /// Gives `event` to every automation and appends the resulting effects.
    pub fn handle(
        &mut self,
        event: &str,
        parameters: &Map<String, Value>,
        effects: &mut Vec<Effect>,
    ) {
        let def = Arc::clone(&self.def);
        for (automation, state) in def.automations.iter().zip(self.states.iter_mut()) {
            let fires =
                |from: &Option<String>| from.as_deref().is_none_or(|f| f == "*" || f == state);
            let Some(transition) = automation
                .transitions
                .iter()
                .find(|t| t.event == event && fires(&t.from))
            else {
                continue;
            };
            let mut accumulated = parameters.clone();
            for action in &transition.actions {
                let outcome = run_action(
                    &mut self.vars,
                    self.values,
                    action,
                    &mut accumulated,
                    effects,
                    self.budget,
                );
                if let Err(hit) = outcome {
                    self.hits.0.push(hit);
                }
            }
            if let Some(to) = transition.to.as_deref().filter(|to| *to != "*") {
                to.clone_into(state);
            }
        }
    }
}

/// Runs one action and merges its `result` into the accumulated parameters;
/// a limit it hits is its error word, and returned.
fn run_action(
    vars: &mut Map<String, Value>,
    values: Values,
    action: &ActionDef,
    accumulated: &mut Map<String, Value>,
    effects: &mut Vec<Effect>,
    budget: Budget,
) -> Result<(), Hit> {
    let mut hit = None;
    let max = budget.value_bytes;
    let parameters = match values {
        Values::Typed => interpolate_map(&action.parameters, accumulated, 0, max),
        Values::Text => textual::parameters(action, accumulated, max),
    };
    let outcome = match parameters {
        Err(limit) => {
            hit = Some(limit);
            Err(limit.word())
        }
        Ok(parameters) => match action.plugin.as_deref() {
            Some(VARS_PLUGIN) => vars_command(vars, &action.command, &parameters, accumulated),
            Some(_) => Err("plugin_error"),
            None => {
                builtin(&action.command, &parameters, accumulated, effects, budget).map_err(|e| {
                    hit = e.1;
                    e.0
                })
            }
        },
    };
    let result = match outcome {
        Ok(()) => Value::from("ok"),
        Err(word) => json!({ "error": word }),
    };
    accumulated.insert("result".to_owned(), result);
    hit.map_or(Ok(()), Err)
}

/// The commands of the `ai.reality2.vars` plugin.
fn vars_command(
    vars: &mut Map<String, Value>,
    command: &str,
    parameters: &Map<String, Value>,
    accumulated: &mut Map<String, Value>,
) -> Result<(), &'static str> {
    let key = || parameters.get("key").and_then(Value::as_str).ok_or("key");
    match command {
        "set" => put(vars, key()?, parameters.get("value")),
        "get" => {
            let key = key()?;
            let value = vars.get(key).ok_or("key")?;
            accumulated.insert(key.to_owned(), value.clone());
        }
        "delete" => {
            vars.remove(key()?);
        }
        "clear" => vars.clear(),
        "all" => accumulated.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone()))),
        _ => return Err("command"),
    }
    Ok(())
}

/// The built-in commands (no plugin); an error is its word and the limit
/// hit, if that was the cause.
fn builtin(
    command: &str,
    parameters: &Map<String, Value>,
    accumulated: &mut Map<String, Value>,
    effects: &mut Vec<Effect>,
    budget: Budget,
) -> Result<(), (&'static str, Option<Hit>)> {
    let event = parameters.get("event").and_then(Value::as_str);
    let carried = || {
        let carried = with_base(parameters.get("parameters"), accumulated);
        if map_size(&carried, budget.parameters_bytes) > budget.parameters_bytes {
            Err((Hit::ParametersBytes.word(), Some(Hit::ParametersBytes)))
        } else {
            Ok(carried)
        }
    };
    match command {
        "send" => effects.push(Effect::Send {
            targets: targets(parameters.get("to")),
            event: event.unwrap_or("event").to_owned(),
            parameters: carried()?,
            delay: parameters.get("delay").and_then(delay),
        }),
        "signal" => {
            if let Some(event) = event {
                effects.push(Effect::Signal {
                    event: event.to_owned(),
                    parameters: carried()?,
                });
            }
        }
        "debug" => effects.push(Effect::Signal {
            event: "debug".to_owned(),
            parameters: accumulated.clone(),
        }),
        "set" => {
            let key = parameters
                .get("key")
                .and_then(Value::as_str)
                .ok_or(("key", None))?;
            put(accumulated, key, parameters.get("value"));
        }
        _ => return Err(("invalid_command", None)),
    }
    Ok(())
}

/// Stores `value` under `key`, or removes `key` when the value is null or missing.
fn put(map: &mut Map<String, Value>, key: &str, value: Option<&Value>) {
    match value {
        Some(value) if !value.is_null() => {
            map.insert(key.to_owned(), value.clone());
        }
        _ => {
            map.remove(key);
        }
    }
}

/// An action's own `parameters` object overlaid with the accumulated parameters.
fn with_base(base: Option<&Value>, accumulated: &Map<String, Value>) -> Map<String, Value> {
    let mut out = match base {
        Some(Value::Object(base)) => base.clone(),
        _ => Map::new(),
    };
    out.extend(accumulated.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

/// The targets of a `send`: none means itself; a list means each of its items.
fn targets(to: Option<&Value>) -> Vec<Target> {
    let one = |v: &Value| Target::NameOrId(v.as_str().map_or_else(|| v.to_string(), str::to_owned));
    match to {
        None | Some(Value::Null) => vec![Target::Myself],
        Some(Value::Array(items)) => items.iter().map(one).collect(),
        Some(other) => vec![one(other)],
    }
}

/// A `delay` in milliseconds (a number, or a numeric string), capped at
/// [`MAX_DELAY`]; zero, negative, NaN, infinite and non-numeric delays mean
/// none. Never panics (1e30 ms is capped before it becomes a `Duration`).
fn delay(value: &Value) -> Option<Duration> {
    let ms = match value {
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        other => other.as_f64()?,
    };
    let cap = MAX_DELAY.as_secs_f64();
    (ms.is_finite() && ms > 0.0).then(|| Duration::from_secs_f64((ms / 1000.0).min(cap)))
}

/// Replaces `__name__` references in every string of `map`.
fn interpolate_map(
    map: &Map<String, Value>,
    vars: &Map<String, Value>,
    depth: usize,
    max: usize,
) -> Result<Map<String, Value>, Hit> {
    map.iter()
        .map(|(k, v)| Ok((k.clone(), interpolate(v, vars, depth + 1, max)?)))
        .collect()
}

/// Replaces `__name__` references in every string of `value`. A string that is
/// exactly one reference takes the referenced value itself (keeping its type);
/// references inside longer strings are replaced by their text. Unknown names
/// stay as they are. A substituted value or built string of more than `max`
/// bytes is refused ([`Hit::ValueBytes`]), so no loop of `set` actions can
/// double a value without end.
fn interpolate(
    value: &Value,
    vars: &Map<String, Value>,
    depth: usize,
    max: usize,
) -> Result<Value, Hit> {
    Ok(match value {
        Value::String(s) if s.contains("__") => {
            let whole = whole_reference(s)
                .and_then(|name| vars.get(name))
                .filter(|v| depth + nesting(v, MAX_DEPTH) <= MAX_DEPTH);
            match whole {
                Some(v) if json_size(v, max) > max => return Err(Hit::ValueBytes),
                Some(v) => v.clone(),
                None => Value::String(substitute(s, vars, typed_text, max)?),
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| interpolate(v, vars, depth + 1, max))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(interpolate_map(map, vars, depth, max)?),
        other => other.clone(),
    })
}

/// `"__name__"` → `name`, when the string is exactly one reference.
fn whole_reference(s: &str) -> Option<&str> {
    let name = s.strip_prefix("__")?.strip_suffix("__")?;
    (!name.is_empty() && !name.contains("__")).then_some(name)
}

/// The text of a value inside a longer string, for [`Values::Typed`].
fn typed_text(value: &Value) -> Option<String> {
    Some(match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    })
}

/// Replaces each `__name__` whose name is known, and whose value `text`
/// writes, by that text; other references stay as they are. A value (other
/// than a string) of more than `max` bytes, or a result longer than `max`
/// bytes, is refused.
pub(super) fn substitute(
    s: &str,
    vars: &Map<String, Value>,
    text: impl Fn(&Value) -> Option<String>,
    max: usize,
) -> Result<String, Hit> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find("__") {
        let after = &rest[open + 2..];
        let Some(first) = after.chars().next().map(char::len_utf8) else {
            break;
        };
        let Some(close) = after[first..].find("__").map(|i| i + first) else {
            break;
        };
        let name = &after[..close];
        out.push_str(&rest[..open]);
        let value = vars.get(name);
        if value.is_some_and(|value| !value.is_string() && json_size(value, max) > max) {
            return Err(Hit::ValueBytes);
        }
        match value.and_then(&text) {
            Some(text) => out.push_str(&text),
            None => {
                out.push_str("__");
                out.push_str(name);
                out.push_str("__");
            }
        }
        rest = &after[close + 2..];
        if out.len() > max {
            return Err(Hit::ValueBytes);
        }
    }
    out.push_str(rest);
    if out.len() > max {
        return Err(Hit::ValueBytes);
    }
    Ok(out)
}

/// How deeply `value` nests arrays and objects, counting no further than `limit`.
fn nesting(value: &Value, limit: usize) -> usize {
    if limit == 0 {
        return 0;
    }
    let inner = |items: &mut dyn Iterator<Item = &Value>| {
        1 + items.map(|v| nesting(v, limit - 1)).max().unwrap_or(0)
    };
    match value {
        Value::Array(items) => inner(&mut items.iter()),
        Value::Object(map) => inner(&mut map.values()),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(automations: Value) -> Machine {
        machine_with(automations, Values::Text)
    }

    fn machine_with(automations: Value, values: Values) -> Machine {
        let def = SentantDef::from_value(json!({"name": "s", "automations": automations}))
            .expect("valid definition");
        Machine::with_values(Arc::new(def), values)
    }

    fn params(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn run(machine: &mut Machine, event: &str, parameters: Value) -> Vec<Effect> {
        let mut effects = Vec::new();
        machine.handle(event, &params(parameters), &mut effects);
        effects
    }

    /// The IoT demo's device template, with its name already filled in.
    fn device(values: Values) -> Machine {
        machine_with(
            json!([{"name": "counter", "transitions": [
            {"event": "init", "actions": [
                {"command": "set", "plugin": "ai.reality2.vars", "parameters": {"key": "name", "value": "device 0001"}},
                {"command": "set", "plugin": "ai.reality2.vars", "parameters": {"key": "sensor", "value": 0}}]},
            {"event": "set_sensor", "public": true, "parameters": {"sensor": "integer"}, "actions": [
                {"command": "set", "plugin": "ai.reality2.vars", "parameters": {"key": "sensor", "value": "__sensor__"}}]},
            {"event": "update", "public": true, "actions": [
                {"command": "get", "plugin": "ai.reality2.vars", "parameters": {"key": "sensor"}},
                {"command": "get", "plugin": "ai.reality2.vars", "parameters": {"key": "name"}},
                {"command": "send", "parameters": {"event": "update", "to": "view"}},
                {"command": "signal", "public": true, "parameters": {"event": "update"}}]}]}]),
            values,
        )
    }

    #[test]
    fn the_device_stores_the_init_number_and_interpolated_sensors_as_text() {
        let mut device = device(Values::Text);
        run(&mut device, "init", json!({}));
        assert_eq!(
            device.vars()["sensor"],
            json!(0),
            "a literal keeps its type"
        );
        run(&mut device, "set_sensor", json!({"sensor": 42}));
        assert_eq!(device.vars()["sensor"], json!("42"), "the real node's text");
        run(&mut device, "set_sensor", json!({"sensor": 42.5}));
        assert_eq!(device.vars()["sensor"], json!("42.5"));
        match run(&mut device, "update", json!({})).as_slice() {
            [Effect::Send { parameters, .. }, Effect::Signal {
                parameters: signalled,
                ..
            }] => {
                assert_eq!(parameters["sensor"], json!("42.5"));
                assert_eq!(signalled["sensor"], json!("42.5"));
            }
            other => panic!("expected a send and a signal, got {other:?}"),
        }
    }

    #[test]
    fn the_device_template_signals_its_sensor_and_name_and_forwards_to_view() {
        let mut device = device(Values::Typed);
        assert!(run(&mut device, "init", json!({})).is_empty());
        assert!(run(&mut device, "set_sensor", json!({"sensor": 42})).is_empty());
        assert_eq!(
            device.vars()["sensor"],
            json!(42),
            "leniently, the number keeps its type"
        );
        let effects = run(&mut device, "update", json!({}));
        let carried = params(json!({"sensor": 42, "name": "device 0001", "result": "ok"}));
        assert_eq!(
            effects,
            [
                Effect::Send {
                    targets: vec![Target::NameOrId("view".into())],
                    event: "update".into(),
                    parameters: carried.clone(),
                    delay: None,
                },
                Effect::Signal {
                    event: "update".into(),
                    parameters: carried
                },
            ]
        );
    }

    #[test]
    fn the_first_matching_transition_fires_and_moves_the_state() {
        let mut m = machine(json!([{"name": "a", "transitions": [
            {"from": "start", "event": "go", "to": "running", "actions": [
                {"command": "signal", "parameters": {"event": "first"}}]},
            {"event": "go", "actions": [{"command": "signal", "parameters": {"event": "second"}}]},
            {"from": "running", "event": "stop", "to": "start"},
            {"event": "stay", "to": "*"}]}]));
        let signal = |e: &[Effect]| match e {
            [Effect::Signal { event, .. }] => event.clone(),
            other => panic!("expected one signal, got {other:?}"),
        };
        assert_eq!(signal(&run(&mut m, "go", json!({}))), "first");
        assert_eq!(m.states(), ["running"]);
        assert_eq!(
            signal(&run(&mut m, "go", json!({}))),
            "second",
            "from start no longer matches"
        );
        run(&mut m, "stay", json!({}));
        assert_eq!(m.states(), ["running"]);
        run(&mut m, "stop", json!({}));
        assert_eq!(m.states(), ["start"]);
        assert!(run(&mut m, "unknown", json!({})).is_empty());
    }

    #[test]
    fn every_automation_gets_the_event_with_its_own_parameters() {
        let mut m = machine(json!([
            {"name": "a", "transitions": [{"event": "e", "actions": [
                {"command": "set", "parameters": {"key": "x", "value": 1}},
                {"command": "signal", "parameters": {"event": "a"}}]}]},
            {"name": "b", "transitions": [{"event": "e", "actions": [
                {"command": "signal", "parameters": {"event": "b"}}]}]}]));
        let effects = run(&mut m, "e", json!({"p": true}));
        assert_eq!(
            effects,
            [
                Effect::Signal {
                    event: "a".into(),
                    parameters: params(json!({"p": true, "x": 1, "result": "ok"}))
                },
                Effect::Signal {
                    event: "b".into(),
                    parameters: params(json!({"p": true}))
                },
            ]
        );
    }

    #[test]
    fn send_carries_targets_delay_and_its_own_parameters_under_the_accumulated_ones() {
        let mut m = machine(
            json!([{"name": "a", "transitions": [{"event": "e", "actions": [
            {"command": "send", "parameters": {"event": "later", "delay": 250, "parameters": {"k": "base", "only": 1}}},
            {"command": "send", "parameters": {"event": "__next__", "to": ["one", "__who__"], "delay": "x"}}]}]}]),
        );
        let effects = run(
            &mut m,
            "e",
            json!({"k": "event", "next": "go", "who": "two"}),
        );
        assert_eq!(
            effects,
            [
                Effect::Send {
                    targets: vec![Target::Myself],
                    event: "later".into(),
                    parameters: params(
                        json!({"k": "event", "only": 1, "next": "go", "who": "two"})
                    ),
                    delay: Some(Duration::from_millis(250)),
                },
                Effect::Send {
                    targets: vec![
                        Target::NameOrId("one".into()),
                        Target::NameOrId("two".into())
                    ],
                    event: "go".into(),
                    parameters: params(
                        json!({"k": "event", "next": "go", "who": "two", "result": "ok"})
                    ),
                    delay: None,
                },
            ]
        );
    }

    #[test]
    fn results_report_errors_as_words() {
        let mut m = machine(json!([{"name": "a", "transitions": [
            {"event": "missing", "actions": [
                {"command": "get", "plugin": "ai.reality2.vars", "parameters": {"key": "nothing"}},
                {"command": "debug"}]},
            {"event": "plugin", "actions": [
                {"command": "get", "plugin": "com.example.other", "parameters": {}},
                {"command": "debug"}]},
            {"event": "bogus", "actions": [{"command": "bogus"}, {"command": "debug"}]}]}]));
        let debug_result = |m: &mut Machine, event| match run(m, event, json!({})).as_slice() {
            [Effect::Signal { event, parameters }] if event == "debug" => {
                parameters["result"].clone()
            }
            other => panic!("expected a debug signal, got {other:?}"),
        };
        assert_eq!(debug_result(&mut m, "missing"), json!({"error": "key"}));
        assert_eq!(
            debug_result(&mut m, "plugin"),
            json!({"error": "plugin_error"})
        );
        assert_eq!(
            debug_result(&mut m, "bogus"),
            json!({"error": "invalid_command"})
        );
    }

    #[test]
    fn references_inside_text_are_replaced_by_their_text() {
        let vars = params(json!({"name": "dev", "n": 7, "obj": {"a": 1}, "ü": "umlaut"}));
        let cases = [
            ("hello __name__!", json!("hello dev!")),
            ("__n__ and __n__", json!("7 and 7")),
            ("__obj__", json!({"a": 1})),
            ("x__obj__", json!("x{\"a\":1}")),
            ("__unknown__ __name__", json!("__unknown__ dev")),
            ("____", json!("____")),
            ("__ü__", json!("umlaut")),
            ("__", json!("__")),
            ("a__é", json!("a__é")),
        ];
        for (text, expected) in cases {
            assert_eq!(
                interpolate(&json!(text), &vars, 0, usize::MAX),
                Ok(expected),
                "{text}"
            );
        }
    }

    #[test]
    fn a_set_loop_cannot_grow_values_without_end() {
        for values in [Values::Typed, Values::Text] {
            let mut m = machine_with(
                json!([{"name": "a", "transitions": [{"event": "grow", "actions": [
                {"command": "get", "plugin": "ai.reality2.vars", "parameters": {"key": "v"}},
                {"command": "set", "plugin": "ai.reality2.vars", "parameters": {"key": "v", "value": {"deeper": "__v__"}}}]}]}]),
                values,
            );
            for _ in 0..(MAX_DEPTH * 3) {
                run(&mut m, "grow", json!({}));
            }
            let v = &m.vars()["v"];
            assert!(nesting(v, usize::MAX) <= MAX_DEPTH + 1, "{values:?}");
            assert!(v.to_string().len() < 4 * textual::MAX_TEXT, "{values:?}");
        }
    }
}
