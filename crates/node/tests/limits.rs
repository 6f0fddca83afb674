//! Every limit of `r2_node::limits`, hit over real sockets by a hostile
//! definition or document: the attacker gets a clear error (or its events
//! are dropped), the hit is counted in `/r2-node/stats`, and within 1 s the
//! node still serves a normal device (load, subscribe, send, signal).

mod common;

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use common::*;
use r2_node::{fuzz::hostile_definition, limits::Limits, Config};
use serde_json::{json, Value};

/// Limits small enough to reach quickly, or the defaults where those are
/// quick to reach.
fn limits() -> Limits {
    Limits {
        max_inbox: 100,
        max_value_bytes: 64 * 1024,
        max_parameters_bytes: 32 * 1024,
        max_sentants: 30,
        max_swarm: 10,
        max_subscriptions_per_socket: 3,
        max_subscriptions_per_sentant: 5,
        max_response_bytes: 100 * 1024,
        ..Limits::default()
    }
}

async fn node() -> Result<TestNode> {
    TestNode::with_config(Config {
        limits: limits(),
        ..Config::loopback()
    })
    .await
}

/// The node serves a device within 1 s of `since`.
async fn serves_a_device(node: &TestNode, since: Instant, name: &str) -> Result<()> {
    tokio::time::timeout(Duration::from_secs(1), node.assert_device_works(name, 42))
        .await
        .context("the device did not work within 1 s")??;
    let took = since.elapsed();
    eprintln!("{name}: device served {took:?} after the limit was hit");
    Ok(())
}

