//! The node under hostile input: 10,000 malformed websocket frames, HTTP
//! requests and raw TCP connections, thrown from several clients at once,
//! must leave it serving a normal device correctly, with consistent counters,
//! no answer in the 5xx range and no panic anywhere in the process.
//!
//! Every input is drawn from a seeded generator, so a failure repeats.

mod common;

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicUsize, Ordering},
    time::Instant,
};

use anyhow::{ensure, Context, Result};
use common::*;
use futures::{SinkExt, StreamExt};
use r2_core::phoenix::{Frame, Vsn, CONTROL_TOPIC};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

/// Panics anywhere in the process (the node's tasks included).
static PANICS: AtomicUsize = AtomicUsize::new(0);

const WS_CLIENTS: u64 = 3;
const FRAMES_PER_WS_CLIENT: usize = 1700;
const HTTP_CLIENTS: u64 = 3;
const REQUESTS_PER_HTTP_CLIENT: usize = 1550;
const RAW_CONNECTIONS: usize = 250;
/// Everything thrown at the node.
const TOTAL: usize = WS_CLIENTS as usize * FRAMES_PER_WS_CLIENT
    + HTTP_CLIENTS as usize * REQUESTS_PER_HTTP_CLIENT
    + RAW_CONNECTIONS;

// ------------------------------------------------------------ generators

/// Printable and unprintable characters, quotes, brackets and non-ASCII.
fn text(rng: &mut SmallRng, max: usize) -> String {
    const ALPHABET: &[char] = &[
        'a', 'Z', '0', ' ', '{', '}', '[', ']', '(', ')', '"', '\'', '\\', ':', ',', '$', '!', '@',
        '.', '#', '\n', '\t', '\0', '\u{7f}', 'é', '✓', '\u{202e}', '😀', '%', '&', '=',
    ];
    let len = rng.random_range(0..=max);
    (0..len).map(|_| *pick(rng, ALPHABET)).collect()
}

fn bytes(rng: &mut SmallRng, max: usize) -> Vec<u8> {
    let len = rng.random_range(0..=max);
    (0..len).map(|_| rng.random()).collect()
}

/// One of `items`.
fn pick<'a, T>(rng: &mut SmallRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// `open` `depth` times, then `close` as often.
fn nested(depth: usize, open: &str, close: &str) -> String {
    format!("{}{}", open.repeat(depth), close.repeat(depth))
}

