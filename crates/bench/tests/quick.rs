//! The benchmark's quick form, as CI runs it so that it cannot rot: the built
//! page in headless Chromium against the in-process node (10 devices, 3 s,
//! `sweep`, `shared` and `per-device`), a 10-process Python baseline over
//! HTTP and over HTTPS with a new TLS connection per request, and 10
//! `webapp` phones over HTTPS with h2 and with HTTP/1.1 offered (each
//! protocol really used, as the node counts it) and Chromium's floor for
//! their traffic, checked for sane figures.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use r2_bench::baseline::{BaselineOutcome, Transport};
use r2_bench::procs::ProcessKind;
use r2_bench::report;
use r2_bench::tab::Outcome;
use r2_bench::tab::Wire;
use r2_bench::{run_bench, BenchPlan, NodeHandle};
use r2_core::config::SocketsMode;
use r2_node::fidelity::Alpn;
use r2_testkit::built_page_sites_dir;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_form_measures_both_modes_and_the_baseline() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let node = NodeHandle::in_process(&sites).await?;
    let plan = BenchPlan::quick();
    let mut lines = Vec::new();
    let report = run_bench(&plan, &node, &mut |line| {
        eprintln!("{line}");
        lines.push(line);
    })
    .await;
    ensure!(report.failures.is_empty(), "{:?}", report.failures);
    ensure!(
        report.elapsed < Duration::from_secs(90),
        "{:?}",
        report.elapsed
    );

    let modes: Vec<SocketsMode> = report.pages.iter().map(|row| row.sockets()).collect();
    assert_eq!(modes, vec![SocketsMode::Shared, SocketsMode::PerDevice]);
    for row in &report.pages {
        let run = &row.run;
        assert_eq!(run.outcome, Outcome::Finished, "{row:?}");
        let summary = run
            .summary
            .as_ref()
            .context("a finished run has a summary")?;
        assert_eq!(summary.devices_created, 10, "{summary:?}");
        assert_eq!(summary.devices_deleted, 10, "{summary:?}");
        assert!(
            row.intended() > 10 * 3,
            "sends in 3 s of sweep: {}",
            row.intended()
        );
        assert_eq!(
            run.node.sends, summary.sends_ok,
            "the node answered what the page counted"
        );
        assert!(
            row.ratio() > 0.5 && row.ratio() <= 1.0,
            "achieved/intended {} ({} of {})",
            row.ratio(),
            row.achieved(),
            row.intended()
        );
        assert!(summary.scheduler_lag_ms.count > 0, "the hiccup meter ran");
        let window = &run.window;
        assert!(
            window.wall_s > 1.5 && window.wall_s < 10.0,
            "the scenario phase lasts about 3 s: {window:?}"
        );
        assert!(window.renderer_cpu_s() > 0.0, "{window:?}");
        assert!(window.client_cpu_s >= window.renderer_cpu_s(), "{window:?}");
        // The split covers the browser's processes (read a moment apart).
        let split = &window.cpu_split;
        assert!(
            (split.total() - window.client_cpu_s).abs() <= 0.1 + 0.05 * window.client_cpu_s,
            "{window:?}"
        );
        assert!(
            split[ProcessKind::Network] + split[ProcessKind::Browser] > 0.0,
            "every request passes the browser process and the network service: {window:?}"
        );
        assert!(
            window.node_cpu_s.is_some_and(|s| s > 0.0),
            "the in-process node's (and the benchmark's) CPU: {window:?}"
        );
        let memory = &run.memory;
        assert!(
            memory.idle_bytes > 0 && memory.peak_bytes >= memory.idle_bytes,
            "{memory:?}"
        );
        assert!(
            memory.wasm_peak_bytes >= 1 << 16,
            "a wasm page at least: {memory:?}"
        );
        assert!(memory.browser_peak_pss_bytes > 10 << 20, "{memory:?}");
        // The engine's allocator: in use while running, never more than at
        // its most, and all of it inside the wasm memory measured.
        assert!(
            memory.engine_running_bytes > 0
                && memory.engine_running_bytes <= memory.engine_peak_bytes
                && memory.engine_peak_bytes <= memory.wasm_peak_bytes,
            "{memory:?}"
        );
        assert!(
            run.browser_version.contains("Chrome"),
            "{}",
            run.browser_version
        );
    }

    let transports: Vec<Transport> = report.baselines.iter().map(|b| b.transport).collect();
    assert_eq!(transports, Transport::ALL);
    for base in &report.baselines {
        let BaselineOutcome::Finished(figures) = &base.outcome else {
            panic!("the baseline finished: {base:?}");
        };
        assert_eq!(
            (figures.processes, figures.devices_deleted),
            (10, 10),
            "{figures:?}"
        );
        assert!(
            figures.sends_ok > 10 && figures.sends_failed == 0,
            "{figures:?}"
        );
        assert_eq!(
            base.node.sends,
            figures.sends_ok + 10,
            "sweeps plus the initial set_sensor of each"
        );
        assert!(base.window.client_cpu_s > 0.0, "{base:?}");
        assert!(
            base.peaks.client.processes >= 11,
            "driver and ten device processes: {base:?}"
        );
        assert!(base.peaks.client.pss_bytes > 10 << 20, "{base:?}");
    }
    // A new TLS handshake per request costs the script more CPU per request.
    let per_request: Vec<f64> = report
        .baselines
        .iter()
        .map(|b| b.window.client_cpu_s / b.report().map_or(1, |r| r.sends_ok.max(1)) as f64)
        .collect();
    assert!(per_request[1] > per_request[0], "{per_request:?}");

    let ratios = report.ratios();
    assert_eq!(
        ratios.len(),
        4,
        "one per page mode and baseline at 10 devices"
    );
    for r in &ratios {
        assert!(r.cpu().is_finite() && r.cpu() > 0.0, "{r:?}");
        assert!(r.memory().is_finite() && r.memory() > 0.0, "{r:?}");
    }
    assert_eq!(node.stats().await?.sentants, 0, "every run cleaned up");

    let offers: Vec<Wire> = report.https.iter().map(|row| row.run.wire).collect();
    assert_eq!(
        offers,
        vec![Wire::Https(Alpn::H2AndHttp1), Wire::Https(Alpn::Http1)]
    );
    for row in &report.https {
        let run = &row.run;
        assert_eq!(run.outcome, Outcome::Finished, "{row:?}");
        let summary = run.summary.as_ref().context("a summary")?;
        assert_eq!(
            (
                summary.devices_created,
                summary.devices_deleted,
                summary.viewers
            ),
            (10, 10, 1),
            "{summary:?}"
        );
        assert!(run
            .config
            .node
            .as_deref()
            .is_some_and(|n| n.starts_with("https://")));
        // In 3 s phones that join (eight POSTs, a second's wait on each page
        // load) may send little more than their `update`s on connecting.
        assert!(summary.sends_ok > 0, "{summary:?}");
        assert_eq!(
            run.node.sends, summary.sends_ok,
            "the node answered what the page counted"
        );
        assert!(
            run.window.cpu_split[ProcessKind::Network] > 0.0,
            "TLS costs: {:?}",
            run.window
        );
        assert_eq!(report::protocol_mismatch(row), None, "{:?}", run.node);
    }
    let (h2, http1) = (&report.https[0].run.node, &report.https[1].run.node);
    assert!(h2.tls_h2 >= 1, "Chromium took h2 when offered: {h2:?}");
    assert!(
        http1.tls_h2 == 0 && http1.tls_http1 > 1,
        "HTTP/1.1 only: {http1:?}"
    );
    assert_eq!(report.https_pairs().len(), 1);
    // Chromium's floor for that traffic, beside the h2 run: every request
    // answered, every push of its updates read.
    // On the bare page's main thread, then in as many workers as the
    // page's engine had (10 phones: one).
    let threads: Vec<(u32, u32)> = report
        .webapp_floors
        .iter()
        .map(|f| (f.workers, f.run.in_workers))
        .collect();
    assert_eq!(threads, vec![(0, 0), (1, 1)]);
    for floor in &report.webapp_floors {
        assert_eq!(floor.beside, 10);
        assert!(
            floor.run.answered > 0 && floor.run.failed == 0 && floor.run.answered == floor.run.sent,
            "{floor:?}"
        );
        assert!(
            floor.run.signals > 0 && floor.run.node_pushes == floor.run.signals,
            "{floor:?}"
        );
        assert!(floor.browser_cores() > 0.0, "{floor:?}");
    }

    // The class: 10 phones with their own sockets fit one browser.
    let [class] = &report.classes[..] else {
        panic!("one class run: {:?}", report.classes);
    };
    assert_eq!(class.split(), vec![10]);
    let summary = class.tabs[0].run.summary.as_ref().context("a summary")?;
    assert_eq!(
        (
            summary.devices_created,
            summary.devices_deleted,
            summary.viewers
        ),
        (10, 10, 1),
        "{summary:?}"
    );
    assert_eq!(summary.sockets_mode, SocketsMode::PerDevice);
    // At most five sockets a phone in its first minute and the projector's
    // monitor, view and ten cards (in 3 s not every phone has all five).
    let peak = class.sockets_peak();
    assert!(peak > 10 && peak <= 5 * 10 + 12, "{peak}: {summary:?}");
    assert_eq!(class.node.sends, class.achieved(), "{:?}", class.node);
    assert!(class.pushes_received() > 0 && class.node.deliveries >= class.pushes_received());
    assert!(class.window().client_cpu_s > 0.0);

    // Chromium's floor, beside the largest `sweep` `shared` run: every
    // request it made answered by the node, its CPU measured.
    let floor = report.floor.as_ref().context("the floor ran")?;
    assert_eq!(floor.beside, 10);
    let run = &floor.run;
    assert!(run.sent > 0 && run.rate > 1.0, "{run:?}");
    assert_eq!((run.answered, run.failed), (run.sent, 0), "{run:?}");
    assert_eq!(
        run.node_requests, run.answered,
        "the node answered each: {run:?}"
    );
    assert!(run.window.cpu_split[ProcessKind::Renderer] > 0.0, "{run:?}");
    assert!(run.cpu_per_request_ms() > 0.0, "{run:?}");
    // Each bare page's lag meter fired while it worked.
    let measured = |lag: Option<f64>| lag.is_some_and(|ms| (0.0..1000.0).contains(&ms));
    assert!(measured(run.lag_p99_ms), "{run:?}");

    // The push floor: each update pushed to each of the page's sockets,
    // every push the node made read by the page.
    let push = report.push_floor.as_ref().context("the push floor ran")?;
    assert_eq!(push.sockets, 10);
    assert!(push.updates > 0, "{push:?}");
    assert_eq!(push.pushes, push.updates * 10, "{push:?}");
    assert_eq!(push.node_pushes, push.pushes, "{push:?}");
    assert!(push.cpu_per_push_ms() > 0.0, "{push:?}");
    assert!(measured(push.lag_p99_ms), "{push:?}");

    let markdown = report.to_markdown();
    for part in [
        "What a phone receives: the same bare page holds websockets",
        "## Chromium's floor: the WebApp's traffic from a bare page",
        "| a bare page: `fetch` only |",
        "| `sweep` | `shared` | 10 |",
        "## The baseline",
        "## Page : baseline",
        "## Goals",
        "## Where the CPU went",
        "## `webapp` phones over HTTPS: h2 against HTTP/1.1",
        "## A class from one machine",
        "| 10 | 1 (10) |",
        "went over the protocols offered",
        "the seed's script as it runs",
        "load average",
    ] {
        assert!(
            markdown.contains(part),
            "{part:?} missing from:\n{markdown}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("| `sweep` | `per-device` | 10 |")),
        "rows printed as they come"
    );
    node.stop().await;
    Ok(())
}
