//! Run measurements in bounded memory: HDR latency histograms, counters,
//! gauges, errors by kind and a one-second time series, plus
//! [`tab_bottleneck`], which says when the browser tab (not the node) was
//! what limited the run.
//!
//! Latencies come in two forms. *Uncorrected* ones run from when a request
//! actually left the tab. *Corrected* ones run from when it was planned to
//! leave ([`crate::scenario::PlannedSend::intended_ms`]): a tab (or node) that
//! stalls delays the sends planned during the stall, and only the corrected
//! figures show that wait (coordinated omission).
//!
//! Recording goes through `RunMetrics`' methods so the current second's
//! bucket sees it too; the fields are public for reading.

use std::collections::{BTreeMap, VecDeque};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::text::excerpt;

/// The lowest latency kept, in µs.
const LOWEST_US: u64 = 1;
/// The highest latency kept, in µs (one hour); longer ones count as one hour.
const HIGHEST_US: u64 = 3_600_000_000;
/// Significant decimal digits kept.
const SIGFIG: u8 = 3;

/// Scheduler lag above this p99 (ms) means the tab could not keep time.
pub const MAX_SCHEDULER_LAG_P99_MS: f64 = 20.0;
/// A tenth of sends leaving more than this (ms, p90) after their planned time means the tab fell behind.
pub const MAX_SEND_LAG_P90_MS: f64 = 20.0;
/// A fetch queue deeper than this many requests per device (plus
/// [`FETCH_QUEUE_SLACK`]) means requests piled up in the tab: a device has at
/// most one send (two requests) in flight when the tab keeps up.
pub const FETCH_QUEUE_PER_DEVICE: u64 = 2;
/// Allowance added to the fetch queue bound.
pub const FETCH_QUEUE_SLACK: u64 = 16;
/// Seconds of series looked at to decide that the fetch queue keeps growing.
pub const FETCH_QUEUE_TREND_S: usize = 10;
/// Different error kinds kept; more are counted under [`OTHER_ERRORS`].
pub const MAX_ERROR_KINDS: usize = 32;
/// The kind errors beyond [`MAX_ERROR_KINDS`] are counted under.
pub const OTHER_ERRORS: &str = "other";
/// Characters of an error's first example kept.
pub const MAX_EXAMPLE_CHARS: usize = 300;
/// One-second buckets kept (one hour); older ones are dropped.
pub const MAX_BUCKETS: usize = 3600;

/// A latency distribution, recorded in µs from 1 µs to 1 h at 3 significant
/// digits. Its serde form is its recorded values, `[[µs, count], ...]`, so a
/// worker can hand its whole distribution to the page.
///
/// Each of its 23,552 slots counts in 32 bits (92 KB a histogram, a run
/// keeps about twenty): a slot saturates past four billion values, which
/// no run records in one slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Latency(Histogram<u32>);

impl Serialize for Latency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.0
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value())),
        )
    }
}

impl<'de> Deserialize<'de> for Latency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let values = Vec::<(u64, u64)>::deserialize(deserializer)?;
        let mut latency = Latency::new();
        for (us, count) in values {
            let count = u32::try_from(count).unwrap_or(u32::MAX);
            latency
                .0
                .saturating_record_n(us.clamp(LOWEST_US, HIGHEST_US), count);
        }
        Ok(latency)
    }
}

/// The usual percentiles of a [`Latency`], in ms (all 0 when empty).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub count: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Latency {
        // The bounds are constants that hdrhistogram accepts (checked by the tests).
        let histogram = Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGFIG)
            .expect("constant histogram bounds are valid");
        Latency(histogram)
    }

    /// Records one latency in ms. Below 1 µs (including negative, from a
    /// clock step) counts as 1 µs, above an hour as an hour; NaN is ignored.
    pub fn record_ms(&mut self, ms: f64) {
        if ms.is_nan() {
            return;
        }
        let us = (ms * 1000.0)
            .round()
            .clamp(LOWEST_US as f64, HIGHEST_US as f64);
        self.0.saturating_record(us as u64);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Latency) {
        for v in other.0.iter_recorded() {
            self.0
                .saturating_record_n(v.value_iterated_to(), v.count_at_value());
        }
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The value at quantile `q` (0..=1), in ms.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        us_to_ms(self.0.value_at_quantile(q))
    }

    /// p50, p90, p99, max and count.
    pub fn summary(&self) -> Percentiles {
        Percentiles {
            p50: self.quantile_ms(0.50),
            p90: self.quantile_ms(0.90),
            p99: self.quantile_ms(0.99),
            max: us_to_ms(self.0.max()),
            count: self.count(),
        }
    }

    /// Forgets every value.
    pub fn reset(&mut self) {
        self.0.reset();
    }

    /// How many values were recorded in `[low_ms, high_ms)` (to the
    /// histogram's precision); `high_ms` may be infinite.
    pub fn count_between_ms(&self, low_ms: f64, high_ms: f64) -> u64 {
        let low = (low_ms * 1000.0).max(0.0) as u64;
        let high = if high_ms.is_finite() {
            (high_ms * 1000.0).max(0.0) as u64
        } else {
            u64::MAX
        };
        self.0
            .iter_recorded()
            .filter(|v| (low..high).contains(&v.value_iterated_to()))
            .map(|v| u64::from(v.count_at_value()))
            .sum()
    }
}

fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

word_enum! {
    /// The HTTP operations a run times.
    pub enum Op {
        SentantAll = "sentantAll",
        SentantLoad = "sentantLoad",
        SentantGet = "sentantGet",
        SetSensor = "set_sensor",
        Update = "update",
        SentantUnload = "sentantUnload",
    }
}

/// A level that goes up and down, and the highest it reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Gauge {
    pub now: u64,
    pub max: u64,
}

impl Gauge {
    pub fn set(&mut self, value: u64) {
        self.now = value;
        self.max = self.max.max(value);
    }
}

/// One kind of error: how often, and the first example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorStat {
    pub count: u64,
    pub example: String,
}

/// One second of a run.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Bucket {
    /// Seconds since the run started (this bucket covers `t_s..t_s+1`).
    pub t_s: u64,
    pub sends: u64,
    pub signals: u64,
    pub errors: u64,
    /// Live sockets at the end of the second.
    pub sockets: u64,
    /// Deepest fetch queue during the second.
    pub fetch_queue: u64,
    /// Send latency (corrected) in this second, ms.
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Bucket {
    /// Adds another engine's same second: counts and levels add up; the
    /// latencies are approximated (p50 weighted by sends, p99 the higher).
    pub fn merge(&mut self, other: &Bucket) {
        let sends = self.sends + other.sends;
        if sends > 0 {
            self.p50_ms = (self.p50_ms * self.sends as f64 + other.p50_ms * other.sends as f64)
                / sends as f64;
        }
        self.p99_ms = self.p99_ms.max(other.p99_ms);
        self.sends = sends;
        self.signals += other.signals;
        self.errors += other.errors;
        self.sockets += other.sockets;
        self.fetch_queue += other.fetch_queue;
    }
}

/// Buckets of several engines' series merged second by second (by `t_s`),
/// oldest first.
pub fn merge_buckets<'a>(series: impl IntoIterator<Item = &'a [Bucket]>) -> Vec<Bucket> {
    let mut by_second: BTreeMap<u64, Bucket> = BTreeMap::new();
    for buckets in series {
        for b in buckets {
            by_second
                .entry(b.t_s)
                .and_modify(|m| m.merge(b))
                .or_insert(*b);
        }
    }
    by_second.into_values().collect()
}

/// The last [`MAX_BUCKETS`] seconds of a run, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    buckets: VecDeque<Bucket>,
}

impl Series {
    fn push(&mut self, bucket: Bucket) {
        if self.buckets.len() == MAX_BUCKETS {
            self.buckets.pop_front();
        }
        self.buckets.push_back(bucket);
    }

    /// The closed buckets, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Bucket> + ExactSizeIterator {
        self.buckets.iter()
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    pub fn last(&self) -> Option<&Bucket> {
        self.buckets.back()
    }
}

/// The header of [`series_csv`].
pub const SERIES_CSV_HEADER: &str =
    "t_s,sends,signals,errors,sockets,fetch_queue,send_p50_ms,send_p99_ms";

/// 1-second buckets as CSV, one row a second, with [`SERIES_CSV_HEADER`].
pub fn series_csv<'a>(buckets: impl IntoIterator<Item = &'a Bucket>) -> String {
    let mut csv = String::from(SERIES_CSV_HEADER);
    csv.push('\n');
    for b in buckets {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{:.3},{:.3}\n",
            b.t_s, b.sends, b.signals, b.errors, b.sockets, b.fetch_queue, b.p50_ms, b.p99_ms
        ));
    }
    csv
}

/// What the run put on the wire, counted as it happened, to set beside what
/// its profile is expected to put there ([`crate::profile::Load`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireCounts {
    /// Devices whose join (every request up to the sensor card) completed.
    pub joins: u64,
    /// GraphQL POSTs made by joins, before the `update` on connect.
    pub join_posts: u64,
    /// Websockets opened by the run's devices (first opens and reconnects).
    pub device_socket_opens: u64,
    /// Subscription frames (`subscription:data`) the devices' sockets received.
    pub device_frames: u64,
    /// `update` events the devices sent (on connect and with each value).
    pub updates_sent: u64,
    /// Page loads whose assets were downloaded (`assets=1`), and their bytes.
    pub asset_loads: u64,
    pub asset_bytes: u64,
    /// Heartbeats sent on the devices' sockets.
    pub heartbeats: u64,
}

impl WireCounts {
    /// Adds another engine's counts.
    pub fn merge(&mut self, other: &WireCounts) {
        self.joins += other.joins;
        self.join_posts += other.join_posts;
        self.device_socket_opens += other.device_socket_opens;
        self.device_frames += other.device_frames;
        self.updates_sent += other.updates_sent;
        self.asset_loads += other.asset_loads;
        self.asset_bytes += other.asset_bytes;
        self.heartbeats += other.heartbeats;
    }
}

