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
//! # Layout
//!
//! - [`run_floor`]: one measured run.
//! - [`FloorRun`]: its counts and costs, per request; [`Floor`]: one set
//!   beside a page run.

use r2_core::graphql::SENTANT_GET_BY_NAME;
use r2_testkit::Browser;
use serde::Deserialize;
use serde_json::json;

use crate::measure::{Snapshot, Window};
use crate::node::NodeHandle;
use crate::procs::ProcessKind;
use crate::tab::TabError;

/// How often the bare page's timer fires; each turn makes the requests due.
const TICK_MS: u32 = 10;
/// The longest floor run: one `Runtime.evaluate` awaits it, under the
/// harness's 30 s command timeout.
pub const MAX_DURATION_S: f64 = 20.0;

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
}

impl FloorRun {
    /// Browser CPU ms per answered request, all its processes.
    pub fn cpu_per_request_ms(&self) -> f64 {
        self.per_request_ms(self.window.client_cpu_s)
    }

    /// The same, of one process type.
    pub fn kind_per_request_ms(&self, kind: ProcessKind) -> f64 {
        self.per_request_ms(self.window.cpu_split[kind])
    }

    /// `cpu_s` seconds of CPU as ms per answered request.
    pub fn per_request_ms(&self, cpu_s: f64) -> f64 {
        if self.answered == 0 {
            return 0.0;
        }
        cpu_s * 1000.0 / self.answered as f64
    }
}

/// The floor measured beside one page run, at that run's rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Floor {
    /// The device count of the `sweep` `shared` run over HTTP whose answered
    /// requests a second the floor made.
    pub beside: u32,
    pub run: FloorRun,
}

impl Floor {
    /// Cores' worth of CPU the browser alone would need for `rate` requests
    /// a second at this floor.
    pub fn cores_for(&self, rate: f64) -> f64 {
        rate * self.run.cpu_per_request_ms() / 1000.0
    }
}

/// What the page's script returns.
#[derive(Debug, Deserialize)]
struct Counts {
    sent: u64,
    answered: u64,
    failed: u64,
}

/// The script: `rate` requests a second for `duration_s`, then every answer
/// awaited; what it returns is [`Counts`].
fn script(rate: f64, duration_s: f64) -> String {
    let body = json!({
        "operationName": "SentantGet",
        "query": SENTANT_GET_BY_NAME,
        "variables": { "name": "r2-bench-floor-nobody" },
    })
    .to_string();
    format!(
        "(async () => {{ \
           const body = {body}; \
           const headers = new Headers({{ 'content-type': 'application/json' }}); \
           const counts = {{ sent: 0, answered: 0, failed: 0 }}; \
           const pending = []; \
           const one = () => fetch('/reality2', {{ method: 'POST', headers, body }}) \
             .then(r => r.text().then(t => {{ if (r.ok && t.length) counts.answered++; else counts.failed++; }})) \
             .catch(() => {{ counts.failed++; }}); \
           const start = performance.now(); \
           await new Promise(done => {{ \
             const timer = setInterval(() => {{ \
               const elapsed = (performance.now() - start) / 1000; \
               const due = Math.min({rate} * elapsed, {total}); \
               while (counts.sent < due) {{ counts.sent++; pending.push(one()); }} \
               if (elapsed >= {duration_s}) {{ clearInterval(timer); done(); }} \
             }}, {TICK_MS}); \
           }}); \
           await Promise.all(pending); \
           return counts; }})()",
        body = serde_json::to_string(&body).expect("a string serialises"),
        total = (rate * duration_s).floor(),
    )
}

/// Runs the floor in a fresh Chromium against `node` over plain HTTP:
/// `rate` requests a second for `duration_s` (at most [`MAX_DURATION_S`]).
pub async fn run_floor(
    node: &NodeHandle,
    rate: f64,
    duration_s: f64,
) -> Result<FloorRun, TabError> {
    let duration_s = duration_s.min(MAX_DURATION_S);
    let browser = Browser::launch()
        .await
        .map_err(crate::tab::browser_error("launch"))?;
    let measured = measure(node, &browser, rate, duration_s).await;
    let _ = browser.close().await;
    measured
}

async fn measure(
    node: &NodeHandle,
    browser: &Browser,
    rate: f64,
    duration_s: f64,
) -> Result<FloorRun, TabError> {
    let page = browser
        .new_page()
        .await
        .map_err(crate::tab::browser_error("opening a tab"))?;
    page.goto(&format!("{}/r2-node/stats", node.url()))
        .await
        .map_err(crate::tab::browser_error("loading the bare page"))?;
    let pid = browser.pid();
    let before = node.stats().await?;
    let start = Snapshot::take(pid, true, node).await?;
    // One evaluation awaits the whole run: the protocol's command timeout
    // bounds it ([`MAX_DURATION_S`] keeps well inside it).
    let counts = page
        .eval(&script(rate, duration_s))
        .await
        .map_err(crate::tab::browser_error("the bare page's requests"))?;
    let end = Snapshot::take(pid, true, node).await?;
    let node_requests = node.stats().await?.since(&before).requests;
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
        node_requests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procs::CpuByKind;

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
        };
        assert_eq!(run.cpu_per_request_ms(), 2.5);
        assert_eq!(run.kind_per_request_ms(ProcessKind::Renderer), 1.5);
        assert_eq!(run.kind_per_request_ms(ProcessKind::Network), 0.5);
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
        assert!(js.contains("fetch('/reality2', { method: 'POST', headers, body })"));
        assert!(js.contains("r2-bench-floor-nobody"));
    }
}
