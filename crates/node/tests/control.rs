//! `/r2-node/faults` from a peer that is really not loopback: each test makes
//! its own network namespace joined to this one by a veth pair
//! (`10.250.N.1/30` here, `10.250.N.2/30` there, on that veth only) and runs
//! curl inside it. Without root or iproute2 a test prints why and passes;
//! the namespace and the veth are removed even when a test fails.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};

use anyhow::{bail, ensure, Context, Result};
use common::*;
use r2_node::{control::ControlAccess, Config};
use serde_json::{json, Value};

/// A network namespace with a veth pair to this one; removed on drop.
struct Namespace {
    name: String,
    veth: String,
    /// This side's address (the node is reached there).
    here: String,
}

/// Runs `ip` with `args`; its stderr when it fails.
fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    ensure!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

impl Namespace {
    /// A fresh namespace, or why one cannot be made here.
    fn create() -> Result<Namespace> {
        static NEXT: AtomicU8 = AtomicU8::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let tag = format!("{}{n}", pid % 100_000);
        let subnet = (pid % 60) as u8 * 4 + n;
        let ns = Namespace {
            name: format!("r2h{tag}"),
            veth: format!("r2a{tag}"),
            here: format!("10.250.{subnet}.1"),
        };
        let peer = format!("r2b{tag}");
        let there = format!("10.250.{subnet}.2/30");
        let here = format!("{}/30", ns.here);
        ip(&["netns", "add", &ns.name])?;
        // From here on, dropping `ns` cleans up.
        ip(&[
            "link", "add", &ns.veth, "type", "veth", "peer", "name", &peer,
        ])?;
        ip(&["link", "set", &peer, "netns", &ns.name])?;
        ip(&["addr", "add", &here, "dev", &ns.veth])?;
        ip(&["link", "set", &ns.veth, "up"])?;
        for args in [
            &["addr", "add", there.as_str(), "dev", peer.as_str()][..],
            &["link", "set", peer.as_str(), "up"],
            &["link", "set", "lo", "up"],
        ] {
            let mut full = vec!["netns", "exec", ns.name.as_str(), "ip"];
            full.extend_from_slice(args);
            ip(&full)?;
        }
        Ok(ns)
    }

    /// curl inside the namespace: `(status, JSON body)`.
    fn curl(
        &self,
        method: &str,
        url: &str,
        headers: &[&str],
        body: Option<&str>,
    ) -> Result<(u16, Value)> {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, "curl", "-sS", "-m", "10"]);
        command.args(["-X", method, "-w", "\n%{http_code}"]);
        for header in headers {
            command.args(["-H", header]);
        }
        if let Some(body) = body {
            command.args(["--data-binary", body]);
        }
        let out = command.arg(url).output().context("running curl")?;
        ensure!(
            out.status.success(),
            "curl {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout)?;
        let (body, status) = text.rsplit_once('\n').context("no status line")?;
        Ok((
            status.trim().parse()?,
            serde_json::from_str(body).unwrap_or(Value::Null),
        ))
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.veth]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// A namespace, or `None` after printing why this machine cannot make one.
fn namespace_or_skip() -> Option<Namespace> {
    let root =
        Command::new("id").arg("-u").output().ok().map(|o| o.stdout) == Some(b"0\n".to_vec());
    let curl = Command::new("curl").arg("--version").output().is_ok();
    match Namespace::create() {
        Ok(ns) if curl => Some(ns),
        Ok(_) => {
            eprintln!("SKIPPED: no curl to run inside the network namespace");
            None
        }
        Err(e) if !root => {
            eprintln!("SKIPPED: not root, cannot make a network namespace: {e:#}");
            None
        }
        Err(e) => panic!("root, yet no network namespace: {e:#}"),
    }
}

