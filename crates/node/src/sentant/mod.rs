//! Sentants: their definitions, the automations that run them, and the
//! registry of loaded sentants with their signal subscribers.
//!
//! - [`definition`]: reading JSON/YAML sentant and swarm definitions; the
//!   public `events` and `signals` they declare.
//! - [`automation`]: the pure state machine ([`Machine`]) and its actions
//!   (`set`/`get` of `ai.reality2.vars`, `send`, `signal`, `debug`, `set`).
//! - [`registry`]: [`Registry`], one tokio task per sentant, lookups by id and
//!   name, `sentantSend`, `awaitSignal` subscriptions, `init` and `__internal`.
//! - [`textual`]: the real node's replacement of `__key__` references as
//!   text (strings stay strings).

pub mod automation;
pub mod definition;
pub mod registry;
pub mod textual;

pub use automation::{Effect, Machine, Target};
pub use definition::{DefinitionError, PublicEvent, SentantDef, SwarmDef};
pub use registry::{
    LoadError, Registry, SendError, Sentant, Signal, SignalReceiver, SubscribeError,
};
