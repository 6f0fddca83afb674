//! The run summary: the JSON the page writes into `<pre id="r2-summary">`
//! when a run ends, read back by the browser tests, with a pass/fail verdict
//! and the reasons for it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{HttpPath, RunConfig, SocketsMode, Thresholds, Transport};
use crate::graphql::SentantRef;
use crate::metrics::{tab_bottleneck, Op, Percentiles, RunMetrics, WireCounts};
use crate::plan::Starts;
use crate::profile::{Load, Profile, Reconnect};
use crate::scenario::ScenarioKind;

word_enum! {
    /// Whether the run met its expectations.
    pub enum Verdict {
        Pass = "pass",
        Fail = "fail",
        /// The figures do not measure the node: the tab was hidden while
        /// sending, and the browser throttled its timers.
        Invalid = "invalid",
    }
}

/// One kind of error seen during the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorSummary {
    pub kind: String,
    pub count: u64,
    pub example: String,
}

/// What the page knows about a run besides its metrics and configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFacts {
    /// The node actually used (the page's origin when the config has none).
    pub node: String,
    /// The run's name prefix ([`crate::names::RunNames::prefix`]).
    pub run_prefix: String,
    /// How long the run took, s.
    pub duration_s: f64,
    /// Own sentants still on the node after cleanup.
    pub leftovers: Vec<SentantRef>,
    /// Why cleanup could not ask the node for them, when it could not:
    /// `leftovers` is then empty for want of an answer, not found empty.
    #[serde(default)]
    pub leftovers_unchecked: Option<String>,
}

/// One figure of the load a run put on the node: what its profile makes,
/// and what the run measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    pub expected: f64,
    pub observed: f64,
}

/// What load the node got, per device, so a user can read "60 phones = 180
/// sockets, 8 POSTs per join, 63 pushes per update".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// GraphQL POSTs per join, before the `update` on connect (the first
    /// phone of a node also loads `monitor`: one more).
    pub posts_per_join: Figure,
    /// Websockets per device: opened by a join, and held at the peak.
    pub socket_opens_per_join: Figure,
    pub sockets_peak: Figure,
    pub sockets_steady: u64,
    /// Frames the node pushes for one `update`, to every subscriber
    /// (observed: what this tab's devices received per `update` they sent
    /// (the projectors' frames are counted apart); the node's own count is
    /// `deliveries / updates` in its stats).
    pub device_frames_per_update: Figure,
    pub pushes_per_update_expected: u64,
    /// WebApp page assets downloaded (`assets=1`).
    pub asset_loads: u64,
    pub asset_bytes: u64,
    pub asset_load_ms: Percentiles,
    /// The raw counts behind the figures.
    pub wire: WireCounts,
    /// Set when the run's wire shape is not the WebApp's (`sockets=shared`).
    pub not_webapp_wire: Option<String>,
}

impl LoadReport {
    fn new(load: &Load, transport: Transport, m: &RunMetrics) -> LoadReport {
        let w = m.wire;
        let per = |n: u64, d: u64| if d == 0 { 0.0 } else { n as f64 / d as f64 };
        let (sockets_peak, sockets_steady) = load.sockets();
        let devices_held = load.profile.subscriptions_per_device();
        LoadReport {
            posts_per_join: Figure {
                expected: load.profile.posts_per_join(false) as f64,
                observed: per(w.join_posts, w.joins),
            },
            socket_opens_per_join: Figure {
                expected: match load.sockets_mode {
                    SocketsMode::PerDevice => devices_held.0 as f64,
                    _ => 0.0,
                },
                observed: per(w.device_socket_opens, w.joins),
            },
            sockets_peak: Figure {
                expected: sockets_peak as f64,
                observed: m.sockets.max as f64,
            },
            sockets_steady,
            device_frames_per_update: Figure {
                // Every device subscription a device update reaches: its own,
                // and every WebApp phone's view subscription.
                expected: (load.pushes_per_update() - 2 * load.viewers) as f64,
                observed: per(w.device_frames, w.updates_sent),
            },
            pushes_per_update_expected: load.pushes_per_update(),
            asset_loads: w.asset_loads,
            asset_bytes: w.asset_bytes,
            asset_load_ms: m.asset_load.summary(),
            wire: w,
            not_webapp_wire: not_webapp_wire(load.sockets_mode, transport),
        }
    }
}

