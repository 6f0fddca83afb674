//! Seeded, repeatable sensor scenarios: what each simulated phone's
//! `deviceorientation` events (or colour-button taps) would deliver, and the
//! [`Planner`] that turns them into the sends the sensor page would make.
//!
//! A [`Scenario`] is an endless iterator of [`SensorEvent`]s for one device,
//! built from `(kind, seed, device_index, start_ms)`. Its random numbers come
//! from [`ScenarioRng`] (xoshiro256++) seeded with `seed ^ mix(device_index)`,
//! so every device moves differently, a run with the same seed repeats
//! exactly, and native code draws exactly what the page (wasm32) draws: the
//! generator works on 64-bit words on every target, and every range drawn
//! from is of a fixed-width type (never `usize`).
//!
//! The [`Planner`] passes those events through the page's [`Throttle`] (taps
//! bypass it: the WebApp's buttons send at once) and yields [`PlannedSend`]s,
//! so the page sets one timer per send rather than one per sensor event.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::throttle::Throttle;

word_enum! {
    /// Which movement a simulated phone makes.
    #[derive(Default)]
    pub enum ScenarioKind {
        /// The seed's Python stress test: 20-step sweeps between random colours.
        #[default]
        Sweep = "sweep",
        /// A phone turned continuously, read at 60 Hz.
        Rotate = "rotate",
        /// No gyroscope: a colour button tapped every 2–6 s.
        Taps = "taps",
        /// A recorded [`Trace`], looped, each device from its start at its own time offset.
        Replay = "replay",
    }
}

/// The interval between `deviceorientation` events (60 Hz), in ms.
pub const FRAME_MS: f64 = 1000.0 / 60.0;
/// Steps per sweep; the last step lands on the target.
pub const SWEEP_STEPS: u32 = 20;
/// A sweep pauses between `SWEEP_PAUSE_S` and `SWEEP_PAUSE_S × speed` seconds.
pub const SWEEP_PAUSE_S: f64 = 0.3;
/// A sweep's speed is drawn from this range.
pub const SWEEP_SPEEDS: std::ops::RangeInclusive<u32> = 1..=5;
/// Rotation speeds, degrees per second (direction drawn separately).
pub const ROTATE_DEG_PER_S: std::ops::RangeInclusive<f64> = 20.0..=180.0;
/// A rotating phone changes speed and direction after this many ms.
pub const ROTATE_CHANGE_MS: std::ops::RangeInclusive<f64> = 500.0..=3000.0;
/// The WebApp's colour buttons: one value per colour band.
pub const TAP_VALUES: [f64; 5] = [10.0, 80.0, 150.0, 230.0, 290.0];
/// Time between two taps, in ms.
pub const TAP_GAP_MS: std::ops::RangeInclusive<f64> = 2000.0..=6000.0;
/// Replaying devices start their trace spread over this many ms (or over one
/// trace period, if that is shorter), so they do not move in lockstep.
pub const REPLAY_SPREAD_MS: f64 = 5000.0;
/// The planner gives up on a scenario that yields this many events in a row
/// without a send (a trace whose value never changes).
pub const MAX_EVENTS_WITHOUT_SEND: u32 = 1 << 20;

/// One raw sensor reading: the `alpha` a phone reports at `t_ms`.
/// In JSON it is the pair `[t_ms, alpha]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "(f64, f64)", into = "(f64, f64)")]
pub struct SensorEvent {
    pub t_ms: f64,
    pub alpha: f64,
}

impl From<(f64, f64)> for SensorEvent {
    fn from((t_ms, alpha): (f64, f64)) -> Self {
        SensorEvent { t_ms, alpha }
    }
}

impl From<SensorEvent> for (f64, f64) {
    fn from(e: SensorEvent) -> Self {
        (e.t_ms, e.alpha)
    }
}

/// Why a trace cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("trace is not JSON of the form {{\"events\": [[t_ms, alpha], ...]}}")]
    NotJson(#[source] serde_json::Error),
    #[error("trace has no events")]
    Empty,
    #[error("trace event {index}: {why}")]
    BadEvent { index: usize, why: &'static str },
}

/// A recorded sequence of readings, times relative to the trace's start.
/// Times are finite, non-negative and never go backwards.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trace {
    events: Vec<SensorEvent>,
}

