//! How the devices are spread over browsers and tabs, and whether the
//! browsers and tabs given can carry them.
//!
//! The limits are what `cargo xtask bench` measured (bench/RESULTS.md): one
//! tab keeps up (scheduler lag p99 ≤ 20 ms, every send on time) with about
//! 100 `sweep` devices and about 20 `rotate` devices; a browser opens about
//! 255 websockets at once, and each profile holds its own number of them
//! per device ([`r2_core::profile::Load`]: a `webapp` phone five in its
//! first minute, a `lean` device one).

use r2_core::config::SocketsMode;
use r2_core::profile::{Load, Profile};

use crate::error::RunError;

/// Devices one tab keeps up with, by scenario (bench/RESULTS.md). `taps`
/// sends less often than `sweep`; `replay` plays motion like `rotate`.
pub fn devices_per_tab(scenario: &str) -> u32 {
    match scenario {
        "rotate" | "replay" => 20,
        _ => 100,
    }
}

/// Websockets a browser opens at once (Chromium: 255).
pub const BROWSER_WEBSOCKETS: u32 = r2_core::profile::CHROMIUM_SOCKETS_PER_HOST as u32;

/// One tab of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct TabPlan {
    /// Which browser (0-based).
    pub browser: usize,
    /// Its index over all tabs (0-based).
    pub index: usize,
    pub devices: u32,
    /// Projector pages it simulates: the class's one in the first tab.
    pub viewers: u32,
    pub join_rate: f64,
    pub seed: u64,
}

/// The tabs of a run, and the control view in the first browser.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub browsers: usize,
    pub tabs: Vec<TabPlan>,
}

/// What the plan is asked to spread.
#[derive(Debug, Clone)]
pub struct Ask<'a> {
    pub devices: u32,
    pub browsers: u32,
    pub tabs_per_browser: u32,
    pub scenario: &'a str,
    pub profile: Profile,
    pub sockets: &'a str,
    /// Projector pages per tab when given (`--param viewers=K`); else the
    /// profile's default in the first tab only (a class has one projector).
    pub viewers: Option<u32>,
    pub join_rate: f64,
    pub seed: u64,
    /// Overrides [`devices_per_tab`].
    pub max_devices_per_tab: Option<u32>,
    /// Run past the limits.
    pub force: bool,
}

impl Plan {
    /// Spreads `ask.devices` as evenly as can be (the first tabs carry one
    /// more), browser by browser; refuses (unless `force`) a tab above the
    /// per-tab limit or a browser above its websockets.
    pub fn new(ask: &Ask) -> Result<Plan, RunError> {
        if ask.browsers == 0 || ask.tabs_per_browser == 0 {
            return Err(RunError::Settings(
                "--browsers and --tabs-per-browser must be at least 1".into(),
            ));
        }
        let tabs = ask.browsers * ask.tabs_per_browser;
        if ask.devices < tabs {
            return Err(RunError::Settings(format!(
                "{} devices cannot fill {} browser(s) × {} tab(s): give at least one device per tab",
                ask.devices, ask.browsers, ask.tabs_per_browser
            )));
        }
        let (each, extra) = (ask.devices / tabs, ask.devices % tabs);
        let plan = Plan {
            browsers: ask.browsers as usize,
            tabs: (0..tabs)
                .map(|i| {
                    let devices = each + u32::from(i < extra);
                    TabPlan {
                        browser: (i / ask.tabs_per_browser) as usize,
                        index: i as usize,
                        devices,
                        viewers: ask.viewers.unwrap_or(if i == 0 {
                            ask.profile.default_viewers()
                        } else {
                            0
                        }),
                        join_rate: ask.join_rate * f64::from(devices) / f64::from(ask.devices),
                        seed: ask.seed + u64::from(i),
                    }
                })
                .collect(),
        };
        if !ask.force {
            plan.check(ask)?;
        }
        Ok(plan)
    }

    /// The websockets browser `browser` opens at its peak: its tabs' as
    /// their profile holds them, one fleet socket per tab, and the control
    /// view's in the first browser.
    pub fn websockets(&self, browser: usize, profile: Profile, sockets: &str) -> u32 {
        let mode: SocketsMode = sockets.parse().unwrap_or_default();
        let tabs = self.tabs.iter().filter(|t| t.browser == browser);
        let held: u64 = tabs
            .clone()
            .map(|t| Load::new(profile, mode, t.devices, t.viewers).sockets().0)
            .sum();
        held as u32 + tabs.count() as u32 + u32::from(browser == 0)
    }

