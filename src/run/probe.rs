//! First contact: before any device joins, one `sentantAll` tells whether
//! the address is a Reality2 node this page can talk to — and if not, why,
//! in words a teacher understands.
//!
//! A browser hides why a request failed (unreachable, refused, certificate,
//! CORS all surface as one `TypeError`), so the probe reads the clues it has:
//! how fast the failure came, whether an opaque `no-cors` request gets
//! through (then only CORS blocked the real one), and the scheme.

use r2_core::graphql::{self, SentantAll, SentantRef};
use r2_core::webapp::{Fields, Request};

use crate::browser::{now_ms, origin};
use crate::net::{Client, NetError};

/// A failure slower than this (ms) is an address that does not answer at all.
const UNREACHABLE_AFTER_MS: f64 = 3000.0;

/// Why the first contact with a node failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FirstContact {
    #[error("The node at {node} cannot be reached: nothing answered within {after_s:.0} s. Check the address and that this computer is on the node's network.")]
    Unreachable { node: String, after_s: f64 },
    #[error("Nothing is listening at {node} (connection refused). Is the node running, and is the port right (4005 for https, 4006 for http)?")]
    Refused { node: String },
    #[error("The node at {node} did not accept the connection. Either nothing is listening there, or this browser has not accepted the node's self-signed certificate yet: open {node}/reality2 once, accept the certificate, then come back.")]
    RefusedOrCertificate { node: String },
    #[error("The node at {node} answers, but this page may not read its answers (a different origin without CORS). Open the page from the node itself ({node}/stresstest/), or serve it with trunk's proxy to the node.")]
    Cors { node: String },
    #[error("{node} answers HTTP, but /reality2 is not a Reality2 GraphQL endpoint ({detail}). Check the address and port.")]
    NotReality2 { node: String, detail: String },
    #[error("The node at {node} answered with an error (HTTP {status}): {excerpt}")]
    ServerError {
        node: String,
        status: u16,
        excerpt: String,
    },
    #[error("The node at {node} took longer than {timeout_s:.0} s to answer.")]
    Timeout { node: String, timeout_s: f64 },
}

impl FirstContact {
    /// The request error behind it, under the kind the run's requests are
    /// counted by (`http_500`, `timeout`), for the failures worth retrying.
    pub fn retryable_kind(&self) -> Option<String> {
        match self {
            FirstContact::ServerError { status, .. } => Some(format!("http_{status}")),
            FirstContact::Timeout { .. } => Some("timeout".into()),
            _ => None,
        }
    }

    /// The short kind the summary counts it under.
    pub fn kind(&self) -> &'static str {
        match self {
            FirstContact::Unreachable { .. } => "unreachable",
            FirstContact::Refused { .. } => "refused",
            FirstContact::RefusedOrCertificate { .. } => "refused_or_certificate",
            FirstContact::Cors { .. } => "cors",
            FirstContact::NotReality2 { .. } => "not_reality2",
            FirstContact::ServerError { .. } => "server_error",
            FirstContact::Timeout { .. } => "timeout",
        }
    }
}

/// Asks the node for its sentants once; `Ok` with them when it answered as
/// a Reality2 node does.
pub async fn probe(http: &Client, node: &str) -> Result<Vec<SentantRef>, FirstContact> {
    let started = now_ms();
    let node = node.trim_end_matches('/').to_owned();
    let all = Request::SentantAll {
        fields: Fields::Short,
    };
    match http.request_as::<Option<SentantAll>>(&all).await {
        Ok(response) => match graphql::sentants(response) {
            Ok(list) => Ok(list),
            Err(err) => Err(FirstContact::NotReality2 {
                node,
                detail: err.to_string(),
            }),
        },
        // A GraphQL error message is still a GraphQL answer: a node.
        Err(NetError::Node(_)) => Ok(Vec::new()),
        Err(NetError::NotReality2(err)) => Err(FirstContact::NotReality2 {
            node,
            detail: err.to_string(),
        }),
        Err(NetError::Status { status, excerpt }) if (400..500).contains(&status) => {
            Err(FirstContact::NotReality2 {
                node,
                detail: format!("HTTP {status}: {excerpt}"),
            })
        }
        Err(NetError::Status { status, excerpt }) => Err(FirstContact::ServerError {
            node,
            status,
            excerpt,
        }),
        Err(NetError::Timeout(ms)) => Err(FirstContact::Timeout {
            node,
            timeout_s: f64::from(ms) / 1000.0,
        }),
        // First contact is HTTP, outside the run's fetch slots: no socket
        // is asked and nothing waits for a slot.
        Err(NetError::Network(_) | NetError::Socket(_) | NetError::Unsent) => {
            let elapsed = now_ms() - started;
            if elapsed > UNREACHABLE_AFTER_MS {
                Err(FirstContact::Unreachable {
                    node,
                    after_s: elapsed / 1000.0,
                })
            } else if node != origin() && http.opaque_request_gets_through().await {
                Err(FirstContact::Cors { node })
            } else if node.starts_with("https://") {
                Err(FirstContact::RefusedOrCertificate { node })
            } else {
                Err(FirstContact::Refused { node })
            }
        }
    }
}
