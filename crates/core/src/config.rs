//! A run's configuration, read from (and written to) the page's query string:
//! `?node=URL&devices=N&profile=webapp|lean|seed&scenario=sweep|rotate|taps|replay&herd=1&duration=S&sockets=per-device|shared|none&reconnect=phoenix|webapp&assets=1&join_rate=R&seed=K&autostart=1&keep=1&max_p99_ms=..&max_error_pct=..`.
//!
//! `sockets=none` without a `profile` means the seed's script
//! ([`Profile::Seed`]); a profile that holds sockets cannot be run without them.
//!
//! Values are percent-decoded (`form_urlencoded`). Unknown parameters are
//! ignored (the page may carry others); a repeated one takes its last value; a
//! flag given without a value (`?autostart`) is on. Every refused value names
//! its parameter. [`RunConfig::validate`] holds the range rules, so the page's
//! form and the query string are checked alike.

use serde::{Deserialize, Serialize};

use crate::gate::{MAX_FETCH_SLOTS, TAB_FETCH_CAP};
use crate::plan::Starts;
use crate::profile::{Profile, Reconnect};
use crate::scenario::ScenarioKind;
use crate::text::UnknownWord;

/// The most devices one tab may simulate.
pub const MAX_DEVICES: u32 = 20_000;
/// The longest run, in seconds (24 h).
pub const MAX_DURATION_S: f64 = 86_400.0;
/// The fastest join rate accepted, devices per second.
pub const MAX_JOIN_RATE: f64 = 10_000.0;

word_enum! {
    /// How the devices send their values.
    #[derive(Default)]
    pub enum Transport {
        /// GraphQL over HTTP (`POST /reality2`), as the WebApp sends them.
        #[default]
        Http = "http",
        /// Each mutation as an Absinthe `doc` frame on a socket the device
        /// already holds, answered in the frame's reply (the real node's
        /// channel accepts them): not the WebApp's wire shape.
        Socket = "socket",
    }
}

word_enum! {
    /// How the page makes each GraphQL request over HTTP: the same request on
    /// the wire either way.
    #[derive(Default)]
    pub enum HttpPath {
        /// `gloo-net`'s `Request` builder: a `Request`, its `Headers` and an
        /// `AbortController` with a timer per request.
        #[default]
        Gloo = "gloo",
        /// `fetch(url, init)` with one header set shared by every request and
        /// one `AbortSignal.timeout` per batch of requests started together.
        Lean = "lean",
    }
}

word_enum! {
    /// How the simulated devices hold their subscriptions.
    #[derive(Default)]
    pub enum SocketsMode {
        /// One websocket per device, as each phone's page does.
        #[default]
        PerDevice = "per-device",
        /// One websocket carrying every device's subscription.
        Shared = "shared",
        /// No subscriptions: sends only, like the seed's Python test.
        None = "none",
    }
}

/// Limits a run must stay within to pass.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Thresholds {
    /// Highest acceptable p99 of the corrected send and signal latencies, ms.
    pub max_p99_ms: Option<f64>,
    /// Highest acceptable share of failed sends, percent.
    pub max_error_pct: Option<f64>,
}

/// The most projector pages a run simulates.
pub const MAX_VIEWERS: u32 = 50;
/// The most Web Workers one run's devices are split over
/// ([`crate::shard`]).
pub const MAX_WORKERS: u32 = 8;
/// How long a request may take by default before it counts as failed, ms.
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;

