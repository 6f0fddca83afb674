//! First contact, in real headless Chromium: each way a node address can be
//! wrong gets its own message in words a teacher understands, and bad form
//! values are refused before anything is sent. A link that starts a run by
//! itself against a node other than the page's own asks first.
#![cfg(not(target_arch = "wasm32"))]

use std::time::Duration;

use anyhow::{Context, Result};
use r2_testkit::{built_page_sites_dir, Browser, Page, TestNode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(60);

/// Opens the page on `node` with `query` and returns it.
async fn open(browser: &Browser, node: &TestNode, query: &str) -> Result<Page> {
    let page = browser.new_page().await?;
    page.goto(&format!(
        "{}/stresstest/?{}",
        node.url(),
        r2_testkit::lean(query)
    ))
    .await?;
    Ok(page)
}

/// Runs the page against `target` and returns the first-contact message and the summary.
async fn contact(
    browser: &Browser,
    node: &TestNode,
    target: &str,
    extra: &str,
) -> Result<(String, Value)> {
    let query = format!("node={target}&devices=3&duration=1&autostart=1{extra}");
    let page = open(browser, node, &query).await?;
    // Another origin than the page's: the run waits for consent.
    page.wait_for(
        "(b => b ? (b.click(), true) : false)(document.querySelector('#r2-consent-start'))",
        WAIT,
    )
    .await?;
    let message = page
        .wait_for(
            "document.querySelector('#r2-contact-error')?.textContent",
            WAIT,
        )
        .await?
        .as_str()
        .context("message text")?
        .to_owned();
    let summary = page.summary("failed", WAIT).await?;
    Ok((message, summary))
}

fn error_kinds(summary: &Value) -> Vec<String> {
    summary["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["kind"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A server on loopback that answers every request with `status`, `body`
/// and extra `headers`, or (with `None`) accepts connections and never answers.
async fn fake_server(answer: Option<(&'static str, &'static str, &'static str)>) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            let Some((status, headers, body)) = answer else {
                held.push(socket);
                continue;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut buf).await;
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    Ok(url)
}

/// An address nothing listens on: a port that was just freed.
fn closed_port() -> Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(format!("http://{}", listener.local_addr()?))
}

/// A server whose `/reality2` is a web page (readable from any origin), not GraphQL.
async fn web_page_server() -> Result<String> {
    fake_server(Some((
        "200 OK",
        "Content-Type: text/html\r\nAccess-Control-Allow-Origin: *\r\nAccess-Control-Allow-Headers: *\r\n",
        "<html><body>Welcome to nginx!</body></html>",
    )))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_wrong_address_gets_its_own_message() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let node = TestNode::start(Some(&sites)).await?;
    let browser = Browser::launch().await?;

    let closed = closed_port()?;
    let (message, summary) = contact(&browser, &node, &closed, "").await?;
    assert!(message.contains("Nothing is listening"), "{message}");
    assert_eq!(error_kinds(&summary), vec!["refused"], "{summary}");
    assert_eq!(summary["verdict"], "fail");

    // HTTP works (and allows this origin), but /reality2 is a web page, not GraphQL.
    let web = web_page_server().await?;
    let (message, summary) = contact(&browser, &node, &web, "").await?;
    assert!(
        message.contains("not a Reality2 GraphQL endpoint"),
        "{message}"
    );
    assert_eq!(error_kinds(&summary), vec!["not_reality2"], "{summary}");

    // A server that answers, but not to this origin: CORS.
    let foreign = fake_server(Some((
        "200 OK",
        "Content-Type: application/json\r\n",
        r#"{"data":{"sentantAll":[]}}"#,
    )))
    .await?;
    let (message, summary) = contact(&browser, &node, &foreign, "").await?;
    assert!(message.contains("may not read its answers"), "{message}");
    assert!(
        message.contains("/stresstest/"),
        "the fix is named: {message}"
    );
    assert_eq!(error_kinds(&summary), vec!["cors"], "{summary}");

    // A server that accepts and never answers.
    let silent = fake_server(None).await?;
    let (message, summary) = contact(&browser, &node, &silent, "&timeout_ms=800").await?;
    assert!(message.contains("took longer than"), "{message}");
    assert_eq!(error_kinds(&summary), vec!["timeout"], "{summary}");

    // HTTPS with a self-signed certificate this browser has not accepted.
    let tls = r2_node::Running::start(r2_node::Config::loopback().with_loopback_https()).await?;
    let https = tls.https_url().context("https listener")?;
    let (message, summary) = contact(&browser, &node, &https, "").await?;
    assert!(message.contains("certificate"), "{message}");
    assert!(
        message.contains(&format!("{https}/reality2")),
        "the link to open once: {message}"
    );
    assert_eq!(
        error_kinds(&summary),
        vec!["refused_or_certificate"],
        "{summary}"
    );

    assert_eq!(
        node.stats().await?["loads"],
        0,
        "nothing was sent to the page's own node"
    );
    tls.stop().await?;
    browser.close().await?;
    Ok(())
}

/// The lean request path (`http=lean`) fails as `gloo-net`'s does: the same
/// messages and error kinds for nothing listening, a web page, and a server
/// that never answers (its batch's timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lean_request_path_gives_the_same_first_contact_messages() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let node = TestNode::start(Some(&sites)).await?;
    let browser = Browser::launch().await?;
    let closed = closed_port()?;
    let web = web_page_server().await?;
    let silent = fake_server(None).await?;
    for (target, extra, words, kind) in [
        (&closed, "", "Nothing is listening", "refused"),
        (&web, "", "not a Reality2 GraphQL endpoint", "not_reality2"),
        (&silent, "&timeout_ms=800", "took longer than", "timeout"),
    ] {
        let (message, summary) =
            contact(&browser, &node, target, &format!("{extra}&http=lean")).await?;
        assert!(message.contains(words), "{target}: {message}");
        assert_eq!(error_kinds(&summary), vec![kind], "{summary}");
        assert_eq!(summary["http"], "lean", "{summary}");
    }
    browser.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autostart_link_to_another_node_asks_once_first() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let page_node = TestNode::start(Some(&sites)).await?;
    // Another origin, which lets the page read its answers (CORS).
    let other = TestNode::start_lenient(None).await?;
    let browser = Browser::launch().await?;
    let query = format!("node={}&devices=3&duration=1&autostart=1", other.url());
    let ask = "document.querySelector('#r2-consent')?.textContent";

    // Declined: nothing is sent anywhere.
    let page = open(&browser, &page_node, &query).await?;
    let question = page.wait_for(ask, WAIT).await?;
    let question = question.as_str().context("question")?;
    assert!(
        question.contains(&other.url()) && question.contains("3 devices"),
        "{question}"
    );
    assert_eq!(
        other.stats().await?["requests"],
        0,
        "nothing before consent"
    );
    page.eval("document.querySelector('#r2-consent-cancel').click()")
        .await?;
    page.wait_for("document.querySelector('#r2-consent') === null", WAIT)
        .await?;
    assert!(
        page.eval("document.querySelector('#r2-summary')?.textContent ?? ''")
            .await?
            == ""
    );

    // Accepted: the run goes ahead, once, and cleans up after itself.
    let page = open(&browser, &page_node, &query).await?;
    page.wait_for(ask, WAIT).await?;
    assert_eq!(
        other.stats().await?["requests"],
        0,
        "nothing before consent"
    );
    page.eval("document.querySelector('#r2-consent-start').click()")
        .await?;
    let summary = page.summary("deleted", WAIT).await?;
    assert_eq!(
        (
            summary["devices_created"].as_u64(),
            summary["devices_deleted"].as_u64()
        ),
        (Some(3), Some(3)),
        "{summary}"
    );
    let stats = other.stats().await?;
    assert_eq!(
        (stats["loads"].as_u64(), stats["sentants"].as_u64()),
        (Some(3), Some(0)),
        "{stats}"
    );
    assert!(
        page.eval("document.querySelector('#r2-consent') === null")
            .await?
            == Value::Bool(true),
        "asked once"
    );
    assert_eq!(page_node.stats().await?["loads"], 0);
    browser.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_form_values_are_refused_with_a_message() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let node = TestNode::start(Some(&sites)).await?;
    let browser = Browser::launch().await?;
    let error = "document.querySelector('#r2-form-error')?.textContent";

    for (query, field) in [
        ("devices=-5&autostart=1", "devices"),
        ("devices=lots&autostart=1", "devices"),
        ("devices=999999999&autostart=1", "devices"),
        ("duration=0&autostart=1", "duration"),
        ("node=ftp://example&autostart=1", "node"),
        ("join_rate=-1&autostart=1", "join_rate"),
    ] {
        let page = open(&browser, &node, query).await?;
        let message = page.wait_for(error, WAIT).await?;
        let message = message.as_str().context("error text")?;
        assert!(message.contains(field), "?{query}: {message}");
        let create_disabled = page
            .eval("document.querySelector('#b-create').disabled")
            .await?;
        assert_eq!(create_disabled, Value::Bool(true), "?{query}");
    }

    // Typing a bad value in the form refuses it too, and a good one clears it.
    let page = open(&browser, &node, "devices=5").await?;
    page.wait_for("document.querySelector('#f-devices') !== null", WAIT)
        .await?;
    let type_devices = |value: &str| {
        format!(
            "(() => {{ const i = document.querySelector('#f-devices'); i.value = '{value}'; \
             i.dispatchEvent(new InputEvent('input', {{ bubbles: true }})); return true; }})()"
        )
    };
    page.eval(&type_devices("-1")).await?;
    page.wait_for(error, WAIT).await?;
    page.eval(&type_devices("12")).await?;
    page.wait_for(&format!("!{error}"), WAIT).await?;

    // More devices than a browser has websockets, in per-device mode: a warning naming `shared`.
    let page = open(&browser, &node, "devices=400&sockets=per-device").await?;
    let warning = page
        .wait_for(
            "document.querySelector('#r2-form-warning')?.textContent",
            WAIT,
        )
        .await?;
    assert!(
        warning.as_str().is_some_and(|w| w.contains("shared")),
        "{warning}"
    );
    let page = open(&browser, &node, "devices=400&sockets=shared").await?;
    let none = page
        .eval("document.querySelector('#r2-form-warning') === null")
        .await?;
    assert_eq!(none, Value::Bool(true));

    assert_eq!(
        node.stats().await?["loads"],
        0,
        "no bad value reached the node"
    );
    browser.close().await?;
    Ok(())
}
