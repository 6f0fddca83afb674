//! The node under test: the release `r2-node` binary in its own process (so
//! its CPU can be read from `/proc`), or the in-process [`TestNode`] for the
//! quick form; either way its URLs and its counters at `/r2-node/stats`.
//!
//! The capacity series run against a `--lenient` node ([`Behaviour::Lenient`]);
//! [`NodeHandle::another`] starts a second node the same way (binary or
//! in-process) with another [`Behaviour`], e.g. the real node's with only
//! `http/1.1` offered over TLS.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use clap::ValueEnum;
use r2_core::graphql;
use r2_node::fidelity::Alpn;
use r2_testkit::TestNode;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::procs;

/// How long the node binary may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stats request may take.
const STATS_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the node could not be started or asked.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("could not start {path}")]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} did not print its http address within {START_TIMEOUT:?} (last line: {last:?})"
    )]
    NoAddress { path: PathBuf, last: String },
    #[error("starting the in-process node")]
    InProcess(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("requesting {url}")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the node loaded no sentant: {answer}")]
    NotLoaded { answer: String },
}

/// The node's counters (`GET /r2-node/stats`) that the benchmark reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct NodeStats {
    pub loads: u64,
    pub unloads: u64,
    pub sends: u64,
    pub sends_rejected: u64,
    pub signals: u64,
    pub deliveries: u64,
    pub sockets: u64,
    pub subscriptions: u64,
    /// Sentants on the node now.
    pub sentants: u64,
    /// TLS connections on which ALPN chose `h2`, and those on HTTP/1.1
    /// (absent from an older node: 0).
    #[serde(default)]
    pub tls_h2: u64,
    #[serde(default)]
    pub tls_http1: u64,
    /// `/reality2` HTTP requests answered.
    #[serde(default)]
    pub requests: u64,
}

impl NodeStats {
    /// The counters that grew since `before` (gauges as they are now).
    pub fn since(&self, before: &NodeStats) -> NodeStats {
        NodeStats {
            loads: self.loads.saturating_sub(before.loads),
            unloads: self.unloads.saturating_sub(before.unloads),
            sends: self.sends.saturating_sub(before.sends),
            sends_rejected: self.sends_rejected.saturating_sub(before.sends_rejected),
            signals: self.signals.saturating_sub(before.signals),
            deliveries: self.deliveries.saturating_sub(before.deliveries),
            tls_h2: self.tls_h2.saturating_sub(before.tls_h2),
            tls_http1: self.tls_http1.saturating_sub(before.tls_http1),
            requests: self.requests.saturating_sub(before.requests),
            ..*self
        }
    }
}

/// How a node of the benchmark behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// `--lenient`: the series measure the tab with `lean` and `seed`
    /// devices, which never load `view`; the real node would hold each of
    /// their updates 1 s for the missing `view`, and the figures would
    /// measure that wait instead. Its TLS offers `http/1.1` only.
    Lenient,
    /// The real node's behaviour throughout, with TLS offering these
    /// protocols (`--https-alpn`; `h2` and `http/1.1` is the real node's).
    Real(Alpn),
}

impl Behaviour {
    /// The protocols its TLS listener offers.
    pub fn alpn(self) -> Alpn {
        match self {
            Behaviour::Lenient => r2_node::Fidelity::lenient().alpn,
            Behaviour::Real(alpn) => alpn,
        }
    }

    /// The `r2-node` flags that make it.
    fn args(self) -> Vec<String> {
        let alpn = self
            .alpn()
            .to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default();
        let mut args = vec!["--https-alpn".to_owned(), alpn];
        if self == Behaviour::Lenient {
            args.push("--lenient".to_owned());
        }
        args
    }

    /// The in-process node's configuration that makes it (both listeners on
    /// loopback, free ports).
    fn config(self) -> r2_node::Config {
        let config = r2_node::Config::loopback().with_loopback_https();
        let mut config = match self {
            Behaviour::Lenient => config.lenient(),
            Behaviour::Real(_) => config,
        };
        config.fidelity.alpn = self.alpn();
        config
    }
}

/// How a node was started, to start another the same way.
#[derive(Debug, Clone)]
enum Launch {
    Binary(PathBuf),
    InProcess,
}