/// Why a run's wire shape is not the WebApp's, if it is not.
fn not_webapp_wire(sockets: SocketsMode, transport: Transport) -> Option<String> {
    let mut why = Vec::new();
    if sockets == SocketsMode::Shared {
        why.push("sockets=shared: subscriptions multiplexed on a few sockets, not one socket each as the WebApp opens them");
    }
    if transport == Transport::Socket {
        why.push("transport=socket: values and updates sent as Absinthe `doc` frames on the devices' sockets, not as HTTP POSTs as the WebApp sends them");
    }
    (!why.is_empty()).then(|| why.join("; "))
}

/// The run summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    pub node: String,
    pub run_prefix: String,
    pub profile: Profile,
    pub reconnect: Reconnect,
    pub scenario: ScenarioKind,
    /// Whether the devices' scenarios started spread or together (`herd=1`).
    #[serde(default)]
    pub starts: Starts,
    pub sockets_mode: SocketsMode,
    /// How the devices sent: `http` (the WebApp's way) or `socket`.
    #[serde(default)]
    pub transport: Transport,
    /// How the page made its HTTP requests (`gloo` or `lean`).
    #[serde(default)]
    pub http: HttpPath,
    /// Where the run engine ran: `"worker"` (a Web Worker), `"K workers"`
    /// (its devices split over K of them) or `"main thread"`.
    #[serde(default)]
    pub engine: String,
    pub seed: u64,
    pub thresholds: Thresholds,
    pub devices_requested: u32,
    pub devices_created: u64,
    pub devices_deleted: u64,
    pub duration_s: f64,
    /// Sends (`set_sensor` + `update` each) the scenarios planned within the
    /// run: what [`crate::plan::RunPlan::sends_planned`] computes natively.
    #[serde(default)]
    pub sends_planned: u64,
    pub sends_ok: u64,
    pub sends_failed: u64,
    pub signals_received: u64,
    /// Signals that first brought a value back after a later `update`
    /// overtook its `set_sensor`: counted, not in the signal latency.
    #[serde(default)]
    pub signals_stale: u64,
    /// The fewest signals any device received.
    pub signals_per_device_min: u64,
    pub sockets_live_max: u64,
    pub fetch_queue_max: u64,
    /// HTTP requests that waited for one of the tab's fetch slots
    /// ([`crate::gate`]): a tab-side wait no phone has.
    #[serde(default)]
    pub fetches_held: u64,
    pub errors: Vec<ErrorSummary>,
    pub leftovers: Vec<SentantRef>,
    pub leftovers_count: usize,
    /// Why the node could not be asked for them after cleanup, if it could
    /// not ([`RunFacts::leftovers_unchecked`]).
    #[serde(default)]
    pub leftovers_unchecked: Option<String>,
    pub send_latency_ms: Percentiles,
    pub send_latency_ms_corrected: Percentiles,
    pub signal_latency_ms: Percentiles,
    pub signal_latency_ms_corrected: Percentiles,
    pub scheduler_lag_ms: Percentiles,
    /// Time devices spent without their subscription after a dropped socket.
    pub subscription_gap_ms: Percentiles,
    pub reconnects: u64,
    pub devices_vanished: u64,
    pub devices_recreated: u64,
    /// Projector pages simulated, the signals they received, and the latency
    /// from a device's value sent to the `view` signal carrying it.
    pub viewers: u32,
    pub projector_signals: u64,
    pub projector_latency_ms: Percentiles,
    /// `view` signals the devices received, and the latency from a device's
    /// value sent to `view`'s signal carrying it on another device's socket.
    pub view_signals: u64,
    pub view_latency_ms: Percentiles,
    /// What load the node got: expected by the profile, and observed.
    pub load: LoadReport,
    /// HTTP round trips per operation ([`Op::as_str`]).
    pub http_latency_ms: BTreeMap<String, Percentiles>,
    /// Websocket set-up, ms from opening: `connect` (open), `joined` (control topic joined), and
    /// `subscribed` (from the `doc` frame to its reply).
    pub websocket_ms: BTreeMap<String, Percentiles>,
    pub tab_bottleneck: bool,
    pub tab_bottleneck_why: Option<String>,
    /// Seconds the tab was hidden during the run, and while sending.
    pub hidden_s: f64,
    pub hidden_while_sending_s: f64,
}

