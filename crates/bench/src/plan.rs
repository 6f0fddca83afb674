//! What a benchmark invocation runs: the device counts, scenarios and
//! subscription modes of the page, the baseline's counts, the `webapp`
//! series over HTTPS (h2 against HTTP/1.1), how long each run lasts, the
//! time budget of the whole invocation, and the capacity criteria.

use std::time::Duration;

use r2_core::config::{HttpPath, RunConfig, SocketsMode, Transport};
use r2_core::profile::{Profile, CHROMIUM_SOCKETS_PER_HOST};
use r2_core::scenario::ScenarioKind;
use r2_node::fidelity::Alpn;

/// A run keeps up when the tab's scheduler lag p99 is at most this (ms) ...
pub const MAX_LAG_P99_MS: f64 = r2_core::metrics::MAX_SCHEDULER_LAG_P99_MS;
/// ... and it achieved at least this share of the requests it intended.
pub const MIN_ACHIEVED_RATIO: f64 = 0.99;
/// Devices join over about this many seconds ...
pub const JOIN_SPREAD_S: f64 = 5.0;
/// ... but never slower than this many a second.
pub const MIN_JOIN_RATE: f64 = 20.0;

/// One benchmark invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchPlan {
    /// Device counts, smallest first; a series stops at its first run that
    /// does not keep up.
    pub counts: Vec<u32>,
    /// The page's series, in the order they run: (scenario, mode).
    pub series: Vec<(ScenarioKind, SocketsMode)>,
    /// Where the baseline runs, in that order (after this many page series).
    pub baseline_after_series: usize,
    /// Seconds of scenario in each run (page and baseline).
    pub duration_s: f64,
    pub seed: u64,
    /// The baseline runs at the counts up to this (one Python process per
    /// device: thousands would not fit this machine); 0 runs no baseline.
    pub baseline_max: u32,
    /// The whole invocation should end within this; runs that would not fit
    /// are skipped and listed.
    pub budget: Duration,
    /// Run again, once the machine is quieter, a run that did not keep up
    /// while other processes took much of the CPU.
    pub rerun_disturbed: bool,
    /// The `webapp` phones (`sweep`, one projector) run over HTTPS at these
    /// counts, once with each of [`HTTPS_ALPNS`] offered; empty runs none.
    pub https_counts: Vec<u32>,
    /// `lean` devices, `sweep`, `shared`, sending with `transport=socket`
    /// (each value a `doc` frame on the socket the device holds: not the
    /// WebApp's wire shape) at these counts; a series that breaks stops.
    pub socket_counts: Vec<u32>,
    /// The same `transport=socket` devices with the engine held to one
    /// worker (`workers=1`) at these counts, beside the split run's
    /// ([`SOCKET_WORKERS`]) series.
    pub socket_one_worker_counts: Vec<u32>,
    /// The same devices over HTTP with the run's engine on the page's main
    /// thread (`workers=0`) at these counts, beside the worker's series.
    pub main_thread_counts: Vec<u32>,
    /// The same devices over HTTP made by the lean request path
    /// (`http=lean`) at these counts, each after a `gloo-net` twin.
    pub lean_counts: Vec<u32>,
    /// A class: `webapp` phones with their own sockets (`per-device`), one
    /// projector, over HTTPS, spread over as many browsers as Chromium's
    /// socket cap needs ([`class_split`]), at these counts until one does
    /// not keep up.
    pub class_counts: Vec<u32>,
    /// `webapp` phones in one tab, `shared`, one projector, over HTTPS,
    /// sending with `transport=socket`, at these counts until one does not
    /// keep up.
    pub webapp_socket_counts: Vec<u32>,
    /// Chromium's push floor: a bare page with this many websockets
    /// subscribed to `view`, sent this many updates a second; 0 sockets
    /// runs none.
    pub push_floor: (u32, f64),
}

/// The workers the `transport=socket` series splits its devices over (its
/// one-worker twin holds them in one).
pub const SOCKET_WORKERS: u32 = 2;
/// The protocols the node's TLS offers in the HTTPS series, side by side:
/// `h2` (and `http/1.1`, as the real node), then `http/1.1` only.
pub const HTTPS_ALPNS: [Alpn; 2] = [Alpn::H2AndHttp1, Alpn::Http1];
/// The subscriptions of the HTTPS series: one tab holds 60 phones only with
/// `shared` (per device they would need more than Chromium's ~255
/// websockets); the requests, which h2 changes, are the phones' own.
pub const HTTPS_SOCKETS: SocketsMode = SocketsMode::Shared;
/// Projector pages in the HTTPS series: a class has one.
pub const HTTPS_VIEWERS: u32 = 1;

