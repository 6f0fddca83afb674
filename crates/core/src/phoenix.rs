//! Phoenix Channels frames, as Absinthe's websocket transport uses them.
//!
//! The real Reality2 clients connect without a `vsn` query parameter, so
//! Phoenix picks its V1 JSON serializer: each frame is an object
//! `{"topic", "event", "payload", "ref"}`. With `?vsn=2.0.0` Phoenix uses V2:
//! an array `[join_ref, ref, topic, event, payload]`. [`Frame`] is one frame in
//! either form; [`Frame::decode`] and [`Frame::encode`] convert, and the
//! constructors build the frames that a Reality2 client or server sends.
//!
//! A client's hot path has its own two, which build no JSON tree:
//! [`ServerFrame`] reads a server's frame borrowing its text, and
//! [`client_text`] writes a client's frame straight from its parts.
//!
//! Decoding follows Phoenix's own serializers: V1 needs the keys `topic`,
//! `event`, `payload` and `ref` (`ref` may be `null`; `join_ref` is optional),
//! V2 needs an array of at least five elements (Phoenix ignores extra ones).
//! `topic` and `event` must be strings. `ref`/`join_ref` are kept exactly as
//! the client sent them (a number, a string or `null`).

use std::borrow::Cow;

use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

/// The topic every Absinthe client joins and sends its documents on.
pub const CONTROL_TOPIC: &str = "__absinthe__:control";
/// The topic of Phoenix's heartbeat.
pub const PHOENIX_TOPIC: &str = "phoenix";
/// Event names used by Phoenix and Absinthe.
pub const EV_JOIN: &str = "phx_join";
pub const EV_REPLY: &str = "phx_reply";
pub const EV_CLOSE: &str = "phx_close";
pub const EV_ERROR: &str = "phx_error";
pub const EV_LEAVE: &str = "phx_leave";
pub const EV_HEARTBEAT: &str = "heartbeat";
pub const EV_DOC: &str = "doc";
pub const EV_UNSUBSCRIBE: &str = "unsubscribe";
pub const EV_SUBSCRIPTION_DATA: &str = "subscription:data";

/// `null`, borrowed when a frame lacks a field [`Frame::classify`] reports.
static NULL: Value = Value::Null;

/// The serializer version a websocket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Vsn {
    /// JSON objects; what Phoenix uses when the client gives no `vsn`.
    #[default]
    V1,
    /// JSON arrays `[join_ref, ref, topic, event, payload]` (`vsn=2.0.0`).
    V2,
}

impl Vsn {
    /// The version asked for by a websocket URL's query string (with or
    /// without the leading `?`): `vsn=2.x.y` gives [`Vsn::V2`], anything else
    /// (absent, `1.0.0`, unreadable) [`Vsn::V1`].
    pub fn from_query(query: Option<&str>) -> Vsn {
        let query = query.unwrap_or("");
        let query = query.strip_prefix('?').unwrap_or(query);
        let wants_v2 = query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .any(|(key, value)| key == "vsn" && (value == "2" || value.starts_with("2.")));
        if wants_v2 {
            Vsn::V2
        } else {
            Vsn::V1
        }
    }
}

/// Why a websocket text frame is not a Phoenix frame.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The text is not JSON at all.
    #[error("frame is not JSON")]
    NotJson(#[source] serde_json::Error),
    /// JSON that a client cannot read as one frame: a key given twice.
    #[error("frame cannot be read: {0}")]
    Unreadable(#[source] serde_json::Error),
    /// V1 frames are JSON objects.
    #[error("V1 frame must be a JSON object, got {found}")]
    NotObject { found: &'static str },
    /// A V1 frame lacks one of `topic`, `event`, `payload`, `ref`.
    #[error("V1 frame has no \"{field}\" key")]
    MissingField { field: &'static str },
    /// V2 frames are arrays `[join_ref, ref, topic, event, payload]`.
    #[error("V2 frame must be an array [join_ref, ref, topic, event, payload], got {found}")]
    NotArray { found: String },
    /// `topic` or `event` is not a string.
    #[error("frame's \"{field}\" must be a string, got {found}")]
    NotString {
        field: &'static str,
        found: &'static str,
    },
}

/// One Phoenix Channels message.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The join reference (V2 clients send it; `Value::Null` = none).
    pub join_ref: Value,
    /// The message reference, as the client sent it (`0`, `"1"`, `null`).
    pub reference: Value,
    pub topic: String,
    pub event: String,
    pub payload: Value,
}

/// What a client makes of a frame from the server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Incoming<'a> {
    /// `phx_reply` to one of our requests (`response` is `null` if absent).
    Reply {
        status: &'a str,
        response: &'a Value,
    },
    /// A subscription pushed a result (`{"data": {...}}` or errors).
    Data {
        subscription_id: &'a str,
        result: &'a Value,
    },
    /// The server closed the channel (`phx_close`).
    Close,
    /// The channel crashed on the server (`phx_error`).
    Error,
    /// Anything else.
    Other,
}

/// The JSON type name of a value, for error messages.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn into_string(value: Value, field: &'static str) -> Result<String, FrameError> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(FrameError::NotString {
            field,
            found: kind_of(&other),
        }),
    }
}

