//! How closely r2-node copies the real node where that changes the load a
//! client puts on it or the results it measures (`reality2-protocol.md`,
//! "What the real node does that matters for load and for results").
//!
//! Every behaviour is the real node's by default ([`Fidelity::default`], also
//! in [`crate::Config::loopback`]); `r2-node --lenient` ([`Fidelity::lenient`])
//! restores the kinder behaviour r2-node had before, all at once;
//! `--cors` alone opens CORS, and `--https-alpn` chooses the TLS protocols
//! whatever `--lenient` says.
//!
//! | behaviour | real (default) | lenient |
//! | --- | --- | --- |
//! | [`Values`]: `"__key__"` in action parameters | replaced as text: `"__sensor__"` with `sensor: 42` stores `"42"` | a whole reference keeps the value's type (`42`) |
//! | [`Patience`]: unknown id in `sentantGet(id)`, `sentantSend`, `sentantUnload`, `awaitSignal`, and a `send` action to a sentant that is not loaded | looked for ten times, 100 ms apart (about 1 s), then answered | answered at once |
//! | [`InternalCast`]: `__internal` on load, redefinition, unload | queued to every sentant; a redefinition carries a fresh id | only to sentants with an `__internal` transition; the kept id |
//! | [`MissingDescription`] | `""` | `null` |
//! | [`Alpn`]: protocols TLS offers | `h2`, `http/1.1` (HTTP/2 served) | `http/1.1` |
//! | [`Cors`] | no CORS headers (`--cors` opens them) | any origin |
//!
//! # Layout
//!
//! - [`Fidelity`]: the set, with [`Fidelity::lenient`].
//! - [`Values`] and [`text_of`] / [`number_of`]: how the real node writes a
//!   value into text and reads a number back (used by
//!   [`crate::sentant::automation`]).
//! - [`Patience`]: the real node's `wait_until_alive` (ten 100 ms retries), on
//!   tokio time.
//! - [`InternalCast`], [`MissingDescription`], [`Alpn`], [`Cors`].

use std::time::Duration;

use serde_json::{Number, Value};

/// The behaviours r2-node copies from the real node, each real by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fidelity {
    /// How `__key__` references in action parameters are replaced.
    pub values: Values,
    /// How long an id with no live sentant is looked for before answering.
    pub unknown_ids: Patience,
    /// Who gets `__internal`, and with which id on a redefinition.
    pub internal: InternalCast,
    /// The `description` of a sentant whose definition has none.
    pub description: MissingDescription,
    /// The protocols the TLS listener offers.
    pub alpn: Alpn,
    /// Whether answers carry CORS headers.
    pub cors: Cors,
}

impl Default for Fidelity {
    /// The real node's behaviour throughout.
    fn default() -> Fidelity {
        Fidelity {
            values: Values::Text,
            unknown_ids: Patience::REAL,
            internal: InternalCast::Everyone,
            description: MissingDescription::Empty,
            alpn: Alpn::H2AndHttp1,
            cors: Cors::Closed,
        }
    }
}

impl Fidelity {
    /// The kinder behaviour of `--lenient`: typed values, unknown ids
    /// answered at once, `__internal` only to its listeners with the kept
    /// id, `description: null`, HTTP/1.1 only, CORS open.
    pub fn lenient() -> Fidelity {
        Fidelity {
            values: Values::Typed,
            unknown_ids: Patience::NONE,
            internal: InternalCast::Listeners,
            description: MissingDescription::Null,
            alpn: Alpn::Http1,
            cors: Cors::Any,
        }
    }
}

/// How a string in an action's parameters that holds `__key__` references
/// (keys of the accumulated parameters) is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// The real node (`Reality2.Automation.interpret`): each reference is
    /// replaced by the value's text ([`text_of`]) and a string stays a
    /// string, so the `ai.reality2.vars` `set` of `"__sensor__"` with
    /// `sensor: 42` stores `"42"`. Two places read a number back
    /// ([`number_of`]), as the real node's `to_number` does: a string that is
    /// an item of a list, and the value of the built-in `set` command.
    Text,
    /// A string that is exactly one reference takes the value itself, with
    /// its type (`42` stays a number); references inside longer strings are
    /// replaced by their text.
    Typed,
}

