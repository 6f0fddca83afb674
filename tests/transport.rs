//! `transport=socket` (issue 12), in real headless Chromium against the
//! local node: the devices send their values and updates as Absinthe `doc`
//! frames on the sockets they already hold, so the node answers far fewer
//! HTTP requests than it accepts sends (over HTTP each send is one request),
//! every send the page counts is one the node accepted, signals still come
//! back, and the summary says the wire shape is not the WebApp's.
#![cfg(not(target_arch = "wasm32"))]

use std::time::Duration;

use anyhow::Result;
use r2_testkit::{built_page_sites_dir, num, TestNode};
use serde_json::Value;

const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `query` on a fresh node; the summary and the node's counters.
async fn run(query: &str) -> Result<(Value, Value)> {
    let sites = built_page_sites_dir()?;
    let node = TestNode::start_lenient(Some(&sites)).await?;
    let url = format!("{}/stresstest/?{query}", node.url());
    let summary = r2_testkit::autorun_summary(&url, "deleted", RUN_TIMEOUT).await?;
    let stats = node.stats().await?;
    eprintln!(
        "?{query}: sends ok {} failed {} signals {} (min per device {}); node sends {} HTTP requests {} sentants left {}",
        num(&summary, "sends_ok"),
        num(&summary, "sends_failed"),
        num(&summary, "signals_received"),
        num(&summary, "signals_per_device_min"),
        num(&stats, "sends"),
        num(&stats, "requests"),
        num(&stats, "sentants"),
    );
    Ok((summary, stats))
}

fn check(summary: &Value, stats: &Value, devices: u64) {
    assert_eq!(summary["transport"], "socket", "{summary}");
    let why = summary["load"]["not_webapp_wire"]
        .as_str()
        .unwrap_or_default();
    assert!(
        why.contains("transport=socket"),
        "labelled as not the WebApp's: {summary}"
    );
    assert_eq!(num(summary, "devices_created"), devices, "{summary}");
    assert_eq!(num(summary, "sends_failed"), 0, "{summary}");
    assert_eq!(
        num(summary, "sends_ok"),
        num(stats, "sends"),
        "page = node: {summary}\n{stats}"
    );
    assert!(
        num(stats, "requests") < num(stats, "sends"),
        "the sends did not go over HTTP: {stats}"
    );
    assert!(num(summary, "signals_per_device_min") >= 1, "{summary}");
    assert_eq!(num(stats, "sentants"), 0, "all deleted: {stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_device_sockets_carry_the_sends() -> Result<()> {
    let (summary, stats) = run(
        "profile=lean&transport=socket&devices=10&scenario=sweep&duration=3&join_rate=50&autostart=1",
    )
    .await?;
    check(&summary, &stats, 10);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_sockets_carry_the_sends() -> Result<()> {
    let (summary, stats) = run(
        "profile=lean&transport=socket&sockets=shared&devices=40&scenario=sweep&duration=3&join_rate=100&autostart=1",
    )
    .await?;
    check(&summary, &stats, 40);
    Ok(())
}
