//! Over real sockets, the real node's behaviours that change load or results
//! (`reality2-protocol.md`, "What the real node does"), each on by default
//! and each undone by `--lenient`: values interpolated as text, the 1 s wait
//! for an unknown id and for a `send` to a sentant that is not loaded, and
//! `__internal` cast to every sentant with a fresh id on a redefinition.
//! (h2 is tested in `tls.rs`, CORS and the new counters in `http.rs`,
//! `description` in `schema.rs` and `webapp_trace.rs`.)

mod common;

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use common::*;
use serde_json::{json, Value};
use uuid::Uuid;

/// The real node's wait for an unknown id: ten 100 ms retries.
const WAIT: Duration = Duration::from_secs(1);
/// Slack for "about 1 s" on a loaded machine (the lower bound is exact
/// tokio time, less a tick).
const SLACK: Duration = Duration::from_millis(1500);
/// What "at once" means on a loaded machine.
const AT_ONCE: Duration = Duration::from_millis(600);

fn about_a_second(elapsed: Duration) -> bool {
    elapsed >= WAIT - Duration::from_millis(50) && elapsed < WAIT + SLACK
}

#[tokio::test]
async fn sensors_are_stored_and_signalled_as_text_unless_lenient() -> Result<()> {
    for (node, stored) in [
        (TestNode::start().await?, json!("42")),
        (TestNode::lenient().await?, json!(42)),
    ] {
        let view = node.load(&view_definition()).await?;
        let (mut relayed, relayed_sub) = node.subscribed(&view, "update").await?;
        let id = node.load(&device_definition("device 0001")).await?;
        let (mut socket, sub) = node.subscribed(&id, "update").await?;
        // The init's literal 0 keeps its type.
        node.send(&id, "update", json!({})).await?;
        assert_eq!(socket.signal(&sub).await?["parameters"]["sensor"], json!(0));
        relayed.signal(&relayed_sub).await?;

        node.send(&id, "set_sensor", json!({"sensor": 42})).await?;
        node.send(&id, "update", json!({})).await?;
        let signal = socket.signal(&sub).await?;
        assert_eq!(
            signal["parameters"],
            json!({"sensor": stored, "name": "device 0001", "result": "ok"})
        );
        // `view` relays the same parameters to every phone.
        let seen = relayed.signal(&relayed_sub).await?;
        assert_eq!(seen["parameters"]["sensor"], stored);
    }
    Ok(())
}

/// Asks about `unknown` in the four ways the real node waits for; returns
/// each answer's time. Each must be the error the node gives an unknown id.
async fn ask_about_an_unknown_id(node: &TestNode, unknown: &str) -> Result<Vec<Duration>> {
    let get = async {
        let started = Instant::now();
        let (status, body) = node
            .webapp_post(SENTANT_GET_BY_ID, json!({ "id": unknown }))
            .await?;
        ensure!(status == 200, "{body}");
        ensure!(body["data"]["sentantGet"].is_null(), "{body}");
        ensure!(body["errors"][0]["message"] == "id", "{body}");
        Ok::<_, anyhow::Error>(started.elapsed())
    };
    let send = async {
        let started = Instant::now();
        let (_, body) = node.send(unknown, "update", json!({})).await?;
        ensure!(body["data"].is_null(), "{body}");
        ensure!(body["errors"][0]["message"] == "id", "{body}");
        Ok(started.elapsed())
    };
    let unload = async {
        let started = Instant::now();
        let (_, body) = node
            .webapp_post(SENTANT_UNLOAD, json!({ "id": unknown }))
            .await?;
        ensure!(body["data"].is_null(), "{body}");
        ensure!(body["errors"][0]["message"] == "id", "{body}");
        Ok(started.elapsed())
    };
    let subscribe = async {
        let mut socket = node.socket().await?;
        let started = Instant::now();
        let (status, response) = socket
            .doc(AWAIT_SIGNAL, await_signal_variables(unknown, "update"))
            .await?;
        ensure!(status == "error", "{response}");
        ensure!(
            response["errors"][0]["message"] == "invalid_signal",
            "{response}"
        );
        let elapsed = started.elapsed();
        // The socket still serves after the refusal.
        socket.heartbeat().await?;
        Ok(elapsed)
    };
    let (get, send, unload, subscribe) = tokio::try_join!(get, send, unload, subscribe)?;
    Ok(vec![get, send, unload, subscribe])
}

#[tokio::test]
async fn unknown_ids_answer_after_about_a_second_unless_lenient() -> Result<()> {
    let unknown = Uuid::new_v4().to_string();
    let node = TestNode::start().await?;
    let id = node.load(&device_definition("device 0001")).await?;
    let took = ask_about_an_unknown_id(&node, &unknown).await?;
    for (what, elapsed) in ["sentantGet", "sentantSend", "sentantUnload", "awaitSignal"]
        .iter()
        .zip(&took)
    {
        assert!(about_a_second(*elapsed), "{what} took {elapsed:?}");
    }
    // A known id answers at once, whatever the unknown ones cost.
    let started = Instant::now();
    node.data(SENTANT_GET_BY_ID, json!({ "id": id })).await?;
    let (mut socket, _) = node.subscribed(&id, "update").await?;
    assert!(started.elapsed() < AT_ONCE, "{:?}", started.elapsed());
    socket.heartbeat().await?;

    let lenient = TestNode::lenient().await?;
    for elapsed in ask_about_an_unknown_id(&lenient, &unknown).await? {
        assert!(elapsed < AT_ONCE, "leniently {elapsed:?}");
    }
    Ok(())
}

