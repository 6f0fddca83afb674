//! `r2-stress`: one browser tab that behaves like a lecture theatre of phones
//! using the Reality2 IoT demo, to stress-test a node before a class joins it.
//!
//! # Layout
//!
//! - [`app`]: the root components: [`app::Root`] picks the control page
//!   ([`app::App`]) or device mode ([`phone`], `?device`).
//! - [`phone`]: device mode: a real phone acting as one device.
//! - [`fleet`]: tabs of one browser as one fleet (`BroadcastChannel`): per-tab
//!   figures, totals, and the control view (`?control`).
//! - [`state`]: the page's pure UI state (`Reducible`, an `Action` enum).
//! - [`view`]: components that only render and dispatch: the control
//!   panel, live counters, the device tile grid, the summary.
//! - [`engine`]: where a run's engine lives: a Web Worker (the
//!   `r2-stress-engine` binary) by default, or the main thread; the page
//!   gives it commands and draws the snapshots it posts.
//! - [`run`]: the load generator that lives outside the component tree:
//!   virtual devices, their HTTP (`fetch`) and websocket transports, the
//!   send scheduler and the measurements.
//! - [`net`]: the one Reality2 client (`gloo-net`): GraphQL over HTTP, the
//!   websockets driving `r2_core`'s subscription machine, their owner.
//! - [`browser`]: small wrappers over the browser APIs the rest uses (clock,
//!   location, randomness, timers).
//! - [`heap`]: the counted allocator: what the wasm holds now and at most.
//!
//! The pure logic (protocol frames, GraphQL documents, scenarios and the
//! throttle, metrics, the summary) lives in the `r2-core` crate.

pub mod app;
pub mod browser;
pub mod engine;
pub mod fleet;
pub mod heap;
pub mod net;
pub mod phone;
pub mod run;
pub mod state;
pub mod view;