/// Everything that defines a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The node's base URL (`https://host:4005`); `None` = the page's own origin.
    pub node: Option<String>,
    pub devices: u32,
    /// What kind of client each device is.
    pub profile: Profile,
    pub scenario: ScenarioKind,
    /// Start every device's scenario at the same instant, not each at its
    /// own offset ([`Starts`]).
    pub herd: bool,
    pub duration_s: f64,
    pub sockets: SocketsMode,
    /// What a device does when its socket drops.
    pub reconnect: Reconnect,
    /// Download the WebApp's page assets on each page load (`webapp`).
    pub assets: bool,
    /// Devices joining per second.
    pub join_rate: f64,
    pub seed: u64,
    /// Start as soon as the page loads.
    pub autostart: bool,
    /// Leave the devices on the node after the run.
    pub keep: bool,
    /// Load a device's sentant again when it vanished from the node.
    pub recreate: bool,
    /// Projector pages to simulate, each as the WebApp's view page; `None`:
    /// the profile's default (see [`RunConfig::viewers`]).
    pub viewers: Option<u32>,
    /// How long a request may take before it counts as failed, ms (not used
    /// with `reconnect=webapp`: the WebApp never times a request out).
    pub timeout_ms: u32,
    /// How the devices send their values (and `update`s).
    pub transport: Transport,
    /// How each HTTP request is made in the page (`http=lean` or `gloo`).
    pub http: HttpPath,
    /// Web Workers the run engine runs in, its devices split between them
    /// ([`crate::shard`]): `None` (`workers=auto`, the default) chooses from
    /// the device count and the machine's cores
    /// ([`crate::shard::auto_workers`]); `Some(0)` runs the engine on the
    /// page's main thread, as before it moved; `Some(k)` in `k` workers.
    /// Any worker keeps the page's main thread free for drawing.
    pub workers: Option<u32>,
    /// HTTP requests the tab may have in flight at once, its engines
    /// together ([`crate::gate`]); `None`: [`TAB_FETCH_CAP`], under what
    /// Chromium lets a renderer process have. More wait for a slot.
    pub fetch_slots: Option<u32>,
    pub thresholds: Thresholds,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            node: None,
            devices: 10,
            profile: Profile::WebApp,
            scenario: ScenarioKind::Sweep,
            herd: false,
            duration_s: 30.0,
            sockets: SocketsMode::PerDevice,
            reconnect: Reconnect::Phoenix,
            assets: false,
            join_rate: 10.0,
            seed: 1,
            autostart: false,
            keep: false,
            recreate: false,
            viewers: None,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            workers: None,
            fetch_slots: None,
            transport: Transport::Http,
            http: HttpPath::Gloo,
            thresholds: Thresholds::default(),
        }
    }
}

/// Why a configuration was refused; each names the parameter.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("{field}: {value:?} is not a number")]
    NotNumber {
        field: &'static str,
        value: String,
        #[source]
        source: std::num::ParseFloatError,
    },
    #[error("{field}: {value:?} is not a whole number")]
    NotWhole {
        field: &'static str,
        value: String,
        #[source]
        source: std::num::ParseIntError,
    },
    #[error("{field}: {value} {why}")]
    OutOfRange {
        field: &'static str,
        value: String,
        why: String,
    },
    #[error("{field}: {source}")]
    NotOneOf {
        field: &'static str,
        #[source]
        source: UnknownWord,
    },
    #[error("node: {value:?} is not an http:// or https:// URL with a host")]
    BadNode { value: String },
    #[error("sockets: none does not fit profile={profile}: its devices hold sockets (profile=seed sends without any)")]
    ProfileWithoutSockets { profile: Profile },
    #[error("transport=socket sends on the devices' sockets: it needs sockets=per-device or sockets=shared, and a profile with sockets (not seed)")]
    SocketTransportWithoutSockets,
}

fn out_of_range(field: &'static str, value: impl ToString, why: impl Into<String>) -> ConfigError {
    ConfigError::OutOfRange {
        field,
        value: value.to_string(),
        why: why.into(),
    }
}

fn parse_f64(field: &'static str, value: &str) -> Result<f64, ConfigError> {
    let number: f64 = value
        .trim()
        .parse()
        .map_err(|source| ConfigError::NotNumber {
            field,
            value: value.to_owned(),
            source,
        })?;
    if number.is_finite() {
        Ok(number)
    } else {
        Err(out_of_range(field, value, "must be a finite number"))
    }
}

fn parse_u64(field: &'static str, value: &str) -> Result<u64, ConfigError> {
    let value = value.trim();
    value.parse().map_err(|source| {
        if value.starts_with('-') && value[1..].bytes().all(|b| b.is_ascii_digit()) {
            out_of_range(field, value, "must not be negative")
        } else {
            ConfigError::NotWhole {
                field,
                value: value.to_owned(),
                source,
            }
        }
    })
}

fn parse_word<T: std::str::FromStr<Err = UnknownWord>>(
    field: &'static str,
    value: &str,
) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|source| ConfigError::NotOneOf { field, source })
}

