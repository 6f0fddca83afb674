//! One browser tab, attached over a flattened CDP session: navigation,
//! JavaScript evaluation, waiting for conditions, and the console output the
//! page produced.
//!
//! The page's dedicated workers (r2-stress runs its engine in one) are
//! attached as they start, paused until set up: their console joins the
//! page's, their heap counts in [`Page::js_heap_used_bytes`], and their
//! traffic in [`Page::record_network`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::cdp::{AbortOnDrop, Connection, Event};
use crate::error::Error;

/// How many console lines a page keeps (the oldest are dropped).
const CONSOLE_CAPACITY: usize = 1000;
/// How many of them a `wait_for` timeout quotes.
const CONSOLE_IN_ERRORS: usize = 40;
/// How often `wait_for` re-evaluates its condition.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How long past `wait_for`'s deadline its last evaluation may take.
const EVAL_GRACE: Duration = Duration::from_secs(1);
/// How long `goto` waits for the load event.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// `Network.enable`'s buffers: whole GraphQL bodies are kept.
fn network_params() -> Value {
    json!({ "maxPostDataSize": 1_000_000, "maxTotalBufferSize": 100_000_000 })
}

/// A run's query string for the `lean` profile (one socket and three
/// requests per device, the earlier device), unless it names a profile or
/// `sockets=none` (the seed's script): the tests written for that device.
pub fn lean(query: &str) -> String {
    if query
        .split('&')
        .any(|p| p.starts_with("profile=") || p == "sockets=none")
    {
        query.to_owned()
    } else if query.is_empty() {
        "profile=lean".to_owned()
    } else {
        format!("profile=lean&{query}")
    }
}

/// The whole number `key` of a summary or of the node's stats; panics
/// (failing the test) naming it when it is not one.
pub fn num(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is a number in {v}"))
}

/// How many errors of `kind` (`http_500`, `timeout`, ...) a run summary counts.
pub fn error_count(summary: &Value, kind: &str) -> u64 {
    summary["errors"]
        .as_array()
        .and_then(|errors| errors.iter().find(|e| e["kind"] == kind))
        .and_then(|e| e["count"].as_u64())
        .unwrap_or(0)
}

/// A tab of a [`Browser`](crate::Browser).
pub struct Page {
    conn: Arc<Connection>,
    session: String,
    target: String,
    console: Console,
    workers: Workers,
    _collector: AbortOnDrop,
    _worker_watch: AbortOnDrop,
}

/// The page's dedicated workers, by session, and where their network
/// events go while the traffic is recorded.
#[derive(Clone, Default)]
struct Workers(Arc<Mutex<WorkerSessions>>);

#[derive(Default)]
struct WorkerSessions {
    sessions: Vec<String>,
    network: Option<mpsc::UnboundedSender<Event>>,
    /// The forwarders of the workers' events, stopped with the page.
    tasks: Vec<AbortOnDrop>,
}

impl Workers {
    fn lock(&self) -> std::sync::MutexGuard<'_, WorkerSessions> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sessions(&self) -> Vec<String> {
        self.lock().sessions.clone()
    }

    /// Sets up each worker the page starts, then lets it run: its console
    /// collected, its network recorded if the page's is.
    async fn watch(
        self,
        conn: Arc<Connection>,
        console: Console,
        mut events: mpsc::UnboundedReceiver<Event>,
    ) {
        while let Some(event) = events.recv().await {
            if event.method != "Target.attachedToTarget" {
                continue;
            }
            let Some(session) = event.params["sessionId"].as_str().map(str::to_owned) else {
                continue;
            };
            let console_task =
                tokio::spawn(console.clone().collect(conn.subscribe(Some(&session))));
            let network = {
                let mut workers = self.lock();
                workers.sessions.push(session.clone());
                workers.tasks.push(AbortOnDrop(console_task));
                workers.network.clone()
            };
            if let Some(to) = network {
                let task = forward(conn.subscribe(Some(&session)), to);
                self.lock().tasks.push(task);
                let _ = conn
                    .call("Network.enable", network_params(), Some(&session))
                    .await;
            }
            let _ = conn.call("Runtime.enable", json!({}), Some(&session)).await;
            let _ = conn
                .call("Runtime.runIfWaitingForDebugger", json!({}), Some(&session))
                .await;
        }
    }
}

