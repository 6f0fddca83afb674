//! Limits on what one client can make the node do: every limit is a flag
//! with a documented default, refuses with a clear error, and counts in
//! `/r2-node/stats` (`limit_*`) each time it is hit.
//!
//! # Layout
//!
//! - [`Limits`]: the flags (clap) and their defaults ([`Limits::default`]
//!   equals the command line without flags).
//! - [`Hit`]: which limit was hit; names its counter and its error word.
//! - [`json_size`]: the length a JSON value serialises to, counted no further
//!   than a budget (so a huge value costs no more than the budget to size).
//! - [`AliasLimit`]: the async-graphql extension that refuses documents with
//!   too many aliased fields (depth and complexity use async-graphql's own
//!   `limit_depth` and `limit_complexity`).
//! - [`MIN_PACED_DELAY`]: the delay from which a delayed send starts a new
//!   event chain instead of adding a hop.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, ValidationResult, Variables};
use serde_json::Value;

use crate::stats::Stats;

/// A delayed `send` of at least this long starts a new event chain (hop
/// count 0): it is paced by its delay, so a periodic self-send (a ticker)
/// runs for ever. Shorter delays count as immediate sends.
pub const MIN_PACED_DELAY: Duration = Duration::from_millis(10);

/// The limits, as flags.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct Limits {
    /// Limit: immediate sends in one event chain (a send carries a hop
    /// count; the send that would exceed it is dropped, so a self-send loop
    /// ends). Delayed sends of 10 ms or more start a new chain.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub max_hops: u32,
    /// Limit: events waiting in one sentant's inbox; more are dropped.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_inbox: usize,
    /// Limit: bytes of one interpolated value (a string with `__name__`
    /// references, or a `set` value); a larger one fails its action with
    /// `{"error": "value_bytes"}`.
    #[arg(long, value_name = "BYTES", default_value_t = 256 * 1024)]
    pub max_value_bytes: usize,
    /// Limit: bytes of the parameters of one send or signal (as JSON); a
    /// larger one is not sent and fails its action with
    /// `{"error": "parameters_bytes"}`.
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024)]
    pub max_parameters_bytes: usize,
    /// Limit: sentants loaded on the node; loading one more (a new name) fails
    /// with `sentants`.
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub max_sentants: usize,
    /// Limit: sentants in one `swarmLoad` (which bounds its `__internal`
    /// fan-out to N²/2 events); a larger swarm fails with `swarm_size`.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub max_swarm: usize,
    /// Limit: subscriptions open on one websocket; one more is answered
    /// with an error `subscriptions`.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_subscriptions_per_socket: usize,
    /// Limit: subscriptions to one sentant (all sockets); one more fails
    /// with `subscriptions`.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_subscriptions_per_sentant: usize,
    /// Limit: nesting depth of a GraphQL document.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub max_query_depth: usize,
    /// Limit: complexity of a GraphQL document (each field counts 1).
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub max_query_complexity: usize,
    /// Limit: aliased fields in a GraphQL document.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_query_aliases: usize,
    /// Limit: bytes of one GraphQL answer (HTTP body or websocket reply); a
    /// larger one is replaced by the error `response too large`.
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_response_bytes: usize,
}

impl Default for Limits {
    /// The command line's defaults.
    fn default() -> Limits {
        Limits {
            max_hops: 32,
            max_inbox: 1000,
            max_value_bytes: 256 * 1024,
            max_parameters_bytes: 1024 * 1024,
            max_sentants: 5000,
            max_swarm: 200,
            max_subscriptions_per_socket: 1000,
            max_subscriptions_per_sentant: 10_000,
            max_query_depth: 20,
            max_query_complexity: 5000,
            max_query_aliases: 256,
            max_response_bytes: 16 * 1024 * 1024,
        }
    }
}

/// A limit that was hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    Hops,
    Inbox,
    ValueBytes,
    ParametersBytes,
    Sentants,
    Swarm,
    SubscriptionsPerSocket,
    SubscriptionsPerSentant,
    QueryAliases,
    QueryDepthOrComplexity,
    ResponseBytes,
}

impl Hit {
    /// Counts this hit in `stats`.
    pub fn count(self, stats: &Stats) {
        Stats::bump(match self {
            Hit::Hops => &stats.limit_hops,
            Hit::Inbox => &stats.limit_inbox,
            Hit::ValueBytes => &stats.limit_value_bytes,
            Hit::ParametersBytes => &stats.limit_parameters_bytes,
            Hit::Sentants => &stats.limit_sentants,
            Hit::Swarm => &stats.limit_swarm,
            Hit::SubscriptionsPerSocket | Hit::SubscriptionsPerSentant => {
                &stats.limit_subscriptions
            }
            Hit::QueryAliases | Hit::QueryDepthOrComplexity => &stats.limit_query,
            Hit::ResponseBytes => &stats.limit_response_bytes,
        });
    }

    /// The error word (an action's `{"error": WORD}`, a resolver's message).
    pub fn word(self) -> &'static str {
        match self {
            Hit::Hops => "hops",
            Hit::Inbox => "inbox",
            Hit::ValueBytes => "value_bytes",
            Hit::ParametersBytes => "parameters_bytes",
            Hit::Sentants => "sentants",
            Hit::Swarm => "swarm_size",
            Hit::SubscriptionsPerSocket | Hit::SubscriptionsPerSentant => "subscriptions",
            Hit::QueryAliases => "too many aliases",
            Hit::QueryDepthOrComplexity => "query too deep or too complex",
            Hit::ResponseBytes => "response too large",
        }
    }
}

