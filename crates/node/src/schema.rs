//! The GraphQL schema the node serves, as the real node's Absinthe schema
//! declares it (`RootQueryType`, `RootMutationType`, `RootSubscriptionType`,
//! `Sentant`, `SentantEvent`, `Swarm`, `SignalOutput`, scalars `UUID4` and
//! `Json`), on top of the sentant [`Registry`].
//!
//! Resolver errors are the real node's short words: `definition`, `id`,
//! `name`, `name_or_id`, `invalid_event`, `parameters` (this node refuses
//! `sentantSend` parameters that are not a JSON object), `invalid_signal`.
//! An argument of the wrong type fails validation with Absinthe's message,
//! `Argument "id" has invalid value $id.` (see [`Documents`]).
//!
//! `awaitSignal` decides during the first poll of its stream: a signal that
//! is not public (`debug` always is) makes the first item an error response
//! at once; an unknown sentant does too, after the registry's
//! [`Patience`](crate::fidelity::Patience) (about 1 s, as the real node; at
//! once with `--lenient`). A valid subscription is registered, and the
//! request's [`Acceptance`] told, before the stream is `Pending` until the
//! sentant publishes.
//!
//! As the real node, `sentantGet(id)`, `sentantSend` and `sentantUnload` also
//! look for an unknown id with that patience before answering (a sentant
//! that appears meanwhile is found), and `description` is `""` for a
//! definition without one ([`MissingDescription`]).

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{
    Context, Error, InputValueError, InputValueResult, Name, Object, Pos, Result, Scalar,
    ScalarType, Schema, ServerError, ServerResult, SimpleObject, Subscription, ValidationResult,
    Value, Variables,
};
use futures::Stream;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::fidelity::MissingDescription;
use crate::limits::{AliasLimit, Hit};
use crate::sentant::{Registry, SendError, Sentant, SentantDef, Signal, SwarmDef};
use crate::stats::Stats;

/// The node's schema.
pub type R2Schema = Schema<Query, Mutation, Subscription>;

/// Builds the schema over `registry` (which it holds as schema data).
pub fn build(registry: Arc<Registry>) -> R2Schema {
    let limits = registry.limits().clone();
    let aliases = AliasLimit {
        max: limits.max_query_aliases,
        stats: Arc::clone(registry.stats()),
    };
    Schema::build(Query, Mutation, Subscription)
        .data(registry)
        .extension(Documents::default())
        .extension(aliases)
        .limit_depth(limits.max_query_depth)
        .limit_complexity(limits.max_query_complexity)
        .finish()
}

/// A resolver error whose message is one of the real node's words, keeping its cause.
fn word(message: &str, cause: impl Any + Send + Sync) -> Error {
    Error {
        message: message.to_owned(),
        source: Some(Arc::new(cause)),
        extensions: None,
    }
}

fn registry<'a>(ctx: &Context<'a>) -> Result<&'a Arc<Registry>> {
    ctx.data::<Arc<Registry>>()
}

/// The live sentant with this id, looked for with the registry's patience
/// when it is not loaded (the real node's `wait_until_alive`).
async fn live(registry: &Registry, id: Uuid) -> Option<Arc<Sentant>> {
    let patience = registry.fidelity().unknown_ids;
    patience.find(|| registry.get(id)).await
}

/// Request data a transport adds to an `awaitSignal` request to learn when
/// the subscription is accepted (a refusal is the stream's first item).
pub struct Acceptance(std::sync::Mutex<Option<oneshot::Sender<()>>>);

impl Acceptance {
    /// The data to add to the request, and what resolves when it is accepted
    /// (with an error if it never is).
    pub fn new() -> (Acceptance, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        (Acceptance(std::sync::Mutex::new(Some(tx))), rx)
    }

    fn accept(&self) {
        let sender = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(sender) = sender {
            // The transport may have stopped waiting: nothing to tell then.
            let _ = sender.send(());
        }
    }
}

/// `UUID4`: a hyphenated UUID string (what the real node's `Ecto.UUID.cast` takes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uuid4(pub Uuid);

impl Uuid4 {
    fn read(value: &Value) -> Option<Uuid> {
        match value {
            Value::String(s) if s.len() == 36 => Uuid::try_parse(s).ok(),
            _ => None,
        }
    }
}

#[Scalar(name = "UUID4")]
impl ScalarType for Uuid4 {
    fn parse(value: Value) -> InputValueResult<Self> {
        Uuid4::read(&value)
            .map(Uuid4)
            .ok_or_else(|| InputValueError::expected_type(value))
    }

    fn is_valid(value: &Value) -> bool {
        Uuid4::read(value).is_some()
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.hyphenated().to_string())
    }
}

/// `Json`: as input, a string holding JSON text (anything else is refused);
/// as output, the JSON value itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Json(pub serde_json::Value);

