//! GraphQL over `fetch` (`gloo_net::http`), exactly as the IoT WebApp sends
//! it: `POST /reality2`, headers `Content-Type: application/json` and
//! `Accept: */*`, the body from [`r2_core::webapp::Request::body`].
//!
//! The WebApp never times a request out; a [`Client`] does only when given
//! a timeout (an `AbortController` fired by a timer dropped as soon as the
//! answer arrives; on the lean path, a shared `AbortSignal.timeout`:
//! [`super::lean`]). Every failure is a [`NetError`] whose
//! [`NetError::kind`] is what the metrics count.

use gloo_net::http::Request as Fetch;
use gloo_timers::callback::Timeout;
use r2_core::config::HttpPath;
use r2_core::graphql::{
    self, AnswerData, GqlResponse, NodeError, ProtocolError, SentantAll, SentantRef,
};
use r2_core::subscription::RequestError;
use r2_core::text::excerpt;
use r2_core::webapp::{Fields, Request};
use wasm_bindgen::JsValue;
use web_sys::AbortController;

use super::lean;
use crate::browser::js_error_text;

/// Characters of an HTTP error page kept in [`NetError::Status`].
const STATUS_EXCERPT: usize = 120;

/// Why a GraphQL request did not give a usable answer.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The browser could not reach the server at all: unreachable address,
    /// refused connection, TLS certificate not accepted, or CORS.
    #[error("network error: {0}")]
    Network(String),
    /// No answer within the timeout.
    #[error("no answer within {0} ms")]
    Timeout(u32),
    /// The server answered with an HTTP error status.
    #[error("HTTP {status}: {excerpt}")]
    Status { status: u16, excerpt: String },
    /// The answer was not a GraphQL response (not a Reality2 node?).
    #[error(transparent)]
    NotReality2(#[from] ProtocolError),
    /// The node ran the document and answered with an error.
    #[error("node error: {0}")]
    Node(NodeError),
    /// A document sent on a socket (`transport=socket`) got no answer: the
    /// socket was closed for good, closed first, or no reply came in time.
    #[error("on the socket: {0}")]
    Socket(RequestError),
    /// Never sent: the run ended while it waited for one of the tab's
    /// fetch slots ([`r2_core::gate`]).
    #[error("not sent: the run ended while it waited for one of the tab's fetch slots")]
    Unsent,
}

impl From<RequestError> for NetError {
    fn from(error: RequestError) -> NetError {
        match error {
            RequestError::Node(error) => NetError::Node(error),
            other => NetError::Socket(other),
        }
    }
}

impl NetError {
    /// The short kind under which the metrics count this error.
    pub fn kind(&self) -> String {
        match self {
            NetError::Network(_) => "network".into(),
            NetError::Timeout(_) => "timeout".into(),
            NetError::Status { status, .. } => format!("http_{status}"),
            NetError::NotReality2(_) => "not_graphql".into(),
            NetError::Node(error) => format!("graphql_{error}"),
            NetError::Socket(RequestError::NotConnected) => "socket_not_connected".into(),
            NetError::Socket(RequestError::Timeout(_)) => "socket_timeout".into(),
            NetError::Socket(_) => "socket_closed".into(),
            NetError::Unsent => "unsent".into(),
        }
    }

    /// The node's error, when it gave one.
    pub fn node_error(&self) -> Option<&NodeError> {
        match self {
            NetError::Node(error) => Some(error),
            _ => None,
        }
    }

    /// Whether asking again may get an answer: the node or the way to it
    /// failed (a 5xx, no answer in time, the network), not the request.
    pub fn is_transient(&self) -> bool {
        match self {
            NetError::Network(_) | NetError::Timeout(_) => true,
            NetError::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// Whether the node said it has no sentant with that id.
    pub fn is_gone(&self) -> bool {
        matches!(self, NetError::Node(NodeError::Id))
    }
}

/// A node's GraphQL endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    url: String,
    timeout_ms: Option<u32>,
    /// The page address requests carry as their referrer (set when they are
    /// sent from the run engine's worker, whose own address would show).
    referrer: Option<String>,
    /// How each request is made.
    path: HttpPath,
}

impl Client {
    /// The endpoint of the node at `node` (e.g. `http://host:4006`); a
    /// request taking longer than `timeout_ms` is abandoned (`None`: the
    /// WebApp's way, never).
    pub fn new(node: &str, timeout_ms: Option<u32>) -> Client {
        Client {
            url: format!("{}/reality2", node.trim_end_matches('/')),
            timeout_ms,
            referrer: None,
            path: HttpPath::Gloo,
        }
    }

    /// The same endpoint, its requests made by `path`.
    pub fn with_path(self, path: HttpPath) -> Client {
        Client { path, ..self }
    }

    /// The same endpoint, its requests referred by the page at `page`.
    pub fn with_referrer(self, page: String) -> Client {
        Client {
            referrer: Some(page),
            ..self
        }
    }

    /// The full URL requests go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends `request`; an answer without data whose first error is the
    /// node's is [`NetError::Node`].
    pub async fn request(&self, request: &Request<'_>) -> Result<GqlResponse, NetError> {
        self.request_as(request).await
    }

