//! Chromium's floor: what the browser spends on the WebApp's request with no
//! page around it, so the page's cost per request can be set beside what any
//! page in this browser on this machine must pay.
//!
//! A fresh headless Chromium opens a document of the node's own origin that
//! runs no code of ours (the node's JSON statistics), and a few lines of
//! JavaScript there make GraphQL POSTs to `/reality2` with `fetch` at a
//! steady rate for the scenario's duration, each answer read as text: the
//! shape of every request a phone makes (`content-type: application/json`,
//! a JSON body), a query the node answers at once. The browser's processes'
//! CPU over that window (by process type, from `/proc`) divided by the
//! answered requests is the floor.
//!
//! The push floor is the same for what a phone receives: a bare page holds
//! websockets subscribed to `view`'s `update` signal, with the frames a
//! phone's socket sends, while the benchmark sends `view` updates at a
//! steady rate; each push is parsed (`JSON.parse`, as any client reads it)
//! and counted, and the browser's CPU is divided by the pushes read.
//!
//! The socket request floor is the whole of a `transport=socket` run's
//! traffic without the page: the same bare page holds as many websockets as
//! the run did, each joined to the control topic and subscribed to the
//! `update` signal of a device sentant of its own (loaded for the floor)
//! before the costs are read, and sends the devices' requests on them in
//! turn at the run's rate: for each value a `set_sensor` then an `update`
//! `doc` to the socket's sentant. Each reply and each signal is parsed and
//! counted, and the browser's CPU is divided by the replies read (their
//! signals' cost included, one for every two requests, as the run's).
//!
//! The `webapp` floor is a `webapp` run's whole traffic over HTTPS, as the
//! phones make it: a bare page of the node's HTTPS origin (h2 offered),
//! holding websockets subscribed to `view`, makes the run's requests a
//! second with `fetch`, every other one a `view` `update` that the node
//! pushes to every socket, and reads every push; the sockets are as many as
//! make the run's pushes a second. Its CPU is the browser's for that
//! traffic with no page code, in cores.
//!
//! Each bare page also runs the page's lag meter: how late a 10 ms timer
//! fires on the thread that makes and reads the traffic. That is one thread
//! for all of it, where the page spreads its own over its workers: no bound
//! on the page's lag (at high rates the bare page's is the later).
//!
//! # Layout
//!
//! - [`run_floor`]: one measured run of the request floor.
//! - [`run_push_floor`], [`PushFloorRun`]: the push floor.
//! - [`run_socket_floor`], [`SocketFloor`]: the socket request floor.
//! - [`run_webapp_floor`], [`WebAppFloor`]: the `webapp` floor over HTTPS.
//! - [`FloorRun`]: its counts and costs, per request; [`Floor`]: one set
//!   beside a page run.

use std::time::Duration;

use r2_core::graphql::{
    self, await_signal_variables, name_variables, send_variables, AWAIT_SIGNAL,
    SENTANT_GET_BY_NAME, SENTANT_SEND,
};
use r2_core::phoenix::Frame;
use r2_testkit::{Browser, Page};
use serde::Deserialize;
use serde_json::json;

use crate::measure::{Snapshot, Window};
use crate::node::{NodeError, NodeHandle};
use crate::tab::{Scheme, TabError};

/// How often the bare page's timer fires; each turn makes the requests due.
const TICK_MS: u32 = 10;
/// The period of the bare page's lag meter: the page's hiccup meter's.
const LAG_MS: u32 = 10;
/// The longest floor run: one `Runtime.evaluate` awaits it, under the
/// harness's 30 s command timeout.
pub const MAX_DURATION_S: f64 = 20.0;
/// How long the push floor's page may take to read the last pushes.
const PUSHES_WAIT: Duration = Duration::from_secs(10);

/// One floor run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FloorRun {
    /// Requests a second the page aimed at.
    pub rate: f64,
    /// Requests made, answered (HTTP 200 with a body), failed.
    pub sent: u64,
    pub answered: u64,
    pub failed: u64,
    /// The browser's costs over the window.
    pub window: Window,
    /// `/reality2` requests the node answered over the run.
    pub node_requests: u64,
    /// Pushes the node made over the run (`subscription:data` frames).
    pub node_pushes: u64,
    /// Signals the page read (the socket floor's devices' `update`s; the
    /// `webapp` floor's pushes).
    pub signals: u64,
    /// The dedicated workers that made its traffic (0: the page's main
    /// thread), as they said.
    pub in_workers: u32,
    /// How late a 10 ms timer fired on the page's thread while it sent,
    /// p99 ms, as the page's hiccup meter measures its own (`None` when it
    /// never fired).
    pub lag_p99_ms: Option<f64>,
}

impl FloorRun {
    /// Browser CPU ms per answered request, all its processes.
    pub fn cpu_per_request_ms(&self) -> f64 {
        self.per_request_ms(self.window.client_cpu_s)
    }

    /// `cpu_s` seconds of CPU as ms per answered request.
    pub fn per_request_ms(&self, cpu_s: f64) -> f64 {
        ms_each(cpu_s, self.answered)
    }

    /// Cores' worth of CPU the browser alone needs for `rate` requests a
    /// second at this floor.
    pub fn cores_at(&self, rate: f64) -> f64 {
        rate * self.cpu_per_request_ms() / 1000.0
    }
}

/// `cpu_s` seconds of CPU shared by `count` things, in ms each (0 for none).
fn ms_each(cpu_s: f64, count: u64) -> f64 {
    if count == 0 {
        return 0.0;
    }
    cpu_s * 1000.0 / count as f64
}

/// The floor measured beside one page run, at that run's rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Floor {
    /// The device count of the `sweep` `shared` run over HTTP whose answered
    /// requests a second the floor made.
    pub beside: u32,
    pub run: FloorRun,
}

