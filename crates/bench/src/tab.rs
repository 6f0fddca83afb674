//! One run of the page in a fresh headless Chromium: the idle tab's memory
//! first, then the page with `autostart=1` until its summary is written after
//! cleanup, with the costs of its scenario phase and the peaks of its memory.
//!
//! Every 250 ms the tab is asked (one `Runtime.evaluate`) for its phase (the
//! `#r2-phase` counter), its summary once written, and the size of its wasm
//! memory; every second for its JS heap, and `/proc` for the browser's
//! memory. The scenario phase runs from the first poll that sees `running` to
//! the first that sees it over (±250 ms).
//!
//! Over [`Scheme::Https`] the page is loaded from the node's HTTPS address
//! (so that the node is its own origin, as the WebApp is the real node's:
//! no CORS, no consent for `autostart`) and told `node=` that address;
//! Chromium then takes the node's self-signed certificate
//! (`--ignore-certificate-errors`) and speaks whichever protocol the node's
//! ALPN offers ([`Wire`]).

use std::time::{Duration, Instant};

use r2_core::config::RunConfig;
use r2_core::summary::Summary;
use r2_node::fidelity::Alpn;
use r2_testkit::{Browser, Page};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::measure::{Peaks, Snapshot, Window};
use crate::node::{NodeError, NodeHandle, NodeStats};
use crate::procs::ProcError;
use crate::profile::CpuProfile;

/// How often the tab is polled.
const POLL: Duration = Duration::from_millis(250);
/// Memory is sampled every this many polls.
const MEMORY_EVERY: u32 = 4;
/// How long the idle page may take to start its wasm.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Keeps the wasm instance the page's Trunk loader announces, so its memory
/// can be measured.
const CAPTURE_WASM: &str = "addEventListener('TrunkApplicationStarted', \
    (e) => { window.__r2bench_wasm = e.detail && e.detail.wasm; });";

/// What the tab reports at each poll. The wasm memory is the page's own
/// instance and, when the run's engine runs in its Web Worker, the
/// worker's instance too (which the page shows in `#r2-engine`, with what
/// the engine's allocator holds now and at most).
const PROBE: &str = "(() => { \
    const p = document.querySelector('#r2-phase'); \
    const s = document.querySelector('#r2-summary'); \
    const e = document.querySelector('#r2-engine'); \
    const w = window.__r2bench_wasm; \
    const done = s && (s.dataset.phase === 'deleted' || s.dataset.phase === 'failed'); \
    const page = w && w.memory ? w.memory.buffer.byteLength : null; \
    const worker = e ? Number(e.dataset.wasmBytes || 0) : 0; \
    return { phase: p ? p.textContent : null, \
             summary: done ? s.textContent : null, \
             wasm_bytes: page === null ? null : page + worker, \
             heap_live: e ? Number(e.dataset.heapLive || 0) : null, \
             heap_peak: e ? Number(e.dataset.heapPeak || 0) : null }; })()";

/// Why a page run could not be measured (a run that breaks is not an error:
/// see [`Outcome`]).
#[derive(Debug, thiserror::Error)]
pub enum TabError {
    #[error("Chromium: {what}")]
    Browser {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the page's summary is not what r2-core writes: {text}")]
    Summary {
        text: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Proc(#[from] ProcError),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("the node has no HTTPS listener")]
    NoHttps,
}

/// Where the page is loaded from and reaches the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// The node's plain HTTP address (HTTP/1.1).
    Http,
    /// The node's HTTPS address.
    Https,
}

impl Scheme {
    /// The node's base URL for this scheme.
    pub fn base_url(self, node: &NodeHandle) -> Result<&str, TabError> {
        match self {
            Scheme::Http => Ok(node.url()),
            Scheme::Https => node.https_url().ok_or(TabError::NoHttps),
        }
    }

    /// A fresh Chromium that can load a page from the node's address of
    /// this scheme (over HTTPS taking its self-signed certificate,
    /// `--ignore-certificate-errors`).
    pub async fn launch(self) -> Result<Browser, TabError> {
        let flags: &[&str] = match self {
            Scheme::Http => &[],
            Scheme::Https => &["--ignore-certificate-errors"],
        };
        Browser::launch_with(flags)
            .await
            .map_err(browser_error("launch"))
    }
}

/// How a run's page reached the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// Plain HTTP: HTTP/1.1, at most 6 connections to the node.
    Http,
    /// HTTPS, the node's TLS offering these protocols by ALPN.
    Https(Alpn),
}

impl Wire {
    /// In words for the report: `http`, `https h2, http/1.1`, `https http/1.1`.
    pub fn describe(self) -> String {
        match self {
            Wire::Http => "http".to_owned(),
            Wire::Https(alpn) => format!("https {}", alpn.describe()),
        }
    }
}

pub(crate) fn browser_error(what: &'static str) -> impl FnOnce(anyhow::Error) -> TabError {
    move |e| TabError::Browser {
        what,
        source: e.into(),
    }
}

/// How a page run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The page wrote its summary after cleanup (or after failing to start).
    Finished,
    /// The run was still in `phase` when its time was up.
    TimedOut { after: Duration, phase: String },
}

