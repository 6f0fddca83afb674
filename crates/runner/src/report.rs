//! The run's result: every tab's summary as the page wrote it, the checks
//! across tabs (one per threshold and expectation), the verdict, a k6-style
//! text summary, the progress line, and the JUnit XML.
//!
//! # Layout
//!
//! - [`TabResult`], [`Combined`]: what the runner keeps, and the combined JSON.
//! - [`checks`]: the checks across tabs, in the order they are reported.
//! - [`Second`], [`progress_line`]: the 1-second rows while it runs.
//! - [`Combined::text`], [`Combined::junit`]: the summary for people and for CI.

use r2_core::metrics::Percentiles;
use r2_core::summary::{Summary, Verdict};
use serde::Serialize;

/// One tab's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct TabResult {
    /// `b<browser>t<tab>`, 1-based.
    pub label: String,
    pub browser: usize,
    /// The WebDriver session it ran in (on a Grid, the Grid's id).
    pub session_id: String,
    pub summary: Summary,
    /// Seconds the tab's page was hidden while it ran (a hidden tab's timers are throttled).
    pub hidden_s: u64,
    #[serde(skip)]
    pub series_csv: Option<String>,
}

/// One check across tabs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

/// The settings the checks need.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expect {
    pub max_error_pct: Option<f64>,
    pub max_p99_ms: Option<f64>,
    /// The devices are left on the node (`keep=1`): leftovers are expected.
    pub keep: bool,
    /// `sockets=none`: no signals are expected.
    pub no_signals: bool,
}

/// Sums over tabs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    pub devices_requested: u64,
    pub devices_created: u64,
    pub devices_deleted: u64,
    pub sends_ok: u64,
    pub sends_failed: u64,
    pub error_pct: f64,
    pub signals_received: u64,
    pub leftovers_count: u64,
    /// Tabs whose Delete could not ask the node what it left.
    pub leftovers_unchecked: u64,
    pub reconnects: u64,
}

/// Latency across tabs: each percentile is the worst tab's (percentiles of
/// separate tabs cannot be merged), `count` the sum.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Latencies {
    pub send_latency_ms_corrected: Percentiles,
    pub signal_latency_ms_corrected: Percentiles,
    pub send_latency_ms: Percentiles,
    pub signal_latency_ms: Percentiles,
    pub scheduler_lag_ms: Percentiles,
}

/// The combined result, as written to `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Combined {
    pub verdict: Verdict,
    pub checks: Vec<Check>,
    pub node: String,
    pub page: String,
    pub fleet: String,
    pub webdriver: String,
    pub browsers: usize,
    pub tabs_per_browser: usize,
    pub duration_s: f64,
    pub totals: Totals,
    pub latency: Latencies,
    pub tabs: Vec<TabResult>,
    pub warnings: Vec<String>,
}

/// Sums the tabs' figures.
pub fn totals(tabs: &[TabResult]) -> Totals {
    let mut t = Totals::default();
    for s in tabs.iter().map(|t| &t.summary) {
        t.devices_requested += u64::from(s.devices_requested);
        t.devices_created += s.devices_created;
        t.devices_deleted += s.devices_deleted;
        t.sends_ok += s.sends_ok;
        t.sends_failed += s.sends_failed;
        t.signals_received += s.signals_received;
        t.leftovers_count += s.leftovers_count as u64;
        t.leftovers_unchecked += u64::from(s.leftovers_unchecked.is_some());
        t.reconnects += s.reconnects;
    }
    let all = t.sends_ok + t.sends_failed;
    t.error_pct = if all == 0 {
        0.0
    } else {
        100.0 * t.sends_failed as f64 / all as f64
    };
    t
}

fn worst(tabs: &[TabResult], pick: fn(&Summary) -> &Percentiles) -> Percentiles {
    tabs.iter()
        .map(|t| pick(&t.summary))
        .fold(Percentiles::default(), |w, p| Percentiles {
            p50: w.p50.max(p.p50),
            p90: w.p90.max(p.p90),
            p99: w.p99.max(p.p99),
            max: w.max.max(p.max),
            count: w.count + p.count,
        })
}

/// The worst tab's percentiles of each latency.
pub fn latencies(tabs: &[TabResult]) -> Latencies {
    Latencies {
        send_latency_ms_corrected: worst(tabs, |s| &s.send_latency_ms_corrected),
        signal_latency_ms_corrected: worst(tabs, |s| &s.signal_latency_ms_corrected),
        send_latency_ms: worst(tabs, |s| &s.send_latency_ms),
        signal_latency_ms: worst(tabs, |s| &s.signal_latency_ms),
        scheduler_lag_ms: worst(tabs, |s| &s.scheduler_lag_ms),
    }
}

