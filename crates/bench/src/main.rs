//! `r2-bench`: runs the capacity benchmark and writes its Markdown report.
//!
//! `cargo xtask bench [--quick]` builds the release page and node and runs
//! this as `r2-bench --node-bin target/release/r2-node --sites target/r2-sites
//! [--out bench/RESULTS.md]`. Without `--node-bin` the node runs in-process.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use r2_bench::node::Behaviour;
use r2_bench::tab::{run_tab_profiled, Scheme};
use r2_bench::{run_bench, BenchPlan, NodeHandle};
use r2_core::config::RunConfig;
use r2_node::fidelity::Alpn;

#[derive(Debug, Parser)]
#[command(
    name = "r2-bench",
    about = "The r2-stress capacity benchmark: the page in headless Chromium against the local node, and the seed's Python baseline."
)]
struct Args {
    /// The quick form: 10 devices, 3 s, `sweep` in both modes, a 10-process baseline.
    #[arg(long)]
    quick: bool,
    /// The r2-node binary to run in its own process (default: in-process).
    #[arg(long, value_name = "PATH")]
    node_bin: Option<PathBuf>,
    /// A sites folder holding the built page at `stresstest/` (default: $R2_SITES_DIR, or trunk builds it).
    #[arg(long, value_name = "DIR")]
    sites: Option<PathBuf>,
    /// Write the Markdown report here.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Device counts, comma-separated (overrides the form's).
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    counts: Option<Vec<u32>>,
    /// Seconds of scenario per run.
    #[arg(long, value_name = "S")]
    duration: Option<f64>,
    /// The largest baseline (processes); 0 runs none.
    #[arg(long, value_name = "N")]
    baseline_max: Option<u32>,
    /// The whole invocation's time budget, seconds.
    #[arg(long, value_name = "S")]
    budget: Option<u64>,
    /// Counts of `webapp` phones run over HTTPS with h2 and with HTTP/1.1, comma-separated
    /// (overrides the form's; 0 runs none).
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    https_counts: Option<Vec<u32>>,
    /// Run only the `webapp` series over HTTPS: no capacity series, no baseline.
    #[arg(long)]
    https_only: bool,
    /// Counts of `lean` `sweep` devices sending with `transport=socket`,
    /// comma-separated (overrides the form's; 0 runs none).
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    socket_counts: Option<Vec<u32>>,
    /// Counts of the same devices with the engine held to one worker
    /// (`workers=1`), comma-separated (overrides the form's; 0 runs none).
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    socket_one_worker_counts: Option<Vec<u32>>,
    /// Counts of `lean` `sweep` `shared` devices whose requests the lean
    /// request path makes (`http=lean`), comma-separated (overrides the
    /// form's; 0 runs none).
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    lean_counts: Option<Vec<u32>>,
    /// Run only the `transport=socket` series, its floor and the push floor: nothing else.
    #[arg(long)]
    socket_only: bool,
    /// Counts of phones in a class (`webapp` phones with their own sockets
    /// over several browsers), comma-separated (overrides the form's; 0 runs
    /// none).
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    class_counts: Option<Vec<u32>>,
    /// Counts of `webapp` phones in one tab sending with
    /// `transport=socket`, comma-separated (overrides the form's; 0 runs none).
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    webapp_socket_counts: Option<Vec<u32>>,
    /// Run only the class and the `webapp` `transport=socket` series.
    #[arg(long)]
    class_only: bool,
    /// Instead of the benchmark: one tab run with this page query (e.g.
    /// `profile=webapp&devices=20&viewers=1`; `autostart` and the
    /// `--duration` added), V8's sampling profiler running in the page and
    /// its workers over the scenario phase, and print where the tab's time
    /// went by function.
    #[arg(long, value_name = "QUERY")]
    profile: Option<String>,
    /// With `--profile`: load the page over HTTPS from a node behaving as the
    /// real node (TLS offering h2 and HTTP/1.1), as the `webapp` series do.
    #[arg(long, requires = "profile")]
    https: bool,
    /// With `--profile`: the profiler's sampling interval, microseconds.
    #[arg(long, value_name = "US", default_value_t = 200, requires = "profile")]
    profile_interval: u32,
    /// With `--profile`: how many functions each table lists.
    #[arg(long, value_name = "N", default_value_t = 40, requires = "profile")]
    profile_top: usize,
}