impl Frame {
    /// A frame with no `join_ref`.
    fn new(reference: Value, topic: &str, event: &str, payload: Value) -> Frame {
        Frame {
            join_ref: Value::Null,
            reference,
            topic: topic.to_owned(),
            event: event.to_owned(),
            payload,
        }
    }

    /// Sets the `join_ref` (V2 clients send their join's ref with each push).
    pub fn with_join_ref(mut self, join_ref: Value) -> Frame {
        self.join_ref = join_ref;
        self
    }

    /// Reads one websocket text frame.
    pub fn decode(text: &str, vsn: Vsn) -> Result<Frame, FrameError> {
        let value: Value = serde_json::from_str(text).map_err(FrameError::NotJson)?;
        match vsn {
            Vsn::V1 => Self::from_v1(value),
            Vsn::V2 => Self::from_v2(value),
        }
    }

    fn from_v1(value: Value) -> Result<Frame, FrameError> {
        let mut map = match value {
            Value::Object(map) => map,
            other => {
                return Err(FrameError::NotObject {
                    found: kind_of(&other),
                })
            }
        };
        let mut take =
            |field: &'static str| map.remove(field).ok_or(FrameError::MissingField { field });
        let topic = into_string(take("topic")?, "topic")?;
        let event = into_string(take("event")?, "event")?;
        let payload = take("payload")?;
        let reference = take("ref")?;
        let join_ref = take("join_ref").unwrap_or(Value::Null);
        Ok(Frame {
            join_ref,
            reference,
            topic,
            event,
            payload,
        })
    }

    fn from_v2(value: Value) -> Result<Frame, FrameError> {
        let found = match &value {
            Value::Array(items) => format!("an array of {} elements", items.len()),
            other => kind_of(other).to_owned(),
        };
        let Value::Array(items) = value else {
            return Err(FrameError::NotArray { found });
        };
        let mut items = items.into_iter();
        let (Some(join_ref), Some(reference), Some(topic), Some(event), Some(payload)) = (
            items.next(),
            items.next(),
            items.next(),
            items.next(),
            items.next(),
        ) else {
            return Err(FrameError::NotArray { found });
        };
        Ok(Frame {
            join_ref,
            reference,
            topic: into_string(topic, "topic")?,
            event: into_string(event, "event")?,
            payload,
        })
    }

    /// The websocket text of this frame. V1 writes `join_ref` only when it
    /// is not `null`.
    pub fn encode(&self, vsn: Vsn) -> String {
        let value = match vsn {
            Vsn::V1 => {
                let mut map = Map::new();
                map.insert("topic".into(), Value::String(self.topic.clone()));
                map.insert("event".into(), Value::String(self.event.clone()));
                map.insert("payload".into(), self.payload.clone());
                map.insert("ref".into(), self.reference.clone());
                if !self.join_ref.is_null() {
                    map.insert("join_ref".into(), self.join_ref.clone());
                }
                Value::Object(map)
            }
            Vsn::V2 => json!([
                self.join_ref,
                self.reference,
                self.topic,
                self.event,
                self.payload
            ]),
        };
        value.to_string()
    }