    fn check(&self, ask: &Ask) -> Result<(), RunError> {
        let limit = ask
            .max_devices_per_tab
            .unwrap_or_else(|| devices_per_tab(ask.scenario));
        let most = self.tabs.iter().map(|t| t.devices).max().unwrap_or(0);
        if most > limit {
            let needed = ask.devices.div_ceil(limit);
            return Err(RunError::Capacity(format!(
                "{} {} devices over {} browser(s) × {} tab(s) is {most} per tab, but a tab keeps up with about {limit} \
                 (bench/RESULTS.md): use {needed} tabs or more (--browsers, --tabs-per-browser), set --max-devices-per-tab, or --force",
                ask.devices, ask.scenario, ask.browsers, ask.tabs_per_browser
            )));
        }
        for browser in 0..self.browsers {
            let sockets = self.websockets(browser, ask.profile, ask.sockets);
            if sockets > BROWSER_WEBSOCKETS {
                return Err(RunError::Capacity(format!(
                    "browser {} would open {sockets} websockets ({} {} devices' subscriptions), but a browser opens about \
                     {BROWSER_WEBSOCKETS}: use more browsers (--browsers), --sockets shared, or --force",
                    browser + 1,
                    ask.sockets,
                    ask.profile
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(devices: u32, browsers: u32, tabs: u32, scenario: &str) -> Ask<'_> {
        Ask {
            devices,
            browsers,
            tabs_per_browser: tabs,
            scenario,
            profile: Profile::Lean,
            sockets: "per-device",
            viewers: None,
            join_rate: 10.0,
            seed: 5,
            max_devices_per_tab: None,
            force: false,
        }
    }

    #[test]
    fn devices_spread_evenly_over_browsers_and_tabs() {
        let plan = Plan::new(&ask(41, 2, 2, "sweep")).expect("fits");
        let devices: Vec<u32> = plan.tabs.iter().map(|t| t.devices).collect();
        assert_eq!(devices, [11, 10, 10, 10]);
        let browsers: Vec<usize> = plan.tabs.iter().map(|t| t.browser).collect();
        assert_eq!(browsers, [0, 0, 1, 1]);
        let seeds: Vec<u64> = plan.tabs.iter().map(|t| t.seed).collect();
        assert_eq!(seeds, [5, 6, 7, 8]);
        let rate: f64 = plan.tabs.iter().map(|t| t.join_rate).sum();
        assert!((rate - 10.0).abs() < 1e-9);
        // Browser 0: 21 lean subscriptions, 2 tabs' fleet sockets, the control view's.
        assert_eq!(plan.websockets(0, Profile::Lean, "per-device"), 24);
        assert_eq!(plan.websockets(1, Profile::Lean, "shared"), 4);
        // WebApp phones: five sockets each in their first minute, and the
        // class's projector in the first tab (monitor, view, 11 cards).
        let webapp = Plan::new(&Ask { profile: Profile::WebApp, ..ask(41, 2, 2, "sweep") }).expect("fits");
        let viewers: Vec<u32> = webapp.tabs.iter().map(|t| t.viewers).collect();
        assert_eq!(viewers, [1, 0, 0, 0]);
        assert_eq!(webapp.websockets(0, Profile::WebApp, "per-device"), 5 * 21 + 13 + 3);
        assert!(Plan::new(&Ask { profile: Profile::WebApp, ..ask(60, 1, 2, "sweep") })
            .unwrap_err()
            .to_string()
            .contains("webapp devices"));
    }

    #[test]
    fn a_plan_past_the_measured_limits_is_refused_unless_forced() {
        let err = Plan::new(&ask(300, 1, 2, "sweep")).unwrap_err().to_string();
        assert!(
            err.contains("150 per tab") && err.contains("about 100") && err.contains("use 3 tabs"),
            "{err}"
        );
        let err = Plan::new(&ask(50, 1, 2, "rotate")).unwrap_err().to_string();
        assert!(err.contains("about 20"), "{err}");
        // Three tabs of 90 per-device subscriptions pass 255 websockets in one browser.
        let err = Plan::new(&ask(270, 1, 3, "sweep")).unwrap_err().to_string();
        assert!(err.contains("websockets"), "{err}");
        assert!(Plan::new(&Ask {
            sockets: "shared",
            ..ask(270, 1, 3, "sweep")
        })
        .is_ok());
        assert!(Plan::new(&Ask {
            force: true,
            ..ask(300, 1, 2, "sweep")
        })
        .is_ok());
        assert!(Plan::new(&ask(3, 2, 2, "sweep"))
            .unwrap_err()
            .to_string()
            .contains("at least one device per tab"));
    }
}
