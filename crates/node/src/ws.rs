//! The websocket at `/reality2/websocket`: Absinthe subscriptions over
//! Phoenix Channels, V1 (JSON objects) or, with `?vsn=2.x`, V2 (arrays).
//!
//! [`serve`] runs one socket over any `Sink<String>` and `Stream` of text
//! frames, so it can be driven without a network; [`upgrade`] is the axum
//! handler that runs it on a real websocket.
//!
//! # What the socket answers (as Phoenix and Absinthe.Phoenix do)
//!
//! - `heartbeat` on topic `phoenix`: an `ok` reply on `phoenix`, whatever
//!   has been joined.
//! - `phx_join` on `__absinthe__:control`: `ok` with `{}`. Joining it again
//!   replaces the channel: the reply, then `phx_close` for the old join, and
//!   the old join's subscriptions end. Joining another `__absinthe__:*`
//!   topic fails like Absinthe's channel does (`{"reason":"join crashed"}`);
//!   any other topic gets `{"reason":"unmatched topic"}`.
//! - On the joined control topic: `doc` runs a document. A subscription
//!   answers `{"subscriptionId":"__absinthe__:doc:…"}` (or the errors of its
//!   first result, with status `error`) and then pushes each result as
//!   `subscription:data` on that id. A subscription to an unknown id is
//!   refused only after the node's patience for unknown ids (about 1 s, as
//!   the real node; at once with `--lenient`), and the socket waits for it,
//!   as the real node's channel process does; a query or mutation answers
//!   `{"data": …}` (status `error` when it did not run). `unsubscribe` ends
//!   one subscription and answers `{"subscriptionId"}`. `phx_leave` answers
//!   `ok` then `phx_close`, and ends the join's subscriptions. Anything else
//!   (another event, a payload of the wrong shape) crashes the channel as it
//!   would in Elixir: the socket pushes `phx_error`, the join and its
//!   subscriptions end, the socket stays open.
//! - A frame on a topic not joined: `unmatched topic` (`phx_leave`: `ok`).
//! - A frame that is not a Phoenix frame (not JSON, wrong shape): Phoenix's
//!   socket process exits, so the socket closes (code 1011).
//! - Nothing received for `idle_timeout` (60 s by default): closed (1000).
//! - Dropped by a fault (see [`crate::faults`]): closed abruptly, with no
//!   close frame; subscription pushes wait out the `latency_ms`/`jitter_ms`
//!   fault in order.
//!
//! # Slow clients
//!
//! Subscription results go through a bounded queue per socket
//! ([`Settings::queue`] frames, [`Settings::queue_bytes`] bytes). Signals never wait for a socket: when a
//! client reads so slowly that its queue is full, the node closes that
//! socket (code 1008, "slow client") rather than hold results without bound
//! or drop some silently; the client sees the close and can reconnect.

use std::{
    collections::HashMap,
    future::Future,
    hash::{BuildHasher, RandomState},
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, LazyLock,
    },
    time::Duration,
};

use async_graphql::parser::types::OperationType;
use axum::{
    extract::{
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
        RawQuery, State,
    },
    response::Response,
};
use futures::{future::ready, stream::BoxStream, Sink, SinkExt, Stream, StreamExt};
use r2_core::phoenix::{
    Frame, FrameError, Vsn, CONTROL_TOPIC, EV_CLOSE, EV_DOC, EV_ERROR, EV_HEARTBEAT, EV_JOIN,
    EV_LEAVE, EV_UNSUBSCRIBE, PHOENIX_TOPIC,
};
use serde_json::{json, Value};
use tokio::{
    sync::mpsc::{self, error::TrySendError},
    time::{sleep, Instant, Sleep},
};
use tokio_util::{sync::CancellationToken, task::AbortOnDropHandle};

use crate::{
    conn::{QueueBudget, Reservation},
    http::{operation_type, AppState, Documents, GraphqlBody},
    limits::{json_size, too_large, Hit},
    schema::Acceptance,
    stats::Stats,
    Node,
};