impl Json {
    fn read(value: &Value) -> Option<serde_json::Value> {
        match value {
            Value::String(text) => serde_json::from_str(text).ok(),
            _ => None,
        }
    }
}

#[Scalar(name = "Json")]
impl ScalarType for Json {
    fn parse(value: Value) -> InputValueResult<Self> {
        Json::read(&value)
            .map(Json)
            .ok_or_else(|| InputValueError::expected_type(value))
    }

    fn is_valid(value: &Value) -> bool {
        Json::read(value).is_some()
    }

    fn to_value(&self) -> Value {
        to_graphql(&self.0)
    }
}

/// A JSON value as a GraphQL value.
fn to_graphql(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => Value::Number(n.clone()),
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(items) => Value::List(items.iter().map(to_graphql).collect()),
        serde_json::Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (Name::new(k), to_graphql(v)))
                .collect(),
        ),
    }
}

/// The GraphQL `Sentant`.
pub struct SentantObject(pub Arc<Sentant>);

#[Object(name = "Sentant")]
impl SentantObject {
    async fn id(&self) -> Uuid4 {
        Uuid4(self.0.id)
    }

    async fn name(&self) -> &str {
        self.0.name()
    }

    /// `""` when the definition has none ([`MissingDescription::Empty`]).
    async fn description(&self, ctx: &Context<'_>) -> Option<&str> {
        let missing = registry(ctx).map(|r| r.fidelity().description);
        match (self.0.def.description.as_deref(), missing) {
            (Some(description), _) => Some(description),
            (None, Ok(MissingDescription::Empty)) => Some(""),
            (None, _) => None,
        }
    }

    /// The transitions marked `"public": true`.
    async fn events(&self) -> Option<Vec<Option<SentantEvent>>> {
        let event = |e: &crate::sentant::PublicEvent| SentantEvent {
            event: e.event.clone(),
            parameters: Some(Json(e.parameters.clone())),
        };
        Some(self.0.def.events().iter().map(event).map(Some).collect())
    }

    /// The events of `signal` actions marked public.
    async fn signals(&self) -> Option<Vec<Option<&str>>> {
        Some(
            self.0
                .def
                .signals()
                .iter()
                .map(|s| Some(s.as_str()))
                .collect(),
        )
    }
}

/// The GraphQL `SentantEvent`.
#[derive(SimpleObject)]
pub struct SentantEvent {
    event: String,
    parameters: Option<Json>,
}

/// The GraphQL `Swarm`.
#[derive(SimpleObject)]
pub struct Swarm {
    name: String,
    description: Option<String>,
    sentants: Option<Vec<Option<SentantObject>>>,
}

/// The GraphQL `SignalOutput`.
pub struct SignalOutput(pub Arc<Signal>);

#[Object]
impl SignalOutput {
    async fn sentant(&self) -> SentantObject {
        SentantObject(Arc::clone(&self.0.sentant))
    }

    async fn event(&self) -> &str {
        &self.0.event
    }

    async fn parameters(&self) -> Option<Json> {
        Some(Json(serde_json::Value::Object(self.0.parameters.clone())))
    }

    async fn passthrough(&self) -> Option<Json> {
        Some(Json(self.0.passthrough.clone())).filter(|json| !json.0.is_null())
    }
}

/// `RootQueryType`.
pub struct Query;

#[Object(name = "RootQueryType")]
impl Query {
    /// A sentant by name (looked at first) or id.
    /// Unknown → `null` and an error, as Absinthe answers a nullable field.
    async fn sentant_get(
        &self,
        ctx: &Context<'_>,
        name: Option<String>,
        id: Option<Uuid4>,
    ) -> Option<SentantObject> {
        let found = match (registry(ctx), name, id) {
            (Err(e), _, _) => Err(e),
            (Ok(registry), Some(name), _) => registry
                .get_by_name(&name)
                .ok_or_else(|| word("name", name)),
            (Ok(registry), None, Some(id)) => {
                live(registry, id.0).await.ok_or_else(|| word("id", id.0))
            }
            (Ok(_), None, None) => Err(word("name_or_id", ())),
        };
        match found {
            Ok(sentant) => Some(SentantObject(sentant)),
            Err(error) => {
                ctx.add_error(ctx.set_error_path(error.into_server_error(ctx.item.pos)));
                None
            }
        }
    }

    /// Every loaded sentant, oldest first.
    async fn sentant_all(&self, ctx: &Context<'_>) -> Result<Option<Vec<Option<SentantObject>>>> {
        Ok(Some(
            registry(ctx)?
                .all()
                .into_iter()
                .map(|s| Some(SentantObject(s)))
                .collect(),
        ))
    }
}

/// `RootMutationType`.
pub struct Mutation;

