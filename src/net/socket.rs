//! One websocket (`gloo_net::websocket::futures::WebSocket`) driving an
//! `r2_core` [`SocketMachine`].
//!
//! The machine decides; [`Socket`] carries out: it opens the websocket when
//! told to (each opening a new connection with its own reader task), sends
//! the frames, keeps the one timer the machine asks for (`gloo-timers`),
//! and feeds back what happens (opened, text received, closed, timer
//! fired). Every other effect goes to the owner's handler.
//!
//! Effects that follow from the socket's own events reach the handler at
//! once (nothing of the owner is borrowed then); those that follow from the
//! owner's calls ([`Socket::subscribe`], ...) are handed over on the next
//! turn of the event loop, so the owner may call them while it holds its
//! own state.
//!
//! A query or mutation sent on the socket ([`Socket::request`],
//! `transport=socket`) is answered through a future, not the handler.
//!
//! Dropping the [`Socket`] closes the websocket, cancels its timer and ends
//! its reader task; requests still awaiting an answer fail.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::hash::Hash;
use std::pin::Pin;
use std::rc::{Rc, Weak};

use futures::channel::{mpsc, oneshot};
use futures::future::{select, Either};
use futures::{Sink, SinkExt, StreamExt};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, State, WebSocketError};
use gloo_timers::callback::Timeout;
use r2_core::subscription::{
    Effect, RequestError, SocketMachine, SocketOptions, SocketState, ABNORMAL_CLOSE,
};
use serde_json::value::RawValue;
use wasm_bindgen_futures::spawn_local;

use crate::browser::now_ms;

/// What the owner of a socket hears: every machine effect that is not I/O.
pub type Handler<K> = Rc<dyn Fn(Effect<K>)>;

/// What the reader task is told to do with its connection.
enum Outgoing {
    Text(String),
    Close,
}

struct Shared<K> {
    url: String,
    machine: RefCell<SocketMachine<K>>,
    /// The current connection's outgoing queue (none while closed).
    conn: RefCell<Option<mpsc::UnboundedSender<Outgoing>>>,
    /// Bumped at each opening: events of an older connection are ignored.
    generation: Cell<u64>,
    timer: RefCell<Option<Timeout>>,
    handler: Handler<K>,
    /// Requests awaiting their answer, by number.
    answers: RefCell<HashMap<u64, oneshot::Sender<Result<String, RequestError>>>>,
    next_request: Cell<u64>,
}

/// One websocket and its machine; see the module documentation.
pub struct Socket<K: Clone + Eq + Hash + 'static> {
    shared: Rc<Shared<K>>,
}

impl<K: Clone + Eq + Hash + 'static> Socket<K> {
    /// A socket to `url` behaving as `options` say; not opened until
    /// [`Socket::start`]. The owner hears its effects through `handler`.
    pub fn new(url: &str, options: SocketOptions, handler: Handler<K>) -> Socket<K> {
        Socket {
            shared: Rc::new(Shared {
                url: url.to_owned(),
                machine: RefCell::new(SocketMachine::new(options)),
                conn: RefCell::new(None),
                generation: Cell::new(0),
                timer: RefCell::new(None),
                handler,
                answers: RefCell::default(),
                next_request: Cell::new(0),
            }),
        }
    }

    /// Opens the socket (again, after [`Socket::close`]).
    pub fn start(&self) {
        self.shared.call(|m, now| m.start(now));
    }

    /// Asks for `awaitSignal(sentant, signal)` under `key`.
    pub fn subscribe(&self, key: K, sentant: &str, signal: &str) {
        self.shared
            .call(|m, now| m.subscribe(now, key, sentant, signal));
    }

    /// Sends a query or mutation as a `doc` frame (buffered until the
    /// socket is joined); `variables` is a JSON object's text. Resolves to
    /// the node's GraphQL answer (its JSON text), or why there is none (the
    /// socket closed for good or before the reply, or no reply in time).
    pub fn request(
        &self,
        query: &str,
        variables: &RawValue,
    ) -> impl Future<Output = Result<String, RequestError>> + 'static {
        let request = self.shared.next_request.get();
        self.shared.next_request.set(request + 1);
        let (answer, answered) = oneshot::channel();
        self.shared.answers.borrow_mut().insert(request, answer);
        self.shared
            .call(|m, now| m.request(now, request, query, variables));
        async move { answered.await.unwrap_or(Err(RequestError::Dropped)) }
    }

    /// Ends subscription `key`.
    pub fn unsubscribe(&self, key: &K) {
        self.shared.call(|m, _| m.unsubscribe(key));
    }

    /// The page holding the socket is frozen (navigated away from, kept in
    /// the back/forward cache): see [`SocketMachine::freeze`].
    pub fn freeze(&self) {
        self.shared.call(|m, _| m.freeze());
    }

    /// Closes the socket on purpose: no reconnect, no heartbeat.
    pub fn close(&self) {
        self.shared.call(|m, _| m.close());
    }

    /// The socket's state.
    pub fn state(&self) -> SocketState {
        self.shared.machine.borrow().state()
    }

    /// Whether the websocket is open now.
    pub fn is_open(&self) -> bool {
        self.shared.machine.borrow().is_open()
    }

    /// Read access to the machine (subscription states).
    pub fn with_machine<R>(&self, f: impl FnOnce(&SocketMachine<K>) -> R) -> R {
        f(&self.shared.machine.borrow())
    }
}

impl<K: Clone + Eq + Hash + 'static> Drop for Socket<K> {
    fn drop(&mut self) {
        let effects = self.shared.machine.borrow_mut().close();
        // Only I/O matters now: the owner is letting go of the socket.
        for effect in effects {
            if effect == Effect::Close {
                self.shared.close_conn();
            }
        }
        self.shared.timer.borrow_mut().take();
        // Their askers hear the socket is gone.
        self.shared.answers.borrow_mut().clear();
    }
}