/// Everything measured during one run. Its serde form carries everything
/// but the second being filled, so an engine's closed metrics reach the
/// page whole ([`RunMetrics::merge`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMetrics {
    /// When the run started (the clock the page passes in), ms.
    pub start_ms: f64,
    /// HTTP round trips per operation, indexed like [`Op::ALL`].
    http: [Latency; 6],
    /// A send (`set_sensor` + `update`) from when it left to both answers.
    pub send_latency: Latency,
    /// The same, from when it was planned to leave.
    pub send_latency_corrected: Latency,
    /// How late sends left the tab: actual minus planned time.
    pub send_lag: Latency,
    /// Value sent → the `update` signal carrying it arrived, from the actual send.
    pub signal_latency: Latency,
    /// The same, from the planned send.
    pub signal_latency_corrected: Latency,
    /// Websocket opened, joined, subscription confirmed (each from the start of the connect).
    pub ws_connect: Latency,
    pub ws_joined: Latency,
    pub ws_subscribed: Latency,
    /// Hiccup meter: how late the tab's timers fired.
    pub scheduler_lag: Latency,
    /// How long a device was without its subscription after its socket
    /// dropped, until it was subscribed again (ms).
    pub subscription_gap: Latency,
    /// Sockets opened again after a drop.
    pub reconnects: u64,
    /// Devices whose sentant vanished from the node (a restart, someone else's delete).
    pub devices_vanished: u64,
    /// Vanished devices whose sentant this run loaded again.
    pub devices_recreated: u64,
    /// A device's value sent → the projector's `view` signal carrying it (ms).
    pub projector_latency: Latency,
    /// Signals the simulated projectors received (`view`, `monitor`, device list).
    pub projector_signals: u64,
    /// A device's value sent → `view`'s signal carrying it on another
    /// device's view socket (the WebApp profile's fan-out), ms.
    pub view_latency: Latency,
    /// `view` signals the devices received.
    pub view_signals: u64,
    /// Page assets downloaded per page load, ms (`assets=1`).
    pub asset_load: Latency,
    /// What the run put on the wire.
    pub wire: WireCounts,
    /// How long the tab was hidden during the run, and how much of that while
    /// it was sending (a hidden tab's timers are throttled by the browser).
    pub hidden_ms: f64,
    pub hidden_while_sending_ms: f64,
    /// Sends (`set_sensor` + `update` each) the devices' scenarios planned
    /// within the run ([`crate::plan::RunPlan::sends_planned`] recomputes it).
    pub sends_planned: u64,
    pub sends_ok: u64,
    pub sends_failed: u64,
    pub signals_received: u64,
    /// Signals that first brought a value back after a later `update`
    /// overtook its `set_sensor` (counted in `signals_received`, not timed:
    /// see [`crate::sent`]).
    pub signals_stale: u64,
    pub devices_created: u64,
    pub devices_deleted: u64,
    /// Signals received per device index.
    pub signals_by_device: Vec<u64>,
    /// Errors by kind (at most [`MAX_ERROR_KINDS`] + [`OTHER_ERRORS`]).
    pub errors: BTreeMap<String, ErrorStat>,
    pub errors_total: u64,
    pub sockets: Gauge,
    pub fetch_queue: Gauge,
    /// HTTP requests that waited for one of the tab's fetch slots
    /// ([`crate::gate`]), and the slots (all engines').
    #[serde(default)]
    pub fetches_held: u64,
    #[serde(default)]
    pub fetch_slots: u32,
    pub series: Series,
    /// The second being filled, and its send latencies.
    #[serde(skip)]
    current: Bucket,
    #[serde(skip)]
    current_latency: Latency,
}

impl RunMetrics {
    /// Empty metrics for a run of `devices` devices starting at `start_ms`.
    pub fn new(start_ms: f64, devices: u32) -> RunMetrics {
        RunMetrics {
            start_ms,
            http: Default::default(),
            send_latency: Latency::new(),
            send_latency_corrected: Latency::new(),
            send_lag: Latency::new(),
            signal_latency: Latency::new(),
            signal_latency_corrected: Latency::new(),
            ws_connect: Latency::new(),
            ws_joined: Latency::new(),
            ws_subscribed: Latency::new(),
            scheduler_lag: Latency::new(),
            subscription_gap: Latency::new(),
            reconnects: 0,
            devices_vanished: 0,
            devices_recreated: 0,
            projector_latency: Latency::new(),
            projector_signals: 0,
            view_latency: Latency::new(),
            view_signals: 0,
            asset_load: Latency::new(),
            wire: WireCounts::default(),
            hidden_ms: 0.0,
            hidden_while_sending_ms: 0.0,
            sends_planned: 0,
            sends_ok: 0,
            sends_failed: 0,
            signals_received: 0,
            signals_stale: 0,
            devices_created: 0,
            devices_deleted: 0,
            signals_by_device: vec![0; devices as usize],
            errors: BTreeMap::new(),
            errors_total: 0,
            sockets: Gauge::default(),
            fetch_queue: Gauge::default(),
            fetches_held: 0,
            fetch_slots: 0,
            series: Series::default(),
            current: Bucket::default(),
            current_latency: Latency::new(),
        }
    }

