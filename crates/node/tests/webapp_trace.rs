//! The real IoT WebApp's requests, replayed byte for byte from the wire trace
//! of one phone (`tests/fixtures/webapp-phone-trace.json` at the workspace root, a copy of the shared
//! recording): the multi-line operation texts, `variables` as a JSON string,
//! `Accept: */*` and `Content-Type: application/json`, in the recorded order
//! (connect page, connect, sensor page, 3 s of turning). Each answer is
//! checked, and so are the signals the sensor page's socket gets, with the
//! node as the real node (sensors as text, `description: ""`) and with
//! `--lenient` (numbers, `null`).

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use common::*;
use serde_json::{json, Value};

/// The recording, copied from the shared fixtures.
const TRACE: &str = include_str!("../../../tests/fixtures/webapp-phone-trace.json");

/// No request of the trace names an unknown id, so none may wait.
const AT_ONCE: Duration = Duration::from_millis(600);

/// One recorded `POST /reality2`.
struct Recorded<'a> {
    operation: &'a str,
    query: &'a str,
    variables: &'a str,
    headers: Vec<(&'a str, &'a str)>,
}

fn recorded(event: &Value) -> Result<Recorded<'_>> {
    let text = |field: &str| {
        event[field]
            .as_str()
            .with_context(|| format!("no {field} in {event}"))
    };
    ensure!(event["method"] == "POST", "{event}");
    let headers = event["headers"]
        .as_object()
        .context("headers")?
        .iter()
        .map(|(name, value)| Ok((name.as_str(), value.as_str().context("header")?)))
        .collect::<Result<_>>()?;
    Ok(Recorded {
        operation: text("operation")?,
        query: text("query")?,
        variables: text("variables")?,
        headers,
    })
}

/// The recorded requests, in order.
fn http_events(trace: &Value) -> Result<Vec<Recorded<'_>>> {
    trace["events"]
        .as_array()
        .context("events")?
        .iter()
        .filter(|event| event["kind"] == "http")
        .map(recorded)
        .collect()
}

/// What the node has loaded so far, as the replay expects it.
#[derive(Default)]
struct Expected {
    /// `(name, id)` in load order (redefinitions keep their place).
    loaded: Vec<(String, String)>,
    /// The sensor the device holds, as its signal carries it.
    sensor: Value,
}

impl Expected {
    fn id_of(&self, name: &str) -> Option<&str> {
        self.loaded
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| id.as_str())
    }
}

