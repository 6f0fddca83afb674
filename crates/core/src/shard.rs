//! One run's devices split over several engines (Web Workers).
//!
//! A run of N devices may run in K engines at once, each in its own Web
//! Worker and so on its own thread. Engine `k` of `K` runs a contiguous
//! share of the devices ([`Shard::range`]); every device keeps its place in
//! the whole run (its name, its seed, its start offset), so a run split over
//! K engines plans and names exactly what one engine would.
//!
//! # Layout
//!
//! - [`Shard`]: which share of the devices one engine runs;
//! - [`auto_workers`]: how many engines a run gets when the user did not say;
//! - [`ShardResult`], [`merge_results`]: what each engine measured, made
//!   into the whole run's metrics and facts (the summary is built from them
//!   as from one engine's).

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::config::MAX_WORKERS;
use crate::metrics::RunMetrics;
use crate::profile::Load;
use crate::summary::RunFacts;

/// `lean` devices one engine is given before a run is split over another
/// one (`workers=auto`): one engine's thread carried 500 `transport=socket`
/// devices with its timers 21 ms late at p99, and 1,000 with 308 ms
/// (`bench/RESULTS.md`). Devices of other loads count as the frames they
/// make their engine handle ([`auto_workers`]).
pub const DEVICES_PER_WORKER: u32 = 250;

/// Frames a `lean` device's value makes its engine handle: its two requests
/// and its own `update` signal.
const LEAN_FRAMES_PER_VALUE: u64 = 3;

/// Engine `index` of `count`, running its share of a run's devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Shard::WHOLE
    }
}

impl Shard {
    /// The one engine of a run that is not split.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Every shard of a run split `count` ways.
    pub fn all(count: u32) -> impl Iterator<Item = Shard> {
        let count = count.max(1);
        (0..count).map(move |index| Shard { index, count })
    }

    /// The devices (by their place in the whole run) this engine runs, of
    /// `devices` in all: contiguous, the first shards one larger when the
    /// count does not divide evenly.
    pub fn range(&self, devices: u32) -> Range<u32> {
        let count = self.count.max(1);
        let (base, extra) = (devices / count, devices % count);
        let start = self.index * base + self.index.min(extra);
        let len = base + u32::from(self.index < extra);
        start.min(devices)..(start + len).min(devices)
    }

    /// Whether the run is split at all.
    pub fn is_split(&self) -> bool {
        self.count > 1
    }

    /// Whether this engine runs what a run has once, whoever runs its
    /// devices: the projectors and the shared page-level sentants.
    pub fn is_first(&self) -> bool {
        self.index == 0
    }
}

/// How many engines a run of `load` gets by default: its devices weighed by
/// the frames each value makes their engine handle (two requests, and every
/// push of the `update` the tab receives: [`Load::pushes_per_update`]), as
/// many `lean` devices as make those frames, one engine per
/// [`DEVICES_PER_WORKER`] of them, at least one; no more than the machine's
/// logical cores (`navigator.hardwareConcurrency`), nor [`MAX_WORKERS`].
///
/// A `webapp` phone receives `view`'s re-publication of every phone's
/// update, so 60 phones weigh as about 1,300 `lean` devices. On the
/// benchmark's machine of 2 cores, 60 `webapp` phones in one tab had their
/// engine's timers late 126–176 ms at p99 in one worker, 40–109 ms in two
/// and 35–100 ms in three (runs of 15 s over HTTPS, each figure one run),
/// and `transport=socket` runs of 500 to 1,000 devices were later in one
/// worker than in two (3.0 : 2.2 ms to 11.5 : 6.1 ms): a thread for each
/// core did better than leaving one to the page, which only draws.
pub fn auto_workers(load: &Load, hardware_concurrency: u32) -> u32 {
    let cores = hardware_concurrency.clamp(1, MAX_WORKERS);
    let frames_per_value = 2 + load.pushes_per_update();
    let weighed = (load.devices * frames_per_value).div_ceil(LEAN_FRAMES_PER_VALUE);
    let workers = weighed.div_ceil(u64::from(DEVICES_PER_WORKER));
    u32::try_from(workers).unwrap_or(u32::MAX).clamp(1, cores)
}

/// Everything one engine of a split run measured, once its summary is
/// written (it stops, and again once it deleted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardResult {
    pub metrics: RunMetrics,
    pub facts: RunFacts,
}