/// A well-formed UUID no sentant has.
fn unknown_uuid(rng: &mut SmallRng) -> String {
    let n: u128 = rng.random();
    let hex = format!("{n:032x}");
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// Things that are not valid sentant definitions, or barely are.
fn bad_definition(rng: &mut SmallRng) -> String {
    match rng.random_range(0..8) {
        0 => text(rng, 200),
        1 => nested(rng.random_range(100..5000), "[", "]"),
        2 => nested(rng.random_range(100..5000), "{\"a\":", "}"),
        // A YAML alias bomb.
        3 => "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]".to_owned(),
        4 => json!({"sentant": {"name": "", "automations": []}}).to_string(),
        5 => json!({"sentant": {"name": 5, "automations": {"x": 1}}}).to_string(),
        6 => json!({"sentant": {"name": "x", "automations": [{"name": "a", "transitions": [{"event": 1e308}]}]}}).to_string(),
        _ => json!({"swarm": {"sentants": [text(rng, 20), null, 1]}}).to_string(),
    }
}

/// Sentant parameters as the WebApp sends them (JSON text), broken.
fn bad_parameters(rng: &mut SmallRng) -> Value {
    let options = [
        "1e400".to_owned(),
        "[".to_owned(),
        "[1,2]".to_owned(),
        nested(rng.random_range(100..3000), "[", "]"),
        "{\"sensor\": 18446744073709551616}".to_owned(),
        text(rng, 50),
    ];
    json!(pick(rng, &options))
}

/// A GraphQL document that does not parse, validate or run.
fn bad_document(rng: &mut SmallRng) -> String {
    match rng.random_range(0..9) {
        0 => text(rng, 200),
        1 => nested(rng.random_range(100..20_000), "{a", "}"),
        2 => format!(
            "{{ {} }}",
            "sentantAll { id } ".repeat(rng.random_range(10..300))
        ),
        3 => "query { ...A } fragment A on Query { ...A }".to_owned(),
        4 => "subscription { awaitSignal(id: \"x\", signal: \"y\") { event } }".to_owned(),
        5 => "query A { sentantAll { id } } query B { sentantAll { id } }".to_owned(),
        6 => format!(
            "{{ sentantGet(id: \"{}\") {{ id }} }}",
            text(rng, 40).replace('"', "")
        ),
        7 => "mutation { sentantUnload(id: 12) { id } }".to_owned(),
        _ => format!("{{ {} }}", "__typename ".repeat(rng.random_range(10..2000))),
    }
}

/// A Phoenix frame that decodes but is wrong in every other way; the socket
/// must stay open.
fn hostile_frame(rng: &mut SmallRng) -> Frame {
    let reference = match rng.random_range(0..4) {
        0 => json!(rng.random::<u32>()),
        1 => json!(text(rng, 30)),
        2 => json!({"nested": [1, {"x": null}]}),
        _ => Value::Null,
    };
    let frame = |topic: &str, event: &str, payload: Value| Frame {
        join_ref: reference.clone(),
        reference: reference.clone(),
        topic: topic.to_owned(),
        event: event.to_owned(),
        payload,
    };
    let doc = |query: String, variables: Value| json!({"query": query, "variables": variables});
    match rng.random_range(0..16) {
        0 => frame(&format!("room:{}", text(rng, 20)), "phx_join", json!({})),
        1 => frame(
            &format!("__absinthe__:{}", text(rng, 20)),
            "phx_join",
            json!({}),
        ),
        2 => Frame::join_control(reference.clone()),
        3 => {
            let payloads = [
                json!(5),
                json!("doc"),
                json!([]),
                Value::Null,
                json!({"query": 1}),
            ];
            frame(CONTROL_TOPIC, "doc", pick(rng, &payloads).clone())
        }
        4 => frame(CONTROL_TOPIC, "doc", doc(bad_document(rng), json!({}))),
        5 => frame(
            CONTROL_TOPIC,
            "doc",
            doc(
                AWAIT_SIGNAL.to_owned(),
                json!({"id": text(rng, 40), "signal": "update"}),
            ),
        ),
        6 => frame(
            CONTROL_TOPIC,
            "doc",
            doc(
                AWAIT_SIGNAL.to_owned(),
                await_signal_variables(&unknown_uuid(rng), "update"),
            ),
        ),
        7 => frame(
            CONTROL_TOPIC,
            "doc",
            doc(
                SENTANT_LOAD.to_owned(),
                load_variables(&bad_definition(rng)),
            ),
        ),
        8 => {
            let mut variables = send_variables(&unknown_uuid(rng), "update", &json!({}));
            variables["parameters"] = bad_parameters(rng);
            frame(
                CONTROL_TOPIC,
                "doc",
                doc(SENTANT_SEND.to_owned(), variables),
            )
        }
        9 => {
            let ids = [json!(text(rng, 30)), json!(5), json!(null), json!(["x"])];
            let id = pick(rng, &ids).clone();
            frame(
                CONTROL_TOPIC,
                "unsubscribe",
                json!({ "subscriptionId": id }),
            )
        }
        10 => frame("phoenix", "heartbeat", json!(text(rng, 100))),
        11 => frame(CONTROL_TOPIC, &text(rng, 30), json!({})),
        12 => frame(&text(rng, 30), "phx_leave", json!({})),
        13 => frame(&"t".repeat(64 * 1024), "phx_join", json!({})),
        14 => frame(
            CONTROL_TOPIC,
            "doc",
            doc(
                SENTANT_SEND.to_owned(),
                json!({"id": 1e308, "event": -0.0, "parameters": u64::MAX}),
            ),
        ),
        _ => frame(&text(rng, 10), &text(rng, 10), json!(text(rng, 100))),
    }
}

/// Something that is not a Phoenix frame at all; the socket must close.
fn fatal_message(rng: &mut SmallRng, vsn: Vsn) -> Message {
    let wrong_version = match vsn {
        Vsn::V1 => Frame::heartbeat(json!(1)).encode(Vsn::V2),
        Vsn::V2 => Frame::heartbeat(json!(1)).encode(Vsn::V1),
    };
    let texts = [
        "{".to_owned(),
        String::new(),
        "null".to_owned(),
        "42".to_owned(),
        "1e400".to_owned(),
        "\"frame\"".to_owned(),
        wrong_version,
        r#"{"topic": "phoenix", "event": "heartbeat", "payload": {}}"#.to_owned(),
        r#"{"topic": 1, "event": "heartbeat", "payload": {}, "ref": 1}"#.to_owned(),
        r#"["1", "1", "phoenix", "heartbeat"]"#.to_owned(),
        nested(rng.random_range(200..20_000), "[", "]"),
        text(rng, 300),
    ];
    match rng.random_range(0..texts.len() + 2) {
        n if n < texts.len() => Message::text(texts[n].clone()),
        n if n == texts.len() => Message::binary(bytes(rng, 300)),
        // Over the node's 1 MiB frame limit.
        _ => Message::text("x".repeat((1 << 20) + 1)),
    }
}

/// A request `/reality2` (or another path) must refuse without a 5xx.
fn hostile_request(
    client: &reqwest::Client,
    base: &str,
    rng: &mut SmallRng,
) -> reqwest::RequestBuilder {
    let graphql = format!("{base}/reality2");
    let post_json = |body: String| {
        client
            .post(&graphql)
            .header("content-type", "application/json")
            .body(body)
    };
    match rng.random_range(0..22) {
        0 => post_json(String::from_utf8_lossy(&bytes(rng, 200)).into_owned()),
        1 => {
            let body = webapp_body(SENTANT_ALL, &json!({}));
            let cut = rng.random_range(0..body.len());
            post_json(body[..cut].to_owned())
        }
        2 => post_json(
            pick(
                rng,
                &["[]", "null", "1", "\"x\"", "[{\"query\": \"{ a }\"}]"],
            )
            .to_string(),
        ),
        3 => post_json(
            json!({"query": pick(rng, &[json!(5), Value::Null, json!({"a": 1})])}).to_string(),
        ),
        4 => post_json(
            json!({"query": SENTANT_ALL, "variables": pick(rng, &["nope", "[1]", "{", "1e400"])})
                .to_string(),
        ),
        5 => post_json(webapp_body(
            SENTANT_SEND,
            &send_variables(&text(rng, 40), "update", &json!({})),
        )),
        6 => {
            let mut variables = send_variables(&unknown_uuid(rng), "update", &json!({}));
            variables["parameters"] = bad_parameters(rng);
            post_json(webapp_body(SENTANT_SEND, &variables))
        }
        7 => post_json(webapp_body(
            SENTANT_LOAD,
            &load_variables(&bad_definition(rng)),
        )),
        8 => client
            .post(&graphql)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(*pick(
                rng,
                &["query=%FF", "query=%", "variables=%7B&query=x", "%C3=1"],
            )),
        9 => client
            .post(&graphql)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(bytes(rng, 200)),
        10 => client
            .post(&graphql)
            .header("content-type", "text/plain")
            .body(bad_document(rng)),
        11 => client
            .post(&graphql)
            .header(
                "content-type",
                *pick(
                    rng,
                    &[
                        "application/json; charset=utf-16",
                        "multipart/form-data; boundary=x",
                        "application/graphql",
                        "*/*",
                        ";;;",
                        "application/problem+json",
                    ],
                ),
            )
            .body(bytes(rng, 100)),
        12 => client.get(format!("{graphql}?query=%FF%FE&variables=%")),
        13 => client.get(format!("{graphql}?query=mutation%20%7B%20nodeLock%20%7D")),
        14 => client.get(&graphql).query(&[
            ("query", text(rng, 100)),
            ("variables", text(rng, 30)),
            ("operationName", text(rng, 10)),
        ]),
        15 => post_json(
            json!({"query": bad_document(rng), "operationName": text(rng, 10)}).to_string(),
        ),
        16 => {
            let method = pick(
                rng,
                &[
                    reqwest::Method::PUT,
                    reqwest::Method::DELETE,
                    reqwest::Method::PATCH,
                ],
            )
            .clone();
            client.request(method, &graphql).body(bytes(rng, 50))
        }
        17 => {
            let paths = [
                "/reality2/websocket",
                "/reality2/x",
                "/r2-node/nothing",
                "/../../etc/passwd",
                "/%2e%2e/",
                "/r2-node/stats/x",
            ];
            client.get(format!("{base}{}", pick(rng, &paths)))
        }
        18 => {
            // Never a valid faults object: the flood must not switch faults on.
            let bodies = [
                r#"{"error_rate": 5}"#,
                r#"{"latency": 1}"#,
                "[]",
                r#"{"refuse_for_s": -1}"#,
                "{",
                r#"{"forget": "yes"}"#,
            ];
            client
                .post(format!("{base}/r2-node/faults"))
                .body(*pick(rng, &bodies))
        }
        19 => client
            .request(reqwest::Method::OPTIONS, &graphql)
            .header(
                "origin",
                text(rng, 20).replace(|c: char| !c.is_ascii_graphic(), "x"),
            )
            .header("access-control-request-method", "POST"),
        20 if rng.random_range(0..20) == 0 => post_json(" ".repeat((1 << 20) + 1)),
        _ => client
            .post(&graphql)
            .header("content-type", "application/graphql")
            .body(bytes(rng, 100)),
    }
}

/// Bytes no HTTP parser should take.
fn raw_connection_bytes(rng: &mut SmallRng) -> Vec<u8> {
    match rng.random_range(0..8) {
        0 => bytes(rng, 500),
        1 => b"GET / HTTP/1.1\r\nHost: x\r\nBad\x01Header: \xff\r\n\r\n".to_vec(),
        2 => format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100_000)).into_bytes(),
        3 => b"POST /reality2 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort".to_vec(),
        4 => b"POST /reality2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n".to_vec(),
        5 => [&b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..], &bytes(rng, 200)].concat(),
        // A TLS ClientHello on the plain port.
        6 => [&[0x16, 0x03, 0x01, 0x00, 0xa5, 0x01][..], &bytes(rng, 100)].concat(),
        _ => b"GET /reality2/websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n".to_vec(),
    }
}