/// Passes `events` on to `to` until either end closes.
fn forward(
    mut events: mpsc::UnboundedReceiver<Event>,
    to: mpsc::UnboundedSender<Event>,
) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if to.send(event).is_err() {
                return;
            }
        }
    }))
}

impl Page {
    /// Creates a blank target, attaches to it and enables the domains the
    /// harness needs.
    pub(crate) async fn open(conn: Arc<Connection>) -> Result<Page, Error> {
        let created = conn
            // Its own window: a tab behind another would be hidden, and a
            // hidden tab's timers throttled.
            .call(
                "Target.createTarget",
                json!({ "url": "about:blank", "newWindow": true }),
                None,
            )
            .await?;
        let target = string_field(&created, "targetId", "Target.createTarget")?;
        let attached = conn
            .call(
                "Target.attachToTarget",
                json!({ "targetId": target, "flatten": true }),
                None,
            )
            .await?;
        let session = string_field(&attached, "sessionId", "Target.attachToTarget")?;
        // Subscribe before enabling Runtime/Log so no message is missed.
        let console = Console::default();
        let collector = tokio::spawn(console.clone().collect(conn.subscribe(Some(&session))));
        let workers = Workers::default();
        let worker_watch = tokio::spawn(workers.clone().watch(
            conn.clone(),
            console.clone(),
            conn.subscribe(Some(&session)),
        ));
        let page = Page {
            conn,
            session,
            target,
            console,
            workers,
            _collector: AbortOnDrop(collector),
            _worker_watch: AbortOnDrop(worker_watch),
        };
        futures::try_join!(
            page.command(
                "Target.setAutoAttach",
                json!({ "autoAttach": true, "waitForDebuggerOnStart": true, "flatten": true })
            ),
            page.command("Runtime.enable", json!({})),
            page.command("Page.enable", json!({})),
            page.command("Log.enable", json!({})),
            page.command("Page.setLifecycleEventsEnabled", json!({ "enabled": true })),
        )?;
        Ok(page)
    }