fn parse_flag(field: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim() {
        "" | "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(ConfigError::NotOneOf {
            field,
            source: UnknownWord {
                value: other.to_owned(),
                allowed: &["1", "0", "true", "false", "yes", "no", "on", "off"],
            },
        }),
    }
}

/// A node URL: trimmed, without trailing slashes; empty means the page's origin.
fn parse_node(value: &str) -> Result<Option<String>, ConfigError> {
    let node = value.trim().trim_end_matches('/');
    if node.is_empty() {
        return Ok(None);
    }
    check_node(node)?;
    Ok(Some(node.to_owned()))
}

fn check_node(node: &str) -> Result<(), ConfigError> {
    let lower = node.to_ascii_lowercase();
    let host = ["http://", "https://"]
        .iter()
        .find_map(|scheme| lower.strip_prefix(scheme));
    match host {
        Some(rest)
            if !rest.is_empty()
                && !rest.starts_with(['/', ':', '?', '#'])
                && !rest.contains(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => Err(ConfigError::BadNode {
            value: node.to_owned(),
        }),
    }
}

/// The origin (`scheme://host:port`, lower case, default ports written out)
/// of an http(s) URL; `None` for anything else.
pub fn origin_of(url: &str) -> Option<String> {
    let lower = url.trim().to_ascii_lowercase();
    let (scheme, rest) = lower.split_once("://")?;
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let (host, port) = match host_port.rsplit_once(':') {
        // An IPv6 literal's colons are inside brackets.
        Some((host, port)) if !port.contains(']') => (host, port.parse::<u16>().ok()?),
        _ => (host_port, default_port),
    };
    (!host.is_empty()).then(|| format!("{scheme}://{host}:{port}"))
}

impl RunConfig {
    /// Whether an `autostart` link must ask before it runs: its node is
    /// not the page's own origin (a link could aim a class's load at any
    /// server the reader's browser can reach).
    pub fn autostart_needs_consent(&self, page_origin: &str) -> bool {
        match &self.node {
            Some(node) => self.autostart && origin_of(node) != origin_of(page_origin),
            None => false,
        }
    }

    /// Reads a query string (with or without the leading `?`) over the defaults.
    pub fn from_query(query: &str) -> Result<RunConfig, ConfigError> {
        let query = query.strip_prefix('?').unwrap_or(query);
        let mut c = RunConfig::default();
        let mut profile_given = false;
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let value = value.as_ref();
            match key.as_ref() {
                "node" => c.node = parse_node(value)?,
                "devices" => {
                    let n = parse_u64("devices", value)?;
                    c.devices = u32::try_from(n)
                        .map_err(|_| out_of_range("devices", n, too_many_devices()))?;
                }
                "profile" => {
                    c.profile = parse_word("profile", value)?;
                    profile_given = true;
                }
                "reconnect" => c.reconnect = parse_word("reconnect", value)?,
                "assets" => c.assets = parse_flag("assets", value)?,
                "scenario" => c.scenario = parse_word("scenario", value)?,
                "herd" => c.herd = parse_flag("herd", value)?,
                "transport" => c.transport = parse_word("transport", value)?,
                "http" => c.http = parse_word("http", value)?,
                "duration" => c.duration_s = parse_f64("duration", value)?,
                "sockets" => c.sockets = parse_word("sockets", value)?,
                "join_rate" => c.join_rate = parse_f64("join_rate", value)?,
                "seed" => c.seed = parse_u64("seed", value)?,
                "autostart" => c.autostart = parse_flag("autostart", value)?,
                "keep" => c.keep = parse_flag("keep", value)?,
                "recreate" => c.recreate = parse_flag("recreate", value)?,
                "viewers" => {
                    let n = parse_u64("viewers", value)?;
                    c.viewers = Some(
                        u32::try_from(n)
                            .ok()
                            .filter(|n| *n <= MAX_VIEWERS)
                            .ok_or_else(|| {
                                out_of_range("viewers", n, format!("must be at most {MAX_VIEWERS}"))
                            })?,
                    );
                }
                "timeout_ms" => {
                    let ms = parse_u64("timeout_ms", value)?;
                    c.timeout_ms = u32::try_from(ms)
                        .ok()
                        .filter(|ms| (100..=600_000).contains(ms))
                        .ok_or_else(|| {
                            out_of_range("timeout_ms", ms, "must be from 100 to 600000 ms")
                        })?;
                }
                "workers" if value.trim() == "auto" => c.workers = None,
                "workers" => {
                    let n = parse_u64("workers", value)?;
                    c.workers = Some(
                        u32::try_from(n)
                            .ok()
                            .filter(|n| *n <= MAX_WORKERS)
                            .ok_or_else(|| {
                                out_of_range(
                                    "workers",
                                    n,
                                    format!("must be auto, 0 (the page's main thread) or 1 to {MAX_WORKERS} (Web Workers)"),
                                )
                            })?,
                    );
                }
                "fetch_slots" => {
                    let n = parse_u64("fetch_slots", value)?;
                    c.fetch_slots = Some(
                        u32::try_from(n)
                            .ok()
                            .filter(|n| (1..=MAX_FETCH_SLOTS).contains(n))
                            .ok_or_else(|| {
                                out_of_range(
                                    "fetch_slots",
                                    n,
                                    format!("must be from 1 to {MAX_FETCH_SLOTS} (Chromium refuses a renderer's requests past a limit: 2,000 devices lost requests with more than 1,280 in flight)"),
                                )
                            })?,
                    );
                }
                "max_p99_ms" => c.thresholds.max_p99_ms = Some(parse_f64("max_p99_ms", value)?),
                "max_error_pct" => {
                    c.thresholds.max_error_pct = Some(parse_f64("max_error_pct", value)?)
                }
                _ => {}
            }
        }
        if c.sockets == SocketsMode::None && !profile_given {
            c.profile = Profile::Seed;
        }
        c.validate()?;
        Ok(c)
    }

    /// How the devices' scenarios start.
    pub fn starts(&self) -> Starts {
        if self.herd {
            Starts::Herd
        } else {
            Starts::Spread
        }
    }

    /// Projector pages the run simulates: as given, else the profile's default.
    pub fn viewers(&self) -> u32 {
        self.viewers
            .unwrap_or_else(|| self.profile.default_viewers())
    }

    /// How long a request may take before it counts as failed; `None` as the
    /// WebApp (`reconnect=webapp`), which never times a request out.
    pub fn request_timeout_ms(&self) -> Option<u32> {
        (self.reconnect == Reconnect::Phoenix).then_some(self.timeout_ms)
    }

    /// HTTP requests the tab may have in flight at once ([`RunConfig::fetch_slots`]).
    pub fn fetch_slots(&self) -> u32 {
        self.fetch_slots.unwrap_or(TAB_FETCH_CAP)
    }

    /// Whether the run engine runs on the page's main thread (`workers=0`).
    pub fn on_main_thread(&self) -> bool {
        self.workers == Some(0)
    }

    /// The Web Workers the engine runs in on a machine with
    /// `hardware_concurrency` logical cores (0: the page's main thread).
    pub fn engine_workers(&self, hardware_concurrency: u32) -> u32 {
        self.workers
            .unwrap_or_else(|| crate::shard::auto_workers(&self.load(), hardware_concurrency))
    }

    /// How the devices hold their subscriptions: a profile without sockets
    /// holds none, whatever `sockets` says.
    pub fn sockets_mode(&self) -> SocketsMode {
        if self.profile.has_sockets() {
            self.sockets
        } else {
            SocketsMode::None
        }
    }

    /// The load this run puts on a node, as its profile makes it.
    pub fn load(&self) -> crate::profile::Load {
        crate::profile::Load::new(
            self.profile,
            self.sockets_mode(),
            self.devices,
            self.viewers(),
        )
    }

    /// Checks every value's range (for the page's form, and after parsing).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(node) = &self.node {
            check_node(node)?;
        }
        if self.sockets == SocketsMode::None && self.profile.has_sockets() {
            return Err(ConfigError::ProfileWithoutSockets {
                profile: self.profile,
            });
        }
        if self.transport == Transport::Socket && self.sockets_mode() == SocketsMode::None {
            return Err(ConfigError::SocketTransportWithoutSockets);
        }
        if self.devices == 0 || self.devices > MAX_DEVICES {
            return Err(out_of_range("devices", self.devices, too_many_devices()));
        }
        let d = self.duration_s;
        if !(d.is_finite() && d > 0.0 && d <= MAX_DURATION_S) {
            return Err(out_of_range(
                "duration",
                d,
                format!("must be more than 0 and at most {MAX_DURATION_S} s (24 h)"),
            ));
        }
        let r = self.join_rate;
        if !(r.is_finite() && r > 0.0 && r <= MAX_JOIN_RATE) {
            return Err(out_of_range(
                "join_rate",
                r,
                format!("must be more than 0 and at most {MAX_JOIN_RATE} devices/s"),
            ));
        }
        if let Some(p) = self.thresholds.max_p99_ms {
            if !(p.is_finite() && p > 0.0) {
                return Err(out_of_range("max_p99_ms", p, "must be more than 0 ms"));
            }
        }
        if let Some(p) = self.thresholds.max_error_pct {
            if !(p.is_finite() && (0.0..=100.0).contains(&p)) {
                return Err(out_of_range("max_error_pct", p, "must be from 0 to 100"));
            }
        }
        Ok(())
    }

    /// The query string (without `?`) that gives this configuration back,
    /// for sharing a run link.
    pub fn to_query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(node) = &self.node {
            q.append_pair("node", node);
        }
        q.append_pair("devices", &self.devices.to_string())
            .append_pair("profile", self.profile.as_str())
            .append_pair("scenario", self.scenario.as_str())
            .append_pair("duration", &self.duration_s.to_string())
            .append_pair("sockets", self.sockets.as_str())
            .append_pair("join_rate", &self.join_rate.to_string())
            .append_pair("seed", &self.seed.to_string());
        if let Some(viewers) = self.viewers {
            q.append_pair("viewers", &viewers.to_string());
        }
        if self.reconnect != Reconnect::default() {
            q.append_pair("reconnect", self.reconnect.as_str());
        }
        if self.timeout_ms != DEFAULT_TIMEOUT_MS {
            q.append_pair("timeout_ms", &self.timeout_ms.to_string());
        }
        if self.transport != Transport::default() {
            q.append_pair("transport", self.transport.as_str());
        }
        if self.http != HttpPath::default() {
            q.append_pair("http", self.http.as_str());
        }
        if let Some(workers) = self.workers {
            q.append_pair("workers", &workers.to_string());
        }
        if let Some(slots) = self.fetch_slots {
            q.append_pair("fetch_slots", &slots.to_string());
        }
        for (flag, on) in [
            ("autostart", self.autostart),
            ("herd", self.herd),
            ("assets", self.assets),
            ("keep", self.keep),
            ("recreate", self.recreate),
        ] {
            if on {
                q.append_pair(flag, "1");
            }
        }
        let limits = [
            ("max_p99_ms", self.thresholds.max_p99_ms),
            ("max_error_pct", self.thresholds.max_error_pct),
        ];
        for (name, limit) in limits {
            if let Some(limit) = limit {
                q.append_pair(name, &limit.to_string());
            }
        }
        q.finish()
    }
}

