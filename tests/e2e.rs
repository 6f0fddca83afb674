//! End-to-end, as a user runs it: the local node serves the built page at
//! `/stresstest/`, headless Chromium opens it with `autostart=1`, and the
//! summary the page writes into `#r2-summary` is checked against the node's
//! own counters (`/r2-node/stats`).
#![cfg(not(target_arch = "wasm32"))]

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use r2_core::graphql;
use r2_testkit::{built_page_sites_dir, num, Browser, TestNode};
use serde_json::{json, Value};

/// The longest a whole autostart run may take here.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the page with `query` on `node` until its summary reaches `phase`.
async fn run_page(node: &TestNode, query: &str, phase: &str) -> Result<Value> {
    let browser = Browser::launch().await?;
    let page = browser.new_page().await?;
    page.goto(&format!(
        "{}/stresstest/?{}",
        node.url(),
        r2_testkit::lean(query)
    ))
    .await?;
    let summary = page.summary(phase, RUN_TIMEOUT).await?;
    eprintln!("summary of ?{query}:\n{summary:#}");
    browser.close().await?;
    Ok(summary)
}

/// Loads a sentant as a real phone would, named `device 0001`.
async fn load_phone(node: &TestNode) -> Result<String> {
    let answer = node
        .graphql(
            graphql::SENTANT_LOAD,
            json!({ "definition": graphql::device_definition("device 0001") }),
        )
        .await?;
    answer["data"]["sentantLoad"]["id"]
        .as_str()
        .map(str::to_owned)
        .context("the phone's sentant loaded")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_phones_per_device_sockets() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let node = TestNode::start_lenient(Some(&sites)).await?;
    let phone_id = load_phone(&node).await?;

    let summary = run_page(&node, "devices=50&duration=10&autostart=1", "deleted").await?;
    let stats = node.stats().await?;

    assert_eq!(num(&summary, "devices_requested"), 50, "{summary}");
    assert_eq!(num(&summary, "devices_created"), 50, "{summary}");
    assert_eq!(num(&summary, "devices_deleted"), 50, "{summary}");
    assert_eq!(
        num(&stats, "loads"),
        51,
        "50 devices and the phone: {stats}"
    );
    assert_eq!(num(&stats, "unloads"), 50, "{stats}");
    assert_eq!(
        num(&summary, "sends_ok"),
        num(&stats, "sends"),
        "page {summary}\nnode {stats}"
    );
    assert_eq!(num(&summary, "sends_failed"), 0, "{summary}");
    assert!(
        num(&summary, "sends_ok") > 50 * 3,
        "every device sent during 10 s of sweep: {summary}"
    );
    assert!(
        num(&summary, "signals_per_device_min") >= 1,
        "signals reached every device: {summary}"
    );
    assert!(
        num(&summary, "sockets_live_max") >= 50,
        "one socket per device: {summary}"
    );
    assert_eq!(
        summary["leftovers"].as_array().map(Vec::len),
        Some(0),
        "{summary}"
    );
    let p50 = summary["signal_latency_ms"]["p50"]
        .as_f64()
        .context("signal latency measured")?;
    ensure!(p50 > 0.0, "signal latency p50 is positive: {summary}");

    // The real phone's sentant is untouched: same name, same id, nothing else of ours left.
    let phone = node
        .graphql(
            graphql::SENTANT_GET_BY_NAME,
            json!({ "name": "device 0001" }),
        )
        .await?;
    assert_eq!(
        phone["data"]["sentantGet"]["id"].as_str(),
        Some(phone_id.as_str()),
        "{phone}"
    );
    assert_eq!(node.sentant_names().await?, vec!["device 0001".to_owned()]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_sockets_carry_every_subscription() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let node = TestNode::start_lenient(Some(&sites)).await?;

    let summary = run_page(
        &node,
        "devices=30&duration=5&sockets=shared&scenario=rotate&seed=7&autostart=1",
        "deleted",
    )
    .await?;
    let stats = node.stats().await?;

    assert_eq!(num(&summary, "devices_created"), 30, "{summary}");
    assert_eq!(num(&summary, "devices_deleted"), 30, "{summary}");
    assert_eq!(
        num(&summary, "sockets_live_max"),
        1,
        "30 subscriptions fit on one shared socket: {summary}"
    );
    assert!(num(&summary, "signals_per_device_min") >= 1, "{summary}");
    assert_eq!(
        num(&summary, "sends_ok"),
        num(&stats, "sends"),
        "page {summary}\nnode {stats}"
    );
    assert!(
        num(&stats, "deliveries") >= num(&summary, "signals_received"),
        "{stats} {summary}"
    );
    assert_eq!(num(&stats, "sentants"), 0, "{stats}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_subscriptions_like_the_seed_script() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let node = TestNode::start_lenient(Some(&sites)).await?;

    let summary = run_page(
        &node,
        "devices=20&duration=4&sockets=none&scenario=taps&autostart=1",
        "deleted",
    )
    .await?;
    let stats = node.stats().await?;

    assert_eq!(num(&summary, "devices_created"), 20, "{summary}");
    assert_eq!(num(&summary, "sockets_live_max"), 0, "{summary}");
    assert_eq!(num(&summary, "signals_received"), 0, "{summary}");
    assert_eq!(num(&stats, "deliveries"), 0, "{stats}");
    assert_eq!(
        num(&summary, "sends_ok"),
        num(&stats, "sends"),
        "page {summary}\nnode {stats}"
    );
    assert_eq!(num(&stats, "sentants"), 0, "{stats}");
    Ok(())
}
