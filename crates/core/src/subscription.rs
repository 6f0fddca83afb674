//! One websocket's Absinthe subscriptions as a pure state machine.
//!
//! A [`SocketMachine`] is everything a Reality2 client decides about one
//! websocket: join the control topic, send each subscription's `doc`, read
//! the replies and pushes, heartbeat every 30 s from the socket's own join,
//! and after a drop reconnect (or not) as its [`Reconnect`] policy says. It
//! does no I/O and reads no clock: a driver feeds it inputs (the socket
//! opened, a frame's text arrived, the socket closed, a timer fired — each
//! with `now_ms`) and carries out the [`Effect`]s it returns (open the
//! socket, send this text, arm a timer, tell the owner a signal arrived).
//! So the page drives it with a real websocket and real timers, and the
//! tests drive it with a simulated clock.
//!
//! A phone's socket carries one subscription, and then every frame is
//! byte-identical to the WebApp's (every `ref` is `0`, as the real clients
//! send it: [`Refs::Zero`]); a multiplexing socket (`sockets=shared`)
//! carries many and numbers its frames so replies can be told apart
//! ([`Refs::Counting`]).
//!
//! # Layout
//!
//! - [`Reconnect`]: the two reconnect policies, and phoenix.js's back-off with jitter;
//! - [`Signal`]: a pushed signal, typed, with [`Signal::sensor`] that reads a
//!   number or a numeric string ([`sensor_value`]);
//! - [`SocketState`], [`SubState`]: the lifecycles;
//! - [`Effect`]: what the machine asks its driver to do or tells its owner;
//! - [`SocketMachine`]: the machine; its inputs are [`SocketMachine::start`],
//!   [`SocketMachine::opened`], [`SocketMachine::received`],
//!   [`SocketMachine::closed`], [`SocketMachine::tick`],
//!   [`SocketMachine::subscribe`], [`SocketMachine::unsubscribe`],
//!   [`SocketMachine::request`] and [`SocketMachine::close`].
//! - [`RequestError`]: why a query or mutation sent on the socket
//!   (`transport=socket`, as the real node's channel accepts them) got no
//!   answer. As phoenix.js's channel push does, a request made before the
//!   socket is joined waits in a buffer, is sent on the join, and fails if
//!   no reply came within [`SocketOptions::request_timeout_ms`].

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::Hash;

use serde_json::value::RawValue;
use serde_json::Value;

use crate::graphql::{AwaitSignalVariables, NodeError};
use crate::phoenix::{
    client_text, read_object, DocPayload, Empty, ServerFrame, ServerIncoming, UnsubscribePayload,
    CONTROL_TOPIC, EV_DOC, EV_HEARTBEAT, EV_JOIN, EV_UNSUBSCRIBE, PHOENIX_TOPIC,
};
use crate::scenario::splitmix;
use crate::text::excerpt;
use crate::webapp::AWAIT_SIGNAL;

/// The real clients' heartbeat period (ms), from each socket's own join.
pub const HEARTBEAT_MS: f64 = 30_000.0;
/// phoenix.js's push timeout (ms): a request without its reply by then fails.
pub const PUSH_TIMEOUT_MS: f64 = 10_000.0;
/// phoenix.js's reconnect delays (ms) for attempts 1 to 9.
pub const BACKOFF_MS: [f64; 9] = [
    10.0, 50.0, 100.0, 150.0, 200.0, 250.0, 500.0, 1000.0, 2000.0,
];
/// phoenix.js's delay from the tenth attempt on (ms).
pub const BACKOFF_AFTER_MS: f64 = 5000.0;
/// The close code the machine reports when it closes a socket whose
/// heartbeat went unanswered, or whose channel the server closed.
pub const ABNORMAL_CLOSE: u16 = 1006;
/// Characters of a bad frame kept in [`Effect::Malformed`].
const MALFORMED_EXCERPT: usize = 200;

word_enum! {
    /// What a client does when its socket drops.
    #[derive(Default)]
    pub enum Reconnect {
        /// phoenix.js's back-off ([`BACKOFF_MS`], then every
        /// [`BACKOFF_AFTER_MS`]) with jitter, then rejoin and resubscribe.
        #[default]
        Phoenix = "phoenix",
        /// The IoT WebApp's own client: never reconnects; its heartbeat
        /// interval keeps firing into the dead socket.
        WebApp = "webapp",
    }
}

impl Reconnect {
    /// phoenix.js's delay before reconnect attempt `attempt` (1-based), without jitter.
    pub fn backoff_ms(attempt: u32) -> f64 {
        BACKOFF_MS
            .get(attempt.saturating_sub(1) as usize)
            .copied()
            .unwrap_or(BACKOFF_AFTER_MS)
    }
}

/// The jitter on reconnect delays: each delay is phoenix.js's times a factor
/// drawn uniformly from `[0.5, 1.5)`. The mean stays phoenix.js's schedule,
/// but sockets dropped together (a node restart) do not all come back in
/// the same millisecond. Drawn from SplitMix64 seeded per socket, so a run
/// is repeatable and the page (wasm32) and native tests agree.
#[derive(Debug, Clone)]
struct Jitter(u64);

impl Jitter {
    /// The next factor in `[0.5, 1.5)`.
    fn factor(&mut self) -> f64 {
        self.0 = splitmix(self.0);
        let unit = (self.0 >> 11) as f64 / (1u64 << 53) as f64;
        0.5 + unit
    }
}

/// The sensor of a signal's parameters, read as the WebApp reads it: a
/// number, or a numeric string (the real node's vars plugin stores
/// `"__sensor__"` as text, so its signals carry `"sensor": "42"`).
/// Fractions are floored, as the WebApp's `Math.floor`.
pub fn sensor_value(value: &Value) -> Option<i64> {
    let number = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    number
        .is_finite()
        .then(|| number.floor())
        .filter(|n| n.abs() < 9.0e15)
        .map(|n| n as i64)
}

/// One signal pushed on a subscription: `awaitSignal { event parameters }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    /// The sentant subscribed to (its id).
    pub sentant: String,
    /// The signal's event (`update`, `internal`, ...).
    pub event: String,
    /// The signal's parameters (`Value::Null` when absent).
    pub parameters: Value,
}

impl Signal {
    /// The signal in a pushed `result` (`{"data": {"awaitSignal": {...}}}`,
    /// as JSON text) of a subscription to `sentant`; `None` when it holds no
    /// signal. Only the parameters become a JSON tree.
    pub fn from_result(sentant: &str, result: &RawValue) -> Option<Signal> {
        #[derive(serde::Deserialize)]
        struct Pushed<'a> {
            #[serde(borrow)]
            data: Option<&'a RawValue>,
        }
        #[derive(serde::Deserialize)]
        struct Data<'a> {
            #[serde(rename = "awaitSignal", borrow)]
            await_signal: Option<&'a RawValue>,
        }
        #[derive(serde::Deserialize)]
        struct AwaitSignal<'a> {
            #[serde(borrow)]
            event: Cow<'a, str>,
            parameters: Option<Value>,
        }
        let data = read_object::<Pushed>(result)?.data?;
        let signal = read_object::<Data>(data)?.await_signal?;
        let signal = read_object::<AwaitSignal>(signal)?;
        Some(Signal {
            sentant: sentant.to_owned(),
            event: signal.event.into_owned(),
            parameters: signal.parameters.unwrap_or(Value::Null),
        })
    }

    /// The `sensor` parameter, a number or a numeric string.
    pub fn sensor(&self) -> Option<i64> {
        self.parameters.get("sensor").and_then(sensor_value)
    }

    /// A text parameter (`name`, `id`, `activity`).
    pub fn text(&self, key: &str) -> Option<&str> {
        self.parameters.get(key).and_then(Value::as_str)
    }
}

/// How a socket numbers its frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refs {
    /// Every frame `ref: 0`, as the real clients send them; replies are
    /// matched in order. For a socket that carries one subscription.
    Zero,
    /// The join `0`, then `1, 2, ...`; replies matched by ref. For a socket
    /// that carries many.
    Counting,
}