/// The whole run's metrics and facts from every engine's result (in shard
/// order): metrics merged ([`RunMetrics::merge`]), the longest duration,
/// every engine's leftovers (and the first engine's reason it could not
/// look for them, if one could not). `None` without results.
pub fn merge_results<'a>(
    results: impl IntoIterator<Item = &'a ShardResult>,
) -> Option<(RunMetrics, RunFacts)> {
    let mut results = results.into_iter();
    let first = results.next()?;
    let (mut metrics, mut facts) = (first.metrics.clone(), first.facts.clone());
    for result in results {
        metrics.merge(&result.metrics);
        facts.duration_s = facts.duration_s.max(result.facts.duration_s);
        facts
            .leftovers
            .extend(result.facts.leftovers.iter().cloned());
        if facts.leftovers_unchecked.is_none() {
            facts
                .leftovers_unchecked
                .clone_from(&result.facts.leftovers_unchecked);
        }
    }
    Some((metrics, facts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_device_once_in_order() {
        for devices in [0, 1, 2, 7, 250, 1001, 2000] {
            for count in 1..=MAX_WORKERS {
                let ranges: Vec<Range<u32>> = Shard::all(count).map(|s| s.range(devices)).collect();
                assert_eq!(ranges.len(), count as usize);
                let mut next = 0;
                for r in &ranges {
                    assert_eq!(r.start, next, "{devices} in {count}: {ranges:?}");
                    next = r.end;
                }
                assert_eq!(next, devices, "{devices} in {count}: {ranges:?}");
                let (min, max) = ranges
                    .iter()
                    .map(|r| r.len())
                    .fold((usize::MAX, 0), |(a, b), l| (a.min(l), b.max(l)));
                assert!(max - min <= 1, "even split: {ranges:?}");
            }
        }
        assert_eq!(Shard::WHOLE.range(40), 0..40);
        assert_eq!(Shard { index: 1, count: 3 }.range(10), 4..7);
    }

    #[test]
    fn auto_workers_grow_with_the_frames_up_to_the_cores() {
        use crate::config::SocketsMode;
        use crate::profile::Profile;
        let lean = |devices| Load::new(Profile::Lean, SocketsMode::Shared, devices, 0);
        assert_eq!(auto_workers(&lean(1), 8), 1);
        assert_eq!(auto_workers(&lean(250), 8), 1);
        assert_eq!(auto_workers(&lean(251), 8), 2);
        assert_eq!(auto_workers(&lean(2000), 4), 4, "a worker for each core");
        assert_eq!(auto_workers(&lean(2000), 2), 2);
        assert_eq!(auto_workers(&lean(2000), 0), 1, "an unknown core count");
        assert_eq!(auto_workers(&lean(20_000), 64), MAX_WORKERS);
        // A `webapp` phone receives every phone's update: 60 phones and a
        // projector make 2 + 63 frames a value each, as 1,300 `lean`
        // devices.
        let webapp = |devices, sockets| Load::new(Profile::WebApp, sockets, devices, 1);
        assert_eq!(auto_workers(&webapp(60, SocketsMode::Shared), 8), 6);
        assert_eq!(auto_workers(&webapp(60, SocketsMode::PerDevice), 8), 6);
        assert_eq!(auto_workers(&webapp(60, SocketsMode::Shared), 2), 2);
        assert_eq!(auto_workers(&webapp(20, SocketsMode::Shared), 8), 1);
        assert_eq!(auto_workers(&webapp(30, SocketsMode::Shared), 8), 2);
        // No sockets: only the projector's two pushes.
        assert_eq!(auto_workers(&webapp(60, SocketsMode::None), 8), 1);
    }

    #[test]
    fn results_merge_into_the_runs() {
        use crate::graphql::SentantRef;
        let result =
            |sends: u64, duration_s: f64, leftover: Option<&str>, unchecked: Option<&str>| {
                let mut metrics = RunMetrics::new(0.0, 4);
                for _ in 0..sends {
                    metrics.record_send(0.0, 0.0, 5.0);
                }
                ShardResult {
                    metrics,
                    facts: RunFacts {
                        node: "http://node".into(),
                        run_prefix: "r2s-ab-1".into(),
                        duration_s,
                        leftovers: leftover
                            .map(|name| SentantRef {
                                id: format!("id-{name}"),
                                name: name.into(),
                            })
                            .into_iter()
                            .collect(),
                        leftovers_unchecked: unchecked.map(str::to_owned),
                    },
                }
            };
        assert!(merge_results([]).is_none());
        let results = [
            result(3, 10.0, None, None),
            result(4, 10.5, Some("r2s-ab-1-0004"), None),
            result(0, 9.0, None, Some("HTTP 500")),
        ];
        let (metrics, facts) = merge_results(&results).expect("merged");
        assert_eq!(metrics.sends_ok, 7);
        assert_eq!(facts.duration_s, 10.5);
        assert_eq!(facts.leftovers.len(), 1);
        assert_eq!(facts.leftovers_unchecked.as_deref(), Some("HTTP 500"));
        assert_eq!(facts.run_prefix, "r2s-ab-1");
    }
}
