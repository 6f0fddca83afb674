//! `/reality2` over real HTTP: the WebApp's JSON body with string variables,
//! the Python client's form body, GET queries, stats, CORS (none by default,
//! any origin with `--cors`), sites, and every bad input — after each of
//! which the node still serves a device.

mod common;

use anyhow::{ensure, Result};
use common::{
    answer, device_definition, id_of, load_variables, send_variables, view_definition, TestNode,
    SENTANT_ALL, SENTANT_GET_BY_ID, SENTANT_LOAD, SENTANT_SEND,
};
use r2_node::{
    fidelity::{Cors, Fidelity},
    Config,
};
use serde_json::{json, Value};

#[tokio::test]
async fn webapp_json_body_with_string_variables_loads_and_gets_a_device() -> Result<()> {
    let node = TestNode::start().await?;
    let id = node.load(&device_definition("device 0001")).await?;
    let got = node.data(SENTANT_GET_BY_ID, json!({ "id": id })).await?;
    assert_eq!(got["sentantGet"]["id"], json!(id));
    assert_eq!(got["sentantGet"]["name"], "device 0001");
    let events: Vec<&Value> = got["sentantGet"]["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["event"])
        .collect();
    assert_eq!(events, [&json!("set_sensor"), &json!("update")]);
    // Variables as an object work too.
    let body = json!({ "query": SENTANT_GET_BY_ID, "variables": { "id": id } });
    let (status, answer) = answer(
        node.http
            .post(node.graphql_url())
            .json(&body)
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, 200);
    assert_eq!(answer["data"]["sentantGet"]["name"], "device 0001");
    Ok(())
}

#[tokio::test]
async fn python_form_body_and_get_query() -> Result<()> {
    let node = TestNode::start().await?;
    let form = [
        ("query", SENTANT_LOAD.to_string()),
        (
            "variables",
            load_variables(&device_definition("device 0007")).to_string(),
        ),
    ];
    let (status, loaded) = answer(
        node.http
            .post(node.graphql_url())
            .form(&form)
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, 200, "{loaded}");
    let id = id_of(&loaded["data"]["sentantLoad"])?;

    let get = node
        .http
        .get(node.graphql_url())
        .query(&[
            ("query", SENTANT_GET_BY_ID),
            ("variables", &json!({ "id": id }).to_string()),
        ])
        .send()
        .await?;
    let (status, got) = answer(get).await?;
    assert_eq!(status, 200);
    assert_eq!(got["data"]["sentantGet"]["id"], json!(id));

    let all = node
        .http
        .get(node.graphql_url())
        .query(&[("query", SENTANT_ALL)])
        .send()
        .await?;
    let (_, all) = answer(all).await?;
    let names: Vec<&Value> = all["data"]["sentantAll"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| &s["name"])
        .collect();
    assert!(names.contains(&&json!("device 0007")), "{all}");
    Ok(())
}

#[tokio::test]
async fn a_mutation_over_get_is_refused_as_absinthe_plug_does() -> Result<()> {
    let node = TestNode::start().await?;
    let get = node
        .http
        .get(node.graphql_url())
        .query(&[
            ("query", SENTANT_LOAD),
            (
                "variables",
                &load_variables(&device_definition("x")).to_string(),
            ),
        ])
        .send()
        .await?;
    let (status, body) = answer(get).await?;
    assert_eq!(status, 405);
    assert_eq!(
        body,
        json!({"errors": [{"message": "Can only perform a mutation from a POST request"}]})
    );
    let (_, all) = answer(
        node.http
            .get(node.graphql_url())
            .query(&[("query", SENTANT_ALL)])
            .send()
            .await?,
    )
    .await?;
    assert_eq!(all["data"]["sentantAll"], json!([]), "nothing was loaded");
    node.assert_device_works("device 0001", 10).await
}

/// One bad request and what the node must answer.
struct Bad {
    what: &'static str,
    request: reqwest::RequestBuilder,
    status: u16,
    check: fn(&Value) -> bool,
}

fn error_message(body: &Value) -> Option<&str> {
    body["errors"][0]["message"].as_str()
}

#[tokio::test]
async fn every_bad_http_input_is_answered_and_the_node_keeps_serving() -> Result<()> {
    let node = TestNode::start().await?;
    let device = node.load(&device_definition("device 0001")).await?;
    let url = node.graphql_url();
    let post = || node.http.post(&url);
    let send = |id: &str, event: &str| json!({ "query": SENTANT_SEND, "variables": send_variables(id, event, &json!({})).to_string() });
    let cases = vec![
        Bad {
            what: "malformed JSON body",
            request: post().header("content-type", "application/json").body("{\"query\": "),
            status: 400,
            check: |b| b == &json!({"errors": {"detail": "Bad Request"}}),
        },
        Bad {
            what: "no query",
            request: post().json(&json!({ "variables": "{}" })),
            status: 400,
            check: |b| error_message(b) == Some("No query document supplied"),
        },
        Bad {
            what: "variables that are not JSON",
            request: post().json(&json!({ "query": SENTANT_ALL, "variables": "{oops" })),
            status: 400,
            check: |b| error_message(b) == Some("The variable values could not be decoded"),
        },
        Bad {
            what: "a document that does not parse",
            request: post().json(&json!({ "query": "{ sentantAll { id " })),
            status: 200,
            check: |b| b.get("data").is_none() && b["errors"].as_array().is_some_and(|e| !e.is_empty()),
        },
        Bad {
            what: "a bad UUID",
            request: post().json(&send("not-a-uuid", "update")),
            status: 200,
            check: |b| b["data"].is_null() && error_message(b).is_some(),
        },
        Bad {
            what: "an unknown id",
            request: post().json(&send("00000000-0000-4000-8000-000000000000", "update")),
            status: 200,
            check: |b| b["data"].is_null() && error_message(b) == Some("id"),
        },
        Bad {
            what: "an unknown event",
            request: post().json(&send(&device, "explode")),
            status: 200,
            check: |b| b["data"].is_null() && error_message(b) == Some("invalid_event"),
        },
        Bad {
            what: "a non-public event",
            request: post().json(&send(&device, "init")),
            status: 200,
            check: |b| b["data"].is_null() && error_message(b) == Some("invalid_event"),
        },
        Bad {
            what: "an unparsable definition",
            request: post().json(&json!({ "query": SENTANT_LOAD, "variables": load_variables("{\"sentant\": [").to_string() })),
            status: 200,
            check: |b| b["data"].is_null() && error_message(b) == Some("definition"),
        },
        Bad {
            what: "a body over 1 MiB",
            request: post().json(&json!({ "query": SENTANT_ALL, "variables": { "pad": "x".repeat(1 << 20) } })),
            status: 413,
            check: |b| b == &json!({"errors": {"detail": "Request Entity Too Large"}}),
        },
        Bad {
            what: "a form body that is not urlencoded",
            request: post().header("content-type", "application/x-www-form-urlencoded").body(vec![0xff, 0xfe]),
            status: 400,
            check: |b| b["errors"]["detail"] == "Bad Request",
        },
    ];
    for (n, bad) in cases.into_iter().enumerate() {
        let (status, body) = answer(bad.request.send().await?).await?;
        ensure!(
            status == bad.status,
            "{}: status {status}, body {body}",
            bad.what
        );
        ensure!((bad.check)(&body), "{}: body {body}", bad.what);
        node.assert_device_works(&format!("device {:04}", n + 2), n as i64)
            .await?;
    }
    Ok(())
}

#[tokio::test]
async fn stats_count_what_was_done() -> Result<()> {
    let node = TestNode::start().await?;
    let before = node.stats().await?;
    assert_eq!(before["loads"], 0);
    assert_eq!(before["sockets"], 0);
    assert_eq!(before["requests"], 0);
    node.load(&view_definition()).await?;
    let id = node.load(&device_definition("device 0001")).await?;
    let (mut socket, subscription) = node.subscribed(&id, "update").await?;
    node.await_stat("sockets", |n| n == 1).await?;
    socket.heartbeat().await?;
    for sensor in [10, 80, 150] {
        node.send(&id, "set_sensor", json!({ "sensor": sensor }))
            .await?;
        node.send(&id, "update", json!({})).await?;
        assert_eq!(
            socket.signal(&subscription).await?["parameters"]["sensor"],
            node.sensor(sensor)
        );
    }
    let (_, refused) = node.send(&id, "nope", json!({})).await?;
    assert_eq!(error_message(&refused), Some("invalid_event"));
    let stats = node.stats().await?;
    assert_eq!(stats["loads"], 2);
    assert_eq!(stats["sends"], 6);
    assert_eq!(stats["updates"], 3);
    assert_eq!(stats["sends_rejected"], 1);
    assert_eq!(stats["deliveries"], 3);
    assert_eq!(stats["subscriptions"], 1);
    // Two loads and seven sends; the stats requests are not `/reality2`.
    assert_eq!(stats["requests"], 9);
    assert_eq!(stats["sockets_opened"], 1);
    assert_eq!(stats["heartbeats"], 1);
    // `__internal` to every sentant: view on its load, then view and device.
    assert_eq!(stats["internal_casts"], 3);
    drop(socket);
    node.await_stat("sockets", |n| n == 0).await?;
    node.await_stat("subscriptions", |n| n == 0).await?;
    assert_eq!(node.stats().await?["sockets_opened"], 1);
    Ok(())
}

/// A browser's CORS preflight for a POST to `/reality2` from another origin.
async fn preflight(node: &TestNode) -> Result<reqwest::Response> {
    Ok(node
        .http
        .request(reqwest::Method::OPTIONS, node.graphql_url())
        .header("origin", "http://localhost:8080")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await?)
}

/// A POST to `/reality2` from another origin.
async fn cross_origin_post(node: &TestNode) -> Result<reqwest::Response> {
    Ok(node
        .http
        .post(node.graphql_url())
        .header("origin", "http://localhost:8080")
        .json(&json!({ "query": SENTANT_ALL }))
        .send()
        .await?)
}

fn no_cors_headers(response: &reqwest::Response) -> bool {
    response
        .headers()
        .keys()
        .all(|name| !name.as_str().starts_with("access-control-"))
}

#[tokio::test]
async fn no_cors_headers_by_default_as_the_real_node() -> Result<()> {
    let node = TestNode::start().await?;
    let preflight = preflight(&node).await?;
    assert!(!preflight.status().is_success(), "{}", preflight.status());
    assert!(no_cors_headers(&preflight));
    let real = cross_origin_post(&node).await?;
    assert_eq!(real.status(), 200);
    assert!(no_cors_headers(&real));
    Ok(())
}

#[tokio::test]
async fn cors_preflight_is_answered_for_any_origin_with_cors_or_lenient() -> Result<()> {
    let cors = Config {
        fidelity: Fidelity {
            cors: Cors::Any,
            ..Fidelity::default()
        },
        ..Config::loopback()
    };
    for config in [cors, Config::loopback().lenient()] {
        let node = TestNode::with_config(config).await?;
        let response = preflight(&node).await?;
        assert!(response.status().is_success(), "{}", response.status());
        let headers = response.headers();
        assert_eq!(headers["access-control-allow-origin"], "*");
        let methods = headers["access-control-allow-methods"].to_str()?;
        assert!(methods == "*" || methods.contains("POST"), "{methods}");
        // The answer to the real request carries the header too.
        let real = cross_origin_post(&node).await?;
        assert_eq!(real.headers()["access-control-allow-origin"], "*");
    }
    Ok(())
}

#[tokio::test]
async fn sites_are_served_at_their_folder_names() -> Result<()> {
    let root = std::env::temp_dir().join(format!("r2-node-sites-{}", std::process::id()));
    let app = root.join("iotdemo");
    std::fs::create_dir_all(app.join("assets"))?;
    std::fs::write(app.join("index.html"), "<h1>iot demo</h1>")?;
    std::fs::write(app.join("assets/app.js"), "console.log('hi')")?;
    let node = TestNode::with_config(Config {
        sites: Some(root.clone()),
        ..Config::loopback()
    })
    .await?;

    for path in [
        "/iotdemo",
        "/iotdemo/",
        "/iotdemo?device=3",
        "/iotdemo/?x=1&y=2",
    ] {
        let response = node.http.get(format!("{}{path}", node.base)).send().await?;
        assert_eq!(response.status(), 200, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()?
                .starts_with("text/html"),
            "{path}"
        );
        assert_eq!(response.text().await?, "<h1>iot demo</h1>", "{path}");
    }
    let js = node
        .http
        .get(format!("{}/iotdemo/assets/app.js", node.base))
        .send()
        .await?;
    assert_eq!(js.status(), 200);
    assert_eq!(js.text().await?, "console.log('hi')");
    for missing in [
        "/nothing",
        "/iotdemo/missing.js",
        "/../etc/passwd",
        "/iotdemo/../../x",
    ] {
        let response = node
            .http
            .get(format!("{}{missing}", node.base))
            .send()
            .await?;
        assert_eq!(response.status(), 404, "{missing}");
    }
    // The API is still there beside the sites.
    node.assert_device_works("device 0001", 5).await?;
    std::fs::remove_dir_all(&root).ok();
    Ok(())
}

#[tokio::test]
async fn without_sites_unknown_paths_are_404() -> Result<()> {
    let node = TestNode::start().await?;
    let response = node
        .http
        .get(format!("{}/iotdemo", node.base))
        .send()
        .await?;
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<Value>().await?,
        json!({"errors": {"detail": "Not Found"}})
    );
    Ok(())
}