/// How a socket behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct SocketOptions {
    pub reconnect: Reconnect,
    pub refs: Refs,
    /// The heartbeat period (ms); [`HEARTBEAT_MS`] in the real clients.
    pub heartbeat_ms: f64,
    /// Seeds the reconnect jitter.
    pub seed: u64,
    /// How long a request ([`SocketMachine::request`]) waits for its reply,
    /// buffered or sent ([`PUSH_TIMEOUT_MS`] in phoenix.js).
    pub request_timeout_ms: f64,
}

impl SocketOptions {
    /// A phone's socket: one subscription, frames as the WebApp's.
    pub fn phone(reconnect: Reconnect, seed: u64) -> SocketOptions {
        SocketOptions {
            reconnect,
            refs: Refs::Zero,
            heartbeat_ms: HEARTBEAT_MS,
            seed,
            request_timeout_ms: PUSH_TIMEOUT_MS,
        }
    }

    /// A socket that multiplexes many subscriptions.
    pub fn shared(reconnect: Reconnect, seed: u64) -> SocketOptions {
        SocketOptions {
            refs: Refs::Counting,
            ..SocketOptions::phone(reconnect, seed)
        }
    }
}

/// Where a socket is in its life.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SocketState {
    /// Not started.
    Idle,
    /// Opening (the driver opens it).
    Connecting,
    /// Open; the control topic's join is sent.
    Joining,
    /// Joined: subscriptions can be sent.
    Live,
    /// Dropped; reconnect attempt `attempt` is scheduled ([`Reconnect::Phoenix`]).
    Dropped { attempt: u32 },
    /// Dropped for good ([`Reconnect::WebApp`]); its heartbeats keep firing.
    Dead { code: u16 },
    /// Closed on purpose.
    Closed,
}

/// Why a document sent on the socket ([`SocketMachine::request`]) got no
/// answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    /// The socket was not joined when the document was to be sent.
    #[error("the socket is not connected")]
    NotConnected,
    /// The socket dropped or was closed before the reply.
    #[error("the socket closed before the answer")]
    Dropped,
    /// No reply within the request timeout (buffered or sent).
    #[error("no answer within {0} ms")]
    Timeout(u32),
    /// The node ran the document and answered with an error.
    #[error("node error: {0}")]
    Node(NodeError),
}

/// Where one subscription is in its life.
#[derive(Debug, Clone, PartialEq)]
pub enum SubState {
    /// Asked for; waits for the socket to be joined.
    Waiting,
    /// Its `doc` frame is sent; no reply yet.
    Requested { since_ms: f64 },
    /// The node confirmed it under this subscription id.
    Live { id: String },
    /// The node refused it.
    Refused(NodeError),
}

/// What the machine asks its driver to do, or tells its owner.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect<K> {
    /// Open the websocket now.
    Open,
    /// Send this text on the websocket.
    Send(String),
    /// Close the websocket (the machine already counts it as closed).
    Close,
    /// Call [`SocketMachine::tick`] at `at_ms` (replaces any earlier timer).
    Timer { at_ms: f64 },
    /// The socket opened, `after_ms` after it was asked to.
    Opened { after_ms: f64 },
    /// The control topic is joined, `after_ms` after the socket was asked to
    /// open: the WebApp's "connected".
    Joined { after_ms: f64 },
    /// The join was refused (the node's response as text); the socket is closed.
    JoinRefused(String),
    /// Subscription `key`'s document is sent: what the WebApp reports as
    /// "connected" (a phone then sends `update`).
    Connected(K),
    /// Subscription `key` is live, `after_ms` after its document was sent;
    /// `gap_ms`: how long it was without its subscription after a drop.
    Live {
        key: K,
        subscription_id: String,
        after_ms: f64,
        gap_ms: Option<f64>,
    },
    /// The node refused subscription `key`.
    Refused { key: K, error: NodeError },
    /// A signal arrived on subscription `key`.
    Signal { key: K, signal: Signal },
    /// The socket dropped (close `code`); `reconnect_after_ms` is `None`
    /// when no reconnect follows.
    Dropped {
        code: u16,
        reconnect_after_ms: Option<f64>,
    },
    /// Reconnect attempt `attempt` begins (an [`Effect::Open`] follows).
    Reconnecting { attempt: u32 },
    /// A frame that is not a Phoenix frame, or a push without a signal.
    Malformed(String),
    /// The answer to request `request` ([`SocketMachine::request`]): the
    /// GraphQL response (its JSON text, as the node wrote it), or why there
    /// is none.
    Answered {
        request: u64,
        result: Result<String, RequestError>,
    },
}

/// A reply the socket waits for on the control topic.
#[derive(Debug, Clone)]
enum Pending<K> {
    Doc(K),
    /// A query or mutation, by the driver's request number.
    Request(u64),
    Other,
}

/// A request made while the socket was not joined (phoenix.js's push buffer).
#[derive(Debug, Clone)]
struct Buffered {
    request: u64,
    query: String,
    variables: Box<RawValue>,
}

/// A deadline (ms), ordered as a number ([`f64::total_cmp`]).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Due(f64);

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Due) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    fn cmp(&self, other: &Due) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Each unanswered request's deadline: the earliest, and any one by its
/// number, found without a walk over all of them (a shared socket may hold
/// thousands).
#[derive(Debug, Clone, Default)]
struct Deadlines {
    by_time: BTreeSet<(Due, u64)>,
    by_request: HashMap<u64, Due>,
}

impl Deadlines {
    fn insert(&mut self, request: u64, at_ms: f64) {
        self.remove(request);
        self.by_time.insert((Due(at_ms), request));
        self.by_request.insert(request, Due(at_ms));
    }

    fn remove(&mut self, request: u64) {
        if let Some(due) = self.by_request.remove(&request) {
            self.by_time.remove(&(due, request));
        }
    }

    fn earliest(&self) -> Option<f64> {
        self.by_time.first().map(|(due, _)| due.0)
    }

    /// Takes out the requests due by `now_ms`, earliest first.
    fn expire(&mut self, now_ms: f64) -> Vec<u64> {
        let mut expired = Vec::new();
        while let Some(&(due, request)) = self.by_time.first() {
            if due.0 > now_ms {
                break;
            }
            self.by_time.pop_first();
            self.by_request.remove(&request);
            expired.push(request);
        }
        expired
    }

    fn clear(&mut self) {
        self.by_time.clear();
        self.by_request.clear();
    }
}

/// One subscription of the socket.
#[derive(Debug, Clone)]
struct Sub<K> {
    key: K,
    sentant: String,
    signal: String,
    state: SubState,
    /// Since when it has been without its subscription after a drop.
    gap_since: Option<f64>,
}

/// One websocket's subscriptions: see the module documentation.
#[derive(Debug, Clone)]
pub struct SocketMachine<K> {
    options: SocketOptions,
    state: SocketState,
    subs: Vec<Sub<K>>,
    /// Subscription id → position in `subs`.
    routes: HashMap<String, usize>,
    /// Replies awaited on the control topic: ref → what it answers.
    pending: VecDeque<(u64, Pending<K>)>,
    /// Requests waiting for the socket to be joined.
    buffered: VecDeque<Buffered>,
    /// Each request not yet answered, buffered or sent: its deadline.
    deadlines: Deadlines,
    next_ref: u64,
    /// Drops since the socket was last joined.
    attempt: u32,
    connect_started_ms: f64,
    heartbeat_at: Option<f64>,
    /// A heartbeat is sent and not yet answered.
    heartbeat_unanswered: bool,
    reconnect_at: Option<f64>,
    /// The timer last asked of the driver.
    timer_at: Option<f64>,
    jitter: Jitter,
    /// The page holding the socket is frozen ([`SocketMachine::freeze`]).
    frozen: bool,
}

