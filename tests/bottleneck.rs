//! The tab-as-bottleneck warning, in real headless Chromium: with the CPU
//! throttled through the DevTools protocol the tab cannot keep up and the
//! summary must say so; unthrottled with few devices it must not.
#![cfg(not(target_arch = "wasm32"))]

use std::time::Duration;

use anyhow::{Context, Result};
use r2_testkit::{built_page_sites_dir, Browser, TestNode};
use serde_json::Value;

const RUN_TIMEOUT: Duration = Duration::from_secs(180);

async fn run(node: &TestNode, query: &str, cpu_slowdown: f64) -> Result<Value> {
    let browser = Browser::launch().await?;
    let page = browser.new_page().await?;
    if cpu_slowdown > 1.0 {
        page.set_cpu_throttling(cpu_slowdown).await?;
    }
    page.goto(&format!("{}/stresstest/?{}", node.url(), r2_testkit::lean(query)))
        .await?;
    let summary = page.summary("deleted", RUN_TIMEOUT).await?;
    eprintln!("summary of ?{query} at {cpu_slowdown}x slowdown:\n{summary:#}");
    browser.close().await?;
    Ok(summary)
}

// One test, so the throttled and the unthrottled runs never overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_says_when_the_tab_is_the_bottleneck() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let node = TestNode::start_lenient(Some(&sites)).await?;

    let calm = run(
        &node,
        // A calm load: five devices at the seed script's pace, long enough
        // (about 700 samples) that a few stray hiccups of a shared machine
        // do not make its p99.
        "devices=5&duration=8&scenario=sweep&join_rate=20&autostart=1",
        1.0,
    )
    .await?;
    assert_eq!(calm["tab_bottleneck"], Value::Bool(false), "{calm}");
    assert!(calm["tab_bottleneck_why"].is_null(), "{calm}");
    assert!(
        calm["scheduler_lag_ms"]["count"].as_u64().unwrap_or(0) > 100,
        "the hiccup meter ran: {calm}"
    );

    let starved = run(
        &node,
        "devices=80&duration=3&scenario=rotate&join_rate=100&autostart=1",
        6.0,
    )
    .await?;
    assert_eq!(starved["tab_bottleneck"], Value::Bool(true), "{starved}");
    let why = starved["tab_bottleneck_why"]
        .as_str()
        .context("a reason in words")?;
    assert!(why.contains("late") || why.contains("piled up"), "{why}");
    assert_eq!(starved["verdict"], "fail", "{starved}");
    assert_eq!(node.stats().await?["sentants"], 0, "both runs cleaned up");
    Ok(())
}
