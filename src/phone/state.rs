//! Device mode's state, pure: where this phone is on the node, its
//! subscription, its motion sensor, what it sent and what it recorded.
//!
//! [`PhoneState`] is a [`Reducible`]: the component and its effect hooks
//! dispatch [`PhoneAction`]s and read the state back; nothing here touches
//! the browser or the network. Readings go through the sensor page's
//! [`Throttle`] here, so the list of values to send ([`PhoneState::sent`])
//! is decided in one place and an effect only carries it out.

use std::rc::Rc;
use std::sync::Arc;

use r2_core::scenario::{SensorEvent, Trace};
use r2_core::throttle::Throttle;
use serde_json::{json, Value};
use yew::Reducible;

/// How long to wait for a first reading before saying there is no sensor.
pub const DEFAULT_SENSOR_WAIT_MS: u32 = 3000;
/// The WebApp's colour buttons: one value in each colour band.
pub const COLOUR_BUTTONS: [i64; 5] = [10, 80, 150, 230, 290];
/// A recording stops by itself after this long (2 minutes at 60 Hz is
/// 7200 readings).
pub const MAX_RECORD_MS: f64 = 120_000.0;

/// Where this phone's device is on the node.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    /// Choosing a free name, loading the sentant.
    Joining,
    /// The sentant is loaded under this id.
    Live { id: String },
    /// "Leave" was pressed: the sentant is being unloaded.
    Leaving { id: String },
    /// The sentant was unloaded.
    Left,
    /// Could not join, could not leave, or the sentant vanished.
    Failed(String),
}

impl Link {
    fn label(&self) -> &'static str {
        match self {
            Link::Joining => "joining",
            Link::Live { .. } => "live",
            Link::Leaving { .. } => "leaving",
            Link::Left => "left",
            Link::Failed(_) => "failed",
        }
    }
}

/// The phone's subscription to its own `update` signal.
#[derive(Debug, Clone, PartialEq)]
pub enum Subscription {
    /// No socket (not joined, or left).
    Off,
    /// The socket is opening or joining the control topic.
    Connecting,
    /// "Connected" (the control topic joined, the document sent).
    Requested,
    /// The node confirmed the subscription.
    Live,
    /// The socket dropped; it is reopened after a pause.
    Dropped,
    /// The node refused the subscription.
    Refused(String),
}

/// What the browser offers, read once when device mode opens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Environment {
    /// `window.isSecureContext`: sensors need HTTPS (or localhost).
    pub secure: bool,
    /// `DeviceOrientationEvent` exists.
    pub supported: bool,
    /// `DeviceOrientationEvent.requestPermission` exists (iOS): motion must
    /// be enabled from a tap.
    pub needs_permission: bool,
}

/// The answer to `DeviceOrientationEvent.requestPermission()`.
#[derive(Debug, Clone, PartialEq)]
pub enum Permission {
    Granted,
    Denied,
    /// The call failed (e.g. not from a tap), with the browser's reason.
    Failed(String),
}

/// The motion sensor, from the page's point of view.
#[derive(Debug, Clone, PartialEq)]
pub enum Sensor {
    /// Not yet known (before the environment is read).
    Unknown,
    /// Waiting for a tap on "Enable motion" (iOS).
    NeedsTap,
    /// `requestPermission()` was called; no answer yet.
    Asking,
    /// Listening; no reading has arrived yet.
    Listening,
    /// Readings arrive.
    Streaming,
    /// Listening, but no reading came within the wait: probably no gyroscope.
    Missing,
    /// The user refused motion access.
    Denied,
    /// Asking for permission failed.
    PermissionFailed(String),
    /// The page is not a secure context (plain HTTP to another machine).
    Insecure,
    /// The browser has no DeviceOrientation at all.
    Unsupported,
}

