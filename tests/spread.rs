//! Spread starts, in real headless Chromium against the local node: with
//! each device starting its scenario at its own offset the tab's fetch queue
//! never holds the 2N requests of every device sending at once, while
//! `herd=1` (every device at the same instant) does. Both runs' planned
//! sends, counted by the page (wasm32), equal what `r2_core` computes
//! natively for the same settings: the scenarios draw alike on both.
#![cfg(not(target_arch = "wasm32"))]

use std::time::Duration;

use anyhow::{Context, Result};
use r2_core::config::RunConfig;
use r2_core::plan::RunPlan;
use r2_testkit::{built_page_sites_dir, num, TestNode};
use serde_json::Value;

const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// Few devices, a short run: calm on two cores.
const DEVICES: u64 = 16;

async fn run(node: &TestNode, query: &str) -> Result<Value> {
    let url = format!("{}/stresstest/?{query}", node.url());
    r2_testkit::autorun_summary(&url, "deleted", RUN_TIMEOUT).await
}

/// The sends `query`'s run plans, computed natively.
fn planned_natively(query: &str) -> Result<u64> {
    let config = RunConfig::from_query(query).context("a valid query")?;
    Ok(RunPlan::new(&config, None).sends_planned_from_start(config.devices))
}

// One test, so the two runs never overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_starts_keep_the_fetch_queue_below_2n_and_a_herd_reaches_n() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let node = TestNode::start_lenient(Some(&sites)).await?;
    let base = r2_testkit::lean(&format!(
        "devices={DEVICES}&duration=3&scenario=sweep&join_rate=40&seed=5&autostart=1"
    ));

    let spread = run(&node, &base).await?;
    let herd_query = format!("{base}&herd=1");
    let herd = run(&node, &herd_query).await?;
    let brief = |s: &Value| {
        format!(
            "starts {} fetch_queue_max {} sends_planned {} sends_ok {} signals {} stale {} signal p99 {} ms",
            s["starts"],
            s["fetch_queue_max"],
            s["sends_planned"],
            s["sends_ok"],
            s["signals_received"],
            s["signals_stale"],
            s["signal_latency_ms"]["p99"],
        )
    };
    eprintln!("spread: {}\nherd:   {}", brief(&spread), brief(&herd));

    for (summary, query) in [(&spread, &base), (&herd, &herd_query)] {
        assert_eq!(num(summary, "devices_created"), DEVICES, "{summary}");
        assert_eq!(num(summary, "sends_failed"), 0, "{summary}");
        let planned = num(summary, "sends_planned");
        assert!(planned > DEVICES, "every device planned sends: {summary}");
        assert_eq!(
            planned,
            planned_natively(query)?,
            "the page's plan is the native one for ?{query}"
        );
        // Every planned send was made (two requests each), and the `update`
        // each device sent on connecting.
        assert_eq!(num(summary, "sends_ok"), 2 * planned + DEVICES, "{summary}");
        assert!(num(summary, "signals_stale") <= num(summary, "signals_received"));
    }
    assert_eq!(spread["starts"], "spread", "{spread}");
    assert_eq!(herd["starts"], "herd", "{herd}");
    let spread_max = num(&spread, "fetch_queue_max");
    let herd_max = num(&herd, "fetch_queue_max");
    assert!(
        spread_max < 2 * DEVICES,
        "spread starts never queue 2N requests: {spread_max}"
    );
    assert!(
        herd_max >= DEVICES,
        "a herd fires every device's first send at once: {herd_max}"
    );
    assert_eq!(node.stats().await?["sentants"], 0, "both runs cleaned up");
    Ok(())
}
