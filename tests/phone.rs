//! Real phones in the test, in headless Chromium against the local node:
//! device mode (`?device`) driven by synthetic `deviceorientation` events at
//! 60 Hz, its permission-denied, no-sensor and insecure-page paths, the
//! phone URL over HTTPS, the control page's QR join, and the `replay`
//! scenario playing a recorded trace on ten virtual devices.
//!
//! What device mode did is read from its `#r2-phone` JSON and cross-checked
//! with the node's own counters (read in-process: the same ones
//! `/r2-node/stats` serves).
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use r2_core::graphql;
use r2_core::scenario::{replay_offset_ms, Planner, Scenario, Trace};
use r2_core::throttle::Throttle;
use r2_testkit::{built_page_sites_dir, num, Browser, Page, TestNode};
use serde_json::{json, Value};

/// How long device mode may take to join and subscribe (the machine may be busy).
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the sends of a burst of readings may take to reach the node.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest a whole autostart replay run may take here.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// The name prefix device mode is given in these tests.
const PREFIX: &str = "r2s-phonetst-1-";

/// Device mode's report, once `condition` (JavaScript over the report `r`) holds.
async fn report_when(page: &Page, condition: &str, timeout: Duration) -> Result<Value> {
    let js = format!(
        "(() => {{ const e = document.querySelector('#r2-phone'); if (!e) return null; \
         const r = JSON.parse(e.textContent); return ({condition}) ? e.textContent : null; }})()"
    );
    let text = page.wait_for(&js, timeout).await?;
    serde_json::from_str(text.as_str().context("report is text")?).context("report is JSON")
}

/// Opens device mode at `base` (an origin) with `query` and waits until it
/// has joined and its subscription is live.
async fn open_live_phone(page: &Page, base: &str, query: &str) -> Result<Value> {
    page.goto(&format!("{base}/stresstest/?device&run={PREFIX}&{query}"))
        .await?;
    report_when(page, "r.state === 'live' && r.subscribed", JOIN_TIMEOUT).await
}

/// Opens device mode as [`open_live_phone`] does and turns motion on: a tap
/// on "Enable motion" where the browser asks for permission (Chromium, like
/// iOS, has `DeviceOrientationEvent.requestPermission`).
async fn open_listening_phone(page: &Page, base: &str, query: &str) -> Result<Value> {
    let joined = open_live_phone(page, base, query).await?;
    if joined["sensor"] == "needs-tap" {
        click(page, "#phone-enable").await?;
    }
    report_when(page, "r.sensor === 'listening'", JOIN_TIMEOUT).await
}

/// Dispatches one synthetic `deviceorientation` event per alpha, 60 a
/// second (a `setTimeout` loop), and returns each event's `[timeStamp, alpha]`
/// as the page saw it.
async fn play(page: &Page, alphas: &[f64]) -> Result<Vec<(f64, f64)>> {
    let js = format!(
        "new Promise(resolve => {{ const alphas = {}; const seen = []; let i = 0; \
         const step = () => {{ \
           const ev = new DeviceOrientationEvent('deviceorientation', {{alpha: alphas[i], beta: 0, gamma: 0}}); \
           window.dispatchEvent(ev); seen.push([ev.timeStamp, alphas[i]]); \
           i += 1; if (i < alphas.length) setTimeout(step, 1000 / 60); else resolve(seen); }}; \
         step(); }})",
        json!(alphas)
    );
    let seen = page.eval(&js).await?;
    let pairs: Vec<(f64, f64)> = serde_json::from_value(seen).context("[[t, alpha], ...]")?;
    ensure!(pairs.len() == alphas.len(), "every event was dispatched");
    Ok(pairs)
}

/// The values the sensor page's throttle lets through for these readings.
fn throttled(readings: &[(f64, f64)]) -> Vec<i64> {
    let mut throttle = Throttle::new();
    readings
        .iter()
        .filter_map(|&(t, alpha)| throttle.offer(alpha, t))
        .collect()
}

