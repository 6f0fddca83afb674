//! One browser (a WebDriver session) and its tabs: each tab is a window of
//! its own (headless windows are all visible, so none is a background tab),
//! and the first browser also holds the fleet's control view. What the
//! runner reads from a page, it reads from the page's own elements.

use std::time::{Duration, Instant};

use fantoccini::wd::WindowHandle;
use fantoccini::Client;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::error::RunError;

/// A tab's state as its page shows it, read once a second.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct TabStatus {
    /// `#r2-phase` (`loading` before the page has drawn it).
    pub phase: String,
    pub live: u64,
    pub devices: u64,
    pub sends_ok: u64,
    pub sends_per_s: f64,
    pub errors: u64,
    /// The send latency p99 of the last complete second, when the page shows
    /// its 1-second series (`#r2-series`).
    pub p99_ms: Option<f64>,
    /// `document.visibilityState`.
    pub visibility: String,
    /// The page's live tab-as-bottleneck warning.
    pub bottleneck: Option<String>,
    /// Why the page could not use the node, or why it refused its settings.
    pub error: Option<String>,
    /// `#r2-started`'s wall clock, ms since the epoch.
    pub started_ms: Option<f64>,
    /// The phase that wrote `#r2-summary`, if any.
    pub summary_phase: Option<String>,
}

const STATUS_JS: &str = r#"
const q = s => document.querySelector(s);
const t = s => { const e = q(s); return e ? e.textContent : null; };
const n = s => { const v = parseFloat(t(s)); return Number.isFinite(v) ? v : 0; };
const live = (t('#r2-live') || '0/0').split('/');
const series = t('#r2-series');
let p99 = null;
if (series) {
  const rows = series.trim().split('\n');
  const head = rows[0].split(',');
  const last = rows.length > 2 ? rows[rows.length - 2] : null;
  const i = head.indexOf('send_p99_ms');
  if (last && i >= 0) { const v = parseFloat(last.split(',')[i]); if (Number.isFinite(v)) p99 = v; }
}
const started = q('#r2-started');
const pre = q('#r2-summary');
return {
  phase: t('#r2-phase') || 'loading',
  live: parseInt(live[0]) || 0, devices: parseInt(live[1]) || 0,
  sends_ok: n('#r2-sends-ok'), sends_per_s: n('#r2-sends-rate'), errors: n('#r2-errors'),
  p99_ms: p99,
  visibility: document.visibilityState,
  bottleneck: t('#r2-bottleneck'),
  error: t('#r2-contact-error') || t('#r2-form-error'),
  started_ms: started ? Number(started.dataset.ms) : null,
  summary_phase: pre ? pre.dataset.phase : null,
};
"#;

/// The page's 1-second series as CSV: `#r2-series` when the page shows it,
/// else what its "Download 1-second series (CSV)" button would save (the
/// download is caught, not saved).
const SERIES_JS: &str = r#"
const done = arguments[arguments.length - 1];
const pre = document.querySelector('#r2-series');
if (pre) return done(pre.textContent);
const button = [...document.querySelectorAll('button')].find(b => b.textContent.includes('1-second series'));
if (!button) return done(null);
const create = URL.createObjectURL, click = HTMLAnchorElement.prototype.click;
let blob = null;
URL.createObjectURL = b => { blob = b; return create.call(URL, b); };
HTMLAnchorElement.prototype.click = function () { if (!this.download) click.call(this); };
try { button.click(); } finally { URL.createObjectURL = create; HTMLAnchorElement.prototype.click = click; }
if (!blob) return done(null);
blob.text().then(done, () => done(null));
"#;

/// A tab of the run: its place in the plan and its window.
#[derive(Debug, Clone)]
pub struct Tab {
    /// Its index over all tabs.
    pub index: usize,
    /// `b<browser>t<tab>`, 1-based, for people.
    pub label: String,
    window: WindowHandle,
}

/// One browser: its session, its tabs and, in the first, the control view.
pub struct Browser {
    pub number: usize,
    pub session_id: String,
    client: Mutex<Client>,
    pub tabs: Vec<Tab>,
    control: Option<WindowHandle>,
}