#[Object(name = "RootMutationType")]
impl Mutation {
    /// Loads (or redefines, by name) a sentant from JSON or YAML text.
    async fn sentant_load(&self, ctx: &Context<'_>, definition: String) -> Result<SentantObject> {
        let def = SentantDef::parse(&definition).map_err(|e| word("definition", e))?;
        let sentant = registry(ctx)?
            .try_load(def)
            .map_err(|e| word(Hit::Sentants.word(), e))?;
        Ok(SentantObject(sentant))
    }

    /// Unloads a sentant and returns it as it was.
    async fn sentant_unload(&self, ctx: &Context<'_>, id: Uuid4) -> Result<SentantObject> {
        let registry = registry(ctx)?;
        live(registry, id.0).await;
        let sentant = registry.unload(id.0).ok_or_else(|| word("id", id.0))?;
        Ok(SentantObject(sentant))
    }

    /// Loads every valid sentant of a swarm definition.
    async fn swarm_load(&self, ctx: &Context<'_>, definition: String) -> Result<Swarm> {
        let swarm = SwarmDef::parse(&definition).map_err(|e| word("definition", e))?;
        let registry = registry(ctx)?;
        let max = registry.limits().max_swarm;
        if swarm.sentants.len() > max {
            Hit::Swarm.count(registry.stats());
            let size = swarm.sentants.len();
            return Err(word(Hit::Swarm.word(), format!("{size} sentants > {max}")));
        }
        let sentants = swarm
            .sentants
            .into_iter()
            .map(|def| registry.try_load(def).map(|s| Some(SentantObject(s))))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| word(Hit::Sentants.word(), e))?;
        Ok(Swarm {
            name: swarm.name,
            description: swarm.description,
            sentants: Some(sentants),
        })
    }

    /// Queues a public event for a sentant and returns the sentant at once.
    async fn sentant_send(
        &self,
        ctx: &Context<'_>,
        id: Uuid4,
        event: String,
        parameters: Option<Json>,
        passthrough: Option<Json>,
    ) -> Result<SentantObject> {
        let or_empty = |json: Option<Json>| json.map_or(serde_json::Value::Null, |j| j.0);
        let passthrough = match or_empty(passthrough) {
            serde_json::Value::Null => serde_json::Value::Object(serde_json::Map::new()),
            other => other,
        };
        let registry = registry(ctx)?;
        live(registry, id.0).await;
        let sentant = registry
            .send(id.0, &event, or_empty(parameters), passthrough)
            .map_err(|e| {
                let message = match e {
                    SendError::UnknownId => "id",
                    SendError::InvalidEvent => "invalid_event",
                    SendError::Parameters => "parameters",
                };
                word(message, e)
            })?;
        if event == "update" {
            Stats::bump(&registry.stats().updates);
        }
        Ok(SentantObject(sentant))
    }

    /// The real node's schema has no lock mutation; this node is never locked
    /// and answers `true`.
    async fn node_lock(&self) -> Option<bool> {
        Some(true)
    }
}

/// `RootSubscriptionType`.
pub struct Subscription;

#[Subscription(name = "RootSubscriptionType")]
impl Subscription {
    /// The signals `signal` of the sentant `id`, as it publishes them.
    async fn await_signal(
        &self,
        ctx: &Context<'_>,
        id: Uuid4,
        signal: String,
    ) -> Result<impl Stream<Item = Option<SignalOutput>>> {
        let registry = registry(ctx)?;
        live(registry, id.0).await;
        let receiver = registry.subscribe(id.0, &signal).map_err(|e| match e {
            crate::sentant::SubscribeError::TooMany => word(Hit::SubscriptionsPerSentant.word(), e),
            _ => word("invalid_signal", e),
        })?;
        if let Some(acceptance) = ctx.data_opt::<Acceptance>() {
            acceptance.accept();
        }
        let alive = registry.stats().gauge(|s| &s.subscriptions);
        Ok(futures::stream::unfold(
            (receiver, alive),
            |(mut receiver, alive)| async move {
                let signal = receiver.recv().await?;
                Some((Some(SignalOutput(signal)), (receiver, alive)))
            },
        ))
    }
}

/// The schema's extension: parses each distinct document once (the real
/// clients send the same few texts over and over, and parsing is the largest
/// part of a request's cost), and rewrites async-graphql's `Invalid value for
/// argument "id", expected type "UUID4"` validation errors into Absinthe's
/// `Argument "id" has invalid value $id.` (the value as written in the
/// document: a variable or a literal).
#[derive(Default)]
pub struct Documents {
    parsed: Arc<RwLock<HashMap<Arc<str>, ExecutableDocument>>>,
}

impl Documents {
    /// How many distinct documents are kept; when full, the cache starts over.
    pub const CAPACITY: usize = 256;
    /// Longer documents are parsed every time.
    pub const LONGEST: usize = 8 * 1024;
}