/// A phone at 60 Hz: turned at 40°/s for 1.5 s, held still (within one
/// degree) for 1 s, turned back at 90°/s for 0.5 s.
fn ramp() -> Vec<f64> {
    let turn = (0..90).map(|i| 20.2 + f64::from(i) * 40.0 / 60.0);
    let hold = (0..60).map(|i| 80.1 + 0.8 * (f64::from(i) / 7.0).sin().abs());
    let back = (0..30).map(|i| 80.0 - f64::from(i) * 1.5);
    turn.chain(hold).chain(back).collect()
}

/// Awaits the node's counters satisfying `condition`; returns them.
async fn stats_when(node: &r2_node::Node, condition: impl Fn(&Value) -> bool) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
    loop {
        let stats = node.stats_json();
        if condition(&stats) {
            return Ok(stats);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the node's counters never got there: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn values(report: &Value) -> Vec<i64> {
    report["sent"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

async fn click(page: &Page, selector: &str) -> Result<()> {
    let found = page
        .eval(&format!(
            "(() => {{ const b = document.querySelector({}); if (!b || b.disabled) return false; b.click(); return true; }})()",
            json!(selector)
        ))
        .await?;
    ensure!(found == json!(true), "{selector} is there and enabled");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_mode_sends_what_the_throttle_allows() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let node = TestNode::start_lenient(Some(&sites)).await?;
    let other = node
        .graphql(
            graphql::SENTANT_LOAD,
            json!({ "definition": graphql::device_definition("device 0001") }),
        )
        .await?;
    ensure!(other["data"]["sentantLoad"]["id"].is_string(), "{other}");
    let browser = Browser::launch().await?;
    let page = browser.new_page().await?;

    let joined = open_listening_phone(&page, &node.url(), "sensor_wait_ms=60000").await?;
    let name = joined["name"].as_str().context("a name")?.to_owned();
    assert!(name.starts_with(&format!("{PREFIX}phone-")), "{name}");
    assert_eq!(joined["sensor"], "listening", "{joined}");
    assert_eq!(values(&joined), Vec::<i64>::new());

    let readings = play(&page, &ramp()).await?;
    let expected = throttled(&readings);
    assert!(
        (9..=18).contains(&expected.len()),
        "3 s of motion at most every 200 ms, held still for 1 s: {expected:?}"
    );
    let n = expected.len();
    let report = report_when(
        &page,
        &format!("r.sent.length >= {n} && r.signals >= {n}"),
        SETTLE_TIMEOUT,
    )
    .await?;
    assert_eq!(values(&report), expected, "{report}");
    assert_eq!(report["sensor"], "streaming");
    assert_eq!(report["errors"], 0, "{report}");
    let signals = num(&report, "signals");
    assert!(
        signals <= n as u64 + 1,
        "one signal per update (and one for the update on connect): {report}"
    );
    let n = n as u64;
    let stats = stats_when(&node.running.node, |s| num(s, "sends") > 2 * n).await?;
    assert_eq!(
        num(&stats, "sends"),
        2 * n + 1,
        "set_sensor + update per value, and the update on connect: {stats}"
    );
    assert_eq!(num(&stats, "sends_rejected"), 0, "{stats}");
    assert_eq!(num(&stats, "loads"), 2, "{stats}");

    // Leave unloads this phone's sentant, and only it.
    click(&page, "#phone-leave").await?;
    report_when(&page, "r.state === 'left'", SETTLE_TIMEOUT).await?;
    assert_eq!(node.sentant_names().await?, vec!["device 0001".to_owned()]);
    let stats = stats_when(&node.running.node, |s| num(s, "sockets") == 0).await?;
    assert_eq!(num(&stats, "unloads"), 1, "{stats}");
    browser.close().await?;
    Ok(())
}

/// A hand picking a phone up and turning it: hold near 40°, turn smoothly
/// to 300° in 2 s, hold, turn back to 150° (4.5 s at 60 Hz, with tremor).
fn hand_motion() -> Vec<f64> {
    let frames = 270;
    (0..frames)
        .map(|i| {
            let t = f64::from(i) / 60.0;
            let ease = |from: f64, to: f64, start: f64, secs: f64| {
                let x = ((t - start) / secs).clamp(0.0, 1.0);
                from + (to - from) * (1.0 - (std::f64::consts::PI * x).cos()) / 2.0
            };
            let base = if t < 3.4 {
                ease(40.0, 300.0, 0.6, 2.0)
            } else {
                ease(300.0, 150.0, 3.4, 1.1)
            };
            let tremor = 0.8 * (2.0 * std::f64::consts::PI * 7.3 * t).sin()
                + 0.4 * (2.0 * std::f64::consts::PI * 11.1 * t + 1.0).sin();
            ((base + tremor) * 1000.0).round() / 1000.0
        })
        .collect()
}

/// Device mode records what its sensor reports, keeps it in local storage
/// as a replay trace; with `R2_WRITE_SAMPLE_TRACE=1` that recording becomes
/// the shipped `static/traces/sample.json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_mode_records_a_replayable_trace() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let node = TestNode::start_lenient(Some(&sites)).await?;
    let browser = Browser::launch().await?;
    let page = browser.new_page().await?;
    open_listening_phone(&page, &node.url(), "sensor_wait_ms=60000").await?;

    click(&page, "#phone-record").await?;
    let readings = play(&page, &hand_motion()).await?;
    report_when(
        &page,
        &format!("r.recorded === {}", readings.len()),
        SETTLE_TIMEOUT,
    )
    .await?;
    click(&page, "#phone-record-stop").await?;
    page.wait_for(
        "document.querySelector('#phone-download') !== null",
        SETTLE_TIMEOUT,
    )
    .await?;
    let stored = page.eval("localStorage.getItem('r2-stress.trace')").await?;
    let text = stored.as_str().context("a trace in local storage")?;
    let trace = Trace::from_json(text)?;
    let first = readings[0].0;
    let expected: Vec<(f64, f64)> = readings.iter().map(|&(t, a)| (t - first, a)).collect();
    let got: Vec<(f64, f64)> = trace.events().iter().map(|e| (e.t_ms, e.alpha)).collect();
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert!((g.0 - e.0).abs() < 1e-6 && g.1 == e.1, "{g:?} vs {e:?}");
    }
    // While recording, the page went on sending through the throttle: only
    // values it read, never more often than the throttle allows. (The exact
    // sequence is asserted by the ramp test.)
    let report = report_when(&page, "true", SETTLE_TIMEOUT).await?;
    let sent = values(&report);
    let read: std::collections::BTreeSet<i64> =
        readings.iter().map(|r| r.1.floor() as i64).collect();
    assert!(
        !sent.is_empty() && sent.iter().all(|v| read.contains(v)),
        "{sent:?}"
    );
    let span_ms = readings.last().map_or(0.0, |r| r.0) - readings[0].0;
    assert!(
        sent.len() as f64 <= span_ms / 200.0 + 1.0,
        "{} sends in {span_ms} ms",
        sent.len()
    );

    if std::env::var_os("R2_WRITE_SAMPLE_TRACE").is_some() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("static/traces/sample.json");
        std::fs::write(&path, format!("{}\n", trace.to_json()))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "wrote {} ({} readings)",
            path.display(),
            trace.events().len()
        );
    }
    browser.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_motion_says_so_and_the_colour_buttons_send() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let node = TestNode::start_lenient(Some(&sites)).await?;
    let browser = Browser::launch().await?;
    let page = browser.new_page().await?;
    // iOS's permission prompt, answered "Don't allow".
    page.add_init_script(
        "DeviceOrientationEvent.requestPermission = () => Promise.resolve('denied');",
    )
    .await?;
    let joined = open_live_phone(&page, &node.url(), "").await?;
    assert_eq!(joined["sensor"], "needs-tap", "{joined}");
    assert_eq!(joined["buttons"], false, "{joined}");

    click(&page, "#phone-enable").await?;
    let denied = report_when(&page, "r.sensor === 'denied'", SETTLE_TIMEOUT).await?;
    let message = denied["message"].as_str().context("a message")?;
    assert!(
        message.contains("denied") && message.contains("colour buttons"),
        "{message}"
    );
    let shown = page.text("#r2-phone-message").await?.unwrap_or_default();
    assert_eq!(
        shown, message,
        "the message is on the page, not only in the report"
    );

    click(&page, "#colour-150").await?;
    click(&page, "#colour-290").await?;
    let report = report_when(&page, "r.sent.length === 2", SETTLE_TIMEOUT).await?;
    assert_eq!(values(&report), vec![150, 290]);
    let stats = stats_when(&node.running.node, |s| num(s, "sends") >= 5).await?;
    assert_eq!(
        num(&stats, "sends"),
        5,
        "two taps and the update on connect: {stats}"
    );
    browser.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sensor_says_so_after_the_wait() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let node = TestNode::start_lenient(Some(&sites)).await?;
    let browser = Browser::launch().await?;
    let page = browser.new_page().await?;
    open_live_phone(&page, &node.url(), "sensor_wait_ms=500").await?;
    click(&page, "#phone-enable").await?;
    let missing = report_when(&page, "r.sensor === 'missing'", SETTLE_TIMEOUT).await?;
    let message = missing["message"].as_str().context("a message")?;
    assert!(
        message.contains("no motion sensor")
            && message.contains("0.5 s")
            && message.contains("colour buttons"),
        "{message}"
    );
    assert_eq!(missing["buttons"], true);
    page.wait_for(
        "document.querySelectorAll('[id^=colour-]').length === 5",
        SETTLE_TIMEOUT,
    )
    .await?;
    click(&page, "#colour-80").await?;
    let report = report_when(&page, "r.sent.length === 1", SETTLE_TIMEOUT).await?;
    assert_eq!(values(&report), vec![80]);
    stats_when(&node.running.node, |s| num(s, "sends") == 3).await?;
    browser.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insecure_page_says_motion_needs_https() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let node = TestNode::start_lenient(Some(&sites)).await?;
    let port = node.running.http.context("http listener")?.port();
    // A name other than localhost over plain HTTP: not a secure context.
    let browser = Browser::launch_with(&["--host-resolver-rules=MAP phone.test 127.0.0.1"]).await?;
    let page = browser.new_page().await?;
    page.goto(&format!(
        "http://phone.test:{port}/stresstest/?device&run={PREFIX}"
    ))
    .await?;
    let report = report_when(
        &page,
        "r.sensor === 'insecure' && r.state === 'live'",
        JOIN_TIMEOUT,
    )
    .await?;
    assert_eq!(page.eval("window.isSecureContext").await?, json!(false));
    let message = report["message"].as_str().context("a message")?;
    assert!(
        message.contains("HTTPS") && message.contains("colour buttons"),
        "{message}"
    );
    assert_eq!(report["buttons"], true);
    browser.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_url_works_over_https() -> Result<()> {
    let sites = built_page_sites_dir()?;
    // As `cargo xtask run` serves phones: HTTPS with a self-signed
    // certificate (here on loopback, a free port, and no plain HTTP).
    let running = r2_node::Running::start(r2_node::Config {
        https: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        http: None,
        sites: Some(sites),
        ..r2_node::Config::loopback()
    })
    .await?;
    let base = running.https_url().context("an HTTPS listener")?;
    let browser = Browser::launch().await?;
    let page = browser.new_page().await?;
    // The phone's "accept the certificate once".
    page.call(
        "Security.setIgnoreCertificateErrors",
        json!({ "ignore": true }),
    )
    .await?;
    open_listening_phone(&page, &base, "sensor_wait_ms=60000").await?;
    assert_eq!(page.eval("location.protocol").await?, json!("https:"));
    assert_eq!(page.eval("window.isSecureContext").await?, json!(true));

    let readings = play(&page, &ramp()[..60]).await?;
    let expected = throttled(&readings);
    ensure!(!expected.is_empty(), "a second of turning sends something");
    let n = expected.len();
    let report = report_when(&page, &format!("r.sent.length >= {n}"), SETTLE_TIMEOUT).await?;
    assert_eq!(values(&report), expected);
    let n = n as u64;
    let stats = stats_when(&running.node, |s| num(s, "sends") > 2 * n).await?;
    assert_eq!(num(&stats, "sends"), 2 * n + 1, "{stats}");
    assert_eq!(
        num(&stats, "subscriptions"),
        1,
        "subscribed over wss: {stats}"
    );
    browser.close().await?;
    running.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_page_shows_the_device_url_as_a_qr_code() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let node = TestNode::start_lenient(Some(&sites)).await?;
    let browser = Browser::launch().await?;
    let page = browser.new_page().await?;
    let url_text = "document.querySelector('#r2-join-url')?.textContent";

    // Opened via 127.0.0.1: phones cannot reach it, so the page asks.
    page.goto(&format!(
        "{}/stresstest/?profile=lean&devices=1",
        node.url()
    ))
    .await?;
    page.wait_for(
        "document.querySelector('#r2-join-missing') !== null",
        JOIN_TIMEOUT,
    )
    .await?;
    let body = page.text("main").await?.unwrap_or_default();
    assert!(body.contains("phones cannot reach"), "{body}");

    // With the address `cargo xtask run` prints: the QR code and its URL.
    page.goto(&format!(
        "{}/stresstest/?profile=lean&devices=1&phone=https%3A%2F%2F10.1.2.3%3A4005",
        node.url()
    ))
    .await?;
    let url = page.wait_for(url_text, JOIN_TIMEOUT).await?;
    assert_eq!(url, json!("https://10.1.2.3:4005/stresstest/?device"));
    let svg = page
        .wait_for(
            "document.querySelector('#r2-join-qr svg')?.outerHTML",
            JOIN_TIMEOUT,
        )
        .await?;
    assert!(
        svg.as_str()
            .is_some_and(|s| s.contains("<path") || s.contains("<rect")),
        "{svg}"
    );

    // Once a run exists, the URL carries its name prefix.
    page.wait_for(
        "document.querySelector('#r2-trace')?.dataset.state === 'loaded'",
        JOIN_TIMEOUT,
    )
    .await?;
    click(&page, "#b-create").await?;
    let url = page
        .wait_for(
            &format!("({url_text} || '').includes('&run=') && {url_text}"),
            JOIN_TIMEOUT,
        )
        .await?;
    let url = url.as_str().context("url")?;
    let prefix = url.split("&run=").nth(1).context("run=")?.to_owned();
    assert!(
        prefix.starts_with("r2s-") && prefix.ends_with("-1-"),
        "{url}"
    );

    // That URL, opened by a phone (here: the same path on the test node), joins the run.
    let phone = browser.new_page().await?;
    let phone_url = url.replace("https://10.1.2.3:4005", &node.url());
    phone
        .goto(&format!("{phone_url}&sensor_wait_ms=60000"))
        .await?;
    let joined = report_when(&phone, "r.state === 'live'", JOIN_TIMEOUT).await?;
    let name = joined["name"].as_str().context("name")?;
    assert!(
        name.starts_with(&format!("{prefix}phone-")),
        "{name} of {prefix}"
    );

    // The run's Delete unloads its own device, not the phone.
    page.wait_for(
        "document.querySelector('#r2-phase')?.textContent === 'ready'",
        JOIN_TIMEOUT,
    )
    .await?;
    click(&page, "#b-delete").await?;
    page.wait_for(
        "document.querySelector('#r2-phase')?.textContent === 'deleted'",
        JOIN_TIMEOUT,
    )
    .await?;
    assert_eq!(node.sentant_names().await?, vec![name.to_owned()]);
    browser.close().await?;
    Ok(())
}