    /// Navigates and waits for the new document's `load` event. A failed
    /// navigation (e.g. connection refused) is an error; an HTTP error status
    /// is not (the error page loads).
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        // Subscribe first: the load event may come right after the answer.
        let mut events = self.conn.subscribe(Some(&self.session));
        let navigated = self.command("Page.navigate", json!({ "url": url })).await?;
        if let Some(reason) = navigated.get("errorText").and_then(Value::as_str) {
            return Err(Error::Navigation {
                url: url.to_owned(),
                reason: reason.to_owned(),
            }
            .into());
        }
        // A same-document navigation (only the fragment changes) has no loader
        // and fires no load event.
        let Some(loader) = navigated.get("loaderId").and_then(Value::as_str) else {
            return Ok(());
        };
        let loaded = async {
            while let Some(event) = events.recv().await {
                let params = &event.params;
                if event.method == "Page.lifecycleEvent"
                    && params["name"] == "load"
                    && params["loaderId"].as_str() == Some(loader)
                {
                    return Ok(());
                }
            }
            Err(Error::Closed(format!("while loading {url}")))
        };
        tokio::time::timeout(LOAD_TIMEOUT, loaded)
            .await
            .map_err(|_| Error::Timeout {
                what: format!("the load event of {url}"),
                after: LOAD_TIMEOUT,
            })??;
        Ok(())
    }

    /// Evaluates an expression (awaiting it if it is a promise) and returns its
    /// value as JSON: `undefined` becomes `null`, and values JSON cannot hold
    /// (`NaN`, `Infinity`, `-0`, bigints) come back as their JavaScript text.
    /// A thrown exception or rejected promise is `Err` with its message.
    pub async fn eval(&self, js: &str) -> anyhow::Result<Value> {
        Ok(self.evaluate(js).await?.into_json())
    }

    /// Evaluates `js_condition` every 50 ms until it is truthy (by JavaScript's
    /// rules) and returns that value. Exceptions while polling (an element not
    /// there yet, a page mid-navigation) count as "not yet". The last check
    /// happens at the deadline (an evaluation may run up to 1 s past it). On
    /// timeout the error holds the last result and the page's recent console
    /// output.
    pub async fn wait_for(&self, js_condition: &str, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let last =
                match tokio::time::timeout(left + EVAL_GRACE, self.evaluate(js_condition)).await {
                    Ok(Ok(remote)) if remote.is_truthy() => return Ok(remote.into_json()),
                    Ok(Ok(remote)) => remote.into_json().to_string(),
                    Ok(Err(e)) => e.to_string(),
                    Err(_elapsed) => "the evaluation did not finish".to_owned(),
                };
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::WaitFor {
                    condition: js_condition.to_owned(),
                    after: timeout,
                    last,
                    console: self.console.recent(CONSOLE_IN_ERRORS),
                }
                .into());
            }
            // The last poll happens at the deadline.
            tokio::time::sleep(POLL_INTERVAL.min(deadline - now)).await;
        }
    }

    /// The run summary the r2-stress page writes into `<pre id="r2-summary">`,
    /// once the phase that wrote it (`data-phase`) is `phase` (`stopped`,
    /// `deleted`, `failed`), parsed as JSON.
    pub async fn summary(&self, phase: &str, timeout: Duration) -> anyhow::Result<Value> {
        let phase_literal = Value::String(phase.to_owned()).to_string();
        let condition = format!(
            "(() => {{ const e = document.querySelector('#r2-summary'); \
             return e && e.dataset.phase === {phase_literal} ? e.textContent : null; }})()"
        );
        let text = self.wait_for(&condition, timeout).await?;
        let text = text.as_str().unwrap_or_default();
        serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("the summary is not JSON ({e}): {text}"))
    }

    /// The `textContent` of the first element matching a CSS selector, `None`
    /// when nothing matches. An invalid selector is an error.
    pub async fn text(&self, selector: &str) -> anyhow::Result<Option<String>> {
        let selector_literal = Value::String(selector.to_owned()).to_string();
        let js = format!("(() => {{ const e = document.querySelector({selector_literal}); return e === null ? null : e.textContent; }})()");
        match self.eval(&js).await? {
            Value::Null => Ok(None),
            Value::String(text) => Ok(Some(text)),
            other => Err(Error::unexpected("text", format!("textContent was {other}")).into()),
        }
    }

    /// Slows the page's CPU down `rate` times (`1.0`: no slowdown), as
    /// DevTools' CPU throttling does.
    pub async fn set_cpu_throttling(&self, rate: f64) -> anyhow::Result<()> {
        self.command("Emulation.setCPUThrottlingRate", json!({ "rate": rate }))
            .await?;
        Ok(())
    }

    /// Bytes of JavaScript heap in use (`Runtime.getHeapUsage`'s
    /// `usedSize`), the page's and its workers' together.
    pub async fn js_heap_used_bytes(&self) -> anyhow::Result<u64> {
        let mut total = heap_used(&self.conn, &self.session).await?;
        for worker in self.workers.sessions() {
            // A worker that ended since is not counted.
            total += heap_used(&self.conn, &worker).await.unwrap_or(0);
        }
        Ok(total)
    }

    /// How many dedicated workers the page has started.
    pub fn worker_count(&self) -> usize {
        self.workers.sessions().len()
    }

    /// The console messages, uncaught exceptions and log entries collected so
    /// far (at most the last 1000), oldest first, each as `[kind] text`.
    pub fn console(&self) -> Vec<String> {
        self.console.lines().iter().cloned().collect()
    }

    /// Runs `source` in every document this tab loads from now on, before
    /// the page's own scripts (`Page.addScriptToEvaluateOnNewDocument`).
    pub async fn add_init_script(&self, source: &str) -> anyhow::Result<()> {
        self.command(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": source }),
        )
        .await?;
        Ok(())
    }

    /// Starts V8's sampling profiler, one sample every `interval_us`
    /// microseconds, in the page and in each of its workers started so far
    /// (the run engine's).
    pub async fn start_profiling(&self, interval_us: u32) -> anyhow::Result<()> {
        for session in self.all_sessions() {
            let call = |method: &'static str, params: Value| {
                self.conn.call(method, params, Some(&session))
            };
            call("Profiler.enable", json!({})).await?;
            call(
                "Profiler.setSamplingInterval",
                json!({ "interval": interval_us }),
            )
            .await?;
            call("Profiler.start", json!({})).await?;
        }
        Ok(())
    }

    /// Stops the profilers [`Page::start_profiling`] started and returns
    /// each one's `Profiler.Profile` (the page's first, then the workers').
    /// A worker that ended since is left out.
    pub async fn stop_profiling(&self) -> anyhow::Result<Vec<Value>> {
        let mut profiles = Vec::new();
        for (index, session) in self.all_sessions().into_iter().enumerate() {
            match self
                .conn
                .call("Profiler.stop", json!({}), Some(&session))
                .await
            {
                Ok(mut answer) => profiles.push(answer["profile"].take()),
                Err(e) if index == 0 => return Err(e.into()),
                Err(_) => {}
            }
        }
        Ok(profiles)
    }

    /// The page's session, then its workers'.
    fn all_sessions(&self) -> Vec<String> {
        let mut sessions = vec![self.session.clone()];
        sessions.extend(self.workers.sessions());
        sessions
    }

    /// Raw CDP on this page's session.
    pub async fn call(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        Ok(self.command(method, params).await?)
    }

    /// Closes the tab.
    /// Starts recording the tab's traffic from Chromium's own network log
    /// (`Network.*` events): GraphQL POSTs, assets, websockets and frames.
    /// Workers started from now on are recorded too (the run engine's).
    pub async fn record_network(&self) -> anyhow::Result<crate::wire::NetworkLog> {
        // Subscribe first, so nothing after `Network.enable` is missed.
        let (to, events) = mpsc::unbounded_channel();
        let page_events = forward(self.conn.subscribe(Some(&self.session)), to.clone());
        self.workers.lock().tasks.push(page_events);
        self.workers.lock().network = Some(to);
        let log = crate::wire::NetworkLog::start(events);
        self.command("Network.enable", network_params()).await?;
        Ok(log)
    }

    pub async fn close(self) -> anyhow::Result<()> {
        self.conn
            .call(
                "Target.closeTarget",
                json!({ "targetId": self.target }),
                None,
            )
            .await?;
        Ok(())
    }

    async fn command(&self, method: &str, params: Value) -> Result<Value, Error> {
        self.conn.call(method, params, Some(&self.session)).await
    }

    async fn evaluate(&self, js: &str) -> Result<RemoteObject, Error> {
        let params = json!({
            "expression": js,
            "awaitPromise": true,
            "returnByValue": true,
        });
        let answer = self.command("Runtime.evaluate", params).await?;
        if let Some(details) = answer.get("exceptionDetails") {
            return Err(Error::Js(exception_message(details)));
        }
        Ok(RemoteObject(
            answer.get("result").cloned().unwrap_or(Value::Null),
        ))
    }
}

