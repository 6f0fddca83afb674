//! Chromium's socket request floor in real headless Chromium against the
//! in-process node: a bare page's websockets join the control topic,
//! subscribe to their own device sentant's `update` signal and send the
//! devices' `doc` requests at a set rate; every one is answered on the
//! sockets (none over HTTP), each `update` signalled, with the browser's CPU
//! read, and the floor's sentants are gone after, also when the node
//! refuses to load them part-way.
//!
//! The `webapp` floor over HTTPS, against a node with the real node's
//! behaviour offering h2: a bare page of the node's HTTPS origin makes its
//! requests with `fetch`, half of them `view` updates, and reads every push
//! the node makes on its sockets, on its main thread or split over two
//! dedicated workers.

use anyhow::Result;
use r2_bench::floor::{run_socket_floor, run_webapp_floor};
use r2_bench::node::Behaviour;
use r2_bench::NodeHandle;
use r2_node::fidelity::Alpn;
use r2_testkit::built_page_sites_dir;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_floor_sends_its_requests_on_the_sockets_and_reads_every_reply() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let node = NodeHandle::in_process(&sites).await?;
    let sentants = node.stats().await?.sentants;
    // 3 sockets, 40 requests a second for 2 s.
    let run = run_socket_floor(&node, 3, 40.0, 2.0).await?;
    assert_eq!((run.sent, run.answered, run.failed), (80, 80, 0), "{run:?}");
    assert_eq!(run.node_requests, 0, "no request went over HTTP: {run:?}");
    assert_eq!(run.signals, 40, "a signal for each update: {run:?}");
    let stats = node.stats().await?;
    assert_eq!(
        stats.sentants, sentants,
        "the floor's sentants unloaded: {stats:?}"
    );
    assert!(
        run.window.wall_s > 1.5 && run.cpu_per_request_ms() > 0.0,
        "{run:?}"
    );
    // The page's 10 ms lag meter fired while it sent.
    assert!(
        run.lag_p99_ms
            .is_some_and(|lag| (0.0..1000.0).contains(&lag)),
        "{run:?}"
    );
    Ok(())
}

/// A load the node refuses part-way (past its 5,000 sentants) fails the
/// floor, and the sentants it had loaded are unloaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_floor_the_node_will_not_load_leaves_nothing_behind() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let node = NodeHandle::in_process(&sites).await?;
    let failed = run_socket_floor(&node, 5_001, 40.0, 1.0).await;
    let error = failed.expect_err("the 5,001st load is refused");
    assert!(
        format!("{error:#}").contains("loaded no sentant"),
        "{error:#}"
    );
    let stats = node.stats().await?;
    assert_eq!(
        (stats.sentants, stats.loads, stats.unloads),
        (0, 5_000, 5_000),
        "{stats:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webapp_floor_reads_every_push_of_its_updates_over_https() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let node = NodeHandle::in_process(&sites)
        .await?
        .another(Behaviour::Real(Alpn::H2AndHttp1))
        .await?;
    // 20 requests a second for 2 s (10 updates a second), and 50 pushes a
    // second: 5 sockets; on the page's main thread, then split over two
    // workers (3 and 2 sockets, 10 requests a second each).
    for workers in [0, 2] {
        let before = node.stats().await?;
        let floor = run_webapp_floor(&node, 7, workers, 20.0, 50.0, 2.0).await?;
        let run = &floor.run;
        assert_eq!(
            (floor.beside, floor.sockets, floor.workers, run.in_workers),
            (7, 5, workers, workers),
            "the traffic ran where it was asked to: {floor:?}"
        );
        assert_eq!((run.sent, run.answered, run.failed), (40, 40, 0), "{run:?}");
        assert_eq!(run.node_requests, 40, "{run:?}");
        // Every other request an update, each pushed to every socket and read.
        assert_eq!(run.signals, 20 * 5, "{run:?}");
        assert_eq!(run.node_pushes, run.signals, "{run:?}");
        assert!(
            floor.browser_cores() > 0.0 && floor.pushes_per_s() > 0.0,
            "{floor:?}"
        );
        assert!(
            run.lag_p99_ms
                .is_some_and(|lag| (0.0..1000.0).contains(&lag)),
            "{run:?}"
        );
        // It went over TLS, h2 chosen; `view`, loaded for it, is gone after.
        let after = node.stats().await?;
        let since = after.since(&before);
        assert!(since.tls_h2 > 0, "{since:?}");
        assert_eq!(after.sentants, before.sentants, "{after:?}");
    }
    Ok(())
}