/// How sockets behave; shared by every socket of a server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Close a socket that has received nothing for this long.
    pub idle_timeout: Duration,
    /// Subscription frames that may wait for one socket before it is closed.
    pub queue: usize,
    /// Largest frame accepted from a client, in bytes.
    pub max_message: usize,
    /// Bytes of subscription results that may wait for one socket (see
    /// [`crate::conn`]).
    pub queue_bytes: usize,
    /// Subscriptions one socket may hold.
    pub max_subscriptions: usize,
    /// Cancelled when the server shuts down: every socket closes (1001).
    pub closing: CancellationToken,
    /// Parsed documents, shared with the HTTP side.
    pub(crate) documents: Arc<Documents>,
}

impl Settings {
    /// The defaults of [`crate::Config`], with a `closing` token of its own.
    pub fn new(idle_timeout: Duration) -> Settings {
        Settings {
            idle_timeout,
            queue: crate::config::DEFAULT_SOCKET_QUEUE,
            max_message: crate::config::DEFAULT_BODY_LIMIT,
            queue_bytes: crate::conn::ConnLimits::default().socket_queue_bytes,
            max_subscriptions: crate::limits::Limits::default().max_subscriptions_per_socket,
            closing: CancellationToken::new(),
            documents: Arc::default(),
        }
    }
}

/// One thing received from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A text frame (a Phoenix frame, or garbage).
    Text(String),
    /// A ping or pong: the client is alive, nothing to answer.
    Activity,
    /// The client's close frame.
    Close,
}

impl From<String> for Inbound {
    fn from(text: String) -> Inbound {
        Inbound::Text(text)
    }
}

/// Why a socket ended.
#[derive(Debug, thiserror::Error)]
pub enum Ended {
    /// The client closed it, or its stream ended.
    #[error("the client closed the socket")]
    ClientClosed,
    /// Reading from the client failed.
    #[error("reading from the client failed: {0}")]
    ReadFailed(String),
    /// Writing to the client failed.
    #[error("writing to the client failed")]
    WriteFailed,
    /// Nothing received for the idle timeout.
    #[error("nothing received for the idle timeout")]
    IdleTimeout,
    /// The client sent something that is not a Phoenix frame.
    #[error("the client sent a frame that is not a Phoenix frame")]
    BadFrame(#[source] FrameError),
    /// The client's subscription queue overflowed.
    #[error("the client read too slowly; its subscription queue overflowed")]
    SlowClient,
    /// The server is shutting down.
    #[error("the server is shutting down")]
    ServerClosing,
    /// A fault dropped the socket (`drop_sockets_every_s`, `refuse_for_s`).
    #[error("dropped by fault injection")]
    Dropped,
}

impl Ended {
    /// The close frame to send the client, when the node is the one closing.
    pub fn close_frame(&self) -> Option<(u16, &'static str)> {
        match self {
            Ended::IdleTimeout => Some((1000, "idle timeout")),
            Ended::ServerClosing => Some((1001, "server shutting down")),
            Ended::SlowClient => Some((1008, "slow client")),
            Ended::BadFrame(_) => Some((1011, "not a Phoenix frame")),
            Ended::ClientClosed | Ended::ReadFailed(_) | Ended::WriteFailed | Ended::Dropped => {
                None
            }
        }
    }
}

/// Bytes a socket reads at a time. Clients send small frames; tungstenite
/// zero-fills this much on every read attempt, so its 128 KiB default cost
/// more than the frames themselves (larger frames still arrive whole).
const READ_BUFFER: usize = 4096;

/// `GET /reality2/websocket`: upgrades and runs the socket.
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    upgrade: WebSocketUpgrade,
) -> Response {
    let vsn = Vsn::from_query(query.as_deref());
    let AppState { node, ws, .. } = state;
    upgrade
        .max_message_size(ws.max_message)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| run_websocket(socket, node, ws, vsn))
}

