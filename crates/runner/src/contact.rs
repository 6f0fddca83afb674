//! First contact, before any browser opens: is the node a Reality2 node that
//! answers, and is the page there? Also the runner's own few requests to the
//! node (the fleet's control sentant, after the run).

use std::time::Duration;

use r2_core::graphql;
use serde_json::{json, Value};

use crate::error::RunError;

/// How long a first-contact request may take.
const CONTACT_TIMEOUT: Duration = Duration::from_secs(10);

/// The runner's HTTP client to the node and the page. A real node's
/// certificate is self-signed, and the browsers accept it too
/// (`acceptInsecureCerts`).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(CONTACT_TIMEOUT)
        .danger_accept_invalid_certs(true)
        .build()
        .expect("a reqwest client with default TLS builds")
}

/// `POST /reality2` with the WebApp's body shape; the answer as JSON.
pub async fn graphql(
    http: &reqwest::Client,
    node: &str,
    query: &str,
    variables: Value,
) -> Result<graphql::GqlResponse, RunError> {
    graphql_as(http, node, query, variables).await
}

/// [`graphql`], the answer's `data` read straight into `D`.
async fn graphql_as<D: graphql::AnswerData>(
    http: &reqwest::Client,
    node: &str,
    query: &str,
    variables: Value,
) -> Result<graphql::GqlResponse<D>, RunError> {
    let url = format!("{node}/reality2");
    let body = json!({ "query": query, "variables": variables.to_string() });
    let response = http.post(&url).json(&body).send().await.map_err(|source| {
        if is_refused(&source) {
            RunError::NodeRefused {
                node: node.to_owned(),
                source,
            }
        } else {
            RunError::NodeUnreachable {
                node: node.to_owned(),
                source,
            }
        }
    })?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|source| RunError::NodeUnreachable {
            node: node.to_owned(),
            source,
        })?;
    graphql::parse_response_as(&text).map_err(|e| RunError::NotReality2 {
        node: node.to_owned(),
        detail: format!("HTTP {status}: {e}"),
    })
}

/// The node's sentants (`sentantAll`): checks that the node is a Reality2 node.
pub async fn check_node(
    http: &reqwest::Client,
    node: &str,
) -> Result<Vec<graphql::SentantRef>, RunError> {
    let answer =
        graphql_as::<Option<graphql::SentantAll>>(http, node, graphql::SENTANT_ALL, json!({}))
            .await?;
    graphql::sentants(answer).map_err(|e| RunError::NotReality2 {
        node: node.to_owned(),
        detail: e.to_string(),
    })
}

/// The page answers 200 with HTML.
pub async fn check_page(http: &reqwest::Client, url: &str) -> Result<(), RunError> {
    let not_found = |detail: String| RunError::PageNotFound {
        url: url.to_owned(),
        detail,
    };
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| not_found(e.to_string()))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| not_found(e.to_string()))?;
    if !status.is_success() {
        return Err(not_found(format!("HTTP {status}")));
    }
    if !text.contains("<html") && !text.contains("<!DOCTYPE") && !text.contains("<!doctype") {
        return Err(not_found(format!("not HTML: {}", excerpt(&text))));
    }
    Ok(())
}

/// Unloads the sentant named `name` by id, if it is on the node.
pub async fn unload_named(
    http: &reqwest::Client,
    node: &str,
    name: &str,
) -> Result<bool, RunError> {
    let Some(found) = check_node(http, node)
        .await?
        .into_iter()
        .find(|s| s.name == name)
    else {
        return Ok(false);
    };
    graphql(
        http,
        node,
        graphql::SENTANT_UNLOAD,
        json!({ "id": found.id }),
    )
    .await?;
    Ok(true)
}

/// Whether a request failed because nothing listens (connection refused).
fn is_refused(error: &reqwest::Error) -> bool {
    let mut cause: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        cause = e.source();
    }
    error.is_connect() && error.to_string().contains("refused")
}

fn excerpt(text: &str) -> String {
    text.chars()
        .take(120)
        .collect::<String>()
        .replace('\n', " ")
}
