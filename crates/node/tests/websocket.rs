//! `/reality2/websocket` over real sockets: the Absinthe exchange of
//! `reality2-protocol.md` (join, `doc` subscriptions, pushes, unsubscribe,
//! heartbeat), V2 frames, many subscriptions per socket, the idle timeout,
//! and the frames Phoenix refuses — after which the node keeps serving.

mod common;

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use common::{
    device_definition, is_control_push, monitor_definition, send_variables, view_definition,
    Closed, Socket, TestNode, AWAIT_SIGNAL, SENTANT_ALL, SENTANT_SEND,
};
use r2_core::phoenix::{Frame, Vsn, CONTROL_TOPIC, EV_CLOSE, EV_ERROR};
use r2_node::Config;
use serde_json::{json, Value};

#[tokio::test]
async fn a_device_update_reaches_its_own_socket_and_the_view() -> Result<()> {
    let node = TestNode::start().await?;
    let view = node.load(&view_definition()).await?;
    let device = node.load(&device_definition("device 0001")).await?;
    let (mut view_socket, view_sub) = node.subscribed(&view, "update").await?;
    let (mut phone, phone_sub) = node.subscribed(&device, "update").await?;

    // On "connected" the phone asks for the current value.
    node.send(&device, "update", json!({})).await?;
    let current = phone.signal(&phone_sub).await?;
    assert_eq!(current["event"], "update");
    assert_eq!(current["parameters"]["sensor"], 0);
    assert_eq!(current["parameters"]["name"], "device 0001");
    assert_eq!(
        view_socket.signal(&view_sub).await?["parameters"]["sensor"],
        0
    );

    // A tilt: set_sensor then update, fired without waiting for each other.
    let (set, update) = tokio::join!(
        node.send(&device, "set_sensor", json!({ "sensor": 231 })),
        node.send(&device, "update", json!({}))
    );
    assert_eq!(set?.0, 200);
    assert_eq!(update?.0, 200);
    let tilted = phone.signal(&phone_sub).await?;
    let seen_by_view = view_socket.signal(&view_sub).await?;
    for signal in [&tilted, &seen_by_view] {
        assert_eq!(signal["event"], "update", "{signal}");
        assert_eq!(signal["parameters"]["name"], "device 0001", "{signal}");
    }
    // The update may have overtaken set_sensor; then a second update shows it.
    // The real node stores the interpolated sensor as text: "231".
    if tilted["parameters"]["sensor"] != node.sensor(231) {
        node.send(&device, "update", json!({})).await?;
        assert_eq!(
            phone.signal(&phone_sub).await?["parameters"]["sensor"],
            node.sensor(231)
        );
    }
    Ok(())
}

#[tokio::test]
async fn monitor_reports_sentants_created_and_deleted() -> Result<()> {
    let node = TestNode::start().await?;
    let monitor = node.load(&monitor_definition()).await?;
    let (mut socket, sub) = node.subscribed(&monitor, "internal").await?;
    let device = node.load(&device_definition("device 0001")).await?;
    let created = socket.signal(&sub).await?;
    assert_eq!(created["event"], "internal");
    assert_eq!(
        (
            &created["parameters"]["activity"],
            &created["parameters"]["name"],
            &created["parameters"]["id"]
        ),
        (&json!("created"), &json!("device 0001"), &json!(device))
    );
    node.data(common::SENTANT_UNLOAD, json!({ "id": device }))
        .await?;
    let deleted = socket.signal(&sub).await?;
    assert_eq!(deleted["parameters"]["activity"], "deleted");
    assert_eq!(deleted["parameters"]["id"], json!(device));
    Ok(())
}