/// Runs [`serve`] on an axum websocket and sends the close frame it asks for.
async fn run_websocket(socket: WebSocket, node: Node, settings: Settings, vsn: Vsn) {
    let (mut sink, stream) = socket.split();
    let inbound = stream.map(|message| {
        message
            .map(|message| match message {
                Message::Text(text) => Inbound::Text(text.as_str().to_owned()),
                Message::Binary(bytes) => Inbound::Text(String::from_utf8_lossy(&bytes).into()),
                Message::Ping(_) | Message::Pong(_) => Inbound::Activity,
                Message::Close(_) => Inbound::Close,
            })
            .map_err(|e| e.to_string())
    });
    let mut text_sink =
        (&mut sink).with(|text: String| ready(Ok::<_, axum::Error>(Message::Text(text.into()))));
    let ended = serve(node, settings, vsn, &mut text_sink, inbound).await;
    drop(text_sink);
    if let Ended::Dropped = ended {
        // Abruptly: dropping both halves closes the connection.
        return;
    }
    if let Some((code, reason)) = ended.close_frame() {
        let close = CloseFrame {
            code,
            reason: reason.into(),
        };
        // The client may already be gone; there is nothing left to do then.
        let _ = sink.send(Message::Close(Some(close))).await;
    }
    let _ = sink.close().await;
}

/// Runs one Phoenix socket until it ends, reading frames from `inbound` and
/// writing frames to `outbound`. Counts the socket in `stats.sockets` while it
/// runs, each pushed result in `stats.deliveries`, and the socket in
/// `stats.dropped_sockets` if a fault drops it.
pub async fn serve<Tx, Rx, M, E>(
    node: Node,
    settings: Settings,
    vsn: Vsn,
    outbound: &mut Tx,
    inbound: Rx,
) -> Ended
where
    Tx: Sink<String> + Unpin,
    Rx: Stream<Item = Result<M, E>>,
    M: Into<Inbound>,
    E: std::fmt::Display,
{
    let _open = node.gauge(|stats| &stats.sockets);
    Stats::bump(&node.stats().sockets_opened);
    let ended = run_session(node.clone(), settings, vsn, outbound, inbound).await;
    if let Ended::Dropped = ended {
        Stats::bump(&node.stats().dropped_sockets);
    }
    ended
}

/// [`serve`] without the counting of the socket itself.
async fn run_session<Tx, Rx, M, E>(
    node: Node,
    settings: Settings,
    vsn: Vsn,
    outbound: &mut Tx,
    inbound: Rx,
) -> Ended
where
    Tx: Sink<String> + Unpin,
    Rx: Stream<Item = Result<M, E>>,
    M: Into<Inbound>,
    E: std::fmt::Display,
{
    if node.faults().refusing() {
        // Upgraded just as a refusal began.
        return Ended::Dropped;
    }
    let dropped = node.faults().socket_token();
    let (queue, mut queued) = mpsc::channel(settings.queue.max(1));
    let mut session = Session {
        node,
        vsn,
        outbound,
        idle: Box::pin(sleep(settings.idle_timeout)),
        idle_timeout: settings.idle_timeout,
        held: None,
        hold: Box::pin(sleep(Duration::ZERO)),
        ends: Ends {
            closing: settings.closing,
            overflow: dropped.child_token(),
            dropped,
        },
        documents: settings.documents,
        queue,
        budget: QueueBudget::new(settings.queue_bytes),
        max_subscriptions: settings.max_subscriptions,
        control: Control::Left,
        subscriptions: HashMap::new(),
    };
    let mut inbound = std::pin::pin!(inbound);
    loop {
        let step = tokio::select! {
            biased;
            _ = session.ends.closing.cancelled() => Err(Ended::ServerClosing),
            _ = session.ends.overflow.cancelled() => Err(session.ends.overflowed()),
            _ = &mut session.idle => Err(Ended::IdleTimeout),
            received = inbound.next() => match received {
                None => Err(Ended::ClientClosed),
                Some(Err(e)) => Err(Ended::ReadFailed(e.to_string())),
                Some(Ok(message)) => session.received(message.into()).await,
            },
            _ = &mut session.hold, if session.held.is_some() => session.push_held(&mut queued).await,
            Some(item) = queued.recv(), if session.held.is_none() => session.push(item, &mut queued).await,
        };
        if let Err(ended) = step {
            return ended;
        }
    }
}