impl<K: Clone + Eq + Hash> SocketMachine<K> {
    /// A socket not yet started.
    pub fn new(options: SocketOptions) -> SocketMachine<K> {
        SocketMachine {
            jitter: Jitter(options.seed),
            options,
            state: SocketState::Idle,
            subs: Vec::new(),
            routes: HashMap::new(),
            pending: VecDeque::new(),
            buffered: VecDeque::new(),
            deadlines: Deadlines::default(),
            next_ref: 0,
            attempt: 0,
            connect_started_ms: 0.0,
            heartbeat_at: None,
            heartbeat_unanswered: false,
            reconnect_at: None,
            timer_at: None,
            frozen: false,
        }
    }

    /// The socket's state.
    pub fn state(&self) -> SocketState {
        self.state
    }

    /// Whether the websocket is open now (joining or joined).
    pub fn is_open(&self) -> bool {
        matches!(self.state, SocketState::Joining | SocketState::Live)
    }

    /// The state of subscription `key`.
    pub fn subscription(&self, key: &K) -> Option<&SubState> {
        self.subs.iter().find(|s| &s.key == key).map(|s| &s.state)
    }

    /// How many subscriptions are live.
    pub fn live_subscriptions(&self) -> usize {
        self.routes.len()
    }

    /// How many subscriptions the socket holds (in any state).
    pub fn subscriptions(&self) -> usize {
        self.subs.len()
    }

    /// The next ref: `0` for every frame with [`Refs::Zero`].
    fn take_ref(&mut self) -> u64 {
        match self.options.refs {
            Refs::Zero => 0,
            Refs::Counting => {
                let reference = self.next_ref;
                self.next_ref += 1;
                reference
            }
        }
    }

    /// Appends a [`Effect::Timer`] when the next deadline changed.
    fn finish(&mut self, mut effects: Vec<Effect<K>>) -> Vec<Effect<K>> {
        let deadline = self.deadlines.earliest();
        let next = [self.reconnect_at, self.heartbeat_at, deadline]
            .into_iter()
            .flatten()
            .reduce(f64::min);
        if next != self.timer_at {
            self.timer_at = next;
            if let Some(at_ms) = next {
                effects.push(Effect::Timer { at_ms });
            }
        }
        effects
    }

    /// Opens the socket (when not started, or closed on purpose).
    pub fn start(&mut self, now_ms: f64) -> Vec<Effect<K>> {
        if !matches!(self.state, SocketState::Idle | SocketState::Closed) {
            return Vec::new();
        }
        self.attempt = 0;
        self.begin_connect(now_ms)
    }

    fn begin_connect(&mut self, now_ms: f64) -> Vec<Effect<K>> {
        self.state = SocketState::Connecting;
        self.connect_started_ms = now_ms;
        self.next_ref = 0;
        let mut effects = self.drop_pending();
        effects.push(Effect::Open);
        effects
    }

    /// The websocket opened: join the control topic.
    pub fn opened(&mut self, now_ms: f64) -> Vec<Effect<K>> {
        if self.state != SocketState::Connecting {
            return Vec::new();
        }
        self.state = SocketState::Joining;
        let reference = self.take_ref();
        let join = client_text(reference, CONTROL_TOPIC, EV_JOIN, &Empty {});
        vec![
            Effect::Opened {
                after_ms: now_ms - self.connect_started_ms,
            },
            Effect::Send(join),
        ]
    }

    /// Asks for `awaitSignal(sentant, signal)` under `key` (a key already
    /// held is replaced). Sent at once when the socket is joined, else on
    /// its next join.
    pub fn subscribe(
        &mut self,
        now_ms: f64,
        key: K,
        sentant: &str,
        signal: &str,
    ) -> Vec<Effect<K>> {
        let mut effects = self.unsubscribe(&key);
        self.subs.push(Sub {
            key,
            sentant: sentant.to_owned(),
            signal: signal.to_owned(),
            state: SubState::Waiting,
            gap_since: None,
        });
        if self.state == SocketState::Live {
            let index = self.subs.len() - 1;
            effects.extend(self.send_doc(now_ms, index));
        }
        effects
    }

    /// Ends subscription `key` (an `unsubscribe` frame when it is live).
    pub fn unsubscribe(&mut self, key: &K) -> Vec<Effect<K>> {
        let Some(index) = self.subs.iter().position(|s| &s.key == key) else {
            return Vec::new();
        };
        let sub = self.subs.remove(index);
        self.routes.retain(|_, i| *i != index);
        for i in self.routes.values_mut() {
            if *i > index {
                *i -= 1;
            }
        }
        // A reply still awaited for it is no longer anyone's.
        for (_, pending) in self.pending.iter_mut() {
            if matches!(pending, Pending::Doc(k) if k == key) {
                *pending = Pending::Other;
            }
        }
        let mut effects = Vec::new();
        if let (SubState::Live { id }, SocketState::Live) = (&sub.state, self.state) {
            let reference = self.take_ref();
            self.pending.push_back((reference, Pending::Other));
            let payload = UnsubscribePayload {
                subscription_id: id,
            };
            effects.push(Effect::Send(client_text(
                reference,
                CONTROL_TOPIC,
                EV_UNSUBSCRIBE,
                &payload,
            )));
        }
        effects
    }

    /// Sends a query or mutation as a `doc` frame (answered in its reply,
    /// as Absinthe's channel does); its answer comes as
    /// [`Effect::Answered`] under `request`, a number the caller chooses.
    /// Made while the socket connects, joins or waits to reconnect, it is
    /// buffered and sent on the join; a socket closed for good (or a frozen
    /// page) answers [`RequestError::NotConnected`] at once; without a reply
    /// within the timeout it fails with [`RequestError::Timeout`].
    /// `variables` is the document's variables as a JSON object's text.
    pub fn request(
        &mut self,
        now_ms: f64,
        request: u64,
        query: &str,
        variables: &RawValue,
    ) -> Vec<Effect<K>> {
        let waits = matches!(
            self.state,
            SocketState::Connecting | SocketState::Joining | SocketState::Dropped { .. }
        );
        if self.frozen || !(waits || self.state == SocketState::Live) {
            return vec![Effect::Answered {
                request,
                result: Err(RequestError::NotConnected),
            }];
        }
        self.deadlines
            .insert(request, now_ms + self.options.request_timeout_ms);
        let effects = if waits {
            self.buffered.push_back(Buffered {
                request,
                query: query.to_owned(),
                variables: variables.to_owned(),
            });
            Vec::new()
        } else {
            self.send_request(request, query, variables)
        };
        self.finish(effects)
    }

    fn send_request(&mut self, request: u64, query: &str, variables: &RawValue) -> Vec<Effect<K>> {
        let reference = self.take_ref();
        self.pending
            .push_back((reference, Pending::Request(request)));
        let payload = DocPayload { query, variables };
        vec![Effect::Send(client_text(
            reference,
            CONTROL_TOPIC,
            EV_DOC,
            &payload,
        ))]
    }

    /// Fails every request still buffered with `error`.
    fn fail_buffered(&mut self, error: RequestError) -> Vec<Effect<K>> {
        let failed: Vec<u64> = self.buffered.drain(..).map(|b| b.request).collect();
        for &request in &failed {
            self.deadlines.remove(request);
        }
        failed
            .into_iter()
            .map(|request| Effect::Answered {
                request,
                result: Err(error.clone()),
            })
            .collect()
    }

    /// Fails the requests whose deadline passed.
    fn expire_requests(&mut self, now_ms: f64) -> Vec<Effect<K>> {
        let timeout = self.options.request_timeout_ms as u32;
        let mut effects = Vec::new();
        for request in self.deadlines.expire(now_ms) {
            self.buffered.retain(|b| b.request != request);
            // Its reply, if it ever comes, is no longer anyone's.
            for (_, pending) in self.pending.iter_mut() {
                if matches!(pending, Pending::Request(r) if *r == request) {
                    *pending = Pending::Other;
                }
            }
            effects.push(Effect::Answered {
                request,
                result: Err(RequestError::Timeout(timeout)),
            });
        }
        effects
    }