/// The tab's memory: JS heap in use plus wasm linear memory.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TabMemory {
    /// The loaded page before any run.
    pub idle_bytes: u64,
    /// The largest seen during the run.
    pub peak_bytes: u64,
    pub heap_peak_bytes: u64,
    pub wasm_peak_bytes: u64,
    /// What the engine's allocator held (its wasm in use, not the memory's
    /// size, which only grows): the most while the scenarios ran, and the
    /// most at any time (joins and deletes included).
    pub engine_running_bytes: u64,
    pub engine_peak_bytes: u64,
    /// PSS of all of the browser's processes, idle and at the peak.
    pub browser_idle_pss_bytes: u64,
    pub browser_peak_pss_bytes: u64,
    /// PSS of the renderer processes at the peak.
    pub renderer_peak_pss_bytes: u64,
}

impl TabMemory {
    /// Takes in what the page said its engine's allocator held.
    fn observe_engine_heap(&mut self, (live, peak): (Option<f64>, Option<f64>), running: bool) {
        let live = live.map_or(0, |b| b as u64);
        if running {
            self.engine_running_bytes = self.engine_running_bytes.max(live);
        }
        let peak = peak.map_or(0, |b| b as u64);
        self.engine_peak_bytes = self.engine_peak_bytes.max(peak).max(live);
    }

    /// What each device added to the tab (JS heap + wasm) and to the whole
    /// browser (PSS). With `previous`, a run of the same series at fewer
    /// devices, the slope between the two peaks; without, (peak − idle) /
    /// devices, an upper bound: it also holds what a run adds whatever its
    /// size (buffers, caches, compiled code). `None` for no devices.
    pub fn marginal(&self, devices: u32, previous: Option<(u32, &TabMemory)>) -> Option<Marginal> {
        let per_device = |peak: u64, base: u64, count: u32| {
            (peak as f64 - base as f64).max(0.0) / f64::from(count)
        };
        match previous {
            Some((fewer, before)) if fewer < devices => Some(Marginal {
                tab_bytes: per_device(self.peak_bytes, before.peak_bytes, devices - fewer),
                browser_pss_bytes: per_device(
                    self.browser_peak_pss_bytes,
                    before.browser_peak_pss_bytes,
                    devices - fewer,
                ),
                from: Some(fewer),
            }),
            _ if devices > 0 => Some(Marginal {
                tab_bytes: per_device(self.peak_bytes, self.idle_bytes, devices),
                browser_pss_bytes: per_device(
                    self.browser_peak_pss_bytes,
                    self.browser_idle_pss_bytes,
                    devices,
                ),
                from: None,
            }),
            _ => None,
        }
    }
}

/// Memory each device added ([`TabMemory::marginal`]), bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Marginal {
    pub tab_bytes: f64,
    pub browser_pss_bytes: f64,
    /// The smaller run the slope is from; `None`: from the idle page (an upper bound).
    pub from: Option<u32>,
}

/// One page run, measured.
#[derive(Debug, Clone)]
pub struct TabRun {
    pub config: RunConfig,
    pub wire: Wire,
    pub outcome: Outcome,
    /// The page's summary (none if it timed out first).
    pub summary: Option<Summary>,
    /// Costs over the scenario phase (zero if it never ran).
    pub window: Window,
    pub memory: TabMemory,
    /// The node's counters over the whole run (after minus before).
    pub node: NodeStats,
    /// Chromium's product string, e.g. `HeadlessChrome/131.0.6778.85`.
    pub browser_version: String,
    /// Wall-clock seconds of the whole run, browser start to summary.
    pub total_s: f64,
}

#[derive(Debug, Deserialize)]
struct Probe {
    phase: Option<String>,
    summary: Option<String>,
    wasm_bytes: Option<f64>,
    heap_live: Option<f64>,
    heap_peak: Option<f64>,
}

/// Where the scenario phase is, as the poll loop sees it.
enum Scenario {
    NotYet,
    Running(Snapshot),
    Over(Window),
}