    /// [`Client::request`], the answer's `data` read straight into `D`.
    pub async fn request_as<D: AnswerData>(
        &self,
        request: &Request<'_>,
    ) -> Result<GqlResponse<D>, NetError> {
        let text = self.post(&request.body()).await?;
        let response = graphql::parse_response_as::<D>(&text)?;
        if response.data.is_absent() {
            if let Some(error) = response.node_error() {
                return Err(NetError::Node(error));
            }
        }
        Ok(response)
    }

    /// `sentantAll` with `fields`: every sentant on the node, read straight
    /// into the list.
    pub async fn sentant_all(&self, fields: Fields) -> Result<Vec<SentantRef>, NetError> {
        let all = self
            .request_as::<Option<SentantAll>>(&Request::SentantAll { fields })
            .await?;
        Ok(graphql::sentants(all)?)
    }

    async fn post(&self, body: &str) -> Result<String, NetError> {
        let (status, ok, text) = match self.path {
            HttpPath::Gloo => self.post_gloo(body).await?,
            HttpPath::Lean => {
                let referrer = self.referrer.as_deref();
                match lean::post(&self.url, referrer, self.timeout_ms, body).await {
                    Ok(answer) => (answer.status, answer.ok, answer.text),
                    Err(lean::Failure::TimedOut) => {
                        return Err(NetError::Timeout(self.timeout_ms.unwrap_or_default()))
                    }
                    Err(lean::Failure::Network(why)) => return Err(NetError::Network(why)),
                }
            }
        };
        if !ok {
            return Err(NetError::Status {
                status,
                excerpt: excerpt(&text, STATUS_EXCERPT),
            });
        }
        Ok(text)
    }

    /// `POST` with `gloo-net`: its status, whether it is a success, its text.
    async fn post_gloo(&self, body: &str) -> Result<(u16, bool, String), NetError> {
        let network = |e: gloo_net::Error| NetError::Network(e.to_string());
        let controller = match self.timeout_ms {
            Some(_) => {
                Some(AbortController::new().map_err(|e| NetError::Network(js_error_text(&e)))?)
            }
            None => None,
        };
        let mut fetch = Fetch::post(&self.url);
        if let Some(page) = &self.referrer {
            fetch = fetch.referrer(page);
        }
        let fetch = fetch
            .header("Content-Type", "application/json")
            .header("Accept", "*/*")
            .abort_signal(controller.as_ref().map(|c| c.signal()).as_ref())
            .body(body)
            .map_err(network)?;
        let _abort = match (self.timeout_ms, &controller) {
            (Some(ms), Some(controller)) => {
                let controller = controller.clone();
                Some(Timeout::new(ms, move || controller.abort()))
            }
            _ => None,
        };
        let aborted = || controller.as_ref().is_some_and(|c| c.signal().aborted());
        let failed = |e: gloo_net::Error| match self.timeout_ms {
            Some(ms) if aborted() => NetError::Timeout(ms),
            _ => network(e),
        };
        let response = fetch.send().await.map_err(failed)?;
        let text = response.text().await.map_err(failed)?;
        Ok((response.status(), response.ok(), text))
    }

    /// `GET url` (a page asset): its body's bytes (the text too when
    /// `want_text`), or why it could not be had.
    pub async fn get_asset(
        url: &str,
        want_text: bool,
    ) -> Result<(usize, Option<String>), NetError> {
        let network = |e: gloo_net::Error| NetError::Network(e.to_string());
        let response = Fetch::get(url).send().await.map_err(network)?;
        if !response.ok() {
            return Err(NetError::Status {
                status: response.status(),
                excerpt: String::new(),
            });
        }
        if want_text {
            let text = response.text().await.map_err(network)?;
            Ok((text.len(), Some(text)))
        } else {
            Ok((response.binary().await.map_err(network)?.len(), None))
        }
    }

    /// [`Client::get_asset`] of a body not kept: its size.
    pub async fn get_asset_owned(url: String) -> Result<usize, NetError> {
        Client::get_asset(&url, false).await.map(|(bytes, _)| bytes)
    }

    /// Sends `request` as a `keepalive` fetch, which the browser completes
    /// even as the page goes away (`pagehide`). Best effort: nothing waits
    /// for the answer. (`gloo-net`'s builder has no `keepalive`, and its
    /// `send` only starts the fetch when awaited, which a page going away
    /// may never do: this one calls `fetch` at once.)
    pub fn post_as_page_goes(&self, request: &Request<'_>) {
        let init = web_sys::RequestInit::new();
        init.set_method("POST");
        if js_sys::Reflect::set(&init, &JsValue::from_str("keepalive"), &JsValue::TRUE).is_err() {
            return;
        }
        init.set_body(&JsValue::from_str(&request.body()));
        let Ok(fetch) = web_sys::Request::new_with_str_and_init(&self.url, &init) else {
            return;
        };
        let headers = fetch.headers();
        if headers.set("Content-Type", "application/json").is_err()
            || headers.set("Accept", "*/*").is_err()
        {
            return;
        }
        if let Some(window) = web_sys::window() {
            // The promise is dropped: the page is going away.
            let _ = window.fetch_with_request(&fetch);
        }
    }

    /// Whether a `no-cors` request to the endpoint gets any answer (opaque,
    /// unreadable): then the server is there and only CORS stopped the
    /// readable request.
    pub async fn opaque_request_gets_through(&self) -> bool {
        let fetch = Fetch::get(&self.url).mode(web_sys::RequestMode::NoCors);
        fetch.send().await.is_ok()
    }
}