fn too_many_devices() -> String {
    format!("must be from 1 to {MAX_DEVICES}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(err: &ConfigError) -> &'static str {
        match err {
            ConfigError::NotNumber { field, .. }
            | ConfigError::NotWhole { field, .. }
            | ConfigError::OutOfRange { field, .. }
            | ConfigError::NotOneOf { field, .. } => field,
            ConfigError::BadNode { .. } => "node",
            ConfigError::ProfileWithoutSockets { .. } => "sockets",
            ConfigError::SocketTransportWithoutSockets => "transport",
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = RunConfig::from_query("").expect("defaults are valid");
        assert_eq!(c, RunConfig::default());
        assert_eq!(
            (
                c.devices,
                c.scenario,
                c.duration_s,
                c.sockets,
                c.join_rate,
                c.seed
            ),
            (
                10,
                ScenarioKind::Sweep,
                30.0,
                SocketsMode::PerDevice,
                10.0,
                1
            )
        );
        assert_eq!((c.node, c.autostart, c.keep), (None, false, false));
    }

    #[test]
    fn every_parameter_is_read_and_percent_decoded() {
        let c = RunConfig::from_query(
            "?node=https%3A%2F%2Fr2.example%3A4005%2F&devices=250&scenario=rotate&duration=90.5\
             &sockets=shared&join_rate=2.5&seed=18446744073709551615&autostart=1&keep=true\
             &max_p99_ms=250&max_error_pct=0.5&unrelated=x&herd",
        )
        .expect("valid");
        assert_eq!(c.node.as_deref(), Some("https://r2.example:4005"));
        assert_eq!(
            (c.devices, c.scenario, c.duration_s),
            (250, ScenarioKind::Rotate, 90.5)
        );
        assert_eq!(
            (c.sockets, c.join_rate, c.seed),
            (SocketsMode::Shared, 2.5, u64::MAX)
        );
        assert!(c.autostart && c.keep && c.herd);
        assert_eq!(c.starts(), Starts::Herd);
        assert_eq!(RunConfig::default().starts(), Starts::Spread);
        assert_eq!(
            c.thresholds,
            Thresholds {
                max_p99_ms: Some(250.0),
                max_error_pct: Some(0.5)
            }
        );
        assert_eq!(
            RunConfig::from_query("autostart&keep=0").map(|c| (c.autostart, c.keep)),
            Ok((true, false))
        );
        assert_eq!(RunConfig::from_query("node=").map(|c| c.node), Ok(None));
    }

    #[test]
    fn profiles_set_their_defaults() {
        let c = RunConfig::from_query("").expect("defaults");
        assert_eq!(
            (c.profile, c.viewers(), c.request_timeout_ms()),
            (Profile::WebApp, 1, Some(DEFAULT_TIMEOUT_MS))
        );
        let lean = RunConfig::from_query("profile=lean").expect("lean");
        assert_eq!(lean.viewers(), 0);
        let seed = RunConfig::from_query("sockets=none").expect("the seed's script");
        assert_eq!(
            (seed.profile, seed.sockets_mode()),
            (Profile::Seed, SocketsMode::None)
        );
        let seed = RunConfig::from_query("profile=seed").expect("seed");
        assert_eq!(seed.sockets_mode(), SocketsMode::None);
        let webapp = RunConfig::from_query("reconnect=webapp&viewers=0&assets").expect("webapp");
        assert_eq!(
            (webapp.viewers(), webapp.request_timeout_ms(), webapp.assets),
            (0, None, true)
        );
    }

    #[test]
    fn to_query_round_trips() {
        let mut c = RunConfig {
            node: Some("http://10.0.0.2:4006".into()),
            devices: 20_000,
            profile: Profile::Seed,
            scenario: ScenarioKind::Replay,
            herd: true,
            duration_s: 0.25,
            sockets: SocketsMode::None,
            reconnect: Reconnect::WebApp,
            assets: true,
            join_rate: 1e-3,
            seed: 0,
            autostart: true,
            keep: false,
            recreate: true,
            viewers: Some(3),
            timeout_ms: 2500,
            workers: Some(0),
            fetch_slots: Some(16),
            transport: Transport::Http,
            http: HttpPath::Lean,
            thresholds: Thresholds {
                max_p99_ms: Some(99.9),
                max_error_pct: None,
            },
        };
        assert_eq!(RunConfig::from_query(&c.to_query()), Ok(c.clone()));
        c.node = Some("https://h/path?a=1&b=2".into());
        assert_eq!(RunConfig::from_query(&c.to_query()), Ok(c.clone()));
        assert_eq!(
            RunConfig::from_query(&RunConfig::default().to_query()),
            Ok(RunConfig::default())
        );
        let socket = RunConfig::from_query("profile=lean&transport=socket").expect("valid");
        assert_eq!(socket.transport, Transport::Socket);
        assert_eq!(RunConfig::from_query(&socket.to_query()), Ok(socket));
    }

    #[test]
    fn the_socket_transport_needs_sockets() {
        for query in [
            "transport=socket&sockets=none",
            "transport=socket&profile=seed",
        ] {
            assert_eq!(
                RunConfig::from_query(query),
                Err(ConfigError::SocketTransportWithoutSockets),
                "{query}"
            );
        }
        assert!(RunConfig::from_query("transport=socket&sockets=shared").is_ok());
        assert!(matches!(
            RunConfig::from_query("transport=carrier-pigeon"),
            Err(ConfigError::NotOneOf {
                field: "transport",
                ..
            })
        ));
    }

    #[test]
    fn bad_values_are_refused_naming_the_field() {
        let cases = [
            ("devices=-5", "devices", "negative"),
            ("devices=ten", "devices", "whole number"),
            ("devices=2.5", "devices", "whole number"),
            ("devices=0", "devices", "from 1"),
            ("devices=20001", "devices", "from 1"),
            ("devices=99999999999", "devices", "from 1"),
            ("workers=9", "workers", "must be auto"),
            ("workers=many", "workers", "whole number"),
            ("workers=-1", "workers", "negative"),
            ("fetch_slots=0", "fetch_slots", "from 1 to 2048"),
            (
                "fetch_slots=4000",
                "fetch_slots",
                "refuses a renderer's requests",
            ),
            ("duration=0", "duration", "more than 0"),
            ("duration=-1", "duration", "more than 0"),
            ("duration=86401", "duration", "24 h"),
            ("duration=abc", "duration", "not a number"),
            ("duration=inf", "duration", "finite"),
            ("duration=NaN", "duration", "finite"),
            ("join_rate=0", "join_rate", "more than 0"),
            ("join_rate=-3", "join_rate", "more than 0"),
            ("seed=-1", "seed", "negative"),
            ("seed=1e3", "seed", "whole number"),
            ("scenario=spin", "scenario", "sweep|rotate|taps|replay"),
            ("sockets=many", "sockets", "per-device|shared|none"),
            ("autostart=maybe", "autostart", "not one of"),
            ("max_p99_ms=0", "max_p99_ms", "more than 0"),
            ("max_error_pct=101", "max_error_pct", "0 to 100"),
            ("node=ftp%3A%2F%2Fx", "node", "http"),
            ("node=localhost%3A4005", "node", "http"),
            ("node=https%3A%2F%2F", "node", "host"),
            ("node=http%3A%2F%2F%2Fpath", "node", "host"),
            ("profile=phone", "profile", "webapp|lean|seed"),
            ("reconnect=never", "reconnect", "phoenix|webapp"),
            ("profile=webapp&sockets=none", "sockets", "profile=seed"),
            ("sockets=none&profile=lean", "sockets", "profile=seed"),
        ];
        for (query, field, words) in cases {
            let err = RunConfig::from_query(query).expect_err(query);
            assert_eq!(field_of(&err), field, "{query}: {err}");
            let text = err.to_string();
            assert!(
                text.starts_with(field) && text.contains(words),
                "{query}: {text}"
            );
        }
    }

    #[test]
    fn validate_checks_the_form_values() {
        assert_eq!(RunConfig::default().validate(), Ok(()));
        let bad = [
            RunConfig {
                devices: 0,
                ..RunConfig::default()
            },
            RunConfig {
                duration_s: f64::NAN,
                ..RunConfig::default()
            },
            RunConfig {
                join_rate: f64::INFINITY,
                ..RunConfig::default()
            },
            RunConfig {
                node: Some("nope".into()),
                ..RunConfig::default()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }

    #[test]
    fn autostart_asks_only_for_another_origin() {
        assert_eq!(
            origin_of("http://127.0.0.1:4005/x?y").as_deref(),
            Some("http://127.0.0.1:4005")
        );
        assert_eq!(
            origin_of("HTTPS://Node.local/").as_deref(),
            Some("https://node.local:443")
        );
        assert_eq!(
            origin_of("http://[::1]/").as_deref(),
            Some("http://[::1]:80")
        );
        assert_eq!(
            origin_of("http://[::1]:81").as_deref(),
            Some("http://[::1]:81")
        );
        assert_eq!(origin_of("ftp://x"), None);
        let page = "http://127.0.0.1:4005";
        let ask = |q: &str| {
            RunConfig::from_query(q)
                .unwrap()
                .autostart_needs_consent(page)
        };
        assert!(!ask("autostart=1"), "the page's own node");
        assert!(
            !ask("node=http://127.0.0.1:4005/&autostart=1"),
            "the same origin written out"
        );
        assert!(
            !ask("node=http://127.0.0.1:80&autostart=0"),
            "no autostart, no question"
        );
        assert!(
            ask("node=http://127.0.0.1:4006&autostart=1"),
            "another port"
        );
        assert!(
            ask("node=https://127.0.0.1:4005&autostart=1"),
            "another scheme"
        );
        assert!(
            ask("node=http://victim.example&autostart=1"),
            "another host"
        );
        assert!(
            ask("node=http://127.0.0.1:4005@victim.example&autostart=1"),
            "userinfo tricks"
        );
    }
}