    /// Request `request` is answered: its deadline goes.
    fn answered(&mut self, request: u64, result: Result<String, RequestError>) -> Effect<K> {
        self.deadlines.remove(request);
        Effect::Answered { request, result }
    }

    /// Forgets every reply awaited; the requests among them fail with `why`.
    fn drop_pending(&mut self) -> Vec<Effect<K>> {
        let dropped: Vec<u64> = self
            .pending
            .drain(..)
            .filter_map(|(_, pending)| match pending {
                Pending::Request(request) => Some(request),
                _ => None,
            })
            .collect();
        dropped
            .into_iter()
            .map(|request| self.answered(request, Err(RequestError::Dropped)))
            .collect()
    }

    fn send_doc(&mut self, now_ms: f64, index: usize) -> Vec<Effect<K>> {
        let reference = self.take_ref();
        let sub = &mut self.subs[index];
        let variables = AwaitSignalVariables {
            id: &sub.sentant,
            signal: &sub.signal,
        };
        let doc = client_text(
            reference,
            CONTROL_TOPIC,
            EV_DOC,
            &DocPayload {
                query: AWAIT_SIGNAL,
                variables: &variables,
            },
        );
        sub.state = SubState::Requested { since_ms: now_ms };
        self.pending
            .push_back((reference, Pending::Doc(sub.key.clone())));
        vec![Effect::Send(doc), Effect::Connected(sub.key.clone())]
    }

    /// A text frame arrived.
    pub fn received(&mut self, now_ms: f64, text: &str) -> Vec<Effect<K>> {
        if self.frozen {
            // The frozen page runs no code: frames reach the socket, not the page.
            return Vec::new();
        }
        let frame = match ServerFrame::decode(text) {
            Ok(frame) => frame,
            Err(err) => {
                let why = format!("{err}: {:?}", excerpt(text, MALFORMED_EXCERPT));
                return vec![Effect::Malformed(why)];
            }
        };
        match frame.classify() {
            ServerIncoming::Reply { status, response } if frame.topic == CONTROL_TOPIC => {
                self.on_control_reply(now_ms, frame.reference(), &status, response)
            }
            ServerIncoming::Reply { .. } if frame.topic == PHOENIX_TOPIC => {
                self.heartbeat_unanswered = false;
                Vec::new()
            }
            ServerIncoming::Data {
                subscription_id,
                result,
            } => {
                let Some(&index) = self.routes.get(subscription_id.as_ref()) else {
                    // A push for a subscription this socket no longer holds.
                    return Vec::new();
                };
                let sub = &self.subs[index];
                match Signal::from_result(&sub.sentant, result) {
                    Some(signal) => vec![Effect::Signal {
                        key: sub.key.clone(),
                        signal,
                    }],
                    None => vec![Effect::Malformed(format!(
                        "a push without a signal: {:?}",
                        excerpt(result.get(), MALFORMED_EXCERPT)
                    ))],
                }
            }
            ServerIncoming::Close | ServerIncoming::Error if frame.topic == CONTROL_TOPIC => {
                // The control channel is gone: the subscriptions with it.
                let mut effects = vec![Effect::Close];
                effects.extend(self.closed(now_ms, ABNORMAL_CLOSE));
                effects
            }
            _ => Vec::new(),
        }
    }

