//! A tab really hidden, in a headful Chromium under Xvfb launched without
//! the switches that keep hidden tabs' timers running. With the run's engine
//! on the page's main thread (`workers=0`) the browser throttles it: the run
//! is marked invalid, for that reason, not blamed on load. With the engine
//! in its Web Worker (the default) the browser does not: the run keeps up
//! while hidden, as its lag proves, and is judged as usual.
#![cfg(not(target_arch = "wasm32"))]

use std::time::Duration;

use anyhow::Result;
use r2_testkit::xvfb::Xvfb;
use r2_testkit::{built_page_sites_dir, Browser, TestNode};

const WAIT: Duration = Duration::from_secs(120);

/// Runs `query` in a tab that a second tab hides once it is running; its summary.
async fn hidden_run(query: &str) -> Result<Option<serde_json::Value>> {
    let Some(xvfb) = Xvfb::start().await? else {
        eprintln!(
            "skipped: Xvfb is not installed (apt-get install xvfb; cargo xtask test installs it)"
        );
        return Ok(None);
    };
    let sites = built_page_sites_dir()?;
    let node = TestNode::start_lenient(Some(&sites)).await?;
    let browser = Browser::launch_headful(xvfb.display(), &[]).await?;
    let page = browser.new_page().await?;
    page.goto(&format!("{}/stresstest/?{query}", node.url()))
        .await?;
    page.wait_for(
        "document.querySelector('#r2-phase')?.textContent === 'running'",
        WAIT,
    )
    .await?;
    assert_eq!(
        page.eval("document.hidden").await?,
        false,
        "the run's tab starts in front"
    );
    // A second tab in the same window, in front, as a user opens one: the
    // run's tab is hidden now.
    browser
        .call(
            "Target.createTarget",
            serde_json::json!({ "url": "about:blank" }),
        )
        .await?;
    page.wait_for("document.hidden", WAIT).await?;
    let summary = page.summary("deleted", WAIT).await?;
    eprintln!("{summary:#}");
    browser.close().await?;
    assert!(
        summary["hidden_while_sending_s"].as_f64() > Some(1.0),
        "{summary}"
    );
    Ok(Some(summary))
}

// One test: the two runs never overlap (the worker's must keep time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hidden_tab_throttles_the_main_thread_not_the_engines_worker() -> Result<()> {
    a_tab_hidden_while_sending_makes_an_invalid_run().await?;
    an_engine_in_a_worker_keeps_up_while_its_tab_is_hidden().await
}

async fn a_tab_hidden_while_sending_makes_an_invalid_run() -> Result<()> {
    let Some(summary) =
        hidden_run("profile=lean&devices=10&scenario=rotate&duration=8&workers=0&autostart=1")
            .await?
    else {
        return Ok(());
    };
    assert_eq!(summary["engine"], "main thread");
    assert_eq!(summary["verdict"], "invalid", "{summary}");
    let reasons = summary["reasons"].to_string();
    assert!(
        reasons.contains("hidden") && reasons.contains("while sending"),
        "{reasons}"
    );
    assert!(!reasons.contains("bottleneck"), "{reasons}");
    assert_eq!(summary["tab_bottleneck"], false);
    Ok(())
}

async fn an_engine_in_a_worker_keeps_up_while_its_tab_is_hidden() -> Result<()> {
    let Some(summary) =
        hidden_run("profile=lean&devices=10&scenario=sweep&duration=8&autostart=1").await?
    else {
        return Ok(());
    };
    assert_eq!(summary["engine"], "worker");
    let lag = summary["scheduler_lag_ms"]["p99"]
        .as_f64()
        .unwrap_or(f64::INFINITY);
    assert!(
        lag <= 20.0,
        "the worker's timers kept time while hidden: lag p99 {lag} ms"
    );
    assert_eq!(summary["tab_bottleneck"], false, "{summary}");
    assert_ne!(summary["verdict"], "invalid", "{summary}");
    Ok(())
}
