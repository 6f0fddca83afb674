//! The GraphQL schema of `r2-node` driven through `schema.execute` and
//! `execute_stream`: the IoT demo's sentants, every error word, subscriptions
//! (their first poll, their order, their counter) and the counters.
//!
//! `Node::new()` behaves as the real node; tests where its 1 s wait for
//! unknown ids is beside the point use [`lenient`] (the waits themselves are
//! tested in `tests/real_node.rs`).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use async_graphql::{Request, Response, Variables};
use futures::{FutureExt, Stream, StreamExt};
use r2_node::{Fidelity, Node};
use serde_json::{json, Value};

/// How long a test waits for something that should happen at once.
const WAIT: Duration = Duration::from_secs(10);

/// The IoT demo's device sentant, with `__name__` replaced as the WebApp does.
fn device(name: &str) -> String {
    r#"{"sentant": {"name": "__name__", "automations": [{"name": "counter", "transitions": [
      {"event": "init", "actions": [
        {"command": "set", "plugin": "ai.reality2.vars", "parameters": {"key": "name", "value": "__name__"}},
        {"command": "set", "plugin": "ai.reality2.vars", "parameters": {"key": "sensor", "value": 0}}]},
      {"event": "set_sensor", "public": true, "parameters": {"sensor": "integer"}, "actions": [
        {"command": "set", "plugin": "ai.reality2.vars", "parameters": {"key": "sensor", "value": "__sensor__"}}]},
      {"event": "update", "public": true, "actions": [
        {"command": "get", "plugin": "ai.reality2.vars", "parameters": {"key": "sensor"}},
        {"command": "get", "plugin": "ai.reality2.vars", "parameters": {"key": "name"}},
        {"command": "send", "parameters": {"event": "update", "to": "view"}},
        {"command": "signal", "public": true, "parameters": {"event": "update"}}]}]}]}}"#
        .replace("__name__", name)
}

/// The projector's `view`: re-publishes every device's update.
fn view() -> String {
    json!({"sentant": {"name": "view", "automations": [{"name": "view", "transitions": [
        {"event": "update", "public": true, "actions": [
            {"command": "signal", "public": true, "parameters": {"event": "update"}}]}]}]}})
    .to_string()
}

/// The projector's `monitor`: turns `__internal` into its public signal `internal`.
fn monitor() -> String {
    json!({"sentant": {"name": "monitor", "automations": [{"name": "monitor", "transitions": [
        {"event": "__internal", "actions": [
            {"command": "signal", "public": true, "parameters": {"event": "internal"}}]}]}]}})
    .to_string()
}

/// A node with `--lenient` behaviour: unknown ids answer at once.
fn lenient() -> Node {
    Node::with_fidelity(Fidelity::lenient())
}

fn request(query: &str, variables: Value) -> Request {
    Request::new(query).variables(Variables::from_json(variables))
}

/// Runs a document and returns the response as JSON.
async fn run(node: &Node, query: &str, variables: Value) -> Value {
    let response = node.schema().execute(request(query, variables)).await;
    serde_json::to_value(&response).expect("a response serialises")
}

/// Loads a definition and returns the sentant's id.
async fn load(node: &Node, definition: &str) -> Result<String> {
    let out = run(
        node,
        "mutation SentantLoad($definition: String!) { sentantLoad(definition: $definition) { id name } }",
        json!({ "definition": definition }),
    )
    .await;
    out["data"]["sentantLoad"]["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("load failed: {out}"))
}

async fn send(node: &Node, id: &str, event: &str, parameters: Value) -> Value {
    run(
        node,
        "mutation SentantSend($id: UUID4!, $event: String!, $parameters: Json, $passthrough: Json) {
           sentantSend(id: $id, event: $event, parameters: $parameters, passthrough: $passthrough) { id name } }",
        json!({ "id": id, "event": event, "parameters": parameters.to_string() }),
    )
    .await
}

/// Sends and checks the send was accepted.
async fn send_ok(node: &Node, id: &str, event: &str, parameters: Value) -> Result<()> {
    let out = send(node, id, event, parameters).await;
    if out["data"]["sentantSend"]["id"] != json!(id) {
        bail!("send {event} refused: {out}");
    }
    Ok(())
}