    /// Adds what another engine of the same run measured (its devices are
    /// others, [`crate::shard`]): counts, distributions and errors add up;
    /// gauges add their levels and their peaks (an upper bound of the
    /// run's peak); time hidden is the page's, the same in every engine, so
    /// the longer is kept; the series merge second by second.
    pub fn merge(&mut self, other: &RunMetrics) {
        self.start_ms = self.start_ms.min(other.start_ms);
        for (mine, theirs) in self.http.iter_mut().zip(&other.http) {
            mine.merge(theirs);
        }
        for (mine, theirs) in [
            (&mut self.send_latency, &other.send_latency),
            (
                &mut self.send_latency_corrected,
                &other.send_latency_corrected,
            ),
            (&mut self.send_lag, &other.send_lag),
            (&mut self.signal_latency, &other.signal_latency),
            (
                &mut self.signal_latency_corrected,
                &other.signal_latency_corrected,
            ),
            (&mut self.ws_connect, &other.ws_connect),
            (&mut self.ws_joined, &other.ws_joined),
            (&mut self.ws_subscribed, &other.ws_subscribed),
            (&mut self.scheduler_lag, &other.scheduler_lag),
            (&mut self.subscription_gap, &other.subscription_gap),
            (&mut self.projector_latency, &other.projector_latency),
            (&mut self.view_latency, &other.view_latency),
            (&mut self.asset_load, &other.asset_load),
        ] {
            mine.merge(theirs);
        }
        for (mine, theirs) in [
            (&mut self.reconnects, other.reconnects),
            (&mut self.devices_vanished, other.devices_vanished),
            (&mut self.devices_recreated, other.devices_recreated),
            (&mut self.projector_signals, other.projector_signals),
            (&mut self.view_signals, other.view_signals),
            (&mut self.sends_planned, other.sends_planned),
            (&mut self.sends_ok, other.sends_ok),
            (&mut self.sends_failed, other.sends_failed),
            (&mut self.signals_received, other.signals_received),
            (&mut self.signals_stale, other.signals_stale),
            (&mut self.devices_created, other.devices_created),
            (&mut self.devices_deleted, other.devices_deleted),
            (&mut self.fetches_held, other.fetches_held),
        ] {
            *mine += theirs;
        }
        self.fetch_slots += other.fetch_slots;
        self.wire.merge(&other.wire);
        self.hidden_ms = self.hidden_ms.max(other.hidden_ms);
        self.hidden_while_sending_ms = self
            .hidden_while_sending_ms
            .max(other.hidden_while_sending_ms);
        if self.signals_by_device.len() < other.signals_by_device.len() {
            self.signals_by_device
                .resize(other.signals_by_device.len(), 0);
        }
        for (mine, theirs) in self
            .signals_by_device
            .iter_mut()
            .zip(&other.signals_by_device)
        {
            *mine += theirs;
        }
        for (kind, stat) in &other.errors {
            self.error_stat(kind, &stat.example).count += stat.count;
        }
        self.errors_total += other.errors_total;
        for (mine, theirs) in [
            (&mut self.sockets, other.sockets),
            (&mut self.fetch_queue, other.fetch_queue),
        ] {
            mine.now += theirs.now;
            mine.max += theirs.max;
        }
        let mine: Vec<Bucket> = self.series.iter().copied().collect();
        let theirs: Vec<Bucket> = other.series.iter().copied().collect();
        self.series = Series::default();
        for bucket in merge_buckets([&mine[..], &theirs[..]]) {
            self.series.push(bucket);
        }
        self.current.merge(&other.current);
        self.current_latency.merge(&other.current_latency);
    }

    /// The HTTP round trips of one operation.
    pub fn http(&self, op: Op) -> &Latency {
        &self.http[op as usize]
    }

    /// Records one HTTP round trip of `op`, in ms.
    pub fn record_http(&mut self, op: Op, ms: f64) {
        self.http[op as usize].record_ms(ms);
    }

    /// A send planned for `intended_ms`, sent at `sent_ms`, both answers in at `done_ms`.
    pub fn record_send(&mut self, intended_ms: f64, sent_ms: f64, done_ms: f64) {
        self.sends_ok += 1;
        self.current.sends += 1;
        self.send_latency.record_ms(done_ms - sent_ms);
        self.send_latency_corrected.record_ms(done_ms - intended_ms);
        self.current_latency.record_ms(done_ms - intended_ms);
        self.send_lag.record_ms(sent_ms - intended_ms);
    }

    /// A send that failed: counted, and its error recorded.
    pub fn record_send_failed(&mut self, kind: &str, example: &str) {
        self.sends_failed += 1;
        self.record_error(kind, example);
    }

    /// Device `device`'s `update` signal carrying a value planned for
    /// `intended_ms` and sent at `sent_ms` arrived at `received_ms`.
    pub fn record_signal(&mut self, device: u32, intended_ms: f64, sent_ms: f64, received_ms: f64) {
        self.record_signal_only(device);
        self.signal_latency.record_ms(received_ms - sent_ms);
        self.signal_latency_corrected
            .record_ms(received_ms - intended_ms);
    }