/// The first error message of a GraphQL answer.
fn first_error(body: &Value) -> &str {
    body["errors"][0]["message"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_send_loop_ends_at_the_hop_limit() -> Result<()> {
    let node = node().await?;
    node.load(&hostile_definition(1, 0)).await?;
    node.await_stat("limit_hops", |n| n >= 1).await?;
    serves_a_device(&node, Instant::now(), "after-loop").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_loop_fills_the_inbox_and_is_dropped() -> Result<()> {
    let node = node().await?;
    node.load(&hostile_definition(2, 5)).await?;
    node.await_stat("limit_inbox", |n| n >= 1).await?;
    node.await_stat("limit_hops", |n| n >= 1).await?;
    serves_a_device(&node, Instant::now(), "after-fan-out").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_doubling_string_stops_at_the_value_limit() -> Result<()> {
    let node = TestNode::with_config(Config {
        limits: Limits {
            max_value_bytes: 16 * 1024,
            ..limits()
        },
        ..Config::loopback()
    })
    .await?;
    node.load(&hostile_definition(0, 0)).await?;
    node.await_stat("limit_value_bytes", |n| n >= 1).await?;
    serves_a_device(&node, Instant::now(), "after-doubling").await?;
    let nesting = hostile_definition(5, 0);
    node.load(&nesting).await?;
    node.await_stat("limit_value_bytes", |n| n >= 2).await?;
    serves_a_device(&node, Instant::now(), "after-nesting").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_over_the_limit_are_not_sent() -> Result<()> {
    let node = node().await?;
    let echo = json!({"sentant": {"name": "echo", "automations": [{"name": "a", "transitions": [
        {"event": "say", "public": true, "actions": [
            {"command": "signal", "public": true, "parameters": {"event": "said"}}]}]}]}});
    let id = node.load(&echo.to_string()).await?;
    let (mut socket, subscription) = node.subscribed(&id, "said").await?;
    // 40 KiB in 4 values of 10 KiB: each value is fine, the map is not.
    let chunk = "x".repeat(10 * 1024);
    let big = json!({"a": chunk, "b": chunk, "c": chunk, "d": chunk});
    let (status, _) = node.send(&id, "say", big).await?;
    ensure!(status == 200);
    node.await_stat("limit_parameters_bytes", |n| n >= 1)
        .await?;
    node.send(&id, "say", json!({"small": 1})).await?;
    let signal = socket.signal(&subscription).await?;
    assert_eq!(signal["parameters"]["small"], 1, "only the small one came");
    serves_a_device(&node, Instant::now(), "after-parameters").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentants_past_the_limit_are_refused() -> Result<()> {
    let node = node().await?;
    let mut ids = Vec::new();
    for n in 0..limits().max_sentants {
        ids.push(node.load(&device_definition(&format!("d{n}"))).await?);
    }
    let (status, body) = node
        .webapp_post(SENTANT_LOAD, load_variables(&device_definition("one-more")))
        .await?;
    assert_eq!((status, first_error(&body)), (200, "sentants"), "{body}");
    node.load(&device_definition("d0"))
        .await
        .context("redefining stays allowed")?;
    assert_eq!(node.stats().await?["limit_sentants"], 1);
    // Room for the device and the `view` it sends to (see `assert_device_works`).
    for id in &ids[1..3] {
        let (status, _) = node
            .webapp_post(SENTANT_UNLOAD, json!({ "id": id }))
            .await?;
        ensure!(status == 200);
    }
    serves_a_device(&node, Instant::now(), "after-sentants").await
}

/// `swarmLoad` of `members` sentants that each answer every `__internal`.
fn storm_swarm(members: usize) -> String {
    let sentants: Vec<Value> = (0..members)
        .map(|n| {
            let text = hostile_definition(3, n as u8);
            serde_json::from_str::<Value>(&text).expect("json")["sentant"].clone()
        })
        .collect();
    json!({"swarm": {"name": "storm", "sentants": sentants}}).to_string()
}

const SWARM_LOAD: &str =
    "mutation SwarmLoad($definition: String!) { swarmLoad(definition: $definition) { name sentants { id } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swarm_past_the_limit_is_refused_and_one_within_it_storms_boundedly() -> Result<()> {
    let node = node().await?;
    let too_big = storm_swarm(limits().max_swarm + 1);
    let (status, body) = node
        .webapp_post(SWARM_LOAD, json!({ "definition": too_big }))
        .await?;
    assert_eq!((status, first_error(&body)), (200, "swarm_size"), "{body}");
    assert_eq!(node.stats().await?["limit_swarm"], 1);
    let within = storm_swarm(limits().max_swarm);
    let data = node
        .data(SWARM_LOAD, json!({ "definition": within }))
        .await?;
    assert_eq!(
        data["swarmLoad"]["sentants"].as_array().map(Vec::len),
        Some(10)
    );
    node.await_stat("limit_hops", |n| n >= 1).await?;
    serves_a_device(&node, Instant::now(), "after-storm").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_past_the_socket_and_sentant_limits_are_refused() -> Result<()> {
    let node = node().await?;
    let id = node.load(&device_definition("watched")).await?;
    let mut socket = node.socket().await?;
    for _ in 0..limits().max_subscriptions_per_socket {
        socket.subscribe(&id, "update").await?;
    }
    let (status, body) = socket
        .doc(AWAIT_SIGNAL, await_signal_variables(&id, "update"))
        .await?;
    assert_eq!(status, "error");
    assert!(first_error(&body).starts_with("subscriptions"), "{body}");
    let mut other = node.socket().await?;
    other.subscribe(&id, "update").await?;
    other.subscribe(&id, "update").await?;
    let (status, body) = other
        .doc(AWAIT_SIGNAL, await_signal_variables(&id, "update"))
        .await?;
    assert_eq!(
        (status.as_str(), first_error(&body)),
        ("error", "subscriptions"),
        "{body}"
    );
    assert_eq!(node.stats().await?["limit_subscriptions"], 2);
    serves_a_device(&node, Instant::now(), "after-subscriptions").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_thousand_aliases_of_a_big_description_are_refused() -> Result<()> {
    let node = node().await?;
    // 30,000 x 512 KiB would be a 15 GB answer from a 900 kB request.
    let description = "d".repeat(512 * 1024);
    let big = json!({"sentant": {"name": "big", "description": description, "automations": []}});
    node.load(&big.to_string()).await?;
    let aliases: String = (0..30_000)
        .map(|n| format!("a{n}:sentantAll{{description}} "))
        .collect();
    let document = format!("{{ {aliases} }}");
    assert!(document.len() < 1 << 20, "within the body limit");
    let started = Instant::now();
    let (status, body) = node.webapp_post(&document, json!({})).await?;
    assert_eq!(status, 200);
    assert!(
        first_error(&body).starts_with("too many aliases"),
        "{}",
        first_error(&body)
    );
    assert!(body.get("data").is_none());
    eprintln!("30,000 aliases refused in {:?}", started.elapsed());
    assert_eq!(node.stats().await?["limit_query"], 1);
    serves_a_device(&node, Instant::now(), "after-aliases").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_or_complex_documents_are_refused() -> Result<()> {
    let node = node().await?;
    let deep = format!(
        "{{ __type(name: \"Sentant\") {{ fields {{ type {} name {} }} }} }}",
        "{ ofType ".repeat(25),
        "}".repeat(25)
    );
    let (_, body) = node.webapp_post(&deep, json!({})).await?;
    assert_eq!(first_error(&body), "Query is nested too deep.", "{body}");
    let wide = format!("{{ sentantAll {{ {} }} }}", "id name ".repeat(3000));
    let (_, body) = node.webapp_post(&wide, json!({})).await?;
    assert_eq!(first_error(&body), "Query is too complex.", "{body}");
    assert_eq!(node.stats().await?["limit_query"], 2);
    serves_a_device(&node, Instant::now(), "after-depth").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_over_the_response_limit_is_replaced_by_an_error() -> Result<()> {
    let node = node().await?;
    let description = "d".repeat(60 * 1024);
    let big = json!({"sentant": {"name": "big", "description": description, "automations": []}});
    let id = node.load(&big.to_string()).await?;
    let document = "query Q($id: UUID4!) { a: sentantGet(id: $id) { description } b: sentantGet(id: $id) { description } }";
    let (status, body) = node.webapp_post(document, json!({ "id": id })).await?;
    assert_eq!(status, 200);
    assert!(
        first_error(&body).starts_with("response too large"),
        "{body}"
    );
    let mut socket = node.socket().await?;
    let (status, body) = socket.doc(document, json!({ "id": id })).await?;
    assert_eq!(status, "error");
    assert!(
        first_error(&body).starts_with("response too large"),
        "{body}"
    );
    assert_eq!(node.stats().await?["limit_response_bytes"], 2);
    serves_a_device(&node, Instant::now(), "after-response").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_delays_leave_no_zombie_sentant() -> Result<()> {
    let node = node().await?;
    for delay in [
        json!(1e30),
        json!(-5),
        json!("NaN"),
        json!("soon"),
        json!(1e-9),
        json!("1e400"),
        json!("1e30"),
    ] {
        let def = json!({"sentant": {"name": "later", "automations": [{"name": "a", "transitions": [
            {"event": "init", "actions": [{"command": "send", "parameters": {"event": "never", "delay": delay}}]},
            {"event": "ping", "public": true, "actions": [
                {"command": "send", "parameters": {"event": "never", "delay": delay}},
                {"command": "signal", "public": true, "parameters": {"event": "pong"}}]}]}]}});
        let id = node.load(&def.to_string()).await?;
        let (mut socket, subscription) = node.subscribed(&id, "pong").await?;
        node.send(&id, "ping", json!({})).await?;
        let signal = within(socket.signal(&subscription))
            .await
            .with_context(|| format!("delay {delay}: the sentant stopped answering"))?;
        assert_eq!(signal["event"], "pong", "delay {delay}");
    }
    serves_a_device(&node, Instant::now(), "after-delays").await
}