    /// The websocket text of this frame as the real clients write it:
    /// `JSON.stringify({topic, event, payload, ref})`, keys in that order
    /// (V1; [`Frame::encode`] writes a server's sorted keys). `join_ref`
    /// follows when it is not `null`.
    pub fn encode_client(&self) -> String {
        #[derive(serde::Serialize)]
        struct ClientV1<'a> {
            topic: &'a str,
            event: &'a str,
            payload: &'a Value,
            #[serde(rename = "ref")]
            reference: &'a Value,
            #[serde(skip_serializing_if = "Value::is_null")]
            join_ref: &'a Value,
        }
        let frame = ClientV1 {
            topic: &self.topic,
            event: &self.event,
            payload: &self.payload,
            reference: &self.reference,
            join_ref: &self.join_ref,
        };
        // A struct of strings and JSON values always serializes.
        serde_json::to_string(&frame).unwrap_or_default()
    }

    /// The `phx_reply` answering this frame: same topic, `ref` and
    /// `join_ref`, payload `{"status", "response"}`.
    pub fn reply(&self, status: &str, response: Value) -> Frame {
        Frame {
            join_ref: self.join_ref.clone(),
            reference: self.reference.clone(),
            topic: self.topic.clone(),
            event: EV_REPLY.to_owned(),
            payload: json!({ "status": status, "response": response }),
        }
    }

    /// A client's join of the Absinthe control topic.
    pub fn join_control(reference: Value) -> Frame {
        Frame::new(reference, CONTROL_TOPIC, EV_JOIN, json!({}))
    }

    /// A client's GraphQL document (usually a subscription) on the control topic.
    pub fn doc(reference: Value, query: &str, variables: Value) -> Frame {
        Frame::new(
            reference,
            CONTROL_TOPIC,
            EV_DOC,
            json!({ "query": query, "variables": variables }),
        )
    }

    /// A client's heartbeat (topic `phoenix`).
    pub fn heartbeat(reference: Value) -> Frame {
        Frame::new(reference, PHOENIX_TOPIC, EV_HEARTBEAT, json!({}))
    }

    /// A client's request to end one subscription.
    pub fn unsubscribe(reference: Value, subscription_id: &str) -> Frame {
        Frame::new(
            reference,
            CONTROL_TOPIC,
            EV_UNSUBSCRIBE,
            json!(UnsubscribePayload { subscription_id }),
        )
    }

    /// The server's push of one subscription result (`ref` is `null`).
    pub fn subscription_data(subscription_id: &str, result: Value) -> Frame {
        Frame::new(
            Value::Null,
            subscription_id,
            EV_SUBSCRIPTION_DATA,
            json!({ "result": result, "subscriptionId": subscription_id }),
        )
    }

    /// What a client should make of this frame from the server.
    ///
    /// A `phx_reply` without a string `status` and a `subscription:data`
    /// without a `result` are [`Incoming::Other`]. The subscription id of a
    /// push is `payload.subscriptionId`, or the topic when that is absent.
    pub fn classify(&self) -> Incoming<'_> {
        match self.event.as_str() {
            EV_REPLY => match self.payload.get("status").and_then(Value::as_str) {
                Some(status) => Incoming::Reply {
                    status,
                    response: self.payload.get("response").unwrap_or(&NULL),
                },
                None => Incoming::Other,
            },
            EV_SUBSCRIPTION_DATA => match self.payload.get("result") {
                Some(result) => Incoming::Data {
                    subscription_id: self
                        .payload
                        .get("subscriptionId")
                        .and_then(Value::as_str)
                        .unwrap_or(&self.topic),
                    result,
                },
                None => Incoming::Other,
            },
            EV_CLOSE => Incoming::Close,
            EV_ERROR => Incoming::Error,
            _ => Incoming::Other,
        }
    }
}

/// A frame from the server as a client reads it (V1, the form the real
/// clients speak): `topic` and `event` borrowed from the text, `payload`
/// and `ref` left as unparsed JSON until the event says what they hold. A
/// client reads thousands of frames a second and needs one or two fields of
/// each: no JSON tree is built.
///
/// It needs what [`Frame::decode`] needs of a V1 frame (an object with
/// `topic` and `event` strings, `payload` and `ref`); a frame it refuses
/// gets [`Frame::decode`]'s error, or [`FrameError::Unreadable`] for a key
/// given twice (the tree kept the last). The parts it does not read are
/// skipped, not checked, as `JSON.parse` in a real client takes them: a
/// number past `f64` or a lone surrogate there does not refuse the frame.
#[derive(Debug, serde::Deserialize)]
pub struct ServerFrame<'a> {
    #[serde(borrow)]
    pub topic: Cow<'a, str>,
    #[serde(borrow)]
    pub event: Cow<'a, str>,
    #[serde(borrow)]
    pub payload: &'a RawValue,
    #[serde(rename = "ref", borrow)]
    pub reference: &'a RawValue,
}

