//! Shared helpers of the r2-node integration tests: a node on `127.0.0.1:0`,
//! the exact HTTP requests and websocket frames of `reality2-protocol.md`
//! (the WebApp's JSON body with string variables, the Python client's form
//! body), and waiting for conditions with timeouts instead of sleeping.

#![allow(dead_code, unused_imports)] // each test binary (and the bench) uses its own subset

use std::{future::Future, net::SocketAddr, time::Duration};

use anyhow::{anyhow, bail, ensure, Context, Result};
use futures::{SinkExt, StreamExt};
use r2_core::phoenix::{Frame, Incoming, Vsn, CONTROL_TOPIC};
use r2_node::{fidelity::Values, Config, Running};
use serde_json::{json, Value};
use tokio::{io::AsyncRead, io::AsyncWrite};
use tokio_tungstenite::{
    tungstenite::{protocol::WebSocketConfig, Message},
    WebSocketStream,
};

/// How long any awaited condition may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub use r2_core::graphql::{
    await_signal_variables, device_definition, load_variables, monitor_definition, send_variables,
    view_definition, webapp_body, AWAIT_SIGNAL, SENTANT_ALL, SENTANT_GET_BY_ID, SENTANT_LOAD,
    SENTANT_SEND, SENTANT_UNLOAD,
};

/// A client socket over plain TCP (or TLS), as [`TestNode::socket`] opens it.
pub type TcpSocket = Socket<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A node on `127.0.0.1:0` with a client for it.
pub struct TestNode {
    pub running: Running,
    pub http: reqwest::Client,
    pub base: String,
}

impl TestNode {
    /// Plain HTTP on a free loopback port, behaving as the real node.
    pub async fn start() -> Result<TestNode> {
        TestNode::with_config(Config::loopback()).await
    }

    /// Plain HTTP on a free loopback port, with `--lenient` behaviour (for
    /// tests where the real node's 1 s waits are beside the point).
    pub async fn lenient() -> Result<TestNode> {
        TestNode::with_config(Config::loopback().lenient()).await
    }