/// The checks across tabs: the thresholds given, then what the page also
/// expects of every run, then every tab's own verdict.
pub fn checks(tabs: &[TabResult], expect: Expect) -> Vec<Check> {
    let t = totals(tabs);
    let l = latencies(tabs);
    let check = |name, passed, detail: String| Check {
        name,
        passed,
        detail,
    };
    let mut all = Vec::new();
    if let Some(max) = expect.max_error_pct {
        all.push(check(
            "max_error_pct",
            t.error_pct <= max,
            format!(
                "{:.2} % of sends failed ({} of {}; max {max} %)",
                t.error_pct,
                t.sends_failed,
                t.sends_ok + t.sends_failed
            ),
        ));
    }
    if let Some(max) = expect.max_p99_ms {
        let (send, signal) = (
            l.send_latency_ms_corrected.p99,
            l.signal_latency_ms_corrected.p99,
        );
        all.push(check(
            "max_p99_ms",
            send <= max && signal <= max,
            format!("corrected p99 (worst tab): send {send:.1} ms, signal {signal:.1} ms (max {max} ms)"),
        ));
    }
    all.push(check(
        "devices_created",
        t.devices_created >= t.devices_requested,
        format!(
            "{} of {} devices created",
            t.devices_created, t.devices_requested
        ),
    ));
    all.push(check(
        "sends_succeeded",
        t.sends_ok > 0,
        format!("{} sends succeeded", t.sends_ok),
    ));
    if !expect.no_signals {
        let silent: Vec<&str> = tabs
            .iter()
            .filter(|t| t.summary.signals_per_device_min == 0)
            .map(|t| t.label.as_str())
            .collect();
        all.push(check(
            "every_device_signalled",
            silent.is_empty(),
            if silent.is_empty() {
                format!(
                    "{} signals; every device got at least one",
                    t.signals_received
                )
            } else {
                format!(
                    "a device received no signal in tab(s) {}",
                    silent.join(", ")
                )
            },
        ));
    }
    if !expect.keep {
        all.push(check(
            "cleanup",
            t.leftovers_count == 0 && t.leftovers_unchecked == 0,
            format!(
                "{} of {} devices deleted, {} own sentant(s) left on the node, {} tab(s) could not ask the node what is left",
                t.devices_deleted, t.devices_created, t.leftovers_count, t.leftovers_unchecked
            ),
        ));
    }
    let bottlenecks: Vec<String> = tabs
        .iter()
        .filter_map(|t| {
            t.summary
                .tab_bottleneck_why
                .as_ref()
                .map(|why| format!("{}: {why}", t.label))
        })
        .collect();
    all.push(check(
        "tabs_not_bottleneck",
        bottlenecks.is_empty(),
        if bottlenecks.is_empty() {
            "no tab was its own bottleneck".into()
        } else {
            bottlenecks.join("; ")
        },
    ));
    let failed: Vec<String> = tabs
        .iter()
        .filter(|t| t.summary.verdict != Verdict::Pass)
        .map(|t| format!("{}: {}", t.label, t.summary.reasons.join("; ")))
        .collect();
    all.push(check(
        "tab_verdicts",
        failed.is_empty(),
        if failed.is_empty() {
            format!("all {} tabs pass", tabs.len())
        } else {
            failed.join(" | ")
        },
    ));
    all
}

impl Combined {
    /// The first failing check, as the one-line reason of a FAIL.
    pub fn first_failure(&self) -> Option<&Check> {
        self.checks.iter().find(|c| !c.passed)
    }