impl ExtensionFactory for Documents {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(DocumentsForRequest {
            parsed: Arc::clone(&self.parsed),
            query: OnceLock::new(),
        })
    }
}

/// The per-request part of [`Documents`]: keeps the document's text.
struct DocumentsForRequest {
    parsed: Arc<RwLock<HashMap<Arc<str>, ExecutableDocument>>>,
    query: OnceLock<Arc<str>>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for DocumentsForRequest {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let cached = {
            let parsed = self.parsed.read().unwrap_or_else(PoisonError::into_inner);
            parsed
                .get_key_value(query)
                .map(|(text, doc)| (Arc::clone(text), doc.clone()))
        };
        if let Some((text, doc)) = cached {
            let _ = self.query.set(text);
            return Ok(doc);
        }
        let text: Arc<str> = Arc::from(query);
        let _ = self.query.set(Arc::clone(&text));
        let doc = next.run(ctx, query, variables).await?;
        if query.len() <= Documents::LONGEST {
            let mut parsed = self.parsed.write().unwrap_or_else(PoisonError::into_inner);
            if parsed.len() >= Documents::CAPACITY {
                parsed.clear();
            }
            parsed.insert(text, doc.clone());
        }
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|mut errors| {
            if let Some(query) = self.query.get() {
                errors
                    .iter_mut()
                    .for_each(|error| absinthe_message(query, error));
            }
            errors
        })
    }
}

/// Rewrites one invalid-argument error, when its argument can be found in `query`.
fn absinthe_message(query: &str, error: &mut ServerError) {
    if !error.message.starts_with("Invalid value for argument ") {
        return;
    }
    let Some(rest) = error
        .locations
        .first()
        .and_then(|pos| from_position(query, *pos))
    else {
        return;
    };
    let name_len = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let (name, after) = rest.split_at(name_len);
    let value = after
        .trim_start_matches(|c: char| c.is_whitespace() || c == ',')
        .strip_prefix(':')
        .map(|v| value_text(v.trim_start_matches(|c: char| c.is_whitespace() || c == ',')));
    if let Some(value) = value.filter(|v| !name.is_empty() && !v.is_empty()) {
        error.message = format!("Argument \"{name}\" has invalid value {value}.");
    }
}

/// The text of `query` from a 1-based line and column (in characters).
fn from_position(query: &str, pos: Pos) -> Option<&str> {
    let mut offset = 0;
    for line in query.split_inclusive('\n').take(pos.line.checked_sub(1)?) {
        offset += line.len();
    }
    let line = query.get(offset..)?;
    let column = line.char_indices().nth(pos.column.checked_sub(1)?)?.0;
    line.get(column..)
}

/// The GraphQL value at the start of `text`: `$name`, a string, a list or
/// object (brackets balanced, strings skipped), or a bare token.
fn value_text(text: &str) -> &str {
    let end = match text.chars().next() {
        Some('$') => text[1..]
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(text.len(), |i| i + 1),
        Some('"' | '[' | '{') => balanced_end(text),
        _ => text
            .find(|c: char| c.is_whitespace() || ",)}]".contains(c))
            .unwrap_or(text.len()),
    };
    &text[..end]
}

/// Where the string, list or object starting `text` ends (or the text's end).
fn balanced_end(text: &str) -> usize {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, c) in text.char_indices() {
        match (in_string, c) {
            (true, _) if escaped => escaped = false,
            (true, '\\') => escaped = true,
            (true, '"') => in_string = false,
            (true, _) => {}
            (false, '"') => in_string = true,
            (false, '[' | '{') => depth += 1,
            (false, ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth == 0 && !in_string {
            return i + c.len_utf8();
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_text_reads_variables_literals_and_structures() {
        let cases = [
            ("$id) { id }", "$id"),
            ("\"not-a-uuid\", event: \"e\")", "\"not-a-uuid\""),
            ("\"say \\\"hi\\\"\" rest", "\"say \\\"hi\\\"\""),
            ("{sensor: 42, s: \"}\"}) {", "{sensor: 42, s: \"}\"}"),
            ("[1, [2]] x", "[1, [2]]"),
            ("42)", "42"),
            ("\"unterminated", "\"unterminated"),
        ];
        for (text, expected) in cases {
            assert_eq!(value_text(text), expected, "{text}");
        }
    }

    #[test]
    fn positions_count_lines_and_characters() {
        let query = "query {\n  ü: sentantGet(id: $id) { id }\n}";
        assert_eq!(
            from_position(
                query,
                Pos {
                    line: 2,
                    column: 17
                }
            )
            .map(|s| &s[..3]),
            Some("id:")
        );
        assert_eq!(from_position(query, Pos { line: 9, column: 1 }), None);
        assert_eq!(from_position(query, Pos { line: 0, column: 1 }), None);
    }
}