    pub async fn with_config(config: Config) -> Result<TestNode> {
        let running = Running::start(config).await?;
        let base = running.http_url().context("no http listener")?;
        Ok(TestNode {
            running,
            http: reqwest::Client::new(),
            base,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.running.http.expect("http listener")
    }

    pub fn graphql_url(&self) -> String {
        format!("{}/reality2", self.base)
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/reality2/websocket{query}", self.addr())
    }

    /// A POST the way the WebApp sends it: JSON with `variables` as a string.
    pub async fn webapp_post(&self, query: &str, variables: Value) -> Result<(u16, Value)> {
        webapp_post(&self.http, &self.base, query, &variables).await
    }

    /// The `data` of a WebApp POST that must succeed.
    pub async fn data(&self, query: &str, variables: Value) -> Result<Value> {
        let (status, body) = self.webapp_post(query, variables).await?;
        ensure!(status == 200, "status {status}: {body}");
        ensure!(body.get("errors").is_none(), "errors: {body}");
        body.get("data").cloned().context("no data")
    }

    /// Loads a definition; returns the sentant's id.
    pub async fn load(&self, definition: &str) -> Result<String> {
        let data = self.data(SENTANT_LOAD, load_variables(definition)).await?;
        id_of(&data["sentantLoad"])
    }

    /// `sentantSend` as the WebApp sends it (`parameters` as JSON text).
    pub async fn send(&self, id: &str, event: &str, parameters: Value) -> Result<(u16, Value)> {
        self.webapp_post(SENTANT_SEND, send_variables(id, event, &parameters))
            .await
    }

    /// The node's counters.
    pub async fn stats(&self) -> Result<Value> {
        let url = format!("{}/r2-node/stats", self.base);
        Ok(self.http.get(url).send().await?.json().await?)
    }

    /// `POST /r2-node/faults` with `body` (any JSON, or text that is not) as
    /// `application/json`; returns the status and the JSON answer.
    pub async fn post_faults(&self, body: impl Into<reqwest::Body>) -> Result<(u16, Value)> {
        let url = format!("{}/r2-node/faults", self.base);
        let request = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body);
        answer(request.send().await?).await
    }

    /// Sets faults that must be accepted; returns them as read back.
    pub async fn set_faults(&self, faults: Value) -> Result<Value> {
        let (status, body) = self.post_faults(faults.to_string()).await?;
        ensure!(status == 200, "faults refused: {status} {body}");
        Ok(body)
    }

    /// `GET /r2-node/faults`.
    pub async fn faults(&self) -> Result<Value> {
        let url = format!("{}/r2-node/faults", self.base);
        Ok(self.http.get(url).send().await?.json().await?)
    }

    /// Opens a V1 socket and joins the control topic.
    pub async fn socket(&self) -> Result<TcpSocket> {
        let mut socket = Socket::connect(&self.ws_url(""), Vsn::V1).await?;
        socket.join().await?;
        Ok(socket)
    }

    /// A socket subscribed to `awaitSignal(id, signal)`, with its subscription id.
    pub async fn subscribed(&self, id: &str, signal: &str) -> Result<(TcpSocket, String)> {
        let mut socket = self.socket().await?;
        let subscription = socket.subscribe(id, signal).await?;
        Ok((socket, subscription))
    }

    /// Loads `view` (so that a device's `update` is not held, as the real
    /// node holds it while `view` is missing) and a device with a socket
    /// subscribed to its `update`; returns the device's id, the socket and
    /// the subscription id.
    pub async fn subscribed_device(&self, name: &str) -> Result<(String, TcpSocket, String)> {
        self.load(&view_definition()).await?;
        let id = self.load(&device_definition(name)).await?;
        let (socket, subscription) = self.subscribed(&id, "update").await?;
        Ok((id, socket, subscription))
    }

    /// `sensor` as this node's signals carry a value set by `set_sensor`:
    /// the real node's text (`"42"`), or the number with `--lenient`.
    pub fn sensor(&self, sensor: i64) -> Value {
        match self.running.node.fidelity().values {
            Values::Text => json!(sensor.to_string()),
            Values::Typed => json!(sensor),
        }
    }

    /// A device loaded (with `view` loaded first, as the WebApp does, so
    /// that its `update` is not held), subscribed, set to `sensor` and
    /// updated: checks the `update` signal arrives with `sensor` and `name`.
    /// Proves the node still serves the IoT demo.
    pub async fn assert_device_works(&self, name: &str, sensor: i64) -> Result<()> {
        self.load(&view_definition()).await?;
        let id = self.load(&device_definition(name)).await?;
        let (mut socket, subscription) = self.subscribed(&id, "update").await?;
        let (status, body) = self
            .send(&id, "set_sensor", json!({ "sensor": sensor }))
            .await?;
        ensure!(
            status == 200 && body.get("errors").is_none(),
            "set_sensor: {body}"
        );
        let (status, body) = self.send(&id, "update", json!({})).await?;
        ensure!(
            status == 200 && body.get("errors").is_none(),
            "update: {body}"
        );
        let signal = socket.signal(&subscription).await?;
        ensure!(signal["event"] == "update", "{signal}");
        ensure!(
            signal["parameters"]["sensor"] == self.sensor(sensor),
            "{signal}"
        );
        ensure!(signal["parameters"]["name"] == name, "{signal}");
        Ok(())
    }

    /// Waits until the counter `name` satisfies `ok`.
    pub async fn await_stat(&self, name: &str, ok: impl Fn(u64) -> bool) -> Result<u64> {
        within(async {
            loop {
                let stats = self.stats().await?;
                let value = stats[name]
                    .as_u64()
                    .with_context(|| format!("no {name} in {stats}"))?;
                if ok(value) {
                    return Ok(value);
                }
                tokio::task::yield_now().await;
            }
        })
        .await
        .with_context(|| format!("waiting for stat {name}"))
    }
}

/// A POST to `base`/reality2 the way the WebApp sends it: JSON with
/// `variables` as a string.
pub async fn webapp_post(
    client: &reqwest::Client,
    base: &str,
    query: &str,
    variables: &Value,
) -> Result<(u16, Value)> {
    let response = client
        .post(format!("{base}/reality2"))
        .header("content-type", "application/json")
        .body(webapp_body(query, variables))
        .send()
        .await?;
    answer(response).await
}

/// Status and JSON body of a response.
pub async fn answer(response: reqwest::Response) -> Result<(u16, Value)> {
    let status = response.status().as_u16();
    let text = response.text().await?;
    let body = serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))?;
    Ok((status, body))
}

/// The `id` of a `{ id name }` selection.
pub fn id_of(sentant: &Value) -> Result<String> {
    sentant["id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no id in {sentant}"))
}

/// `future`, or an error after [`PATIENCE`].
pub async fn within<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(PATIENCE, future)
        .await
        .map_err(|_| anyhow!("timed out after {PATIENCE:?}"))?
}

/// How a websocket ended, as the client saw it.
#[derive(Debug, PartialEq)]
pub enum Closed {
    /// A close frame with this code.
    Code(u16),
    /// The connection ended without a close frame.
    Dropped,
}

/// A Phoenix client socket speaking V1 or V2.
pub struct Socket<S> {
    pub ws: WebSocketStream<S>,
    pub vsn: Vsn,
    next_ref: u64,
}