impl Sensor {
    fn label(&self) -> &'static str {
        match self {
            Sensor::Unknown => "unknown",
            Sensor::NeedsTap => "needs-tap",
            Sensor::Asking => "asking",
            Sensor::Listening => "listening",
            Sensor::Streaming => "streaming",
            Sensor::Missing => "missing",
            Sensor::Denied => "denied",
            Sensor::PermissionFailed(_) => "permission-failed",
            Sensor::Insecure => "insecure",
            Sensor::Unsupported => "unsupported",
        }
    }

    /// Whether the `deviceorientation` listener should be attached.
    pub fn is_listening(&self) -> bool {
        matches!(
            self,
            Sensor::Listening | Sensor::Streaming | Sensor::Missing
        )
    }

    /// Whether motion cannot be used, so the colour buttons are the way.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Sensor::Missing
                | Sensor::Denied
                | Sensor::PermissionFailed(_)
                | Sensor::Insecure
                | Sensor::Unsupported
        )
    }

    /// Whether a tap on "Enable motion" would help.
    pub fn wants_tap(&self) -> bool {
        matches!(
            self,
            Sensor::NeedsTap | Sensor::Denied | Sensor::PermissionFailed(_)
        )
    }

    /// What to tell the user, if anything.
    pub fn message(&self, wait_ms: u32) -> Option<String> {
        let buttons = "Meanwhile, use the colour buttons.";
        Some(match self {
            Sensor::Unknown | Sensor::Asking | Sensor::Listening | Sensor::Streaming => {
                return None
            }
            Sensor::NeedsTap => "Tap \u{201c}Enable motion\u{201d} to let this page read the phone's orientation.".to_owned(),
            Sensor::Missing => format!(
                "No orientation readings arrived within {:.1} s: this device seems to have no motion sensor. Use the colour buttons instead.",
                f64::from(wait_ms) / 1000.0
            ),
            Sensor::Denied => format!(
                "Motion access was denied. To allow it, open this link again and tap \u{201c}Allow\u{201d} (on iOS, Settings \u{203a} Safari \u{203a} Motion & Orientation Access must be on). {buttons}"
            ),
            Sensor::PermissionFailed(why) => format!("Could not ask for motion access ({why}). {buttons}"),
            Sensor::Insecure => format!(
                "Motion sensors need a secure page, and this one is plain HTTP: open the HTTPS link (https://\u{2026}:4005/stresstest/\u{2026}) and accept the certificate once. {buttons}"
            ),
            Sensor::Unsupported => format!("This browser does not report device orientation. {buttons}"),
        })
    }
}

/// Recording the orientation trace.
#[derive(Debug, Clone, PartialEq)]
pub enum Recording {
    Off,
    /// Readings so far; times relative to the first.
    On {
        first_ms: Option<f64>,
        events: Vec<SensorEvent>,
    },
    /// The last recording, checked and saved.
    Saved(Arc<Trace>),
    /// The recording could not make a trace (e.g. no readings).
    Failed(String),
}

/// Settings device mode reads from its URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The node's base URL (`http(s)://host:port`).
    pub node: String,
    /// How long a request may take, ms.
    pub timeout_ms: u32,
    /// What this phone's sentant name starts with (the run's prefix).
    pub prefix: String,
    /// How long to wait for a first reading before saying there is no sensor.
    pub sensor_wait_ms: u32,
    /// A problem with the URL's settings (defaults were used instead).
    pub problem: Option<String>,
}

/// The name prefix when the URL gives none: still an r2-stress name.
pub const DEFAULT_PREFIX: &str = "r2s-";
/// The longest prefix accepted from the URL.
const MAX_PREFIX_LEN: usize = 48;
/// Characters of the random part of the name.
pub const SUFFIX_LEN: usize = 5;