    /// The k6-style summary.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        let first = self.tabs.first().map(|t| &t.summary);
        line(String::new());
        line(format!("  node ......: {}", self.node));
        line(format!(
            "  page ......: {} (fleet {})",
            self.page, self.fleet
        ));
        line(format!(
            "  browsers ..: {} × {} tab(s) via {}",
            self.browsers, self.tabs_per_browser, self.webdriver
        ));
        if let Some(s) = first {
            line(format!(
                "  run .......: {} devices, {}, {} subscriptions, {:.0} s",
                self.totals.devices_requested,
                s.scenario.as_str(),
                s.sockets_mode.as_str(),
                self.duration_s
            ));
        }
        line(String::new());
        for c in &self.checks {
            let mark = if c.passed { "✓" } else { "✗" };
            line(format!(
                "  {mark} {:.<24} {}",
                format!("{} ", c.name),
                c.detail
            ));
        }
        line(String::new());
        let t = &self.totals;
        line(format!(
            "  devices .....................: {} requested, {} created, {} deleted",
            t.devices_requested, t.devices_created, t.devices_deleted
        ));
        line(format!(
            "  sends .......................: {} ok, {} failed ({:.2} %)",
            t.sends_ok, t.sends_failed, t.error_pct
        ));
        line(format!(
            "  signals .....................: {}   reconnects: {}",
            t.signals_received, t.reconnects
        ));
        let p = |name: &str, p: &Percentiles| {
            format!(
                "  {:.<28}: p50={:.1}ms p90={:.1}ms p99={:.1}ms max={:.1}ms count={}",
                format!("{name} "),
                p.p50,
                p.p90,
                p.p99,
                p.max,
                p.count
            )
        };
        line("  latency (each percentile: the worst tab's)".into());
        line(p(
            "send, corrected",
            &self.latency.send_latency_ms_corrected,
        ));
        line(p(
            "signal, corrected",
            &self.latency.signal_latency_ms_corrected,
        ));
        line(p("send", &self.latency.send_latency_ms));
        line(p("signal", &self.latency.signal_latency_ms));
        line(p("tab scheduler lag", &self.latency.scheduler_lag_ms));
        line(String::new());
        line("  tabs:".into());
        for tab in &self.tabs {
            let s = &tab.summary;
            line(format!(
                "    {} {} {:<28} {:>4} devices  {:>6} sends ok  {:>4} failed  {}",
                tab.label,
                short_session(&tab.session_id),
                s.run_prefix,
                s.devices_created,
                s.sends_ok,
                s.sends_failed,
                s.verdict.as_str().to_uppercase()
            ));
            if let Some(why) = &s.tab_bottleneck_why {
                line(format!("      warning: the tab was the bottleneck ({why}): its figures measure the browser, not the node"));
            }
            if tab.hidden_s > 0 {
                line(format!("      warning: the tab was hidden for {} s while it ran: a hidden tab's timers are throttled", tab.hidden_s));
            }
        }
        for w in &self.warnings {
            line(format!("  warning: {w}"));
        }
        line(String::new());
        out
    }

    /// The verdict line: `PASS`, or `FAIL: <check>: <detail>`.
    pub fn verdict_line(&self) -> String {
        match self.first_failure() {
            None => "PASS".into(),
            Some(c) => format!("FAIL: {}: {}", c.name, c.detail),
        }
    }

    /// JUnit XML: one test case per check.
    pub fn junit(&self) -> String {
        use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
        let mut suite = TestSuite::new("r2-stress");
        for c in &self.checks {
            let status = if c.passed {
                TestCaseStatus::success()
            } else {
                let mut failure = TestCaseStatus::non_success(NonSuccessKind::Failure);
                failure.set_message(c.detail.clone());
                failure
            };
            let mut case = TestCase::new(c.name, status);
            case.set_system_out(c.detail.clone());
            suite.add_test_case(case);
        }
        suite.set_time(std::time::Duration::from_secs_f64(self.duration_s.max(0.0)));
        let mut report = Report::new("r2-stress-run");
        report.add_test_suite(suite);
        report.to_string().unwrap_or_default()
    }
}

fn short_session(id: &str) -> String {
    format!("[{}]", id.chars().take(8).collect::<String>())
}

/// One second of the run across tabs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Second {
    pub t_s: u64,
    pub live: u64,
    pub devices: u64,
    pub sends_ok: u64,
    pub sends_per_s: f64,
    pub errors: u64,
    /// The worst tab's send p99 of its last complete second.
    pub p99_ms: Option<f64>,
    pub tabs_hidden: u64,
    pub tabs_bottleneck: u64,
}

/// The header of the combined 1-second CSV.
pub const SECONDS_CSV_HEADER: &str =
    "t_s,live,devices,sends_ok,sends_per_s,errors,send_p99_ms,tabs_hidden,tabs_bottleneck";

impl Second {
    pub fn csv_row(&self) -> String {
        format!(
            "{},{},{},{},{:.1},{},{},{},{}",
            self.t_s,
            self.live,
            self.devices,
            self.sends_ok,
            self.sends_per_s,
            self.errors,
            self.p99_ms.map(|p| format!("{p:.3}")).unwrap_or_default(),
            self.tabs_hidden,
            self.tabs_bottleneck
        )
    }
}

