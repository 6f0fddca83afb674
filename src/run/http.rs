//! GraphQL over `fetch`, exactly as the IoT WebApp sends it: `POST /reality2`
//! with a JSON body whose `variables` is a string holding JSON.
//!
//! Every request has a timeout (an `AbortController` fired by a timer that is
//! dropped as soon as the answer arrives) and every failure is classified
//! into an [`HttpError`] whose [`HttpError::kind`] is what the metrics count.

use gloo_timers::callback::Timeout;
use r2_core::graphql::{self, GqlResponse, ProtocolError};
use r2_core::text::excerpt;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Request, RequestInit, Response};

use crate::browser::js_error_text;

/// Why a GraphQL request did not give a usable answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
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
    Protocol(#[from] ProtocolError),
    /// The node ran the document and answered with an error message
    /// (`id`, `invalid_event`, `definition`, ...).
    #[error("node error: {0}")]
    Graphql(String),
}

impl HttpError {
    /// The short kind under which the metrics count this error.
    pub fn kind(&self) -> String {
        match self {
            HttpError::Network(_) => "network".into(),
            HttpError::Timeout(_) => "timeout".into(),
            HttpError::Status { status, .. } => format!("http_{status}"),
            HttpError::Protocol(_) => "not_graphql".into(),
            HttpError::Graphql(msg) => format!("graphql_{msg}"),
        }
    }
}

/// A GraphQL endpoint reached with `fetch`.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphqlHttp {
    url: String,
    timeout_ms: u32,
}

impl GraphqlHttp {
    /// The endpoint of the node at `node` (e.g. `http://host:4006`); a
    /// request taking longer than `timeout_ms` is abandoned.
    pub fn new(node: &str, timeout_ms: u32) -> Self {
        Self {
            url: format!("{}/reality2", node.trim_end_matches('/')),
            timeout_ms,
        }
    }

    /// The full URL requests go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs `query` with `variables`; errors reported by the node become
    /// [`HttpError::Graphql`] unless the answer still holds data.
    pub async fn request(
        &self,
        query: &str,
        variables: &serde_json::Value,
    ) -> Result<GqlResponse, HttpError> {
        let body = graphql::webapp_body(query, variables);
        let text = self.post(&body).await?;
        let response = graphql::parse_response(&text)?;
        if response.data.is_null() {
            if let Some(msg) = response.first_error_message() {
                return Err(HttpError::Graphql(msg.to_owned()));
            }
        }
        Ok(response)
    }

    async fn post(&self, body: &str) -> Result<String, HttpError> {
        let controller =
            AbortController::new().map_err(|e| HttpError::Network(js_error_text(&e)))?;
        let init = RequestInit::new();
        init.set_method("POST");
        init.set_body(&JsValue::from_str(body));
        init.set_signal(Some(&controller.signal()));
        let request = Request::new_with_str_and_init(&self.url, &init)
            .map_err(|e| HttpError::Network(js_error_text(&e)))?;
        request
            .headers()
            .set("Content-Type", "application/json")
            .map_err(|e| HttpError::Network(js_error_text(&e)))?;
        let window = web_sys::window().ok_or_else(|| HttpError::Network("no window".into()))?;
        let abort = {
            let controller = controller.clone();
            Timeout::new(self.timeout_ms, move || controller.abort())
        };
        let result = async {
            let response: Response = JsFuture::from(window.fetch_with_request(&request))
                .await
                .map_err(|e| self.classify_failure(&controller, &e))?
                .unchecked_into();
            let text_promise = response
                .text()
                .map_err(|e| HttpError::Network(js_error_text(&e)))?;
            let text = JsFuture::from(text_promise)
                .await
                .map_err(|e| self.classify_failure(&controller, &e))?
                .as_string()
                .unwrap_or_default();
            if !response.ok() {
                return Err(HttpError::Status {
                    status: response.status(),
                    excerpt: excerpt(&text, 120),
                });
            }
            Ok(text)
        }
        .await;
        drop(abort);
        result
    }

    fn classify_failure(&self, controller: &AbortController, err: &JsValue) -> HttpError {
        if controller.signal().aborted() {
            HttpError::Timeout(self.timeout_ms)
        } else {
            HttpError::Network(js_error_text(err))
        }
    }
}
