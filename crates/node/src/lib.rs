//! `r2-node`: a Reality2-compatible local node.
//!
//! It speaks the protocol of `reality2-protocol.md` (the project's contract with
//! the real Elixir node): GraphQL over HTTP at `/reality2`, Absinthe
//! subscriptions over Phoenix Channels at `/reality2/websocket`, sentants whose
//! automations run the IoT demo, web apps served from `--sites`, HTTPS with a
//! self-signed certificate, counters at `/r2-node/stats`, and faults injected
//! on demand at `/r2-node/faults`.
//!
//! # Layout
//!
//! - [`sentant`]: sentant definitions (JSON or YAML), the automation state
//!   machine, actions, and the registry of loaded sentants with their signal bus.
//! - [`node`]: [`Node`], the shared state a server holds (registry, schema,
//!   stats, faults).
//! - [`fidelity`]: where r2-node copies the real node's behaviour that
//!   changes load or results (textual values, the 1 s wait for unknown ids,
//!   `__internal` to every sentant, `h2`, no CORS, `description: ""`), and
//!   `--lenient`, which restores the kinder behaviour.
//! - [`faults`]: fault injection (latency, injected errors, dropped sockets,
//!   refused connections, forgotten sentants) and the [`faults::Gate`] that
//!   refuses connections.
//! - [`schema`]: the GraphQL schema (async-graphql), tested with `execute` and
//!   `execute_stream`.
//! - [`stats`]: counters since start, served as JSON.
//! - [`config`]: command-line configuration.
//! - [`http`]: the axum router: `/reality2` (POST JSON/form, GET), stats,
//!   faults, CORS, body limit, sites.
//! - [`ws`]: the Phoenix V1/V2 socket carrying Absinthe subscriptions, generic
//!   over `Sink`/`Stream`.
//! - [`tls`]: the self-signed certificate and the HTTPS listener.
//! - [`server`]: [`run`], which serves listeners until `shutdown` resolves.
//! - [`control`]: who may use `/r2-node/faults` (loopback, or a token).
//! - [`limits`]: limits on sentants, events and GraphQL documents, counted
//!   in the stats when hit.
//! - [`conn`]: connection caps (total and per peer), timeouts, the open-file
//!   limit and the byte budget of a websocket's queue.
//! - [`certstore`]: the self-signed certificate kept between starts.
//! - [`confine`]: keeps the sites server inside its folder.
//! - [`fuzz`]: entry points for fuzzing the parsers of untrusted input
//!   (websocket frames, `/reality2` requests, sentant definitions), used by
//!   the cargo-fuzz targets in `crates/node/fuzz/` and a stable test.

pub mod certstore;
pub mod config;
pub mod confine;
pub mod conn;
pub mod control;
pub mod faults;
pub mod fidelity;
pub mod fuzz;
pub mod http;
pub mod limits;
pub mod node;
pub mod schema;
pub mod sentant;
pub mod server;
pub mod stats;
pub mod tls;
pub mod ws;

pub use config::Config;
pub use faults::FaultSpec;
pub use fidelity::Fidelity;
pub use node::Node;
pub use server::{run, Listeners, Running};