/// What a client makes of a [`ServerFrame`]: [`Incoming`], with the parts
/// still unparsed JSON.
#[derive(Debug, Clone)]
pub enum ServerIncoming<'a> {
    /// `phx_reply` to one of our requests; `response` is `None` when absent.
    Reply {
        status: Cow<'a, str>,
        response: Option<&'a RawValue>,
    },
    /// A subscription pushed a result (`{"data": {...}}` or errors).
    Data {
        subscription_id: Cow<'a, str>,
        result: &'a RawValue,
    },
    /// The server closed the channel (`phx_close`).
    Close,
    /// The channel crashed on the server (`phx_error`).
    Error,
    /// Anything else.
    Other,
}

/// A JSON string, borrowed from the text when it has no escapes.
#[derive(serde::Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// Reads `raw` as `T`; `None` when it is not one.
fn read<'a, T: serde::Deserialize<'a>>(raw: &'a RawValue) -> Option<T> {
    serde_json::from_str(raw.get()).ok()
}

/// Reads the JSON object `raw` as `T`; `None` when it is not one (serde
/// would read a struct from an array of its fields too).
pub(crate) fn read_object<'a, T: serde::Deserialize<'a>>(raw: &'a RawValue) -> Option<T> {
    raw.get().starts_with('{').then(|| read(raw)).flatten()
}

impl<'a> ServerFrame<'a> {
    /// Reads one websocket text frame.
    pub fn decode(text: &'a str) -> Result<ServerFrame<'a>, FrameError> {
        let refuse = |err| {
            Frame::decode(text, Vsn::V1)
                .err()
                .unwrap_or(FrameError::Unreadable(err))
        };
        // serde reads a struct from an array of its fields too; a V1 frame is an object.
        if !text.trim_start().starts_with('{') {
            return Err(refuse(serde::de::Error::custom("not an object")));
        }
        serde_json::from_str(text).map_err(refuse)
    }

    /// The `ref` as a number; `None` for `null`, a string or anything else.
    pub fn reference(&self) -> Option<u64> {
        self.reference.get().parse().ok()
    }

    /// What a client should make of this frame, as [`Frame::classify`] says.
    pub fn classify(&self) -> ServerIncoming<'a> {
        #[derive(serde::Deserialize)]
        struct Reply<'a> {
            #[serde(borrow)]
            status: Option<&'a RawValue>,
            #[serde(borrow)]
            response: Option<&'a RawValue>,
        }
        #[derive(serde::Deserialize)]
        struct Data<'a> {
            // `null` is a result (one without a signal); only a missing one is none.
            #[serde(borrow)]
            result: &'a RawValue,
            #[serde(rename = "subscriptionId", borrow)]
            subscription_id: Option<&'a RawValue>,
        }
        let payload: &'a RawValue = self.payload;
        match self.event.as_ref() {
            EV_REPLY => {
                let Some(reply) = read_object::<Reply<'a>>(payload) else {
                    return ServerIncoming::Other;
                };
                match reply.status.and_then(read::<Text<'a>>) {
                    Some(Text(status)) => ServerIncoming::Reply {
                        status,
                        // A `null` response is no response, as `Frame::classify` gives `null` for both.
                        response: reply.response.filter(|r| r.get() != "null"),
                    },
                    None => ServerIncoming::Other,
                }
            }
            EV_SUBSCRIPTION_DATA => match read_object::<Data<'a>>(payload) {
                Some(Data {
                    result,
                    subscription_id,
                }) => ServerIncoming::Data {
                    subscription_id: subscription_id
                        .and_then(read::<Text<'a>>)
                        .map_or_else(|| self.topic.clone(), |Text(id)| id),
                    result,
                },
                _ => ServerIncoming::Other,
            },
            EV_CLOSE => ServerIncoming::Close,
            EV_ERROR => ServerIncoming::Error,
            _ => ServerIncoming::Other,
        }
    }
}

