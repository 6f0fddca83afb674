//! Device mode's requests to the node, as the WebApp's sensor page makes
//! them: join (a free name, `sentantLoad`, `sentantGet`), the two sends per
//! value, `update` on connect, and unloading its own sentant — on "Leave",
//! and best-effort when the page goes away.

use r2_core::graphql::{self, ProtocolError, SentantAll};
use r2_core::webapp::{Fields, Request};
use serde_json::{json, Value};

use crate::net::{Client, NetError};

/// How many random names to try before giving up (each clash is a 1 in
/// 36^5 chance, so more than one try means something odd).
const NAME_TRIES: usize = 3;

/// Why device mode could not join.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error(transparent)]
    Http(#[from] NetError),
    #[error("the node's answer was not what a Reality2 node sends")]
    Protocol(#[from] ProtocolError),
    #[error("every name tried was taken ({0})")]
    NamesTaken(String),
}

/// A joined device: its sentant's id and name.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    pub id: String,
    pub name: String,
}

/// Picks a name not on the node (from `names`, tried in turn), reports it
/// through `naming`, loads the device template under it and reads it back.
/// Never loads over an existing sentant.
pub async fn join(
    http: &Client,
    mut names: impl FnMut() -> String,
    naming: impl Fn(&str),
) -> Result<Joined, JoinError> {
    let all = http
        .request_as::<Option<SentantAll>>(&Request::SentantAll {
            fields: Fields::Short,
        })
        .await?;
    let existing = graphql::sentants(all)?;
    let mut tried = Vec::new();
    let name = loop {
        let candidate = names();
        if !existing.iter().any(|s| s.name == candidate) {
            break candidate;
        }
        tried.push(candidate);
        if tried.len() == NAME_TRIES {
            return Err(JoinError::NamesTaken(tried.join(", ")));
        }
    };
    naming(&name);
    let definition = graphql::device_definition(&name);
    let loaded = http
        .request(&Request::SentantLoad {
            definition: &definition,
        })
        .await?;
    let sentant = graphql::sentant_ref(&loaded, "sentantLoad")?;
    http.request(&Request::SentantGetById {
        id: &sentant.id,
        fields: Fields::Long,
    })
    .await?;
    Ok(Joined {
        id: sentant.id,
        name: sentant.name,
    })
}

/// `sentantSend(id, event, parameters)`.
pub async fn send(http: &Client, id: &str, event: &str, parameters: Value) -> Result<(), NetError> {
    http.request(&Request::SentantSend {
        id,
        event,
        parameters: &parameters,
    })
    .await
    .map(drop)
}

/// The sensor page's send of one value: `set_sensor {sensor: v}` then
/// `update {}`, both fired at once (the caller spawns each).
pub fn value_sends(value: i64) -> [(&'static str, Value); 2] {
    [
        ("set_sensor", json!({ "sensor": value })),
        ("update", json!({})),
    ]
}

/// `sentantUnload(id)`: only ever this phone's own sentant.
pub async fn unload(http: &Client, id: &str) -> Result<(), NetError> {
    http.request(&Request::SentantUnload { id }).await.map(drop)
}

/// `sentantUnload(id)` as a `keepalive` fetch, which the browser completes
/// even as the page goes away (`pagehide`). Best effort.
pub fn unload_as_page_goes(http: &Client, id: &str) {
    http.post_as_page_goes(&Request::SentantUnload { id });
}