/// Hidden this long while sending (ms) makes a run invalid: a browser
/// throttles a hidden tab's timers to once a second.
pub const MAX_HIDDEN_WHILE_SENDING_MS: f64 = 0.0;

/// The summary's `engine` for a run with `workers` engine workers as
/// configured (`Some(0)`: the page's main thread; `None` reads as one).
fn engine_name(workers: Option<u32>) -> String {
    match workers {
        Some(0) => MAIN_THREAD.to_owned(),
        None | Some(1) => ONE_WORKER.to_owned(),
        Some(k) => format!("{k}{WORKERS_SUFFIX}"),
    }
}

const MAIN_THREAD: &str = "main thread";
const ONE_WORKER: &str = "worker";
const WORKERS_SUFFIX: &str = " workers";

impl Summary {
    /// The Web Workers the run engine ran in, as `engine` names them (0 on
    /// the page's main thread, or for an engine this page does not name).
    pub fn engine_workers(&self) -> u32 {
        match self.engine.as_str() {
            ONE_WORKER => 1,
            engine => engine
                .strip_suffix(WORKERS_SUFFIX)
                .and_then(|k| k.parse().ok())
                .unwrap_or(0),
        }
    }

    /// Summarises a finished run and judges it.
    ///
    /// The run fails when: fewer devices were created than requested; no send
    /// succeeded; failed sends exceed `max_error_pct` of all sends; the p99 of
    /// the corrected send or signal latency exceeds `max_p99_ms`; with
    /// subscriptions, some device received no signal; a Delete left own
    /// sentants on the node, or could not ask the node what it left (only a
    /// Delete looks: a kept run's facts hold none until the user deletes
    /// it); or the tab was the bottleneck (then the figures measure the
    /// browser, not the node).
    pub fn from_metrics(m: &RunMetrics, config: &RunConfig, facts: RunFacts) -> Summary {
        let bottleneck = tab_bottleneck(m);
        let mut summary = Summary {
            verdict: Verdict::Pass,
            reasons: Vec::new(),
            node: facts.node,
            run_prefix: facts.run_prefix,
            profile: config.profile,
            reconnect: config.reconnect,
            scenario: config.scenario,
            starts: config.starts(),
            sockets_mode: config.sockets_mode(),
            transport: config.transport,
            http: config.http,
            engine: engine_name(config.workers),
            seed: config.seed,
            thresholds: config.thresholds,
            devices_requested: config.devices,
            devices_created: m.devices_created,
            devices_deleted: m.devices_deleted,
            duration_s: facts.duration_s,
            sends_planned: m.sends_planned,
            sends_ok: m.sends_ok,
            sends_failed: m.sends_failed,
            signals_received: m.signals_received,
            signals_stale: m.signals_stale,
            signals_per_device_min: m.signals_by_device.iter().copied().min().unwrap_or(0),
            sockets_live_max: m.sockets.max,
            fetch_queue_max: m.fetch_queue.max,
            fetches_held: m.fetches_held,
            errors: m
                .errors
                .iter()
                .map(|(kind, e)| ErrorSummary {
                    kind: kind.clone(),
                    count: e.count,
                    example: e.example.clone(),
                })
                .collect(),
            leftovers_count: facts.leftovers.len(),
            leftovers: facts.leftovers,
            leftovers_unchecked: facts.leftovers_unchecked,
            send_latency_ms: m.send_latency.summary(),
            send_latency_ms_corrected: m.send_latency_corrected.summary(),
            signal_latency_ms: m.signal_latency.summary(),
            signal_latency_ms_corrected: m.signal_latency_corrected.summary(),
            scheduler_lag_ms: m.scheduler_lag.summary(),
            subscription_gap_ms: m.subscription_gap.summary(),
            reconnects: m.reconnects,
            devices_vanished: m.devices_vanished,
            devices_recreated: m.devices_recreated,
            viewers: config.viewers(),
            projector_signals: m.projector_signals,
            projector_latency_ms: m.projector_latency.summary(),
            view_signals: m.view_signals,
            view_latency_ms: m.view_latency.summary(),
            load: LoadReport::new(&config.load(), config.transport, m),
            http_latency_ms: Op::ALL
                .iter()
                .map(|op| (op.as_str().to_owned(), m.http(*op).summary()))
                .collect(),
            websocket_ms: [
                ("connect", &m.ws_connect),
                ("joined", &m.ws_joined),
                ("subscribed", &m.ws_subscribed),
            ]
            .into_iter()
            .map(|(stage, latency)| (stage.to_owned(), latency.summary()))
            .collect(),
            tab_bottleneck: bottleneck.is_some(),
            tab_bottleneck_why: bottleneck,
            hidden_s: m.hidden_ms / 1000.0,
            hidden_while_sending_s: m.hidden_while_sending_ms / 1000.0,
        };
        // A browser throttles a hidden page's timers, not a worker's: an
        // engine in a worker that kept up while hidden measured the node.
        let throttled = config.on_main_thread() || summary.tab_bottleneck;
        if m.hidden_while_sending_ms > MAX_HIDDEN_WHILE_SENDING_MS && throttled {
            // The lag comes from the browser's throttling, not from load.
            summary.tab_bottleneck = false;
            summary.tab_bottleneck_why = None;
            summary.verdict = Verdict::Invalid;
            summary.reasons = vec![format!(
                "invalid run: the tab was hidden for {:.1} s while sending, and a browser throttles a hidden tab's timers (to once a second, after 5 minutes once a minute), so these figures measure the browser, not the node. Keep every r2-stress tab visible: one browser window per tab, none minimised or covered",
                summary.hidden_while_sending_s
            )];
            return summary;
        }
        summary.reasons = summary.failures(&m.signals_by_device);
        if !summary.reasons.is_empty() {
            summary.verdict = Verdict::Fail;
        }
        summary
    }