impl Settings {
    /// Reads `run`, `node`, `timeout_ms` and `sensor_wait_ms` from a query
    /// string (without `?`); `origin` is the node when none is given.
    pub fn from_query(query: &str, origin: &str) -> Settings {
        let mut problems = Vec::new();
        let config = r2_core::config::RunConfig::from_query(query).unwrap_or_else(|e| {
            problems.push(e.to_string());
            Default::default()
        });
        let mut settings = Settings {
            node: config.node.unwrap_or_else(|| origin.to_owned()),
            timeout_ms: config.timeout_ms,
            prefix: DEFAULT_PREFIX.to_owned(),
            sensor_wait_ms: DEFAULT_SENSOR_WAIT_MS,
            problem: None,
        };
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "run" => match checked_prefix(&value) {
                    Some(prefix) => settings.prefix = prefix,
                    None => problems.push(format!(
                        "run: {value:?} is not a name prefix (letters, digits and '-', at most {MAX_PREFIX_LEN})"
                    )),
                },
                "sensor_wait_ms" => match value.trim().parse::<u32>() {
                    Ok(ms) if (100..=600_000).contains(&ms) => settings.sensor_wait_ms = ms,
                    _ => problems.push(format!(
                        "sensor_wait_ms: {value:?} is not a whole number of ms from 100 to 600000"
                    )),
                },
                _ => {}
            }
        }
        if !problems.is_empty() {
            settings.problem = Some(problems.join("; "));
        }
        settings
    }

    /// This phone's sentant name: the prefix, `phone-` and a random suffix
    /// drawn from `random` (base36). It has one more `-` part than a virtual
    /// device's name, so a run's clean-up never takes it for one of its own.
    pub fn device_name(&self, random: u64) -> String {
        const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let mut value = random;
        let suffix: String = (0..SUFFIX_LEN)
            .map(|_| {
                let digit = DIGITS[(value % 36) as usize];
                value /= 36;
                char::from(digit)
            })
            .collect();
        format!("{}phone-{suffix}", self.prefix)
    }
}

/// A prefix from the URL, if it is made of letters, digits and `-` only.
fn checked_prefix(value: &str) -> Option<String> {
    let value = value.trim();
    let fine = !value.is_empty()
        && value.len() <= MAX_PREFIX_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    fine.then(|| {
        if value.ends_with('-') {
            value.to_owned()
        } else {
            format!("{value}-")
        }
    })
}

/// Everything device mode shows and does.
#[derive(Debug, Clone, PartialEq)]
pub struct PhoneState {
    pub sensor_wait_ms: u32,
    pub link: Link,
    /// Bumped by "Join again": the join effect runs once per attempt.
    pub join_attempt: u32,
    pub name: Option<String>,
    pub subscription: Subscription,
    /// Bumped when the socket must be opened again.
    pub socket_epoch: u32,
    pub sensor: Sensor,
    throttle: Throttle,
    /// Every value this phone decided to send, in order (each is sent as
    /// `set_sensor` then `update`).
    pub sent: Vec<i64>,
    /// The last value the node signalled back.
    pub signalled: Option<i64>,
    pub signals: u64,
    /// The last reading's `floor(alpha)` (shown while not yet sent).
    pub reading: Option<i64>,
    /// Requests that failed, and the last reason.
    pub errors: u64,
    pub last_error: Option<String>,
    /// The user switched the colour buttons on.
    pub buttons_chosen: bool,
    pub recording: Recording,
    /// Bumped each time a recording is saved.
    pub recordings: u32,
}

/// What happens to device mode.
#[derive(Debug, Clone, PartialEq)]
pub enum PhoneAction {
    /// The browser's abilities, read on open.
    Environment(Environment),
    /// The join chose this name.
    Naming(String),
    Joined {
        id: String,
    },
    JoinFailed(String),
    /// "Leave" pressed.
    Leave,
    Left,
    LeaveFailed(String),
    /// "Join again" pressed.
    Rejoin,
    /// The node no longer knows the sentant.
    Gone,
    SocketOpened,
    /// The control topic is joined: "connected".
    SocketConnected,
    Subscribed,
    SubscriptionRefused(String),
    SocketClosed,
    /// A signal from the node, with its sensor value if it had one.
    Signal(Option<i64>),
    RequestFailed(String),
    /// "Enable motion" tapped: `requestPermission()` called.
    AskPermission,
    Permission(Permission),
    /// A `deviceorientation` event: its `alpha` (`None` when the browser
    /// has no reading) and its time stamp in ms.
    Reading {
        alpha: Option<f64>,
        t_ms: f64,
    },
    /// The wait for a first reading ran out.
    SensorTimeout,
    /// The "no sensor" switch.
    ShowButtons(bool),
    /// A colour button.
    Tap(i64),
    RecordStart,
    RecordStop,
}