/// How the node runs.
enum Running {
    /// A child process, killed when dropped.
    Process { child: Child, pid: u32 },
    /// In this process.
    InProcess(Box<TestNode>),
}

/// The node the benchmark drives.
pub struct NodeHandle {
    running: Running,
    launch: Launch,
    sites: PathBuf,
    behaviour: Behaviour,
    url: String,
    /// Its HTTPS listener (a self-signed certificate), as phones and the
    /// seed's script reach the real node.
    https_url: Option<String>,
    http: reqwest::Client,
}

impl NodeHandle {
    /// Starts `binary --https 127.0.0.1:0 --http 127.0.0.1:0 --lenient
    /// --sites SITES` (its certificate in a folder of this process's own) and
    /// reads its addresses from the lines it prints
    /// (`r2-node: http://127.0.0.1:PORT/reality2`).
    pub async fn spawn(binary: &Path, sites: &Path) -> Result<NodeHandle, NodeError> {
        NodeHandle::spawn_as(binary, sites, Behaviour::Lenient).await
    }

    /// Starts the node in this process (its CPU is then not told apart from
    /// the benchmark's own), `--lenient`.
    pub async fn in_process(sites: &Path) -> Result<NodeHandle, NodeError> {
        NodeHandle::in_process_as(sites, Behaviour::Lenient).await
    }

    /// Another node, started as this one was, behaving as `behaviour`.
    pub async fn another(&self, behaviour: Behaviour) -> Result<NodeHandle, NodeError> {
        match &self.launch {
            Launch::Binary(binary) => NodeHandle::spawn_as(binary, &self.sites, behaviour).await,
            Launch::InProcess => NodeHandle::in_process_as(&self.sites, behaviour).await,
        }
    }