/// What the page's script returns.
#[derive(Debug, Deserialize)]
struct Counts {
    sent: u64,
    answered: u64,
    failed: u64,
    /// Signals read (the socket floor's).
    #[serde(default)]
    signals: u64,
    /// The dedicated workers that made the traffic (the `webapp` floor's).
    #[serde(default)]
    in_workers: u32,
    /// The lag meter's p99, ms (`null` when it never fired).
    lag_p99: Option<f64>,
}

/// The floor's query: one the node answers at once.
const FLOOR_QUERY: &str = SENTANT_GET_BY_NAME;
/// Its variables: a name no sentant has.
fn floor_variables() -> serde_json::Value {
    json!({ "name": "r2-bench-floor-nobody" })
}

/// The script: `rate` requests a second for `duration_s`, then every answer
/// awaited; what it returns is [`Counts`].
fn script(rate: f64, duration_s: f64) -> String {
    let body = json!({
        "operationName": "SentantGet",
        "query": FLOOR_QUERY,
        "variables": floor_variables(),
    });
    fetch_script(&[body], rate, duration_s)
}

/// A script making `rate` GraphQL POSTs a second for `duration_s` to the
/// node (`globalThis.__r2origin`, else the document's origin), the bodies
/// in turn, then awaiting every answer. What it returns is [`Counts`], with
/// `answered_of` (the answers counted by body), the lag meter's `lags`
/// (sorted) and whether it ran in a worker besides.
fn fetch_script(bodies: &[serde_json::Value], rate: f64, duration_s: f64) -> String {
    let bodies: Vec<String> = bodies.iter().map(|b| b.to_string()).collect();
    format!(
        "(async () => {{ \
           const bodies = {bodies}; \
           const headers = new Headers({{ 'content-type': 'application/json' }}); \
           const counts = {{ sent: 0, answered: 0, failed: 0 }}; \
           const answeredOf = bodies.map(() => 0); \
           const pending = []; \
           const url = (globalThis.__r2origin || location.origin) + '/reality2'; \
           const one = (k) => fetch(url, {{ method: 'POST', headers, body: bodies[k] }}) \
             .then(r => r.text().then(t => {{ if (r.ok && t.length) {{ counts.answered++; answeredOf[k]++; }} else counts.failed++; }})) \
             .catch(() => {{ counts.failed++; }}); \
           {paced} \
           await Promise.all(pending); \
           return {{ ...counts, lag_p99: lagP99, answered_of: answeredOf, lags: globalThis.__r2lag.lags, \
                     in_worker: typeof WorkerGlobalScope !== 'undefined' }}; }})()",
        bodies = serde_json::to_string(&bodies).expect("strings serialise"),
        paced = paced(
            rate,
            duration_s,
            "counts.sent < due",
            "pending.push(one(counts.sent % bodies.length)); counts.sent++;"
        ),
    )
}

/// The statement that makes a floor's requests at `rate` a second for
/// `duration_s`: every [`TICK_MS`] it runs `send` while `more` (which may
/// read `due`, the requests due by now) holds, and resolves at the end.
///
/// Meanwhile the lag meter runs ([`lag_start`]); the statement then
/// declares `lagP99` ([`LAG_STOP`]).
fn paced(rate: f64, duration_s: f64, more: &str, send: &str) -> String {
    format!(
        "const start = performance.now(); \
         {lag_start} \
         await new Promise(done => {{ \
           const timer = setInterval(() => {{ \
             const elapsed = (performance.now() - start) / 1000; \
             const due = Math.min({rate} * elapsed, {total}); \
             while ({more}) {{ {send} }} \
             if (elapsed >= {duration_s}) {{ clearInterval(timer); done(); }} \
           }}, {TICK_MS}); \
         }}); \
         const lagP99 = {LAG_STOP};",
        total = (rate * duration_s).floor(),
        lag_start = lag_start(),
    )
}

/// The statement that starts the bare page's lag meter: a [`LAG_MS`] timer,
/// set again each time it fires, records how late it fired, as the page's
/// hiccup meter does in its engine's thread (here the thread that makes and
/// reads the traffic).
fn lag_start() -> String {
    format!(
        "(() => {{ const m = globalThis.__r2lag = {{ lags: [], on: true }}; \
           const tick = () => {{ const before = performance.now(); setTimeout(() => {{ \
             m.lags.push(Math.max(0, performance.now() - before - {LAG_MS})); \
             if (m.on) tick(); }}, {LAG_MS}); }}; \
           tick(); }})();"
    )
}

/// The expression that stops the lag meter and gives its p99 in ms (the
/// nearest rank), `null` when it never fired.
const LAG_STOP: &str = "(() => { const m = globalThis.__r2lag; m.on = false; \
    const lags = m.lags.sort((a, b) => a - b); \
    return lags.length ? lags[Math.ceil(0.99 * lags.length) - 1] : null; })()";

/// Runs the floor in a fresh Chromium against `node` over plain HTTP:
/// `rate` requests a second for `duration_s` (at most [`MAX_DURATION_S`]).
pub async fn run_floor(
    node: &NodeHandle,
    rate: f64,
    duration_s: f64,
) -> Result<FloorRun, TabError> {
    let script = script(rate, duration_s.min(MAX_DURATION_S));
    run_script(
        node,
        Scheme::Http,
        rate,
        None,
        &script,
        "the bare page's requests",
    )
    .await
}

/// Runs a floor's `script` (it returns [`Counts`]) in a fresh Chromium's
/// bare page against `node`, `what` naming it in errors.
async fn run_script(
    node: &NodeHandle,
    scheme: Scheme,
    rate: f64,
    setup: Option<&Setup>,
    script: &str,
    what: &'static str,
) -> Result<FloorRun, TabError> {
    let browser = scheme.launch().await?;
    let measured = measure(node, scheme, &browser, rate, setup, script, what).await;
    let _ = browser.close().await;
    measured
}

