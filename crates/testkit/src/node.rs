//! [`TestNode`]: the local node started in-process on loopback, with an HTTP
//! client that talks to it the way the page does.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// How long one HTTP request to the node may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an idle pooled connection is kept: well under the node's header
/// read timeout (`r2_node` `header_read_timeout_s`, 10 s by default).
const POOL_IDLE: Duration = Duration::from_secs(5);

/// A node running in-process on `127.0.0.1:0` (plain HTTP), optionally
/// serving a sites folder.
pub struct TestNode {
    pub running: r2_node::Running,
    url: String,
    http: reqwest::Client,
}

impl TestNode {
    /// Starts a node on a free loopback port; `sites` is served as the node's
    /// web-app folder (each sub-folder `NAME` at `/NAME`).
    pub async fn start(sites: Option<&Path>) -> anyhow::Result<TestNode> {
        Self::start_with(sites, r2_node::Config::loopback()).await
    }

    /// [`TestNode::start`] with `--lenient`: answers at once for unknown ids
    /// and sends to missing sentants, keeps values' types, casts `__internal`
    /// only to its listeners — for tests of the page's own behaviour whose
    /// point is not the real node's (a `lean` device's `update` waits 1 s per
    /// event on the real node while no `view` is loaded).
    pub async fn start_lenient(sites: Option<&Path>) -> anyhow::Result<TestNode> {
        Self::start_with(sites, r2_node::Config::loopback().lenient()).await
    }

    /// A node of configuration `base` (its listeners as [`r2_node::Config::loopback`]
    /// gives them, or more), serving `sites`.
    pub async fn start_with(
        sites: Option<&Path>,
        base: r2_node::Config,
    ) -> anyhow::Result<TestNode> {
        let config = r2_node::Config {
            sites: sites.map(Path::to_path_buf),
            ..base
        };
        let running = r2_node::Running::start(config)
            .await
            .context("starting the node")?;
        let url = running
            .http_url()
            .context("the node has no HTTP listener")?;
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            // The node ends a kept-alive connection idle for its header read
            // timeout (10 s): one reused just then closes under the request.
            .pool_idle_timeout(POOL_IDLE)
            .build()
            .context("building the HTTP client")?;
        Ok(TestNode { running, url, http })
    }

    /// The node's base URL, `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        self.url.trim_end_matches('/').to_owned()
    }

    /// `GET /r2-node/stats` over HTTP; a non-2xx status is `Err`.
    pub async fn stats(&self) -> anyhow::Result<Value> {
        let url = format!("{}/r2-node/stats", self.url());
        let (status, body) = self.answer(self.http.get(&url), &url).await?;
        anyhow::ensure!(status.is_success(), "GET {url} answered {status}: {body}");
        Ok(body)
    }

    /// `POST /r2-node/faults`: switches the node's injected faults (`{}` clears
    /// them); returns the faults now in force.
    pub async fn set_faults(&self, faults: Value) -> anyhow::Result<Value> {
        let url = format!("{}/r2-node/faults", self.url());
        let (status, body) = self
            .answer(self.http.post(&url).json(&faults), &url)
            .await?;
        anyhow::ensure!(status.is_success(), "POST {url} answered {status}: {body}");
        Ok(body)
    }

    /// `POST /reality2` with the WebApp's body shape (`variables` as a string
    /// of JSON). Returns the JSON answer whatever its status,
    /// `{"data": ..., "errors": [...]}` (the node refuses some requests with
    /// 4xx and a JSON `errors`); a transport failure or an answer that is not
    /// JSON is `Err`.
    pub async fn graphql(&self, query: &str, variables: Value) -> anyhow::Result<Value> {
        let url = format!("{}/reality2", self.url());
        let body = json!({ "query": query, "variables": variables.to_string() });
        let (_status, answer) = self.answer(self.http.post(&url).json(&body), &url).await?;
        Ok(answer)
    }

    /// The names of every sentant on the node (`sentantAll`), sorted.
    pub async fn sentant_names(&self) -> anyhow::Result<Vec<String>> {
        let all = self
            .graphql("{ sentantAll { id name } }", json!({}))
            .await?;
        let list = all["data"]["sentantAll"]
            .as_array()
            .with_context(|| format!("sentantAll is a list: {all}"))?;
        let mut names: Vec<String> = list
            .iter()
            .filter_map(|s| s["name"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Stops the node gracefully (dropping a `TestNode` also stops it).
    pub async fn stop(self) -> anyhow::Result<()> {
        self.running.stop().await.context("stopping the node")
    }

    async fn answer(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let response = request
            .send()
            .await
            .with_context(|| format!("requesting {url}"))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("reading the answer from {url}"))?;
        let body = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{url} answered {status} with no JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        })?;
        Ok((status, body))
    }
}