type Signals = std::pin::Pin<Box<dyn Stream<Item = Response> + Send>>;

const AWAIT_SIGNAL: &str = "subscription AwaitSignal($id: UUID4!, $signal: String!) {
  awaitSignal(id: $id, signal: $signal) { event parameters passthrough sentant { id name } } }";

/// Starts an `awaitSignal` stream and polls it once, as the transport does.
fn open(node: &Node, id: &str, signal: &str) -> (Signals, Option<Option<Response>>) {
    let mut stream: Signals = Box::pin(
        node.schema()
            .execute_stream(request(AWAIT_SIGNAL, json!({"id": id, "signal": signal}))),
    );
    let first = stream.next().now_or_never();
    (stream, first)
}

/// A subscription that must be accepted: its first poll is pending.
fn subscribe(node: &Node, id: &str, signal: &str) -> Result<Signals> {
    match open(node, id, signal) {
        (stream, None) => Ok(stream),
        (_, Some(first)) => bail!("subscription to {signal} was not pending: {first:?}"),
    }
}

/// The next signal's `awaitSignal` object.
async fn next_signal(stream: &mut Signals) -> Result<Value> {
    let response = tokio::time::timeout(WAIT, stream.next())
        .await
        .context("no signal in time")?
        .context("the subscription ended")?;
    let response = serde_json::to_value(&response)?;
    if response.get("errors").is_some() {
        bail!("signal with errors: {response}");
    }
    Ok(response["data"]["awaitSignal"].clone())
}

/// The next signal whose parameters have this `name` (earlier ones are skipped).
async fn next_signal_named(stream: &mut Signals, name: &str) -> Result<Value> {
    loop {
        let signal = next_signal(stream).await?;
        if signal["parameters"]["name"] == json!(name) {
            return Ok(signal);
        }
    }
}

/// Asserts a response failed with exactly one error with this message.
fn assert_error(out: &Value, message: &str) {
    let errors = out["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {out}"));
    assert_eq!(errors.len(), 1, "{out}");
    assert_eq!(errors[0]["message"], json!(message), "{out}");
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

#[tokio::test]
async fn a_device_update_reaches_its_own_and_views_subscribers() -> Result<()> {
    let node = Node::new();
    let view_id = load(&node, &view()).await?;
    let id = load(&node, &device("device 0001")).await?;
    let mut mine = subscribe(&node, &id, "update")?;
    let mut projector = subscribe(&node, &view_id, "update")?;

    send_ok(&node, &id, "set_sensor", json!({"sensor": 42})).await?;
    send_ok(&node, &id, "update", json!({})).await?;

    // The real node's vars plugin stores the interpolated sensor as text.
    let expected = json!({"sensor": "42", "name": "device 0001", "result": "ok"});
    let signal = next_signal(&mut mine).await?;
    assert_eq!(signal["event"], "update");
    assert_eq!(signal["parameters"], expected);
    assert_eq!(signal["passthrough"], json!({}));
    assert_eq!(signal["sentant"], json!({"id": id, "name": "device 0001"}));

    let relayed = next_signal(&mut projector).await?;
    assert_eq!(relayed["parameters"], expected);
    assert_eq!(relayed["sentant"]["id"], json!(view_id));
    Ok(())
}

#[tokio::test]
async fn passthrough_comes_back_with_the_signal() -> Result<()> {
    let node = Node::new();
    load(&node, &view()).await?;
    let id = load(&node, &device("device 0001")).await?;
    let mut signals = subscribe(&node, &id, "update")?;
    let out = run(
        &node,
        "mutation($id: UUID4!, $p: Json) { sentantSend(id: $id, event: \"update\", passthrough: $p) { id } }",
        json!({"id": id, "p": "{\"tag\": [1, 2]}"}),
    )
    .await;
    assert_eq!(out["data"]["sentantSend"]["id"], json!(id), "{out}");
    assert_eq!(
        next_signal(&mut signals).await?["passthrough"],
        json!({"tag": [1, 2]})
    );
    Ok(())
}