/// A tab of `browser` showing a document of the node's own origin that
/// runs no code of ours (its JSON statistics).
async fn bare_page(node: &NodeHandle, scheme: Scheme, browser: &Browser) -> Result<Page, TabError> {
    let page = browser
        .new_page()
        .await
        .map_err(crate::tab::browser_error("opening a tab"))?;
    page.goto(&format!("{}/r2-node/stats", scheme.base_url(node)?))
        .await
        .map_err(crate::tab::browser_error("loading the bare page"))?;
    Ok(page)
}

/// A script run on the bare page before a floor's costs are measured; it
/// resolves `true` when all is ready, else says what is not.
struct Setup {
    script: String,
    what: &'static str,
}

async fn measure(
    node: &NodeHandle,
    scheme: Scheme,
    browser: &Browser,
    rate: f64,
    setup: Option<&Setup>,
    script: &str,
    what: &'static str,
) -> Result<FloorRun, TabError> {
    let page = bare_page(node, scheme, browser).await?;
    if let Some(setup) = setup {
        let ready = page
            .eval(&setup.script)
            .await
            .map_err(crate::tab::browser_error(setup.what))?;
        if ready != serde_json::Value::Bool(true) {
            return Err(TabError::Browser {
                what: setup.what,
                source: ready.to_string().into(),
            });
        }
    }
    let pid = browser.pid();
    let before = node.stats().await?;
    let start = Snapshot::take(pid, true, node).await?;
    // One evaluation awaits the whole run: the protocol's command timeout
    // bounds it ([`MAX_DURATION_S`] keeps well inside it).
    let counts = page
        .eval(script)
        .await
        .map_err(crate::tab::browser_error(what))?;
    let end = Snapshot::take(pid, true, node).await?;
    let node_counts = node.stats().await?.since(&before);
    let counts: Counts = serde_json::from_value(counts).map_err(|e| TabError::Browser {
        what: "the bare page's counts",
        source: e.into(),
    })?;
    Ok(FloorRun {
        rate,
        sent: counts.sent,
        answered: counts.answered,
        failed: counts.failed,
        window: Window::between(&start, &end),
        node_requests: node_counts.requests,
        node_pushes: node_counts.deliveries,
        signals: counts.signals,
        in_workers: counts.in_workers,
        lag_p99_ms: counts.lag_p99,
    })
}

/// One run of the push floor: a bare page holding `sockets` websockets,
/// each subscribed to `view`'s `update` signal as a phone's are, while the
/// benchmark sends `view` `updates_per_s` updates a second: every update
/// pushed to every socket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PushFloorRun {
    pub sockets: u32,
    pub updates_per_s: f64,
    /// Updates the node accepted.
    pub updates: u64,
    /// Pushes the page read (`subscription:data` frames, each parsed).
    pub pushes: u64,
    /// Pushes the node made over the window.
    pub node_pushes: u64,
    pub window: Window,
    /// The page's lag meter while the updates came, p99 ms ([`lag_start`]).
    pub lag_p99_ms: Option<f64>,
}

impl PushFloorRun {
    /// Browser CPU ms per push read, all its processes.
    pub fn cpu_per_push_ms(&self) -> f64 {
        self.per_push_ms(self.window.client_cpu_s)
    }

    /// `cpu_s` seconds of CPU as ms per push read.
    pub fn per_push_ms(&self, cpu_s: f64) -> f64 {
        ms_each(cpu_s, self.pushes)
    }

    /// Cores' worth of CPU the browser alone needs for `rate` pushes a
    /// second at this floor.
    pub fn cores_at(&self, rate: f64) -> f64 {
        rate * self.cpu_per_push_ms() / 1000.0
    }
}

/// The push floor's set-up script: `sockets` websockets to the node's
/// `/reality2/websocket`, each joining the control topic and subscribing
/// (`join`, `doc`: the frames a phone's socket sends); each push read is
/// parsed and counted in `globalThis.__r2floor.pushes`. Resolves once every
/// socket is subscribed, with how many were and how many failed.
fn push_script(sockets: u32, join: &str, doc: &str) -> String {
    format!(
        "(async () => {{ \
           const url = (globalThis.__r2origin || location.origin).replace(/^http/, 'ws') + '/reality2/websocket'; \
           const join = {join}; const doc = {doc}; \
           const state = globalThis.__r2floor = {{ sockets: [], pushes: 0, subscribed: 0, failed: 0 }}; \
           await Promise.all(Array.from({{ length: {sockets} }}, () => new Promise(done => {{ \
             const ws = new WebSocket(url); \
             state.sockets.push(ws); \
             ws.onopen = () => {{ ws.send(join); ws.send(doc); }}; \
             ws.onmessage = (e) => {{ \
               const frame = JSON.parse(e.data); \
               if (frame.event === 'subscription:data') state.pushes++; \
               else if (frame.payload && frame.payload.response && frame.payload.response.subscriptionId) \
                 {{ state.subscribed++; done(); }} \
             }}; \
             ws.onerror = () => {{ state.failed++; done(); }}; \
           }}))); \
           return {{ subscribed: state.subscribed, failed: state.failed }}; }})()",
        join = serde_json::to_string(join).expect("a string serialises"),
        doc = serde_json::to_string(doc).expect("a string serialises"),
    )
}

/// What the push floor's set-up returns.
#[derive(Debug, Deserialize)]
struct Subscribed {
    subscribed: u32,
    failed: u32,
}