/// One `sentantSend` the page made: to `id`, `event`, with `sensor` if any, at `at_ms`.
struct Send {
    id: String,
    event: String,
    sensor: Option<i64>,
    at_ms: f64,
}

/// The `sentantSend`s among the requests Chromium's network log saw (the
/// run engine's worker's included), in the order they were sent.
fn sends_of(trace: &r2_testkit::wire::WireTrace) -> Result<Vec<Send>> {
    let mut sends = Vec::new();
    for request in trace.http() {
        if request.query.as_deref() != Some(r2_core::webapp::SENTANT_SEND) {
            continue;
        }
        let vars: Value = serde_json::from_str(request.variables.as_deref().context("variables")?)?;
        let params: Value = serde_json::from_str(vars["parameters"].as_str().unwrap_or("{}"))?;
        sends.push(Send {
            id: vars["id"].as_str().context("id")?.to_owned(),
            event: vars["event"].as_str().context("event")?.to_owned(),
            sensor: params["sensor"].as_i64(),
            at_ms: request.t_ms,
        });
    }
    Ok(sends)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_plays_the_same_values_on_every_device() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let trace_text = std::fs::read_to_string(sites.join("stresstest/traces/sample.json"))?;
    let trace = Arc::new(Trace::from_json(&trace_text)?);
    let node = TestNode::start_lenient(Some(&sites)).await?;
    let browser = Browser::launch().await?;
    let page = browser.new_page().await?;
    let log = page.record_network().await?;
    let (devices, seed, duration_s) = (10u32, 3u64, 12.0);
    page.goto(&format!(
        "{}/stresstest/?profile=lean&devices={devices}&scenario=replay&seed={seed}&duration={duration_s}&trace=traces%2Fsample.json&autostart=1",
        node.url()
    ))
    .await?;
    let summary = page.summary("deleted", RUN_TIMEOUT).await?;
    let trace_state = page
        .eval("document.querySelector('#r2-trace').dataset.state")
        .await?;
    assert_eq!(
        trace_state,
        json!("loaded"),
        "the run played the shipped trace"
    );
    let sends = sends_of(&log.trace(&[]))?;

    // Each device's values, in the order it sent them.
    let mut by_device: BTreeMap<&str, (Vec<i64>, Option<f64>)> = BTreeMap::new();
    for send in sends.iter().filter(|s| s.event == "set_sensor") {
        let entry = by_device.entry(&send.id).or_default();
        entry
            .0
            .push(send.sensor.context("set_sensor carries its value")?);
        entry.1.get_or_insert(send.at_ms);
    }
    assert_eq!(by_device.len(), devices as usize, "every device sent");

    // What one device plays: the trace from its start, through the throttle.
    let expected: Vec<_> =
        Planner::new(Scenario::replay(trace.clone(), seed, 0, 0.0), f64::INFINITY)
            .take(1000)
            .collect();
    let offset0 = replay_offset_ms(&trace, seed, 0);
    let one_loop = expected
        .iter()
        .filter(|s| s.intended_ms < offset0 + trace.period_ms())
        .count();
    let expected: Vec<i64> = expected.iter().map(|s| s.value).collect();
    eprintln!(
        "replay: {one_loop} values per loop; values sent per device: {:?}",
        by_device.values().map(|(v, _)| v.len()).collect::<Vec<_>>()
    );
    for (id, (values, _)) in &by_device {
        assert!(
            values.len() >= one_loop,
            "device {id} played the whole trace at least once: {} of {one_loop} values",
            values.len()
        );
        assert_eq!(values[..], expected[..values.len()], "device {id}");
    }

    // ... each at its own offset: the first sends are spread as the offsets are.
    let spread = |mut times: Vec<f64>| {
        times.sort_by(f64::total_cmp);
        let first = times[0];
        times.into_iter().map(|t| t - first).collect::<Vec<_>>()
    };
    let seen = spread(by_device.values().filter_map(|(_, at)| *at).collect());
    let planned = spread(
        (0..devices)
            .map(|i| replay_offset_ms(&trace, seed, i))
            .collect(),
    );
    // Within 150 ms, and whatever the page's own timers were late by (a
    // stall of a machine running many tests at once, which the page saw).
    let late_ms = summary["scheduler_lag_ms"]["max"].as_f64().unwrap_or(0.0);
    for (s, p) in seen.iter().zip(&planned) {
        assert!(
            (s - p).abs() < 150.0 + late_ms,
            "first sends {seen:?} vs offsets {planned:?} (the page's timers were up to {late_ms} ms late)"
        );
    }
    assert!(
        planned.last().is_some_and(|p| *p > 500.0),
        "offsets differ: {planned:?}"
    );

    // The node counted the same: two sends per value, one update per device on connect.
    let values_sent: u64 = by_device.values().map(|(v, _)| v.len() as u64).sum();
    let stats = node.running.node.stats_json();
    assert_eq!(
        num(&stats, "sends"),
        2 * values_sent + u64::from(devices),
        "{stats}"
    );
    assert_eq!(num(&stats, "sends"), sends.len() as u64, "{stats}");
    assert_eq!(num(&summary, "sends_ok"), num(&stats, "sends"), "{summary}");
    assert_eq!(
        (num(&stats, "loads"), num(&stats, "unloads")),
        (10, 10),
        "{stats}"
    );
    browser.close().await?;
    Ok(())
}