/// Limit hits of a pure computation (the automation machine), handed to
/// the registry to count.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Hits(pub Vec<Hit>);

impl Hits {
    /// Counts every hit in `stats` and forgets them.
    pub fn drain_into(&mut self, stats: &Stats) {
        self.0.drain(..).for_each(|hit| hit.count(stats));
    }
}

/// The length `value` serialises to as compact JSON, counted no further than
/// `budget` (the result is then `> budget`). Strings count their bytes plus
/// quotes (escapes are not counted).
pub fn json_size(value: &Value, budget: usize) -> usize {
    let mut size = 0usize;
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        size += match value {
            Value::Null => 4,
            Value::Bool(_) => 5,
            Value::Number(_) => 8,
            Value::String(s) => s.len() + 2,
            Value::Array(items) => {
                stack.extend(items.iter());
                2 + items.len()
            }
            Value::Object(map) => {
                stack.extend(map.values());
                2 + map.keys().map(|k| k.len() + 4).sum::<usize>()
            }
        };
        if size > budget {
            return size;
        }
    }
    size
}

/// [`json_size`] of an object's entries.
pub fn map_size(map: &serde_json::Map<String, Value>, budget: usize) -> usize {
    let mut size = 2usize;
    for (key, value) in map {
        size += key.len() + 4 + json_size(value, budget.saturating_sub(size));
        if size > budget {
            break;
        }
    }
    size
}

/// Refuses documents with more than `max` aliased fields (fragments
/// included, each counted once) before they are validated or run, and counts
/// the documents async-graphql refuses for their depth or complexity.
pub struct AliasLimit {
    pub max: usize,
    pub stats: Arc<Stats>,
}

impl ExtensionFactory for AliasLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AliasLimitForRequest {
            max: self.max,
            stats: Arc::clone(&self.stats),
        })
    }
}

struct AliasLimitForRequest {
    max: usize,
    stats: Arc<Stats>,
}

/// Aliased fields in `set` and below, counted no further than `budget`.
fn aliases(set: &SelectionSet, budget: usize) -> usize {
    let mut count = 0;
    let mut stack = vec![set];
    while let Some(set) = stack.pop() {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    count += usize::from(field.node.alias.is_some());
                    stack.push(&field.node.selection_set.node);
                }
                Selection::InlineFragment(fragment) => {
                    stack.push(&fragment.node.selection_set.node)
                }
                Selection::FragmentSpread(_) => {}
            }
            if count > budget {
                return count;
            }
        }
    }
    count
}

/// Aliased fields in a whole document.
pub fn document_aliases(document: &ExecutableDocument, budget: usize) -> usize {
    let operations = document
        .operations
        .iter()
        .map(|(_, op)| &op.node.selection_set.node);
    let fragments = document
        .fragments
        .values()
        .map(|fragment| &fragment.node.selection_set.node);
    let mut count = 0;
    for set in operations.chain(fragments) {
        count += aliases(set, budget.saturating_sub(count));
        if count > budget {
            break;
        }
    }
    count
}

#[async_graphql::async_trait::async_trait]
impl Extension for AliasLimitForRequest {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        if document_aliases(&document, self.max) > self.max {
            Hit::QueryAliases.count(&self.stats);
            return Err(ServerError::new(
                format!(
                    "{}: at most {} aliased fields",
                    Hit::QueryAliases.word(),
                    self.max
                ),
                None,
            ));
        }
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.inspect_err(|errors| {
            if errors
                .iter()
                .any(|e| is_depth_or_complexity_error(&e.message))
            {
                Hit::QueryDepthOrComplexity.count(&self.stats);
            }
        })
    }
}

/// The GraphQL answer that replaces one of `size` bytes, over `max`.
pub fn too_large(size: usize, max: usize) -> Value {
    serde_json::json!({ "errors": [{
        "message": format!("{}: more than {max} bytes ({size} or more)", Hit::ResponseBytes.word())
    }] })
}

/// Whether async-graphql refused a document for its depth or complexity
/// (its messages `Query is nested too deep.` and `Query is too complex.`).
pub fn is_depth_or_complexity_error(message: &str) -> bool {
    message == "Query is nested too deep." || message == "Query is too complex."
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_match_serialised_json_closely_and_stop_at_the_budget() {
        for value in [
            json!(null),
            json!({"a": "bcd", "n": [1, 2, {"x": true}]}),
            json!("plain"),
        ] {
            let exact = serde_json::to_string(&value).expect("json").len();
            let size = json_size(&value, usize::MAX);
            assert!(
                size >= exact / 2 && size <= exact * 3,
                "{value}: {size} vs {exact}"
            );
        }
        let huge = json!(vec!["x".repeat(1000); 1000]);
        assert!(json_size(&huge, 5000) > 5000);
        assert!(
            json_size(&huge, 5000) < 10_000,
            "stops soon after the budget"
        );
    }

    #[test]
    fn aliases_are_counted_in_operations_and_fragments() {
        let count = |text: &str| {
            let doc = async_graphql::parser::parse_query(text).expect("parses");
            document_aliases(&doc, usize::MAX)
        };
        assert_eq!(count("{ a: sentantAll { id } b: sentantAll { x: id } }"), 3);
        assert_eq!(
            count("query { ...F } fragment F on RootQueryType { c: sentantAll { id } }"),
            1
        );
        assert_eq!(count("{ sentantAll { id } }"), 0);
    }

    #[test]
    fn defaults_are_the_command_line_defaults() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            limits: Limits,
        }
        assert_eq!(Only::parse_from(["x"]).limits, Limits::default());
    }
}