/// A node on every interface, port picked freely.
async fn node_on_every_interface(control: ControlAccess) -> Result<TestNode> {
    let config = Config {
        http: Some("0.0.0.0:0".parse()?),
        control,
        ..Config::loopback()
    };
    let node = TestNode::with_config(config).await?;
    Ok(node)
}

fn faults_url(ns: &Namespace, node: &TestNode) -> String {
    format!("http://{}:{}/r2-node/faults", ns.here, node.addr().port())
}

const JSON: &str = "content-type: application/json";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_beyond_loopback_gets_403_on_faults_and_still_reads_stats() -> Result<()> {
    let Some(ns) = namespace_or_skip() else {
        return Ok(());
    };
    let node = node_on_every_interface(ControlAccess::default()).await?;
    let url = faults_url(&ns, &node);
    let before = node.faults().await?;

    let (status, body) = ns.curl("GET", &url, &[], None)?;
    assert_eq!(status, 403, "{body}");
    let detail = body["errors"]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("loopback"), "{detail}");
    let forget = json!({"forget": true}).to_string();
    let (status, _) = ns.curl("POST", &url, &[JSON], Some(&forget))?;
    assert_eq!(status, 403);
    let (status, _) = ns.curl(
        "POST",
        &url,
        &["Authorization: Bearer guess", JSON],
        Some(&forget),
    )?;
    assert_eq!(status, 403, "no token is configured: none is accepted");

    let stats_url = format!("http://{}:{}/r2-node/stats", ns.here, node.addr().port());
    let (status, stats) = ns.curl("GET", &stats_url, &[], None)?;
    assert_eq!(status, 200, "stats stay readable");
    assert_eq!(stats["control_refused"], 3);

    assert_eq!(node.faults().await?, before, "nothing switched");
    let (status, _) = node
        .post_faults(json!({"latency_ms": 1}).to_string())
        .await?;
    assert_eq!(status, 200, "loopback may");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_control_token_the_bearer_is_required_from_everyone() -> Result<()> {
    let Some(ns) = namespace_or_skip() else {
        return Ok(());
    };
    let access = ControlAccess {
        control_token: Some("class-7b".into()),
    };
    let node = node_on_every_interface(access).await?;
    let url = faults_url(&ns, &node);
    let body = json!({"latency_ms": 5}).to_string();
    let (status, answer) = ns.curl(
        "POST",
        &url,
        &["Authorization: Bearer class-7b", JSON],
        Some(&body),
    )?;
    assert_eq!(
        (status, &answer["latency_ms"]),
        (200, &json!(5.0)),
        "{answer}"
    );
    let (status, answer) = ns.curl(
        "POST",
        &url,
        &["Authorization: Bearer class-7", JSON],
        Some(&body),
    )?;
    assert_eq!(status, 403, "{answer}");
    let (status, _) = node.post_faults(body).await?;
    assert_eq!(status, 403, "loopback without the token neither");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_or_a_foreign_page_cannot_switch_faults_even_from_loopback() -> Result<()> {
    let node = TestNode::start().await?;
    let url = format!("{}/r2-node/faults", node.base);
    for content_type in [
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
    ] {
        let response = node
            .http
            .post(&url)
            .header("content-type", content_type)
            .body(r#"{"forget": true, "error_rate": 1}"#)
            .send()
            .await?;
        let (status, body) = answer(response).await?;
        assert_eq!(status, 415, "{content_type}: {body}");
        assert!(body["errors"]["detail"].as_str().is_some(), "{body}");
    }
    let foreign = node
        .http
        .post(&url)
        .header("content-type", "application/json")
        .header("origin", "http://evil.example")
        .body(r#"{"error_rate": 1}"#)
        .send()
        .await?;
    assert_eq!(answer(foreign).await?.0, 403);
    let faults = node.faults().await?;
    if faults["error_rate"] != 0.0 || faults["forget"] != false {
        bail!("faults switched: {faults}");
    }
    assert_eq!(node.stats().await?["control_refused"], 4);
    Ok(())
}