/// Whether the Absinthe control channel is joined, and by which join.
#[derive(Debug, Clone, PartialEq)]
enum Control {
    Left,
    Joined { join_ref: Value },
}

/// Most results written to the client before one flush.
const PUSH_BATCH: usize = 64;

/// A subscription result on its way to the socket.
struct Queued {
    text: String,
    /// Not to be written before this (the latency fault).
    due: Option<Instant>,
    /// Its bytes in the socket's [`QueueBudget`], until it leaves the queue.
    _reserved: Reservation,
}

/// What ends a socket from the node's side.
struct Ends {
    /// Cancelled when the server shuts down.
    closing: CancellationToken,
    /// Cancelled by a subscription task that found the queue full, and (as
    /// a child of `dropped`) when a fault drops the socket.
    overflow: CancellationToken,
    /// Cancelled when a fault drops the sockets open now.
    dropped: CancellationToken,
}

impl Ends {
    /// Why `overflow` was cancelled.
    fn overflowed(&self) -> Ended {
        if self.dropped.is_cancelled() {
            Ended::Dropped
        } else {
            Ended::SlowClient
        }
    }
}

/// One socket's state.
struct Session<'a, Tx> {
    node: Node,
    vsn: Vsn,
    outbound: &'a mut Tx,
    idle: Pin<Box<Sleep>>,
    idle_timeout: Duration,
    /// A result not due yet (latency fault); nothing after it is written
    /// before it.
    held: Option<String>,
    /// When `held` is due.
    hold: Pin<Box<Sleep>>,
    ends: Ends,
    documents: Arc<Documents>,
    queue: mpsc::Sender<Queued>,
    budget: Arc<QueueBudget>,
    max_subscriptions: usize,
    control: Control,
    /// Running subscriptions by id; dropping one ends it.
    subscriptions: HashMap<String, AbortOnDropHandle<()>>,
}

/// Waits for `work` unless the socket must end first (server closing, queue
/// overflow, fault, idle timeout): a client that stops reading cannot hold
/// the socket open by leaving a write pending.
async fn unless_ending<T>(
    work: impl Future<Output = T>,
    idle: &mut Pin<Box<Sleep>>,
    ends: &Ends,
) -> Result<T, Ended> {
    tokio::select! {
        biased;
        _ = ends.closing.cancelled() => Err(Ended::ServerClosing),
        _ = ends.overflow.cancelled() => Err(ends.overflowed()),
        _ = idle => Err(Ended::IdleTimeout),
        done = work => Ok(done),
    }
}

