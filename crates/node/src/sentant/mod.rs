//! Sentants: their definitions, the automations that run them, and the
//! registry of loaded sentants with their signal subscribers.
//!
//! - [`definition`]: reading JSON/YAML sentant and swarm definitions; the
//!   public `events` and `signals` they declare.
//! - [`automation`]: the pure state machine ([`Machine`]) and its actions
//!   (`set`/`get` of `ai.reality2.vars`, `send`, `signal`, `debug`, `set`).
//! - [`registry`]: [`Registry`], one tokio task per sentant, lookups by id and
//!   name, `sentantSend`, `awaitSignal` subscriptions, `init` and `__internal`.

pub mod automation;
pub mod definition;
pub mod registry;

pub use automation::{Effect, Machine, Target};
pub use definition::{DefinitionError, PublicEvent, SentantDef, SwarmDef};
pub use registry::{
    LoadError, Registry, SendError, Sentant, Signal, SignalReceiver, SubscribeError,
};