impl BenchPlan {
    /// The full benchmark: `sweep` then `rotate`, `shared` then
    /// `per-device`, 20 to 4000 devices, 15 s runs, the baseline up to 500
    /// processes after the sweep series, then 20 and 60 `webapp` phones
    /// over HTTPS with h2 and with HTTP/1.1, a class of 20 to 200 phones
    /// with their own sockets over several browsers, within 22 minutes
    /// (builds come on top in `cargo xtask bench`).
    pub fn full() -> BenchPlan {
        BenchPlan {
            counts: vec![20, 50, 100, 200, 500, 1000, 2000, 4000],
            series: vec![
                (ScenarioKind::Sweep, SocketsMode::Shared),
                (ScenarioKind::Sweep, SocketsMode::PerDevice),
                (ScenarioKind::Rotate, SocketsMode::Shared),
                (ScenarioKind::Rotate, SocketsMode::PerDevice),
            ],
            baseline_after_series: 2,
            duration_s: 15.0,
            seed: 1,
            baseline_max: 500,
            budget: Duration::from_secs(22 * 60),
            rerun_disturbed: true,
            https_counts: vec![20, 60],
            socket_counts: vec![500, 750, 1000, 2000, 4000],
            socket_one_worker_counts: vec![500, 750, 1000],
            main_thread_counts: vec![100, 200],
            lean_counts: vec![50, 100],
            class_counts: vec![20, 60, 100, 200],
            webapp_socket_counts: vec![20, 60, 200],
            // 3,000 pushes a second: about what a class of 60 makes the node push.
            push_floor: (120, 25.0),
        }
    }

    /// The form CI runs: 10 devices, 3 s, `sweep` in both modes, a baseline
    /// of 10 processes, 10 `webapp` phones over HTTPS with each protocol
    /// offer, a class of 10 phones with their own sockets; nothing is run
    /// twice.
    pub fn quick() -> BenchPlan {
        BenchPlan {
            counts: vec![10],
            series: vec![
                (ScenarioKind::Sweep, SocketsMode::Shared),
                (ScenarioKind::Sweep, SocketsMode::PerDevice),
            ],
            baseline_after_series: 2,
            duration_s: 3.0,
            seed: 1,
            baseline_max: 10,
            budget: Duration::from_secs(120),
            rerun_disturbed: false,
            https_counts: vec![10],
            socket_counts: Vec::new(),
            socket_one_worker_counts: Vec::new(),
            main_thread_counts: Vec::new(),
            lean_counts: Vec::new(),
            class_counts: vec![10],
            webapp_socket_counts: Vec::new(),
            push_floor: (10, 10.0),
        }
    }

    /// The counts the baseline runs at.
    pub fn baseline_counts(&self) -> Vec<u32> {
        self.counts
            .iter()
            .copied()
            .filter(|n| *n <= self.baseline_max)
            .collect()
    }

    /// The page's configuration for one run (with `autostart`).
    pub fn run_config(
        &self,
        scenario: ScenarioKind,
        sockets: SocketsMode,
        devices: u32,
    ) -> RunConfig {
        RunConfig {
            devices,
            scenario,
            sockets,
            // The series measured so far are the lean device's; the
            // `webapp` profile's series are still to come.
            profile: if sockets == SocketsMode::None {
                Profile::Seed
            } else {
                Profile::Lean
            },
            duration_s: self.duration_s,
            join_rate: join_rate(devices),
            seed: self.seed,
            autostart: true,
            ..RunConfig::default()
        }
    }

    /// The page's configuration for one run of the HTTPS series: `webapp`
    /// phones, `sweep`, one projector (the page is given the node's HTTPS
    /// address when it runs: [`crate::tab::Scheme::Https`]).
    pub fn https_config(&self, devices: u32) -> RunConfig {
        RunConfig {
            devices,
            profile: Profile::WebApp,
            scenario: ScenarioKind::Sweep,
            sockets: HTTPS_SOCKETS,
            viewers: Some(HTTPS_VIEWERS),
            duration_s: self.duration_s,
            join_rate: join_rate(devices),
            seed: self.seed,
            autostart: true,
            ..RunConfig::default()
        }
    }

    /// A run of the `transport=socket` series, its devices split over
    /// [`SOCKET_WORKERS`] workers.
    pub fn socket_config(&self, devices: u32) -> RunConfig {
        RunConfig {
            transport: Transport::Socket,
            workers: Some(SOCKET_WORKERS),
            ..self.run_config(ScenarioKind::Sweep, SocketsMode::Shared, devices)
        }
    }