impl<Tx: Sink<String> + Unpin> Session<'_, Tx> {
    /// Writes one frame.
    async fn send(&mut self, frame: Frame) -> Result<(), Ended> {
        let text = frame.encode(self.vsn);
        let sent = self.outbound.send(text);
        unless_ending(sent, &mut self.idle, &self.ends)
            .await?
            .map_err(|_| Ended::WriteFailed)
    }

    /// Writes `first` and whatever else is queued (up to a batch), then
    /// flushes once. A result not due yet is held, and the batch ends there.
    async fn push(
        &mut self,
        first: Queued,
        queued: &mut mpsc::Receiver<Queued>,
    ) -> Result<(), Ended> {
        let outbound = &mut *self.outbound;
        let (held, hold) = (&mut self.held, &mut self.hold);
        let mut count = 0u64;
        let write = async {
            let mut next = Some(first);
            while let Some(Queued { text, due, .. }) = next {
                if let Some(due) = due.filter(|due| *due > Instant::now()) {
                    hold.as_mut().reset(due);
                    *held = Some(text);
                    break;
                }
                outbound.feed(text).await?;
                count += 1;
                next = if count < PUSH_BATCH as u64 {
                    queued.try_recv().ok()
                } else {
                    None
                };
            }
            outbound.flush().await
        };
        let written = unless_ending(write, &mut self.idle, &self.ends).await?;
        self.node
            .stats()
            .deliveries
            .fetch_add(count, Ordering::Relaxed);
        written.map_err(|_| Ended::WriteFailed)
    }

    /// Writes the held result, now due, and what follows it.
    async fn push_held(&mut self, queued: &mut mpsc::Receiver<Queued>) -> Result<(), Ended> {
        match self.held.take() {
            Some(text) => {
                let item = Queued {
                    text,
                    due: None,
                    _reserved: Reservation::default(),
                };
                self.push(item, queued).await
            }
            None => Ok(()),
        }
    }

    /// Handles one thing from the client.
    async fn received(&mut self, inbound: Inbound) -> Result<(), Ended> {
        self.idle.as_mut().reset(Instant::now() + self.idle_timeout);
        match inbound {
            Inbound::Close => Err(Ended::ClientClosed),
            Inbound::Activity => Ok(()),
            Inbound::Text(text) => {
                let frame = Frame::decode(&text, self.vsn).map_err(Ended::BadFrame)?;
                self.frame(frame).await
            }
        }
    }

    /// Routes a frame as `Phoenix.Socket.handle_in` does.
    async fn frame(&mut self, frame: Frame) -> Result<(), Ended> {
        let joined = matches!(self.control, Control::Joined { .. });
        match (frame.topic.as_str(), frame.event.as_str()) {
            (PHOENIX_TOPIC, EV_HEARTBEAT) => {
                Stats::bump(&self.node.stats().heartbeats);
                let reply = frame.reply("ok", json!({})).with_join_ref(Value::Null);
                self.send(reply).await
            }
            (CONTROL_TOPIC, EV_JOIN) => self.join_control(frame).await,
            (topic, EV_JOIN) if topic.starts_with("__absinthe__:") => {
                self.send(frame.reply("error", json!({"reason": "join crashed"})))
                    .await
            }
            (CONTROL_TOPIC, _) if joined => self.channel(frame).await,
            (_, EV_LEAVE) => self.send(frame.reply("ok", json!({}))).await,
            _ => {
                let reply = frame
                    .reply("error", json!({"reason": "unmatched topic"}))
                    .with_join_ref(Value::Null);
                self.send(reply).await
            }
        }
    }

    /// Joins the control channel, replacing an earlier join.
    async fn join_control(&mut self, frame: Frame) -> Result<(), Ended> {
        let earlier = std::mem::replace(
            &mut self.control,
            Control::Joined {
                join_ref: frame.join_ref.clone(),
            },
        );
        self.subscriptions.clear();
        self.send(frame.reply("ok", json!({}))).await?;
        match earlier {
            Control::Joined { join_ref } => self.send(channel_frame(EV_CLOSE, join_ref)).await,
            Control::Left => Ok(()),
        }
    }

    /// Ends the control channel, pushing `event` (`phx_close` or `phx_error`).
    async fn end_channel(&mut self, event: &str) -> Result<(), Ended> {
        self.subscriptions.clear();
        match std::mem::replace(&mut self.control, Control::Left) {
            Control::Joined { join_ref } => self.send(channel_frame(event, join_ref)).await,
            Control::Left => Ok(()),
        }
    }

    /// A frame for the joined control channel (`Absinthe.Phoenix.Channel`).
    async fn channel(&mut self, frame: Frame) -> Result<(), Ended> {
        match frame.event.as_str() {
            EV_LEAVE => {
                self.send(frame.reply("ok", json!({}))).await?;
                self.end_channel(EV_CLOSE).await
            }
            EV_DOC => match doc_request(&frame.payload) {
                Some(request) => self.doc(frame, request).await,
                None => self.end_channel(EV_ERROR).await,
            },
            EV_UNSUBSCRIBE => match frame.payload.get("subscriptionId") {
                Some(Value::String(id)) => {
                    self.subscriptions.remove(id);
                    let response = json!({ "subscriptionId": id });
                    self.send(frame.reply("ok", response)).await
                }
                _ => self.end_channel(EV_ERROR).await,
            },
            _ => self.end_channel(EV_ERROR).await,
        }
    }

    /// Runs a `doc`: subscribes, or answers a query or mutation in the reply.
    async fn doc(&mut self, frame: Frame, request: async_graphql::Request) -> Result<(), Ended> {
        let mut request = self.documents.prepare(request);
        if operation_type(&mut request) != Some(OperationType::Subscription) {
            let response = self.node.schema().execute(request).await;
            let body = GraphqlBody::of(&response);
            let (mut status, mut json) = (if body.ran() { "ok" } else { "error" }, body.to_json());
            let max = self.node.limits().max_response_bytes;
            let size = json_size(&json, max);
            if size > max {
                Hit::ResponseBytes.count(self.node.stats());
                (status, json) = ("error", too_large(size, max));
            }
            return self.send(frame.reply(status, json)).await;
        }
        if self.subscriptions.len() >= self.max_subscriptions {
            Hit::SubscriptionsPerSocket.count(self.node.stats());
            let message = format!(
                "{}: at most {} per socket",
                Hit::SubscriptionsPerSocket.word(),
                self.max_subscriptions
            );
            let body = json!({ "errors": [{ "message": message }] });
            return self.send(frame.reply("error", body)).await;
        }
        // The subscription is decided when it is accepted or its first
        // result is an error; an unknown id takes the node's patience (about
        // 1 s) to refuse, during which this socket waits, as the real node's
        // channel does.
        let (acceptance, accepted) = Acceptance::new();
        let mut stream = self.node.schema().execute_stream(request.data(acceptance));
        let decided = async {
            tokio::select! {
                biased;
                first = stream.next() => first,
                Ok(()) = accepted => None,
            }
        };
        let first = match unless_ending(decided, &mut self.idle, &self.ends).await? {
            Some(response) if !response.errors.is_empty() => {
                let body = GraphqlBody::of(&response).to_json();
                return self.send(frame.reply("error", body)).await;
            }
            first => first,
        };
        let id = subscription_id();
        self.send(frame.reply("ok", json!({ "subscriptionId": id })))
            .await?;
        let task = forward(
            stream,
            first,
            id.clone(),
            self.vsn,
            self.node.clone(),
            (self.queue.clone(), Arc::clone(&self.budget)),
            self.ends.overflow.clone(),
        );
        self.subscriptions
            .insert(id, AbortOnDropHandle::new(tokio::spawn(task)));
        Ok(())
    }
}

