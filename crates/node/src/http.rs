//! The HTTP side of the node: the axum [`Router`] with GraphQL at `/reality2`,
//! the websocket at `/reality2/websocket` (see [`crate::ws`]), counters at
//! `/r2-node/stats`, faults at `/r2-node/faults` (see [`crate::faults`]), web
//! apps from `--sites`, a body limit, and CORS headers only with `--cors` or
//! `--lenient` (the real node sends none; see [`crate::fidelity::Cors`]).
//! Each `/reality2` answer counts in `requests`.
//!
//! `/reality2` takes requests the way Absinthe.Plug behind Plug.Parsers does
//! (the real node's endpoint):
//!
//! - `POST` with a JSON body `{"query", "variables", "operationName"}` where
//!   `variables` is an object or a string holding JSON; a form body
//!   (`application/x-www-form-urlencoded`) with the same fields as strings;
//!   any other body is the document itself. Query-string parameters fill in
//!   what the body leaves out.
//! - `GET` with the same fields in the query string; a mutation is refused
//!   with 405 `Can only perform a mutation from a POST request`.
//! - No document: 400 `{"errors":[{"message":"No query document supplied"}]}`;
//!   variables that are not a JSON object: 400 `The variable values could not
//!   be decoded`; a body that does not parse (JSON or form): 400 and one over
//!   the limit: 413, both as Phoenix's `ErrorJSON` renders them
//!   (`{"errors":{"detail":"Bad Request"}}`).
//! - A document that ran answers 200 with `{"data": ...}` and any `errors`;
//!   one that did not parse or validate has `errors` and no `data`.
//!
//! Batched requests (a JSON array body) are not supported: they get 400.
//!
//! `/r2-node/faults`: `GET` answers the faults in force as a JSON object
//! (`{"latency_ms", "jitter_ms", "error_rate", "drop_sockets_every_s",
//! "refuse_for_s", "forget"}`); `POST` with such an object (as
//! `application/json`) replaces them and answers the same; a body that is
//! not valid gets 400 `{"errors":{"detail": "<what is wrong>"}}`. Only
//! loopback peers, or holders of `--control-token`, are answered (see
//! [`crate::control`]). Request bodies are read within
//! `--body-read-timeout-s` (see [`crate::conn`]); the sites server refuses
//! dotfiles and symlinks that leave its folder (see [`crate::confine`]).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use axum::{
    body::{Body, Bytes},
    extract::{rejection::BytesRejection, DefaultBodyLimit, RawQuery, Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode, Uri},
    middleware::{self, map_response_with_state},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use serde::Serialize;
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tower_http::{cors::CorsLayer, services::ServeDir};

use crate::{
    confine::Confined, conn, control, faults::FaultSpec, fidelity::Cors, limits, stats::Stats, ws,
    Config, Node,
};

/// The message Absinthe.Plug answers when there is no document.
pub const NO_QUERY: &str = "No query document supplied";
/// The message Absinthe.Plug answers when `variables` is not JSON.
pub const BAD_VARIABLES: &str = "The variable values could not be decoded";
/// The message Absinthe.Plug answers for a mutation over GET.
pub const MUTATION_OVER_GET: &str = "Can only perform a mutation from a POST request";

/// The router serving `node` as `config` says. Websockets opened through it
/// are closed only by their clients or their idle timeout; [`crate::run`]
/// also closes them when it shuts down.
pub fn app(node: Node, config: &Config) -> Router {
    router(node, config, CancellationToken::new())
}