    /// A run of the `transport=socket` series held to one worker.
    pub fn socket_one_worker_config(&self, devices: u32) -> RunConfig {
        RunConfig {
            workers: Some(1),
            ..self.socket_config(devices)
        }
    }

    /// A run of the series with its requests made by the lean path.
    pub fn lean_config(&self, devices: u32) -> RunConfig {
        RunConfig {
            http: HttpPath::Lean,
            ..self.run_config(ScenarioKind::Sweep, SocketsMode::Shared, devices)
        }
    }

    /// A run of the series with the engine on the page's main thread.
    pub fn main_thread_config(&self, devices: u32) -> RunConfig {
        RunConfig {
            workers: Some(0),
            ..self.run_config(ScenarioKind::Sweep, SocketsMode::Shared, devices)
        }
    }

    /// The browsers of a class of `devices` phones: each one's page config
    /// ([`class_split`]), the projector in the first. `None` when the
    /// projector's own sockets alone leave its browser no room for a phone.
    pub fn class_configs(&self, devices: u32) -> Option<Vec<RunConfig>> {
        let split = class_split(devices)?;
        Some(
            split
                .iter()
                .enumerate()
                .map(|(index, &phones)| RunConfig {
                    devices: phones,
                    profile: Profile::WebApp,
                    scenario: ScenarioKind::Sweep,
                    sockets: SocketsMode::PerDevice,
                    viewers: Some(if index == 0 { CLASS_VIEWERS } else { 0 }),
                    duration_s: self.duration_s,
                    join_rate: join_rate(devices) * f64::from(phones) / f64::from(devices),
                    seed: self.seed,
                    autostart: true,
                    ..RunConfig::default()
                })
                .collect(),
        )
    }

    /// `webapp` phones in one tab sending with `transport=socket` (`shared`,
    /// one projector; loaded over HTTPS as the class).
    pub fn webapp_socket_config(&self, devices: u32) -> RunConfig {
        RunConfig {
            transport: Transport::Socket,
            ..self.https_config(devices)
        }
    }

    /// How long a page run may take before it counts as broken: the
    /// scenario, joining, the page's 10 s drain, deleting, and slack for a
    /// busy machine (more devices, more to create and delete).
    pub fn run_timeout(&self, devices: u32) -> Duration {
        let per_device_s = 0.03 * f64::from(devices);
        Duration::from_secs_f64(self.duration_s + JOIN_SPREAD_S + 10.0 + 30.0 + per_device_s)
    }
}

/// Projector pages in a class: one, in the first browser.
pub const CLASS_VIEWERS: u32 = 1;

/// Phones per browser for a class of `devices` `webapp` phones holding
/// their own sockets (five each in their first minute) and one projector
/// in the first browser, which holds a socket per card (one per phone of
/// the whole class, whichever browser it is in) besides `monitor` and
/// `view`: every browser's peak under Chromium's cap
/// ([`CHROMIUM_SOCKETS_PER_HOST`]), the first filled as far as its
/// projector leaves room, the rest shared evenly by as few browsers as fit
/// them. `None` when the projector alone leaves no room for a phone, or for
/// no phones.
pub fn class_split(devices: u32) -> Option<Vec<u32>> {
    let per_phone = Profile::WebApp.subscriptions_per_device().0;
    let cap = CHROMIUM_SOCKETS_PER_HOST;
    let projector = u64::from(CLASS_VIEWERS) * (2 + u64::from(devices));
    let first = (cap.checked_sub(projector)? / per_phone).min(u64::from(devices));
    if first == 0 {
        return None;
    }
    let rest = u64::from(devices) - first;
    let others = rest.div_ceil(cap / per_phone);
    let mut split = vec![u32::try_from(first).ok()?];
    for k in 0..others {
        // Even shares, the larger ones first.
        let share = rest / others + u64::from(k < rest % others);
        split.push(u32::try_from(share).ok()?);
    }
    Some(split)
}