/// The text of a client's frame, as [`Frame::encode_client`] writes it
/// (`{topic, event, payload, ref}`, in that order), straight from its parts:
/// no [`Frame`], no JSON tree.
pub fn client_text<P: serde::Serialize + ?Sized>(
    reference: u64,
    topic: &str,
    event: &str,
    payload: &P,
) -> String {
    #[derive(serde::Serialize)]
    struct ClientV1<'a, P: ?Sized> {
        topic: &'a str,
        event: &'a str,
        payload: &'a P,
        #[serde(rename = "ref")]
        reference: u64,
    }
    let frame = ClientV1 {
        topic,
        event,
        payload,
        reference,
    };
    // Strings, a number and a payload that serializes (the callers' own types).
    serde_json::to_string(&frame).unwrap_or_default()
}

/// The payload of a client's `doc`: `{"query", "variables"}`.
#[derive(serde::Serialize)]
pub struct DocPayload<'a, V: ?Sized> {
    pub query: &'a str,
    pub variables: &'a V,
}

/// The payload of a client's `unsubscribe`: `{"subscriptionId"}`.
#[derive(serde::Serialize)]
pub struct UnsubscribePayload<'a> {
    #[serde(rename = "subscriptionId")]
    pub subscription_id: &'a str,
}

/// An empty payload, `{}`.
#[derive(serde::Serialize)]
pub struct Empty {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every frame written out in `reality2-protocol.md`, as literal text.
    const PROTOCOL_FRAMES: &[&str] = &[
        r#"{"topic":"__absinthe__:control","event":"phx_join","payload":{},"ref":0}"#,
        r#"{"topic":"__absinthe__:control","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":0}"#,
        r#"{"topic":"__absinthe__:control","event":"doc","payload":{"query":"subscription AwaitSignal(...)","variables":{"id":"<uuid>","signal":"update"}},"ref":0}"#,
        r#"{"topic":"__absinthe__:control","event":"phx_reply","payload":{"status":"ok","response":{"subscriptionId":"__absinthe__:doc:<opaque>"}},"ref":0}"#,
        r#"{"topic":"__absinthe__:control","event":"phx_reply","payload":{"status":"error","response":{"errors":[{"message":"invalid_signal"}]}},"ref":0}"#,
        r#"{"topic":"<subscriptionId>","event":"subscription:data","payload":{"result":{"data":{"awaitSignal":{}}},"subscriptionId":"<subscriptionId>"},"ref":null}"#,
        r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":0}"#,
        r#"{"topic":"__absinthe__:control","event":"unsubscribe","payload":{"subscriptionId":"..."},"ref":7}"#,
    ];

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).expect("test text is JSON")
    }

    /// The V2 array form of a V1 object, built by hand.
    fn v2_text_of(v1_text: &str) -> String {
        let v1 = parse(v1_text);
        json!([
            v1.get("join_ref").cloned().unwrap_or(Value::Null),
            v1["ref"],
            v1["topic"],
            v1["event"],
            v1["payload"]
        ])
        .to_string()
    }

    #[test]
    fn v1_protocol_frames_round_trip() {
        for text in PROTOCOL_FRAMES {
            let frame = Frame::decode(text, Vsn::V1).expect(text);
            assert_eq!(parse(&frame.encode(Vsn::V1)), parse(text), "{text}");
            let again = Frame::decode(&frame.encode(Vsn::V1), Vsn::V1).expect(text);
            assert_eq!(again, frame);
        }
    }

    #[test]
    fn v2_protocol_frames_round_trip_and_match_v1() {
        for text in PROTOCOL_FRAMES {
            let v2 = v2_text_of(text);
            let frame = Frame::decode(&v2, Vsn::V2).expect(&v2);
            assert_eq!(parse(&frame.encode(Vsn::V2)), parse(&v2), "{v2}");
            assert_eq!(frame, Frame::decode(text, Vsn::V1).expect(text));
        }
    }

    #[test]
    fn phoenix_js_v2_refs_are_kept_as_strings() {
        let text = r#"["1","1","__absinthe__:control","phx_join",{}]"#;
        let frame = Frame::decode(text, Vsn::V2).expect("valid");
        assert_eq!(frame.join_ref, json!("1"));
        assert_eq!(frame.reference, json!("1"));
        let reply = frame.reply("ok", json!({}));
        assert_eq!(
            parse(&reply.encode(Vsn::V2)),
            json!(["1", "1", CONTROL_TOPIC, "phx_reply", {"status": "ok", "response": {}}])
        );
        // V1 writes join_ref only when there is one.
        assert_eq!(parse(&reply.encode(Vsn::V1))["join_ref"], json!("1"));
        let plain = Frame::join_control(json!(0)).encode(Vsn::V1);
        assert!(parse(&plain).get("join_ref").is_none());
    }

    #[test]
    fn constructors_build_the_protocol_frames() {
        let cases = [
            (Frame::join_control(json!(0)), PROTOCOL_FRAMES[0]),
            (
                Frame::join_control(json!(0)).reply("ok", json!({})),
                PROTOCOL_FRAMES[1],
            ),
            (
                Frame::doc(
                    json!(0),
                    "subscription AwaitSignal(...)",
                    json!({"id": "<uuid>", "signal": "update"}),
                ),
                PROTOCOL_FRAMES[2],
            ),
            (
                Frame::subscription_data("<subscriptionId>", json!({"data": {"awaitSignal": {}}})),
                PROTOCOL_FRAMES[5],
            ),
            (Frame::heartbeat(json!(0)), PROTOCOL_FRAMES[6]),
            (Frame::unsubscribe(json!(7), "..."), PROTOCOL_FRAMES[7]),
        ];
        for (frame, text) in cases {
            assert_eq!(parse(&frame.encode(Vsn::V1)), parse(text), "{text}");
        }
    }

    #[test]
    fn client_frames_are_written_in_the_clients_key_order() {
        assert_eq!(
            Frame::join_control(json!(0)).encode_client(),
            PROTOCOL_FRAMES[0]
        );
        assert_eq!(
            Frame::heartbeat(json!(0)).encode_client(),
            PROTOCOL_FRAMES[6]
        );
        assert_eq!(
            Frame::unsubscribe(json!(7), "...").encode_client(),
            PROTOCOL_FRAMES[7]
        );
        let v2 = Frame::join_control(json!("1")).with_join_ref(json!("1"));
        assert_eq!(
            v2.encode_client(),
            r#"{"topic":"__absinthe__:control","event":"phx_join","payload":{},"ref":"1","join_ref":"1"}"#
        );
    }

    #[test]
    fn classify_server_frames() {
        let ok = Frame::decode(PROTOCOL_FRAMES[3], Vsn::V1).expect("valid");
        assert_eq!(
            ok.classify(),
            Incoming::Reply {
                status: "ok",
                response: &json!({"subscriptionId": "__absinthe__:doc:<opaque>"})
            }
        );
        let err = Frame::decode(PROTOCOL_FRAMES[4], Vsn::V1).expect("valid");
        assert!(matches!(
            err.classify(),
            Incoming::Reply {
                status: "error",
                ..
            }
        ));
        let data = Frame::decode(PROTOCOL_FRAMES[5], Vsn::V1).expect("valid");
        assert_eq!(
            data.classify(),
            Incoming::Data {
                subscription_id: "<subscriptionId>",
                result: &json!({"data": {"awaitSignal": {}}})
            }
        );
        let mut no_id = data.clone();
        no_id.topic = "from-topic".into();
        no_id.payload = json!({"result": 1});
        assert!(matches!(
            no_id.classify(),
            Incoming::Data {
                subscription_id: "from-topic",
                ..
            }
        ));
        let bare_reply = Frame::new(json!(1), "t", EV_REPLY, json!({"status": "ok"}));
        assert_eq!(
            bare_reply.classify(),
            Incoming::Reply {
                status: "ok",
                response: &Value::Null
            }
        );
        let odd_reply = Frame::new(json!(1), "t", EV_REPLY, json!({"status": 3}));
        assert_eq!(odd_reply.classify(), Incoming::Other);
        assert_eq!(
            Frame::new(json!(1), "t", EV_CLOSE, json!({})).classify(),
            Incoming::Close
        );
        assert_eq!(
            Frame::new(json!(1), "t", EV_ERROR, json!({})).classify(),
            Incoming::Error
        );
        assert_eq!(Frame::heartbeat(json!(1)).classify(), Incoming::Other);
    }

    #[test]
    fn malformed_v1_frames_are_refused_with_the_reason() {
        assert!(matches!(
            Frame::decode("{not json", Vsn::V1),
            Err(FrameError::NotJson(_))
        ));
        assert!(matches!(
            Frame::decode("", Vsn::V1),
            Err(FrameError::NotJson(_))
        ));
        assert!(matches!(
            Frame::decode(r#"["a"]"#, Vsn::V1),
            Err(FrameError::NotObject { found: "an array" })
        ));
        for field in ["topic", "event", "payload", "ref"] {
            let mut v = parse(PROTOCOL_FRAMES[0]);
            v.as_object_mut().expect("object").remove(field);
            match Frame::decode(&v.to_string(), Vsn::V1) {
                Err(FrameError::MissingField { field: f }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        let bad_topic = r#"{"topic":1,"event":"e","payload":{},"ref":0}"#;
        assert!(matches!(
            Frame::decode(bad_topic, Vsn::V1),
            Err(FrameError::NotString {
                field: "topic",
                found: "a number"
            })
        ));
        let bad_event = r#"{"topic":"t","event":null,"payload":{},"ref":0}"#;
        assert!(matches!(
            Frame::decode(bad_event, Vsn::V1),
            Err(FrameError::NotString {
                field: "event",
                found: "null"
            })
        ));
    }

    #[test]
    fn malformed_v2_frames_are_refused_with_the_reason() {
        assert!(matches!(
            Frame::decode("[1,2,", Vsn::V2),
            Err(FrameError::NotJson(_))
        ));
        assert!(matches!(
            Frame::decode(PROTOCOL_FRAMES[0], Vsn::V2),
            Err(FrameError::NotArray { .. })
        ));
        match Frame::decode(r#"[null,0,"t","e"]"#, Vsn::V2) {
            Err(e @ FrameError::NotArray { .. }) => {
                assert!(e.to_string().contains("4 elements"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Frame::decode(r#"[null,0,"t",5,{}]"#, Vsn::V2),
            Err(FrameError::NotString { field: "event", .. })
        ));
        // Like Phoenix, extra trailing elements are ignored.
        let long = Frame::decode(r#"[null,0,"t","e",{},"extra"]"#, Vsn::V2).expect("valid");
        assert_eq!(long.event, "e");
    }

    #[test]
    fn not_json_keeps_its_cause() {
        let err = Frame::decode("nope", Vsn::V1).expect_err("not JSON");
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn vsn_from_query() {
        assert_eq!(Vsn::from_query(None), Vsn::V1);
        assert_eq!(Vsn::from_query(Some("")), Vsn::V1);
        assert_eq!(Vsn::from_query(Some("vsn=2.0.0")), Vsn::V2);
        assert_eq!(Vsn::from_query(Some("?token=x&vsn=2.0.0")), Vsn::V2);
        assert_eq!(Vsn::from_query(Some("vsn=1.0.0")), Vsn::V1);
        assert_eq!(Vsn::from_query(Some("xvsn=2.0.0")), Vsn::V1);
        assert_eq!(Vsn::from_query(Some("vsn=20")), Vsn::V1);
    }

    /// What [`Frame::classify`] says of a frame, in one comparable form.
    fn tree_reading(text: &str) -> Result<String, String> {
        let frame = Frame::decode(text, Vsn::V1).map_err(|e| e.to_string())?;
        Ok(match frame.classify() {
            Incoming::Reply { status, response } => format!("reply {status} {response}"),
            Incoming::Data {
                subscription_id,
                result,
            } => format!("data {subscription_id} {result}"),
            other => format!("{other:?}"),
        })
    }

    /// What [`ServerFrame::classify`] says of it, in the same form.
    fn direct_reading(text: &str) -> Result<String, String> {
        let frame = ServerFrame::decode(text).map_err(|e| e.to_string())?;
        let tree = |raw: &RawValue| parse(raw.get()).to_string();
        Ok(match frame.classify() {
            ServerIncoming::Reply { status, response } => {
                format!("reply {status} {}", response.map_or("null".into(), tree))
            }
            ServerIncoming::Data {
                subscription_id,
                result,
            } => format!("data {subscription_id} {}", tree(result)),
            ServerIncoming::Close => "Close".into(),
            ServerIncoming::Error => "Error".into(),
            ServerIncoming::Other => "Other".into(),
        })
    }

    #[test]
    fn a_client_reads_server_frames_directly_as_from_the_tree() {
        let hostile = [
            "",
            "not json",
            "[]",
            r#"["a","b",{},0]"#,
            "null",
            r#"{"topic":"t","event":"phx_reply","payload":{}}"#,
            r#"{"topic":1,"event":"phx_reply","payload":{},"ref":0}"#,
            r#"{"topic":"t","event":["phx_reply"],"payload":{},"ref":0}"#,
            r#"{"topic":"t","event":"phx_reply","payload":["ok",{}],"ref":0}"#,
            r#"{"topic":"t","event":"phx_reply","payload":{"status":1},"ref":0}"#,
            r#"{"topic":"t","event":"phx_reply","payload":{"status":"ok","response":null},"ref":0}"#,
            r#"{"topic":"t","event":"phx_reply","payload":null,"ref":"0"}"#,
            r#"{"topic":"t","event":"subscription:data","payload":{"result":1},"ref":null}"#,
            r#"{"topic":"t","event":"subscription:data","payload":{"result":null,"subscriptionId":null},"ref":null}"#,
            r#"{"topic":"t","event":"subscription:data","payload":{"result":{},"subscriptionId":5},"ref":null}"#,
            r#"{"topic":"t","event":"subscription:data","payload":{"subscriptionId":"s"},"ref":null}"#,
            r#"{"topic":"t\u00e9","event":"subscription:data","payload":{"result":{"a":"\"x\""}},"ref":null}"#,
            r#"{"topic":"__absinthe__:control","event":"phx_close","payload":{},"ref":null,"join_ref":"1"}"#,
            r#"{"topic":"__absinthe__:control","event":"phx_error","payload":{},"ref":null}"#,
            r#" {"topic":"t","event":"x","payload":{},"ref":0,"extra":[1,2]} "#,
        ];
        for text in PROTOCOL_FRAMES.iter().chain(&hostile) {
            assert_eq!(direct_reading(text), tree_reading(text), "{text}");
        }
        // A key given twice: the tree keeps the last, a client refuses the frame.
        let twice = r#"{"topic":"x","topic":"y","event":"phx_close","payload":{},"ref":0}"#;
        assert!(tree_reading(twice).is_ok());
        let refused = direct_reading(twice).expect_err("refused");
        assert!(
            refused.starts_with("frame cannot be read: duplicate field `topic`"),
            "{refused}"
        );
        // What a client does not read it does not check, as `JSON.parse` takes it.
        let lenient = r#"{"topic":"__absinthe__:control","event":"phx_reply","payload":{"status":"ok","response":{"data":{"x":1e400,"s":"\ud800"}}},"ref":0}"#;
        assert!(tree_reading(lenient).is_err());
        let read = ServerFrame::decode(lenient).expect("a client reads it");
        assert!(matches!(read.classify(), ServerIncoming::Reply { status, .. } if status == "ok"));
        let numbered = ServerFrame::decode(PROTOCOL_FRAMES[7]).expect("valid");
        assert_eq!(numbered.reference(), Some(7));
        let unnumbered = ServerFrame::decode(PROTOCOL_FRAMES[5]).expect("valid");
        assert_eq!(unnumbered.reference(), None);
    }

    #[test]
    fn client_text_writes_what_encode_client_writes() {
        let doc = DocPayload {
            query: "subscription AwaitSignal(...)",
            variables: &json!({"id": "<uuid>", "signal": "update"}),
        };
        assert_eq!(
            client_text(0, CONTROL_TOPIC, EV_DOC, &doc),
            Frame::doc(json!(0), doc.query, doc.variables.clone()).encode_client()
        );
        assert_eq!(
            client_text(0, CONTROL_TOPIC, EV_JOIN, &Empty {}),
            PROTOCOL_FRAMES[0]
        );
        assert_eq!(
            client_text(0, PHOENIX_TOPIC, EV_HEARTBEAT, &Empty {}),
            PROTOCOL_FRAMES[6]
        );
    }
}