/// The router, with websockets closed when `closing` is cancelled.
pub(crate) fn router(node: Node, config: &Config, closing: CancellationToken) -> Router {
    let state = AppState {
        node,
        ws: ws::Settings {
            idle_timeout: config.idle_timeout,
            queue: config.socket_queue.max(1),
            max_message: config.body_limit,
            queue_bytes: config.connections.socket_queue_bytes,
            max_subscriptions: config.limits.max_subscriptions_per_socket,
            closing,
            documents: Arc::default(),
        },
        sites: config.sites.as_deref().map(Sites::new),
    };
    let control = control::Guard {
        access: Arc::new(config.control.clone()),
        node: state.node.clone(),
    };
    let deadline = conn::BodyDeadline {
        timeout: Duration::from_secs(config.connections.body_read_timeout_s.max(1)),
        limit: config.body_limit,
        node: state.node.clone(),
    };
    let counted = || {
        get(graphql_get)
            .post(graphql_post)
            .layer(map_response_with_state(state.clone(), count_request))
            .layer(middleware::from_fn_with_state(
                state.clone(),
                count_in_flight,
            ))
    };
    let router = Router::new()
        .route("/reality2", counted())
        .route("/reality2/", counted())
        .route("/reality2/websocket", get(ws::upgrade))
        .route("/r2-node/stats", get(stats))
        .route(
            "/r2-node/faults",
            get(faults_get)
                .post(faults_post)
                .route_layer(middleware::from_fn_with_state(control, control::guard)),
        )
        .fallback(site)
        .layer(middleware::from_fn_with_state(
            deadline,
            conn::body_deadline,
        ))
        .layer(DefaultBodyLimit::max(config.body_limit));
    match config.fidelity.cors {
        Cors::Closed => router.with_state(state),
        Cors::Any => router.layer(CorsLayer::permissive()).with_state(state),
    }
}

/// Counts a `/reality2` answer in `requests`.
async fn count_request(State(state): State<AppState>, response: Response) -> Response {
    Stats::bump(&state.node.stats().requests);
    response
}

/// Counts a `/reality2` request in `requests_in_flight` while it is
/// answered, and its peak in `requests_in_flight_max`.
async fn count_in_flight(
    State(state): State<AppState>,
    request: Request,
    next: middleware::Next,
) -> Response {
    let _now = state.node.gauge(|s| &s.requests_in_flight);
    let stats = state.node.stats();
    Stats::peak(&stats.requests_in_flight_max, &stats.requests_in_flight);
    next.run(request).await
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub node: Node,
    pub ws: ws::Settings,
    sites: Option<Arc<Sites>>,
}

// ---------------------------------------------------------------- answers

/// An answer that is not a GraphQL result: Absinthe.Plug's input errors and
/// Phoenix's error pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Absinthe.Plug: `{"errors":[{"message": ...}]}` with this status.
    Absinthe(StatusCode, &'static str),
    /// Phoenix's ErrorJSON: `{"errors":{"detail": <reason phrase>}}`.
    Phoenix(StatusCode),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Refusal::Absinthe(status, message) => {
                (status, json!({ "errors": [{ "message": message }] }))
            }
            Refusal::Phoenix(status) => (
                status,
                json!({ "errors": { "detail": plug_reason(status) } }),
            ),
        };
        json_response(status, &body)
    }
}

/// The reason phrase Plug gives a status (Phoenix's ErrorJSON shows it).
fn plug_reason(status: StatusCode) -> &'static str {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "Request Entity Too Large",
        other => other.canonical_reason().unwrap_or("Error"),
    }
}

/// `body` as JSON with `status`.
fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            )],
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A GraphQL result as Absinthe writes it: `data` when the document ran
/// (even if `null` because a non-null root field failed), `errors` when
/// there are any.
#[derive(Debug, Serialize)]
pub(crate) struct GraphqlBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a async_graphql::Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [async_graphql::ServerError],
}

