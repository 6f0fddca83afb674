//! The projector, in real headless Chromium: `viewers=1` simulates the
//! WebApp's view page (`view`, `monitor`, and one socket per device), every
//! push the node makes reaches the page, and only what the run loaded is
//! unloaded.
#![cfg(not(target_arch = "wasm32"))]

use std::time::Duration;

use anyhow::{Context, Result};
use r2_core::graphql;
use r2_testkit::{built_page_sites_dir, Browser, TestNode};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(90);

/// Every push the node made was received by the page (its devices' sockets
/// plus the projector's), read live from the page and `/r2-node/stats`.
const ALL_PUSHES_ARRIVED: &str = "(async () => {
    const stats = await (await fetch('/r2-node/stats')).json();
    const n = (id) => Number(document.querySelector(id)?.textContent ?? 'NaN');
    return stats.deliveries > 0 && stats.deliveries === n('#r2-signals') + n('#r2-projector-signals');
})()";

async fn run_with_projector(node: &TestNode) -> Result<Value> {
    let browser = Browser::launch().await?;
    let page = browser.new_page().await?;
    page.goto(&format!(
        "{}/stresstest/?profile=lean&devices=10&viewers=1&duration=4&scenario=rotate&autostart=1&keep=1",
        node.url()
    ))
    .await?;
    let summary = page.summary("stopped", WAIT).await?;
    eprintln!("{summary:#}");
    page.wait_for(ALL_PUSHES_ARRIVED, WAIT).await?;
    page.eval("document.querySelector('#b-delete').click()")
        .await?;
    page.summary("deleted", WAIT).await?;
    browser.close().await?;
    Ok(summary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_projector_sees_every_device() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let node = TestNode::start(Some(&sites)).await?;

    let summary = run_with_projector(&node).await?;

    assert_eq!(summary["viewers"], 1);
    assert_eq!(summary["devices_created"], 10, "{summary}");
    assert_eq!(
        summary["sockets_live_max"],
        10 + 2 + 10,
        "10 phones, and the projector's view, monitor and device list"
    );
    let latency = &summary["projector_latency_ms"];
    assert!(
        latency["count"].as_u64().unwrap_or(0) > 10,
        "view signals matched to sends: {summary}"
    );
    assert!(latency["p50"].as_f64().unwrap_or(0.0) > 0.0, "{summary}");
    // Every scenario update reaches the phone's socket, the device list's socket and `view`.
    // The phones also got the `update`s sent on connect (theirs and the device list's, 2 per
    // device), which may come before the projector's own subscriptions are live.
    let phones = summary["signals_received"].as_u64().context("signals")?;
    let projector = summary["projector_signals"]
        .as_u64()
        .context("projector signals")?;
    assert!(
        projector >= 2 * (phones - 2 * 10),
        "phones {phones}, projector {projector}"
    );
    // The run loaded `view` and `monitor`, so it unloaded them too.
    assert_eq!(node.sentant_names().await?, Vec::<String>::new());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_already_there_is_left_alone() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let node = TestNode::start(Some(&sites)).await?;
    let load = |definition: String| {
        node.graphql(graphql::SENTANT_LOAD, json!({ "definition": definition }))
    };
    let view = load(graphql::view_definition()).await?["data"]["sentantLoad"]["id"].clone();
    let monitor = load(graphql::monitor_definition()).await?["data"]["sentantLoad"]["id"].clone();

    run_with_projector(&node).await?;

    assert_eq!(
        node.sentant_names().await?,
        vec!["monitor".to_owned(), "view".to_owned()]
    );
    let all = node.graphql(graphql::SENTANT_ALL, json!({})).await?;
    let ids: Vec<&Value> = all["data"]["sentantAll"]
        .as_array()
        .context("list")?
        .iter()
        .map(|s| &s["id"])
        .collect();
    assert!(
        ids.contains(&&view) && ids.contains(&&monitor),
        "same ids: {all}"
    );
    Ok(())
}