#[tokio::test]
async fn the_first_poll_rejects_bad_subscriptions_and_pends_on_good_ones() -> Result<()> {
    let node = lenient();
    let id = load(&node, &device("device 0001")).await?;
    let unknown = "00000000-0000-4000-8000-000000000000";
    for (sentant, signal) in [
        (unknown, "update"),
        (id.as_str(), "set_sensor"),
        (id.as_str(), "internal"),
    ] {
        let (mut stream, first) = open(&node, sentant, signal);
        let response = first
            .flatten()
            .with_context(|| format!("{sentant}/{signal}: first poll was not an error response"))?;
        let out = serde_json::to_value(&response)?;
        assert_error(&out, "invalid_signal");
        assert_eq!(out["errors"][0]["path"], json!(["awaitSignal"]));
        assert!(
            stream.next().await.is_none(),
            "a rejected subscription ends"
        );
    }
    for signal in ["update", "debug"] {
        assert!(subscribe(&node, &id, signal).is_ok());
    }
    Ok(())
}

#[tokio::test]
async fn the_subscription_counter_follows_the_streams() -> Result<()> {
    let node = Node::new();
    let id = load(&node, &device("device 0001")).await?;
    let count = || node.stats().subscriptions.load(Ordering::Relaxed);
    let first = subscribe(&node, &id, "update")?;
    let second = subscribe(&node, &id, "debug")?;
    assert_eq!(count(), 2);
    drop(first);
    assert_eq!(count(), 1);
    drop(second);
    assert_eq!(count(), 0);
    let (rejected, _) = open(&node, &id, "nope");
    assert_eq!(count(), 0, "a rejected subscription is not counted");
    drop(rejected);
    Ok(())
}

#[tokio::test]
async fn monitor_reports_loads_and_unloads() -> Result<()> {
    let node = Node::new();
    let monitor_id = load(&node, &monitor()).await?;
    let mut internal = subscribe(&node, &monitor_id, "internal")?;
    let id = load(&node, &device("device 0007")).await?;
    // The monitor may also report its own load, depending on when it handled it.
    let created = next_signal_named(&mut internal, "device 0007").await?;
    assert_eq!(
        created["parameters"],
        json!({"id": id, "name": "device 0007", "activity": "created"})
    );

    let out = run(
        &node,
        "mutation($id: UUID4!) { sentantUnload(id: $id) { id name } }",
        json!({"id": id}),
    )
    .await;
    assert_eq!(
        out["data"]["sentantUnload"],
        json!({"id": id, "name": "device 0007"})
    );
    let deleted = next_signal(&mut internal).await?;
    assert_eq!(
        deleted["parameters"],
        json!({"id": id, "name": "device 0007", "activity": "deleted"})
    );
    Ok(())
}

#[tokio::test]
async fn unloading_ends_the_sentants_subscriptions() -> Result<()> {
    let node = Node::new();
    let id = load(&node, &device("device 0001")).await?;
    let mut signals = subscribe(&node, &id, "update")?;
    run(
        &node,
        "mutation($id: UUID4!) { sentantUnload(id: $id) { id } }",
        json!({"id": id}),
    )
    .await;
    let end = tokio::time::timeout(WAIT, signals.next())
        .await
        .context("the stream did not end")?;
    assert!(end.is_none());
    wait_until("the subscription counter to drop", || {
        node.stats().subscriptions.load(Ordering::Relaxed) == 0
    })
    .await?;
    drop(signals);
    Ok(())
}

#[tokio::test]
async fn loading_a_name_again_redefines_it_and_keeps_its_id() -> Result<()> {
    let node = Node::new();
    let view_id = load(&node, &view()).await?;
    let first = load(&node, &device("device 0001")).await?;
    let mut signals = subscribe(&node, &first, "update")?;
    send_ok(&node, &first, "set_sensor", json!({"sensor": 99})).await?;

    let redefined = device("device 0001").replace("\"value\": 0", "\"value\": 5");
    let second = load(&node, &redefined).await?;
    assert_eq!(first, second);
    let all = run(&node, "{ sentantAll { id name } }", json!({})).await;
    assert_eq!(
        all["data"]["sentantAll"],
        json!([{"id": view_id, "name": "view"}, {"id": first, "name": "device 0001"}])
    );

    // The redefinition restarted it: `init` set the sensor to the new 5.
    send_ok(&node, &first, "update", json!({})).await?;
    assert_eq!(
        next_signal(&mut signals).await?["parameters"]["sensor"],
        json!(5)
    );
    Ok(())
}

