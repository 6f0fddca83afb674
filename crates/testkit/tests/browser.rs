//! The Chromium side of the harness against a real headless Chromium and a
//! tiny HTTP server on `127.0.0.1:0`. Without Chromium these tests fail with
//! the launch error (they are not skipped).

use std::time::Duration;

use anyhow::Context as _;
use r2_testkit::{Browser, Error, Page};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(10);

const INDEX: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>testkit page</title></head>
<body>
<h1 id="title">Hello <em>testkit</em></h1>
<p class="status">waiting</p>
<script>console.log("page loaded", 42);</script>
</body></html>"#;

/// Serves `INDEX` at `/` (404 elsewhere), one request per connection.
struct StaticServer {
    url: String,
    _accept: tokio::task::JoinHandle<()>,
}

impl StaticServer {
    async fn start() -> anyhow::Result<StaticServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/", listener.local_addr()?);
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream));
            }
        });
        Ok(StaticServer {
            url,
            _accept: accept,
        })
    }
}

async fn answer(mut stream: tokio::net::TcpStream) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let request = String::from_utf8_lossy(&request);
    let path = request.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = if path == "/" {
        ("200 OK", INDEX)
    } else {
        ("404 Not Found", "not found")
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A browser with one page showing `INDEX`.
async fn loaded_page() -> anyhow::Result<(Browser, Page, StaticServer)> {
    let server = StaticServer::start().await?;
    let browser = Browser::launch()
        .await
        .context("launching Chromium (is it installed?)")?;
    let page = browser.new_page().await?;
    page.goto(&server.url).await?;
    Ok((browser, page, server))
}

/// Awaits a console line containing `needle`.
async fn console_line_with(page: &Page, needle: &str) -> anyhow::Result<String> {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(line) = page.console().into_iter().find(|l| l.contains(needle)) {
                return line;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .with_context(|| format!("no console line with {needle:?} in {:?}", page.console()))
}

fn testkit_error(e: &anyhow::Error) -> &Error {
    e.downcast_ref::<Error>()
        .unwrap_or_else(|| panic!("not an r2_testkit::Error: {e:#}"))
}

#[tokio::test]
async fn goto_then_eval_reads_values_and_the_dom() -> anyhow::Result<()> {
    let (browser, page, server) = loaded_page().await?;
    assert_eq!(page.eval("location.href").await?, json!(server.url));
    assert_eq!(page.eval("6 * 7").await?, json!(42));
    assert_eq!(
        page.eval("({a: [1, 'x'], b: null})").await?,
        json!({"a": [1, "x"], "b": null})
    );
    assert_eq!(page.eval("undefined").await?, Value::Null);
    assert_eq!(page.eval("0 / 0").await?, json!("NaN"));
    assert_eq!(
        page.eval("new Promise(r => setTimeout(() => r('later'), 20))")
            .await?,
        json!("later")
    );
    assert_eq!(page.eval("document.title").await?, json!("testkit page"));
    assert_eq!(
        page.eval("document.querySelectorAll('p').length").await?,
        json!(1)
    );
    assert_eq!(page.text("#title").await?.as_deref(), Some("Hello testkit"));
    assert_eq!(page.text("p.status").await?.as_deref(), Some("waiting"));
    assert_eq!(page.text("#missing").await?, None);
    let bad_selector = page.text("p[").await.expect_err("an invalid selector");
    assert!(
        matches!(testkit_error(&bad_selector), Error::Js(_)),
        "{bad_selector:#}"
    );

    // Navigating again loads the new document.
    page.eval("window.marker = 1").await?;
    page.goto(&format!("{}#again", server.url)).await?; // same document: no load event
    assert_eq!(page.eval("window.marker").await?, json!(1));
    page.goto(&server.url).await?;
    assert_eq!(page.eval("window.marker").await?, Value::Null);
    browser.close().await
}

#[tokio::test]
async fn wait_for_awaits_a_timer_and_times_out_with_the_console() -> anyhow::Result<()> {
    let (browser, page, _server) = loaded_page().await?;
    let scheduled = page
        .eval("setTimeout(() => { document.querySelector('.status').textContent = 'ready'; }, 200); document.querySelector('.status').textContent")
        .await?;
    assert_eq!(scheduled, json!("waiting"));
    let started = std::time::Instant::now();
    let ready = page
        .wait_for(
            "document.querySelector('.status').textContent === 'ready' && 'done'",
            WAIT,
        )
        .await?;
    assert_eq!(ready, json!("done"));
    assert!(started.elapsed() < WAIT);

    // A condition that throws until it holds is polled, not failed.
    page.eval("setTimeout(() => { window.late = {n: 5}; }, 100)")
        .await?;
    assert_eq!(page.wait_for("window.late.n", WAIT).await?, json!(5));

    page.eval("console.error('something broke')").await?;
    console_line_with(&page, "something broke").await?;
    let timeout = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let err = page
        .wait_for("window.never === true", timeout)
        .await
        .expect_err("never true");
    assert!(started.elapsed() >= timeout);
    match testkit_error(&err) {
        Error::WaitFor {
            condition,
            last,
            console,
            ..
        } => {
            assert_eq!(condition, "window.never === true");
            assert_eq!(last, "false");
            assert!(
                console.contains("[console.log] page loaded 42"),
                "{console}"
            );
            assert!(
                console.contains("[console.error] something broke"),
                "{console}"
            );
        }
        other => panic!("expected WaitFor, got {other}"),
    }
    browser.close().await
}

#[tokio::test]
async fn javascript_exceptions_are_errors_and_the_console_is_captured() -> anyhow::Result<()> {
    let (browser, page, _server) = loaded_page().await?;
    let thrown = page
        .eval("throw new Error('boom')")
        .await
        .expect_err("a throw");
    match testkit_error(&thrown) {
        Error::Js(message) => assert!(message.contains("Error: boom"), "{message}"),
        other => panic!("expected Js, got {other}"),
    }
    let rejected = page
        .eval("Promise.reject(new TypeError('nope'))")
        .await
        .expect_err("a rejection");
    assert!(
        format!("{rejected}").contains("TypeError: nope"),
        "{rejected:#}"
    );
    let syntax = page.eval("1 +* 2").await.expect_err("a syntax error");
    assert!(format!("{syntax}").contains("SyntaxError"), "{syntax:#}");
    assert_eq!(page.eval("1 + 1").await?, json!(2), "the page still works");

    console_line_with(&page, "[console.log] page loaded 42").await?;
    page.eval("console.warn('careful', {a: 1}, 3)").await?;
    let warn = console_line_with(&page, "careful").await?;
    assert_eq!(warn, "[console.warning] careful Object 3");
    page.eval("setTimeout(() => { throw new Error('late failure') }, 0)")
        .await?;
    let uncaught = console_line_with(&page, "late failure").await?;
    assert!(uncaught.starts_with("[exception]"), "{uncaught}");
    page.eval("fetch('/missing.png').catch(() => {})").await?;
    console_line_with(&page, "404").await?;
    browser.close().await
}

#[tokio::test]
async fn throttling_heap_and_renderer_cpu() -> anyhow::Result<()> {
    let (browser, page, _server) = loaded_page().await?;
    page.set_cpu_throttling(4.0).await?;
    page.set_cpu_throttling(1.0).await?;

    let before = page.js_heap_used_bytes().await?;
    assert!(before > 0);
    page.eval("window.big = new Array(2000000).fill(0).map((_, i) => i + 0.5); window.big.length")
        .await?;
    let after = page.js_heap_used_bytes().await?;
    assert!(after > before + 8_000_000, "heap {before} -> {after}");

    let cpu_before = browser.renderer_cpu_seconds().await?;
    // A fixed amount of work (a few hundred ms of CPU), so that other load on
    // the machine changes how long it takes but not how much CPU it needs.
    let sum = page
        .eval("{ let x = 0; for (let i = 0; i < 100000000; i++) x = (x + i) % 1000003; x }")
        .await?;
    assert!(sum.is_number());
    let cpu_after = browser.renderer_cpu_seconds().await?;
    assert!(
        cpu_after >= cpu_before + 0.1,
        "renderer CPU {cpu_before} -> {cpu_after}"
    );

    let raw = page
        .call(
            "Runtime.evaluate",
            json!({"expression": "2 ** 10", "returnByValue": true}),
        )
        .await?;
    assert_eq!(raw["result"]["value"], json!(1024));
    let unknown = page
        .call("No.suchMethod", json!({}))
        .await
        .expect_err("an unknown method");
    assert!(
        matches!(testkit_error(&unknown), Error::Protocol { .. }),
        "{unknown:#}"
    );
    browser.close().await
}

#[tokio::test]
async fn failed_navigation_is_an_error_and_close_cleans_up() -> anyhow::Result<()> {
    let browser = Browser::launch().await?;
    let pid = browser.pid();
    let profile = browser.profile_dir().to_owned();
    assert!(profile.join("DevToolsActivePort").is_file());

    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.local_addr()?.port()
    };
    let page = browser.new_page().await?;
    let err = page
        .goto(&format!("http://127.0.0.1:{closed_port}/"))
        .await
        .expect_err("refused");
    match testkit_error(&err) {
        Error::Navigation { reason, .. } => {
            assert!(reason.contains("ERR_CONNECTION_REFUSED"), "{reason}")
        }
        other => panic!("expected Navigation, got {other}"),
    }

    // Several pages share the browser; closing one leaves the others.
    let second = browser.new_page().await?;
    second.eval("window.who = 'second'").await?;
    page.close().await?;
    assert_eq!(second.eval("window.who").await?, json!("second"));

    browser.close().await?;
    assert!(
        !profile.exists(),
        "profile {} still there",
        profile.display()
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "browser process {pid} still there"
    );
    let after_close = second.eval("1").await.expect_err("the browser is gone");
    assert!(
        matches!(testkit_error(&after_close), Error::Closed(_)),
        "{after_close:#}"
    );
    Ok(())
}

#[tokio::test]
async fn dropping_the_browser_kills_it_and_removes_the_profile() -> anyhow::Result<()> {
    let browser = Browser::launch().await?;
    let page = browser.new_page().await?;
    page.eval("1").await?;
    let pid = browser.pid();
    let profile = browser.profile_dir().to_owned();
    drop(browser);
    drop(page);
    // The group was sent SIGKILL; await the browser process going away.
    let gone = tokio::time::timeout(WAIT, async {
        loop {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Gone, or a zombie waiting to be reaped by tokio.
            if state.is_empty() || state.contains(") Z ") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "browser {pid} still alive after drop");
    assert!(
        !profile.exists(),
        "profile {} still there",
        profile.display()
    );
    Ok(())
}