/// The text a `__key__` reference is replaced by, as the real node's
/// `replace_variables` writes it (`to_string`, or `Jason.encode!` for a map):
/// a string as it is, an integer in decimal, a float as JSON writes it
/// (`42.5` → `"42.5"`, `42.0` → `"42.0"`; Erlang's shortest form can differ
/// for very large or small magnitudes, `1.0e20` against `"1e20"`), `true` as
/// `"true"`, an object as its JSON text (keys sorted, as Jason writes small
/// maps). `null` and `false` leave the reference as it is: the real node's
/// lookup (`value || default`) treats them as missing. A list is written as
/// its JSON text (the real node writes a list as Elixir chardata: it
/// concatenates strings and fails on anything else).
pub fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Null | Value::Bool(false) => None,
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

/// The number a text holds when it is all number, as the real node's
/// `to_number` reads it (`Integer.parse`, then `Float.parse`, with nothing
/// left over); anything else stays text. An integer too large for 64 bits
/// becomes a float.
pub fn number_of(text: &str) -> Option<Number> {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    if unsigned.is_empty() || !unsigned.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    if unsigned.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = text.parse::<i64>() {
            return Some(n.into());
        }
        if let Ok(n) = text.parse::<u64>() {
            return Some(n.into());
        }
    }
    // Float.parse wants digits before the point (which `starts_with` checked)
    // and digits after it ("1." is not all number).
    if unsigned.contains(".e") || unsigned.contains(".E") || unsigned.ends_with('.') {
        return None;
    }
    let allowed = |c: char| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-');
    if !unsigned.chars().all(allowed) {
        return None;
    }
    text.parse::<f64>().ok().and_then(Number::from_f64)
}

/// How long an id with no live sentant is looked for: the real node's
/// `wait_until_alive` looks `tries` times, sleeping `every` after each miss,
/// so an unknown id answers after `tries × every` (1 s). A sentant that
/// appears meanwhile is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    /// Looks after the first one.
    pub tries: u32,
    /// Sleep before each of them.
    pub every: Duration,
}

impl Patience {
    /// Ten retries, 100 ms apart: the real node.
    pub const REAL: Patience = Patience {
        tries: 10,
        every: Duration::from_millis(100),
    };
    /// One look, no wait.
    pub const NONE: Patience = Patience {
        tries: 0,
        every: Duration::ZERO,
    };

    /// `look()`, and while it finds nothing, up to `tries` more looks
    /// `every` apart (on tokio time: the task waits, no thread does).
    pub async fn find<T>(&self, mut look: impl FnMut() -> Option<T>) -> Option<T> {
        if let Some(found) = look() {
            return Some(found);
        }
        for _ in 0..self.tries {
            tokio::time::sleep(self.every).await;
            if let Some(found) = look() {
                return Some(found);
            }
        }
        None
    }

    /// The longest [`Patience::find`] waits.
    pub fn longest(&self) -> Duration {
        self.every * self.tries
    }
}

/// Who gets the `__internal` event (`{"id", "name", "activity"}`) when a
/// sentant is loaded, redefined or unloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InternalCast {
    /// The real node's `sendto_all`: every sentant's inbox gets it (those
    /// without an `__internal` transition drop it in their own task), and a
    /// redefinition's event carries a freshly generated id, not the id the
    /// sentant keeps.
    Everyone,
    /// Only sentants with an `__internal` transition, with the sentant's id.
    Listeners,
}

/// The `description` of a sentant whose definition has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingDescription {
    /// `""`, the real node's default.
    Empty,
    /// `null`.
    Null,
}

/// The application protocols the TLS listener offers by ALPN
/// (`--https-alpn h2|http1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Alpn {
    /// `h2` then `http/1.1`, as the real node (Cowboy) does: browsers send
    /// every request of a page over one HTTP/2 connection. Websockets still
    /// use HTTP/1.1 (no RFC 8441 extended CONNECT is advertised).
    #[value(name = "h2")]
    H2AndHttp1,
    /// `http/1.1` only.
    #[value(name = "http1")]
    Http1,
}