/// A server push on the control topic (`phx_close`, `phx_error`): Phoenix
/// sends the join's ref as both `join_ref` and `ref`.
fn channel_frame(event: &str, join_ref: Value) -> Frame {
    Frame {
        join_ref: join_ref.clone(),
        reference: join_ref,
        topic: CONTROL_TOPIC.to_owned(),
        event: event.to_owned(),
        payload: json!({}),
    }
}

/// The request of a `doc` payload `{"query", "variables"}`, or `None` where
/// Absinthe's channel would crash (payload not an object, query not a string,
/// variables neither an object nor null). Like Absinthe, `operationName` is
/// not read.
fn doc_request(payload: &Value) -> Option<async_graphql::Request> {
    let payload = payload.as_object()?;
    let query = match payload.get("query") {
        None => "",
        Some(Value::String(query)) => query.as_str(),
        Some(_) => return None,
    };
    let variables = match payload.get("variables") {
        None | Some(Value::Null) => json!({}),
        Some(Value::Object(map)) => Value::Object(map.clone()),
        Some(_) => return None,
    };
    Some(
        async_graphql::Request::new(query)
            .variables(async_graphql::Variables::from_json(variables)),
    )
}

/// A fresh `__absinthe__:doc:…` id, unique in this process and unlikely to
/// repeat across restarts.
fn subscription_id() -> String {
    static SALT: LazyLock<u64> = LazyLock::new(|| RandomState::new().hash_one("r2-node"));
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("__absinthe__:doc:{:016x}{n}", *SALT)
}

