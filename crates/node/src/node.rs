//! [`Node`]: the state a server shares between its connections — the sentant
//! registry, the GraphQL schema built over it, the counters and the faults.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use serde_json::Value;

use crate::faults::{FaultError, FaultSpec, Faults};
use crate::fidelity::Fidelity;
use crate::limits::Limits;
use crate::schema::{self, R2Schema};
use crate::sentant::Registry;
use crate::stats::{Gauge, Stats};

/// A Reality2-compatible node. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Arc<Registry>,
    schema: R2Schema,
    stats: Arc<Stats>,
    faults: Faults,
    limits: Arc<Limits>,
}

impl Node {
    /// A node with no sentants that behaves as the real node. Call it inside
    /// a tokio runtime: each sentant gets a task when it loads.
    pub fn new() -> Node {
        Node::configured(Fidelity::default(), Limits::default())
    }

    /// A node with no sentants, as close to the real node as `fidelity` says
    /// (see [`crate::fidelity`]), with the default limits.
    pub fn with_fidelity(fidelity: Fidelity) -> Node {
        Node::configured(fidelity, Limits::default())
    }

    /// A node with no sentants that behaves as the real node and keeps
    /// `limits` (see [`crate::limits`]).
    pub fn with_limits(limits: Limits) -> Node {
        Node::configured(Fidelity::default(), limits)
    }

    /// The node `config` asks for: its fidelity and its limits.
    pub fn for_config(config: &crate::Config) -> Node {
        Node::configured(config.fidelity, config.limits.clone())
    }

    /// A node with no sentants, as close to the real node as `fidelity` says,
    /// keeping `limits`.
    pub fn configured(fidelity: Fidelity, limits: Limits) -> Node {
        let limits = Arc::new(limits);
        let stats = Arc::new(Stats::default());
        let registry = Registry::configured(Arc::clone(&stats), fidelity, Arc::clone(&limits));
        let schema = schema::build(Arc::clone(&registry));
        Node {
            inner: Arc::new(Inner {
                registry,
                schema,
                stats,
                faults: Faults::default(),
                limits,
            }),
        }
    }

    /// The limits this node keeps.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The GraphQL schema (its data holds the registry).
    pub fn schema(&self) -> &R2Schema {
        &self.inner.schema
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// Holds the counter `pick` selects one higher until the guard drops
    /// (for "now" counters such as `sockets`).
    pub fn gauge(&self, pick: fn(&Stats) -> &AtomicU64) -> Gauge {
        self.inner.stats.gauge(pick)
    }

    /// The faults in force (see [`crate::faults`]).
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// Checks `spec` and makes it the faults in force; `forget` drops every
    /// sentant now. Call it inside a tokio runtime.
    pub fn apply_faults(&self, spec: FaultSpec) -> Result<(), FaultError> {
        spec.validate()?;
        self.inner.faults.set(&spec);
        if spec.forget {
            self.inner.registry.forget();
        }
        Ok(())
    }

    /// How close to the real node this node behaves.
    pub fn fidelity(&self) -> &Fidelity {
        self.inner.registry.fidelity()
    }

    /// The loaded sentants.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.inner.registry
    }

    /// The counters and the number of sentants loaded now, as a JSON object.
    pub fn stats_json(&self) -> Value {
        let mut snapshot = self.inner.stats.snapshot();
        snapshot.insert(
            "sentants".to_owned(),
            Value::from(self.inner.registry.len()),
        );
        Value::Object(snapshot)
    }
}

impl Default for Node {
    fn default() -> Self {
        Node::new()
    }
}
