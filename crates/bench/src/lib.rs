//! `r2-bench`: the capacity benchmark of r2-stress (`cargo xtask bench`).
//!
//! It starts the node, drives the built page in headless Chromium through
//! the DevTools protocol at rising device counts (`sweep` and `rotate`,
//! `shared` and `per-device` subscriptions) until a run no longer keeps up,
//! runs the seed's one-process-per-device Python script as a baseline against
//! the same node, runs `webapp` phones over HTTPS with h2 and with HTTP/1.1
//! offered, runs a class of `webapp` phones with their own sockets over as
//! many browsers as Chromium's socket cap needs, and reports one row per
//! run, where each run's CPU went (by Chromium process type, and the node),
//! the capacity of each series, the page : baseline ratios, the goals, and
//! what ran out.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let sites = r2_testkit::built_page_sites_dir()?;
//! let node = r2_bench::NodeHandle::in_process(&sites).await?;
//! let report = r2_bench::run_bench(&r2_bench::BenchPlan::quick(), &node, &mut |line| println!("{line}")).await;
//! std::fs::write("RESULTS.md", report.to_markdown())?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`plan`]: [`BenchPlan`] (full and quick forms), the capacity criteria,
//!   join rates, and the requests a run intends.
//! - [`bench`]: [`run_bench`], the order of work within the time budget.
//! - [`tab`]: one page run in a fresh Chromium, with its costs and memory.
//! - [`class`]: a class of `webapp` phones with their own sockets over
//!   several browsers at once, judged as one run.
//! - [`floor`]: Chromium's floor, the WebApp's request made by a bare page
//!   with no code of ours.
//! - [`baseline`]: one run of `bench/baseline.py`, with its costs and memory.
//! - [`measure`]: costs over a scenario phase ([`measure::Window`]) and memory peaks.
//! - [`procs`]: CPU and memory of process trees, Chromium's processes by
//!   type, and machine CPU, from `/proc`.
//! - [`node`]: [`NodeHandle`], the node in its own process or in-process,
//!   lenient or as the real node with a chosen TLS offer.
//! - [`profile`]: where the tab's own time went by function, from V8's
//!   sampling profiles (`r2-bench --profile`).
//! - [`machine`]: the machine facts written beside the results.
//! - [`report`]: rows, capacity, ratios, goals, limits and Markdown.
//! - `main.rs`: the `r2-bench` command line.

pub mod baseline;
pub mod bench;
pub mod class;
pub mod floor;
pub mod machine;
pub mod measure;
pub mod node;
pub mod plan;
pub mod procs;
pub mod profile;
pub mod report;
pub mod tab;

pub use bench::run_bench;
pub use node::NodeHandle;
pub use plan::BenchPlan;
pub use report::Report;
