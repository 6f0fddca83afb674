//! Several tabs as one fleet: what each tab reports about itself about once a
//! second, the commands a control view sends to all of them, and the totals.
//! The page carries these over a `BroadcastChannel` between tabs of one
//! browser, and through a control sentant on the node between machines
//! ([`control_definition`]): the same messages, as the parameters of its
//! public `fleet` event and signal.
//!
//! The control sentant's event and signal are public: anyone who can reach
//! the node can send to it and listen. So every message travels sealed
//! ([`FleetKey::seal`]): its JSON as a string, and an HMAC-SHA256 over it
//! with the fleet's secret, which only the control view's address (and the
//! tabs it links) carry. [`FleetKey::open`] refuses a message without a good
//! seal, one dated in the future (a forged report would never go stale), and
//! a command older than [`COMMAND_TTL_MS`] (a replay).
//!
//! Layout: the messages ([`TabReport`], [`FleetCommand`], [`FleetMessage`]);
//! the seal ([`FleetKey`], [`FleetError`]); the control sentant; the totals.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// A report older than this (ms) is a tab that went away.
pub const STALE_AFTER_MS: f64 = 5000.0;
/// How far ahead of the receiver's clock a message may be dated (ms): the
/// clocks of two machines on one network differ by less.
pub const MAX_CLOCK_AHEAD_MS: f64 = 2000.0;
/// A command older than this (ms) is not obeyed: it is a replay, or came too
/// late to start tabs together.
pub const COMMAND_TTL_MS: f64 = 10_000.0;
/// The fewest characters a fleet secret may have.
pub const MIN_SECRET_CHARS: usize = 16;

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
        /// When the control view gave it (its wall clock, ms since the epoch).
        at_ms: f64,
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
    /// When the message was made (sender's wall clock, ms since the epoch).
    pub fn at_ms(&self) -> f64 {
        match self {
            FleetMessage::Report(report) => report.at_ms,
            FleetMessage::Command { at_ms, .. } => *at_ms,
        }
    }
}

/// Why a fleet message was refused.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("a fleet secret needs at least {MIN_SECRET_CHARS} characters (got {0})")]
    WeakSecret(usize),
    #[error("not a sealed fleet message")]
    NotSealed,
    #[error("the seal does not match this fleet's secret")]
    BadSeal,
    #[error("sealed but unreadable: {0}")]
    Malformed(#[source] serde_json::Error),
    #[error("dated {ahead_ms:.0} ms in the future")]
    FromTheFuture { ahead_ms: f64 },
    #[error("a command {age_ms:.0} ms old")]
    Expired { age_ms: f64 },
}

impl FleetError {
    /// A short word for counting refusals by kind.
    pub fn kind(&self) -> &'static str {
        match self {
            FleetError::WeakSecret(_) => "weak secret",
            FleetError::NotSealed => "not sealed",
            FleetError::BadSeal => "bad seal",
            FleetError::Malformed(_) => "malformed",
            FleetError::FromTheFuture { .. } => "future-dated",
            FleetError::Expired { .. } => "expired",
        }
    }
}

/// The sealed form's two fields, both strings so that any node passes them
/// through unchanged (the real node turns some numbers into strings).
const BODY: &str = "fleet_body";
const SEAL: &str = "fleet_seal";

/// A fleet's shared secret: it seals every message and opens only messages
/// sealed with the same secret.
#[derive(Clone, PartialEq, Eq)]
pub struct FleetKey {
    secret: String,
}

impl std::fmt::Debug for FleetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FleetKey(..)")
    }
}

impl FleetKey {
    /// The key of `secret` (as the control view's address gives it).
    pub fn new(secret: &str) -> Result<FleetKey, FleetError> {
        let chars = secret.chars().count();
        if chars < MIN_SECRET_CHARS {
            return Err(FleetError::WeakSecret(chars));
        }
        Ok(FleetKey {
            secret: secret.to_owned(),
        })
    }

    /// A new secret from 16 random bytes: 32 hex digits.
    pub fn generate(random: [u8; 16]) -> FleetKey {
        FleetKey {
            secret: hex::encode(random),
        }
    }