#[tokio::test]
async fn a_send_to_a_missing_view_holds_the_device_about_a_second_per_update() -> Result<()> {
    let node = TestNode::start().await?;
    let id = node.load(&device_definition("device 0001")).await?;
    let (mut socket, sub) = node.subscribed(&id, "update").await?;
    let started = Instant::now();
    // Two updates at once: both are accepted at once, then the device's
    // automation takes them one by one, each held by its send to `view`.
    let (first, second) = tokio::join!(
        node.send(&id, "update", json!({})),
        node.send(&id, "update", json!({}))
    );
    assert_eq!((first?.0, second?.0), (200, 200));
    assert!(started.elapsed() < AT_ONCE, "{:?}", started.elapsed());
    socket.signal(&sub).await?;
    let one = started.elapsed();
    socket.signal(&sub).await?;
    let two = started.elapsed();
    assert!(about_a_second(one), "first signal after {one:?}");
    assert!(
        two >= 2 * WAIT - Duration::from_millis(100) && two < 2 * WAIT + SLACK,
        "second signal after {two:?}"
    );

    // With `view` loaded the update goes through at once.
    node.load(&view_definition()).await?;
    let started = Instant::now();
    node.send(&id, "update", json!({})).await?;
    socket.signal(&sub).await?;
    assert!(started.elapsed() < AT_ONCE, "{:?}", started.elapsed());

    // Leniently the send to the missing view is dropped at once.
    let lenient = TestNode::lenient().await?;
    let id = lenient.load(&device_definition("device 0001")).await?;
    let (mut socket, sub) = lenient.subscribed(&id, "update").await?;
    let started = Instant::now();
    lenient.send(&id, "update", json!({})).await?;
    lenient.send(&id, "update", json!({})).await?;
    socket.signal(&sub).await?;
    socket.signal(&sub).await?;
    assert!(started.elapsed() < AT_ONCE, "{:?}", started.elapsed());
    Ok(())
}

/// The next `internal` signal about a sentant other than `monitor` (whose
/// own creation may or may not be reported, depending on timing).
async fn next_internal(socket: &mut TcpSocket, sub: &str) -> Result<Value> {
    loop {
        let signal = socket.signal(sub).await?;
        if signal["parameters"]["name"] != "monitor" {
            return Ok(signal["parameters"].clone());
        }
    }
}

#[tokio::test]
async fn internal_goes_to_every_sentant_with_a_fresh_id_on_redefinition_unless_lenient(
) -> Result<()> {
    for lenient in [false, true] {
        let node = if lenient {
            TestNode::lenient().await?
        } else {
            TestNode::start().await?
        };
        let monitor = node.load(&monitor_definition()).await?;
        let (mut socket, sub) = node.subscribed(&monitor, "internal").await?;
        let device = node.load(&device_definition("device 0001")).await?;
        let created = next_internal(&mut socket, &sub).await?;
        assert_eq!(
            created,
            json!({"id": device, "name": "device 0001", "activity": "created"})
        );
        let view = node.load(&view_definition()).await?;
        assert_eq!(next_internal(&mut socket, &sub).await?["id"], json!(view));

        // The redefinition keeps the sentant's id, but the real node's
        // `__internal` carries a freshly generated one.
        let again = node.load(&view_definition()).await?;
        assert_eq!(again, view, "a redefinition keeps its id");
        let redefined = next_internal(&mut socket, &sub).await?;
        assert_eq!(redefined["name"], "view");
        assert_eq!(redefined["activity"], "created");
        let told = redefined["id"].as_str().context("an id")?;
        if lenient {
            assert_eq!(told, view);
        } else {
            assert_ne!(told, view, "a fresh id");
            Uuid::try_parse(told).context("the fresh id is a UUID")?;
        }

        node.data(SENTANT_UNLOAD, json!({ "id": device })).await?;
        assert_eq!(
            next_internal(&mut socket, &sub).await?,
            json!({"id": device, "name": "device 0001", "activity": "deleted"})
        );
        // Every sentant gets each cast (monitor; +device; +view; again; then
        // the two left), or leniently the monitor alone.
        let casts = if lenient { 5 } else { 1 + 2 + 3 + 3 + 2 };
        assert_eq!(node.stats().await?["internal_casts"], casts);
        // Sentants without an `__internal` transition dropped theirs.
        node.assert_device_works("device 0002", 9).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_class_joining_costs_quadratic_internal_casts() -> Result<()> {
    const DEVICES: u64 = 60;
    let node = TestNode::start().await?;
    node.load(&monitor_definition()).await?;
    let (first, mut socket, sub) = node.subscribed_device("device 0000").await?;
    // monitor (1), view (2), device 0000 (3) so far.
    assert_eq!(node.stats().await?["internal_casts"], 6);
    let started = Instant::now();
    for n in 1..=DEVICES {
        // Each phone redefines `view` and loads its device, as the WebApp does.
        node.load(&view_definition()).await?;
        node.load(&device_definition(&format!("device {n:04}")))
            .await?;
    }
    let took = started.elapsed();
    // With k sentants before the join: k for the redefinition, k + 1 for the
    // device; k runs from 3 to DEVICES + 2.
    let joins: u64 = (3..DEVICES + 3).map(|k| 2 * k + 1).sum();
    assert_eq!(node.stats().await?["internal_casts"], 6 + joins);
    eprintln!(
        "{DEVICES} joins queued {joins} __internal events in {took:?} ({} sentants)",
        DEVICES + 3
    );
    // The first device still answers at once.
    node.send(&first, "update", json!({})).await?;
    socket.signal(&sub).await?;
    Ok(())
}