impl Alpn {
    /// The ALPN protocol ids, in order of preference.
    pub fn protocols(self) -> Vec<Vec<u8>> {
        match self {
            Alpn::H2AndHttp1 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            Alpn::Http1 => vec![b"http/1.1".to_vec()],
        }
    }

    /// The protocols offered, in words (`h2, http/1.1`).
    pub fn describe(self) -> &'static str {
        match self {
            Alpn::H2AndHttp1 => "h2, http/1.1",
            Alpn::Http1 => "http/1.1",
        }
    }
}

/// Whether answers carry CORS headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cors {
    /// None, as the real node: a page on another origin cannot read answers.
    Closed,
    /// Any origin, method and header (preflights answered).
    Any,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn values_are_written_as_the_real_node_writes_them() {
        let cases = [
            (json!(42), Some("42")),
            (json!(-7), Some("-7")),
            (json!(42.5), Some("42.5")),
            (json!(42.0), Some("42.0")),
            (json!("device 0001"), Some("device 0001")),
            (json!(true), Some("true")),
            (json!({"b": 1, "a": "x"}), Some(r#"{"a":"x","b":1}"#)),
            (json!([1, "a"]), Some(r#"[1,"a"]"#)),
            (json!(false), None),
            (json!(null), None),
        ];
        for (value, text) in cases {
            assert_eq!(text_of(&value).as_deref(), text, "{value}");
        }
    }

    #[test]
    fn numbers_are_read_back_only_from_text_that_is_all_number() {
        let cases = [
            ("42", Some(json!(42))),
            ("-7", Some(json!(-7))),
            ("+7", Some(json!(7))),
            ("007", Some(json!(7))),
            ("42.5", Some(json!(42.5))),
            ("1e3", Some(json!(1000.0))),
            ("18446744073709551615", Some(json!(18446744073709551615u64))),
            ("18446744073709551616", Some(json!(18446744073709551616.0))),
            ("42 ", None),
            (" 42", None),
            ("4 2", None),
            ("1.", None),
            (".5", None),
            ("1.e3", None),
            ("inf", None),
            ("NaN", None),
            ("0x10", None),
            ("", None),
            ("-", None),
            ("device 1", None),
        ];
        for (text, number) in cases {
            assert_eq!(number_of(text).map(Value::Number), number, "{text:?}");
        }
    }

    #[tokio::test]
    async fn patience_looks_once_more_per_try_and_finds_what_appears() {
        let quick = Patience {
            tries: 10,
            every: Duration::from_millis(5),
        };
        let start = tokio::time::Instant::now();
        let mut looks = 0;
        let found: Option<()> = quick
            .find(|| {
                looks += 1;
                None
            })
            .await;
        assert_eq!(found, None);
        assert_eq!(looks, 11);
        assert!(start.elapsed() >= quick.longest());
        assert_eq!(Patience::REAL.longest(), Duration::from_secs(1));

        let mut looks = 0;
        let found = quick
            .find(|| {
                looks += 1;
                (looks == 4).then_some("appeared")
            })
            .await;
        assert_eq!((found, looks), (Some("appeared"), 4));

        let start = tokio::time::Instant::now();
        assert_eq!(Patience::NONE.find(|| None::<()>).await, None);
        assert!(start.elapsed() < Duration::from_millis(50));
    }

    #[test]
    fn lenient_differs_from_the_default_in_every_behaviour() {
        let (real, lenient) = (Fidelity::default(), Fidelity::lenient());
        assert_ne!(real.values, lenient.values);
        assert_ne!(real.unknown_ids, lenient.unknown_ids);
        assert_ne!(real.internal, lenient.internal);
        assert_ne!(real.description, lenient.description);
        assert_ne!(real.alpn, lenient.alpn);
        assert_ne!(real.cors, lenient.cors);
        assert_eq!(Alpn::H2AndHttp1.protocols()[0], b"h2");
    }
}