    /// A reply on the control topic; `response` is its JSON text (`None`
    /// when absent or `null`).
    fn on_control_reply(
        &mut self,
        now_ms: f64,
        reference: Option<u64>,
        status: &str,
        response: Option<&RawValue>,
    ) -> Vec<Effect<K>> {
        /// The node's error in a response (read as a tree: errors are rare).
        fn node_error(response: Option<&RawValue>) -> NodeError {
            let tree = response
                .and_then(|r| serde_json::from_str(r.get()).ok())
                .unwrap_or(Value::Null);
            NodeError::from_response(&tree)
        }
        if self.state == SocketState::Joining {
            if status != "ok" {
                let why = response.map_or("null", RawValue::get).to_owned();
                let mut effects = vec![Effect::JoinRefused(why), Effect::Close];
                effects.extend(self.closed(now_ms, ABNORMAL_CLOSE));
                return effects;
            }
            return self.joined(now_ms);
        }
        if self.state != SocketState::Live {
            return Vec::new();
        }
        let position = match self.options.refs {
            Refs::Zero => (!self.pending.is_empty()).then_some(0),
            Refs::Counting => reference.and_then(|r| self.pending.iter().position(|p| p.0 == r)),
        };
        let key = match position
            .and_then(|p| self.pending.remove(p))
            .map(|(_, pending)| pending)
        {
            Some(Pending::Doc(key)) => key,
            Some(Pending::Request(request)) => {
                #[derive(serde::Deserialize)]
                struct Answer<'a> {
                    #[serde(borrow)]
                    data: Option<&'a RawValue>,
                }
                let data = response
                    .and_then(read_object::<Answer>)
                    .and_then(|answer| answer.data);
                let result = match (status, response, data) {
                    ("ok", Some(response), Some(_)) => Ok(response.get().to_owned()),
                    _ => Err(RequestError::Node(node_error(response))),
                };
                return vec![self.answered(request, result)];
            }
            _ => return Vec::new(),
        };
        let Some(index) = self.subs.iter().position(|s| s.key == key) else {
            return Vec::new();
        };
        #[derive(serde::Deserialize)]
        struct Subscribed<'a> {
            #[serde(rename = "subscriptionId", borrow)]
            subscription_id: Option<&'a RawValue>,
        }
        let id = response
            .and_then(read_object::<Subscribed>)
            .and_then(|s| s.subscription_id)
            .and_then(|id| serde_json::from_str::<String>(id.get()).ok());
        let sub = &mut self.subs[index];
        match (status, id) {
            ("ok", Some(id)) => {
                let after_ms = match sub.state {
                    SubState::Requested { since_ms } => now_ms - since_ms,
                    _ => 0.0,
                };
                sub.state = SubState::Live { id: id.clone() };
                let gap_ms = sub.gap_since.take().map(|since| now_ms - since);
                self.routes.insert(id.clone(), index);
                vec![Effect::Live {
                    key,
                    subscription_id: id,
                    after_ms,
                    gap_ms,
                }]
            }
            _ => {
                let error = node_error(response);
                sub.state = SubState::Refused(error.clone());
                vec![Effect::Refused { key, error }]
            }
        }
    }

    fn joined(&mut self, now_ms: f64) -> Vec<Effect<K>> {
        self.state = SocketState::Live;
        self.attempt = 0;
        self.heartbeat_unanswered = false;
        self.heartbeat_at = Some(now_ms + self.options.heartbeat_ms);
        let mut effects = vec![Effect::Joined {
            after_ms: now_ms - self.connect_started_ms,
        }];
        for index in 0..self.subs.len() {
            if self.subs[index].state == SubState::Waiting {
                effects.extend(self.send_doc(now_ms, index));
            }
        }
        while let Some(b) = self.buffered.pop_front() {
            effects.extend(self.send_request(b.request, &b.query, &b.variables));
        }
        self.finish(effects)
    }

    /// The page holding the socket was navigated away from and frozen, as a
    /// browser's back/forward cache keeps it: the socket stays open and
    /// subscribed, but sends no heartbeat, hands nothing to the page and is
    /// never reopened — until the server closes it (after its idle timeout),
    /// which ends it.
    pub fn freeze(&mut self) -> Vec<Effect<K>> {
        self.frozen = true;
        self.heartbeat_at = None;
        self.reconnect_at = None;
        let effects = self.fail_buffered(RequestError::NotConnected);
        self.finish(effects)
    }

    /// Whether the page holding the socket is frozen.
    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// The websocket closed (or could not open) with `code`.
    pub fn closed(&mut self, now_ms: f64, code: u16) -> Vec<Effect<K>> {
        if self.frozen && self.is_open() {
            self.state = SocketState::Closed;
            self.routes.clear();
            let mut effects = self.drop_pending();
            effects.extend(self.fail_buffered(RequestError::Dropped));
            effects.push(Effect::Dropped {
                code,
                reconnect_after_ms: None,
            });
            return effects;
        }
        if matches!(
            self.state,
            SocketState::Idle | SocketState::Closed | SocketState::Dead { .. }
        ) {
            return Vec::new();
        }
        if matches!(self.state, SocketState::Dropped { .. }) {
            return Vec::new();
        }
        self.routes.clear();
        let mut effects = self.drop_pending();
        self.heartbeat_unanswered = false;
        for sub in &mut self.subs {
            if let SubState::Live { .. } = sub.state {
                sub.gap_since.get_or_insert(now_ms);
            }
            if matches!(
                sub.state,
                SubState::Live { .. } | SubState::Requested { .. }
            ) {
                sub.state = SubState::Waiting;
            }
        }
        let reconnect_after_ms = match self.options.reconnect {
            Reconnect::Phoenix => {
                self.attempt += 1;
                let delay = Reconnect::backoff_ms(self.attempt) * self.jitter.factor();
                self.state = SocketState::Dropped {
                    attempt: self.attempt,
                };
                self.reconnect_at = Some(now_ms + delay);
                self.heartbeat_at = None;
                Some(delay)
            }
            Reconnect::WebApp => {
                // Its `setInterval` keeps going: `heartbeat_at` stays.
                self.state = SocketState::Dead { code };
                effects.extend(self.fail_buffered(RequestError::Dropped));
                None
            }
        };
        effects.push(Effect::Dropped {
            code,
            reconnect_after_ms,
        });
        self.finish(effects)
    }

    /// A timer fired: reconnect or heartbeat when due.
    pub fn tick(&mut self, now_ms: f64) -> Vec<Effect<K>> {
        let mut effects = self.expire_requests(now_ms);
        if self.reconnect_at.is_some_and(|at| at <= now_ms) {
            self.reconnect_at = None;
            effects.push(Effect::Reconnecting {
                attempt: self.attempt,
            });
            effects.extend(self.begin_connect(now_ms));
        }
        if let Some(at) = self.heartbeat_at.filter(|&at| at <= now_ms) {
            // Like `setInterval`: one beat however late, then on its cadence.
            let period = self.options.heartbeat_ms;
            let skipped = ((now_ms - at) / period).floor() + 1.0;
            self.heartbeat_at = Some(at + skipped * period);
            effects.extend(self.heartbeat(now_ms));
        }
        self.finish(effects)
    }

    fn heartbeat(&mut self, now_ms: f64) -> Vec<Effect<K>> {
        let live = self.state == SocketState::Live;
        if live && self.heartbeat_unanswered && self.options.reconnect == Reconnect::Phoenix {
            // phoenix.js: no reply since the last beat, the connection is dead.
            let mut effects = vec![Effect::Close];
            effects.extend(self.closed(now_ms, ABNORMAL_CLOSE));
            return effects;
        }
        if !live && !matches!(self.state, SocketState::Dead { .. }) {
            return Vec::new();
        }
        self.heartbeat_unanswered = live;
        let reference = self.take_ref();
        // Into a dead socket too (the WebApp's): the driver drops it, as the browser does.
        vec![Effect::Send(client_text(
            reference,
            PHOENIX_TOPIC,
            EV_HEARTBEAT,
            &Empty {},
        ))]
    }

    /// Closes the socket on purpose: no reconnect, no heartbeat.
    pub fn close(&mut self) -> Vec<Effect<K>> {
        let was = self.state;
        self.state = SocketState::Closed;
        self.routes.clear();
        let mut effects = self.drop_pending();
        effects.extend(self.fail_buffered(RequestError::Dropped));
        self.deadlines.clear();
        self.reconnect_at = None;
        self.heartbeat_at = None;
        self.timer_at = None;
        for sub in &mut self.subs {
            if matches!(
                sub.state,
                SubState::Live { .. } | SubState::Requested { .. }
            ) {
                sub.state = SubState::Waiting;
            }
        }
        if matches!(
            was,
            SocketState::Connecting | SocketState::Joining | SocketState::Live
        ) {
            effects.push(Effect::Close);
        }
        effects
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const JOIN: &str =
        r#"{"topic":"__absinthe__:control","event":"phx_join","payload":{},"ref":0}"#;
    const JOIN_OK: &str = r#"{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":0,"topic":"__absinthe__:control"}"#;
    const HEARTBEAT: &str = r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":0}"#;
    const HEARTBEAT_OK: &str = r#"{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":0,"topic":"phoenix"}"#;

    fn doc_ok(reference: u64, id: &str) -> String {
        format!(
            r#"{{"event":"phx_reply","payload":{{"response":{{"subscriptionId":"{id}"}},"status":"ok"}},"ref":{reference},"topic":"__absinthe__:control"}}"#
        )
    }

    fn refused(reference: u64) -> String {
        format!(
            r#"{{"event":"phx_reply","payload":{{"response":{{"errors":[{{"message":"invalid_signal"}}]}},"status":"error"}},"ref":{reference},"topic":"__absinthe__:control"}}"#
        )
    }

    fn push(id: &str, parameters: &str) -> String {
        format!(
            r#"{{"event":"subscription:data","payload":{{"result":{{"data":{{"awaitSignal":{{"event":"update","parameters":{parameters}}}}}}},"subscriptionId":"{id}"}},"ref":null,"topic":"{id}"}}"#
        )
    }

    fn sent<K>(effects: &[Effect<K>]) -> Vec<&str> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    fn timer<K>(effects: &[Effect<K>]) -> Option<f64> {
        effects.iter().find_map(|e| match e {
            Effect::Timer { at_ms } => Some(*at_ms),
            _ => None,
        })
    }

    /// A phone's socket, joined and subscribed to `u-1`'s `update` at `t`.
    fn live_phone(reconnect: Reconnect, t: f64) -> SocketMachine<u32> {
        let mut m = SocketMachine::new(SocketOptions::phone(reconnect, 7));
        m.subscribe(t, 1, "u-1", "update");
        m.start(t);
        m.opened(t);
        m.received(t, JOIN_OK);
        m.received(t, &doc_ok(0, "sub-1"));
        assert_eq!(m.state(), SocketState::Live);
        m
    }

    #[test]
    fn a_phone_socket_joins_subscribes_and_receives() {
        let mut m = SocketMachine::new(SocketOptions::phone(Reconnect::Phoenix, 1));
        assert!(m.subscribe(0.0, 1u32, "u-1", "update").is_empty());
        assert_eq!(m.start(100.0), vec![Effect::Open]);
        assert_eq!(m.subscription(&1), Some(&SubState::Waiting));
        let opened = m.opened(130.0);
        assert_eq!(opened[0], Effect::Opened { after_ms: 30.0 });
        assert_eq!(sent(&opened), [JOIN]);
        assert!(m.is_open());

        let joined = m.received(150.0, JOIN_OK);
        assert_eq!(joined[0], Effect::Joined { after_ms: 50.0 });
        let doc: Value = serde_json::from_str(sent(&joined)[0]).expect("JSON");
        assert_eq!(doc["payload"]["query"], AWAIT_SIGNAL);
        assert_eq!(
            doc["payload"]["variables"],
            json!({"id": "u-1", "signal": "update"})
        );
        assert_eq!(doc["ref"], 0);
        assert!(joined.contains(&Effect::Connected(1)));
        assert_eq!(timer(&joined), Some(150.0 + HEARTBEAT_MS));

        let live = m.received(160.0, &doc_ok(0, "sub-1"));
        assert_eq!(
            live,
            vec![Effect::Live {
                key: 1,
                subscription_id: "sub-1".into(),
                after_ms: 10.0,
                gap_ms: None
            }]
        );
        assert_eq!(m.live_subscriptions(), 1);

        let signal = m.received(170.0, &push("sub-1", r#"{"name":"d","sensor":"42"}"#));
        let [Effect::Signal { key: 1, signal }] = &signal[..] else {
            panic!("{signal:?}")
        };
        assert_eq!(signal.sentant, "u-1");
        assert_eq!(signal.event, "update");
        assert_eq!(signal.sensor(), Some(42));
        assert_eq!(signal.text("name"), Some("d"));
    }

    #[test]
    fn heartbeats_every_30_s_from_the_sockets_own_join() {
        let mut m = live_phone(Reconnect::Phoenix, 1000.0);
        assert!(m.tick(30_999.0).is_empty(), "not yet due");
        let beat = m.tick(31_000.0);
        assert_eq!(sent(&beat), [HEARTBEAT]);
        assert_eq!(timer(&beat), Some(61_000.0));
        m.received(31_010.0, HEARTBEAT_OK);
        // A stalled tab: one beat, then back on the join's cadence.
        let late = m.tick(95_000.0);
        assert_eq!(sent(&late), [HEARTBEAT]);
        assert_eq!(timer(&late), Some(121_000.0));
    }

    #[test]
    fn an_unanswered_heartbeat_drops_the_socket_with_phoenix() {
        let mut m = live_phone(Reconnect::Phoenix, 0.0);
        assert_eq!(sent(&m.tick(30_000.0)), [HEARTBEAT]);
        let dead = m.tick(60_000.0);
        assert_eq!(dead[0], Effect::Close);
        assert!(matches!(
            dead[1],
            Effect::Dropped {
                code: ABNORMAL_CLOSE,
                reconnect_after_ms: Some(_)
            }
        ));
        assert_eq!(m.state(), SocketState::Dropped { attempt: 1 });
        // The browser's close event for the socket closed above changes nothing.
        assert!(m.closed(60_001.0, 1006).is_empty());
    }

    #[test]
    fn phoenix_reconnects_with_jittered_backoff_and_resubscribes() {
        let mut m = live_phone(Reconnect::Phoenix, 0.0);
        let mut now = 1000.0;
        let dropped = m.closed(now, 1001);
        let Effect::Dropped {
            code: 1001,
            reconnect_after_ms: Some(delay),
        } = dropped[0]
        else {
            panic!("{dropped:?}")
        };
        assert!((5.0..15.0).contains(&delay), "{delay}");
        assert_eq!(timer(&dropped), Some(now + delay));
        assert_eq!(m.subscription(&1), Some(&SubState::Waiting));
        assert!(!m.is_open());
        assert_eq!(m.live_subscriptions(), 0);
        // Failed reopenings, each after phoenix.js's next delay, jittered.
        for attempt in 1..=12u32 {
            now += 20_000.0;
            let reopen = m.tick(now);
            assert_eq!(
                reopen[..2],
                [Effect::Reconnecting { attempt }, Effect::Open]
            );
            let again = m.closed(now, 1006);
            let Effect::Dropped {
                reconnect_after_ms: Some(delay),
                ..
            } = again[0]
            else {
                panic!("{again:?}")
            };
            let base = Reconnect::backoff_ms(attempt + 1);
            assert!(
                delay >= base * 0.5 && delay < base * 1.5,
                "{attempt}: {delay}"
            );
        }
        assert_eq!(Reconnect::backoff_ms(10), BACKOFF_AFTER_MS);
        // Back: joined, the document sent again, live with the gap measured.
        now += 20_000.0;
        m.tick(now);
        assert_eq!(sent(&m.opened(now)), [JOIN]);
        let joined = m.received(now + 5.0, JOIN_OK);
        assert_eq!(sent(&joined).len(), 1, "the document again");
        assert!(joined.contains(&Effect::Connected(1)));
        let live = m.received(now + 10.0, &doc_ok(0, "sub-2"));
        assert_eq!(
            live,
            vec![Effect::Live {
                key: 1,
                subscription_id: "sub-2".into(),
                after_ms: 5.0,
                gap_ms: Some(now + 10.0 - 1000.0)
            }]
        );
        // The next drop starts the back-off from the beginning.
        let Effect::Dropped {
            reconnect_after_ms: Some(delay),
            ..
        } = m.closed(now + 20.0, 1006)[0]
        else {
            panic!()
        };
        assert!(delay < 15.0);
    }

    #[test]
    fn jitter_is_repeatable_per_seed_and_centred_on_phoenix() {
        let delays = |seed| {
            let mut m = live_phone(Reconnect::Phoenix, 0.0);
            m.jitter = Jitter(seed);
            let mut out = Vec::new();
            let mut now = 0.0;
            for _ in 0..200 {
                if let Effect::Dropped {
                    reconnect_after_ms: Some(d),
                    ..
                } = m.closed(now, 1006)[0]
                {
                    out.push(d / Reconnect::backoff_ms(m.attempt));
                }
                now += 10_000.0;
                m.tick(now);
            }
            out
        };
        assert_eq!(delays(3), delays(3));
        assert_ne!(delays(3), delays(4));
        let factors = delays(5);
        let mean = factors.iter().sum::<f64>() / factors.len() as f64;
        assert!((0.9..1.1).contains(&mean), "{mean}");
        assert!(factors.iter().all(|f| (0.5..1.5).contains(f)));
    }

    #[test]
    fn the_webapp_never_reconnects_and_beats_into_the_dead_socket() {
        let mut m = live_phone(Reconnect::WebApp, 0.0);
        let dropped = m.closed(10_000.0, 1000);
        assert_eq!(
            dropped,
            vec![Effect::Dropped {
                code: 1000,
                reconnect_after_ms: None
            }]
        );
        assert_eq!(m.state(), SocketState::Dead { code: 1000 });
        assert_eq!(sent(&m.tick(30_000.0)), [HEARTBEAT]);
        assert_eq!(
            sent(&m.tick(60_000.0)),
            [HEARTBEAT],
            "no reply expected, no drop"
        );
        assert!(!m.tick(90_000.0).contains(&Effect::Open));
        assert_eq!(m.subscription(&1), Some(&SubState::Waiting));
        assert!(m.closed(90_001.0, 1006).is_empty());
    }

    #[test]
    fn a_shared_socket_matches_replies_by_ref_and_routes_pushes() {
        let mut m = SocketMachine::new(SocketOptions::shared(Reconnect::Phoenix, 1));
        for key in 0..3u32 {
            m.subscribe(0.0, key, &format!("u-{key}"), "update");
        }
        m.start(0.0);
        assert_eq!(sent(&m.opened(1.0)), [JOIN]);
        let joined = m.received(2.0, JOIN_OK);
        let refs: Vec<Value> = sent(&joined)
            .iter()
            .map(|t| serde_json::from_str::<Value>(t).expect("JSON")["ref"].clone())
            .collect();
        assert_eq!(refs, [json!(1), json!(2), json!(3)]);
        // Replies out of order; key 1's sentant is gone.
        assert!(matches!(
            &m.received(3.0, &doc_ok(3, "s-2"))[..],
            [Effect::Live { key: 2, .. }]
        ));
        assert_eq!(
            m.received(3.0, &refused(2)),
            vec![Effect::Refused {
                key: 1,
                error: NodeError::InvalidSignal
            }]
        );
        assert_eq!(
            m.subscription(&1),
            Some(&SubState::Refused(NodeError::InvalidSignal))
        );
        assert!(matches!(
            &m.received(4.0, &doc_ok(1, "s-0"))[..],
            [Effect::Live { key: 0, .. }]
        ));
        let signal = m.received(5.0, &push("s-2", r#"{"sensor":7}"#));
        assert!(
            matches!(&signal[..], [Effect::Signal { key: 2, signal }] if signal.sentant == "u-2")
        );
        // Added while live: sent at once, with the next ref.
        let added = m.subscribe(6.0, 9, "u-9", "update");
        let doc: Value = serde_json::from_str(sent(&added)[0]).expect("JSON");
        assert_eq!(doc["ref"], 4);
        // Removed: an `unsubscribe`, and its pushes are no one's.
        let removed = m.unsubscribe(&2);
        let frame: Value = serde_json::from_str(sent(&removed)[0]).expect("JSON");
        assert_eq!(frame["event"], "unsubscribe");
        assert_eq!(frame["payload"]["subscriptionId"], "s-2");
        assert!(m.received(7.0, &push("s-2", "{}")).is_empty());
        // The unsubscribe's reply is not mistaken for key 9's.
        assert!(m.received(8.0, &doc_ok(5, "ignored")).is_empty());
        assert!(matches!(
            &m.received(9.0, &doc_ok(4, "s-9"))[..],
            [Effect::Live { key: 9, .. }]
        ));
        // A drop takes every live subscription with it, and they all come back.
        m.closed(10.0, 1006);
        assert_eq!(m.live_subscriptions(), 0);
        m.tick(1000.0);
        m.opened(1001.0);
        let rejoined = m.received(1002.0, JOIN_OK);
        assert_eq!(
            sent(&rejoined).len(),
            2,
            "keys 0 and 9; refused 1 stays refused"
        );
    }

    #[test]
    fn a_refused_phone_subscription_reads_the_node_error() {
        let mut m = SocketMachine::new(SocketOptions::phone(Reconnect::Phoenix, 1));
        m.subscribe(0.0, (), "gone", "update");
        m.start(0.0);
        m.opened(0.0);
        m.received(0.0, JOIN_OK);
        assert_eq!(
            m.received(1.0, &refused(0)),
            vec![Effect::Refused {
                key: (),
                error: NodeError::InvalidSignal
            }]
        );
    }

    #[test]
    fn a_refused_join_drops_the_socket() {
        let mut m = SocketMachine::<u8>::new(SocketOptions::phone(Reconnect::Phoenix, 1));
        m.start(0.0);
        m.opened(0.0);
        let text = r#"{"event":"phx_reply","payload":{"response":{"reason":"no"},"status":"error"},"ref":0,"topic":"__absinthe__:control"}"#;
        let effects = m.received(1.0, text);
        assert!(matches!(&effects[0], Effect::JoinRefused(why) if why.contains("no")));
        assert_eq!(effects[1], Effect::Close);
        assert!(matches!(m.state(), SocketState::Dropped { attempt: 1 }));
    }

    #[test]
    fn malformed_frames_are_reported_and_change_nothing() {
        let mut m = live_phone(Reconnect::Phoenix, 0.0);
        for bad in ["not json", "[1,2]", r#"{"topic":"t"}"#] {
            assert!(
                matches!(&m.received(1.0, bad)[..], [Effect::Malformed(_)]),
                "{bad}"
            );
        }
        let no_signal = r#"{"event":"subscription:data","payload":{"result":{"errors":[]},"subscriptionId":"sub-1"},"ref":null,"topic":"sub-1"}"#;
        assert!(
            matches!(&m.received(2.0, no_signal)[..], [Effect::Malformed(why)] if why.contains("without a signal"))
        );
        assert!(m.received(3.0, &push("someone-else", "{}")).is_empty());
        assert_eq!(m.state(), SocketState::Live);
        assert_eq!(m.live_subscriptions(), 1);
    }

    #[test]
    fn a_crashed_control_channel_is_a_drop() {
        let mut m = live_phone(Reconnect::Phoenix, 0.0);
        let text = r#"{"event":"phx_error","payload":{},"ref":0,"topic":"__absinthe__:control"}"#;
        let effects = m.received(5.0, text);
        assert_eq!(effects[0], Effect::Close);
        assert!(matches!(m.state(), SocketState::Dropped { .. }));
    }

    #[test]
    fn closing_on_purpose_stops_everything() {
        let mut m = live_phone(Reconnect::Phoenix, 0.0);
        assert_eq!(m.close(), vec![Effect::Close]);
        assert_eq!(m.state(), SocketState::Closed);
        assert!(
            m.closed(1.0, 1000).is_empty(),
            "no reconnect after our own close"
        );
        assert!(m.tick(1_000_000.0).is_empty(), "no heartbeat either");
        assert!(m.close().is_empty());
        // And it can be started again.
        assert_eq!(m.start(2.0), vec![Effect::Open]);
    }

    #[test]
    fn sensors_are_numbers_or_numeric_strings() {
        for (value, expected) in [
            (json!(42), Some(42)),
            (json!("42"), Some(42)),
            (json!(" 42 "), Some(42)),
            (json!(42.7), Some(42)),
            (json!("42.5"), Some(42)),
            (json!(-0.5), Some(-1)),
            (json!("abc"), None),
            (json!(""), None),
            (json!(null), None),
            (json!(true), None),
            (json!("1e400"), None),
        ] {
            assert_eq!(sensor_value(&value), expected, "{value}");
        }
        let result =
            json!({"data": {"awaitSignal": {"event": "update", "parameters": {"sensor": "150"}}}});
        let signal = Signal::from_result("u", &vars(result)).expect("a signal");
        assert_eq!(signal.sensor(), Some(150));
        // Pushes without a signal, however shaped.
        for result in [
            json!({"data": null}),
            json!({"data": "awaitSignal"}),
            json!({"data": {"awaitSignal": ["update", {"sensor": 1}]}}),
            json!({"data": {"awaitSignal": {"event": 7, "parameters": {}}}}),
            json!({"data": {"awaitSignal": {"parameters": {}}}}),
            json!([{"data": {"awaitSignal": {"event": "update"}}}]),
        ] {
            assert_eq!(
                Signal::from_result("u", &vars(result.clone())),
                None,
                "{result}"
            );
        }
    }

    #[test]
    fn a_frozen_page_socket_stays_open_silent_until_the_server_closes_it() {
        let mut m: SocketMachine<u32> =
            SocketMachine::new(SocketOptions::phone(Reconnect::Phoenix, 1));
        m.start(0.0);
        m.opened(1.0);
        m.subscribe(1.0, 7, "monitor-id", "internal");
        m.received(2.0, r#"{"topic":"__absinthe__:control","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":0}"#);
        m.received(3.0, r#"{"topic":"__absinthe__:control","event":"phx_reply","payload":{"status":"ok","response":{"subscriptionId":"__absinthe__:doc:1"}},"ref":0}"#);
        assert!(m.is_open());
        assert_eq!(m.freeze(), Vec::new());
        assert!(m.is_open() && m.is_frozen());
        // No heartbeat at 30 s, nothing handed over from a push.
        assert_eq!(m.tick(HEARTBEAT_MS + 10.0), Vec::new());
        let push = r#"{"topic":"__absinthe__:doc:1","event":"subscription:data","payload":{"result":{"data":{"awaitSignal":{"event":"internal","parameters":{}}}},"subscriptionId":"__absinthe__:doc:1"},"ref":null}"#;
        assert_eq!(m.received(40_000.0, push), Vec::new());
        // The node's idle timeout closes it: the end, no reconnect.
        assert_eq!(
            m.closed(60_003.0, 1000),
            vec![Effect::Dropped {
                code: 1000,
                reconnect_after_ms: None
            }]
        );
        assert_eq!(m.state(), SocketState::Closed);
        assert!(!m.is_open());
        assert_eq!(m.tick(70_000.0), Vec::new());
    }

    fn reply(reference: u64, status: &str, response: &str) -> String {
        format!(
            r#"{{"event":"phx_reply","payload":{{"response":{response},"status":"{status}"}},"ref":{reference},"topic":"__absinthe__:control"}}"#
        )
    }

    /// Variables as the machine takes them: a JSON object's text.
    fn vars(value: Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&value).expect("JSON")
    }

    /// The answers among `effects`, each response read as JSON.
    fn answers<K>(effects: &[Effect<K>]) -> Vec<(u64, Result<Value, RequestError>)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Answered { request, result } => Some((
                    *request,
                    result
                        .clone()
                        .map(|text| serde_json::from_str(&text).expect("an answer is JSON")),
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn requests_on_a_shared_socket_are_answered_by_ref() {
        let mut m: SocketMachine<u32> =
            SocketMachine::new(SocketOptions::shared(Reconnect::Phoenix, 7));
        assert_eq!(
            answers(&m.request(0.0, 9, "mutation", &vars(json!({})))),
            vec![(9, Err(RequestError::NotConnected))],
            "not joined: refused at once"
        );
        m.start(0.0);
        m.opened(0.0);
        m.received(0.0, JOIN_OK);
        m.subscribe(0.0, 1, "u-1", "update");
        let first = m.request(
            0.0,
            10,
            "mutation S($id: UUID4!) { sentantSend(id: $id, event: \"update\") { id } }",
            &vars(json!({ "id": "u-1" })),
        );
        let second = m.request(0.0, 11, "mutation", &vars(json!({ "id": "u-2" })));
        let frame: Value = serde_json::from_str(sent(&first)[0]).expect("json");
        assert_eq!(
            (
                frame["event"].as_str(),
                frame["ref"].as_u64(),
                frame["payload"]["variables"]["id"].as_str()
            ),
            (Some("doc"), Some(2), Some("u-1"))
        );
        assert_eq!(sent(&second).len(), 1);
        // Replies out of order, matched by ref; the subscription's reply in between.
        let error = m.received(
            1.0,
            &reply(3, "ok", r#"{"data":null,"errors":[{"message":"id"}]}"#),
        );
        assert_eq!(
            answers(&error),
            vec![(11, Err(RequestError::Node(NodeError::Id)))]
        );
        let live = m.received(1.0, &doc_ok(1, "sub-1"));
        assert!(matches!(live[0], Effect::Live { .. }), "{live:?}");
        let ok = m.received(
            1.0,
            &reply(2, "ok", r#"{"data":{"sentantSend":{"id":"u-1"}}}"#),
        );
        assert_eq!(
            answers(&ok),
            vec![(
                10,
                Ok(json!({ "data": { "sentantSend": { "id": "u-1" } } }))
            )]
        );
    }

    #[test]
    fn a_drop_or_a_close_fails_the_requests_awaiting_an_answer() {
        let mut m = live_phone(Reconnect::Phoenix, 0.0);
        let sent_frames = m.request(0.0, 1, "mutation", &vars(json!({})));
        assert_eq!(sent(&sent_frames).len(), 1);
        m.request(0.0, 2, "mutation", &vars(json!({})));
        // The phone's socket numbers every frame 0: the first reply is the first request's.
        assert_eq!(
            answers(&m.received(1.0, &reply(0, "ok", r#"{"data":{}}"#))),
            vec![(1, Ok(json!({ "data": {} })))]
        );
        let dropped = m.closed(2.0, 1006);
        assert_eq!(answers(&dropped), vec![(2, Err(RequestError::Dropped))]);
        assert!(matches!(
            dropped.last(),
            Some(Effect::Timer { .. }) | Some(Effect::Dropped { .. })
        ));

        let mut m = live_phone(Reconnect::Phoenix, 0.0);
        m.request(0.0, 3, "mutation", &vars(json!({})));
        let closed = m.close();
        assert_eq!(answers(&closed), vec![(3, Err(RequestError::Dropped))]);
        assert_eq!(closed.last(), Some(&Effect::Close));
    }

    #[test]
    fn requests_made_while_connecting_wait_for_the_join_then_are_sent() {
        let mut m: SocketMachine<u32> =
            SocketMachine::new(SocketOptions::phone(Reconnect::Phoenix, 7));
        m.subscribe(0.0, 1, "u-1", "update");
        m.start(0.0);
        let buffered = m.request(1.0, 5, "mutation A", &vars(json!({})));
        assert!(sent(&buffered).is_empty() && answers(&buffered).is_empty());
        m.opened(2.0);
        assert!(sent(&m.request(3.0, 6, "mutation B", &vars(json!({})))).is_empty());
        let joined = m.received(4.0, JOIN_OK);
        let frames: Vec<Value> = sent(&joined)
            .iter()
            .map(|t| serde_json::from_str(t).expect("json"))
            .collect();
        let queries: Vec<&str> = frames
            .iter()
            .map(|f| f["payload"]["query"].as_str().unwrap_or(""))
            .collect();
        // The subscription first, then the requests in the order they were made.
        assert_eq!(queries[1..], ["mutation A", "mutation B"]);
        m.received(5.0, &doc_ok(0, "sub-1"));
        assert_eq!(
            answers(&m.received(6.0, &reply(0, "ok", r#"{"data":{}}"#))),
            vec![(5, Ok(json!({ "data": {} })))]
        );
    }

    #[test]
    fn a_request_without_a_reply_times_out_and_its_late_reply_is_ignored() {
        let mut m = live_phone(Reconnect::Phoenix, 0.0);
        let effects = m.request(100.0, 1, "mutation", &vars(json!({})));
        assert!(
            effects.contains(&Effect::Timer {
                at_ms: 100.0 + PUSH_TIMEOUT_MS
            }),
            "{effects:?}"
        );
        assert!(answers(&m.tick(100.0 + PUSH_TIMEOUT_MS - 1.0)).is_empty());
        assert_eq!(
            answers(&m.tick(100.0 + PUSH_TIMEOUT_MS)),
            vec![(1, Err(RequestError::Timeout(PUSH_TIMEOUT_MS as u32)))]
        );
        // Its reply, come at last, answers nobody; the next request's reply is its own.
        m.request(20_000.0, 2, "mutation", &vars(json!({})));
        assert!(answers(&m.received(20_001.0, &reply(0, "ok", r#"{"data":{}}"#))).is_empty());
        assert_eq!(
            answers(&m.received(20_002.0, &reply(0, "ok", r#"{"data":{"x":1}}"#))),
            vec![(2, Ok(json!({ "data": { "x": 1 } })))]
        );

        // Buffered and never joined: it times out too.
        let mut m: SocketMachine<u32> =
            SocketMachine::new(SocketOptions::phone(Reconnect::Phoenix, 7));
        m.start(0.0);
        m.request(0.0, 3, "mutation", &vars(json!({})));
        assert_eq!(
            answers(&m.tick(PUSH_TIMEOUT_MS)),
            vec![(3, Err(RequestError::Timeout(PUSH_TIMEOUT_MS as u32)))]
        );
        assert!(
            sent(&m.opened(PUSH_TIMEOUT_MS + 1.0)).len() == 1,
            "only the join"
        );
        assert!(sent(&m.received(PUSH_TIMEOUT_MS + 2.0, JOIN_OK)).is_empty());
    }

    #[test]
    fn buffered_requests_outlive_a_phoenix_drop_but_not_a_webapp_one() {
        let mut m = live_phone(Reconnect::Phoenix, 0.0);
        m.closed(1.0, 1006);
        assert!(matches!(m.state(), SocketState::Dropped { .. }));
        assert!(answers(&m.request(2.0, 4, "mutation", &vars(json!({})))).is_empty());
        m.tick(1_000.0);
        m.opened(1_001.0);
        assert_eq!(
            sent(&m.received(1_002.0, JOIN_OK)).len(),
            2,
            "doc + request"
        );

        let mut m = live_phone(Reconnect::WebApp, 0.0);
        m.closed(1.0, 1006);
        assert_eq!(
            answers(&m.request(2.0, 5, "mutation", &vars(json!({})))),
            vec![(5, Err(RequestError::NotConnected))],
            "a dead socket refuses at once"
        );
        let mut m: SocketMachine<u32> =
            SocketMachine::new(SocketOptions::phone(Reconnect::WebApp, 7));
        m.start(0.0);
        m.request(0.0, 6, "mutation", &vars(json!({})));
        assert_eq!(
            answers(&m.closed(1.0, 1006)),
            vec![(6, Err(RequestError::Dropped))]
        );
        let mut m: SocketMachine<u32> =
            SocketMachine::new(SocketOptions::phone(Reconnect::Phoenix, 7));
        m.start(0.0);
        m.request(0.0, 7, "mutation", &vars(json!({})));
        assert_eq!(answers(&m.close()), vec![(7, Err(RequestError::Dropped))]);
    }
}