    async fn spawn_as(
        binary: &Path,
        sites: &Path,
        behaviour: Behaviour,
    ) -> Result<NodeHandle, NodeError> {
        let spawn_error = |source| NodeError::Spawn {
            path: binary.to_owned(),
            source,
        };
        let mut child = Command::new(binary)
            .args(["--https", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .args(behaviour.args())
            .arg("--cert-dir")
            .arg(std::env::temp_dir().join(format!("r2-bench-cert-{}", std::process::id())))
            .arg("--sites")
            .arg(sites)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(spawn_error)?;
        let pid = child.id().unwrap_or(0);
        let no_address = |last: String| NodeError::NoAddress {
            path: binary.to_owned(),
            last,
        };
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| no_address(String::new()))?;
        let mut lines = BufReader::new(stdout).lines();
        let mut last = String::new();
        // The HTTPS line comes first, then the HTTP one.
        let mut https_url = None;
        let found = tokio::time::timeout(START_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = base_url("https", &line) {
                    https_url = Some(url);
                } else if let Some(url) = base_url("http", &line) {
                    return Some(url);
                }
                last = line;
            }
            None
        })
        .await;
        let url = match found {
            Ok(Some(url)) => url,
            _ => return Err(no_address(last)),
        };
        // Keep draining its stdout so the node never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(NodeHandle::new(
            Running::Process { child, pid },
            (Launch::Binary(binary.to_owned()), sites, behaviour),
            url,
            https_url,
        ))
    }

    async fn in_process_as(sites: &Path, behaviour: Behaviour) -> Result<NodeHandle, NodeError> {
        let node = TestNode::start_with(Some(sites), behaviour.config())
            .await
            .map_err(|e| NodeError::InProcess(e.into()))?;
        let (url, https_url) = (node.url(), node.running.https_url());
        Ok(NodeHandle::new(
            Running::InProcess(Box::new(node)),
            (Launch::InProcess, sites, behaviour),
            url,
            https_url,
        ))
    }

    fn new(
        running: Running,
        (launch, sites, behaviour): (Launch, &Path, Behaviour),
        url: String,
        https_url: Option<String>,
    ) -> NodeHandle {
        let http = reqwest::Client::builder()
            .timeout(STATS_TIMEOUT)
            // Under the node's header read timeout (10 s), which ends an idle
            // kept-alive connection: one reused just then would fail.
            .pool_idle_timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        let https_url = https_url.map(|u| u.trim_end_matches('/').to_owned());
        NodeHandle {
            running,
            launch,
            sites: sites.to_owned(),
            behaviour,
            url,
            https_url,
            http,
        }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `https://127.0.0.1:PORT`, no trailing slash, if the node listens for HTTPS.
    pub fn https_url(&self) -> Option<&str> {
        self.https_url.as_deref()
    }

    /// How it behaves.
    pub fn behaviour(&self) -> Behaviour {
        self.behaviour
    }

    /// The process the node runs in: its own, or this one.
    pub fn pid(&self) -> u32 {
        match &self.running {
            Running::Process { pid, .. } => *pid,
            Running::InProcess(_) => std::process::id(),
        }
    }

    /// How the node runs, in words for the report.
    pub fn describe(&self) -> &'static str {
        match &self.running {
            Running::Process { .. } => "r2-node (release build), its own process",
            Running::InProcess(_) => {
                "r2-node in the benchmark's process (its CPU is not separated)"
            }
        }
    }

    /// CPU seconds the node's process has used, `None` once it is gone.
    pub fn cpu_s(&self) -> Option<f64> {
        procs::process_cpu_s(self.pid())
    }

    /// `GET /r2-node/stats`.
    pub async fn stats(&self) -> Result<NodeStats, NodeError> {
        let url = format!("{}/r2-node/stats", self.url);
        self.json(self.http.get(&url), &url).await
    }

    /// `POST /reality2` with the WebApp's body shape; the JSON answer.
    pub async fn graphql(&self, query: &str, variables: Value) -> Result<Value, NodeError> {
        let url = format!("{}/reality2", self.url);
        let body = json!({ "query": query, "variables": variables.to_string() });
        self.json(self.http.post(&url).json(&body), &url).await
    }

    /// Loads the IoT demo's `view` and `monitor` where the node has none, as
    /// a class's first phone would; the ids of those it loaded (for
    /// [`NodeHandle::unload_ids`]).
    pub async fn load_demo_sentants(&self) -> Result<Vec<String>, NodeError> {
        let all = self.graphql(graphql::SENTANT_ALL, json!({})).await?;
        let present = |name: &str| {
            all["data"]["sentantAll"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s["name"] == name)
        };
        let mut loaded = Vec::new();
        for (name, definition) in [
            ("view", graphql::VIEW_DEFINITION),
            ("monitor", graphql::MONITOR_DEFINITION),
        ] {
            if present(name) {
                continue;
            }
            match self.load(definition).await {
                Ok(id) => loaded.push(id),
                Err(NodeError::NotLoaded { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(loaded)
    }

    /// Loads the sentant of `definition`; its id.
    pub async fn load(&self, definition: &str) -> Result<String, NodeError> {
        let answer = self
            .graphql(graphql::SENTANT_LOAD, graphql::load_variables(definition))
            .await?;
        match answer["data"]["sentantLoad"]["id"].as_str() {
            Some(id) => Ok(id.to_owned()),
            None => Err(NodeError::NotLoaded {
                answer: answer.to_string(),
            }),
        }
    }

    /// Unloads the sentants of `ids`.
    pub async fn unload_ids(&self, ids: &[String]) -> Result<(), NodeError> {
        for id in ids {
            self.graphql(graphql::SENTANT_UNLOAD, graphql::id_variables(id))
                .await?;
        }
        Ok(())
    }

    /// Unloads, by id, every sentant whose name starts with `prefix` (what a
    /// run that was cut short left); returns how many.
    pub async fn unload_named(&self, prefix: &str) -> Result<usize, NodeError> {
        let all = self.graphql(graphql::SENTANT_ALL, json!({})).await?;
        let ids: Vec<String> = all["data"]["sentantAll"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
            .filter_map(|s| s["id"].as_str().map(str::to_owned))
            .collect();
        self.unload_ids(&ids).await?;
        Ok(ids.len())
    }

    async fn json<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<T, NodeError> {
        let request_error = |source| NodeError::Request {
            url: url.to_owned(),
            source,
        };
        request
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(request_error)?
            .json()
            .await
            .map_err(request_error)
    }

    /// Stops the node (a child process is killed and reaped).
    pub async fn stop(self) {
        match self.running {
            Running::Process { mut child, .. } => {
                let _ = child.kill().await;
            }
            Running::InProcess(node) => {
                let _ = node.stop().await;
            }
        }
    }
}

/// `http://ADDR` from the node's line `r2-node: http://ADDR/reality2`.
/// The base URL of `scheme` in a line the node prints at start.
fn base_url(scheme: &str, line: &str) -> Option<String> {
    let rest = line.strip_prefix(&format!("r2-node: {scheme}://"))?;
    let addr = rest.split_whitespace().next()?.strip_suffix("/reality2")?;
    (!addr.is_empty()).then(|| format!("{scheme}://{addr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_deltas_subtract_counters_and_keep_gauges() {
        let before = NodeStats {
            sends: 10,
            deliveries: 4,
            sockets: 3,
            tls_h2: 1,
            ..NodeStats::default()
        };
        let after = NodeStats {
            sends: 25,
            deliveries: 9,
            sockets: 1,
            sentants: 2,
            tls_h2: 2,
            tls_http1: 4,
            ..NodeStats::default()
        };
        let d = after.since(&before);
        assert_eq!(
            (d.sends, d.deliveries, d.sockets, d.sentants),
            (15, 5, 1, 2)
        );
        assert_eq!((d.tls_h2, d.tls_http1), (1, 4));
    }

    #[test]
    fn the_lines_give_the_addresses() {
        assert_eq!(
            base_url("http", "r2-node: http://127.0.0.1:39211/reality2").as_deref(),
            Some("http://127.0.0.1:39211")
        );
        let https = "r2-node: https://127.0.0.1:4005/reality2 (also https://10.0.0.2:4005)";
        assert_eq!(base_url("http", https), None);
        assert_eq!(
            base_url("https", https).as_deref(),
            Some("https://127.0.0.1:4005")
        );
        assert_eq!(base_url("http", "r2-node: sites from x: /stresstest"), None);
        assert_eq!(base_url("http", "r2-node: http:///reality2"), None);
    }

    #[test]
    fn stats_read_the_node_counters() {
        let stats: NodeStats = serde_json::from_str(
            r#"{"loads":3,"unloads":1,"sends":9,"sends_rejected":0,"signals":4,"deliveries":4,"sockets":1,"subscriptions":2,"sentants":2,"extra":7}"#,
        )
        .expect("the node's shape");
        assert_eq!((stats.loads, stats.sends, stats.sentants), (3, 9, 2));
        assert_eq!((stats.tls_h2, stats.tls_http1), (0, 0), "an older node");
        let counted: NodeStats =
            serde_json::from_str(r#"{"loads":0,"unloads":0,"sends":0,"sends_rejected":0,"signals":0,"deliveries":0,"sockets":0,"subscriptions":0,"sentants":0,"tls_h2":2,"tls_http1":5}"#)
                .expect("the node's shape");
        assert_eq!((counted.tls_h2, counted.tls_http1), (2, 5));
    }

    #[test]
    fn behaviours_are_made_by_flags_and_configs() {
        assert_eq!(
            Behaviour::Lenient.args(),
            ["--https-alpn", "http1", "--lenient"]
        );
        assert_eq!(
            Behaviour::Real(Alpn::H2AndHttp1).args(),
            ["--https-alpn", "h2"]
        );
        assert_eq!(
            Behaviour::Lenient.config().fidelity,
            r2_node::Fidelity::lenient()
        );
        let http1 = Behaviour::Real(Alpn::Http1).config();
        assert_eq!(
            http1.fidelity,
            r2_node::Fidelity {
                alpn: Alpn::Http1,
                ..r2_node::Fidelity::default()
            }
        );
        assert!(http1.https.is_some() && http1.http.is_some());
        let every_flag = Behaviour::Real(Alpn::Http1).args();
        let parsed = r2_node::Config::try_parse_from(
            std::iter::once("r2-node".to_owned()).chain(every_flag),
        )
        .expect("r2-node reads them");
        assert_eq!(parsed.fidelity, http1.fidelity);
    }
}