/// Runs the page once against `node` with `config` (which should have
/// `autostart`), loaded over `scheme`, giving up after `timeout`.
pub async fn run_tab(
    node: &NodeHandle,
    config: &RunConfig,
    scheme: Scheme,
    timeout: Duration,
) -> Result<TabRun, TabError> {
    Ok(run_tab_profiled(node, config, scheme, timeout, None)
        .await?
        .0)
}

/// [`run_tab`], with V8's sampling profiler running in the page and its
/// workers over the scenario phase when `profile_interval_us` is given
/// (samples that far apart): the run and where the tab's own time went
/// (empty when the scenario phase was never seen).
pub async fn run_tab_profiled(
    node: &NodeHandle,
    config: &RunConfig,
    scheme: Scheme,
    timeout: Duration,
    profile_interval_us: Option<u32>,
) -> Result<(TabRun, CpuProfile), TabError> {
    let started = Instant::now();
    let base = scheme.base_url(node)?;
    let wire = match scheme {
        Scheme::Http => Wire::Http,
        Scheme::Https => Wire::Https(node.behaviour().alpn()),
    };
    let config = &RunConfig {
        node: match scheme {
            Scheme::Http => config.node.clone(),
            Scheme::Https => Some(base.to_owned()),
        },
        ..config.clone()
    };
    let before = node.stats().await?;
    let browser = scheme.launch().await?;
    let measured = measure(
        node,
        &browser,
        config,
        base,
        (started, timeout),
        profile_interval_us,
    )
    .await;
    // The browser goes whatever happened; a failed close only loses its temp profile.
    let _ = browser.close().await;
    let ((outcome, summary, window, memory, browser_version), profiles) = measured?;
    let after = node.stats().await?;
    let run = TabRun {
        config: config.clone(),
        wire,
        outcome,
        summary,
        window,
        memory,
        node: after.since(&before),
        browser_version,
        total_s: started.elapsed().as_secs_f64(),
    };
    Ok((run, CpuProfile::from_profiles(&profiles)))
}

type Measured = (Outcome, Option<Summary>, Window, TabMemory, String);

/// The run in `browser`, the page loaded from `base`.
async fn measure(
    node: &NodeHandle,
    browser: &Browser,
    config: &RunConfig,
    base: &str,
    (started, timeout): (Instant, Duration),
    profile_interval_us: Option<u32>,
) -> Result<(Measured, Vec<Value>), TabError> {
    let version = browser
        .call("Browser.getVersion", json!({}))
        .await
        .map_err(browser_error("Browser.getVersion"))?["product"]
        .as_str()
        .unwrap_or("unknown")
        .to_owned();
    let page = browser
        .new_page()
        .await
        .map_err(browser_error("opening a tab"))?;
    page.add_init_script(CAPTURE_WASM)
        .await
        .map_err(browser_error("adding the wasm probe"))?;
    let pid = browser.pid();
    let mut memory = idle_memory(base, &page, pid).await?;
    let mut peaks = Peaks::default();

    let url = format!("{base}/stresstest/?{}", config.to_query());
    page.goto(&url)
        .await
        .map_err(browser_error("loading the page"))?;
    let mut scenario = Scenario::NotYet;
    let mut profiles = Vec::new();
    let mut polls = 0u32;
    let mut phase = String::from("loading");
    let (outcome, summary, window) = loop {
        let probe = probe(&page).await?;
        if let Some(p) = probe.phase {
            phase = p;
        }
        if let Some(bytes) = probe.wasm_bytes {
            memory.wasm_peak_bytes = memory.wasm_peak_bytes.max(bytes as u64);
        }
        memory.observe_engine_heap((probe.heap_live, probe.heap_peak), phase == "running");
        scenario = match scenario {
            Scenario::NotYet if phase == "running" => {
                if let Some(interval) = profile_interval_us {
                    page.start_profiling(interval)
                        .await
                        .map_err(browser_error("starting the profiler"))?;
                }
                Scenario::Running(Snapshot::take(pid, true, node).await?)
            }
            Scenario::Running(start) if phase != "running" => {
                let end = Snapshot::take(pid, true, node).await?;
                stop_profiling(&page, profile_interval_us, &mut profiles).await?;
                Scenario::Over(Window::between(&start, &end))
            }
            other => other,
        };
        if polls.is_multiple_of(MEMORY_EVERY) {
            let heap = page.js_heap_used_bytes().await.unwrap_or(0);
            memory.heap_peak_bytes = memory.heap_peak_bytes.max(heap);
            let wasm = probe.wasm_bytes.map_or(0, |b| b as u64);
            memory.peak_bytes = memory.peak_bytes.max(heap + wasm);
            peaks.observe(pid, true).await;
        }
        if let Some(text) = probe.summary {
            let summary =
                serde_json::from_str(&text).map_err(|source| TabError::Summary { text, source })?;
            let window = match scenario {
                Scenario::Over(window) => window,
                // Over before a poll saw it end: measure up to now.
                Scenario::Running(start) => {
                    let end = Snapshot::take(pid, true, node).await?;
                    stop_profiling(&page, profile_interval_us, &mut profiles).await?;
                    Window::between(&start, &end)
                }
                Scenario::NotYet => Window::default(),
            };
            break (Outcome::Finished, Some(summary), window);
        }
        if started.elapsed() >= timeout {
            let window = match scenario {
                Scenario::Over(window) => window,
                _ => Window::default(),
            };
            break (
                Outcome::TimedOut {
                    after: timeout,
                    phase,
                },
                None,
                window,
            );
        }
        polls += 1;
        tokio::time::sleep(POLL).await;
    };
    memory.browser_peak_pss_bytes = peaks.client.pss_bytes;
    memory.renderer_peak_pss_bytes = peaks.renderers.pss_bytes;
    Ok(((outcome, summary, window, memory, version), profiles))
}