impl<'a> GraphqlBody<'a> {
    /// async-graphql writes `"data": null` also for a document that did not
    /// parse or validate; those errors have no `path`, a resolver's have one.
    pub(crate) fn of(response: &'a async_graphql::Response) -> GraphqlBody<'a> {
        let ran = response.data != async_graphql::Value::Null
            || response.errors.is_empty()
            || response.errors.iter().any(|e| !e.path.is_empty());
        GraphqlBody {
            data: ran.then_some(&response.data),
            errors: &response.errors,
        }
    }

    /// Whether the document ran (Absinthe's `%{data: _}` result).
    pub(crate) fn ran(&self) -> bool {
        self.data.is_some()
    }

    /// As a JSON value, for a websocket frame.
    pub(crate) fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

// ---------------------------------------------------------------- requests

/// A GraphQL request's fields, from the query string and the body.
type Params = Map<String, Value>;

/// Builds the async-graphql request from `params` (Absinthe.Plug's
/// `Request.Query.parse`): `raw_body` is the document when there is no
/// `query` field (a body that no parser read).
pub(crate) fn graphql_request(
    params: &Params,
    raw_body: Option<&str>,
) -> Result<async_graphql::Request, Refusal> {
    let document = match params.get("query") {
        Some(Value::String(query)) => query.as_str(),
        Some(_) => "",
        None => raw_body.unwrap_or(""),
    };
    if document.is_empty() {
        return Err(Refusal::Absinthe(StatusCode::BAD_REQUEST, NO_QUERY));
    }
    let variables = variables(params.get("variables"))
        .ok_or(Refusal::Absinthe(StatusCode::BAD_REQUEST, BAD_VARIABLES))?;
    let mut request = async_graphql::Request::new(document)
        .variables(async_graphql::Variables::from_json(variables));
    if let Some(Value::String(name)) = params.get("operationName") {
        if !name.is_empty() {
            request = request.operation_name(name.as_str());
        }
    }
    Ok(request)
}

/// `variables` as an object: absent, `null`, `""` and `"null"` are empty; a
/// string must hold a JSON object. `None` when they cannot be decoded.
fn variables(value: Option<&Value>) -> Option<Value> {
    match value {
        None | Some(Value::Null) => Some(json!({})),
        Some(Value::Object(_)) => value.cloned(),
        Some(Value::String(text)) if text.is_empty() || text == "null" => Some(json!({})),
        Some(Value::String(text)) => match serde_json::from_str(text) {
            Ok(Value::Object(map)) => Some(Value::Object(map)),
            Ok(Value::Null) => Some(json!({})),
            _ => None,
        },
        Some(_) => None,
    }
}

/// The type of the operation `request` would run, if its document parses
/// and names one operation (the parsed document stays in the request).
pub fn operation_type(request: &mut async_graphql::Request) -> Option<OperationType> {
    let name = request.operation_name.clone();
    match (&request.parsed_query().ok()?.operations, name.as_deref()) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// Documents longer than this are parsed every time rather than kept.
const CACHED_DOCUMENT_MAX: usize = 4096;
/// How many parsed documents are kept; the cache starts over when full.
const CACHED_DOCUMENTS: usize = 256;

/// Parsed documents by their text. Clients send the same few operations
/// again and again, and parsing was a quarter of a request's cost.
#[derive(Debug, Default)]
pub(crate) struct Documents {
    parsed: Mutex<HashMap<String, ExecutableDocument>>,
}

impl Documents {
    /// `request` with its document already parsed, from the cache when the
    /// text was seen before. A document that does not parse is left for
    /// async-graphql to report.
    pub(crate) fn prepare(&self, mut request: async_graphql::Request) -> async_graphql::Request {
        let cacheable = request.query.len() <= CACHED_DOCUMENT_MAX;
        let Ok(parsed) = self.parsed.lock() else {
            return request;
        };
        if let Some(document) = parsed.get(&request.query) {
            request.set_parsed_query(document.clone());
            return request;
        }
        drop(parsed);
        let document = match request.parsed_query() {
            Ok(document) if cacheable => document.clone(),
            _ => return request,
        };
        if let Ok(mut parsed) = self.parsed.lock() {
            if parsed.len() >= CACHED_DOCUMENTS {
                parsed.clear();
            }
            parsed.insert(request.query.clone(), document);
        }
        request
    }
}

/// `application/x-www-form-urlencoded` pairs as string params; like Plug, a
/// name or value that is not UTF-8 once decoded is a bad request.
fn urlencoded(text: &[u8]) -> Result<Params, Refusal> {
    let decode = |part: &[u8]| {
        let spaced: Vec<u8> = part
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        percent_encoding::percent_decode(&spaced)
            .decode_utf8()
            .map(|text| text.into_owned())
            .map_err(|_| Refusal::Phoenix(StatusCode::BAD_REQUEST))
    };
    let mut params = Params::new();
    for pair in text.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
        let mut halves = pair.splitn(2, |&b| b == b'=');
        let name = decode(halves.next().unwrap_or_default())?;
        let value = decode(halves.next().unwrap_or_default())?;
        params.insert(name, Value::String(value));
    }
    Ok(params)
}

/// Query-string pairs as string params (Plug's `fetch_query_params`).
fn query_params(query: Option<&str>) -> Result<Params, Refusal> {
    urlencoded(query.unwrap_or("").as_bytes())
}

/// A `Content-Type` header's media type, lower-case, without parameters.
fn media_type(content_type: Option<&str>) -> String {
    content_type
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// What `POST /reality2` makes of its query string, `Content-Type` and body
/// before running anything: the GraphQL request (its document not parsed
/// yet: see [`operation_type`]), or the refusal answered instead. Pure, so
/// that it can be fuzzed.
pub fn parse_graphql_request(
    query: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<async_graphql::Request, Refusal> {
    post_params(query, content_type, body)
        .and_then(|(params, raw)| graphql_request(&params, raw.as_deref()))
}

/// Params from the query string overlaid with the body's (Plug.Parsers'
/// `:json` and `:urlencoded`), plus the raw body when no parser took it.
fn post_params(
    query: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(Params, Option<String>), Refusal> {
    let mut params = query_params(query)?;
    let media = media_type(content_type);
    if media == "application/json" || media.ends_with("+json") {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => params.extend(map),
            Ok(_) => return Err(Refusal::Absinthe(StatusCode::BAD_REQUEST, NO_QUERY)),
            Err(_) if body.iter().all(u8::is_ascii_whitespace) => {}
            Err(_) => return Err(Refusal::Phoenix(StatusCode::BAD_REQUEST)),
        }
        Ok((params, None))
    } else if media == "application/x-www-form-urlencoded" {
        params.extend(urlencoded(body)?);
        Ok((params, None))
    } else {
        let raw =
            std::str::from_utf8(body).map_err(|_| Refusal::Phoenix(StatusCode::BAD_REQUEST))?;
        Ok((params, Some(raw.to_owned())))
    }
}

async fn execute(state: &AppState, request: async_graphql::Request) -> Response {
    let request = state.ws.documents.prepare(request);
    let response = state.node.schema().execute(request).await;
    let max = state.node.limits().max_response_bytes;
    match serde_json::to_vec(&GraphqlBody::of(&response)) {
        Ok(bytes) if bytes.len() > max => {
            limits::Hit::ResponseBytes.count(state.node.stats());
            json_response(StatusCode::OK, &limits::too_large(bytes.len(), max))
        }
        Ok(bytes) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            )],
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Applies the faults of a `/reality2` request: waits out its latency, and
/// answers an injected error instead of running it.
async fn injected_fault(state: &AppState) -> Option<Response> {
    let fault = state.node.faults().request()?;
    if let Some(delay) = fault.delay {
        tokio::time::sleep(delay).await;
    }
    if !fault.fail {
        return None;
    }
    Stats::bump(&state.node.stats().injected_errors);
    Some(Refusal::Phoenix(StatusCode::INTERNAL_SERVER_ERROR).into_response())
}

async fn graphql_post(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(injected) = injected_fault(&state).await {
        return injected;
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Refusal::Phoenix(StatusCode::PAYLOAD_TOO_LARGE).into_response()
        }
        Err(_) => return Refusal::Phoenix(StatusCode::BAD_REQUEST).into_response(),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    match parse_graphql_request(query.as_deref(), content_type, &body) {
        Ok(request) => execute(&state, request).await,
        Err(refusal) => refusal.into_response(),
    }
}

async fn graphql_get(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    if let Some(injected) = injected_fault(&state).await {
        return injected;
    }
    let request = query_params(query.as_deref())
        .and_then(|p| graphql_request(&p, None))
        .map(|request| state.ws.documents.prepare(request));
    match request {
        Ok(mut request) => {
            if operation_type(&mut request) == Some(OperationType::Mutation) {
                let refusal = Refusal::Absinthe(StatusCode::METHOD_NOT_ALLOWED, MUTATION_OVER_GET);
                return refusal.into_response();
            }
            execute(&state, request).await
        }
        Err(refusal) => refusal.into_response(),
    }
}

async fn stats(State(state): State<AppState>) -> Json<Value> {
    Json(state.node.stats_json())
}

async fn faults_get(State(state): State<AppState>) -> Response {
    json_response(StatusCode::OK, &state.node.faults().current())
}

async fn faults_post(State(state): State<AppState>, body: Bytes) -> Response {
    match FaultSpec::from_json(&body).and_then(|spec| state.node.apply_faults(spec)) {
        Ok(()) => faults_get(State(state)).await,
        Err(e) => json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "errors": { "detail": with_causes(&e) } }),
        ),
    }
}

/// `error` and its causes, `": "`-separated.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

// ---------------------------------------------------------------- sites

/// The `--sites` folder: `/NAME` and `/NAME/` serve `NAME/index.html`
/// (whatever the query string), other paths the files below.
struct Sites {
    root: PathBuf,
    files: ServeDir,
    confined: Confined,
}

impl Sites {
    fn new(root: &Path) -> Arc<Sites> {
        Arc::new(Sites {
            root: root.to_path_buf(),
            files: ServeDir::new(root),
            confined: Confined::new(root),
        })
    }