#[derive(Deserialize)]
struct TraceJson {
    events: Vec<SensorEvent>,
}

impl Trace {
    /// Checks and wraps a list of readings.
    pub fn new(events: Vec<SensorEvent>) -> Result<Trace, TraceError> {
        if events.is_empty() {
            return Err(TraceError::Empty);
        }
        let mut previous = 0.0;
        for (index, e) in events.iter().enumerate() {
            let why = if !e.t_ms.is_finite() || !e.alpha.is_finite() {
                Some("time and alpha must be finite numbers")
            } else if e.t_ms < previous {
                Some("time goes backwards (or is negative)")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(TraceError::BadEvent { index, why });
            }
            previous = e.t_ms;
        }
        Ok(Trace { events })
    }

    /// Reads `{"events": [[t_ms, alpha], ...]}`.
    pub fn from_json(text: &str) -> Result<Trace, TraceError> {
        let parsed: TraceJson = serde_json::from_str(text).map_err(TraceError::NotJson)?;
        Trace::new(parsed.events)
    }

    /// Writes `{"events": [[t_ms, alpha], ...]}`.
    pub fn to_json(&self) -> String {
        let pairs: Vec<[f64; 2]> = self.events.iter().map(|e| [e.t_ms, e.alpha]).collect();
        json!({ "events": pairs }).to_string()
    }

    /// The readings.
    pub fn events(&self) -> &[SensorEvent] {
        &self.events
    }

    /// One loop of the trace: its last time plus one frame, so the first
    /// event of the next loop never lands on the last of this one.
    pub fn period_ms(&self) -> f64 {
        self.events.last().map_or(0.0, |e| e.t_ms) + FRAME_MS
    }

    /// A built-in stand-in for a recording: someone picks the phone up, turns
    /// it slowly through the colours, holds, turns quickly back, holds (8 s at 60 Hz).
    pub fn builtin() -> Trace {
        const KEYS: [(f64, f64); 6] = [
            (0.0, 30.0),
            (1500.0, 30.0),
            (4000.0, 200.0),
            (5000.0, 200.0),
            (5600.0, 90.0),
            (8000.0, 90.0),
        ];
        let frames = (KEYS[KEYS.len() - 1].0 / FRAME_MS) as usize;
        let events = (0..=frames)
            .map(|i| {
                let t = i as f64 * FRAME_MS;
                let alpha =
                    KEYS.windows(2)
                        .find(|w| t <= w[1].0)
                        .map_or(KEYS[KEYS.len() - 1].1, |w| {
                            let (t0, a0) = w[0];
                            let (t1, a1) = w[1];
                            a0 + (a1 - a0) * (t - t0) / (t1 - t0)
                        });
                SensorEvent { t_ms: t, alpha }
            })
            .collect();
        Trace { events }
    }
}

/// The scenarios' random generator: xoshiro256++, the same on every target
/// (unlike `rand`'s `SmallRng`, which is xoshiro128++ on 32-bit targets such
/// as wasm32).
pub type ScenarioRng = rand_xoshiro::Xoshiro256PlusPlus;

/// The generator of device `device_index` in a run seeded `seed`.
fn device_rng(seed: u64, device_index: u32) -> ScenarioRng {
    ScenarioRng::seed_from_u64(seed ^ mix(device_index))
}

/// SplitMix64's finaliser: spreads device indices over the seed space.
fn mix(device_index: u32) -> u64 {
    splitmix(u64::from(device_index))
}