impl Socket<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    pub async fn connect(url: &str, vsn: Vsn) -> Result<Self> {
        // A small read buffer: tungstenite zero-fills it on every read, which
        // would make the benchmark's clients measure memset.
        let config = WebSocketConfig::default().read_buffer_size(4096);
        let (ws, _) =
            tokio_tungstenite::connect_async_with_config(url, Some(config), false).await?;
        Ok(Socket::over(ws, vsn))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Socket<S> {
    pub fn over(ws: WebSocketStream<S>, vsn: Vsn) -> Self {
        Socket {
            ws,
            vsn,
            next_ref: 0,
        }
    }

    /// A fresh `ref` (V2 clients count; V1 real clients reuse 0).
    pub fn reference(&mut self) -> Value {
        self.next_ref += 1;
        match self.vsn {
            Vsn::V1 => json!(self.next_ref),
            Vsn::V2 => json!(self.next_ref.to_string()),
        }
    }

    pub async fn send_text(&mut self, text: String) -> Result<()> {
        self.ws.send(Message::text(text)).await?;
        Ok(())
    }

    pub async fn send(&mut self, frame: &Frame) -> Result<()> {
        self.send_text(frame.encode(self.vsn)).await
    }

    /// The next text frame from the server, as sent.
    pub async fn ws_text(&mut self) -> Result<String> {
        within(async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
                    Some(Ok(Message::Close(close))) => bail!("socket closed: {close:?}"),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(e.into()),
                    None => bail!("socket ended"),
                }
            }
        })
        .await
    }

    /// The next Phoenix frame from the server.
    pub async fn frame(&mut self) -> Result<Frame> {
        let text = self.ws_text().await?;
        Ok(Frame::decode(&text, self.vsn)?)
    }

    /// Sends `frame` and returns the `phx_reply` to it (same topic and ref);
    /// anything else that arrives first is an error.
    pub async fn request(&mut self, frame: Frame) -> Result<(String, Value)> {
        self.send(&frame).await?;
        let reply = self.frame().await?;
        ensure!(
            reply.topic == frame.topic && reply.reference == frame.reference,
            "expected the reply to {frame:?}, got {reply:?}"
        );
        match reply.classify() {
            Incoming::Reply { status, response } => Ok((status.to_owned(), response.clone())),
            _ => bail!("not a reply: {reply:?}"),
        }
    }

    /// Joins `__absinthe__:control` (V2 with a join_ref).
    pub async fn join(&mut self) -> Result<()> {
        let reference = self.reference();
        let mut join = Frame::join_control(reference.clone());
        if self.vsn == Vsn::V2 {
            join = join.with_join_ref(reference);
        }
        let (status, response) = self.request(join).await?;
        ensure!(
            status == "ok" && response == json!({}),
            "{status} {response}"
        );
        Ok(())
    }

    /// Sends a `doc`; returns the reply's status and response.
    pub async fn doc(&mut self, query: &str, variables: Value) -> Result<(String, Value)> {
        let frame = Frame::doc(self.reference(), query, variables);
        self.request(frame).await
    }

    /// Subscribes to `awaitSignal(id, signal)`; returns the subscription id.
    pub async fn subscribe(&mut self, id: &str, signal: &str) -> Result<String> {
        let (status, response) = self
            .doc(AWAIT_SIGNAL, await_signal_variables(id, signal))
            .await?;
        ensure!(status == "ok", "subscribe refused: {response}");
        response["subscriptionId"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no subscriptionId in {response}"))
    }

    /// The next `subscription:data` push; returns its `awaitSignal` value.
    pub async fn signal(&mut self, subscription: &str) -> Result<Value> {
        let frame = self.frame().await?;
        match frame.classify() {
            Incoming::Data {
                subscription_id,
                result,
            } => {
                ensure!(
                    subscription_id == subscription,
                    "push for {subscription_id}"
                );
                ensure!(frame.topic == subscription, "push on topic {}", frame.topic);
                Ok(result["data"]["awaitSignal"].clone())
            }
            _ => bail!("expected a push for {subscription}, got {frame:?}"),
        }
    }

    /// A heartbeat round trip.
    pub async fn heartbeat(&mut self) -> Result<()> {
        let frame = Frame::heartbeat(self.reference());
        let (status, _) = self.request(frame).await?;
        ensure!(status == "ok");
        Ok(())
    }

    /// Waits for the server to close the socket; returns how.
    pub async fn closed(&mut self) -> Result<Closed> {
        within(async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(Some(close)))) => {
                        return Ok(Closed::Code(close.code.into()))
                    }
                    Some(Ok(Message::Close(None))) | None | Some(Err(_)) => {
                        return Ok(Closed::Dropped)
                    }
                    Some(Ok(Message::Text(text))) => bail!("frame before close: {text}"),
                    Some(Ok(_)) => continue,
                }
            }
        })
        .await
    }
}

/// The topic the control channel's server pushes (`phx_close`, `phx_error`) use.
pub fn is_control_push(frame: &Frame, event: &str) -> bool {
    frame.topic == CONTROL_TOPIC && frame.event == event
}