/// A CDP `Runtime.RemoteObject` returned by value.
struct RemoteObject(Value);

impl RemoteObject {
    fn into_json(self) -> Value {
        let RemoteObject(mut object) = self;
        match object.get_mut("value").map(Value::take) {
            Some(value) => value,
            None => object
                .get_mut("unserializableValue")
                .map(Value::take)
                .unwrap_or(Value::Null),
        }
    }

    /// JavaScript truthiness of the object.
    fn is_truthy(&self) -> bool {
        let object = &self.0;
        let value = object.get("value");
        match object.get("type").and_then(Value::as_str) {
            Some("undefined") => false,
            Some("boolean") => value == Some(&Value::Bool(true)),
            Some("string") => value.and_then(Value::as_str).is_some_and(|s| !s.is_empty()),
            Some("number") => match value.and_then(Value::as_f64) {
                Some(n) => n != 0.0,
                // NaN and -0 are falsy, ±Infinity truthy.
                None => object["unserializableValue"]
                    .as_str()
                    .is_some_and(|s| s.contains("Infinity")),
            },
            Some("bigint") => object["unserializableValue"] != "0n",
            Some("object") => {
                object.get("subtype").and_then(Value::as_str) != Some("null")
                    && value != Some(&Value::Null)
            }
            // Functions and symbols.
            _ => true,
        }
    }
}