#[tokio::test]
async fn yaml_definitions_load() -> Result<()> {
    let node = Node::new();
    let yaml = "sentant:\n  name: echo\n  description: says it back\n  automations:\n    - name: echo\n      transitions:\n        - event: say\n          public: true\n          parameters:\n            text: string\n          actions:\n            - command: signal\n              public: true\n              parameters:\n                event: said\n";
    let id = load(&node, yaml).await?;
    let mut said = subscribe(&node, &id, "said")?;
    send_ok(&node, &id, "say", json!({"text": "hello"})).await?;
    assert_eq!(
        next_signal(&mut said).await?["parameters"],
        json!({"text": "hello"})
    );
    let out = run(
        &node,
        "{ sentantGet(name: \"echo\") { description events { event parameters } signals } }",
        json!({}),
    )
    .await;
    assert_eq!(
        out["data"]["sentantGet"],
        json!({"description": "says it back", "events": [{"event": "say", "parameters": {"text": "string"}}], "signals": ["said"]})
    );
    Ok(())
}

#[tokio::test]
async fn events_and_signals_are_derived_from_the_definition() -> Result<()> {
    let node = Node::new();
    let id = load(&node, &device("device 0001")).await?;
    let query = "query SentantGet($id: UUID4!) { sentantGet(id: $id) { name id description events { event parameters } signals } }";
    let out = run(&node, query, json!({"id": id})).await;
    assert_eq!(
        out,
        json!({"data": {"sentantGet": {
            "name": "device 0001", "id": id, "description": "",
            "events": [{"event": "set_sensor", "parameters": {"sensor": "integer"}}, {"event": "update", "parameters": {}}],
            "signals": ["update"]}}})
    );
    // Leniently, a missing description is null.
    let node = lenient();
    let id = load(&node, &device("device 0001")).await?;
    let out = run(&node, query, json!({"id": id})).await;
    assert_eq!(out["data"]["sentantGet"]["description"], Value::Null);
    Ok(())
}

#[tokio::test]
async fn every_error_word() -> Result<()> {
    let node = lenient();
    let id = load(&node, &device("device 0001")).await?;
    let unknown = "00000000-0000-4000-8000-000000000000";

    let out = send(&node, &id, "init", json!({})).await;
    assert_error(&out, "invalid_event");
    assert_eq!(
        out["data"],
        Value::Null,
        "a failed non-null root field nulls data"
    );
    assert_eq!(out["errors"][0]["path"], json!(["sentantSend"]));
    assert!(out["errors"][0]["locations"].is_array());

    assert_error(&send(&node, unknown, "update", json!({})).await, "id");
    assert_error(&send(&node, &id, "update", json!([1])).await, "parameters");

    let out = run(
        &node,
        "query($id: UUID4!) { sentantGet(id: $id) { id } }",
        json!({"id": unknown}),
    )
    .await;
    assert_error(&out, "id");
    assert_eq!(
        out["data"],
        json!({"sentantGet": null}),
        "sentantGet is nullable"
    );
    assert_eq!(out["errors"][0]["path"], json!(["sentantGet"]));
    let out = run(
        &node,
        "query($name: String!) { sentantGet(name: $name) { id } }",
        json!({"name": "nobody"}),
    )
    .await;
    assert_error(&out, "name");
    assert_eq!(out["data"], json!({"sentantGet": null}));

    let out = run(
        &node,
        "mutation($id: UUID4!) { sentantUnload(id: $id) { id } }",
        json!({"id": unknown}),
    )
    .await;
    assert_error(&out, "id");
    assert_eq!(out["data"], Value::Null);

    let load_sentant = "mutation($d: String!) { sentantLoad(definition: $d) { id } }";
    let load_swarm = "mutation($d: String!) { swarmLoad(definition: $d) { name } }";
    let cases = [
        (load_sentant, "{\"sentant\": {\"name\": 3}}"),
        (load_swarm, "{\"swarm\": {\"sentants\": 3}}"),
        (load_sentant, "nonsense"),
        (load_swarm, "nonsense"),
        (load_sentant, "{"),
        (load_swarm, "{"),
        (load_sentant, "%ff"),
        (load_swarm, "%ff"),
    ];
    for (mutation, definition) in cases {
        let out = run(&node, mutation, json!({ "d": definition })).await;
        assert_error(&out, "definition");
        assert_eq!(out["data"], Value::Null);
    }
    assert_eq!(node.registry().len(), 1, "nothing was loaded");
    Ok(())
}