/// Devices per second joining: all within about [`JOIN_SPREAD_S`].
pub fn join_rate(devices: u32) -> f64 {
    (f64::from(devices) / JOIN_SPREAD_S).max(MIN_JOIN_RATE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_spread_over_a_few_seconds() {
        assert_eq!(join_rate(10), MIN_JOIN_RATE);
        assert_eq!(join_rate(2000), 400.0);
        let plan = BenchPlan::full();
        let config = plan.run_config(ScenarioKind::Rotate, SocketsMode::Shared, 2000);
        assert!(config.validate().is_ok());
        assert!(config.autostart && config.join_rate == 400.0 && config.duration_s == 15.0);
        assert!(plan.run_timeout(4000) > plan.run_timeout(50));
    }

    #[test]
    fn the_https_series_runs_a_class_of_webapp_phones() {
        let plan = BenchPlan::full();
        assert_eq!(plan.https_counts, vec![20, 60]);
        assert_eq!(BenchPlan::quick().https_counts, vec![10]);
        let config = plan.https_config(60);
        assert!(config.validate().is_ok(), "{:?}", config.validate());
        assert_eq!(
            (config.profile, config.viewers, config.sockets),
            (Profile::WebApp, Some(1), SocketsMode::Shared)
        );
        let query = config.to_query();
        assert!(
            query.contains("profile=webapp") && query.contains("viewers=1"),
            "{query}"
        );
    }

    #[test]
    fn the_socket_and_main_thread_series_differ_from_the_sweep_in_what_they_name() {
        let plan = BenchPlan::full();
        let base = plan.run_config(ScenarioKind::Sweep, SocketsMode::Shared, 2000);
        let socket = plan.socket_config(2000);
        assert!(socket.validate().is_ok());
        assert_eq!(
            RunConfig {
                transport: Transport::Http,
                workers: None,
                ..socket.clone()
            },
            base
        );
        assert_eq!(socket.workers, Some(SOCKET_WORKERS));
        assert_eq!(
            plan.socket_one_worker_config(2000),
            RunConfig {
                workers: Some(1),
                ..socket
            }
        );
        let main = plan.main_thread_config(2000);
        assert_eq!((main.workers, base.workers), (Some(0), None));
        assert_eq!(
            RunConfig {
                workers: None,
                ..main
            },
            base
        );
        assert!(BenchPlan::quick().socket_counts.is_empty());
        let lean = plan.lean_config(200);
        assert_eq!(
            RunConfig {
                http: HttpPath::Gloo,
                ..lean
            },
            plan.run_config(ScenarioKind::Sweep, SocketsMode::Shared, 200)
        );
    }

    #[test]
    fn a_class_spreads_over_as_few_browsers_as_the_socket_cap_allows() {
        assert_eq!(class_split(20), Some(vec![20]));
        // The projector holds 62 sockets: 38 phones (190) beside it.
        assert_eq!(class_split(60), Some(vec![38, 22]));
        assert_eq!(class_split(100), Some(vec![30, 35, 35]));
        assert_eq!(class_split(200), Some(vec![10, 48, 48, 47, 47]));
        assert_eq!(class_split(0), None);
        assert_eq!(
            class_split(300),
            None,
            "the projector alone is over the cap"
        );
        for devices in 1..=250 {
            let Some(split) = class_split(devices) else {
                assert!(devices > 240, "{devices}");
                continue;
            };
            assert_eq!(split.iter().sum::<u32>(), devices);
            for (index, &phones) in split.iter().enumerate() {
                let projector = if index == 0 {
                    2 + u64::from(devices)
                } else {
                    0
                };
                assert!(
                    5 * u64::from(phones) + projector <= CHROMIUM_SOCKETS_PER_HOST,
                    "{devices}: {split:?}"
                );
            }
            let fewer = split.len() - 1;
            assert!(
                fewer == 0 || (devices - split[0]).div_ceil(51) as usize == fewer,
                "{devices}: {split:?} uses more browsers than it needs"
            );
        }
        let plan = BenchPlan::full();
        let configs = plan.class_configs(60).expect("fits");
        assert_eq!(configs.len(), 2);
        for (index, config) in configs.iter().enumerate() {
            assert!(config.validate().is_ok(), "{:?}", config.validate());
            assert_eq!(
                (config.profile, config.sockets, config.viewers()),
                (
                    Profile::WebApp,
                    SocketsMode::PerDevice,
                    u32::from(index == 0)
                )
            );
            let load = config.load();
            assert!(load.check_socket_cap().is_ok());
        }
        let rate: f64 = configs.iter().map(|c| c.join_rate).sum();
        assert!((rate - join_rate(60)).abs() < 1e-9, "{rate}");
        let socket = plan.webapp_socket_config(60);
        assert_eq!(
            RunConfig {
                transport: Transport::Http,
                ..socket
            },
            plan.https_config(60)
        );
    }

    #[test]
    fn the_baseline_is_capped() {
        assert_eq!(
            BenchPlan::full().baseline_counts(),
            vec![20, 50, 100, 200, 500]
        );
        assert_eq!(BenchPlan::quick().baseline_counts(), vec![10]);
        let none = BenchPlan {
            baseline_max: 0,
            ..BenchPlan::quick()
        };
        assert!(none.baseline_counts().is_empty());
    }
}
