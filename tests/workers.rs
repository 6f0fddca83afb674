//! One run split over several Web Workers (issue 12, `workers=K`), in real
//! headless Chromium against the local node: each worker runs its share of
//! the devices, and the node sees exactly the run one engine would make —
//! every device loaded once under its own name, the projector's sentants
//! loaded once, every send the page counts accepted by the node, every
//! device's signals back — while the page shows one run: one summary whose
//! counts are the node's, merged from every worker's metrics, and nothing
//! left on the node.
#![cfg(not(target_arch = "wasm32"))]

use std::time::Duration;

use anyhow::Result;
use r2_testkit::{num, open_page, PageOnNode};
use serde_json::Value;

const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// Runs `query` on a fresh node: the summary, the node's counters, and how
/// many workers the page started.
async fn run(query: &str) -> Result<(Value, Value, usize)> {
    let PageOnNode {
        node,
        browser,
        page,
    } = open_page(query).await?;
    let summary = page.summary("deleted", RUN_TIMEOUT).await?;
    let workers = page.worker_count();
    browser.close().await?;
    let stats = node.stats().await?;
    eprintln!(
        "?{query}: verdict {} {}; engine {} in {workers} worker(s); created {} deleted {}; sends ok {} failed {} planned {}; signals {} (min per device {}); sockets max {}; node loads {} sends {} sockets opened {} sentants left {}",
        summary["verdict"],
        summary["reasons"],
        summary["engine"],
        num(&summary, "devices_created"),
        num(&summary, "devices_deleted"),
        num(&summary, "sends_ok"),
        num(&summary, "sends_failed"),
        num(&summary, "sends_planned"),
        num(&summary, "signals_received"),
        num(&summary, "signals_per_device_min"),
        num(&summary, "sockets_live_max"),
        num(&stats, "loads"),
        num(&stats, "sends"),
        num(&stats, "sockets_opened"),
        num(&stats, "sentants"),
    );
    Ok((summary, stats, workers))
}

/// What every split run must show: one run, its counts the node's.
fn check_one_run(summary: &Value, stats: &Value, devices: u64) {
    assert_eq!(num(summary, "devices_requested"), devices, "{summary}");
    assert_eq!(num(summary, "devices_created"), devices, "{summary}");
    assert_eq!(num(summary, "devices_deleted"), devices, "{summary}");
    assert_eq!(num(summary, "sends_failed"), 0, "{summary}");
    assert!(num(summary, "sends_ok") > 0, "{summary}");
    assert_eq!(
        num(summary, "sends_ok"),
        num(stats, "sends"),
        "every send the page counted, the node accepted: {summary}\n{stats}"
    );
    // Merged per device over the workers: a device of any share counts.
    assert!(num(summary, "signals_per_device_min") >= 1, "{summary}");
    assert_eq!(num(summary, "leftovers_count"), 0, "{summary}");
    assert_eq!(num(stats, "sentants"), 0, "all deleted: {stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_make_one_run_with_per_device_sockets_and_a_projector() -> Result<()> {
    let devices = 20;
    let (summary, stats, workers) = run(&format!(
        "profile=lean&devices={devices}&workers=2&viewers=1&scenario=sweep&duration=4&join_rate=20&seed=5&autostart=1"
    ))
    .await?;
    assert_eq!(workers, 2, "two engines ran");
    assert_eq!(summary["engine"], "2 workers", "{summary}");
    check_one_run(&summary, &stats, devices);
    // Each device's sentant loaded once, and the projector's `view` and
    // `monitor` once (by the first worker alone).
    assert_eq!(num(&stats, "loads"), devices + 2, "{stats}");
    assert!(num(&summary, "projector_signals") > 0, "{summary}");
    // One socket per device, whichever worker holds it; the projector's besides.
    assert!(num(&summary, "sockets_live_max") >= devices, "{summary}");
    assert!(num(&stats, "sockets_opened") >= devices, "{stats}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_each_share_one_socket() -> Result<()> {
    let devices = 18;
    let (summary, stats, workers) = run(&format!(
        "profile=lean&devices={devices}&workers=3&sockets=shared&scenario=sweep&duration=4&join_rate=60&seed=6&autostart=1"
    ))
    .await?;
    assert_eq!(workers, 3, "three engines ran");
    assert_eq!(summary["engine"], "3 workers", "{summary}");
    check_one_run(&summary, &stats, devices);
    // One shared socket per worker (6 subscriptions each), not one per device.
    assert_eq!(num(&stats, "sockets_opened"), 3, "{stats}");
    assert_eq!(num(&stats, "loads"), devices, "{stats}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_make_one_class_of_webapp_phones() -> Result<()> {
    let devices = 8;
    let (summary, stats, workers) = run(&format!(
        "profile=webapp&devices={devices}&workers=2&sockets=shared&scenario=sweep&duration=8&join_rate=8&seed=7&autostart=1"
    ))
    .await?;
    assert_eq!(workers, 2, "two engines ran");
    assert_eq!(summary["engine"], "2 workers", "{summary}");
    check_one_run(&summary, &stats, devices);
    // The phones of both workers see each other's values through `view`.
    assert!(num(&summary, "view_signals") > 0, "{summary}");
    Ok(())
}
