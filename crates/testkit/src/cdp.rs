//! A thin Chrome DevTools Protocol client: one websocket to the browser,
//! commands matched to answers by `id`, events routed by `sessionId`.
//!
//! A reader task owns the receiving half of the socket. Each command registers
//! a oneshot sender under its `id` before it is written; the reader completes
//! it with the `result` or the `error`. Events go to every subscriber of their
//! session (flattened sessions, as `Target.attachToTarget{flatten:true}` makes
//! them). When the socket ends, the router becomes `Router::Closed`: pending
//! commands fail with [`Error::Closed`] and event streams end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::Error;

/// How long any single command may take before it fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// An event from the browser.
#[derive(Debug, Clone)]
pub struct Event {
    pub method: String,
    pub params: Value,
}

/// The `error` member of a failed answer.
struct RemoteError {
    code: i64,
    message: String,
    data: Option<String>,
}

type Answer = Result<Value, RemoteError>;

struct Subscriber {
    session: Option<String>,
    events: mpsc::UnboundedSender<Event>,
}

/// Where answers and events go; `Closed` once the socket has ended.
enum Router {
    Open {
        pending: HashMap<u64, oneshot::Sender<Answer>>,
        subscribers: Vec<Subscriber>,
    },
    Closed(String),
}

struct Shared {
    router: Mutex<Router>,
}

impl Shared {
    fn router(&self) -> MutexGuard<'_, Router> {
        // A panic while holding this lock cannot leave the map half-updated in
        // a way that matters here, so a poisoned lock is still usable.
        self.router.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Aborts a spawned task when dropped.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One DevTools websocket connection.
pub struct Connection {
    url: String,
    sink: tokio::sync::Mutex<SplitSink<Socket, Message>>,
    next_id: AtomicU64,
    shared: Arc<Shared>,
    _reader: AbortOnDrop,
}

impl Connection {
    /// Connects to a DevTools websocket URL (`ws://127.0.0.1:PORT/devtools/browser/...`).
    pub async fn connect(url: &str) -> Result<Connection, Error> {
        let ws_error = |source| Error::WebSocket {
            url: url.to_owned(),
            source: Box::new(source),
        };
        let (socket, _response) =
            tokio::time::timeout(COMMAND_TIMEOUT, tokio_tungstenite::connect_async(url))
                .await
                .map_err(|_| Error::Timeout {
                    what: format!("the DevTools websocket {url}"),
                    after: COMMAND_TIMEOUT,
                })?
                .map_err(ws_error)?;
        let (sink, stream) = socket.split();
        let shared = Arc::new(Shared {
            router: Mutex::new(Router::Open {
                pending: HashMap::new(),
                subscribers: Vec::new(),
            }),
        });
        let reader = tokio::spawn(read_loop(stream, Arc::clone(&shared)));
        Ok(Connection {
            url: url.to_owned(),
            sink: tokio::sync::Mutex::new(sink),
            next_id: AtomicU64::new(1),
            shared,
            _reader: AbortOnDrop(reader),
        })
    }

    /// Sends a command (on a page's session, or to the browser when `session`
    /// is `None`) and awaits its `result`, for at most [`COMMAND_TIMEOUT`].
    pub async fn call(
        &self,
        method: &str,
        params: Value,
        session: Option<&str>,
    ) -> Result<Value, Error> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        match &mut *self.shared.router() {
            Router::Open { pending, .. } => {
                pending.insert(id, tx);
            }
            Router::Closed(reason) => return Err(Error::Closed(reason.clone())),
        }
        let mut frame = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            frame["sessionId"] = Value::String(session.to_owned());
        }
        let sent = self
            .sink
            .lock()
            .await
            .send(Message::Text(frame.to_string().into()))
            .await;
        if let Err(source) = sent {
            self.forget(id);
            return Err(Error::WebSocket {
                url: self.url.clone(),
                source: Box::new(source),
            });
        }
        match tokio::time::timeout(COMMAND_TIMEOUT, rx).await {
            Ok(Ok(Ok(result))) => Ok(result),
            Ok(Ok(Err(remote))) => Err(Error::Protocol {
                method: method.to_owned(),
                code: remote.code,
                message: remote.message,
                data: remote.data,
            }),
            Ok(Err(_dropped)) => Err(Error::Closed(self.closed_reason())),
            Err(_elapsed) => {
                self.forget(id);
                Err(Error::Timeout {
                    what: format!("the answer to {method}"),
                    after: COMMAND_TIMEOUT,
                })
            }
        }
    }

    /// Events of one session (`None`: browser-level events) from now on. The
    /// stream ends when the connection closes.
    pub fn subscribe(&self, session: Option<&str>) -> mpsc::UnboundedReceiver<Event> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Router::Open { subscribers, .. } = &mut *self.shared.router() {
            subscribers.push(Subscriber {
                session: session.map(str::to_owned),
                events: tx,
            });
        }
        // When closed, `tx` is dropped here and the stream is already over.
        rx
    }

    fn forget(&self, id: u64) {
        if let Router::Open { pending, .. } = &mut *self.shared.router() {
            pending.remove(&id);
        }
    }

    fn closed_reason(&self) -> String {
        match &*self.shared.router() {
            Router::Closed(reason) => reason.clone(),
            Router::Open { .. } => "answer dropped".to_owned(),
        }
    }
}

async fn read_loop(mut stream: SplitStream<Socket>, shared: Arc<Shared>) {
    let reason = loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => dispatch(&shared, text.as_str()),
            Some(Ok(Message::Close(frame))) => {
                break match frame {
                    Some(frame) => {
                        format!("closed by the browser: {} {}", frame.code, frame.reason)
                    }
                    None => "closed by the browser".to_owned(),
                }
            }
            Some(Ok(_other)) => {}
            Some(Err(e)) => break format!("websocket error: {e}"),
            None => break "websocket ended".to_owned(),
        }
    };
    // Dropping the pending senders and subscribers wakes everyone waiting.
    *shared.router() = Router::Closed(reason);
}

fn dispatch(shared: &Shared, text: &str) {
    let Ok(Value::Object(mut frame)) = serde_json::from_str::<Value>(text) else {
        return; // CDP only sends JSON objects; anything else carries nothing for us.
    };
    let mut router = shared.router();
    let Router::Open {
        pending,
        subscribers,
    } = &mut *router
    else {
        return;
    };
    if let Some(id) = frame.get("id").and_then(Value::as_u64) {
        if let Some(tx) = pending.remove(&id) {
            let answer = match frame.remove("error") {
                Some(error) => Err(RemoteError {
                    code: error
                        .get("code")
                        .and_then(Value::as_i64)
                        .unwrap_or_default(),
                    message: error
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("(no message)")
                        .to_owned(),
                    data: error
                        .get("data")
                        .map(|d| d.as_str().map_or_else(|| d.to_string(), str::to_owned)),
                }),
                None => Ok(frame.remove("result").unwrap_or(Value::Null)),
            };
            // The caller may have timed out and gone; nothing to do then.
            let _ = tx.send(answer);
        }
        return;
    }
    let Some(Value::String(method)) = frame.remove("method") else {
        return;
    };
    let session = frame
        .get("sessionId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let event = Event {
        method,
        params: frame.remove("params").unwrap_or(Value::Null),
    };
    subscribers.retain(|s| s.session != session || s.events.send(event.clone()).is_ok());
}