impl Args {
    fn plan(&self) -> BenchPlan {
        let mut plan = if self.quick {
            BenchPlan::quick()
        } else {
            BenchPlan::full()
        };
        if let Some(counts) = &self.counts {
            plan.counts = counts.clone();
            plan.counts.sort_unstable();
        }
        if let Some(duration) = self.duration {
            plan.duration_s = duration;
        }
        if let Some(max) = self.baseline_max {
            plan.baseline_max = max;
        }
        if let Some(budget) = self.budget {
            plan.budget = Duration::from_secs(budget);
        }
        if let Some(counts) = &self.https_counts {
            plan.https_counts = positive_sorted(counts);
        }
        if let Some(counts) = &self.socket_counts {
            plan.socket_counts = positive_sorted(counts);
        }
        if let Some(counts) = &self.socket_one_worker_counts {
            plan.socket_one_worker_counts = positive_sorted(counts);
        }
        if let Some(counts) = &self.lean_counts {
            plan.lean_counts = positive_sorted(counts);
        }
        if let Some(counts) = &self.class_counts {
            plan.class_counts = positive_sorted(counts);
        }
        if let Some(counts) = &self.webapp_socket_counts {
            plan.webapp_socket_counts = positive_sorted(counts);
        }
        let only = [self.https_only, self.socket_only, self.class_only];
        if only.contains(&true) {
            // The `transport=socket` goal reads its floor from the push floor.
            if !self.socket_only {
                plan.push_floor.0 = 0;
            }
            plan.series.clear();
            plan.baseline_max = 0;
            plan.main_thread_counts.clear();
            plan.lean_counts.clear();
        }
        if self.https_only || self.class_only {
            plan.socket_counts.clear();
            plan.socket_one_worker_counts.clear();
        }
        if self.socket_only || self.class_only {
            plan.https_counts.clear();
        }
        if self.https_only || self.socket_only {
            plan.class_counts.clear();
            plan.webapp_socket_counts.clear();
        }
        plan
    }
}

/// Counts given on the command line: sorted, 0 (none) left out.
fn positive_sorted(counts: &[u32]) -> Vec<u32> {
    let mut counts: Vec<u32> = counts.iter().copied().filter(|n| *n > 0).collect();
    counts.sort_unstable();
    counts
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let plan = args.plan();
    anyhow::ensure!(
        plan.duration_s.is_finite() && plan.duration_s > 0.0,
        "--duration must be more than 0"
    );
    let sites = match &args.sites {
        Some(dir) => dir.clone(),
        None => r2_testkit::built_page_sites_dir()?,
    };
    let node = match &args.node_bin {
        Some(binary) => NodeHandle::spawn(binary, &sites).await?,
        None => NodeHandle::in_process(&sites).await?,
    };
    println!("r2-bench: node at {} ({})", node.url(), node.describe());
    if let Some(query) = &args.profile {
        let outcome = profile(&args, &plan, &node, query).await;
        node.stop().await;
        return outcome;
    }
    let report = run_bench(&plan, &node, &mut |line| println!("{line}")).await;
    node.stop().await;
    let markdown = report.to_markdown();
    println!("\n{markdown}");
    if let Some(out) = &args.out {
        std::fs::write(out, &markdown).with_context(|| format!("writing {}", out.display()))?;
        println!("r2-bench: wrote {}", out.display());
    }
    anyhow::ensure!(
        !report.pages.is_empty()
            || !report.https.is_empty()
            || !report.extra.is_empty()
            || !report.lean.is_empty()
            || !report.classes.is_empty(),
        "no page run was measured: {:?}",
        report.failures
    );
    Ok(())
}

/// `--profile`: one tab run with the profiler, and its tables.
async fn profile(
    args: &Args,
    plan: &BenchPlan,
    node: &NodeHandle,
    query: &str,
) -> anyhow::Result<()> {
    let config = RunConfig {
        autostart: true,
        duration_s: plan.duration_s,
        ..RunConfig::from_query(query).with_context(|| format!("the page query {query:?}"))?
    };
    let real;
    let (node, scheme) = if args.https {
        real = node.another(Behaviour::Real(Alpn::H2AndHttp1)).await?;
        (&real, Scheme::Https)
    } else {
        (node, Scheme::Http)
    };
    println!("r2-bench: profiling {}", config.to_query());
    let (run, profile) = run_tab_profiled(
        node,
        &config,
        scheme,
        plan.run_timeout(config.devices),
        Some(args.profile_interval),
    )
    .await?;
    let summary = run.summary.as_ref();
    println!(
        "r2-bench: {:?}; {} sends answered for {} values planned (two sends each, besides the updates on connecting), lag p99 {:.1} ms; renderer CPU {:.1} s over the scenario phase",
        run.outcome,
        summary.map_or(0, |s| s.sends_ok),
        summary.map_or(0, |s| s.sends_planned),
        summary.map_or(f64::NAN, |s| s.scheduler_lag_ms.p99),
        run.window.renderer_cpu_s(),
    );
    println!("\n{}", profile.to_markdown(args.profile_top));
    Ok(())
}