impl PhoneState {
    pub fn new(sensor_wait_ms: u32) -> PhoneState {
        PhoneState {
            sensor_wait_ms,
            link: Link::Joining,
            join_attempt: 1,
            name: None,
            subscription: Subscription::Off,
            socket_epoch: 0,
            sensor: Sensor::Unknown,
            throttle: Throttle::new(),
            sent: Vec::new(),
            signalled: None,
            signals: 0,
            reading: None,
            errors: 0,
            last_error: None,
            buttons_chosen: false,
            recording: Recording::Off,
            recordings: 0,
        }
    }

    /// The sentant's id while it is live (sends and the socket use it).
    pub fn live_id(&self) -> Option<&str> {
        match &self.link {
            Link::Live { id } => Some(id),
            _ => None,
        }
    }

    /// Whether the colour buttons are shown.
    pub fn buttons_shown(&self) -> bool {
        self.buttons_chosen || self.sensor.is_unavailable()
    }

    /// The value the big tile shows: what the node signalled, else the last
    /// value sent, else the current reading.
    pub fn shown_value(&self) -> Option<i64> {
        self.signalled
            .or_else(|| self.sent.last().copied())
            .or(self.reading)
    }

    /// Readings recorded so far (or in the saved trace).
    pub fn recorded(&self) -> usize {
        match &self.recording {
            Recording::On { events, .. } => events.len(),
            Recording::Saved(trace) => trace.events().len(),
            Recording::Off | Recording::Failed(_) => 0,
        }
    }

    /// What to tell the user: the link's trouble first, then the sensor's.
    pub fn message(&self) -> Option<String> {
        let link = match &self.link {
            Link::Failed(why) => Some(why.clone()),
            _ => None,
        };
        let parts: Vec<String> = link
            .into_iter()
            .chain(self.sensor.message(self.sensor_wait_ms))
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }

    /// Whether the message reports a problem (not just a step to take).
    pub fn is_trouble(&self) -> bool {
        matches!(self.link, Link::Failed(_)) || self.sensor.is_unavailable()
    }

    /// What device mode did, as JSON (for `#r2-phone`, read by tests and scripts).
    pub fn report(&self) -> Value {
        json!({
            "state": self.link.label(),
            "id": self.live_id(),
            "name": self.name,
            "sent": self.sent,
            "signals": self.signals,
            "signalled": self.signalled,
            "subscribed": self.subscription == Subscription::Live,
            "sensor": self.sensor.label(),
            "buttons": self.buttons_shown(),
            "recorded": self.recorded(),
            "errors": self.errors,
            "last_error": self.last_error,
            "message": self.message(),
        })
    }

    fn on_reading(&mut self, alpha: Option<f64>, t_ms: f64) {
        let Some(alpha) = alpha.filter(|a| a.is_finite()) else {
            // Desktop browsers fire one event of nulls: not a reading.
            return;
        };
        if self.sensor.is_listening() {
            self.sensor = Sensor::Streaming;
        }
        self.reading = Some(alpha.floor() as i64);
        self.record(alpha, t_ms);
        if self.live_id().is_some() {
            if let Some(value) = self.throttle.offer(alpha, t_ms) {
                self.sent.push(value);
            }
        }
    }

    fn record(&mut self, alpha: f64, t_ms: f64) {
        let Recording::On { first_ms, events } = &mut self.recording else {
            return;
        };
        let first = *first_ms.get_or_insert(t_ms);
        // Time stamps never go backwards in one page; clamp in case they do.
        let since = (t_ms - first).max(events.last().map_or(0.0, |e| e.t_ms));
        events.push(SensorEvent { t_ms: since, alpha });
        if since >= MAX_RECORD_MS {
            self.stop_recording();
        }
    }

