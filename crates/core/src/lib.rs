//! `r2-core`: the pure logic of r2-stress, shared by the page, the node and the tests.
//!
//! No web-sys, no tokio, no clocks, no threads: time is always passed in as
//! `f64` milliseconds (e.g. from `performance.now()`). Compiles natively and
//! for `wasm32-unknown-unknown`.
//!
//! # Layout
//!
//! - [`phoenix`]: Phoenix Channels frames (V1 objects / V2 arrays) as Absinthe's socket uses them.
//! - [`graphql`]: operation documents, the IoT demo's sentant definitions,
//!   WebApp-style request bodies, and parsing of GraphQL answers.
//! - [`throttle`]: the sensor page's change-only, 200 ms send throttle.
//! - [`scenario`]: seeded, repeatable sensor scenarios (sweep, rotate, taps,
//!   replay) and the [`scenario::Planner`] that turns them into sends.
//! - [`plan`]: a run's plan: spread or synchronised starts, each device's
//!   sends, and the sends planned, alike natively and in the page.
//! - [`sent`]: a device's recent sends, and which one each signal answers
//!   (fresh, or stale when a later `update` overtook its `set_sensor`).
//! - [`gate`]: the tab's HTTP requests in flight, held under Chromium's
//!   per-process limit.
//! - [`metrics`]: HDR latency histograms, counters, gauges, errors, the
//!   one-second series and the tab-bottleneck check.
//! - [`summary`]: the run summary JSON and its pass/fail verdict.
//! - [`config`]: the run configuration and its query string.
//! - [`shard`]: a run's devices split over several engines (Web Workers).
//! - [`profile`]: what kind of client a device is (`webapp`, `lean`, `seed`)
//!   and the load that makes on a node.
//! - [`names`]: sentant names unique to a tab and run.
//! - [`colour`]: the demo's five colour bands.
//! - [`fleet`]: several tabs as one fleet: per-tab reports, commands, totals.
//! - [`text`]: the `word_enum!` macro and text excerpts.
//! - [`assets`]: the WebApp page assets a phone downloads on each page load.
//! - [`webapp`]: the IoT WebApp's requests, byte for byte.
//! - [`subscription`]: one websocket's Absinthe subscriptions as a pure state
//!   machine (join, subscribe, heartbeat, reconnect), typed signals.

#[macro_use]
pub mod text;

pub mod assets;
pub mod colour;
pub mod config;
pub mod fleet;
pub mod gate;
pub mod graphql;
pub mod metrics;
pub mod names;
pub mod phoenix;
pub mod plan;
pub mod profile;
pub mod scenario;
pub mod sent;
pub mod shard;
pub mod subscription;
pub mod summary;
pub mod throttle;
pub mod webapp;

pub use text::UnknownWord;