    /// The path `/NAME/` (plus the query) when `path` is `/NAME` and NAME is
    /// a folder of the site root, so that ServeDir answers its `index.html`
    /// instead of redirecting.
    async fn folder_uri(&self, uri: &Uri) -> Option<Uri> {
        let name = uri.path().strip_prefix('/')?;
        let plain =
            !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '%']);
        if !plain
            || !tokio::fs::metadata(self.root.join(name))
                .await
                .ok()?
                .is_dir()
        {
            return None;
        }
        let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
        format!("/{name}/{query}").parse().ok()
    }
}

/// Everything no route takes: a site file, or Phoenix's 404.
async fn site(State(state): State<AppState>, mut request: Request) -> Response {
    let Some(sites) = state.sites else {
        return Refusal::Phoenix(StatusCode::NOT_FOUND).into_response();
    };
    if let Some(uri) = sites.folder_uri(request.uri()).await {
        *request.uri_mut() = uri;
    }
    if !sites.confined.allows(request.uri().path()).await {
        return Refusal::Phoenix(StatusCode::NOT_FOUND).into_response();
    }
    match sites.files.clone().oneshot(request).await {
        Ok(response) if response.status() == StatusCode::NOT_FOUND => {
            Refusal::Phoenix(StatusCode::NOT_FOUND).into_response()
        }
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(value: Value) -> Params {
        match value {
            Value::Object(map) => map,
            _ => Params::new(),
        }
    }

    #[test]
    fn variables_may_be_an_object_or_a_string_of_json() {
        let object = json!({"id": "x"});
        assert_eq!(variables(Some(&object)), Some(object.clone()));
        assert_eq!(variables(Some(&json!("{\"id\":\"x\"}"))), Some(object));
        for empty in [
            None,
            Some(json!(null)),
            Some(json!("")),
            Some(json!("null")),
        ] {
            assert_eq!(variables(empty.as_ref()), Some(json!({})), "{empty:?}");
        }
        for bad in [json!("{oops"), json!("[1]"), json!(3), json!([1])] {
            assert_eq!(variables(Some(&bad)), None, "{bad}");
        }
    }

    #[test]
    fn a_request_needs_a_document() {
        for p in [json!({}), json!({"query": ""}), json!({"query": 5})] {
            let refusal = graphql_request(&params(p.clone()), None).expect_err("no document");
            assert_eq!(
                refusal,
                Refusal::Absinthe(StatusCode::BAD_REQUEST, NO_QUERY),
                "{p}"
            );
        }
        let raw = graphql_request(&Params::new(), Some("{ sentantAll { id } }")).expect("raw");
        assert_eq!(raw.query, "{ sentantAll { id } }");
        let bad = graphql_request(&params(json!({"query": "{a}", "variables": "{"})), None);
        assert_eq!(
            bad.expect_err("bad variables"),
            Refusal::Absinthe(StatusCode::BAD_REQUEST, BAD_VARIABLES)
        );
    }

    #[test]
    fn operation_name_picks_the_operation() {
        let doc = "query A { sentantAll { id } } mutation B { nodeLock }";
        let type_of = |query: &str, name: Option<&str>| {
            let mut p = json!({"query": query});
            if let Some(name) = name {
                p["operationName"] = json!(name);
            }
            let mut request = graphql_request(&params(p), None).expect("has a document");
            operation_type(&mut request)
        };
        assert_eq!(type_of(doc, Some("A")), Some(OperationType::Query));
        assert_eq!(type_of(doc, Some("B")), Some(OperationType::Mutation));
        assert_eq!(type_of(doc, None), None);
        assert_eq!(type_of(doc, Some("")), None);
        assert_eq!(
            type_of("mutation M { nodeLock }", None),
            Some(OperationType::Mutation)
        );
        assert_eq!(
            type_of("{ sentantAll { id } }", None),
            Some(OperationType::Query)
        );
        assert_eq!(type_of("mutation {", None), None);
    }

    #[test]
    fn body_params_overlay_the_query_string() {
        let form = Some("application/x-www-form-urlencoded");
        let body = b"query=%7B+a+%7D&variables=%7B%7D";
        let (p, raw) =
            post_params(Some("query=ignored&operationName=X"), form, body).expect("form parses");
        assert_eq!(p["query"], json!("{ a }"));
        assert_eq!(p["variables"], json!("{}"));
        assert_eq!(p["operationName"], json!("X"));
        assert_eq!(raw, None);

        let json = Some("Application/JSON; charset=utf-8");
        let (p, _) = post_params(None, json, br#"{"query":"{ b }"}"#).expect("json parses");
        assert_eq!(p["query"], json!("{ b }"));
        assert_eq!(
            post_params(None, json, b"{nope"),
            Err(Refusal::Phoenix(StatusCode::BAD_REQUEST))
        );
        assert_eq!(
            post_params(None, json, b"[1]"),
            Err(Refusal::Absinthe(StatusCode::BAD_REQUEST, NO_QUERY))
        );

        let (_, raw) = post_params(None, Some("application/graphql"), b"{ c }").expect("raw");
        assert_eq!(raw.as_deref(), Some("{ c }"));
        let (_, raw) = post_params(None, None, b"{ d }").expect("no content type: raw");
        assert_eq!(raw.as_deref(), Some("{ d }"));
    }

    #[test]
    fn documents_are_parsed_once_and_kept_within_bounds() {
        let documents = Documents::default();
        let kept = |d: &Documents| d.parsed.lock().map(|p| p.len()).unwrap_or(usize::MAX);
        let mut first = documents.prepare(async_graphql::Request::new("{ sentantAll { id } }"));
        assert_eq!(kept(&documents), 1);
        let mut again = documents.prepare(async_graphql::Request::new("{ sentantAll { id } }"));
        assert_eq!(kept(&documents), 1);
        assert_eq!(operation_type(&mut first), operation_type(&mut again));
        documents.prepare(async_graphql::Request::new("{ broken"));
        documents.prepare(async_graphql::Request::new(format!(
            "{{ a{} }}",
            " ".repeat(5000)
        )));
        assert_eq!(
            kept(&documents),
            1,
            "neither broken nor huge documents are kept"
        );
        for n in 0..CACHED_DOCUMENTS + 10 {
            documents.prepare(async_graphql::Request::new(format!("{{ f{n} }}")));
        }
        assert!(kept(&documents) <= CACHED_DOCUMENTS);
    }

    #[test]
    fn urlencoded_pairs_decode_like_plug() {
        let p = urlencoded(b"query=%7B+a+%7D&variables=&flag&x=1%3D2&&").expect("valid");
        assert_eq!(p["query"], json!("{ a }"));
        assert_eq!(p["variables"], json!(""));
        assert_eq!(p["flag"], json!(""));
        assert_eq!(p["x"], json!("1=2"));
        assert_eq!(p.len(), 4);
        for bad in [&b"q=%FF"[..], b"%C3=1", &[b'q', b'=', 0xff]] {
            assert_eq!(
                urlencoded(bad),
                Err(Refusal::Phoenix(StatusCode::BAD_REQUEST))
            );
        }
    }

    #[test]
    fn refusals_render_as_absinthe_and_phoenix_do() {
        let absinthe = Refusal::Absinthe(StatusCode::BAD_REQUEST, NO_QUERY).into_response();
        assert_eq!(absinthe.status(), StatusCode::BAD_REQUEST);
        let phoenix = Refusal::Phoenix(StatusCode::PAYLOAD_TOO_LARGE).into_response();
        assert_eq!(phoenix.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            phoenix.headers()[header::CONTENT_TYPE],
            "application/json; charset=utf-8"
        );
    }

    /// The status and JSON body `app` answers to `request`.
    async fn oneshot(request: axum::http::Request<Body>) -> (StatusCode, Value) {
        let app = app(Node::new(), &Config::loopback());
        let response = app.oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn a_streamed_body_over_the_limit_is_413_without_a_content_length() {
        let chunk = Bytes::from(vec![b' '; 64 * 1024]);
        let chunks = (0..20).map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
        let request = axum::http::Request::post("/reality2")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from_stream(futures::stream::iter(chunks)))
            .expect("request");
        let (status, body) = oneshot(request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            body,
            json!({"errors": {"detail": "Request Entity Too Large"}})
        );
    }

    #[tokio::test]
    async fn stats_and_queries_answer_through_the_router() {
        let get = |uri: &str| {
            axum::http::Request::get(uri)
                .body(Body::empty())
                .expect("request")
        };
        let (status, stats) = oneshot(get("/r2-node/stats")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(stats["sockets"], 0);
        let (status, all) = oneshot(get(
            "/reality2?query=%7B%20sentantAll%20%7B%20id%20%7D%20%7D",
        ))
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(all, json!({"data": {"sentantAll": []}}));
        let (status, _) = oneshot(get("/reality2?query=mutation%20%7B%20nodeLock%20%7D")).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn graphql_body_leaves_out_data_only_when_nothing_ran() {
        use async_graphql::{PathSegment, Response as GqlResponse, ServerError};
        let ok = GqlResponse::new(async_graphql::Value::from_json(json!({"a": 1})).expect("v"));
        assert_eq!(GraphqlBody::of(&ok).to_json(), json!({"data": {"a": 1}}));
        let invalid = GqlResponse::from_errors(vec![ServerError::new("bad", None)]);
        let body = GraphqlBody::of(&invalid);
        assert!(!body.ran());
        assert_eq!(body.to_json(), json!({"errors": [{"message": "bad"}]}));
        let mut failed_root = ServerError::new("id", None);
        failed_root.path = vec![PathSegment::Field("sentantSend".into())];
        let failed = GqlResponse::from_errors(vec![failed_root]);
        let body = GraphqlBody::of(&failed);
        assert!(body.ran());
        assert_eq!(
            body.to_json(),
            json!({"data": null, "errors": [{"message": "id", "path": ["sentantSend"]}]})
        );
    }
}