    /// The secret, for the address of a tab that is to join.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(self.secret.as_bytes()).expect("HMAC takes any key length")
    }

    /// `message` sealed: the value a tab posts on the channel, or sends as
    /// the parameters of the control sentant's `fleet` event.
    pub fn seal(&self, message: &FleetMessage) -> serde_json::Value {
        let body = serde_json::to_string(message).expect("a fleet message serialises");
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        let seal = hex::encode(mac.finalize().into_bytes());
        serde_json::json!({ BODY: body, SEAL: seal })
    }

    /// The message `sealed` carries, if this fleet sealed it and it is
    /// timely at `now_ms`. Other fields (a node adds `result`) are ignored.
    pub fn open(
        &self,
        sealed: &serde_json::Value,
        now_ms: f64,
    ) -> Result<FleetMessage, FleetError> {
        let (Some(body), Some(seal)) = (sealed[BODY].as_str(), sealed[SEAL].as_str()) else {
            return Err(FleetError::NotSealed);
        };
        let seal = hex::decode(seal).map_err(|_| FleetError::BadSeal)?;
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        mac.verify_slice(&seal).map_err(|_| FleetError::BadSeal)?;
        let message: FleetMessage = serde_json::from_str(body).map_err(FleetError::Malformed)?;
        let at_ms = message.at_ms();
        if !at_ms.is_finite() || at_ms > now_ms + MAX_CLOCK_AHEAD_MS {
            return Err(FleetError::FromTheFuture {
                ahead_ms: at_ms - now_ms,
            });
        }
        if matches!(message, FleetMessage::Command { .. }) && now_ms - at_ms > COMMAND_TTL_MS {
            return Err(FleetError::Expired {
                age_ms: now_ms - at_ms,
            });
        }
        Ok(message)
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

    fn command(command: FleetCommand, id: u64, at_ms: f64) -> FleetMessage {
        FleetMessage::Command { command, id, at_ms }
    }

    #[test]
    fn sealed_messages_open_with_the_same_secret_only() {
        let key = FleetKey::generate([7; 16]);
        assert_eq!(key.secret().len(), 32);
        for m in [
            FleetMessage::Report(report("a", 1, 2.0)),
            command(FleetCommand::Start, 7, 3.0),
        ] {
            let sealed = key.seal(&m);
            assert_eq!(key.open(&sealed, 4.0).unwrap(), m);
            // Through the node, a signal's parameters carry the message plus `result`.
            let mut through_node = sealed.clone();
            through_node["result"] = "ok".into();
            assert_eq!(key.open(&through_node, 4.0).unwrap(), m);
            let other = FleetKey::new("another secret, long enough").unwrap();
            assert!(matches!(other.open(&sealed, 4.0), Err(FleetError::BadSeal)));
        }
        assert!(key
            .seal(&command(FleetCommand::Delete, 1, 0.0))
            .to_string()
            .contains(r#"\"command\":\"delete\""#));
    }

    #[test]
    fn forged_and_tampered_messages_are_refused() {
        let key = FleetKey::new("0123456789abcdef").unwrap();
        let now = 1_000_000.0;
        let start = command(FleetCommand::Start, 9, now);
        // Unsealed, as the messages were before: refused.
        let bare =
            serde_json::json!({"type": "command", "command": "start", "id": 9, "at_ms": now});
        assert!(matches!(key.open(&bare, now), Err(FleetError::NotSealed)));
        assert!(matches!(
            key.open(&"text".into(), now),
            Err(FleetError::NotSealed)
        ));
        // The body changed after sealing (start → delete): refused.
        let mut tampered = key.seal(&start);
        let body = tampered["fleet_body"]
            .as_str()
            .unwrap()
            .replace("start", "delete");
        tampered["fleet_body"] = body.into();
        assert!(matches!(key.open(&tampered, now), Err(FleetError::BadSeal)));
        // A seal that is not hex, or cut short: refused.
        let mut cut = key.seal(&start);
        let seal = cut["fleet_seal"].as_str().unwrap()[..10].to_owned();
        cut["fleet_seal"] = seal.into();
        assert!(matches!(key.open(&cut, now), Err(FleetError::BadSeal)));
        cut["fleet_seal"] = "zz".into();
        assert!(matches!(key.open(&cut, now), Err(FleetError::BadSeal)));
        assert!(matches!(
            FleetKey::new("short"),
            Err(FleetError::WeakSecret(5))
        ));
    }

    #[test]
    fn future_reports_and_old_commands_are_refused() {
        let key = FleetKey::new("0123456789abcdef").unwrap();
        let now = 1_000_000.0;
        // A report dated an hour ahead would never go stale: refused.
        let future = key.seal(&FleetMessage::Report(report("x", 1, now + 3_600_000.0)));
        let err = key.open(&future, now).unwrap_err();
        assert!(matches!(err, FleetError::FromTheFuture { .. }), "{err}");
        assert_eq!(err.kind(), "future-dated");
        // A little clock difference between machines is allowed.
        let ahead = key.seal(&FleetMessage::Report(report(
            "x",
            1,
            now + MAX_CLOCK_AHEAD_MS - 1.0,
        )));
        assert!(key.open(&ahead, now).is_ok());
        // An old report is accepted (and shown as stale); an old command is a replay.
        let old_report = key.seal(&FleetMessage::Report(report("x", 1, now - 60_000.0)));
        assert!(key.open(&old_report, now).is_ok());
        let replay = key.seal(&command(
            FleetCommand::Delete,
            3,
            now - COMMAND_TTL_MS - 1.0,
        ));
        assert!(matches!(
            key.open(&replay, now),
            Err(FleetError::Expired { .. })
        ));
        let fresh = key.seal(&command(FleetCommand::Delete, 3, now - 100.0));
        assert!(key.open(&fresh, now).is_ok());
        // Not-a-number dates cannot slip past the checks.
        let mut nan = report("x", 1, 0.0);
        nan.at_ms = f64::NAN;
        let body = serde_json::to_string(&FleetMessage::Report(nan)).unwrap();
        assert!(body.contains("null"), "{body}");
        let sealed = key.seal(&FleetMessage::Report(report("x", 1, f64::INFINITY)));
        assert!(key.open(&sealed, now).is_err());
    }

    #[test]
    fn the_control_sentant_is_named_for_its_fleet() {
        assert!(control_definition("t1").contains("r2s-control-t1"));
    }
}