#[tokio::test]
async fn arguments_of_the_wrong_type_fail_validation_as_absinthe_says() -> Result<()> {
    let node = Node::new();
    let id = load(&node, &device("device 0001")).await?;
    let object_parameters = run(
        &node,
        "mutation SentantSend($id: UUID4!, $event: String!, $parameters: Json) {
           sentantSend(id: $id, event: $event, parameters: $parameters) { id } }",
        json!({"id": id, "event": "set_sensor", "parameters": {"sensor": 1}}),
    )
    .await;
    assert_error(
        &object_parameters,
        "Argument \"parameters\" has invalid value $parameters.",
    );
    assert!(
        object_parameters.get("data").is_none_or(Value::is_null),
        "{object_parameters}"
    );

    let cases = [
        ("query($id: UUID4!) { sentantGet(id: $id) { id } }", json!({"id": "not-a-uuid"}), "Argument \"id\" has invalid value $id."),
        ("{ sentantGet(id: \"1234\") { id } }", json!({}), "Argument \"id\" has invalid value \"1234\"."),
        ("mutation { sentantSend(id: \"x\", event: \"update\") { id } }", json!({}), "Argument \"id\" has invalid value \"x\"."),
        (
            "mutation($id: UUID4!) { sentantSend(id: $id, event: \"update\", parameters: {a: 1}) { id } }",
            json!({"id": id}),
            "Argument \"parameters\" has invalid value {a: 1}.",
        ),
        (
            "mutation($id: UUID4!) { sentantSend(id: $id, event: \"update\", parameters: \"{bad json\") { id } }",
            json!({"id": id}),
            "Argument \"parameters\" has invalid value \"{bad json\".",
        ),
    ];
    // Twice: the second time the document comes from the parsed-document cache.
    for (query, variables, message) in cases.iter().chain(&cases) {
        let out = run(&node, query, variables.clone()).await;
        let errors = out["errors"]
            .as_array()
            .with_context(|| format!("no errors for {query}: {out}"))?;
        assert_eq!(errors[0]["message"], json!(message), "{query}");
        assert_eq!(errors.len(), 1, "{out}");
        assert!(out.get("data").is_none_or(Value::is_null), "{out}");
    }
    assert_eq!(
        node.stats().sends.load(Ordering::Relaxed),
        0,
        "no invalid document reached a resolver"
    );
    Ok(())
}