/// Runs the push floor in a fresh Chromium against `node` over plain HTTP:
/// `sockets` subscribed sockets, `updates_per_s` updates to `view` a second
/// for `duration_s` (at most [`MAX_DURATION_S`]). `view` is loaded for the
/// run if the node has none, and unloaded after.
pub async fn run_push_floor(
    node: &NodeHandle,
    sockets: u32,
    updates_per_s: f64,
    duration_s: f64,
) -> Result<PushFloorRun, TabError> {
    let loaded = node.load_demo_sentants().await?;
    let browser = Scheme::Http.launch().await?;
    let measured = measure_pushes(
        node,
        &browser,
        sockets,
        updates_per_s,
        duration_s.min(MAX_DURATION_S),
    )
    .await;
    let _ = browser.close().await;
    node.unload_ids(&loaded).await?;
    measured
}

async fn measure_pushes(
    node: &NodeHandle,
    browser: &Browser,
    sockets: u32,
    updates_per_s: f64,
    duration_s: f64,
) -> Result<PushFloorRun, TabError> {
    let view = view_id(node).await?;
    let page = bare_page(node, Scheme::Http, browser).await?;
    let subscribed: Subscribed = serde_json::from_value(
        page.eval(&view_sockets_script(&view, sockets))
            .await
            .map_err(crate::tab::browser_error(
                "subscribing the bare page's sockets",
            ))?,
    )
    .map_err(|e| TabError::Browser {
        what: "the bare page's sockets",
        source: e.into(),
    })?;
    if subscribed.subscribed != sockets || subscribed.failed > 0 {
        return Err(TabError::Browser {
            what: "subscribing the bare page's sockets",
            source: format!(
                "{} of {sockets} subscribed, {} failed",
                subscribed.subscribed, subscribed.failed
            )
            .into(),
        });
    }
    let pid = browser.pid();
    let before = node.stats().await?;
    let start = Snapshot::take(pid, true, node).await?;
    page.eval(&lag_start())
        .await
        .map_err(crate::tab::browser_error(
            "starting the bare page's lag meter",
        ))?;
    let total = (updates_per_s * duration_s).floor() as u64;
    let began = tokio::time::Instant::now();
    let mut updates = 0;
    for i in 0..total {
        tokio::time::sleep_until(began + Duration::from_secs_f64(i as f64 / updates_per_s)).await;
        let parameters = json!({ "name": "r2-bench-floor", "sensor": (i % 360).to_string() });
        let answer = node
            .graphql(SENTANT_SEND, send_variables(&view, "update", &parameters))
            .await?;
        if answer["data"]["sentantSend"].is_object() {
            updates += 1;
        }
    }
    // Every push the node makes reaches the page before its costs are read.
    let expected = updates * u64::from(sockets);
    let read = page
        .wait_for(
            &format!("globalThis.__r2floor.pushes >= {expected} ? globalThis.__r2floor.pushes : 0"),
            PUSHES_WAIT,
        )
        .await;
    let end = Snapshot::take(pid, true, node).await?;
    let node_pushes = node.stats().await?.since(&before).deliveries;
    let pushes = match read {
        Ok(value) => value.as_u64().unwrap_or(0),
        Err(e) => return Err(crate::tab::browser_error("reading the pushes")(e)),
    };
    let lag = page
        .eval(LAG_STOP)
        .await
        .map_err(crate::tab::browser_error(
            "reading the bare page's lag meter",
        ))?;
    Ok(PushFloorRun {
        sockets,
        updates_per_s,
        updates,
        pushes,
        node_pushes,
        window: Window::between(&start, &end),
        lag_p99_ms: lag.as_f64(),
    })
}

/// `view`'s id on the node.
async fn view_id(node: &NodeHandle) -> Result<String, TabError> {
    let view = node
        .graphql(SENTANT_GET_BY_NAME, name_variables("view"))
        .await?;
    Ok(view["data"]["sentantGet"]["id"]
        .as_str()
        .ok_or_else(|| TabError::Browser {
            what: "finding `view` on the node",
            source: format!("no id in {view}").into(),
        })?
        .to_owned())
}

/// [`push_script`] for `sockets` websockets subscribing to `view`'s
/// `update` signal with a phone's frames.
fn view_sockets_script(view: &str, sockets: u32) -> String {
    let join = Frame::join_control(json!("1")).encode_client();
    let doc = Frame::doc(
        json!("2"),
        AWAIT_SIGNAL,
        await_signal_variables(view, "update"),
    )
    .encode_client();
    push_script(sockets, &join, &doc)
}

/// Chromium's floor for a `webapp` run's traffic over HTTPS: a bare page of
/// the node's HTTPS origin makes the run's requests a second with `fetch`
/// and reads its pushes on websockets subscribed to `view`, with no code of
/// ours. Half the requests are `view` `update`s (each pushed by the node to
/// every socket, as a phone's `update` is re-published to every phone), the
/// other half a query the node answers at once (as a phone's `set_sensor`
/// is); the sockets are as many as make the run's pushes a second. The
/// traffic is made on the page's main thread, or split over dedicated
/// workers as the page's engine splits its devices (each worker its share
/// of the requests and of the sockets, and its own lag meter, the lags
/// merged).
#[derive(Debug, Clone, PartialEq)]
pub struct WebAppFloor {
    /// The phones of the run whose traffic it made.
    pub beside: u32,
    /// The node pushes a second that run made.
    pub beside_pushes_per_s: f64,
    /// The websockets subscribed to `view`.
    pub sockets: u32,
    /// The dedicated workers the traffic was split over; 0: the page's main
    /// thread.
    pub workers: u32,
    /// Its requests, answers and timer lag; `signals` are the pushes read.
    pub run: FloorRun,
}

