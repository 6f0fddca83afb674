//! A run's plan: when each device starts its scenario, and every send it
//! plans, computed alike by the page (wasm32) and natively (the benchmark,
//! the tests), so the sends a run intended can be recomputed outside the
//! browser.
//!
//! Real phones are not in step: by default ([`Starts::Spread`]) each device
//! starts its scenario at its own seeded offset within one period of its
//! scenario ([`start_offset_ms`]), which also puts a rotating phone's 60 Hz
//! readings at its own phase within a frame. [`Starts::Herd`] (`herd=1`)
//! starts every device at the same instant, as r2-stress did at first.
//!
//! Times here are run times: ms since the run's scenarios started. The page
//! adds its clock's start to them.
//!
//! # Layout
//!
//! - [`Starts`], [`start_offset_ms`]: spread or synchronised starts.
//! - [`RunPlan`]: (scenario, seed, starts, trace, duration) → each device's
//!   [`Planner`], the number of sends planned, and the busiest window.

use std::sync::Arc;

use crate::config::RunConfig;
use crate::scenario::{
    splitmix, unit, PlannedSend, Planner, Scenario, ScenarioKind, Trace,
};

word_enum! {
    /// How the devices' scenarios start.
    #[derive(Default)]
    pub enum Starts {
        /// Each device at its own seeded offset (see [`start_offset_ms`]).
        #[default]
        Spread = "spread",
        /// Every device at the same instant (`herd=1`).
        Herd = "herd",
    }
}

/// `sweep` and `rotate` devices start within this many ms of the run's start
/// (about one sweep step at the slowest speed; sixty frames of `rotate`).
pub const START_SPREAD_MS: f64 = 1000.0;

/// Salt for the start offsets, so they are drawn apart from the scenario's
/// own numbers and from `replay`'s offsets.
const START_SALT: u64 = 0x5354_4152_5453_0001;

/// The offset (ms) at which device `device_index` of a run seeded `seed`
/// starts a `kind` scenario when starts are spread, in `[0, period)`:
/// [`START_SPREAD_MS`] for `sweep` and `rotate` (continuous, so each rotating
/// phone reads at its own phase within a frame); 0 for `taps`, whose first
/// tap already comes after a random gap of its own (an offset on top would
/// only leave short runs without a tap), and for `replay`, which has its own
/// offsets ([`crate::scenario::replay_offset_ms`]). From SplitMix64: the
/// same on every platform.
pub fn start_offset_ms(kind: ScenarioKind, seed: u64, device_index: u32) -> f64 {
    let period = match kind {
        ScenarioKind::Sweep | ScenarioKind::Rotate => START_SPREAD_MS,
        ScenarioKind::Taps | ScenarioKind::Replay => return 0.0,
    };
    let bits = splitmix(seed ^ splitmix(u64::from(device_index)) ^ START_SALT);
    unit(bits) * period
}

/// Everything that decides a run's sends.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub kind: ScenarioKind,
    pub seed: u64,
    pub starts: Starts,
    /// The trace `replay` plays (the built-in one if `None`).
    pub trace: Option<Arc<Trace>>,
    /// How long the scenarios run, ms: sends are planned before it.
    pub duration_ms: f64,
}

impl RunPlan {
    /// The plan of a run configured as `config`.
    pub fn new(config: &RunConfig, trace: Option<Arc<Trace>>) -> RunPlan {
        RunPlan {
            kind: config.scenario,
            seed: config.seed,
            starts: config.starts(),
            trace,
            duration_ms: config.duration_s * 1000.0,
        }
    }

    /// When device `index` starts its scenario, if it can send from
    /// `live_ms` (run time; 0 for a device live when the run starts).
    pub fn start_ms(&self, index: u32, live_ms: f64) -> f64 {
        match self.starts {
            Starts::Spread => live_ms + start_offset_ms(self.kind, self.seed, index),
            Starts::Herd => live_ms,
        }
    }

    /// Device `index`'s sends, in run time, for a device that can send
    /// from `live_ms`.
    pub fn device(&self, index: u32, live_ms: f64) -> Planner {
        let start = self.start_ms(index, live_ms);
        let scenario = match (&self.trace, self.kind) {
            (Some(trace), ScenarioKind::Replay) => {
                Scenario::replay(trace.clone(), self.seed, index, start)
            }
            _ => Scenario::new(self.kind, self.seed, index, start),
        };
        Planner::new(scenario, self.duration_ms)
    }

    /// Every send of the devices that can send from the given run times
    /// (`(index, live_ms)`), in time order.
    pub fn sends(&self, live: impl IntoIterator<Item = (u32, f64)>) -> Vec<PlannedSend> {
        let mut sends: Vec<PlannedSend> = live
            .into_iter()
            .flat_map(|(index, live_ms)| self.device(index, live_ms))
            .collect();
        sends.sort_by(|a, b| a.intended_ms.total_cmp(&b.intended_ms));
        sends
    }

    /// How many sends (`set_sensor` + `update` each) the devices plan, for
    /// devices that can send from the given run times (`(index, live_ms)`).
    pub fn sends_planned(&self, live: impl IntoIterator<Item = (u32, f64)>) -> u64 {
        live.into_iter()
            .map(|(index, live_ms)| self.device(index, live_ms).count() as u64)
            .sum()
    }