/// The message of an `exceptionDetails`: the exception's description (which
/// for an `Error` includes its stack), or the thrown value.
fn exception_message(details: &Value) -> String {
    let exception = &details["exception"];
    if let Some(description) = exception["description"].as_str() {
        return description.to_owned();
    }
    let text = details["text"].as_str().unwrap_or("Uncaught");
    match exception.get("value") {
        Some(Value::String(s)) => format!("{text} {s}"),
        Some(value) => format!("{text} {value}"),
        None => text.to_owned(),
    }
}

/// The console output of a page, shared with the task collecting it.
#[derive(Clone, Default)]
struct Console(Arc<Mutex<VecDeque<String>>>);

impl Console {
    async fn collect(self, mut events: mpsc::UnboundedReceiver<Event>) {
        while let Some(event) = events.recv().await {
            if let Some(line) = console_line(&event) {
                let mut lines = self.lines();
                if lines.len() == CONSOLE_CAPACITY {
                    lines.pop_front();
                }
                lines.push_back(line);
            }
        }
    }

    fn lines(&self) -> std::sync::MutexGuard<'_, VecDeque<String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn recent(&self, n: usize) -> String {
        let lines = self.lines();
        if lines.is_empty() {
            return "(none)".to_owned();
        }
        let skip = lines.len().saturating_sub(n);
        lines
            .iter()
            .skip(skip)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// One line for a console call, an uncaught exception or a log entry.
fn console_line(event: &Event) -> Option<String> {
    let params = &event.params;
    match event.method.as_str() {
        "Runtime.consoleAPICalled" => {
            let kind = params["type"].as_str().unwrap_or("log");
            let args: Vec<String> = params["args"]
                .as_array()
                .map(|args| args.iter().map(remote_object_text).collect())
                .unwrap_or_default();
            Some(format!("[console.{kind}] {}", args.join(" ")))
        }
        "Runtime.exceptionThrown" => Some(format!(
            "[exception] {}",
            exception_message(&params["exceptionDetails"])
        )),
        "Log.entryAdded" => {
            let entry = &params["entry"];
            let level = entry["level"].as_str().unwrap_or("info");
            let text = entry["text"].as_str().unwrap_or_default();
            Some(match entry["url"].as_str() {
                Some(url) => format!("[log.{level}] {text} ({url})"),
                None => format!("[log.{level}] {text}"),
            })
        }
        _ => None,
    }
}

/// How a console argument reads: strings as they are, primitives as JSON,
/// objects by their description.
fn remote_object_text(object: &Value) -> String {
    match object.get("value") {
        Some(Value::String(s)) => s.clone(),
        Some(value) => value.to_string(),
        None => object
            .get("unserializableValue")
            .or_else(|| object.get("description"))
            .and_then(Value::as_str)
            .map_or_else(
                || object["type"].as_str().unwrap_or("?").to_owned(),
                str::to_owned,
            ),
    }
}

fn string_field(answer: &Value, field: &str, method: &str) -> Result<String, Error> {
    answer
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| Error::unexpected(method, format!("no {field} in {answer}")))
}