/// Forwards one subscription's results into the socket's queue until the
/// stream ends, the socket goes, or the queue is full (which ends the socket).
/// Each result gets its due time from `node`'s latency fault.
async fn forward(
    mut stream: BoxStream<'static, async_graphql::Response>,
    first: Option<async_graphql::Response>,
    id: String,
    vsn: Vsn,
    node: Node,
    (queue, budget): (mpsc::Sender<Queued>, Arc<QueueBudget>),
    overflow: CancellationToken,
) {
    let mut next = first;
    loop {
        let response = match next.take() {
            Some(response) => response,
            None => match stream.next().await {
                Some(response) => response,
                None => return,
            },
        };
        let text = Frame::subscription_data(&id, GraphqlBody::of(&response).to_json()).encode(vsn);
        let due = node
            .faults()
            .delivery_delay()
            .map(|delay| Instant::now() + delay);
        let Some(reserved) = budget.reserve(text.len()) else {
            Stats::bump(&node.stats().limit_socket_queue_bytes);
            return overflow.cancel();
        };
        match queue.try_send(Queued {
            text,
            due,
            _reserved: reserved,
        }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return overflow.cancel(),
            Err(TrySendError::Closed(_)) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use futures::channel::mpsc as chan;

    use super::*;

    /// A socket served over in-memory channels: frames in, frames out, and
    /// how it ended.
    struct Harness {
        node: Node,
        inbound: chan::UnboundedSender<Result<String, Infallible>>,
        outbound: chan::Receiver<String>,
        ended: tokio::task::JoinHandle<Ended>,
    }

    async fn finished(serving: tokio::task::JoinHandle<Ended>) -> Ended {
        tokio::time::timeout(Duration::from_secs(10), serving)
            .await
            .expect("serve ends in time")
            .expect("serve does not panic")
    }

    fn harness(settings: Settings, outbound_buffer: usize) -> Harness {
        let node = Node::new();
        let (inbound, rx) = chan::unbounded();
        let (mut tx, outbound) = chan::channel(outbound_buffer);
        let served = node.clone();
        let ended =
            tokio::spawn(async move { serve(served, settings, Vsn::V1, &mut tx, rx).await });
        Harness {
            node,
            inbound,
            outbound,
            ended,
        }
    }

    impl Harness {
        fn send(&self, frame: Frame) {
            self.inbound
                .unbounded_send(Ok(frame.encode(Vsn::V1)))
                .expect("serve is running");
        }

        async fn next(&mut self) -> Frame {
            let text = tokio::time::timeout(Duration::from_secs(10), self.outbound.next())
                .await
                .expect("a frame in time")
                .expect("serve is running");
            Frame::decode(&text, Vsn::V1).expect("serve writes Phoenix frames")
        }

        /// How the socket ended, the client still connected.
        async fn ended(self) -> Ended {
            let _still_connected = self.inbound;
            finished(self.ended).await
        }

        /// Ends the client's stream; returns how the socket ended.
        async fn hang_up(self) -> Ended {
            drop(self.inbound);
            finished(self.ended).await
        }

        async fn graphql(&self, query: &str, variables: Value) -> Value {
            let request = async_graphql::Request::new(query)
                .variables(async_graphql::Variables::from_json(variables));
            let response = self.node.schema().execute(request).await;
            assert!(response.errors.is_empty(), "{:?}", response.errors);
            response.data.into_json().expect("JSON data")
        }
    }

    const DEVICE: &str = r#"{"sentant": {"name": "d", "automations": [{"name": "a", "transitions": [
        {"event": "update", "public": true, "actions": [
            {"command": "signal", "public": true, "parameters": {"event": "update"}}]}]}]}}"#;

    /// Joins, loads a device and subscribes to its `update`; returns its id.
    async fn subscribed(h: &mut Harness) -> String {
        h.send(Frame::join_control(json!(0)));
        assert_eq!(h.next().await.payload["status"], "ok");
        let loaded = h
            .graphql(
                "mutation L($d: String!) { sentantLoad(definition: $d) { id } }",
                json!({ "d": DEVICE }),
            )
            .await;
        let id = loaded["sentantLoad"]["id"].as_str().expect("id").to_owned();
        let query =
            "subscription S($id: UUID4!) { awaitSignal(id: $id, signal: \"update\") { event } }";
        h.send(Frame::doc(json!(1), query, json!({ "id": id })));
        let reply = h.next().await;
        assert_eq!(reply.payload["status"], "ok", "{reply:?}");
        id
    }

    async fn update(h: &Harness, id: &str) {
        let send = "mutation U($id: UUID4!) { sentantSend(id: $id, event: \"update\") { id } }";
        h.graphql(send, json!({ "id": id })).await;
    }

    #[tokio::test]
    async fn pushes_reach_the_sink_and_are_counted() {
        let mut h = harness(Settings::new(Duration::from_secs(60)), 16);
        let id = subscribed(&mut h).await;
        update(&h, &id).await;
        let push = h.next().await;
        assert_eq!(push.event, "subscription:data");
        assert_eq!(
            push.payload["result"]["data"]["awaitSignal"]["event"],
            "update"
        );
        assert_eq!(h.node.stats().deliveries.load(Ordering::Relaxed), 1);
        assert_eq!(h.node.stats().sockets.load(Ordering::Relaxed), 1);
        let node = h.node.clone();
        assert!(matches!(h.hang_up().await, Ended::ClientClosed));
        assert_eq!(node.stats().sockets.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_dropped_when_its_queue_overflows() {
        let settings = Settings {
            queue: 2,
            ..Settings::new(Duration::from_secs(60))
        };
        let mut h = harness(settings, 0);
        let id = subscribed(&mut h).await;
        // The client reads nothing more; the signals keep coming.
        for _ in 0..10 {
            update(&h, &id).await;
        }
        assert!(matches!(h.ended().await, Ended::SlowClient));
    }

    #[tokio::test]
    async fn silence_ends_the_socket_and_activity_keeps_it() {
        let idle = Duration::from_millis(100);
        let mut h = harness(Settings::new(idle), 16);
        let started = Instant::now();
        for n in 0..6 {
            tokio::time::sleep(idle / 3).await;
            h.send(Frame::heartbeat(json!(n)));
            assert_eq!(h.next().await.payload["status"], "ok");
        }
        assert!(
            started.elapsed() >= idle * 2,
            "kept open past two idle periods"
        );
        assert!(matches!(h.ended().await, Ended::IdleTimeout));
    }

    #[tokio::test]
    async fn a_frame_that_is_not_phoenix_ends_the_socket() {
        let h = harness(Settings::new(Duration::from_secs(60)), 16);
        h.inbound.unbounded_send(Ok("{".into())).expect("running");
        assert!(matches!(
            h.ended().await,
            Ended::BadFrame(FrameError::NotJson(_))
        ));
    }

    #[tokio::test]
    async fn cancelling_closing_ends_every_socket() {
        let settings = Settings::new(Duration::from_secs(60));
        let closing = settings.closing.clone();
        let a = harness(settings.clone(), 16);
        let b = harness(settings, 16);
        closing.cancel();
        assert!(matches!(a.ended().await, Ended::ServerClosing));
        assert!(matches!(b.ended().await, Ended::ServerClosing));
    }

    #[test]
    fn doc_payloads_that_would_crash_absinthe_are_refused() {
        assert!(doc_request(&json!({"query": "{ a }"})).is_some());
        assert!(doc_request(&json!({"query": "{ a }", "variables": null})).is_some());
        assert!(doc_request(&json!({"variables": {}})).is_some());
        for bad in [
            json!("doc"),
            json!([]),
            json!({"query": 1}),
            json!({"query": "{ a }", "variables": "{}"}),
        ] {
            assert!(doc_request(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn subscription_ids_are_unique_absinthe_topics() {
        let a = subscription_id();
        let b = subscription_id();
        assert_ne!(a, b);
        assert!(a.starts_with("__absinthe__:doc:"), "{a}");
    }

    #[test]
    fn the_node_names_its_closes() {
        assert_eq!(Ended::IdleTimeout.close_frame().map(|c| c.0), Some(1000));
        assert_eq!(Ended::SlowClient.close_frame().map(|c| c.0), Some(1008));
        assert_eq!(Ended::ClientClosed.close_frame(), None);
    }
}