    fn stop_recording(&mut self) {
        let Recording::On { events, .. } = std::mem::replace(&mut self.recording, Recording::Off)
        else {
            return;
        };
        self.recording = match Trace::new(events) {
            Ok(trace) => {
                self.recordings += 1;
                Recording::Saved(Arc::new(trace))
            }
            Err(e) => Recording::Failed(format!(
                "nothing to save: {e} (no orientation readings arrived while recording)"
            )),
        };
    }

    fn fail_request(&mut self, why: String) {
        self.errors += 1;
        self.last_error = Some(why);
    }
}

impl Reducible for PhoneState {
    type Action = PhoneAction;

    fn reduce(self: Rc<Self>, action: PhoneAction) -> Rc<Self> {
        let mut next = (*self).clone();
        match action {
            PhoneAction::Environment(env) => {
                next.sensor = if !env.secure {
                    Sensor::Insecure
                } else if !env.supported {
                    Sensor::Unsupported
                } else if env.needs_permission {
                    Sensor::NeedsTap
                } else {
                    Sensor::Listening
                };
            }
            PhoneAction::Naming(name) => next.name = Some(name),
            PhoneAction::Joined { id } => {
                if next.link == Link::Joining {
                    next.link = Link::Live { id };
                    next.subscription = Subscription::Connecting;
                    next.throttle = Throttle::new();
                }
            }
            PhoneAction::JoinFailed(why) => {
                next.link = Link::Failed(format!("Could not join the node: {why}"))
            }
            PhoneAction::Leave => {
                if let Link::Live { id } = &next.link {
                    next.link = Link::Leaving { id: id.clone() };
                    next.subscription = Subscription::Off;
                }
            }
            PhoneAction::Left => {
                next.link = Link::Left;
                next.subscription = Subscription::Off;
            }
            PhoneAction::LeaveFailed(why) => {
                next.link = Link::Failed(format!("Could not leave: {why}"));
                next.subscription = Subscription::Off;
            }
            PhoneAction::Rejoin => {
                if matches!(next.link, Link::Left | Link::Failed(_)) {
                    next.link = Link::Joining;
                    next.name = None;
                    next.join_attempt += 1;
                }
            }
            PhoneAction::Gone => {
                if next.live_id().is_some() {
                    next.link = Link::Failed(
                        "This device's sentant is no longer on the node (was it deleted?). Join again to carry on.".to_owned(),
                    );
                    next.subscription = Subscription::Off;
                }
            }
            PhoneAction::SocketOpened => {}
            PhoneAction::SocketConnected => {
                if next.live_id().is_some() {
                    next.subscription = Subscription::Requested;
                }
            }
            PhoneAction::Subscribed => {
                if next.live_id().is_some() {
                    next.subscription = Subscription::Live;
                }
            }
            PhoneAction::SubscriptionRefused(why) => {
                next.subscription = Subscription::Refused(why.clone());
                next.fail_request(format!("subscription refused: {why}"));
            }
            PhoneAction::SocketClosed => {
                if next.live_id().is_some()
                    && !matches!(next.subscription, Subscription::Refused(_))
                {
                    next.subscription = Subscription::Dropped;
                    next.socket_epoch += 1;
                }
            }
            PhoneAction::Signal(value) => {
                next.signals += 1;
                if value.is_some() {
                    next.signalled = value;
                }
            }
            PhoneAction::RequestFailed(why) => next.fail_request(why),
            PhoneAction::AskPermission => next.sensor = Sensor::Asking,
            PhoneAction::Permission(answer) => {
                next.sensor = match answer {
                    Permission::Granted => Sensor::Listening,
                    Permission::Denied => Sensor::Denied,
                    Permission::Failed(why) => Sensor::PermissionFailed(why),
                }
            }
            PhoneAction::Reading { alpha, t_ms } => next.on_reading(alpha, t_ms),
            PhoneAction::SensorTimeout => {
                if next.sensor == Sensor::Listening {
                    next.sensor = Sensor::Missing;
                }
            }
            PhoneAction::ShowButtons(on) => next.buttons_chosen = on,
            PhoneAction::Tap(value) => {
                // The WebApp's buttons send at once, without the throttle.
                if next.live_id().is_some() {
                    next.sent.push(value);
                }
            }
            PhoneAction::RecordStart => {
                next.recording = Recording::On {
                    first_ms: None,
                    events: Vec::new(),
                }
            }
            PhoneAction::RecordStop => next.stop_recording(),
        }
        Rc::new(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(state: PhoneState, actions: impl IntoIterator<Item = PhoneAction>) -> PhoneState {
        let mut state = Rc::new(state);
        for action in actions {
            state = state.reduce(action);
        }
        Rc::try_unwrap(state).unwrap_or_else(|rc| (*rc).clone())
    }

    fn live() -> PhoneState {
        run(
            PhoneState::new(DEFAULT_SENSOR_WAIT_MS),
            [
                PhoneAction::Environment(Environment {
                    secure: true,
                    supported: true,
                    needs_permission: false,
                }),
                PhoneAction::Naming("r2s-x-1-phone-abcde".into()),
                PhoneAction::Joined { id: "u-1".into() },
            ],
        )
    }

    fn reading(alpha: f64, t_ms: f64) -> PhoneAction {
        PhoneAction::Reading {
            alpha: Some(alpha),
            t_ms,
        }
    }

    #[test]
    fn readings_pass_the_throttle_only_while_live() {
        let before = run(
            PhoneState::new(500),
            [
                PhoneAction::Environment(Environment {
                    secure: true,
                    supported: true,
                    needs_permission: false,
                }),
                reading(40.0, 0.0),
            ],
        );
        assert!(before.sent.is_empty(), "not joined yet: nothing sent");
        assert_eq!(before.sensor, Sensor::Streaming);

        let times = [0.0, 16.7, 150.0, 210.0, 300.0, 420.0, 430.0, 700.0];
        let alphas = [10.2, 11.9, 12.0, 12.5, 12.9, 13.1, 14.0, 14.5];
        let state = run(
            live(),
            times.iter().zip(alphas).map(|(t, a)| reading(a, *t)),
        );
        let mut throttle = Throttle::new();
        let expected: Vec<i64> = times
            .iter()
            .zip(alphas)
            .filter_map(|(t, a)| throttle.offer(a, *t))
            .collect();
        assert_eq!(state.sent, expected);
        assert_eq!(state.sent, vec![10, 12, 13, 14]);
        assert_eq!(state.shown_value(), Some(14));
    }

    #[test]
    fn null_readings_are_not_readings() {
        let state = run(
            live(),
            [
                PhoneAction::Reading {
                    alpha: None,
                    t_ms: 0.0,
                },
                PhoneAction::SensorTimeout,
            ],
        );
        assert_eq!(state.sensor, Sensor::Missing);
        assert!(state.buttons_shown());
        let message = state.message().expect("a message");
        assert!(message.contains("no motion sensor") && message.contains("colour buttons"));
        assert!(message.contains("3.0 s"), "{message}");
        // A late first reading still counts.
        let state = run(state, [reading(100.0, 5000.0)]);
        assert_eq!(state.sensor, Sensor::Streaming);
        assert_eq!(state.sent, vec![100]);
        assert_eq!(state.message(), None);
    }

    #[test]
    fn environment_decides_how_motion_starts() {
        let sensor_for = |secure, supported, needs_permission| {
            run(
                PhoneState::new(3000),
                [PhoneAction::Environment(Environment {
                    secure,
                    supported,
                    needs_permission,
                })],
            )
            .sensor
        };
        assert_eq!(sensor_for(false, true, true), Sensor::Insecure);
        assert_eq!(sensor_for(true, false, false), Sensor::Unsupported);
        assert_eq!(sensor_for(true, true, true), Sensor::NeedsTap);
        assert_eq!(sensor_for(true, true, false), Sensor::Listening);
        let insecure = run(
            PhoneState::new(3000),
            [PhoneAction::Environment(Environment {
                secure: false,
                supported: true,
                needs_permission: false,
            })],
        );
        assert!(insecure.message().is_some_and(|m| m.contains("HTTPS")));
        assert!(insecure.buttons_shown());
    }

    #[test]
    fn permission_answers_each_have_their_path() {
        let start = run(
            live(),
            [PhoneAction::Environment(Environment {
                secure: true,
                supported: true,
                needs_permission: true,
            })],
        );
        assert!(start.sensor.wants_tap() && !start.sensor.is_listening());
        assert!(
            start.message().is_some() && !start.is_trouble(),
            "a step, not a problem"
        );
        let denied = run(
            start.clone(),
            [
                PhoneAction::AskPermission,
                PhoneAction::Permission(Permission::Denied),
            ],
        );
        assert_eq!(denied.sensor, Sensor::Denied);
        assert!(denied.message().is_some_and(|m| m.contains("denied")));
        assert!(denied.buttons_shown() && denied.sensor.wants_tap());
        assert!(denied.is_trouble());
        let granted = run(
            start.clone(),
            [
                PhoneAction::AskPermission,
                PhoneAction::Permission(Permission::Granted),
            ],
        );
        assert!(granted.sensor.is_listening() && !granted.buttons_shown());
        let failed = run(
            start,
            [PhoneAction::Permission(Permission::Failed(
                "NotAllowedError".into(),
            ))],
        );
        assert!(failed
            .message()
            .is_some_and(|m| m.contains("NotAllowedError")));
    }

    #[test]
    fn taps_send_at_once_and_only_while_live() {
        let state = run(
            live(),
            [
                PhoneAction::ShowButtons(true),
                PhoneAction::Tap(80),
                PhoneAction::Tap(80),
                PhoneAction::Tap(290),
                PhoneAction::Leave,
                PhoneAction::Tap(10),
            ],
        );
        assert_eq!(state.sent, vec![80, 80, 290]);
        assert_eq!(state.link, Link::Leaving { id: "u-1".into() });
        assert_eq!(state.live_id(), None);
    }

    #[test]
    fn leaving_joining_again_and_vanishing() {
        let left = run(live(), [PhoneAction::Leave, PhoneAction::Left]);
        assert_eq!(left.link, Link::Left);
        assert_eq!(left.report()["state"], "left");
        let again = run(left, [PhoneAction::Rejoin]);
        assert_eq!((again.link.clone(), again.join_attempt), (Link::Joining, 2));
        assert_eq!(again.name, None);
        let gone = run(live(), [PhoneAction::Gone]);
        assert!(gone.message().is_some_and(|m| m.contains("no longer")));
        assert_eq!(
            run(live(), [PhoneAction::Rejoin]).join_attempt,
            1,
            "live: no rejoin"
        );
    }

    #[test]
    fn a_dropped_socket_is_reopened_but_a_refused_one_is_not() {
        let dropped = run(
            live(),
            [PhoneAction::SocketConnected, PhoneAction::SocketClosed],
        );
        assert_eq!(dropped.subscription, Subscription::Dropped);
        assert_eq!(dropped.socket_epoch, 1);
        let refused = run(
            live(),
            [
                PhoneAction::SubscriptionRefused("invalid_signal".into()),
                PhoneAction::SocketClosed,
            ],
        );
        assert_eq!(refused.socket_epoch, 0);
        assert_eq!(refused.errors, 1);
        let subscribed = run(
            live(),
            [PhoneAction::SocketConnected, PhoneAction::Subscribed],
        );
        assert_eq!(subscribed.report()["subscribed"], true);
    }

    #[test]
    fn signals_are_counted_and_shown() {
        let state = run(
            live(),
            [
                PhoneAction::Signal(Some(0)),
                reading(200.5, 0.0),
                PhoneAction::Signal(None),
            ],
        );
        assert_eq!(state.signals, 2);
        assert_eq!(state.signalled, Some(0));
        assert_eq!(state.shown_value(), Some(0), "what the node says wins");
        let report = state.report();
        assert_eq!(report["sent"], json!([200]));
        assert_eq!(report["id"], "u-1");
        assert_eq!(report["name"], "r2s-x-1-phone-abcde");
    }

    #[test]
    fn recording_keeps_readings_relative_to_the_first() {
        let state = run(
            live(),
            [
                reading(1.0, 500.0),
                PhoneAction::RecordStart,
                reading(10.5, 1000.0),
                PhoneAction::Reading {
                    alpha: None,
                    t_ms: 1010.0,
                },
                reading(11.5, 1016.5),
                reading(12.5, 1033.0),
            ],
        );
        assert_eq!(state.recorded(), 3);
        let saved = run(state, [PhoneAction::RecordStop]);
        let Recording::Saved(trace) = &saved.recording else {
            panic!("{:?}", saved.recording)
        };
        let pairs: Vec<(f64, f64)> = trace.events().iter().map(|e| (e.t_ms, e.alpha)).collect();
        assert_eq!(pairs, vec![(0.0, 10.5), (16.5, 11.5), (33.0, 12.5)]);
        assert_eq!(saved.recordings, 1);
        let empty = run(live(), [PhoneAction::RecordStart, PhoneAction::RecordStop]);
        assert!(matches!(empty.recording, Recording::Failed(_)));
        assert_eq!(empty.recordings, 0);
    }

    #[test]
    fn a_long_recording_stops_by_itself() {
        let state = run(
            live(),
            std::iter::once(PhoneAction::RecordStart)
                .chain((0..=2).map(|i| reading(5.0, f64::from(i) * MAX_RECORD_MS / 2.0)))
                .chain([reading(6.0, MAX_RECORD_MS * 2.0)]),
        );
        assert!(matches!(&state.recording, Recording::Saved(t) if t.events().len() == 3));
    }

    #[test]
    fn settings_come_from_the_url() {
        let s = Settings::from_query(
            "device&run=r2s-ab12cd34-2-&node=https%3A%2F%2F10.0.0.5%3A4005&sensor_wait_ms=500",
            "http://127.0.0.1:4006",
        );
        assert_eq!(s.prefix, "r2s-ab12cd34-2-");
        assert_eq!(s.node, "https://10.0.0.5:4005");
        assert_eq!(s.sensor_wait_ms, 500);
        assert_eq!(s.problem, None);
        let name = s.device_name(u64::MAX);
        assert!(name.starts_with("r2s-ab12cd34-2-phone-"), "{name}");
        assert_eq!(name.len(), "r2s-ab12cd34-2-phone-".len() + SUFFIX_LEN);
        assert_ne!(name, s.device_name(7));
        assert!(
            !r2_core::names::is_r2_stress_name(&name),
            "a run's clean-up must not take the phone for a virtual device"
        );

        let plain = Settings::from_query("device", "https://h:4005");
        assert_eq!(
            (plain.prefix.as_str(), plain.node.as_str()),
            (DEFAULT_PREFIX, "https://h:4005")
        );
        assert_eq!(plain.sensor_wait_ms, DEFAULT_SENSOR_WAIT_MS);
        assert_eq!(Settings::from_query("run=abc", "x").prefix, "abc-");

        for bad in [
            "run=a%22b",
            "run=",
            "sensor_wait_ms=5",
            "sensor_wait_ms=x",
            "node=ftp%3A%2F%2Fx",
        ] {
            let s = Settings::from_query(bad, "https://h");
            assert!(s.problem.is_some(), "{bad}");
            assert_eq!(s.prefix, DEFAULT_PREFIX, "{bad}");
            assert!(s.node.starts_with("https://"), "{bad}");
        }
    }
}