impl<K: Clone + Eq + Hash + 'static> Shared<K> {
    /// An input from the owner: its effects reach the handler on the next turn.
    fn call(self: &Rc<Self>, input: impl FnOnce(&mut SocketMachine<K>, f64) -> Vec<Effect<K>>) {
        let effects = input(&mut self.machine.borrow_mut(), now_ms());
        let owner = self.carry_out(effects);
        if !owner.is_empty() {
            let handler = self.handler.clone();
            spawn_local(async move { owner.into_iter().for_each(|e| handler(e)) });
        }
    }

    /// An input from the socket or a timer: its effects reach the handler now.
    fn feed(self: &Rc<Self>, input: impl FnOnce(&mut SocketMachine<K>, f64) -> Vec<Effect<K>>) {
        let effects = input(&mut self.machine.borrow_mut(), now_ms());
        for effect in self.carry_out(effects) {
            (self.handler)(effect);
        }
    }

    /// Does the I/O effects; returns the owner's.
    fn carry_out(self: &Rc<Self>, effects: Vec<Effect<K>>) -> Vec<Effect<K>> {
        let mut owner = Vec::new();
        for effect in effects {
            match effect {
                Effect::Open => self.open(),
                Effect::Send(text) => {
                    // None while closed: a dead socket's heartbeat is dropped, as the browser drops it.
                    if let Some(conn) = self.conn.borrow().as_ref() {
                        let _ = conn.unbounded_send(Outgoing::Text(text));
                    }
                }
                Effect::Close => self.close_conn(),
                Effect::Timer { at_ms } => self.arm(at_ms),
                Effect::Answered { request, result } => {
                    if let Some(answer) = self.answers.borrow_mut().remove(&request) {
                        // The asker may have stopped waiting.
                        let _ = answer.send(result);
                    }
                }
                other => owner.push(other),
            }
        }
        owner
    }

    fn close_conn(&self) {
        if let Some(conn) = self.conn.borrow_mut().take() {
            let _ = conn.unbounded_send(Outgoing::Close);
        }
    }

    fn arm(self: &Rc<Self>, at_ms: f64) {
        let weak = Rc::downgrade(self);
        let wait = (at_ms - now_ms()).max(0.0).ceil() as u32;
        let timeout = Timeout::new(wait, move || {
            if let Some(shared) = weak.upgrade() {
                shared.timer.borrow_mut().take();
                shared.feed(|m, now| m.tick(now.max(at_ms)));
            }
        });
        *self.timer.borrow_mut() = Some(timeout);
    }

    fn open(self: &Rc<Self>) {
        self.close_conn();
        let generation = self.generation.get() + 1;
        self.generation.set(generation);
        match WebSocket::open(&self.url) {
            Ok(ws) => {
                let (sender, receiver) = mpsc::unbounded();
                *self.conn.borrow_mut() = Some(sender);
                spawn_local(connection(Rc::downgrade(self), generation, ws, receiver));
            }
            Err(_) => {
                // An address the browser will not even try: the same as a
                // socket that could not connect. Reported after this turn,
                // as a browser reports a failed connection.
                let weak = Rc::downgrade(self);
                spawn_local(async move {
                    if let Some(shared) = weak.upgrade() {
                        if shared.generation.get() == generation {
                            shared.feed(|m, now| m.closed(now, ABNORMAL_CLOSE));
                        }
                    }
                });
            }
        }
    }
}

/// One connection's life: wait for it to open, then pass frames both ways
/// until it closes or the socket lets go of it.
async fn connection<K: Clone + Eq + Hash + 'static>(
    shared: Weak<Shared<K>>,
    generation: u64,
    mut ws: WebSocket,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
) {
    let current = |shared: &Weak<Shared<K>>| {
        shared
            .upgrade()
            .filter(|s| s.generation.get() == generation)
    };
    // Ready once the socket is open, or closed without opening.
    let _ = poll_fn(|cx| Pin::new(&mut ws).poll_ready(cx)).await;
    if matches!(ws.state(), State::Open) {
        match current(&shared) {
            Some(s) => s.feed(|m, now| m.opened(now)),
            None => return,
        }
    }
    loop {
        let step = match select(ws.next(), outgoing.next()).await {
            Either::Left((incoming, _)) => Either::Left(incoming),
            Either::Right((out, _)) => Either::Right(out),
        };
        match step {
            Either::Left(Some(Ok(Message::Text(text)))) => match current(&shared) {
                Some(s) => s.feed(|m, now| m.received(now, &text)),
                None => return,
            },
            Either::Left(Some(Ok(Message::Bytes(bytes)))) => match current(&shared) {
                Some(s) => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    s.feed(|m, now| m.received(now, &text))
                }
                None => return,
            },
            // An `error` event: the `close` event follows.
            Either::Left(Some(Err(WebSocketError::ConnectionError))) => {}
            Either::Left(Some(Err(WebSocketError::ConnectionClose(event)))) => {
                if let Some(s) = current(&shared) {
                    s.feed(|m, now| m.closed(now, event.code));
                }
                return;
            }
            Either::Left(Some(Err(_))) => {}
            Either::Left(None) => {
                if let Some(s) = current(&shared) {
                    s.feed(|m, now| m.closed(now, ABNORMAL_CLOSE));
                }
                return;
            }
            Either::Right(Some(Outgoing::Text(text))) => {
                // A send on a socket that is closing fails; its close event follows.
                let _ = ws.send(Message::Text(text)).await;
            }
            Either::Right(Some(Outgoing::Close) | None) => {
                let _ = ws.close(Some(1000), None);
                return;
            }
        }
    }
}