/// `Runtime.getHeapUsage`'s `usedSize` on one session.
async fn heap_used(conn: &Connection, session: &str) -> anyhow::Result<u64> {
    let usage = conn
        .call("Runtime.getHeapUsage", json!({}), Some(session))
        .await?;
    match usage.get("usedSize").and_then(Value::as_f64) {
        Some(bytes) if bytes.is_finite() && bytes >= 0.0 => Ok(bytes as u64),
        _ => Err(Error::unexpected("Runtime.getHeapUsage", usage.to_string()).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truthy(object: Value) -> bool {
        RemoteObject(object).is_truthy()
    }

    #[test]
    fn truthiness_follows_javascript() {
        assert!(!truthy(json!({"type": "undefined"})));
        assert!(!truthy(
            json!({"type": "object", "subtype": "null", "value": null})
        ));
        assert!(!truthy(json!({"type": "boolean", "value": false})));
        assert!(truthy(json!({"type": "boolean", "value": true})));
        assert!(!truthy(json!({"type": "number", "value": 0})));
        assert!(truthy(json!({"type": "number", "value": 0.5})));
        assert!(!truthy(
            json!({"type": "number", "unserializableValue": "NaN"})
        ));
        assert!(!truthy(
            json!({"type": "number", "unserializableValue": "-0"})
        ));
        assert!(truthy(
            json!({"type": "number", "unserializableValue": "-Infinity"})
        ));
        assert!(!truthy(json!({"type": "string", "value": ""})));
        assert!(truthy(json!({"type": "string", "value": "0"})));
        assert!(!truthy(
            json!({"type": "bigint", "unserializableValue": "0n"})
        ));
        assert!(truthy(
            json!({"type": "bigint", "unserializableValue": "7n"})
        ));
        assert!(truthy(json!({"type": "object", "value": {}})));
        assert!(truthy(
            json!({"type": "object", "subtype": "array", "value": []})
        ));
        assert!(truthy(json!({"type": "function"})));
    }

    #[test]
    fn values_json_cannot_hold_come_back_as_text() {
        assert_eq!(
            RemoteObject(json!({"type": "undefined"})).into_json(),
            Value::Null
        );
        assert_eq!(
            RemoteObject(json!({"type": "number", "unserializableValue": "NaN"})).into_json(),
            json!("NaN")
        );
        assert_eq!(
            RemoteObject(json!({"type": "number", "value": 3})).into_json(),
            json!(3)
        );
    }

    #[test]
    fn exception_messages_prefer_the_description() {
        let error = json!({"text": "Uncaught", "exception": {"type": "object", "description": "Error: boom\n    at x"}});
        assert_eq!(exception_message(&error), "Error: boom\n    at x");
        let thrown_string =
            json!({"text": "Uncaught", "exception": {"type": "string", "value": "plain"}});
        assert_eq!(exception_message(&thrown_string), "Uncaught plain");
        assert_eq!(
            exception_message(&json!({"text": "Uncaught SyntaxError"})),
            "Uncaught SyntaxError"
        );
    }

    #[test]
    fn console_lines_name_their_kind() {
        let call = Event {
            method: "Runtime.consoleAPICalled".into(),
            params: json!({"type": "warn", "args": [{"type": "string", "value": "n ="}, {"type": "number", "value": 4}, {"type": "object", "description": "Object"}]}),
        };
        assert_eq!(
            console_line(&call).as_deref(),
            Some("[console.warn] n = 4 Object")
        );
        let log = Event {
            method: "Log.entryAdded".into(),
            params: json!({"entry": {"level": "error", "text": "Failed to load resource", "url": "http://x/y"}}),
        };
        assert_eq!(
            console_line(&log).as_deref(),
            Some("[log.error] Failed to load resource (http://x/y)")
        );
        let other = Event {
            method: "Page.loadEventFired".into(),
            params: json!({}),
        };
        assert_eq!(console_line(&other), None);
    }
}