impl WebAppFloor {
    /// The sockets that make `pushes_per_s` pushes a second when half of
    /// `rate` requests a second are `view` updates: at least one, at most
    /// [`MAX_FLOOR_SOCKETS`].
    pub fn sockets_for(rate: f64, pushes_per_s: f64) -> u32 {
        let updates_per_s = rate / 2.0;
        if updates_per_s <= 0.0 {
            return 1;
        }
        (pushes_per_s / updates_per_s)
            .round()
            .clamp(1.0, f64::from(MAX_FLOOR_SOCKETS)) as u32
    }

    /// Where its traffic ran, in words: `main thread`, `1 worker`, `K workers`.
    pub fn threads(&self) -> String {
        match self.workers {
            0 => "main thread".to_owned(),
            1 => "1 worker".to_owned(),
            k => format!("{k} workers"),
        }
    }

    /// Cores' worth of CPU the browser's processes used over the run.
    pub fn browser_cores(&self) -> f64 {
        self.run.window.client_cores().unwrap_or(0.0)
    }

    /// Requests answered a second.
    pub fn requests_per_s(&self) -> f64 {
        rate_over(self.run.answered as f64, self.run.window.wall_s)
    }

    /// Pushes read a second.
    pub fn pushes_per_s(&self) -> f64 {
        rate_over(self.run.signals as f64, self.run.window.wall_s)
    }
}

/// `amount` over `wall_s` seconds, a second (0 for no time).
fn rate_over(amount: f64, wall_s: f64) -> f64 {
    if wall_s > 0.0 {
        amount / wall_s
    } else {
        0.0
    }
}

/// The most websockets a `webapp` floor holds: under Chromium's 255 per
/// host.
pub const MAX_FLOOR_SOCKETS: u32 = 250;

/// The most workers a `webapp` floor splits its traffic over (the page's
/// engine's most).
pub const MAX_FLOOR_WORKERS: u32 = 8;

/// Runs the `webapp` floor ([`WebAppFloor`]) in a fresh Chromium against
/// `node`'s HTTPS address: `rate` requests a second for `duration_s` (at most
/// [`MAX_DURATION_S`]) and as many sockets as make `pushes_per_s`, on the
/// page's main thread (`workers` 0) or split over `workers` dedicated
/// workers (at most [`MAX_FLOOR_WORKERS`]); `beside` names the run. `view`
/// is loaded for the floor if the node has none, and unloaded after.
pub async fn run_webapp_floor(
    node: &NodeHandle,
    beside: u32,
    workers: u32,
    rate: f64,
    pushes_per_s: f64,
    duration_s: f64,
) -> Result<WebAppFloor, TabError> {
    let loaded = node.load_demo_sentants().await?;
    let sockets = WebAppFloor::sockets_for(rate, pushes_per_s);
    let workers = workers.min(MAX_FLOOR_WORKERS);
    let measured = webapp_floor_on(node, sockets, workers, rate, duration_s).await;
    node.unload_ids(&loaded).await?;
    Ok(WebAppFloor {
        beside,
        beside_pushes_per_s: pushes_per_s,
        sockets,
        workers,
        run: measured?,
    })
}

/// `total` split `parts` ways (at least one), the first parts one larger
/// when it does not divide evenly.
fn split(total: u32, parts: u32) -> Vec<u32> {
    let parts = parts.max(1);
    (0..parts)
        .map(|k| total / parts + u32::from(k < total % parts))
        .collect()
}

/// The `webapp` floor's set-up: it makes the runners that carry its traffic
/// (`globalThis.__r2runners`, each a function running a script and
/// resolving to its value: an indirect `eval` on the page's main thread for
/// `workers` 0, else one dedicated worker each, told the page's origin),
/// then runs `subscribe[k]` on runner `k` ([`push_script`]); resolves `true`
/// once all `sockets` are subscribed, else says how many were.
fn runners_script(workers: u32, subscribe: &[String], sockets: u32) -> String {
    const WORKER: &str = "self.onmessage = async (e) => { \
        try { postMessage({ ok: await (0, eval)(e.data) }); } \
        catch (err) { postMessage({ error: String(err) }); } };";
    format!(
        "(async () => {{ \
           const origin = location.origin; \
           let runners; \
           if ({workers} === 0) runners = [(s) => Promise.resolve((0, eval)(s))]; \
           else {{ \
             const url = URL.createObjectURL(new Blob([{worker}], {{ type: 'text/javascript' }})); \
             runners = Array.from({{ length: {workers} }}, () => {{ \
               const w = new Worker(url); const waiting = []; \
               w.onmessage = (e) => waiting.shift()(e.data); \
               w.onerror = (e) => {{ const done = waiting.shift(); if (done) done({{ error: String(e.message) }}); }}; \
               return (s) => new Promise((done, fail) => {{ \
                 waiting.push((r) => r.error !== undefined ? fail(new Error(r.error)) : done(r.ok)); \
                 w.postMessage('globalThis.__r2origin = ' + JSON.stringify(origin) + '; ' + s); \
               }}); \
             }}); \
           }} \
           globalThis.__r2runners = runners; \
           const subscribe = {subscribe}; \
           const results = await Promise.all(runners.map((run, k) => run(subscribe[k]))); \
           const subscribed = results.reduce((n, r) => n + r.subscribed, 0); \
           const failed = results.reduce((n, r) => n + r.failed, 0); \
           return subscribed === {sockets} && failed === 0 \
             ? true : `${{subscribed}} of {sockets} subscribed, ${{failed}} failed`; }})()",
        worker = serde_json::to_string(WORKER).expect("a string serialises"),
        subscribe = serde_json::to_string(subscribe).expect("strings serialise"),
    )
}