/// Replays every recorded request against `node`, checking each answer as
/// the real node gives it, or as `--lenient` does when `lenient`.
async fn replay(node: &TestNode, lenient: bool) -> Result<()> {
    let trace: Value = serde_json::from_str(TRACE)?;
    let requests = http_events(&trace)?;
    ensure!(requests.len() == 38, "the recording has 38 requests");
    // The only id the requests name is the phone's own device's.
    let recorded_ids: BTreeSet<String> = requests
        .iter()
        .filter_map(|r| serde_json::from_str::<Value>(r.variables).ok())
        .filter_map(|v| v["id"].as_str().map(str::to_owned))
        .collect();
    let [recorded_device] =
        <[String; 1]>::try_from(recorded_ids.into_iter().collect::<Vec<_>>())
            .map_err(|ids| anyhow::anyhow!("expected one recorded id, got {ids:?}"))?;

    let mut expected = Expected {
        sensor: json!(0),
        ..Expected::default()
    };
    let mut device: Option<(TcpSocket, String)> = None;
    let mut monitor: Option<(TcpSocket, String)> = None;
    let mut updates = 0;
    for (n, request) in requests.iter().enumerate() {
        let variables = match expected.id_of("device 0001") {
            Some(id) => request.variables.replace(&recorded_device, id),
            None => request.variables.to_owned(),
        };
        // `JSON.stringify({query, variables})`.
        let body = format!(
            "{{\"query\":{},\"variables\":{}}}",
            Value::from(request.query),
            Value::from(variables.as_str())
        );
        let mut post = node.http.post(node.graphql_url()).body(body);
        for (name, value) in &request.headers {
            post = post.header(*name, *value);
        }
        let started = Instant::now();
        let (status, answer) = answer(post.send().await?).await?;
        let took = started.elapsed();
        ensure!(status == 200, "request {n}: {status} {answer}");
        ensure!(took < AT_ONCE, "request {n} took {took:?}");
        let vars: Value = serde_json::from_str(&variables)?;
        let what = format!("request {n} ({}): {answer}", request.operation);
        match request.operation {
            "sentantGet" if vars.get("name").is_some() => {
                let name = vars["name"].as_str().context("name")?;
                match expected.id_of(name) {
                    Some(id) => ensure!(
                        answer == json!({"data": {"sentantGet": {"id": id, "name": name}}}),
                        "{what}"
                    ),
                    None => {
                        ensure!(answer["data"] == json!({"sentantGet": null}), "{what}");
                        ensure!(answer["errors"][0]["message"] == "name", "{what}");
                    }
                }
            }
            "sentantGet" => {
                let id = expected.id_of("device 0001").context("no device yet")?;
                let description = if lenient { Value::Null } else { json!("") };
                ensure!(
                    answer
                        == json!({"data": {"sentantGet": {
                            "name": "device 0001", "id": id, "description": description,
                            "events": [
                                {"event": "set_sensor", "parameters": {"sensor": "integer"}},
                                {"event": "update", "parameters": {}}],
                            "signals": ["update"]}}}),
                    "{what}"
                );
            }
            "sentantLoad" => {
                let definition: Value =
                    serde_json::from_str(vars["definition"].as_str().context("definition")?)?;
                let name = definition["sentant"]["name"].as_str().context("name")?;
                let loaded = &answer["data"]["sentantLoad"];
                ensure!(loaded["name"] == name, "{what}");
                let id = id_of(loaded)?;
                match expected.id_of(name) {
                    Some(kept) => ensure!(kept == id, "a redefinition keeps its id: {what}"),
                    None => expected.loaded.push((name.to_owned(), id.clone())),
                }
                match name {
                    "monitor" => monitor = Some(node.subscribed(&id, "internal").await?),
                    "device 0001" => {
                        let (socket, sub) = monitor.as_mut().context("monitor first")?;
                        let created = loop {
                            let signal = socket.signal(sub).await?;
                            if signal["parameters"]["name"] == name {
                                break signal["parameters"].clone();
                            }
                        };
                        ensure!(
                            created == json!({"id": id, "name": name, "activity": "created"}),
                            "{created}"
                        );
                        device = Some(node.subscribed(&id, "update").await?);
                    }
                    _ => {}
                }
            }
            "sentantAll" => {
                let listed: Vec<(String, String)> = answer["data"]["sentantAll"]
                    .as_array()
                    .context("a list")?
                    .iter()
                    .map(|s| Ok((s["name"].as_str().context("name")?.to_owned(), id_of(s)?)))
                    .collect::<Result<_>>()?;
                ensure!(listed == expected.loaded, "{what}");
            }
            "sentantSend" => {
                let id = expected.id_of("device 0001").context("no device yet")?;
                ensure!(
                    answer == json!({"data": {"sentantSend": {"id": id, "name": "device 0001"}}}),
                    "{what}"
                );
                let parameters: Value =
                    serde_json::from_str(vars["parameters"].as_str().context("parameters")?)?;
                match vars["event"].as_str() {
                    Some("set_sensor") => {
                        let sensor = parameters["sensor"].as_i64().context("sensor")?;
                        expected.sensor = if lenient {
                            json!(sensor)
                        } else {
                            json!(sensor.to_string())
                        };
                    }
                    Some("update") => {
                        updates += 1;
                        let (socket, sub) = device.as_mut().context("device socket")?;
                        let signal = socket.signal(sub).await?;
                        ensure!(
                            signal["parameters"]
                                == json!({"sensor": expected.sensor, "name": "device 0001", "result": "ok"}),
                            "{signal}"
                        );
                    }
                    other => bail!("unexpected event {other:?}"),
                }
            }
            other => bail!("unexpected operation {other}"),
        }
    }
    let stats = node.stats().await?;
    assert_eq!(stats["requests"], requests.len());
    assert_eq!(stats["updates"], updates);
    assert_eq!(updates, 15, "one on connect, fourteen while turning");
    // The last value the phone sent, as text unless lenient.
    let last = if lenient { json!(218) } else { json!("218") };
    assert_eq!(expected.sensor, last);
    Ok(())
}

#[tokio::test]
async fn the_webapps_requests_get_the_real_nodes_answers() -> Result<()> {
    replay(&TestNode::start().await?, false).await
}

#[tokio::test]
async fn the_webapps_requests_get_the_lenient_answers() -> Result<()> {
    replay(&TestNode::lenient().await?, true).await
}
