//! The tab's HTTP requests in flight stay under its fetch slots (issue 12:
//! Chromium refuses a renderer's requests past a limit with "Failed to
//! fetch", which thousands of devices joining reach), in real headless
//! Chromium against the local node: with the tab held to two slots over two
//! workers, requests wait for one instead of failing, the node never has
//! more than two of them at once, every send the page counts is one the node
//! accepted, and the summary names the tab, not the node, as the bottleneck.
#![cfg(not(target_arch = "wasm32"))]

use std::time::Duration;

use anyhow::{Context, Result};
use r2_testkit::{built_page_sites_dir, num, TestNode};
use serde_json::Value;

const RUN_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_the_tab_s_fetch_slots_wait_and_none_fails() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let node = TestNode::start_lenient(Some(&sites)).await?;
    let url = format!(
        "{}/stresstest/?{}",
        node.url(),
        r2_testkit::lean(
            "devices=16&sockets=shared&scenario=sweep&duration=3&join_rate=200&workers=2&fetch_slots=2&autostart=1"
        )
    );
    let summary = r2_testkit::autorun_summary(&url, "deleted", RUN_TIMEOUT).await?;
    let stats = node.stats().await?;
    eprintln!("{summary:#}\n{stats:#}");
    assert_eq!(num(&summary, "devices_created"), 16, "{summary}");
    assert_eq!(num(&summary, "sends_failed"), 0, "{summary}");
    assert_eq!(
        summary["errors"].as_array().map(Vec::len),
        Some(0),
        "nothing failed for want of a slot: {summary}"
    );
    assert_eq!(
        num(&summary, "sends_ok"),
        num(&stats, "sends"),
        "page = node"
    );
    let held = num(&summary, "fetches_held");
    assert!(held > 0, "16 devices over 2 slots waited: {summary}");
    assert_eq!(summary["tab_bottleneck"], Value::Bool(true), "{summary}");
    let why = summary["tab_bottleneck_why"]
        .as_str()
        .context("a reason in words")?;
    assert!(
        why.contains(&format!(
            "{held} requests waited for one of the tab's 2 fetch slots"
        )),
        "{why}"
    );
    assert!(
        num(&stats, "requests_in_flight_max") <= 2,
        "the node never answered more than the tab's 2 slots at once: {stats}"
    );
    assert_eq!(num(&stats, "sentants"), 0, "all deleted: {stats}");
    Ok(())
}