    /// A signal that first brought a value back after a later `update`
    /// overtook its `set_sensor`: counted, not timed.
    pub fn record_signal_stale(&mut self, device: u32) {
        self.record_signal_only(device);
        self.signals_stale += 1;
    }

    /// A signal that cannot be matched to a send (e.g. the reply to the
    /// `update` sent on connect): counted, not timed.
    pub fn record_signal_only(&mut self, device: u32) {
        self.signals_received += 1;
        self.current.signals += 1;
        if let Some(n) = self.signals_by_device.get_mut(device as usize) {
            *n += 1;
        }
    }

    /// The tab was hidden for `ms`; `sending` when scenarios were running then.
    pub fn record_hidden(&mut self, ms: f64, sending: bool) {
        let ms = ms.max(0.0);
        self.hidden_ms += ms;
        if sending {
            self.hidden_while_sending_ms += ms;
        }
    }

    /// One timer's lateness (hiccup meter), ms.
    pub fn record_scheduler_lag(&mut self, ms: f64) {
        self.scheduler_lag.record_ms(ms);
    }

    /// Counts an error of `kind`, keeping the first example (shortened).
    pub fn record_error(&mut self, kind: &str, example: &str) {
        self.errors_total += 1;
        self.current.errors += 1;
        self.error_stat(kind, example).count += 1;
    }

    /// The entry errors of `kind` count in (under [`OTHER_ERRORS`] once
    /// [`MAX_ERROR_KINDS`] are kept), made with `example` if new.
    fn error_stat(&mut self, kind: &str, example: &str) -> &mut ErrorStat {
        let kind = if self.errors.contains_key(kind) || self.errors.len() < MAX_ERROR_KINDS {
            kind
        } else {
            OTHER_ERRORS
        };
        self.errors
            .entry(kind.to_owned())
            .or_insert_with(|| ErrorStat {
                count: 0,
                example: excerpt(example, MAX_EXAMPLE_CHARS),
            })
    }

    /// Live websockets now.
    pub fn set_sockets(&mut self, live: u64) {
        self.sockets.set(live);
        self.current.sockets = live;
    }

    /// Requests waiting in the tab's fetch queue now.
    pub fn set_fetch_queue(&mut self, depth: u64) {
        self.fetch_queue.set(depth);
        self.current.fetch_queue = self.current.fetch_queue.max(depth);
    }

    /// Closes the buckets of every second that ended by `now_ms` (seconds
    /// with nothing recorded give empty buckets). Call it at least once a second.
    pub fn tick(&mut self, now_ms: f64) {
        let elapsed_s = ((now_ms - self.start_ms) / 1000.0).floor();
        if elapsed_s.is_nan() || elapsed_s < 0.0 {
            return;
        }
        let now_s = elapsed_s as u64;
        while self.current.t_s < now_s {
            let mut closed = self.current;
            if self.current_latency.count() > 0 {
                closed.p50_ms = self.current_latency.quantile_ms(0.50);
                closed.p99_ms = self.current_latency.quantile_ms(0.99);
                self.current_latency.reset();
            }
            self.series.push(closed);
            // Empty seconds older than the series keeps need not be made.
            let next_s = (self.current.t_s + 1).max(now_s.saturating_sub(MAX_BUCKETS as u64));
            self.current = Bucket {
                t_s: next_s,
                sockets: self.sockets.now,
                fetch_queue: self.fetch_queue.now,
                ..Bucket::default()
            };
        }
    }
}

/// Why the tab, not the node, limited the run (`None` when it kept up).
///
/// The tab is the bottleneck when any of these holds:
/// - its timers fired late: scheduler lag p99 > [`MAX_SCHEDULER_LAG_P99_MS`];
/// - sends fell behind: p90 of (actual − planned send time) > [`MAX_SEND_LAG_P90_MS`];
/// - requests waited for a fetch slot of the tab's ([`crate::gate`]);
/// - requests piled up: the fetch queue's maximum exceeded
///   [`FETCH_QUEUE_PER_DEVICE`] × devices + [`FETCH_QUEUE_SLACK`], or over the
///   last [`FETCH_QUEUE_TREND_S`] seconds its depth never went down and rose
///   by at least [`FETCH_QUEUE_SLACK`].
pub fn tab_bottleneck(m: &RunMetrics) -> Option<String> {
    let mut why = Vec::new();
    let lag = m.scheduler_lag.quantile_ms(0.99);
    if m.scheduler_lag.count() > 0 && lag > MAX_SCHEDULER_LAG_P99_MS {
        why.push(format!(
            "the tab's timers fired late (scheduler lag p99 {lag:.1} ms > {MAX_SCHEDULER_LAG_P99_MS} ms)"
        ));
    }
    let send_lag = m.send_lag.quantile_ms(0.90);
    if m.send_lag.count() > 0 && send_lag > MAX_SEND_LAG_P90_MS {
        why.push(format!(
            "sends fell behind their planned times (p90 {send_lag:.1} ms late > {MAX_SEND_LAG_P90_MS} ms)"
        ));
    }
    if m.fetches_held > 0 {
        why.push(format!(
            "{} requests waited for one of the tab's {} fetch slots (Chromium refuses a renderer's requests past a limit)",
            m.fetches_held,
            m.fetch_slots,
        ));
    }
    let devices = m.signals_by_device.len().max(1) as u64;
    let bound = FETCH_QUEUE_PER_DEVICE * devices + FETCH_QUEUE_SLACK;
    if m.fetch_queue.max > bound {
        why.push(format!(
            "requests piled up in the tab (fetch queue reached {} > {bound} for {devices} devices)",
            m.fetch_queue.max
        ));
    } else if let Some((first, last)) = queue_trend(&m.series) {
        why.push(format!(
            "the tab's fetch queue kept growing (from {first} to {last} over the last {FETCH_QUEUE_TREND_S} s)"
        ));
    }
    (!why.is_empty()).then(|| why.join("; "))
}