/// Stops the profilers started with the scenario phase, if any, keeping
/// their profiles.
async fn stop_profiling(
    page: &Page,
    interval: Option<u32>,
    profiles: &mut Vec<Value>,
) -> Result<(), TabError> {
    if interval.is_some() {
        *profiles = page
            .stop_profiling()
            .await
            .map_err(browser_error("stopping the profiler"))?;
    }
    Ok(())
}

/// The page loaded without a run: its JS heap and wasm memory, and the
/// browser's PSS.
async fn idle_memory(base: &str, page: &Page, pid: u32) -> Result<TabMemory, TabError> {
    page.goto(&format!("{base}/stresstest/"))
        .await
        .map_err(browser_error("loading the idle page"))?;
    let wasm = page
        .wait_for(
            "window.__r2bench_wasm && window.__r2bench_wasm.memory ? window.__r2bench_wasm.memory.buffer.byteLength : 0",
            IDLE_TIMEOUT,
        )
        .await
        .map_err(browser_error("waiting for the idle page's wasm"))?
        .as_f64()
        .unwrap_or(0.0) as u64;
    let heap = page
        .js_heap_used_bytes()
        .await
        .map_err(browser_error("reading the idle JS heap"))?;
    let mut peaks = Peaks::default();
    peaks.observe(pid, false).await;
    Ok(TabMemory {
        idle_bytes: heap + wasm,
        browser_idle_pss_bytes: peaks.client.pss_bytes,
        ..TabMemory::default()
    })
}

async fn probe(page: &Page) -> Result<Probe, TabError> {
    let value: Value = page
        .eval(PROBE)
        .await
        .map_err(browser_error("polling the page"))?;
    Ok(serde_json::from_value(value).unwrap_or(Probe {
        phase: None,
        summary: None,
        wasm_bytes: None,
        heap_live: None,
        heap_peak: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_device_memory_is_the_slope_between_runs() {
        let small = TabMemory {
            idle_bytes: 1_000_000,
            peak_bytes: 3_000_000,
            browser_idle_pss_bytes: 100_000_000,
            browser_peak_pss_bytes: 300_000_000,
            ..TabMemory::default()
        };
        let large = TabMemory {
            peak_bytes: 5_000_000,
            browser_peak_pss_bytes: 320_000_000,
            ..small
        };
        let alone = small.marginal(100, None).expect("devices");
        assert_eq!((alone.tab_bytes, alone.from), (20_000.0, None));
        assert_eq!(alone.browser_pss_bytes, 2_000_000.0, "an upper bound");
        let slope = large.marginal(200, Some((100, &small))).expect("devices");
        assert_eq!(
            (slope.tab_bytes, slope.browser_pss_bytes, slope.from),
            (20_000.0, 200_000.0, Some(100))
        );
        let shrunk = small.marginal(200, Some((100, &large))).expect("devices");
        assert_eq!(shrunk.tab_bytes, 0.0, "noise never gives negative memory");
        assert_eq!(small.marginal(0, None), None);
        assert_eq!(
            small
                .marginal(100, Some((100, &large)))
                .and_then(|m| m.from),
            None,
            "no slope over zero devices"
        );
    }
}
