//! The view's cost does not grow with what it shows, in real headless
//! Chromium: the device grid is one canvas whatever the count, the charts
//! render once per new 1-second bucket (not at every refresh), and a finished
//! run renders nothing at all. The grid, repainted tile by tile while the
//! values change, shows what a whole repaint of it shows.
#![cfg(not(target_arch = "wasm32"))]

use std::time::Duration;

use anyhow::{Context, Result};
use r2_testkit::{open_page, Page, PageOnNode};

const WAIT: Duration = Duration::from_secs(120);

/// Render batches (MutationObserver callbacks) under `selector` during
/// `ms` of the page's own time.
async fn renders_under(page: &Page, selector: &str, ms: u32) -> Result<u64> {
    let js = format!(
        "(async () => {{ const root = document.querySelector('{selector}'); if (!root) return -1; \
         let batches = 0; const o = new MutationObserver(() => {{ batches += 1; }}); \
         o.observe(root, {{ subtree: true, childList: true, attributes: true, characterData: true }}); \
         await new Promise(r => setTimeout(r, {ms})); o.disconnect(); return batches; }})()"
    );
    let batches = page.eval(&js).await?;
    let batches = batches.as_i64().context("a count")?;
    anyhow::ensure!(batches >= 0, "{selector} is not on the page");
    Ok(batches as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_renders_only_what_changed() -> Result<()> {
    let PageOnNode {
        node: _node,
        browser,
        page,
    } = open_page("profile=lean&devices=120&duration=8&scenario=sweep&join_rate=200&autostart=1")
        .await?;
    page.wait_for(
        "document.querySelector('#r2-phase')?.textContent === 'running' && document.querySelector('.charts') !== null",
        WAIT,
    )
    .await?;

    // One canvas for 120 devices, no element per device.
    let grid = page
        .eval("[document.querySelectorAll('.tiles *').length, document.querySelector('#r2-tiles')?.dataset.count]")
        .await?;
    assert_eq!(grid, serde_json::json!([1, "120"]), "{grid}");

    // While it runs, the counters change at refreshes (up to 4 a second)
    // but the charts only when a bucket closes (once a second): 3 s see 3
    // or 4, and 5 leaves room for a late timer (at every refresh, 12).
    let counters = renders_under(&page, ".counters", 3000).await?;
    let charts = renders_under(&page, ".charts", 3000).await?;
    eprintln!("renders in 3 s: counters {counters}, charts {charts}");
    assert!(counters >= 1, "the counters are live");
    assert!(charts <= 5, "the charts rendered {charts} times in 3 s");

    // Finished: nothing renders any more.
    page.summary("deleted", WAIT).await?;
    let idle = renders_under(&page, "main", 2000).await?;
    assert_eq!(idle, 0, "a finished run rendered {idle} times in 2 s");
    browser.close().await
}

/// The grid's pixels (a PNG `data:` address of the canvas).
const GRID_PIXELS: &str = "document.querySelector('#r2-tiles').toDataURL()";

/// The grid's pixels once they stayed the same for half a second (the
/// engine posts a changed snapshot within a quarter).
async fn settled_grid(page: &Page) -> Result<String> {
    let js = format!(
        "(async () => {{ let last = null; for (;;) {{ const now = {GRID_PIXELS}; \
         if (now === last) return now; last = now; await new Promise(r => setTimeout(r, 500)); }} }})()"
    );
    let pixels = page.eval(&js).await?;
    Ok(pixels.as_str().context("a data address")?.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grid_repainted_tile_by_tile_matches_a_whole_repaint() -> Result<()> {
    // Values of every width the sweep makes, repainted tile by tile after
    // the grid was last painted whole (when the last device joined), then
    // every tile dimmed as its device is deleted. Once all are deleted
    // nothing changes any more (while the devices live, a signal may still
    // bring a first value seconds after the run stopped).
    let PageOnNode {
        node: _node,
        browser,
        page,
    } = open_page("profile=lean&devices=40&duration=3&scenario=sweep&join_rate=200&autostart=1")
        .await?;
    page.summary("deleted", WAIT).await?;
    let painted = settled_grid(&page).await?;
    let width = page
        .eval("document.querySelector('#r2-tiles').width")
        .await?;

    // A narrower window, then the same again: the grid is painted whole
    // at each width, the second time at the first width.
    let narrow =
        serde_json::json!({ "width": 420, "height": 800, "deviceScaleFactor": 0, "mobile": false });
    page.call("Emulation.setDeviceMetricsOverride", narrow)
        .await?;
    page.wait_for(
        &format!("document.querySelector('#r2-tiles').width !== {width}"),
        WAIT,
    )
    .await?;
    page.call(
        "Emulation.clearDeviceMetricsOverride",
        serde_json::json!({}),
    )
    .await?;
    page.wait_for(
        &format!("document.querySelector('#r2-tiles').width === {width}"),
        WAIT,
    )
    .await?;
    let repainted = settled_grid(&page).await?;

    assert!(
        painted == repainted,
        "the grid painted tile by tile ({} bytes of PNG) differs from the same grid painted whole ({} bytes)",
        painted.len(),
        repainted.len()
    );
    browser.close().await
}