// ------------------------------------------------------------ clients

/// Sends `frames` frames over successive sockets: a batch of hostile frames
/// and a heartbeat whose answer proves the socket took them, then a fatal
/// frame, on which the node must close the socket.
async fn flood_websocket(node: &TestNode, seed: u64, vsn: Vsn) -> Result<usize> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let url = node.ws_url(if vsn == Vsn::V2 { "?vsn=2.0.0" } else { "" });
    let mut sent = 0;
    while sent < FRAMES_PER_WS_CLIENT {
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
        let (mut sink, mut stream) = ws.split();
        let probe = format!("probe-{seed}-{sent}");
        let answered = {
            let probe = probe.clone();
            tokio::spawn(async move {
                let mut answered = false;
                while let Some(Ok(message)) = stream.next().await {
                    if let Message::Text(text) = message {
                        answered |= text.contains(&probe);
                    }
                }
                answered
            })
        };
        let batch = rng.random_range(5..60).min(FRAMES_PER_WS_CLIENT - sent - 1);
        for _ in 0..batch {
            sink.send(Message::text(hostile_frame(&mut rng).encode(vsn)))
                .await?;
        }
        sent += batch;
        sink.send(Message::text(Frame::heartbeat(json!(probe)).encode(vsn)))
            .await?;
        if sent < FRAMES_PER_WS_CLIENT {
            sink.send(fatal_message(&mut rng, vsn)).await?;
            sent += 1;
        } else {
            sink.close().await?;
        }
        // The node closes the socket, which ends the reader.
        let answered = within(async { Ok(answered.await?) })
            .await
            .context("the socket stayed open after a fatal frame")?;
        ensure!(answered, "the socket closed before {probe}");
    }
    Ok(sent)
}