    /// Failed sends as a percentage of all sends (0 when none were made).
    pub fn error_pct(&self) -> f64 {
        let all = self.sends_ok + self.sends_failed;
        if all == 0 {
            0.0
        } else {
            100.0 * self.sends_failed as f64 / all as f64
        }
    }

    /// Every reason the run fails, in plain words.
    fn failures(&self, signals_by_device: &[u64]) -> Vec<String> {
        let mut why = Vec::new();
        if self.devices_created < u64::from(self.devices_requested) {
            why.push(format!(
                "only {} of {} devices were created",
                self.devices_created, self.devices_requested
            ));
        }
        if self.sends_ok == 0 {
            why.push("no send succeeded".to_owned());
        }
        if let Some(max) = self.thresholds.max_error_pct {
            let pct = self.error_pct();
            if pct > max {
                why.push(format!("{pct:.2} % of sends failed (max {max} %)"));
            }
        }
        if let Some(max) = self.thresholds.max_p99_ms {
            for (what, p) in [
                ("send", &self.send_latency_ms_corrected),
                ("signal", &self.signal_latency_ms_corrected),
            ] {
                if p.count > 0 && p.p99 > max {
                    why.push(format!("{what} latency p99 {:.1} ms > {max} ms", p.p99));
                }
            }
        }
        let silent = signals_by_device.iter().filter(|n| **n == 0).count();
        if self.sockets_mode != SocketsMode::None && silent > 0 {
            why.push(format!("{silent} device(s) received no signal"));
        }
        if self.leftovers_count > 0 {
            why.push(format!(
                "{} own sentant(s) left on the node after cleanup",
                self.leftovers_count
            ));
        }
        if let Some(unchecked) = &self.leftovers_unchecked {
            why.push(format!(
                "the node could not be asked which own sentants are left after cleanup ({unchecked}): look with Find leftovers"
            ));
        }
        if let Some(bottleneck) = &self.tab_bottleneck_why {
            why.push(format!(
                "the tab was the bottleneck, so the figures measure the browser: {bottleneck}"
            ));
        }
        why
    }