#[tokio::test]
async fn unsubscribe_ends_the_pushes() -> Result<()> {
    let node = TestNode::start().await?;
    // `view` first, as the WebApp loads it: a device's `update` is then not held.
    node.load(&view_definition()).await?;
    let device = node.load(&device_definition("device 0001")).await?;
    let (mut socket, sub) = node.subscribed(&device, "update").await?;
    let (mut witness, witness_sub) = node.subscribed(&device, "update").await?;
    node.await_stat("subscriptions", |n| n == 2).await?;

    let frame = Frame::unsubscribe(socket.reference(), &sub);
    let (status, response) = socket.request(frame).await?;
    assert_eq!(
        (status.as_str(), response),
        ("ok", json!({ "subscriptionId": sub }))
    );
    node.await_stat("subscriptions", |n| n == 1).await?;

    node.send(&device, "update", json!({})).await?;
    witness.signal(&witness_sub).await?;
    // The next frame on the unsubscribed socket is the heartbeat's reply.
    socket.heartbeat().await?;
    Ok(())
}

#[tokio::test]
async fn heartbeats_are_answered_on_the_phoenix_topic() -> Result<()> {
    let node = TestNode::start().await?;
    let mut socket = Socket::connect(&node.ws_url(""), Vsn::V1).await?;
    // Before any join, as after.
    socket.heartbeat().await?;
    socket.join().await?;
    socket
        .send_text(r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":0}"#.into())
        .await?;
    let reply = socket.frame().await?;
    assert_eq!(reply.topic, "phoenix");
    assert_eq!(reply.reference, json!(0));
    assert_eq!(reply.payload, json!({"status": "ok", "response": {}}));
    Ok(())
}

#[tokio::test]
async fn v2_sockets_speak_arrays() -> Result<()> {
    let node = TestNode::start().await?;
    // `view` first, as the WebApp loads it: a device's `update` is then not held.
    node.load(&view_definition()).await?;
    let device = node.load(&device_definition("device 0001")).await?;
    let mut socket = Socket::connect(&node.ws_url("?vsn=2.0.0"), Vsn::V2).await?;
    socket
        .send_text(format!(r#"["3","3","{CONTROL_TOPIC}","phx_join",{{}}]"#))
        .await?;
    let reply = socket.ws_text().await?;
    assert_eq!(
        serde_json::from_str::<Value>(&reply)?,
        json!(["3", "3", CONTROL_TOPIC, "phx_reply", {"status": "ok", "response": {}}])
    );
    let sub = socket.subscribe(&device, "update").await?;
    node.send(&device, "set_sensor", json!({ "sensor": 77 }))
        .await?;
    node.send(&device, "update", json!({})).await?;
    let push: Value = serde_json::from_str(&socket.ws_text().await?)?;
    assert_eq!(push[0], Value::Null);
    assert_eq!(push[1], Value::Null);
    assert_eq!(push[2], json!(sub));
    assert_eq!(push[3], "subscription:data");
    assert_eq!(push[4]["subscriptionId"], json!(sub));
    let sensor = &push[4]["result"]["data"]["awaitSignal"]["parameters"]["sensor"];
    assert!(sensor == &node.sensor(77) || sensor == &json!(0), "{push}");
    socket.heartbeat().await?;
    Ok(())
}

#[tokio::test]
async fn one_socket_carries_many_subscriptions() -> Result<()> {
    let node = TestNode::start().await?;
    // `view` first, as the WebApp loads it: a device's `update` is then not held.
    node.load(&view_definition()).await?;
    let mut socket = node.socket().await?;
    let mut devices = Vec::new();
    for n in 1..=20 {
        let name = format!("device {n:04}");
        let id = node.load(&device_definition(&name)).await?;
        let sub = socket.subscribe(&id, "update").await?;
        devices.push((id, name, sub));
    }
    node.await_stat("subscriptions", |n| n == 20).await?;
    for (id, _, _) in &devices {
        node.send(id, "update", json!({})).await?;
    }
    let mut seen = std::collections::HashMap::new();
    for _ in &devices {
        let frame = socket.frame().await?;
        let name = frame.payload["result"]["data"]["awaitSignal"]["parameters"]["name"].clone();
        seen.insert(frame.topic.clone(), name);
    }
    for (_, name, sub) in &devices {
        assert_eq!(seen.get(sub), Some(&json!(name)), "{sub}");
    }
    assert_eq!(node.stats().await?["deliveries"], 20);
    Ok(())
}

#[tokio::test]
async fn a_silent_socket_is_closed_after_the_idle_timeout() -> Result<()> {
    let idle = Duration::from_millis(300);
    let node = TestNode::with_config(Config {
        idle_timeout: idle,
        ..Config::loopback()
    })
    .await?;
    let mut silent = node.socket().await?;
    let mut chatty = node.socket().await?;
    let started = Instant::now();
    // The chatty socket keeps itself alive past three idle periods.
    while started.elapsed() < idle * 3 {
        chatty.heartbeat().await?;
        tokio::time::sleep(idle / 4).await;
    }
    assert_eq!(silent.closed().await?, Closed::Code(1000));
    assert!(started.elapsed() >= idle);
    chatty.heartbeat().await?;
    assert_eq!(chatty.closed().await?, Closed::Code(1000));
    node.await_stat("sockets", |n| n == 0).await?;
    Ok(())
}

#[tokio::test]
async fn unknown_topics_and_unjoined_frames_are_answered_as_phoenix_does() -> Result<()> {
    let node = TestNode::start().await?;
    let mut socket = Socket::connect(&node.ws_url(""), Vsn::V1).await?;
    let join = |topic: &str, reference: Value| Frame {
        topic: topic.into(),
        ..Frame::join_control(reference)
    };
    let unmatched = json!({"reason": "unmatched topic"});
    let r = socket.reference();
    assert_eq!(
        socket.request(join("room:lobby", r)).await?,
        ("error".into(), unmatched.clone())
    );
    let r = socket.reference();
    assert_eq!(
        socket.request(join("__absinthe__:elsewhere", r)).await?,
        ("error".into(), json!({"reason": "join crashed"}))
    );
    // A doc before joining the control topic.
    assert_eq!(
        socket.doc(SENTANT_ALL, json!({})).await?,
        ("error".into(), unmatched)
    );
    // Leaving what was never joined is fine.
    let leave = Frame {
        event: "phx_leave".into(),
        ..Frame::join_control(socket.reference())
    };
    assert_eq!(socket.request(leave).await?, ("ok".into(), json!({})));
    socket.join().await?;
    assert_eq!(socket.doc(SENTANT_ALL, json!({})).await?.0, "ok");
    node.assert_device_works("device 0001", 3).await
}

#[tokio::test]
async fn documents_on_the_socket_answer_in_the_reply() -> Result<()> {
    let node = TestNode::start().await?;
    let device = node.load(&device_definition("device 0001")).await?;
    let mut socket = node.socket().await?;
    let (status, all) = socket.doc(SENTANT_ALL, json!({})).await?;
    assert_eq!(status, "ok");
    assert_eq!(
        all["data"]["sentantAll"],
        json!([{ "id": device, "name": "device 0001" }])
    );

    let (status, refused) = socket
        .doc(SENTANT_SEND, send_variables(&device, "nope", &json!({})))
        .await?;
    assert_eq!(status, "ok", "a document that ran is ok even with errors");
    assert_eq!(refused["data"], Value::Null);
    assert_eq!(refused["errors"][0]["message"], "invalid_event");

    let (status, broken) = socket.doc("{ sentantAll { id ", json!({})).await?;
    assert_eq!(status, "error");
    assert!(
        broken.get("data").is_none() && broken["errors"].is_array(),
        "{broken}"
    );

    // An unknown id is refused after the real node's 1 s of retries.
    for (id, signal) in [
        (device.as_str(), "nope"),
        ("00000000-0000-4000-8000-000000000000", "update"),
    ] {
        let (status, response) = socket
            .doc(AWAIT_SIGNAL, json!({ "id": id, "signal": signal }))
            .await?;
        assert_eq!(status, "error");
        assert_eq!(
            response["errors"][0]["message"], "invalid_signal",
            "{response}"
        );
    }
    assert!(socket
        .subscribe(&device, "debug")
        .await?
        .starts_with("__absinthe__:doc:"));
    Ok(())
}

#[tokio::test]
async fn a_malformed_doc_crashes_only_the_channel() -> Result<()> {
    let node = TestNode::start().await?;
    let device = node.load(&device_definition("device 0001")).await?;
    let mut socket = node.socket().await?;
    socket.subscribe(&device, "update").await?;
    node.await_stat("subscriptions", |n| n == 1).await?;
    for payload in [
        json!("not an object"),
        json!({"query": 3}),
        json!({"query": SENTANT_ALL, "variables": "{}"}),
    ] {
        let reference = socket.reference();
        socket
            .send(&Frame {
                payload,
                ..Frame::doc(reference, "", json!({}))
            })
            .await?;
        let pushed = socket.frame().await?;
        ensure!(is_control_push(&pushed, EV_ERROR), "{pushed:?}");
        node.await_stat("subscriptions", |n| n == 0).await?;
        // The channel is gone until the client joins again.
        assert_eq!(socket.doc(SENTANT_ALL, json!({})).await?.0, "error");
        socket.join().await?;
    }
    // An event the channel does not know crashes it too.
    let shout = Frame {
        topic: CONTROL_TOPIC.into(),
        event: "shout".into(),
        ..Frame::heartbeat(json!(9))
    };
    socket.send(&shout).await?;
    ensure!(is_control_push(&socket.frame().await?, EV_ERROR));
    node.assert_device_works("device 0002", 1).await
}

#[tokio::test]
async fn joining_again_replaces_the_channel() -> Result<()> {
    let node = TestNode::start().await?;
    // `view` first, as the WebApp loads it: a device's `update` is then not held.
    node.load(&view_definition()).await?;
    let device = node.load(&device_definition("device 0001")).await?;
    let mut socket = node.socket().await?;
    socket.subscribe(&device, "update").await?;
    node.await_stat("subscriptions", |n| n == 1).await?;
    socket.join().await?;
    let closed = socket.frame().await?;
    ensure!(is_control_push(&closed, EV_CLOSE), "{closed:?}");
    node.await_stat("subscriptions", |n| n == 0).await?;
    let sub = socket.subscribe(&device, "update").await?;
    node.send(&device, "update", json!({})).await?;
    assert_eq!(
        socket.signal(&sub).await?["parameters"]["name"],
        "device 0001"
    );
    Ok(())
}

#[tokio::test]
async fn a_frame_that_is_not_json_closes_that_socket_only() -> Result<()> {
    let node = TestNode::start().await?;
    // `view` first, as the WebApp loads it: a device's `update` is then not held.
    node.load(&view_definition()).await?;
    let device = node.load(&device_definition("device 0001")).await?;
    let (mut phone, sub) = node.subscribed(&device, "update").await?;
    for garbage in [
        "not json",
        r#"{"topic":"phoenix"}"#,
        r#"["only","an","array"]"#,
        "42",
    ] {
        let mut bad = node.socket().await?;
        bad.send_text(garbage.into()).await?;
        assert_eq!(bad.closed().await?, Closed::Code(1011), "{garbage}");
        node.send(&device, "update", json!({})).await?;
        assert_eq!(phone.signal(&sub).await?["event"], "update");
    }
    node.await_stat("sockets", |n| n == 1).await?;
    node.assert_device_works("device 0002", 2).await
}

#[tokio::test]
async fn stopping_the_server_closes_its_sockets() -> Result<()> {
    let node = TestNode::start().await?;
    let device = node.load(&device_definition("device 0001")).await?;
    let (mut socket, _) = node.subscribed(&device, "update").await?;
    let mut idle = node.socket().await?;
    node.running.stop().await?;
    assert_eq!(socket.closed().await?, Closed::Code(1001));
    assert_eq!(idle.closed().await?, Closed::Code(1001));
    Ok(())
}
