//! The `webapp` profile in real headless Chromium against the local node with
//! the real node's behaviour (its defaults): a virtual device puts on the
//! wire what the recorded real phone did (Chromium's own network log,
//! compared with `webapp-phone-trace.json`), with its requests made by
//! `gloo-net` or by the lean request path (`http=lean`), and a class of 20 such devices
//! and a projector loads the node as a class does — five sockets per phone in
//! its first minute, three after, N + 2P + 1 pushes per update — with every
//! device's signal and view latency measured although the node sends values
//! as strings.
#![cfg(not(target_arch = "wasm32"))]

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use r2_testkit::wire::{compare, WireTrace};
use r2_testkit::{built_page_sites_dir, Browser, TestNode};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(120);

/// The recorded real phone.
fn reference() -> Result<WireTrace> {
    WireTrace::from_json(include_str!("fixtures/webapp-phone-trace.json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webapp_device_puts_on_the_wire_what_the_real_phone_did() -> Result<()> {
    webapp_device_wire("").await
}

/// The lean request path (`http=lean`) makes the same requests as
/// `gloo-net`'s: the same comparison passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lean_request_path_puts_the_same_requests_on_the_wire() -> Result<()> {
    webapp_device_wire("&http=lean").await
}

/// One `webapp` device (`extra` added to its query) against the recorded phone.
async fn webapp_device_wire(extra: &str) -> Result<()> {
    let sites = built_page_sites_dir()?;
    let node = TestNode::start(Some(&sites)).await?;
    let browser = Browser::launch().await?;
    let page = browser.new_page().await?;
    let log = page.record_network().await?;
    page.goto(&format!(
        "{}/stresstest/?profile=webapp&devices=1&viewers=0&scenario=rotate&duration=8&autostart=1&keep=1{extra}",
        node.url()
    ))
    .await?;
    let summary = page.summary("stopped", WAIT).await?;
    let mut recorded = log.trace(&[]);
    // The page's first contact (one `sentantAll` before any device joins) is
    // the tool's own check of the address, not the phone's.
    let first_phone_request = recorded
        .events
        .iter()
        .position(|e| e.operation.as_deref() == Some("sentantGet"))
        .context("the device made no request")?;
    let probe: Vec<_> = recorded.events[..first_phone_request]
        .iter()
        .filter(|e| e.kind == "http")
        .map(|e| e.operation.clone())
        .collect();
    assert_eq!(
        probe,
        [Some("sentantAll".to_owned())],
        "only the first contact precedes the phone"
    );
    recorded.events.drain(..first_phone_request);

    let differences = compare(&reference()?, &recorded);
    assert!(
        differences.is_empty(),
        "the virtual phone differs from the real one:\n- {}\nrecorded: {}",
        differences.join("\n- "),
        serde_json::to_string_pretty(&recorded)?
    );
    // It did send values, and the node's string values were read.
    let sends = recorded
        .http()
        .filter(|e| e.send_event().as_deref() == Some("set_sensor"))
        .count();
    assert!(sends >= 10, "{sends} values sent in 4 s of turning");
    assert!(
        summary["signal_latency_ms"]["count"].as_u64() > Some(0),
        "{summary}"
    );
    let http = if extra.contains("http=lean") {
        "lean"
    } else {
        "gloo"
    };
    assert_eq!(summary["http"], http, "{summary}");
    let load = &summary["load"];
    assert_eq!(load["posts_per_join"]["expected"], 8.0, "{load}");
    // The first phone of a node also loads `monitor`.
    assert_eq!(load["posts_per_join"]["observed"], 9.0, "{load}");
    assert_eq!(load["socket_opens_per_join"]["observed"], 5.0, "{load}");
    browser.close().await?;
    Ok(())
}

/// `/r2-node/stats` as numbers.
async fn stat(node: &TestNode, name: &str) -> Result<f64> {
    let stats = node.stats().await?;
    stats[name]
        .as_f64()
        .with_context(|| format!("stat {name}: {stats}"))
}

/// Waits until the node holds `want` sockets.
async fn await_sockets(node: &TestNode, want: f64, deadline: Instant) -> Result<()> {
    loop {
        let now = stat(node, "sockets").await?;
        if now == want {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "the node holds {now} sockets, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_webapp_phones_and_a_projector_load_the_node_as_a_class_does() -> Result<()> {
    const PHONES: f64 = 20.0;
    let sites = built_page_sites_dir()?;
    let node = TestNode::start(Some(&sites)).await?;
    let browser = Browser::launch().await?;
    let page = browser.new_page().await?;
    page.goto(&format!(
        "{}/stresstest/?devices=20&join_rate=10&scenario=sweep&duration=95&autostart=1&keep=1",
        node.url()
    ))
    .await?;
    // Every phone joined: its sensor page holds its three sockets.
    page.wait_for(
        "document.querySelector('#r2-live')?.textContent === '20/20'",
        WAIT,
    )
    .await?;
    let joined = Instant::now();
    // The projector: monitor, view and a card per phone.
    let projector = 2.0 + PHONES;
    // Within the first minute, the frozen connect pages' two sockets are still open.
    await_sockets(
        &node,
        5.0 * PHONES + projector,
        joined + Duration::from_secs(20),
    )
    .await?;
    // The node's idle timeout (60 s) ends them: three per phone after 70 s.
    let settled = joined + Duration::from_secs(70);
    await_sockets(
        &node,
        3.0 * PHONES + projector,
        settled + Duration::from_secs(5),
    )
    .await?;
    tokio::time::sleep_until(settled.into()).await;
    // Pushes per update, measured by the node over 10 s of steady state.
    let (pushes_0, updates_0) = (
        stat(&node, "deliveries").await?,
        stat(&node, "updates").await?,
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (pushes_1, updates_1) = (
        stat(&node, "deliveries").await?,
        stat(&node, "updates").await?,
    );
    let per_update = (pushes_1 - pushes_0) / (updates_1 - updates_0);
    let expected = PHONES + 2.0 + 1.0;
    assert!(
        (per_update - expected).abs() <= 0.02 * expected,
        "{per_update:.2} pushes per update, a class pushes {expected} ({} updates)",
        updates_1 - updates_0
    );
    // The projector's sockets are still live after 90 s.
    tokio::time::sleep_until((joined + Duration::from_secs(90)).into()).await;
    assert_eq!(stat(&node, "sockets").await?, 3.0 * PHONES + projector);

    let summary = page.summary("stopped", WAIT).await?;
    eprintln!("{}", serde_json::to_string_pretty(&summary["load"])?);
    assert_eq!(summary["profile"], "webapp");
    assert_eq!(summary["devices_created"], 20, "{summary}");
    for latency in [
        "signal_latency_ms",
        "view_latency_ms",
        "projector_latency_ms",
    ] {
        let count = summary[latency]["count"].as_u64().unwrap_or(0);
        assert!(
            count > 20,
            "{latency} measured {count} times although the node sends strings"
        );
    }
    assert_eq!(
        summary["signals_per_device_min"].as_u64().map(|n| n > 0),
        Some(true),
        "{summary}"
    );
    let load: &Value = &summary["load"];
    assert_eq!(load["sockets_peak"]["expected"], 5.0 * PHONES + projector);
    assert_eq!(load["pushes_per_update_expected"], expected);
    browser.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_one_browser_cannot_hold_is_refused_before_it_starts() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let node = TestNode::start(Some(&sites)).await?;
    let browser = Browser::launch().await?;
    let page = browser.new_page().await?;
    // 50 phones and a projector: 5 × 50 + 52 sockets in their first minute.
    page.goto(&format!(
        "{}/stresstest/?devices=50&autostart=1",
        node.url()
    ))
    .await?;
    let summary = page.summary("failed", WAIT).await?;
    let why = summary["errors"][0]["example"].as_str().unwrap_or_default();
    assert!(
        why.contains("302 websockets") && why.contains("sockets=shared"),
        "{summary}"
    );
    assert_eq!(node.stats().await?["loads"], 0, "nothing reached the node");
    browser.close().await?;
    Ok(())
}

/// A sites folder with the page and a stand-in for the WebApp at `iotdemo/`:
/// an `index.html` referencing two files of known sizes, and a file it does not.
fn sites_with_webapp() -> Result<(tempfile::TempDir, u64)> {
    let dir = r2_testkit::copy_of_page_sites()?;
    let app = dir.path().join("iotdemo");
    std::fs::create_dir_all(app.join("assets"))?;
    let index = r#"<!doctype html><html><head><script src="/iotdemo/assets/app.js"></script>
<link rel="stylesheet" href="assets/app.css"></head><body><div id="app"></div></body></html>"#;
    std::fs::write(app.join("index.html"), index)?;
    std::fs::write(app.join("assets/app.js"), vec![b'x'; 300_000])?;
    std::fs::write(app.join("assets/app.css"), vec![b'y'; 1_600_000])?;
    std::fs::write(app.join("assets/unused.woff2"), vec![b'z'; 50_000])?;
    Ok((dir, index.len() as u64 + 300_000 + 1_600_000))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_assets_each_page_load_downloads_the_webapp() -> Result<()> {
    let (sites, page_bytes) = sites_with_webapp()?;
    let node = TestNode::start(Some(sites.path())).await?;
    let browser = Browser::launch().await?;
    let page = browser.new_page().await?;
    page.goto(&format!(
        "{}/stresstest/?devices=2&viewers=1&assets=1&duration=2&autostart=1",
        node.url()
    ))
    .await?;
    let summary = page.summary("deleted", WAIT).await?;
    let load = &summary["load"];
    // Two pages per phone and the projector's one.
    assert_eq!(load["asset_loads"], 5, "{load}");
    assert_eq!(load["asset_bytes"], 5 * page_bytes, "{load}");
    assert!(load["asset_load_ms"]["count"].as_u64() == Some(5), "{load}");
    assert_eq!(summary["devices_created"], 2, "{summary}");
    browser.close().await?;
    Ok(())
}