/// The fetch queue depth at the start and end of the last seconds, when it
/// never went down in between and rose by at least [`FETCH_QUEUE_SLACK`].
fn queue_trend(series: &Series) -> Option<(u64, u64)> {
    let skip = series.len().checked_sub(FETCH_QUEUE_TREND_S)?;
    let recent: Vec<u64> = series.iter().skip(skip).map(|b| b.fetch_queue).collect();
    let (&first, &last) = (recent.first()?, recent.last()?);
    let never_down = recent.windows(2).all(|w| w[1] >= w[0]);
    (never_down && last >= first + FETCH_QUEUE_SLACK).then_some((first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_percentiles_in_ms() {
        let mut l = Latency::new();
        assert_eq!(l.summary(), Percentiles::default());
        for ms in 1..=100 {
            l.record_ms(f64::from(ms));
        }
        let p = l.summary();
        assert_eq!(p.count, 100);
        // 3 significant digits: within 0.1 % of the exact percentile.
        for (got, want) in [(p.p50, 50.0), (p.p90, 90.0), (p.p99, 99.0), (p.max, 100.0)] {
            assert!((got - want).abs() <= want * 0.001, "{got} vs {want}");
        }
    }

    #[test]
    fn latency_clamps_odd_inputs() {
        let mut l = Latency::new();
        l.record_ms(f64::NAN);
        assert_eq!(l.count(), 0);
        l.record_ms(-5.0);
        l.record_ms(1e12);
        l.record_ms(f64::INFINITY);
        assert_eq!(l.count(), 3);
        assert!(l.summary().max >= 3_600_000.0 * 0.999);
        assert!(l.quantile_ms(0.0) <= 0.001);
    }

    #[test]
    fn merge_adds_counts_and_keeps_percentiles() {
        let (mut a, mut b) = (Latency::new(), Latency::new());
        (0..50).for_each(|_| a.record_ms(10.0));
        (0..50).for_each(|_| b.record_ms(1000.0));
        a.merge(&b);
        assert_eq!(a.count(), 100);
        assert!((a.quantile_ms(0.25) - 10.0).abs() < 0.02);
        assert!((a.summary().p99 - 1000.0).abs() < 1.0);
    }

    #[test]
    fn op_indexes_match_all() {
        let mut m = RunMetrics::new(0.0, 1);
        for (i, op) in Op::ALL.iter().enumerate() {
            for _ in 0..=i {
                m.record_http(*op, 5.0);
            }
        }
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(m.http(*op).count(), i as u64 + 1, "{op}");
        }
    }

    /// Sends planned every 200 ms for 10 s, each answered in 10 ms, but the
    /// tab stalls from 5 s to 6 s: the sends planned then leave at 6 s.
    fn stalled_run() -> RunMetrics {
        let mut m = RunMetrics::new(0.0, 1);
        for i in 0..50 {
            let intended = f64::from(i) * 200.0;
            let sent = if (5000.0..7000.0).contains(&intended) {
                7000.0
            } else {
                intended
            };
            m.record_send(intended, sent, sent + 10.0);
            m.record_signal(0, intended, sent, sent + 30.0);
            m.tick(sent + 10.0);
        }
        m
    }

    #[test]
    fn a_stall_shows_in_corrected_latency_only() {
        let m = stalled_run();
        let raw = m.send_latency.summary();
        let corrected = m.send_latency_corrected.summary();
        assert_eq!((raw.count, corrected.count), (50, 50));
        assert!(raw.p99 < 10.1 && raw.max < 10.1, "{raw:?}");
        // 10 of 50 sends (20 %) waited 210..2010 ms: p99 and max see the stall.
        assert!(corrected.p99 > 800.0, "{corrected:?}");
        assert!((corrected.max - 2010.0).abs() < 2.0, "{corrected:?}");
        assert!(corrected.p50 < 10.1);
        assert!(m.signal_latency.summary().max < 30.1);
        assert!(m.signal_latency_corrected.summary().max > 1000.0);
        let why = tab_bottleneck(&m).expect("sends left late");
        assert!(why.contains("sends fell behind"), "{why}");
    }

    #[test]
    fn a_stale_signal_is_counted_not_timed() {
        let mut m = RunMetrics::new(0.0, 2);
        m.record_signal(0, 0.0, 1.0, 30.0);
        m.record_signal_stale(1);
        m.record_signal_only(1);
        assert_eq!((m.signals_received, m.signals_stale), (3, 1));
        assert_eq!(m.signals_by_device, vec![1, 2]);
        assert_eq!(m.signal_latency.count(), 1);
        assert_eq!(m.signal_latency_corrected.count(), 1);
    }

    #[test]
    fn a_run_that_keeps_up_is_no_bottleneck() {
        let mut m = RunMetrics::new(0.0, 10);
        for i in 0..100 {
            let t = f64::from(i) * 100.0;
            m.record_send(t, t + 1.0, t + 8.0);
            m.record_scheduler_lag(2.0);
            m.set_fetch_queue(3);
            m.tick(t);
        }
        assert_eq!(tab_bottleneck(&m), None);
        m.record_scheduler_lag(500.0);
        assert_eq!(tab_bottleneck(&m), None, "one hiccup in 101 is below p99");
        (0..5).for_each(|_| m.record_scheduler_lag(500.0));
        assert!(tab_bottleneck(&m).is_some_and(|w| w.contains("timers fired late")));
    }

    #[test]
    fn a_piling_fetch_queue_is_a_bottleneck() {
        let mut deep = RunMetrics::new(0.0, 10);
        deep.set_fetch_queue(2 * 10 + 16 + 1);
        assert!(tab_bottleneck(&deep).is_some_and(|w| w.contains("piled up")));

        let mut growing = RunMetrics::new(0.0, 100);
        for s in 0..20u64 {
            growing.set_fetch_queue(s * 5);
            growing.tick((s + 1) as f64 * 1000.0);
        }
        assert!(growing.fetch_queue.max <= 2 * 100 + 16);
        assert!(tab_bottleneck(&growing).is_some_and(|w| w.contains("kept growing")));
    }

    #[test]
    fn requests_held_at_the_tab_s_fetch_slots_make_it_the_bottleneck() {
        let mut m = RunMetrics::new(0.0, 10);
        m.fetch_slots = 1024;
        assert_eq!(tab_bottleneck(&m), None);
        m.fetches_held = 3;
        let why = tab_bottleneck(&m).expect("the tab held requests back");
        assert!(
            why.contains("3 requests waited for one of the tab's 1024 fetch slots"),
            "{why}"
        );
        let mut other = RunMetrics::new(0.0, 10);
        other.fetch_slots = 1024;
        other.fetches_held = 2;
        m.merge(&other);
        assert_eq!(
            (m.fetches_held, m.fetch_slots),
            (5, 2048),
            "two engines' slots and waits add up"
        );
    }

    #[test]
    fn a_latency_keeps_its_slots_in_32_bits_and_saturates() {
        let mut latency = Latency::new();
        // The size the type's documentation gives.
        assert_eq!(latency.0.distinct_values(), 23_552);
        latency.0.saturating_record_n(1000, u32::MAX);
        latency.record_ms(1.0);
        assert_eq!(
            latency.count_between_ms(0.0, f64::INFINITY),
            u64::from(u32::MAX),
            "the slot saturates"
        );
        // A count past 32 bits from a worker's result saturates too.
        let big: Latency =
            serde_json::from_str("[[1000, 5000000000], [2000, 3]]").expect("a latency");
        assert_eq!(
            (
                big.count_between_ms(0.0, 1.5),
                big.count_between_ms(1.5, f64::INFINITY)
            ),
            (u64::from(u32::MAX), 3)
        );
    }

    #[test]
    fn series_buckets_count_each_second_and_stay_bounded() {
        let mut m = RunMetrics::new(1000.0, 2);
        m.record_send(1000.0, 1000.0, 1050.0);
        m.record_send(1100.0, 1100.0, 1120.0);
        m.record_signal_only(1);
        m.record_signal_only(7); // unknown device: counted, not per device
        m.set_sockets(2);
        m.tick(2500.0);
        m.record_error("http 500", "boom");
        m.tick(4000.0); // second 1 closes, second 2 was empty
        let b: Vec<_> = m.series.iter().copied().collect();
        assert_eq!(b.len(), 3);
        assert_eq!(
            (b[0].t_s, b[0].sends, b[0].signals, b[0].sockets),
            (0, 2, 2, 2)
        );
        assert!((b[0].p99_ms - 50.0).abs() < 0.1 && (b[0].p50_ms - 20.0).abs() < 0.1);
        assert_eq!(
            (b[1].t_s, b[1].errors, b[1].sends, b[1].sockets),
            (1, 1, 0, 2)
        );
        assert_eq!((b[2].t_s, b[2].errors), (2, 0));
        assert_eq!(m.signals_by_device, vec![0, 1]);
        assert_eq!(m.signals_received, 2);

        m.tick(1000.0 + 1e9); // a very long gap
        assert_eq!(m.series.len(), MAX_BUCKETS);
        let last = m.series.last().expect("buckets");
        assert_eq!(last.t_s + 1, 1_000_000);
        m.tick(f64::NAN);
        m.tick(0.0);
        assert_eq!(m.series.len(), MAX_BUCKETS);
    }

    #[test]
    fn errors_keep_first_example_and_bounded_kinds() {
        let mut m = RunMetrics::new(0.0, 1);
        m.record_send_failed("timeout", &"x".repeat(1000));
        m.record_error("timeout", "second");
        assert_eq!(m.sends_failed, 1);
        let t = &m.errors["timeout"];
        assert_eq!(t.count, 2);
        assert!(t.example.starts_with("xxx") && t.example.chars().count() <= MAX_EXAMPLE_CHARS + 1);
        for i in 0..100 {
            m.record_error(&format!("kind {i}"), "e");
        }
        assert_eq!(m.errors.len(), MAX_ERROR_KINDS + 1);
        assert_eq!(
            m.errors[OTHER_ERRORS].count,
            100 - (MAX_ERROR_KINDS as u64 - 1)
        );
        assert_eq!(m.errors_total, 102);
    }

    #[test]
    fn gauges_keep_their_maximum() {
        let mut m = RunMetrics::new(0.0, 1);
        for n in [3, 9, 4] {
            m.set_sockets(n);
        }
        assert_eq!(m.sockets, Gauge { now: 4, max: 9 });
    }

    #[test]
    fn count_between_splits_the_recorded_values() {
        let mut latency = Latency::new();
        for ms in [1.0, 4.0, 12.0, 12.5, 60.0, 5000.0] {
            latency.record_ms(ms);
        }
        assert_eq!(latency.count_between_ms(0.0, 5.0), 2);
        assert_eq!(latency.count_between_ms(5.0, 20.0), 2);
        assert_eq!(latency.count_between_ms(20.0, 1000.0), 1);
        assert_eq!(latency.count_between_ms(1000.0, f64::INFINITY), 1);
        assert_eq!(
            latency.count_between_ms(0.0, f64::INFINITY),
            latency.count()
        );
    }

    #[test]
    fn series_csv_has_a_row_per_second() {
        let mut m = RunMetrics::new(0.0, 1);
        m.record_send(0.0, 1.0, 11.0);
        m.tick(1000.0);
        m.record_error("network", "x");
        m.tick(2000.0);
        let csv = series_csv(m.series.iter());
        let rows: Vec<&str> = csv.lines().collect();
        assert_eq!(rows[0], SERIES_CSV_HEADER);
        assert_eq!(rows.len(), 3, "{csv}");
        assert!(rows[1].starts_with("0,1,0,0,"), "{csv}");
        assert!(rows[2].starts_with("1,0,0,1,"), "{csv}");
    }

    #[test]
    fn two_engines_metrics_merge_into_the_runs() {
        let mut a = RunMetrics::new(0.0, 4);
        let mut b = RunMetrics::new(3.0, 4);
        a.record_send(0.0, 1.0, 11.0);
        a.record_signal(0, 0.0, 1.0, 21.0);
        a.record_error("http_500", "first");
        a.hidden_ms = 500.0;
        a.set_sockets(2);
        a.tick(1_500.0);
        for ms in [30.0, 40.0] {
            b.record_send(0.0, 0.0, ms);
        }
        b.record_signal(3, 0.0, 1.0, 41.0);
        b.record_signal(3, 0.0, 1.0, 41.0);
        b.record_error("http_500", "second");
        b.record_error("timeout", "slow");
        b.hidden_ms = 400.0;
        b.set_sockets(3);
        b.tick(1_500.0);

        // The worker hands its metrics over as JSON.
        let b: RunMetrics =
            serde_json::from_str(&serde_json::to_string(&b).expect("json")).expect("read back");
        a.merge(&b);
        assert_eq!((a.sends_ok, a.signals_received), (3, 3));
        assert_eq!(a.send_latency_corrected.count(), 3);
        // To the histogram's three significant digits.
        assert!((a.send_latency_corrected.summary().max - 40.0).abs() < 0.1);
        assert_eq!(a.signals_by_device, vec![1, 0, 0, 2]);
        assert_eq!(a.errors_total, 3);
        assert_eq!(a.errors["http_500"].count, 2);
        assert_eq!(a.errors["http_500"].example, "first");
        assert_eq!(a.errors["timeout"].count, 1);
        assert_eq!(a.hidden_ms, 500.0, "the page's time hidden, not the sum");
        assert_eq!((a.sockets.now, a.sockets.max), (5, 5));
        assert_eq!(a.start_ms, 0.0);
        let second: Vec<(u64, u64, u64)> = a
            .series
            .iter()
            .map(|b| (b.t_s, b.sends, b.sockets))
            .collect();
        assert_eq!(second, vec![(0, 3, 5)], "one second, both engines' sends");
        let bucket = a.series.last().copied().expect("a bucket");
        assert!((bucket.p99_ms - 40.0).abs() < 0.1, "{bucket:?}");
    }

    #[test]
    fn latency_survives_json() {
        let mut l = Latency::new();
        for ms in [0.5, 1.0, 7.25, 100.0, 3_000.0] {
            l.record_ms(ms);
        }
        let text = serde_json::to_string(&l).expect("json");
        let back: Latency = serde_json::from_str(&text).expect("read back");
        assert_eq!(back, l);
        assert_eq!(back.summary(), l.summary());
        assert!(
            serde_json::from_str::<Latency>("[[0, 3]]").is_ok(),
            "clamped, not refused"
        );
    }
}
