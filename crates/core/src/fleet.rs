//! Several tabs as one fleet: what each tab reports about itself about once a
//! second, the commands a control view sends to all of them, and the totals.
//! The page carries these over a `BroadcastChannel` between tabs of one
//! browser, and through a control sentant on the node between machines
//! ([`control_definition`]): the same messages, as the parameters of its
//! public `fleet` event and signal.

use serde::{Deserialize, Serialize};

/// A report older than this (ms) is a tab that went away.
pub const STALE_AFTER_MS: f64 = 5000.0;

/// One tab's figures at `at_ms` (the sender's wall clock, ms since the epoch).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TabReport {
    /// The tab's tag (its devices' names start with `r2s-<tab>-`).
    pub tab: String,
    pub phase: String,
    pub devices: u64,
    pub live: u64,
    pub sockets: u64,
    pub sends_ok: u64,
    pub sends_failed: u64,
    pub signals: u64,
    pub errors: u64,
    pub sends_per_s: f64,
    pub signals_per_s: f64,
    /// Whether the tab is hidden now, and how long it was hidden during its run (s).
    #[serde(default)]
    pub hidden: bool,
    #[serde(default)]
    pub hidden_s: f64,
    pub at_ms: f64,
}

/// What a control view asks every tab to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FleetCommand {
    Create,
    Start,
    Stop,
    Delete,
}

/// A message between tabs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FleetMessage {
    Report(TabReport),
    /// `id` tells copies of one command apart from a new one (a tab hears a
    /// command both from its browser and through the node).
    Command {
        command: FleetCommand,
        id: u64,
    },
}

/// The name of the control sentant of fleet `fleet`.
pub fn control_name(fleet: &str) -> String {
    format!("r2s-control-{fleet}")
}

/// The control sentant: one public event `fleet`, re-published as the public
/// signal `fleet` with the message as its parameters.
pub fn control_definition(fleet: &str) -> String {
    serde_json::json!({"sentant": {"name": control_name(fleet), "automations": [{"name": "fleet", "transitions": [
        {"event": "fleet", "public": true, "actions": [
            {"command": "signal", "public": true, "parameters": {"event": "fleet"}}]}]}]}})
    .to_string()
}

impl FleetMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A message from another tab; `None` for anything else on the channel.
    pub fn from_json(text: &str) -> Option<FleetMessage> {
        serde_json::from_str(text).ok()
    }

    /// The message as the parameters of the control sentant's `fleet` event.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The message a `fleet` signal's parameters carry (the node adds nothing
    /// that matters; unknown fields are ignored).
    pub fn from_value(value: &serde_json::Value) -> Option<FleetMessage> {
        serde_json::from_value(value.clone()).ok()
    }
}

/// The sum of the tabs' reports that are fresh at `now_ms`.
pub fn totals<'a>(reports: impl IntoIterator<Item = &'a TabReport>, now_ms: f64) -> TabReport {
    let mut total = TabReport {
        tab: "all".into(),
        phase: String::new(),
        at_ms: now_ms,
        ..TabReport::default()
    };
    for r in reports.into_iter().filter(|r| is_fresh(r, now_ms)) {
        total.devices += r.devices;
        total.live += r.live;
        total.sockets += r.sockets;
        total.sends_ok += r.sends_ok;
        total.sends_failed += r.sends_failed;
        total.signals += r.signals;
        total.errors += r.errors;
        total.sends_per_s += r.sends_per_s;
        total.signals_per_s += r.signals_per_s;
        total.hidden |= r.hidden;
        total.hidden_s += r.hidden_s;
    }
    total
}

/// Whether `report` is recent enough at `now_ms` to count.
pub fn is_fresh(report: &TabReport, now_ms: f64) -> bool {
    now_ms - report.at_ms <= STALE_AFTER_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(tab: &str, sends: u64, at_ms: f64) -> TabReport {
        TabReport {
            tab: tab.into(),
            devices: 30,
            live: 29,
            sends_ok: sends,
            signals: sends / 2,
            at_ms,
            ..Default::default()
        }
    }

    #[test]
    fn totals_add_fresh_tabs_only() {
        let reports = [
            report("a", 100, 10_000.0),
            report("b", 50, 9_000.0),
            report("c", 7, 1_000.0),
        ];
        let t = totals(&reports, 10_500.0);
        assert_eq!(
            (t.devices, t.live, t.sends_ok, t.signals),
            (60, 58, 150, 75)
        );
    }

    #[test]
    fn messages_round_trip_and_strangers_are_ignored() {
        for m in [
            FleetMessage::Report(report("a", 1, 2.0)),
            FleetMessage::Command {
                command: FleetCommand::Start,
                id: 7,
            },
        ] {
            assert_eq!(FleetMessage::from_json(&m.to_json()), Some(m));
        }
        assert_eq!(FleetMessage::from_json(r#"{"type":"start"}"#), None);
        assert_eq!(FleetMessage::from_json("not json"), None);
        assert!(FleetMessage::Command {
            command: FleetCommand::Delete,
            id: 1
        }
        .to_json()
        .contains(r#""command":"delete""#));
        // Through the node, a signal's parameters carry the message plus `result`.
        let mut value = FleetMessage::Command {
            command: FleetCommand::Stop,
            id: 9,
        }
        .to_value();
        value["result"] = "ok".into();
        assert_eq!(
            FleetMessage::from_value(&value),
            Some(FleetMessage::Command {
                command: FleetCommand::Stop,
                id: 9
            })
        );
        assert!(control_definition("t1").contains("r2s-control-t1"));
    }
}