    /// Pretty JSON for the page's `<pre id="r2-summary">`.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": \"summary not serializable: {e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_named_gives_back_its_workers() {
        let mut summary =
            Summary::from_metrics(&healthy(1, 12.0), &RunConfig::default(), facts(vec![]));
        for (workers, name, back) in [
            (Some(0), "main thread", 0),
            (None, "worker", 1),
            (Some(1), "worker", 1),
            (Some(3), "3 workers", 3),
        ] {
            summary.engine = engine_name(workers);
            assert_eq!(
                (summary.engine.as_str(), summary.engine_workers()),
                (name, back)
            );
        }
        summary.engine = "elsewhere".into();
        assert_eq!(summary.engine_workers(), 0);
    }

    fn facts(leftovers: Vec<SentantRef>) -> RunFacts {
        RunFacts {
            node: "http://127.0.0.1:4006".into(),
            run_prefix: "r2s-00000abc-1-".into(),
            duration_s: 12.5,
            leftovers,
            leftovers_unchecked: None,
        }
    }

    /// A healthy run of `devices` devices: all created, each send answered
    /// in `send_ms` and signalled in twice that.
    fn healthy(devices: u32, send_ms: f64) -> RunMetrics {
        let mut m = RunMetrics::new(0.0, devices);
        m.devices_created = devices.into();
        m.devices_deleted = devices.into();
        for d in 0..devices {
            for i in 0..20 {
                let t = f64::from(i) * 250.0;
                m.record_send(t, t, t + send_ms);
                m.record_signal(d, t, t, t + 2.0 * send_ms);
            }
        }
        m.set_sockets(devices.into());
        m
    }

    #[test]
    fn a_healthy_run_passes_and_reports_its_figures() {
        let config = RunConfig {
            devices: 3,
            seed: 9,
            ..RunConfig::default()
        };
        let s = Summary::from_metrics(&healthy(3, 12.0), &config, facts(vec![]));
        assert_eq!(s.verdict, Verdict::Pass, "{:?}", s.reasons);
        assert!(s.reasons.is_empty());
        assert_eq!(
            (s.devices_requested, s.devices_created, s.sends_ok),
            (3, 3, 60)
        );
        assert_eq!((s.signals_received, s.signals_per_device_min), (60, 20));
        assert_eq!((s.sockets_live_max, s.seed), (3, 9));
        assert!((s.send_latency_ms.p99 - 12.0).abs() < 0.1);
        assert!((s.signal_latency_ms_corrected.p50 - 24.0).abs() < 0.1);
        assert_eq!(s.http_latency_ms.len(), Op::ALL.len());
        assert!(!s.tab_bottleneck && s.tab_bottleneck_why.is_none());
    }

    #[test]
    fn a_run_hidden_while_sending_is_invalid_not_a_bottleneck() {
        let config = RunConfig {
            devices: 2,
            ..RunConfig::default()
        };
        let mut m = healthy(2, 5.0);
        for _ in 0..100 {
            m.record_scheduler_lag(990.0);
        }
        m.record_hidden(3000.0, false);
        let s = Summary::from_metrics(&m, &config, facts(vec![]));
        assert_eq!(
            s.verdict,
            Verdict::Fail,
            "hidden while not sending: judged as usual"
        );
        assert!(s.tab_bottleneck);
        m.record_hidden(4000.0, true);
        let s = Summary::from_metrics(&m, &config, facts(vec![]));
        assert_eq!(s.verdict, Verdict::Invalid);
        let in_page = RunConfig {
            workers: Some(0),
            ..config.clone()
        };
        let calm = healthy(2, 5.0);
        let mut hidden_calm = calm.clone();
        hidden_calm.record_hidden(4000.0, true);
        assert_eq!(
            Summary::from_metrics(&hidden_calm, &config, facts(vec![])).verdict,
            Verdict::Pass,
            "an engine in a worker that kept up while hidden measured the node"
        );
        assert_eq!(
            Summary::from_metrics(&hidden_calm, &in_page, facts(vec![])).verdict,
            Verdict::Invalid,
            "an engine on the page's main thread was throttled"
        );
        assert_eq!((s.hidden_s, s.hidden_while_sending_s), (7.0, 4.0));
        assert!(!s.tab_bottleneck && s.tab_bottleneck_why.is_none());
        assert_eq!(s.reasons.len(), 1);
        assert!(
            s.reasons[0].contains("hidden for 4.0 s while sending"),
            "{:?}",
            s.reasons
        );
    }

    #[test]
    fn the_load_report_sets_what_was_observed_beside_what_the_profile_makes() {
        let config = RunConfig {
            devices: 4,
            viewers: Some(1),
            ..RunConfig::default()
        };
        let mut m = healthy(4, 5.0);
        m.wire = WireCounts {
            joins: 4,
            join_posts: 33,
            device_socket_opens: 20,
            device_frames: 100,
            updates_sent: 20,
            asset_loads: 8,
            asset_bytes: 8 * 2_500_000,
            heartbeats: 0,
        };
        m.set_sockets(26);
        let s = Summary::from_metrics(&m, &config, facts(vec![]));
        let load = &s.load;
        assert_eq!(s.profile, Profile::WebApp);
        assert_eq!(
            load.posts_per_join,
            Figure {
                expected: 8.0,
                observed: 8.25
            }
        );
        assert_eq!(
            load.socket_opens_per_join,
            Figure {
                expected: 5.0,
                observed: 5.0
            }
        );
        // 4 phones × 5 + the projector's monitor, view and 4 cards.
        assert_eq!(
            load.sockets_peak,
            Figure {
                expected: 26.0,
                observed: 26.0
            }
        );
        assert_eq!(load.sockets_steady, 18);
        // Own subscription + 4 phones' view subscriptions; the node also
        // pushes 2 per projector.
        assert_eq!(
            load.device_frames_per_update,
            Figure {
                expected: 5.0,
                observed: 5.0
            }
        );
        assert_eq!(load.pushes_per_update_expected, 7);
        assert_eq!((load.asset_loads, load.asset_bytes), (8, 20_000_000));
        assert_eq!(load.not_webapp_wire, None);
        let shared = RunConfig {
            sockets: SocketsMode::Shared,
            ..config.clone()
        };
        let s = Summary::from_metrics(&m, &shared, facts(vec![]));
        assert!(s.load.not_webapp_wire.is_some());
        let socket = RunConfig {
            transport: Transport::Socket,
            ..config
        };
        let s = Summary::from_metrics(&m, &socket, facts(vec![]));
        let why = s.load.not_webapp_wire.expect("labelled");
        assert!(
            why.contains("transport=socket") && !why.contains("shared"),
            "{why}"
        );
    }

    #[test]
    fn summary_json_round_trips_with_the_documented_names() {
        let config = RunConfig {
            devices: 2,
            ..RunConfig::default()
        };
        let mut m = healthy(2, 5.0);
        m.record_error("http 502", "Bad Gateway");
        let s = Summary::from_metrics(&m, &config, facts(vec![]));
        let text = s.to_json_pretty();
        let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        for key in [
            "devices_requested",
            "devices_created",
            "devices_deleted",
            "sends_ok",
            "sends_failed",
            "signals_received",
            "sockets_live_max",
            "errors",
            "duration_s",
            "leftovers",
            "send_latency_ms",
            "signal_latency_ms",
            "send_latency_ms_corrected",
            "signal_latency_ms_corrected",
            "scheduler_lag_ms",
            "fetch_queue_max",
            "fetches_held",
            "tab_bottleneck",
            "tab_bottleneck_why",
            "verdict",
            "reasons",
            "scenario",
            "sockets_mode",
            "seed",
            "node",
            "run_prefix",
            "signals_per_device_min",
            "profile",
            "reconnect",
            "load",
            "view_latency_ms",
            "sends_planned",
            "signals_stale",
            "starts",
        ] {
            assert!(value.get(key).is_some(), "{key} missing");
        }
        assert_eq!(value["verdict"], "pass");
        assert_eq!(value["sockets_mode"], "per-device");
        assert_eq!(value["errors"][0]["kind"], "http 502");
        for p in ["p50", "p90", "p99", "max"] {
            assert!(value["send_latency_ms"][p].is_number());
        }
        let back: Summary = serde_json::from_str(&text).expect("reads back");
        assert_eq!(back, s);
    }

    #[test]
    fn each_failure_gives_its_reason() {
        let config = RunConfig {
            devices: 4,
            thresholds: Thresholds {
                max_p99_ms: Some(50.0),
                max_error_pct: Some(1.0),
            },
            ..RunConfig::default()
        };
        let mut m = healthy(3, 80.0); // one device never created, so never signalled
        m.signals_by_device.push(0);
        (0..3).for_each(|_| m.record_send_failed("timeout", "no answer in 10 s"));
        let leftovers = vec![SentantRef {
            id: "u-1".into(),
            name: "r2s-00000abc-1-0002".into(),
        }];
        let s = Summary::from_metrics(&m, &config, facts(leftovers));
        assert_eq!(s.verdict, Verdict::Fail);
        let all = s.reasons.join("\n");
        for words in [
            "only 3 of 4 devices",
            "4.76 % of sends failed",
            "send latency p99 80",
            "signal latency p99 160",
            "1 device(s) received no signal",
            "1 own sentant(s) left",
        ] {
            assert!(all.contains(words), "{words:?} not in:\n{all}");
        }
        assert_eq!(s.leftovers_count, 1);

        let kept = Summary::from_metrics(
            &m,
            &RunConfig {
                keep: true,
                ..config
            },
            facts(vec![]),
        );
        assert!(!kept.reasons.join("\n").contains("left on the node"));
    }

    #[test]
    fn a_cleanup_that_could_not_ask_the_node_fails_the_run() {
        let m = healthy(2, 10.0);
        let config = RunConfig {
            devices: 2,
            ..RunConfig::default()
        };
        let unchecked = |keep: bool| {
            let facts = RunFacts {
                leftovers_unchecked: Some("HTTP 500: Internal Server Error".into()),
                ..facts(vec![])
            };
            Summary::from_metrics(
                &m,
                &RunConfig {
                    keep,
                    ..config.clone()
                },
                facts,
            )
        };
        let s = unchecked(false);
        assert_eq!(s.verdict, Verdict::Fail, "{:?}", s.reasons);
        assert!(
            s.reasons
                .iter()
                .any(|r| r.contains("could not be asked") && r.contains("HTTP 500")),
            "{:?}",
            s.reasons
        );
        assert_eq!(s.leftovers_count, 0);
        assert_eq!(
            s.leftovers_unchecked.as_deref(),
            Some("HTTP 500: Internal Server Error")
        );
        // A kept run the user then deleted is judged by that Delete too.
        assert_eq!(unchecked(true).reasons, s.reasons);
        assert_eq!(
            Summary::from_metrics(&m, &config, facts(vec![])).verdict,
            Verdict::Pass
        );
    }

    #[test]
    fn no_sends_and_tab_bottleneck_fail() {
        let config = RunConfig {
            devices: 1,
            sockets: SocketsMode::None,
            ..RunConfig::default()
        };
        let mut m = RunMetrics::new(0.0, 1);
        m.devices_created = 1;
        (0..10).for_each(|_| m.record_scheduler_lag(250.0));
        let s = Summary::from_metrics(&m, &config, facts(vec![]));
        assert_eq!(s.verdict, Verdict::Fail);
        assert!(s.tab_bottleneck);
        assert_eq!(s.reasons.len(), 2, "{:?}", s.reasons);
        assert!(s.reasons[0].contains("no send succeeded"));
        assert!(s.reasons[1].contains("bottleneck"));
        assert_eq!(s.error_pct(), 0.0);
    }
}