/// The `webapp` floor's measured script: runner `k` runs `scripts[k]`
/// ([`fetch_script`]: its share of the requests); once all have, each
/// waits (at most [`REPLIES_WAIT_MS`]) for every push of the updates
/// answered in all to reach its `sockets[k]` sockets. Returns [`Counts`]
/// summed, the pushes read as `signals`, the lag p99 of all the runners'
/// lags together, and how many runners ran in a worker.
fn runners_run_script(scripts: &[String], sockets: &[u32]) -> String {
    let wait = format!(
        "(async () => {{ const f = globalThis.__r2floor; const t0 = performance.now(); \
           while (f.pushes < __N__ && performance.now() - t0 < {REPLIES_WAIT_MS}) \
             await new Promise(r => setTimeout(r, 20)); \
           return f.pushes; }})()"
    );
    format!(
        "(async () => {{ \
           const runners = globalThis.__r2runners; \
           const scripts = {scripts}; const sockets = {sockets}; const wait = {wait}; \
           const results = await Promise.all(runners.map((run, k) => run(scripts[k]))); \
           const updates = results.reduce((n, r) => n + r.answered_of[0], 0); \
           const pushes = await Promise.all(runners.map((run, k) => \
             run(wait.replace('__N__', String(updates * sockets[k]))))); \
           const lags = results.flatMap((r) => r.lags).sort((a, b) => a - b); \
           const sum = (f) => results.reduce((n, r) => n + f(r), 0); \
           return {{ sent: sum((r) => r.sent), answered: sum((r) => r.answered), \
                     failed: sum((r) => r.failed), signals: pushes.reduce((n, p) => n + p, 0), \
                     in_workers: sum((r) => (r.in_worker ? 1 : 0)), \
                     lag_p99: lags.length ? lags[Math.ceil(0.99 * lags.length) - 1] : null }}; }})()",
        scripts = serde_json::to_string(scripts).expect("strings serialise"),
        sockets = serde_json::to_string(sockets).expect("numbers serialise"),
        wait = serde_json::to_string(&wait).expect("a string serialises"),
    )
}

async fn webapp_floor_on(
    node: &NodeHandle,
    sockets: u32,
    workers: u32,
    rate: f64,
    duration_s: f64,
) -> Result<FloorRun, TabError> {
    let view = view_id(node).await?;
    let shares = split(sockets, workers);
    let subscribe: Vec<String> = shares
        .iter()
        .map(|&share| view_sockets_script(&view, share))
        .collect();
    let setup = Setup {
        script: runners_script(workers, &subscribe, sockets),
        what: "subscribing the bare page's sockets",
    };
    let bodies = [
        json!({
            "query": SENTANT_SEND,
            "variables": send_variables(&view, "update", &json!({ "name": "r2-bench-floor", "sensor": "90" })),
        }),
        json!({ "query": FLOOR_QUERY, "variables": name_variables("view") }),
    ];
    let share_rate = rate / shares.len() as f64;
    let duration_s = duration_s.min(MAX_DURATION_S);
    let scripts: Vec<String> = shares
        .iter()
        .map(|_| fetch_script(&bodies, share_rate, duration_s))
        .collect();
    run_script(
        node,
        Scheme::Https,
        rate,
        Some(&setup),
        &runners_run_script(&scripts, &shares),
        "the bare page's `webapp` traffic",
    )
    .await
}

/// The socket request floor measured beside one `transport=socket` run, at
/// that run's rate over as many sockets.
#[derive(Debug, Clone, PartialEq)]
pub struct SocketFloor {
    /// The device count of the run whose rate and sockets it took.
    pub beside: u32,
    pub sockets: u32,
    /// Requests made, answered (a reply read), failed (a socket that
    /// errored or closed, its requests unanswered), and the signals read.
    pub run: FloorRun,
}

/// How long the socket floor's page may wait for the last replies.
const REPLIES_WAIT_MS: u32 = 5_000;
/// How long its sockets may take to open, join and subscribe.
const JOIN_WAIT_MS: u32 = 10_000;
/// The names of the socket floor's sentants: this, then the socket's index.
const SOCKET_FLOOR_NAME: &str = "r2-bench-floor-socket-";

/// The socket floor's set-up script, run before its costs are measured:
/// one websocket to the node for each of `subscribe` (a device's
/// await-signal `doc` for the socket's own sentant), each joined to the
/// control topic (`join`, ref `"1"`) and then subscribed (ref `"3"`), as a
/// device's shared socket is. Every reply to a measured `doc` (ref `"2"`)
/// and every signal is parsed and counted in `globalThis.__r2sock`. Resolves
/// `true` once every socket is subscribed, or says how many were within
/// [`JOIN_WAIT_MS`].
fn socket_setup_script(join: &str, subscribe: &[String]) -> String {
    let sockets = subscribe.len();
    format!(
        "(async () => {{ \
           const url = location.origin.replace(/^http/, 'ws') + '/reality2/websocket'; \
           const join = {join}; const subscribe = {subscribe}; \
           const state = globalThis.__r2sock = {{ live: [], answered: 0, lost: 0, signals: 0 }}; \
           const ready = await Promise.all(subscribe.map((doc, k) => new Promise(done => {{ \
             const ws = new WebSocket(url); \
             let sent = 0, answered = 0; \
             const socket = {{ ws, k, send: (frame) => {{ sent++; ws.send(frame); }} }}; \
             const timer = setTimeout(() => done(false), {JOIN_WAIT_MS}); \
             ws.onopen = () => ws.send(join); \
             ws.onmessage = (e) => {{ \
               const frame = JSON.parse(e.data); \
               if (frame.event === 'subscription:data') {{ state.signals++; return; }} \
               if (frame.event !== 'phx_reply') return; \
               const ok = frame.payload && frame.payload.status === 'ok'; \
               if (frame.ref === '2') {{ answered++; state.answered++; }} \
               else if (frame.ref === '1') {{ if (ok) ws.send(doc); else {{ clearTimeout(timer); done(false); }} }} \
               else if (frame.ref === '3') {{ \
                 clearTimeout(timer); \
                 const subscribed = ok && frame.payload.response && frame.payload.response.subscriptionId; \
                 if (subscribed) state.live[k] = socket; \
                 done(Boolean(subscribed)); \
               }} \
             }}; \
             ws.onclose = () => {{ clearTimeout(timer); state.lost += sent - answered; sent = answered; done(false); }}; \
           }}))); \
           const count = ready.filter(r => r).length; \
           return count === {sockets} ? true : `${{count}} of {sockets} sockets subscribed`; }})()",
        join = serde_json::to_string(join).expect("a string serialises"),
        subscribe = serde_json::to_string(subscribe).expect("strings serialise"),
    )
}