#[tokio::test]
async fn a_sentant_handles_its_events_in_order() -> Result<()> {
    let node = Node::new();
    let counter = json!({"sentant": {"name": "counter", "automations": [{"name": "c", "transitions": [
        {"event": "step", "public": true, "actions": [
            {"command": "signal", "public": true, "parameters": {"event": "stepped"}}]}]}]}});
    let id = load(&node, &counter.to_string()).await?;
    let mut stepped = subscribe(&node, &id, "stepped")?;
    for n in 0..300 {
        send_ok(&node, &id, "step", json!({ "n": n })).await?;
    }
    for n in 0..300 {
        assert_eq!(
            next_signal(&mut stepped).await?["parameters"]["n"],
            json!(n)
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_delayed_send_arrives_after_its_delay() -> Result<()> {
    let node = Node::new();
    let timer = json!({"sentant": {"name": "timer", "automations": [{"name": "t", "transitions": [
        {"event": "start", "public": true, "actions": [
            {"command": "send", "parameters": {"event": "tick", "delay": 150}}]},
        {"event": "tick", "actions": [
            {"command": "signal", "public": true, "parameters": {"event": "ticked"}}]}]}]}});
    let id = load(&node, &timer.to_string()).await?;
    let mut ticked = subscribe(&node, &id, "ticked")?;
    let started = Instant::now();
    send_ok(&node, &id, "start", json!({"k": 1})).await?;
    let signal = next_signal(&mut ticked).await?;
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "arrived after {:?}",
        started.elapsed()
    );
    assert_eq!(signal["parameters"], json!({"k": 1}));
    Ok(())
}

#[tokio::test]
async fn a_later_delayed_send_of_the_same_event_replaces_the_pending_one() -> Result<()> {
    let node = Node::new();
    let timer = json!({"sentant": {"name": "debounce", "automations": [{"name": "t", "transitions": [
        {"event": "poke", "public": true, "actions": [
            {"command": "send", "parameters": {"event": "settled", "delay": 100}}]},
        {"event": "settled", "actions": [
            {"command": "signal", "public": true, "parameters": {"event": "settled"}}]}]}]}});
    let id = load(&node, &timer.to_string()).await?;
    let mut settled = subscribe(&node, &id, "settled")?;
    for n in 0..3 {
        send_ok(&node, &id, "poke", json!({ "n": n })).await?;
    }
    assert_eq!(
        next_signal(&mut settled).await?["parameters"]["n"],
        json!(2)
    );
    let more = tokio::time::timeout(Duration::from_millis(300), settled.next()).await;
    assert!(more.is_err(), "only the last poke settles: {more:?}");
    Ok(())
}

#[tokio::test]
async fn swarms_load_their_sentants() -> Result<()> {
    let node = Node::new();
    let swarm = json!({"swarm": {"name": "demo", "description": "view and monitor", "sentants": [
        serde_json::from_str::<Value>(&view())?, serde_json::from_str::<Value>(&monitor())?["sentant"], {"sentant": {"name": 1}}]}});
    let out = run(
        &node,
        "mutation($d: String!) { swarmLoad(definition: $d) { name description sentants { name } } }",
        json!({ "d": swarm.to_string() }),
    )
    .await;
    assert_eq!(
        out["data"]["swarmLoad"],
        json!({"name": "demo", "description": "view and monitor", "sentants": [{"name": "view"}, {"name": "monitor"}]})
    );
    assert_eq!(node.registry().len(), 2);
    Ok(())
}

#[tokio::test]
async fn node_lock_answers_true() {
    let node = Node::new();
    assert_eq!(
        run(&node, "mutation { nodeLock }", json!({})).await,
        json!({"data": {"nodeLock": true}})
    );
}

#[tokio::test]
async fn sentant_all_lists_oldest_first_and_counters_add_up() -> Result<()> {
    let node = lenient();
    let mut ids = Vec::new();
    for n in 1..=3 {
        ids.push(load(&node, &device(&format!("device {n:04}"))).await?);
    }
    run(
        &node,
        "mutation($id: UUID4!) { sentantUnload(id: $id) { id } }",
        json!({"id": ids[1]}),
    )
    .await;
    let all = run(&node, "{ sentantAll { name } }", json!({})).await;
    assert_eq!(
        all["data"]["sentantAll"],
        json!([{"name": "device 0001"}, {"name": "device 0003"}])
    );

    let mut signals = subscribe(&node, &ids[0], "update")?;
    send_ok(&node, &ids[0], "update", json!({})).await?;
    send(&node, &ids[0], "init", json!({})).await;
    send(&node, &ids[1], "update", json!({})).await;
    next_signal(&mut signals).await?;

    let stats = node.stats_json();
    // No device listens for `__internal`, so leniently none is queued.
    let expected = json!({"sentants": 2, "loads": 3, "unloads": 1, "sends": 1, "sends_rejected": 2,
        "signals": 1, "deliveries": 0, "sockets": 0, "subscriptions": 1,
        "injected_errors": 0, "dropped_sockets": 0, "requests": 0, "requests_in_flight": 0,
        "requests_in_flight_max": 0, "sockets_opened": 0,
        "heartbeats": 0, "updates": 1, "internal_casts": 0, "tls_h2": 0, "tls_http1": 0});
    for (name, value) in expected.as_object().into_iter().flatten() {
        assert_eq!(&stats[name], value, "{name}");
    }
    for (name, value) in stats.as_object().into_iter().flatten() {
        if name.starts_with("limit_") || name == "control_refused" {
            assert_eq!(value, 0, "{name}: no limit was hit");
        } else {
            assert!(expected.get(name).is_some(), "{name} is not checked");
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_loads_with_a_monitor_stay_fast() -> Result<()> {
    // Leniently `__internal` goes to the monitor alone; the real node's cast
    // to every sentant (quadratic in the count) is measured in
    // `tests/real_node.rs`.
    const DEVICES: usize = 3000;
    let node = lenient();
    load(&node, &view()).await?;
    let monitor_id = load(&node, &monitor()).await?;
    let mut internal = subscribe(&node, &monitor_id, "internal")?;
    let started = Instant::now();
    for n in 0..DEVICES {
        load(&node, &device(&format!("device {n:04}"))).await?;
    }
    let loaded = started.elapsed();
    next_signal_named(&mut internal, &format!("device {:04}", DEVICES - 1)).await?;
    println!(
        "{DEVICES} device loads took {loaded:?}; monitor saw them all after {:?}",
        started.elapsed()
    );
    assert!(
        loaded < Duration::from_secs(30),
        "{DEVICES} loads took {loaded:?}"
    );
    assert_eq!(node.registry().len(), DEVICES + 2);
    Ok(())
}

/// `sentantSend` through the schema (no HTTP) at the IoT demo's peak, 1,000
/// devices each changing every 200 ms (10,000 sends/s), each device subscribed
/// and `view` relaying everything: the rate achieved and the latency from
/// `set_sensor` to the device's `update` signal. Run it with
/// `cargo test -p r2-node --release --test schema -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it in release"]
async fn measure_send_throughput_and_signal_latency() -> Result<()> {
    const DEVICES: usize = 1000;
    const ROUNDS: usize = 20;
    let node = Node::new();
    let view_id = load(&node, &view()).await?;
    let mut relayed = subscribe(&node, &view_id, "update")?;
    let started = Instant::now();
    let mut ids = Vec::new();
    let mut receivers = Vec::new();
    for n in 0..DEVICES {
        let id = load(&node, &device(&format!("device {n:04}"))).await?;
        let mut signals = subscribe(&node, &id, "update")?;
        receivers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for _ in 0..ROUNDS {
                let signal = next_signal(&mut signals).await?;
                // The real node's text, or a number with --lenient.
                let sensor = &signal["parameters"]["sensor"];
                let sent = sensor
                    .as_u64()
                    .or_else(|| sensor.as_str()?.parse().ok())
                    .context("sensor")?;
                latencies.push(started.elapsed().as_micros() as u64 - sent);
            }
            anyhow::Ok(latencies)
        }));
        ids.push(id);
    }
    let relay = tokio::spawn(async move {
        for _ in 0..DEVICES * ROUNDS {
            next_signal(&mut relayed).await?;
        }
        anyhow::Ok(())
    });
    let sending = Instant::now();
    // Each device changes every 200 ms, like a phone at its fastest; the
    // devices take turns evenly over those 200 ms.
    const TASKS: usize = 50;
    let slot = Duration::from_millis(200) / DEVICES as u32;
    let mut senders = Vec::new();
    for (task, chunk) in ids.chunks(DEVICES / TASKS).enumerate() {
        let (node, chunk) = (node.clone(), chunk.to_vec());
        senders.push(tokio::spawn(async move {
            tokio::time::sleep(slot * task as u32).await;
            let mut pace = tokio::time::interval(slot * TASKS as u32);
            for _ in 0..ROUNDS {
                for id in &chunk {
                    pace.tick().await;
                    let now = started.elapsed().as_micros() as u64;
                    send_ok(&node, id, "set_sensor", json!({ "sensor": now })).await?;
                    send_ok(&node, id, "update", json!({})).await?;
                }
            }
            anyhow::Ok(())
        }));
    }
    for sender in senders {
        sender.await??;
    }
    let sends = (DEVICES * ROUNDS * 2) as f64;
    let rate = sends / sending.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    for receiver in receivers {
        latencies.extend(receiver.await??);
    }
    relay.await??;
    latencies.sort_unstable();
    let p = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "{sends} sends at {rate:.0}/s through the schema; set_sensor→signal latency p50 {} µs, p99 {} µs, max {} µs",
        p(0.5),
        p(0.99),
        p(1.0)
    );
    assert!(rate > 1000.0);
    Ok(())
}
