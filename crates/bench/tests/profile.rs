//! `r2-bench --profile`'s machinery in real headless Chromium against the
//! in-process node: a short run of `lean` devices with V8's sampling
//! profiler in the page and its engine's worker, summed by function, the
//! page's Rust named in its wasm.

use std::time::Duration;

use anyhow::{Context, Result};
use r2_bench::profile::Place;
use r2_bench::tab::{run_tab_profiled, Outcome, Scheme};
use r2_bench::NodeHandle;
use r2_core::config::RunConfig;
use r2_testkit::built_page_sites_dir;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profiled_run_names_the_pages_rust_in_the_page_and_its_worker() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let node = NodeHandle::in_process(&sites).await?;
    let config = RunConfig {
        autostart: true,
        duration_s: 3.0,
        ..RunConfig::from_query("profile=lean&devices=10&scenario=sweep&sockets=shared")
            .context("the query")?
    };
    let (run, profile) = run_tab_profiled(
        &node,
        &config,
        Scheme::Http,
        Duration::from_secs(90),
        Some(500),
    )
    .await?;
    node.stop().await;
    assert_eq!(run.outcome, Outcome::Finished, "{run:?}");
    assert!(
        profile.targets >= 2,
        "the page and the engine's worker: {} targets",
        profile.targets
    );
    // Each target profiled over the scenario phase (about 3 s, seen by
    // polls 250 ms apart).
    assert!(
        profile.span_ms >= 2.0 * 2000.0,
        "{} ms profiled",
        profile.span_ms
    );
    assert!(
        profile.busy_ms() > 0.0 && profile.idle_ms > 0.0,
        "{profile:?}"
    );
    let wasm = |prefix: &str| {
        profile
            .functions
            .iter()
            .any(|f| f.place == Place::Wasm && f.name.starts_with(prefix) && f.total_ms > 0.0)
    };
    assert!(
        wasm("r2_stress::run::"),
        "the engine's Rust, by name: {}",
        profile.to_markdown(30)
    );
    assert!(
        profile
            .by_place()
            .iter()
            .any(|(place, ms)| *place == Place::Js && *ms > 0.0),
        "the wasm-bindgen glue: {:?}",
        profile.by_place()
    );
    Ok(())
}