    /// [`RunPlan::sends_planned`] for `devices` devices, all live when the
    /// run starts (as when the page creates them all before it starts).
    pub fn sends_planned_from_start(&self, devices: u32) -> u64 {
        self.sends_planned((0..devices).map(|i| (i, 0.0)))
    }
}

/// The most sends whose intended times fall within any `window_ms` (a
/// window `[t, t + window_ms)`); `sends` in time order.
pub fn busiest_window(sends: &[PlannedSend], window_ms: f64) -> usize {
    let mut first = 0;
    let mut most = 0;
    for (last, send) in sends.iter().enumerate() {
        while send.intended_ms - sends[first].intended_ms >= window_ms {
            first += 1;
        }
        most = most.max(last + 1 - first);
    }
    most
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(kind: ScenarioKind, starts: Starts) -> RunPlan {
        RunPlan {
            kind,
            seed: 1,
            starts,
            trace: None,
            duration_ms: 10_000.0,
        }
    }

    const DEVICES: u32 = 300;

    fn all_from_start(plan: &RunPlan) -> Vec<PlannedSend> {
        plan.sends((0..DEVICES).map(|i| (i, 0.0)))
    }

    #[test]
    fn spread_starts_keep_300_devices_out_of_step() {
        for kind in [
            ScenarioKind::Sweep,
            ScenarioKind::Rotate,
            ScenarioKind::Taps,
        ] {
            let sends = all_from_start(&plan(kind, Starts::Spread));
            let busiest = busiest_window(&sends, 20.0);
            eprintln!("{kind}: at most {busiest} sends in 20 ms");
            // Two requests per send: far below the 2N requests of a herd.
            assert!(
                2 * busiest <= (2 * DEVICES as usize) / 4,
                "{kind}: {busiest} sends in 20 ms"
            );
            assert!(!sends.is_empty());
        }
    }

    #[test]
    fn a_herd_sends_2n_requests_at_the_start() {
        for kind in [ScenarioKind::Sweep, ScenarioKind::Rotate] {
            let sends = all_from_start(&plan(kind, Starts::Herd));
            let at_start = sends.iter().filter(|s| s.intended_ms == 0.0).count();
            // Every device sends its first reading at once (unless it floors
            // to 0, the WebApp's initial value: 1 in 360).
            assert!(at_start >= DEVICES as usize - 3, "{kind}: {at_start}");
            assert!(2 * busiest_window(&sends, 20.0) >= 2 * at_start);
        }
    }

    #[test]
    fn offsets_lie_within_one_period_and_differ() {
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..DEVICES {
            for kind in [ScenarioKind::Sweep, ScenarioKind::Rotate] {
                let offset = start_offset_ms(kind, 7, i);
                assert!((0.0..START_SPREAD_MS).contains(&offset), "{kind} {i}: {offset}");
                seen.insert(offset.to_bits());
            }
            for kind in [ScenarioKind::Taps, ScenarioKind::Replay] {
                assert_eq!(start_offset_ms(kind, 7, i), 0.0, "{kind}");
            }
        }
        // Each device its own offset (`sweep` and `rotate` share theirs).
        assert!(seen.len() >= DEVICES as usize - 1, "offsets differ");
        // A rotating phone's 60 Hz grid has its own phase within a frame.
        let phases: std::collections::BTreeSet<u64> = (0..DEVICES)
            .map(|i| {
                let offset = start_offset_ms(ScenarioKind::Rotate, 7, i);
                (offset % crate::scenario::FRAME_MS * 1000.0) as u64
            })
            .collect();
        assert!(phases.len() > 200, "{} phases", phases.len());
        let herd = plan(ScenarioKind::Rotate, Starts::Herd);
        assert!((0..10).all(|i| herd.start_ms(i, 250.0) == 250.0));
    }

    #[test]
    fn sends_planned_counts_each_device_from_when_it_is_live() {
        let p = plan(ScenarioKind::Sweep, Starts::Spread);
        let one = p.device(3, 0.0).count() as u64;
        assert!(one > 5);
        assert_eq!(p.sends_planned([(3, 0.0)]), one);
        let late = p.sends_planned([(3, 6000.0)]);
        assert!(late < one && late > 0, "{late} of {one}");
        assert_eq!(p.sends_planned([(3, 10_000.0)]), 0);
        assert_eq!(
            p.sends_planned_from_start(20),
            p.sends((0..20).map(|i| (i, 0.0))).len() as u64
        );
        assert!(p
            .sends((0..20).map(|i| (i, 0.0)))
            .iter()
            .all(|s| s.intended_ms < p.duration_ms));
    }

    #[test]
    fn busiest_window_counts_a_half_open_window() {
        let at = |t: &[f64]| -> Vec<PlannedSend> {
            t.iter()
                .map(|&intended_ms| PlannedSend {
                    intended_ms,
                    value: 1,
                })
                .collect()
        };
        assert_eq!(busiest_window(&[], 20.0), 0);
        assert_eq!(busiest_window(&at(&[0.0, 19.9, 20.0, 39.0]), 20.0), 3);
        assert_eq!(busiest_window(&at(&[0.0, 20.0, 40.0]), 20.0), 1);
    }
}