impl Browser {
    /// Opens `urls` (tab index, URL), one window each, in the session
    /// `client`; with `control`, one more window on the control view.
    pub async fn open(
        number: usize,
        client: Client,
        urls: &[(usize, String)],
        control: Option<&str>,
    ) -> Result<Browser, RunError> {
        let session_id = client
            .session_id()
            .await
            .map_err(RunError::browser("reading the session id"))?
            .unwrap_or_default();
        let mut windows = vec![client
            .window()
            .await
            .map_err(RunError::browser("reading the first window"))?];
        for _ in 1..urls.len() + usize::from(control.is_some()) {
            let opened = client
                .new_window(false)
                .await
                .map_err(RunError::browser("opening a window"))?;
            windows.push(opened.handle);
        }
        let mut tabs = Vec::new();
        for (slot, (index, url)) in urls.iter().enumerate() {
            let window = windows[slot].clone();
            client
                .switch_to_window(window.clone())
                .await
                .map_err(RunError::browser("switching windows"))?;
            client
                .goto(url)
                .await
                .map_err(RunError::browser(format!("opening {url}")))?;
            tabs.push(Tab {
                index: *index,
                label: format!("b{}t{}", number + 1, slot + 1),
                window,
            });
        }
        let control = match control {
            Some(url) => {
                let window = windows[urls.len()].clone();
                client
                    .switch_to_window(window.clone())
                    .await
                    .map_err(RunError::browser("switching windows"))?;
                client
                    .goto(url)
                    .await
                    .map_err(RunError::browser(format!("opening {url}")))?;
                Some(window)
            }
            None => None,
        };
        Ok(Browser {
            number,
            session_id,
            client: Mutex::new(client),
            tabs,
            control,
        })
    }

    /// Runs `script` in `window`; its `return` value.
    async fn eval(&self, window: &WindowHandle, script: &str) -> Result<Value, RunError> {
        let client = self.client.lock().await;
        client
            .switch_to_window(window.clone())
            .await
            .map_err(RunError::browser("switching windows"))?;
        client
            .execute(script, vec![])
            .await
            .map_err(RunError::browser("running a script in a tab"))
    }

    /// Every tab's status.
    pub async fn statuses(&self) -> Result<Vec<(usize, TabStatus)>, RunError> {
        let mut all = Vec::new();
        for tab in &self.tabs {
            let value = self.eval(&tab.window, STATUS_JS).await?;
            let status = serde_json::from_value(value).map_err(|source| RunError::BadSummary {
                tab: tab.label.clone(),
                source,
            })?;
            all.push((tab.index, status));
        }
        Ok(all)
    }

    /// Clicks `selector` in tab `index`'s window (its own button).
    pub async fn click_in_tab(&self, index: usize, selector: &str) -> Result<(), RunError> {
        if let Some(tab) = self.tabs.iter().find(|t| t.index == index) {
            let script = format!("document.querySelector({selector:?})?.click()");
            self.eval(&tab.window, &script).await?;
        }
        Ok(())
    }

    /// Clicks `selector` in the control view (this must be the first browser).
    pub async fn click_control(&self, selector: &str) -> Result<(), RunError> {
        let window = self
            .control
            .as_ref()
            .expect("the control view is in the first browser");
        let script = format!(
            "const b = document.querySelector({selector:?}); if (b) b.click(); return !!b;"
        );
        self.eval(window, &script).await?;
        Ok(())
    }

    /// Rows of the control view's fleet table that are tabs (header and total left out).
    pub async fn fleet_tabs(&self) -> Result<usize, RunError> {
        let window = self
            .control
            .as_ref()
            .expect("the control view is in the first browser");
        let rows = self
            .eval(
                window,
                "return document.querySelectorAll('.fleet tr').length;",
            )
            .await?;
        Ok(rows.as_u64().unwrap_or(0).saturating_sub(2) as usize)
    }

    /// Tab `index`'s summary JSON (`#r2-summary`).
    pub async fn summary(&self, index: usize) -> Result<Value, RunError> {
        let tab = self
            .tabs
            .iter()
            .find(|t| t.index == index)
            .expect("a tab of this browser");
        let text = self
            .eval(
                &tab.window,
                "const p = document.querySelector('#r2-summary'); return p ? p.textContent : null;",
            )
            .await?;
        let text = text.as_str().unwrap_or("null");
        serde_json::from_str(text).map_err(|source| RunError::BadSummary {
            tab: tab.label.clone(),
            source,
        })
    }

    /// Tab `index`'s 1-second series as CSV, if the page gives it.
    pub async fn series_csv(&self, index: usize) -> Result<Option<String>, RunError> {
        let tab = self
            .tabs
            .iter()
            .find(|t| t.index == index)
            .expect("a tab of this browser");
        let client = self.client.lock().await;
        client
            .switch_to_window(tab.window.clone())
            .await
            .map_err(RunError::browser("switching windows"))?;
        let value = client
            .execute_async(SERIES_JS, vec![])
            .await
            .map_err(RunError::browser("reading a tab's series"))?;
        Ok(value.as_str().map(str::to_owned))
    }

    /// Ends the session (its browser closes).
    pub async fn close(self) {
        let client = self.client.into_inner();
        let _ = tokio::time::timeout(Duration::from_secs(20), client.close()).await;
    }
}

/// Polls `check` every 200 ms until it returns `Some`, or fails with
/// [`RunError::Timeout`] naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut check: F) -> Result<T, RunError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, RunError>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = check().await? {
            return Ok(found);
        }
        if Instant::now() >= deadline {
            return Err(RunError::Timeout {
                what: what.to_owned(),
                after: within,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