/// One step of SplitMix64: the same on every platform.
pub(crate) fn splitmix(z: u64) -> u64 {
    let mut z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The time (ms after the run's start) at which device `device_index` of a
/// run seeded `seed` starts playing `trace` in the `replay` scenario: in
/// `[0, min(period, REPLAY_SPREAD_MS))`, from SplitMix64 so that the page
/// (wasm32) and native code agree on it.
pub fn replay_offset_ms(trace: &Trace, seed: u64, device_index: u32) -> f64 {
    let spread = trace.period_ms().min(REPLAY_SPREAD_MS);
    // 53 random bits as a fraction in [0, 1).
    unit(splitmix(seed ^ mix(device_index))) * spread
}

/// 53 random bits of `bits` as a fraction in `[0, 1)`.
pub(crate) fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// A sweep in progress (the seed's `do_in_parallel`).
#[derive(Debug, Clone)]
struct Sweep {
    speed: u32,
    from: f64,
    to: f64,
    /// The next step, `0..SWEEP_STEPS`.
    step: u32,
}

impl Sweep {
    fn random(rng: &mut ScenarioRng) -> Sweep {
        Sweep {
            speed: rng.random_range(SWEEP_SPEEDS),
            from: f64::from(rng.random_range(0..=360u32)),
            to: f64::from(rng.random_range(0..=360u32)),
            step: 0,
        }
    }

    /// The seed's value for a step: linear by twentieths, the last step exact.
    fn value(&self, step: u32) -> f64 {
        if step == SWEEP_STEPS - 1 {
            self.to
        } else {
            self.from + f64::from(step) * (self.to - self.from) / f64::from(SWEEP_STEPS)
        }
    }

    fn pause_ms(&self, rng: &mut ScenarioRng) -> f64 {
        1000.0 * rng.random_range(SWEEP_PAUSE_S..=SWEEP_PAUSE_S * f64::from(self.speed))
    }
}

/// A phone turning continuously.
#[derive(Debug, Clone)]
struct Rotate {
    alpha: f64,
    deg_per_s: f64,
    change_at_ms: f64,
}

impl Rotate {
    fn new_motion(&mut self, rng: &mut ScenarioRng, now_ms: f64) {
        let sign = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
        self.deg_per_s = sign * rng.random_range(ROTATE_DEG_PER_S);
        self.change_at_ms = now_ms + rng.random_range(ROTATE_CHANGE_MS);
    }
}

/// A trace being replayed.
#[derive(Debug, Clone)]
struct Replay {
    trace: Arc<Trace>,
    index: usize,
    /// The run time at which this device started the trace.
    origin_ms: f64,
    /// The device's own clock at the current loop's trace time 0: whole
    /// periods since `origin_ms`. The throttle reads this clock, as a phone's
    /// throttle reads its own, so rounding never depends on the offset.
    loop_ms: f64,
}

#[derive(Debug, Clone)]
enum Motion {
    Sweep(Sweep),
    Rotate(Rotate),
    Taps,
    Replay(Replay),
}

/// One device's endless stream of sensor events.
#[derive(Debug, Clone)]
pub struct Scenario {
    kind: ScenarioKind,
    rng: ScenarioRng,
    /// When the next event happens (unused by `Replay`, which reads its trace).
    next_ms: f64,
    motion: Motion,
}

impl Scenario {
    /// The scenario of device `device_index` in a run seeded `seed`, starting
    /// at `start_ms`. `Replay` plays [`Trace::builtin`]; use
    /// [`Scenario::replay`] for another trace.
    pub fn new(kind: ScenarioKind, seed: u64, device_index: u32, start_ms: f64) -> Scenario {
        let mut rng = device_rng(seed, device_index);
        let (motion, next_ms) = match kind {
            ScenarioKind::Sweep => (Motion::Sweep(Sweep::random(&mut rng)), start_ms),
            ScenarioKind::Rotate => {
                let mut rotate = Rotate {
                    alpha: rng.random_range(0.0..360.0),
                    deg_per_s: 0.0,
                    change_at_ms: 0.0,
                };
                rotate.new_motion(&mut rng, start_ms);
                (Motion::Rotate(rotate), start_ms)
            }
            ScenarioKind::Taps => (Motion::Taps, start_ms + rng.random_range(TAP_GAP_MS)),
            ScenarioKind::Replay => {
                return Scenario::replay(Arc::new(Trace::builtin()), seed, device_index, start_ms)
            }
        };
        Scenario {
            kind,
            rng,
            next_ms,
            motion,
        }
    }

    /// Replays `trace` in a loop, from its first event, starting at
    /// `start_ms` plus the device's own time offset ([`replay_offset_ms`]):
    /// every device makes the same moves, shifted in time.
    pub fn replay(trace: Arc<Trace>, seed: u64, device_index: u32, start_ms: f64) -> Scenario {
        let offset = replay_offset_ms(&trace, seed, device_index);
        Scenario {
            kind: ScenarioKind::Replay,
            rng: device_rng(seed, device_index),
            next_ms: start_ms,
            motion: Motion::Replay(Replay {
                trace,
                index: 0,
                origin_ms: start_ms + offset,
                loop_ms: 0.0,
            }),
        }
    }

    /// Which kind of movement this is.
    pub fn kind(&self) -> ScenarioKind {
        self.kind
    }
}

impl Iterator for Scenario {
    type Item = SensorEvent;

    fn next(&mut self) -> Option<SensorEvent> {
        self.next_timed().map(|(_, event)| event)
    }
}

impl Scenario {
    /// The next event, with the time the device's throttle sees for it: the
    /// event's run time, except in a replay, where it is the time since the
    /// device started its trace (so every device throttles alike).
    fn next_timed(&mut self) -> Option<(f64, SensorEvent)> {
        let rng = &mut self.rng;
        let t_ms = self.next_ms;
        let alpha = match &mut self.motion {
            Motion::Sweep(sweep) => {
                let alpha = sweep.value(sweep.step);
                self.next_ms += sweep.pause_ms(rng);
                sweep.step += 1;
                if sweep.step == SWEEP_STEPS {
                    *sweep = Sweep::random(rng);
                }
                alpha
            }
            Motion::Rotate(rotate) => {
                let alpha = rotate.alpha;
                self.next_ms += FRAME_MS;
                rotate.alpha = (alpha + rotate.deg_per_s * FRAME_MS / 1000.0).rem_euclid(360.0);
                if self.next_ms >= rotate.change_at_ms {
                    rotate.new_motion(rng, self.next_ms);
                }
                alpha
            }
            Motion::Taps => {
                self.next_ms += rng.random_range(TAP_GAP_MS);
                // A `u32` range: a `usize` one would draw differently on wasm32.
                TAP_VALUES[rng.random_range(0..TAP_VALUES.len() as u32) as usize]
            }
            Motion::Replay(replay) => {
                if replay.index >= replay.trace.events.len() {
                    replay.index = 0;
                    replay.loop_ms += replay.trace.period_ms();
                }
                let event = replay.trace.events.get(replay.index)?;
                replay.index += 1;
                let clock = replay.loop_ms + event.t_ms;
                let event = SensorEvent {
                    t_ms: replay.origin_ms + clock,
                    alpha: event.alpha,
                };
                return Some((clock, event));
            }
        };
        Some((t_ms, SensorEvent { t_ms, alpha }))
    }
}

/// One send the page should make: `value` as `set_sensor`, then `update`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlannedSend {
    /// The time of the sensor event that caused it (when the page should
    /// send; latency corrected for coordinated omission is measured from here).
    pub intended_ms: f64,
    pub value: i64,
}

/// How readings become sends.
#[derive(Debug, Clone)]
enum Gate {
    /// `deviceorientation`: change-only, at most every 200 ms.
    Throttled(Throttle),
    /// Colour buttons: every tap is sent.
    EveryTap,
}

/// A device's sends, in time order, before an end time.
#[derive(Debug, Clone)]
pub struct Planner {
    events: Scenario,
    gate: Gate,
    end_ms: f64,
}

impl Planner {
    /// Plans the sends of `events` whose intended time is before `end_ms`
    /// (`f64::INFINITY` for no end).
    pub fn new(events: Scenario, end_ms: f64) -> Planner {
        let gate = match events.kind() {
            ScenarioKind::Taps => Gate::EveryTap,
            _ => Gate::Throttled(Throttle::new()),
        };
        Planner {
            events,
            gate,
            end_ms,
        }
    }

    /// Plans device `device_index`'s sends for a run (see [`Scenario::new`]).
    pub fn for_device(
        kind: ScenarioKind,
        seed: u64,
        device_index: u32,
        start_ms: f64,
        end_ms: f64,
    ) -> Planner {
        Planner::new(Scenario::new(kind, seed, device_index, start_ms), end_ms)
    }
}

impl Iterator for Planner {
    type Item = PlannedSend;

    fn next(&mut self) -> Option<PlannedSend> {
        for _ in 0..MAX_EVENTS_WITHOUT_SEND {
            let (clock, event) = self.events.next_timed()?;
            if event.t_ms >= self.end_ms {
                return None;
            }
            let value = match &mut self.gate {
                Gate::Throttled(throttle) => throttle.offer(event.alpha, clock),
                Gate::EveryTap => Some(event.alpha.floor() as i64),
            };
            if let Some(value) = value {
                return Some(PlannedSend {
                    intended_ms: event.t_ms,
                    value,
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::throttle::THROTTLE_MS;

    /// Independently applies the WebApp's rule to a list of readings:
    /// `v = floor(alpha)`; send when `v != last` (initially 0) and 200 ms
    /// have passed since the last send (initially the epoch, long ago).
    fn webapp_rule(events: &[SensorEvent]) -> Vec<(f64, i64)> {
        let mut last = 0i64;
        let mut last_time = f64::NEG_INFINITY;
        let mut sent = Vec::new();
        for e in events {
            let v = e.alpha.floor() as i64;
            if v != last && e.t_ms - last_time >= 200.0 {
                sent.push((e.t_ms, v));
                last = v;
                last_time = e.t_ms;
            }
        }
        sent
    }

    fn pairs(sends: impl Iterator<Item = PlannedSend>) -> Vec<(f64, i64)> {
        sends.map(|s| (s.intended_ms, s.value)).collect()
    }

    /// A 3 s, 60 Hz trace; replayed from phase 0 it is a simulated clock.
    fn frames(alpha_at: impl Fn(f64) -> f64) -> Vec<SensorEvent> {
        (0..180)
            .map(|i| {
                let t_ms = i as f64 * FRAME_MS;
                SensorEvent {
                    t_ms,
                    alpha: alpha_at(t_ms),
                }
            })
            .collect()
    }

    /// Plans `events` as one pass (no loop) through the throttle.
    fn plan_once(events: Vec<SensorEvent>) -> Vec<(f64, i64)> {
        let end = events.last().map_or(0.0, |e| e.t_ms);
        let trace = Arc::new(Trace::new(events).expect("valid trace"));
        let mut scenario = Scenario::replay(trace, 0, 0, 0.0);
        // Start the replay with no offset so trace time = run time.
        if let Motion::Replay(r) = &mut scenario.motion {
            r.origin_ms = 0.0;
        }
        // Up to and including the last event (the next loop starts a frame later).
        pairs(Planner::new(scenario, end + 1.0))
    }

    #[test]
    fn ramp_through_the_throttle_sends_what_the_rule_allows() {
        let ramp = frames(|t| t * 0.05);
        let expected = webapp_rule(&ramp);
        let sent = plan_once(ramp);
        assert_eq!(sent, expected);
        // Properties of the rule, whatever the exact list is.
        assert!(sent.windows(2).all(|w| w[1].0 - w[0].0 >= THROTTLE_MS));
        assert!(sent.windows(2).all(|w| w[1].1 != w[0].1));
        // The first send is the first frame whose floor differs from the
        // initial 0; after that the ramp has always moved on by 200 ms, so
        // each gap is 200 ms rounded up to a frame, and sends continue to the end.
        let first = (0..)
            .map(|i| i as f64 * FRAME_MS)
            .find(|t| (t * 0.05).floor() != 0.0);
        assert_eq!(sent.first().map(|s| s.0), first);
        assert!(sent
            .windows(2)
            .all(|w| w[1].0 - w[0].0 < THROTTLE_MS + FRAME_MS));
        let end = 179.0 * FRAME_MS;
        assert!(sent
            .last()
            .is_some_and(|s| end - s.0 < THROTTLE_MS + FRAME_MS));
        assert!(
            (14..=15).contains(&sent.len()),
            "3 s at one send per 200-217 ms"
        );
    }

    #[test]
    fn constant_alpha_sends_once() {
        let sent = plan_once(frames(|_| 123.4));
        assert_eq!(sent, vec![(0.0, 123)]);
    }

    #[test]
    fn sweep_follows_the_seed_script() {
        let mut s = Scenario::new(ScenarioKind::Sweep, 7, 3, 1000.0);
        // The previous event, and the speed of the sweep it belonged to
        // (the pause after it is drawn from that sweep's speed).
        let mut previous: Option<(SensorEvent, u32)> = None;
        let mut speeds_seen = std::collections::BTreeSet::new();
        for _ in 0..(SWEEP_STEPS * 30) {
            let Motion::Sweep(sweep) = s.motion.clone() else {
                panic!("sweep")
            };
            let event = s.next().expect("endless");
            assert_eq!(event.alpha, sweep.value(sweep.step));
            assert!((0.0..=360.0).contains(&event.alpha));
            if sweep.step == SWEEP_STEPS - 1 {
                assert_eq!(event.alpha, sweep.to);
            }
            if let Some((p, speed)) = previous {
                let gap = event.t_ms - p.t_ms;
                let max = 1000.0 * SWEEP_PAUSE_S * f64::from(speed);
                assert!(
                    gap >= 300.0 - 1e-9 && gap <= max + 1e-9,
                    "gap {gap} speed {speed}"
                );
            } else {
                assert_eq!(event.t_ms, 1000.0);
            }
            speeds_seen.insert(sweep.speed);
            previous = Some((event, sweep.speed));
        }
        assert!(speeds_seen.iter().all(|s| SWEEP_SPEEDS.contains(s)));
        assert!(speeds_seen.len() > 1, "new sweeps draw new speeds");
    }

    #[test]
    fn same_seed_repeats_and_devices_differ() {
        for kind in ScenarioKind::ALL {
            let take = |seed, device| -> Vec<SensorEvent> {
                Scenario::new(*kind, seed, device, 0.0).take(200).collect()
            };
            assert_eq!(take(42, 5), take(42, 5), "{kind}");
            assert_ne!(take(42, 5), take(42, 6), "{kind}");
            assert_ne!(take(42, 5), take(43, 5), "{kind}");
        }
    }

    #[test]
    fn rotate_is_60_hz_wrapped_and_at_most_5_sends_per_second() {
        let events: Vec<_> = Scenario::new(ScenarioKind::Rotate, 9, 1, 0.0)
            .take(60 * 30)
            .collect();
        assert!(events.iter().all(|e| (0.0..360.0).contains(&e.alpha)));
        assert!(events
            .windows(2)
            .all(|w| (w[1].t_ms - w[0].t_ms - FRAME_MS).abs() < 1e-6));
        let sends: Vec<_> =
            Planner::for_device(ScenarioKind::Rotate, 9, 1, 0.0, 30_000.0).collect();
        assert!(
            sends.len() > 30 * 3,
            "a turning phone sends often: {}",
            sends.len()
        );
        for (i, s) in sends.iter().enumerate() {
            let in_window = sends[i..]
                .iter()
                .take_while(|o| o.intended_ms < s.intended_ms + 1000.0);
            assert!(in_window.count() <= 5);
        }
    }

    #[test]
    fn taps_use_the_buttons_every_2_to_6_seconds_and_all_are_sent() {
        let taps: Vec<_> = Scenario::new(ScenarioKind::Taps, 3, 0, 500.0)
            .take(100)
            .collect();
        assert!(taps[0].t_ms >= 2500.0 && taps[0].t_ms <= 6500.0);
        assert!(taps.iter().all(|t| TAP_VALUES.contains(&t.alpha)));
        assert!(taps
            .windows(2)
            .all(|w| (2000.0..=6000.0).contains(&(w[1].t_ms - w[0].t_ms))));
        let end = taps[99].t_ms;
        let sends = pairs(Planner::for_device(
            ScenarioKind::Taps,
            3,
            0,
            500.0,
            end + 1.0,
        ));
        let expected: Vec<_> = taps.iter().map(|t| (t.t_ms, t.alpha as i64)).collect();
        assert_eq!(sends, expected);
    }

    #[test]
    fn replay_loops_from_the_start_at_a_per_device_offset() {
        let trace =
            Arc::new(Trace::from_json(r#"{"events":[[0,10],[100,20],[250,30]]}"#).expect("valid"));
        let period = trace.period_ms();
        let events: Vec<_> = Scenario::replay(trace.clone(), 1, 2, 1000.0)
            .take(9)
            .collect();
        let offset = replay_offset_ms(&trace, 1, 2);
        assert!((0.0..period).contains(&offset));
        assert_eq!(events[0].t_ms, 1000.0 + offset, "starts at its offset");
        assert_eq!(events[0].alpha, 10.0, "from the trace's first event");
        assert!(events.windows(2).all(|w| w[1].t_ms > w[0].t_ms));
        // Three loops: each event repeats one period later.
        for i in 0..6 {
            assert!((events[i + 3].t_ms - events[i].t_ms - period).abs() < 1e-9);
            assert_eq!(events[i + 3].alpha, events[i].alpha);
        }
        let other: Vec<_> = Scenario::replay(trace.clone(), 1, 3, 1000.0)
            .take(9)
            .collect();
        assert_ne!(events, other);
        assert_eq!(
            other.iter().map(|e| e.alpha).collect::<Vec<_>>(),
            events.iter().map(|e| e.alpha).collect::<Vec<_>>()
        );
        let long = Arc::new(Trace::new(frames(|t| t)).expect("valid"));
        let long = Trace::new(
            (0..3)
                .flat_map(|k| {
                    long.events().iter().map(move |e| SensorEvent {
                        t_ms: e.t_ms + f64::from(k) * 3000.0,
                        ..*e
                    })
                })
                .collect(),
        )
        .expect("valid");
        assert!(long.period_ms() > REPLAY_SPREAD_MS);
        assert!((0..50).all(|i| replay_offset_ms(&long, 9, i) < REPLAY_SPREAD_MS));
    }

    #[test]
    fn replay_sends_the_same_values_on_every_device_shifted_in_time() {
        // A phone turned back and forth, 3 s at 60 Hz, looped.
        let trace =
            Arc::new(Trace::new(frames(|t| 180.0 + 150.0 * (t / 500.0).sin())).expect("valid"));
        let sends = |device: u32| -> Vec<PlannedSend> {
            Planner::new(
                Scenario::replay(trace.clone(), 5, device, 1000.0),
                f64::INFINITY,
            )
            .take(60)
            .collect()
        };
        let first = sends(0);
        let offset0 = replay_offset_ms(&trace, 5, 0);
        let mut offsets = std::collections::BTreeSet::new();
        for device in 0..10 {
            let these = sends(device);
            let shift = replay_offset_ms(&trace, 5, device) - offset0;
            offsets.insert(shift.to_bits());
            assert_eq!(
                these.iter().map(|s| s.value).collect::<Vec<_>>(),
                first.iter().map(|s| s.value).collect::<Vec<_>>(),
                "device {device}"
            );
            assert!(these
                .iter()
                .zip(&first)
                .all(|(a, b)| (a.intended_ms - b.intended_ms - shift).abs() < 1e-6));
            assert_eq!(
                these.iter().map(|s| s.intended_ms).collect::<Vec<_>>(),
                sends(device)
                    .iter()
                    .map(|s| s.intended_ms)
                    .collect::<Vec<_>>(),
                "repeatable"
            );
        }
        assert_eq!(offsets.len(), 10, "every device has its own offset");
        // The sequence is what the rule gives over the trace looped on the
        // device's own clock (trace time plus whole periods).
        let looped: Vec<SensorEvent> = (0..)
            .flat_map(|k| {
                let loop_ms = f64::from(k) * trace.period_ms();
                trace.events().iter().map(move |e| SensorEvent {
                    t_ms: loop_ms + e.t_ms,
                    ..*e
                })
            })
            .take_while(|e| {
                e.t_ms <= first.last().map_or(0.0, |s| s.intended_ms) - 1000.0 - offset0
            })
            .collect();
        let rule = webapp_rule(&looped);
        assert_eq!(rule.len(), first.len());
        assert!(rule
            .iter()
            .zip(&first)
            .all(|(r, s)| r.1 == s.value && (r.0 + 1000.0 + offset0 - s.intended_ms).abs() < 1e-6));
    }

    #[test]
    fn traces_round_trip_and_bad_ones_are_refused() {
        let builtin = Trace::builtin();
        let back = Trace::from_json(&builtin.to_json()).expect("valid");
        // serde_json's default float parsing may differ in the last bit.
        assert_eq!(back.events().len(), builtin.events().len());
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(1.0);
        assert!(back
            .events()
            .iter()
            .zip(builtin.events())
            .all(|(a, b)| close(a.t_ms, b.t_ms) && close(a.alpha, b.alpha)));
        assert!(builtin.period_ms() > 8000.0);
        assert!(matches!(
            Trace::from_json("nope"),
            Err(TraceError::NotJson(_))
        ));
        assert!(matches!(
            Trace::from_json(r#"{"events":[[1]]}"#),
            Err(TraceError::NotJson(_))
        ));
        assert!(matches!(
            Trace::from_json(r#"{"events":[]}"#),
            Err(TraceError::Empty)
        ));
        assert!(matches!(
            Trace::from_json(r#"{"events":[[0,1],[50,2],[20,3]]}"#),
            Err(TraceError::BadEvent { index: 2, .. })
        ));
        assert!(matches!(
            Trace::from_json(r#"{"events":[[-5,1]]}"#),
            Err(TraceError::BadEvent { index: 0, .. })
        ));
        assert!(matches!(
            Trace::new(vec![SensorEvent {
                t_ms: 0.0,
                alpha: f64::NAN
            }]),
            Err(TraceError::BadEvent { index: 0, .. })
        ));
    }

    #[test]
    fn a_trace_that_never_changes_ends_the_plan() {
        let flat = Arc::new(
            Trace::new(vec![SensorEvent {
                t_ms: 0.0,
                alpha: 0.5,
            }])
            .expect("valid"),
        );
        let mut planner = Planner::new(Scenario::replay(flat, 0, 0, 0.0), f64::INFINITY);
        assert_eq!(planner.next(), None);
    }

    /// The generator is portable: these values, drawn natively, are what
    /// the page draws on wasm32 (a platform-dependent generator would fail
    /// here on one of them; `tests/spread.rs` compares the page's count).
    #[test]
    fn seeded_values_are_pinned() {
        let events = |kind| -> Vec<(f64, f64)> {
            Scenario::new(kind, 42, 7, 0.0)
                .take(3)
                .map(|e| (e.t_ms, e.alpha))
                .collect()
        };
        let sends = |kind| -> Vec<(f64, i64)> {
            pairs(Planner::for_device(kind, 42, 7, 0.0, 20_000.0).take(3))
        };
        assert_eq!(
            events(ScenarioKind::Sweep),
            [(0.0, 197.0), (300.0, 199.7), (600.0, 202.4)]
        );
        assert_eq!(
            events(ScenarioKind::Rotate),
            [
                (0.0, 19.11938637158192),
                (16.666666666666668, 16.931274888281877),
                (33.333333333333336, 14.743163404981834)
            ]
        );
        assert_eq!(
            sends(ScenarioKind::Rotate),
            [
                (0.0, 19),
                (216.66666666666663, 350),
                (416.6666666666668, 324)
            ]
        );
        assert_eq!(
            sends(ScenarioKind::Taps),
            [
                (2212.4376263509103, 230),
                (6401.900789254129, 290),
                (8545.158324188083, 10)
            ]
        );
        assert_eq!(
            crate::plan::start_offset_ms(ScenarioKind::Rotate, 42, 7),
            617.7197939696507
        );
    }

    #[test]
    fn planner_stops_at_the_end_time() {
        let sends: Vec<_> = Planner::for_device(ScenarioKind::Sweep, 1, 0, 0.0, 10_000.0).collect();
        assert!(!sends.is_empty());
        assert!(sends.iter().all(|s| s.intended_ms < 10_000.0));
        assert!(sends
            .windows(2)
            .all(|w| w[1].intended_ms - w[0].intended_ms >= THROTTLE_MS));
    }
}