/// Sends the hostile requests; returns how many got each status.
async fn flood_http(node: &TestNode, seed: u64) -> Result<BTreeMap<u16, usize>> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let client = reqwest::Client::new();
    let mut statuses = BTreeMap::new();
    for _ in 0..REQUESTS_PER_HTTP_CLIENT {
        let response = hostile_request(&client, &node.base, &mut rng)
            .send()
            .await?;
        let status = response.status().as_u16();
        let body = response.bytes().await?;
        ensure!(
            status < 500,
            "{status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
        *statuses.entry(status).or_default() += 1;
    }
    Ok(statuses)
}

/// Opens connections that send hostile bytes; each must end (answered or
/// closed) rather than hang.
async fn flood_tcp(node: &TestNode, seed: u64) -> Result<usize> {
    let mut rng = SmallRng::seed_from_u64(seed);
    for _ in 0..RAW_CONNECTIONS {
        let mut stream = tokio::net::TcpStream::connect(node.addr()).await?;
        stream.write_all(&raw_connection_bytes(&mut rng)).await?;
        stream.shutdown().await?;
        let mut answer = Vec::new();
        // A reset is as good an end as any.
        let _ = within(async { Ok(stream.read_to_end(&mut answer).await?) }).await?;
        ensure!(
            !answer.starts_with(b"HTTP/1.1 5"),
            "{}",
            String::from_utf8_lossy(&answer[..answer.len().min(200)])
        );
    }
    Ok(RAW_CONNECTIONS)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_malformed_inputs_leave_the_node_serving_devices() -> Result<()> {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));
    // Lenient: the flood's unknown ids would each hold a client for the
    // real node's 1 s, which is beside the point here.
    let node = TestNode::lenient().await?;
    let started = Instant::now();

    let sockets = futures::future::try_join_all((0..WS_CLIENTS).map(|n| {
        let vsn = if n % 2 == 0 { Vsn::V1 } else { Vsn::V2 };
        flood_websocket(&node, n, vsn)
    }));
    let requests =
        futures::future::try_join_all((0..HTTP_CLIENTS).map(|n| flood_http(&node, 100 + n)));
    let (frames, statuses, connections) =
        tokio::try_join!(sockets, requests, flood_tcp(&node, 200))?;
    let frames: usize = frames.iter().sum();
    let mut by_status = BTreeMap::new();
    for (status, count) in statuses.into_iter().flatten() {
        *by_status.entry(status).or_insert(0) += count;
    }
    let requests: usize = by_status.values().sum();
    assert_eq!(frames + requests + connections, TOTAL);
    assert_eq!(TOTAL, 10_000);
    eprintln!(
        "{frames} frames, {requests} requests {by_status:?}, {connections} raw connections in {:?}",
        started.elapsed()
    );

    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
    assert!(node.running.is_serving(), "the server stopped");
    node.await_stat("sockets", |n| n == 0).await?;
    node.await_stat("subscriptions", |n| n == 0).await?;
    let stats = node.stats().await?;
    let count = |name: &str| {
        stats[name]
            .as_u64()
            .with_context(|| format!("{name}: {stats}"))
    };
    assert_eq!(
        count("sentants")?,
        count("loads")? - count("unloads")?,
        "{stats}"
    );
    assert_eq!(
        (count("injected_errors")?, count("dropped_sockets")?),
        (0, 0)
    );
    assert_eq!(count("deliveries")?, 0, "nothing was subscribed: {stats}");
    assert_eq!(
        node.faults().await?,
        serde_json::to_value(r2_node::FaultSpec::default())?
    );

    node.assert_device_works("survivor", 2024).await?;
    node.assert_device_works("second", -7).await?;
    assert_eq!(node.stats().await?["deliveries"], 2);
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
    Ok(())
}