/// The socket floor's measured script: `rate` `doc` frames a second for
/// `duration_s`, as the devices send them: for each value a `set_sensor`
/// then an `update` (`values[k]`, ref `"2"`) to socket `k`'s sentant on
/// socket `k`, the sockets in turn; then the replies and the signals
/// awaited (at most [`REPLIES_WAIT_MS`]). Returns [`Counts`], the requests
/// without a reply counted as failed.
fn socket_script(values: &[[String; 2]], rate: f64, duration_s: f64) -> String {
    format!(
        "(async () => {{ \
           const values = {values}; \
           const state = globalThis.__r2sock; \
           const live = state.live; \
           let sent = 0; \
           {paced} \
           const waited = performance.now(); \
           const updates = () => Math.ceil(sent / 2); \
           while ((state.answered + state.lost < sent || state.signals < updates()) \
                  && performance.now() - waited < {REPLIES_WAIT_MS}) \
             await new Promise(r => setTimeout(r, 20)); \
           live.forEach(s => s.ws.close()); \
           return {{ sent, answered: state.answered, failed: sent - state.answered, \
                     signals: state.signals, lag_p99: lagP99 }}; }})()",
        values = serde_json::to_string(values).expect("strings serialise"),
        paced = paced(
            rate,
            duration_s,
            "sent < due",
            "const k = Math.floor(sent / 2) % live.length; live[k].send(values[k][sent % 2]); sent++;"
        ),
    )
}

/// Runs the socket request floor in a fresh Chromium against `node` over
/// plain HTTP: `sockets` websockets, each subscribed to the `update` signal
/// of a device sentant of its own (loaded for the floor and unloaded
/// after), sending the devices' `doc` requests at `rate` a second for
/// `duration_s` (at most [`MAX_DURATION_S`]).
pub async fn run_socket_floor(
    node: &NodeHandle,
    sockets: u32,
    rate: f64,
    duration_s: f64,
) -> Result<FloorRun, TabError> {
    let mut ids = Vec::new();
    // Whatever fails, the sentants loaded so far are unloaded; the first
    // error is the one returned.
    let measured = match load_socket_floor(node, sockets.max(1), &mut ids).await {
        Ok(()) => socket_floor_on(node, &ids, rate, duration_s).await,
        Err(e) => Err(e.into()),
    };
    let unloaded = node.unload_ids(&ids).await;
    let run = measured?;
    unloaded?;
    Ok(run)
}

/// Loads one device sentant for each of `sockets`, adding each id to `ids`
/// as it is loaded.
async fn load_socket_floor(
    node: &NodeHandle,
    sockets: u32,
    ids: &mut Vec<String>,
) -> Result<(), NodeError> {
    for k in 0..sockets {
        let definition = graphql::device_definition(&format!("{SOCKET_FLOOR_NAME}{k}"));
        ids.push(node.load(&definition).await?);
    }
    Ok(())
}

