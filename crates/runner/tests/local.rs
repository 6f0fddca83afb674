//! `r2-stress-run` against the real local node serving the built page, with
//! a local chromedriver and headless Chromium: a passing run over 2 browsers
//! × 2 tabs whose totals match the node's counters and that leaves nothing
//! behind; a run failing its error threshold under injected 500s; and a node
//! address that refuses.
#![cfg(not(target_arch = "wasm32"))]

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use r2_testkit::{built_page_sites_dir, TestNode};
use serde_json::{json, Value};
use tokio::process::Command;

/// One run at a time: on CI's two cores, two runs' browsers at once would
/// make the tabs their own bottleneck.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The runner binary with the arguments every test gives.
fn runner(node: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_r2-stress-run"));
    // The device these tests count for: one socket, three requests per join.
    command
        .args(["--node", node, "--profile", "lean"])
        .kill_on_drop(true);
    command
}

/// Runs it to the end: exit code, stdout, stderr.
async fn finish(mut command: Command) -> Result<(i32, String, String)> {
    let output = tokio::time::timeout(Duration::from_secs(300), command.output())
        .await
        .context("the runner did not finish within 300 s")??;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    println!("--- runner stdout\n{stdout}--- runner stderr\n{stderr}");
    Ok((output.status.code().unwrap_or(-1), stdout, stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_of_two_tabs_pass_and_match_the_node() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let sites = built_page_sites_dir()?;
    let node = TestNode::start_lenient(Some(&sites)).await?;
    let out = tempfile::tempdir()?;
    let mut command = runner(&node.url());
    command.args([
        "--devices",
        "40",
        "--browsers",
        "2",
        "--tabs-per-browser",
        "2",
        "--duration",
        "6",
        // Four tabs share two cores with the node and the browsers: a calm
        // load (colour taps, joins spread over 4 s) keeps every tab's timers on time.
        "--scenario",
        "taps",
        "--join-rate",
        "10",
    ]);
    command
        .args(["--max-error-pct", "1", "--out"])
        .arg(out.path());
    let started = Instant::now();
    let (code, stdout, _) = finish(command).await?;
    let wall_s = started.elapsed().as_secs();
    assert!(stdout.contains("devices live"), "progress lines: {stdout}");

    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("summary.json"))?)?;
    let tabs = summary["tabs"].as_array().context("tabs")?;
    assert_eq!(tabs.len(), 4);
    let sessions: std::collections::BTreeSet<&str> = tabs
        .iter()
        .filter_map(|t| t["session_id"].as_str())
        .collect();
    assert_eq!(sessions.len(), 2, "two browsers: {sessions:?}");
    for tab in tabs {
        assert_eq!(tab["summary"]["devices_created"], 10, "{tab}");
        assert_eq!(tab["summary"]["devices_deleted"], 10, "{tab}");
        assert_eq!(tab["summary"]["leftovers_count"], 0, "{tab}");
    }
    let totals = &summary["totals"];
    assert_eq!(totals["devices_created"], 40);
    let stats = node.stats().await?;
    // Every device, and the fleet's control sentant, loaded and unloaded.
    // The four tabs and the control view join the fleet at once: each that
    // finds no control sentant loads it, and a later load of the same name
    // redefines the one sentant (same id), so it is unloaded once.
    let control_loads = stats["loads"].as_u64().context("loads")?.checked_sub(40);
    assert!(
        control_loads.is_some_and(|n| (1..=5).contains(&n)),
        "40 devices and 1 to 5 loads of the control sentant: {stats}"
    );
    assert_eq!(stats["unloads"], 41, "{stats}");
    // The node's sends are the devices' plus the fleet's own messages through
    // the node (a report a second from each tab, and the commands).
    let sends = stats["sends"].as_u64().context("sends")?;
    let device_sends = totals["sends_ok"].as_u64().context("sends_ok")?;
    assert!(device_sends > 0);
    let fleet_messages = sends
        .checked_sub(device_sends)
        .with_context(|| format!("node {sends} < tabs {device_sends}"))?;
    assert!(
        fleet_messages > 0 && fleet_messages <= 5 * (wall_s + 5) + 10,
        "{fleet_messages} fleet messages in {wall_s} s"
    );
    assert_eq!(totals["sends_failed"], 0);
    let left: Vec<String> = node
        .sentant_names()
        .await?
        .into_iter()
        .filter(|n| n.starts_with("r2s-"))
        .collect();
    assert!(left.is_empty(), "left on the node: {left:?}");

    for file in [
        "summary.json",
        "series.csv",
        "junit.xml",
        "tab-b1t1.json",
        "tab-b2t2.json",
        "tab-b1t1-series.csv",
    ] {
        assert!(out.path().join(file).is_file(), "{file} written");
    }
    let series = std::fs::read_to_string(out.path().join("series.csv"))?;
    assert!(series.lines().count() >= 4, "{series}");
    let junit = std::fs::read_to_string(out.path().join("junit.xml"))?;
    assert!(
        junit.contains(r#"<testcase name="max_error_pct""#),
        "{junit}"
    );
    // Last, as it also needs a machine calm enough that no tab is its own
    // bottleneck (the page's own check, part of the verdict).
    assert!(!junit.contains("<failure"), "{junit}");
    assert_eq!(code, 0, "exit code");
    assert!(stdout.lines().any(|l| l == "PASS"), "{stdout}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_errors_fail_the_error_threshold() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let sites = built_page_sites_dir()?;
    let node = TestNode::start_lenient(Some(&sites)).await?;
    let out = tempfile::tempdir()?;
    let mut command = runner(&node.url());
    command
        .args([
            "--devices",
            "10",
            "--duration",
            "5",
            "--join-rate",
            "20",
            "--max-error-pct",
            "1",
            "--out",
        ])
        .arg(out.path());
    let child = tokio::spawn(finish(command));
    // Faults from the moment every device is on the node (10 and the fleet's
    // control sentant), so that creation and the fleet's join are not hit.
    let deadline = Instant::now() + Duration::from_secs(120);
    while node.stats().await?["loads"].as_u64() < Some(11) {
        anyhow::ensure!(Instant::now() < deadline, "the devices were not created");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    node.set_faults(json!({ "error_rate": 0.1 })).await?;
    let (code, stdout, _) = child.await??;
    node.set_faults(json!({})).await?;
    assert_eq!(code, 1, "exit code");
    let verdict = stdout.lines().last().unwrap_or_default();
    assert!(verdict.starts_with("FAIL: max_error_pct: "), "{verdict}");
    assert!(node.stats().await?["injected_errors"].as_u64() > Some(0));
    let junit = std::fs::read_to_string(out.path().join("junit.xml"))?;
    assert!(
        junit.contains(r#"<testcase name="max_error_pct""#) && junit.contains("<failure message="),
        "{junit}"
    );
    Ok(())
}

#[tokio::test]
async fn a_refusing_node_is_not_run_and_says_why() -> Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let (code, stdout, stderr) = finish(runner(&format!("http://127.0.0.1:{port}"))).await?;
    assert_eq!(code, 2, "exit code");
    let reason = stderr.lines().last().unwrap_or_default();
    assert!(
        reason.contains("could not run") && reason.contains("connection refused"),
        "{reason}"
    );
    assert!(
        !stdout.contains("PASS") && !stdout.contains("FAIL"),
        "{stdout}"
    );
    Ok(())
}