/// The line printed once a second.
pub fn progress_line(phase: &str, s: &Second) -> String {
    let p99 = s
        .p99_ms
        .map(|p| format!("{p:.1} ms"))
        .unwrap_or_else(|| "–".into());
    let mut line = format!(
        "{:>4}s  {:<16} devices live {}/{}  sends/s {:.0}  sends ok {}  errors {}  p99 {p99}",
        s.t_s, phase, s.live, s.devices, s.sends_per_s, s.sends_ok, s.errors
    );
    if s.tabs_hidden > 0 {
        line.push_str(&format!("  [{} tab(s) hidden]", s.tabs_hidden));
    }
    if s.tabs_bottleneck > 0 {
        line.push_str(&format!("  [{} tab(s) the bottleneck]", s.tabs_bottleneck));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use r2_core::config::{RunConfig, Thresholds};
    use r2_core::metrics::RunMetrics;
    use r2_core::summary::RunFacts;

    fn tab(label: &str, devices: u32, ok: u32, failed: u32, send_ms: f64) -> TabResult {
        let mut m = RunMetrics::new(0.0, devices);
        m.devices_created = devices.into();
        m.devices_deleted = devices.into();
        for i in 0..ok {
            let t = f64::from(i) * 10.0;
            m.record_send(t, t, t + send_ms);
            m.record_signal(i % devices, t, t, t + send_ms);
        }
        (0..failed).for_each(|_| m.record_send_failed("http_500", "Internal Server Error"));
        let config = RunConfig {
            devices,
            thresholds: Thresholds {
                max_error_pct: Some(1.0),
                max_p99_ms: None,
            },
            ..RunConfig::default()
        };
        let facts = RunFacts {
            node: "n".into(),
            run_prefix: format!("r2s-{label}-1-"),
            duration_s: 3.0,
            leftovers: vec![],
            leftovers_unchecked: None,
        };
        TabResult {
            label: label.into(),
            browser: 0,
            session_id: "s".into(),
            summary: Summary::from_metrics(&m, &config, facts),
            hidden_s: 0,
            series_csv: None,
        }
    }

    #[test]
    fn totals_add_up_and_thresholds_are_judged_across_tabs() {
        let tabs = [tab("a", 2, 90, 10, 5.0), tab("b", 2, 100, 0, 30.0)];
        let t = totals(&tabs);
        assert_eq!(
            (t.devices_created, t.sends_ok, t.sends_failed),
            (4, 190, 10)
        );
        assert!((t.error_pct - 5.0).abs() < 1e-9);
        let all = checks(
            &tabs,
            Expect {
                max_error_pct: Some(1.0),
                max_p99_ms: Some(20.0),
                ..Expect::default()
            },
        );
        let failed: Vec<&str> = all.iter().filter(|c| !c.passed).map(|c| c.name).collect();
        assert_eq!(
            failed,
            ["max_error_pct", "max_p99_ms", "tab_verdicts"],
            "{all:?}"
        );
        assert!(
            all[0].detail.starts_with("5.00 % of sends failed"),
            "{}",
            all[0].detail
        );
        assert!(all[1].detail.contains("send 30.0 ms"), "{}", all[1].detail);
        let ok = checks(
            &tabs[1..],
            Expect {
                max_error_pct: Some(1.0),
                max_p99_ms: Some(50.0),
                ..Expect::default()
            },
        );
        assert!(ok.iter().all(|c| c.passed), "{ok:?}");
    }

    #[test]
    fn a_tab_that_could_not_ask_what_is_left_fails_the_cleanup() {
        let cleanup = |tabs: &[TabResult], keep: bool| {
            checks(
                tabs,
                Expect {
                    keep,
                    ..Expect::default()
                },
            )
            .into_iter()
            .find(|c| c.name == "cleanup")
        };
        let mut tabs = vec![tab("a", 2, 90, 0, 5.0), tab("b", 2, 90, 0, 5.0)];
        assert!(cleanup(&tabs, false).is_some_and(|c| c.passed));
        tabs[1].summary.leftovers_unchecked = Some("HTTP 500".into());
        assert_eq!(totals(&tabs).leftovers_unchecked, 1);
        let failed = cleanup(&tabs, false).expect("checked");
        assert!(!failed.passed, "{failed:?}");
        assert!(
            failed.detail.contains("1 tab(s) could not ask"),
            "{}",
            failed.detail
        );
        assert!(cleanup(&tabs, true).is_none(), "kept: not checked");
    }

    #[test]
    fn junit_has_a_case_per_check_and_the_failure_message() {
        let tabs = vec![tab("a", 2, 90, 10, 5.0)];
        let combined = Combined {
            verdict: Verdict::Fail,
            checks: checks(
                &tabs,
                Expect {
                    max_error_pct: Some(1.0),
                    ..Expect::default()
                },
            ),
            node: "n".into(),
            page: "p".into(),
            fleet: "f".into(),
            webdriver: "w".into(),
            browsers: 1,
            tabs_per_browser: 1,
            duration_s: 3.0,
            totals: totals(&tabs),
            latency: latencies(&tabs),
            tabs,
            warnings: vec![],
        };
        let xml = combined.junit();
        assert_eq!(
            xml.matches("<testcase ").count(),
            combined.checks.len(),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<failure message="10.00 % of sends failed"#),
            "{xml}"
        );
        assert!(combined
            .verdict_line()
            .starts_with("FAIL: max_error_pct: 10.00 %"));
        let text = combined.text();
        assert!(
            text.contains("✗ max_error_pct") && text.contains("p99="),
            "{text}"
        );
    }
}