/// [`run_socket_floor`] on the sentants `ids`, one for each socket.
async fn socket_floor_on(
    node: &NodeHandle,
    ids: &[String],
    rate: f64,
    duration_s: f64,
) -> Result<FloorRun, TabError> {
    let join = Frame::join_control(json!("1")).encode_client();
    let doc = |reference: &str, query: &str, variables| {
        Frame::doc(json!(reference), query, variables).encode_client()
    };
    let subscribe: Vec<String> = ids
        .iter()
        .map(|id| doc("3", AWAIT_SIGNAL, await_signal_variables(id, "update")))
        .collect();
    let values: Vec<[String; 2]> = ids
        .iter()
        .map(|id| {
            [
                doc(
                    "2",
                    SENTANT_SEND,
                    send_variables(id, "set_sensor", &json!({ "sensor": 90 })),
                ),
                doc("2", SENTANT_SEND, send_variables(id, "update", &json!({}))),
            ]
        })
        .collect();
    let setup = Setup {
        script: socket_setup_script(&join, &subscribe),
        what: "subscribing the bare page's sockets",
    };
    let script = socket_script(&values, rate, duration_s.min(MAX_DURATION_S));
    let run = run_script(
        node,
        Scheme::Http,
        rate,
        Some(&setup),
        &script,
        "the bare page's socket requests",
    )
    .await?;
    if run.sent == 0 {
        return Err(TabError::Browser {
            what: "the bare page's socket requests",
            source: format!("none was due at {rate} a second").into(),
        });
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procs::{CpuByKind, ProcessKind};

    #[test]
    fn per_request_divides_by_answered_requests() {
        let mut split = CpuByKind::default();
        split.add(ProcessKind::Renderer, 1.5);
        split.add(ProcessKind::Network, 0.5);
        let run = FloorRun {
            rate: 100.0,
            sent: 1000,
            answered: 1000,
            failed: 0,
            window: Window {
                client_cpu_s: 2.5,
                cpu_split: split,
                ..Window::default()
            },
            node_requests: 1000,
            node_pushes: 0,
            signals: 0,
            in_workers: 0,
            lag_p99_ms: None,
        };
        assert_eq!(run.cpu_per_request_ms(), 2.5);
        let kind = |kind| run.per_request_ms(run.window.cpu_split[kind]);
        assert_eq!(kind(ProcessKind::Renderer), 1.5);
        assert_eq!(kind(ProcessKind::Network), 0.5);
        assert_eq!(
            FloorRun::default().cpu_per_request_ms(),
            0.0,
            "nothing answered"
        );
    }

    #[test]
    fn the_script_aims_at_the_rate_and_stops() {
        let js = script(250.0, 15.0);
        assert!(js.contains("Math.min(250 * elapsed, 3750)"), "{js}");
        assert!(js.contains("elapsed >= 15"), "{js}");
        assert!(js.contains("fetch(url, { method: 'POST', headers, body: bodies[k] })"));
        assert!(js.contains("(globalThis.__r2origin || location.origin) + '/reality2'"));
        assert!(js.contains("r2-bench-floor-nobody"));
    }

    #[test]
    fn the_socket_script_subscribes_then_sends_a_devices_values_in_turn() {
        let subscribe = ["s0".to_owned(), "s1".to_owned()];
        let setup = socket_setup_script(r#"{"topic":"t"}"#, &subscribe);
        assert!(
            setup.contains(r#"const join = "{\"topic\":\"t\"}"; const subscribe = ["s0","s1"];"#),
            "{setup}"
        );
        // Subscribed once joined; only the docs' replies are answers.
        assert!(setup.contains("if (ok) ws.send(doc)"), "{setup}");
        assert!(
            setup.contains("frame.payload.response.subscriptionId"),
            "{setup}"
        );
        assert!(setup.contains("frame.ref === '2'"), "{setup}");
        assert!(setup.contains("count === 2 ? true"), "{setup}");
        let values = [["a0".to_owned(), "b0".to_owned()]];
        let js = socket_script(&values, 250.0, 15.0);
        assert!(js.contains(r#"const values = [["a0","b0"]];"#), "{js}");
        assert!(js.contains("Math.min(250 * elapsed, 3750)"), "{js}");
        // A value's two requests go to one socket's sentant, then the next.
        assert!(
            js.contains(
                "const k = Math.floor(sent / 2) % live.length; live[k].send(values[k][sent % 2]);"
            ),
            "{js}"
        );
        assert!(js.contains("elapsed >= 15"), "{js}");
    }

    #[test]
    fn the_push_script_sends_a_phones_frames_on_each_socket() {
        let js = push_script(7, r#"{"topic":"t"}"#, r#"{"doc":1}"#);
        assert!(
            js.contains(r#"const join = "{\"topic\":\"t\"}"; const doc = "{\"doc\":1}";"#),
            "{js}"
        );
        assert!(js.contains("Array.from({ length: 7 }"), "{js}");
        assert!(js.contains("ws.send(join); ws.send(doc);"));
    }

    #[test]
    fn the_webapp_floor_has_as_many_sockets_as_make_the_runs_pushes() {
        // 140 requests a second: 70 updates, each pushed to every socket.
        assert_eq!(WebAppFloor::sockets_for(140.0, 9100.0), 130);
        assert_eq!(WebAppFloor::sockets_for(140.0, 10.0), 1, "at least one");
        assert_eq!(
            WebAppFloor::sockets_for(140.0, 1e6),
            MAX_FLOOR_SOCKETS,
            "under Chromium's cap"
        );
        assert_eq!(WebAppFloor::sockets_for(0.0, 100.0), 1);
        assert_eq!(split(130, 0), vec![130], "the main thread: one share");
        assert_eq!(split(131, 2), vec![66, 65]);
        assert_eq!(split(5, 3), vec![2, 2, 1]);
        let setup = runners_script(2, &["a".to_owned(), "b".to_owned()], 7);
        assert!(setup.contains("if (2 === 0)"), "{setup}");
        assert!(setup.contains(r#"const subscribe = ["a","b"];"#), "{setup}");
        assert!(
            setup.contains("subscribed === 7 && failed === 0"),
            "{setup}"
        );
        let run = runners_run_script(&["x".to_owned(), "y".to_owned()], &[66, 65]);
        assert!(
            run.contains(r#"const scripts = ["x","y"]; const sockets = [66,65];"#),
            "{run}"
        );
        assert!(run.contains("String(updates * sockets[k])"), "{run}");
        let bodies = [json!({ "a": 1 }), json!({ "b": 2 })];
        let js = fetch_script(&bodies, 20.0, 2.0);
        assert!(
            js.contains(r#"const bodies = ["{\"a\":1}","{\"b\":2}"];"#),
            "{js}"
        );
        assert!(
            js.contains("pending.push(one(counts.sent % bodies.length))"),
            "{js}"
        );
        assert!(js.contains("await Promise.all(pending); return"), "{js}");
    }

    #[test]
    fn floors_add_up_in_cores() {
        let floor = FloorRun {
            answered: 100,
            window: Window {
                client_cpu_s: 0.5,
                ..Window::default()
            },
            ..FloorRun::default()
        };
        let pushes = PushFloorRun {
            pushes: 1000,
            window: Window {
                client_cpu_s: 0.2,
                ..Window::default()
            },
            ..PushFloorRun::default()
        };
        // 200 requests at 5 ms and 1000 pushes at 0.2 ms: 1 + 0.2 cores.
        assert!((floor.cores_at(200.0) + pushes.cores_at(1000.0) - 1.2).abs() < 1e-9);
    }
}
