//! The loaded sentants: lookup by id and by name, one task per sentant that
//! handles its events in order, and each sentant's signal subscribers.
//!
//! Every sentant has an inbox (an unbounded mpsc channel) drained by its own
//! tokio task, which owns the sentant's [`Machine`] and carries out its effects:
//! sends go into other inboxes (or its own), signals go to the subscribers of
//! that sentant and event. Different sentants run in parallel. No lock is held
//! across an await; the maps are behind one `RwLock` taken for O(1) lookups.
//!
//! Loading a name that exists redefines that sentant (same id, same task and
//! subscribers; its automations and variables restart). After a load the
//! sentant gets `init`, and sentants get `__internal` with
//! `{"id", "name", "activity": "created"}` (`"deleted"` after an unload): as
//! the real node, every sentant, each in its own inbox, and on a redefinition
//! with a freshly generated id ([`InternalCast::Everyone`]); or only those
//! with an `__internal` transition, with the kept id
//! ([`InternalCast::Listeners`]). Other events that no transition of the
//! receiver names are dropped before they are queued.
//!
//! A `send` action to a name or id that is not loaded holds the sender's task
//! for the registry's [`Patience`] (about 1 s, as the real node's
//! automation waits), then the event is dropped. A delayed send resolves its
//! target when the action runs, without waiting (the real node waits when
//! the timer fires).
//!
//! The registry keeps the engine's [`Limits`]: an inbox holds at most
//! `max_inbox` events (more are dropped, `__internal` casts too), an event
//! carries the number of immediate sends that led to it and a send past
//! `max_hops` is dropped, [`Registry::try_load`] refuses new sentants past
//! `max_sentants`, and a sentant takes at most `max_subscriptions_per_sentant`
//! subscribers. Each hit counts in the stats (see [`crate::limits`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use uuid::Uuid;

use super::automation::{Effect, Machine, Target};
use super::definition::SentantDef;
use crate::fidelity::{Fidelity, InternalCast, Patience};
use crate::limits::{Hit, Limits, MIN_PACED_DELAY};
use crate::stats::Stats;

/// The event a loaded sentant gets first.
pub const INIT_EVENT: &str = "init";
/// The event that tells sentants about loads and unloads.
pub const INTERNAL_EVENT: &str = "__internal";

/// A loaded sentant as clients see it: an immutable snapshot, replaced when the
/// sentant is redefined.
#[derive(Debug)]
pub struct Sentant {
    /// Its id, kept across redefinitions.
    pub id: Uuid,
    /// Its definition (name, description, automations, events, signals).
    pub def: Arc<SentantDef>,
}

impl Sentant {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.def.name
    }
}

/// A published signal, as `awaitSignal` delivers it.
#[derive(Debug)]
pub struct Signal {
    /// The sentant that published it.
    pub sentant: Arc<Sentant>,
    /// The signal's event.
    pub event: String,
    /// Its parameters.
    pub parameters: Map<String, Value>,
    /// The passthrough of the event that led to it.
    pub passthrough: Value,
}

/// Why `sentantSend` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No sentant has that id.
    #[error("no sentant has that id")]
    UnknownId,
    /// The event is not a public event of that sentant.
    #[error("the event is not a public event of that sentant")]
    InvalidEvent,
    /// The parameters are not a JSON object.
    #[error("the parameters are not a JSON object")]
    Parameters,
}

/// Why `awaitSignal` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    /// No sentant has that id.
    #[error("no sentant has that id")]
    UnknownId,
    /// The signal is neither a public signal of that sentant nor `debug`.
    #[error("the signal is not a public signal of that sentant")]
    InvalidSignal,
    /// The sentant has `--max-subscriptions-per-sentant` subscriptions.
    #[error("the sentant has too many subscriptions")]
    TooMany,
}

/// Why a load was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The node holds `--max-sentants` sentants.
    #[error("the node holds its limit of {0} sentants")]
    TooMany(usize),
}

/// The receiving end of a subscription: signals of one sentant and event, in
/// the order the sentant published them. It ends when the sentant is unloaded.
pub type SignalReceiver = mpsc::UnboundedReceiver<Arc<Signal>>;

/// What a sentant's task receives.
enum Message {
    Event {
        event: String,
        parameters: Map<String, Value>,
        passthrough: Value,
        /// Immediate sends that led to it (see [`crate::limits::Limits::max_hops`]).
        hops: u32,
    },
    Redefine(Arc<Sentant>),
}

/// The subscribers of one sentant, by event. Shared by the registry entry and
/// the task; dropped (ending every subscription) when both are gone.
#[derive(Default)]
struct Subscribers(Mutex<Vec<(String, mpsc::UnboundedSender<Arc<Signal>>)>>);

impl Subscribers {
    fn add(&self, event: &str, max: usize) -> Option<SignalReceiver> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut list = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        list.retain(|(_, tx)| !tx.is_closed());
        if list.len() >= max {
            return None;
        }
        list.push((event.to_owned(), tx));
        Some(rx)
    }

    /// Delivers `signal` to the subscribers of its event, forgetting those that left.
    fn publish(&self, signal: Signal) {
        let mut list = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if list.is_empty() {
            return;
        }
        let signal = Arc::new(signal);
        list.retain(|(event, tx)| *event != signal.event || tx.send(Arc::clone(&signal)).is_ok());
    }
}

/// One loaded sentant in the registry.
#[derive(Clone)]
struct Entry {
    sentant: Arc<Sentant>,
    inbox: mpsc::UnboundedSender<Message>,
    subscribers: Arc<Subscribers>,
    task: AbortHandle,
    order: u64,
    /// Events in the inbox now.
    queued: Arc<AtomicUsize>,
}

impl Entry {
    /// Queues `event` unless no transition would take it or the inbox is
    /// full (then it is dropped and counted).
    fn post(
        &self,
        registry: &Registry,
        event: &str,
        parameters: Map<String, Value>,
        passthrough: Value,
        hops: u32,
    ) {
        if self.sentant.def.handles(event) {
            self.queue(registry, event, parameters, passthrough, hops);
        }
    }

    /// Queues `event` whatever the sentant does with it, unless the inbox is
    /// full (then it is dropped and counted); whether it was queued.
    fn queue(
        &self,
        registry: &Registry,
        event: &str,
        parameters: Map<String, Value>,
        passthrough: Value,
        hops: u32,
    ) -> bool {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= registry.limits.max_inbox {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            Hit::Inbox.count(&registry.stats);
            return false;
        }
        let message = Message::Event {
            event: event.to_owned(),
            parameters,
            passthrough,
            hops,
        };
        if self.inbox.send(message).is_err() {
            // A closed inbox means the sentant is being unloaded: nothing to do.
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }
}

#[derive(Default)]
struct Maps {
    by_id: HashMap<Uuid, Entry>,
    by_name: HashMap<String, Uuid>,
    /// The sentants that have a transition on `__internal`.
    internal: HashMap<Uuid, Entry>,
}

impl Maps {
    fn insert(&mut self, entry: Entry) {
        let id = entry.sentant.id;
        if entry.sentant.def.handles(INTERNAL_EVENT) {
            self.internal.insert(id, entry.clone());
        } else {
            self.internal.remove(&id);
        }
        self.by_name.insert(entry.sentant.name().to_owned(), id);
        self.by_id.insert(id, entry);
    }
}

/// The sentants loaded on a node.
pub struct Registry {
    maps: RwLock<Maps>,
    stats: Arc<Stats>,
    next_order: AtomicU64,
    fidelity: Fidelity,
    limits: Arc<Limits>,
}

impl Registry {
    /// An empty registry counting into `stats`, behaving as the real node,
    /// with the default limits.
    pub fn new(stats: Arc<Stats>) -> Arc<Self> {
        Registry::configured(stats, Fidelity::default(), Arc::new(Limits::default()))
    }

    /// An empty registry counting into `stats`, as close to the real node as
    /// `fidelity` says, with the default limits.
    pub fn with_fidelity(stats: Arc<Stats>, fidelity: Fidelity) -> Arc<Self> {
        Registry::configured(stats, fidelity, Arc::new(Limits::default()))
    }

    /// An empty registry counting into `stats` and keeping `limits`, behaving
    /// as the real node.
    pub fn with_limits(stats: Arc<Stats>, limits: Arc<Limits>) -> Arc<Self> {
        Registry::configured(stats, Fidelity::default(), limits)
    }

    /// An empty registry counting into `stats`, as close to the real node as
    /// `fidelity` says, keeping `limits`.
    pub fn configured(stats: Arc<Stats>, fidelity: Fidelity, limits: Arc<Limits>) -> Arc<Self> {
        Arc::new(Registry {
            maps: RwLock::default(),
            stats,
            next_order: AtomicU64::new(0),
            fidelity,
            limits,
        })
    }

    /// How close to the real node this registry behaves.
    pub fn fidelity(&self) -> &Fidelity {
        &self.fidelity
    }

    /// The limits this registry keeps.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The counters this registry updates.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps> {
        self.maps.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Maps> {
        self.maps.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the entry with this id under the read lock (it must not block).
    fn with_entry<T>(&self, id: Uuid, f: impl FnOnce(&Entry) -> T) -> Option<T> {
        self.read().by_id.get(&id).map(f)
    }

    /// Loads a sentant, or redefines the one with the same name (keeping its
    /// id), then sends it `init` and tells the `__internal` listeners. Must be
    /// called inside a tokio runtime (a new sentant gets a task).
    pub fn load(self: &Arc<Self>, def: SentantDef) -> Arc<Sentant> {
        self.load_within(def, usize::MAX)
            .unwrap_or_else(|LoadError::TooMany(_)| unreachable!("no limit"))
    }

    /// [`Registry::load`], refused (and counted) when the sentant is new and
    /// the node holds `--max-sentants`.
    pub fn try_load(self: &Arc<Self>, def: SentantDef) -> Result<Arc<Sentant>, LoadError> {
        self.load_within(def, self.limits.max_sentants)
            .inspect_err(|_| Hit::Sentants.count(&self.stats))
    }

    fn load_within(
        self: &Arc<Self>,
        def: SentantDef,
        max: usize,
    ) -> Result<Arc<Sentant>, LoadError> {
        let def = Arc::new(def);
        let (entry, redefined) = {
            let mut maps = self.write();
            let existing = maps
                .by_name
                .get(&def.name)
                .and_then(|id| maps.by_id.get(id))
                .cloned();
            if existing.is_none() && maps.by_id.len() >= max {
                return Err(LoadError::TooMany(max));
            }
            let (entry, redefined) = match existing {
                Some(old) => {
                    let sentant = Arc::new(Sentant {
                        id: old.sentant.id,
                        def,
                    });
                    (Entry { sentant, ..old }, true)
                }
                None => (
                    self.spawn(Arc::new(Sentant {
                        id: Uuid::new_v4(),
                        def,
                    })),
                    false,
                ),
            };
            maps.insert(entry.clone());
            (entry, redefined)
        };
        if redefined {
            let _ = entry
                .inbox
                .send(Message::Redefine(Arc::clone(&entry.sentant)));
        }
        Stats::bump(&self.stats.loads);
        entry.post(self, INIT_EVENT, Map::new(), empty(), 0);
        let told_id = match (self.fidelity.internal, redefined) {
            (InternalCast::Everyone, true) => Uuid::new_v4(),
            _ => entry.sentant.id,
        };
        self.tell_internal(told_id, &entry.sentant, "created");
        Ok(entry.sentant)
    }

    /// Starts the task of a new sentant and makes its entry.
    fn spawn(self: &Arc<Self>, sentant: Arc<Sentant>) -> Entry {
        let (inbox, messages) = mpsc::unbounded_channel();
        let subscribers = Arc::new(Subscribers::default());
        let queued = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(run(
            Arc::clone(self),
            Arc::clone(&sentant),
            Arc::clone(&subscribers),
            (messages, Arc::clone(&queued)),
        ))
        .abort_handle();
        let order = self.next_order.fetch_add(1, Ordering::Relaxed);
        Entry {
            sentant,
            inbox,
            subscribers,
            task,
            order,
            queued,
        }
    }

    /// Unloads a sentant: stops its task, ends its subscriptions and tells the
    /// `__internal` listeners. Returns the sentant as it was.
    pub fn unload(&self, id: Uuid) -> Option<Arc<Sentant>> {
        let entry = {
            let mut maps = self.write();
            let entry = maps.by_id.remove(&id)?;
            maps.internal.remove(&id);
            if maps.by_name.get(entry.sentant.name()) == Some(&id) {
                maps.by_name.remove(entry.sentant.name());
            }
            entry
        };
        entry.task.abort();
        Stats::bump(&self.stats.unloads);
        self.tell_internal(entry.sentant.id, &entry.sentant, "deleted");
        Some(entry.sentant)
    }

    /// Drops every sentant at once, as a restarted node has none: their tasks
    /// stop and their subscriptions end. Nobody is told, and `unloads` does
    /// not count them. Returns how many there were.
    pub fn forget(&self) -> usize {
        let maps = std::mem::take(&mut *self.write());
        for entry in maps.by_id.values() {
            entry.task.abort();
        }
        maps.by_id.len()
    }

    /// Sends `__internal` about `sentant` (as `id`) to the sentants
    /// [`InternalCast`] names, counting each event queued.
    fn tell_internal(&self, id: Uuid, sentant: &Sentant, activity: &str) {
        let parameters =
            json!({"id": id.to_string(), "name": sentant.name(), "activity": activity});
        let Value::Object(parameters) = parameters else {
            return;
        };
        // `Listeners` casts only to the sentants in `maps.internal`, which
        // all handle `__internal`: both casts queue without the filter.
        let cast = |entry: &Entry| {
            if entry.queue(self, INTERNAL_EVENT, parameters.clone(), empty(), 0) {
                Stats::bump(&self.stats.internal_casts);
            }
        };
        // Queuing never blocks, so it is done under the read lock.
        let maps = self.read();
        match self.fidelity.internal {
            InternalCast::Everyone => maps.by_id.values().for_each(cast),
            InternalCast::Listeners => maps.internal.values().for_each(cast),
        }
    }

    /// The sentant with this id.
    pub fn get(&self, id: Uuid) -> Option<Arc<Sentant>> {
        self.with_entry(id, |e| Arc::clone(&e.sentant))
    }

    /// The sentant with this name.
    pub fn get_by_name(&self, name: &str) -> Option<Arc<Sentant>> {
        let maps = self.read();
        let id = maps.by_name.get(name)?;
        maps.by_id.get(id).map(|e| Arc::clone(&e.sentant))
    }

    /// Every loaded sentant, oldest first.
    pub fn all(&self) -> Vec<Arc<Sentant>> {
        let mut entries: Vec<(u64, Arc<Sentant>)> = self
            .read()
            .by_id
            .values()
            .map(|e| (e.order, Arc::clone(&e.sentant)))
            .collect();
        entries.sort_unstable_by_key(|(order, _)| *order);
        entries.into_iter().map(|(_, sentant)| sentant).collect()
    }

    /// How many sentants are loaded.
    pub fn len(&self) -> usize {
        self.read().by_id.len()
    }

    /// Whether no sentant is loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues a public event for a sentant (`sentantSend`) and returns the
    /// sentant at once. `parameters` must be a JSON object or null.
    pub fn send(
        &self,
        id: Uuid,
        event: &str,
        parameters: Value,
        passthrough: Value,
    ) -> Result<Arc<Sentant>, SendError> {
        let outcome = self
            .with_entry(id, |entry| {
                if !entry.sentant.def.is_public_event(event) {
                    return Err(SendError::InvalidEvent);
                }
                let parameters = match parameters {
                    Value::Object(map) => map,
                    Value::Null => Map::new(),
                    _ => return Err(SendError::Parameters),
                };
                entry.post(self, event, parameters, passthrough, 0);
                Ok(Arc::clone(&entry.sentant))
            })
            .unwrap_or(Err(SendError::UnknownId));
        let counter = if outcome.is_ok() {
            &self.stats.sends
        } else {
            &self.stats.sends_rejected
        };
        Stats::bump(counter);
        outcome
    }

    /// Subscribes to the signal `signal` of a sentant; decided at once.
    pub fn subscribe(&self, id: Uuid, signal: &str) -> Result<SignalReceiver, SubscribeError> {
        self.with_entry(id, |entry| {
            if !entry.sentant.def.allows_signal(signal) {
                return Err(SubscribeError::InvalidSignal);
            }
            let max = self.limits.max_subscriptions_per_sentant;
            entry.subscribers.add(signal, max).ok_or_else(|| {
                Hit::SubscriptionsPerSentant.count(&self.stats);
                SubscribeError::TooMany
            })
        })
        .unwrap_or(Err(SubscribeError::UnknownId))
    }

    /// The id of the sentant a `send` action means: by name, else by id.
    fn resolve(&self, target: &str) -> Option<Uuid> {
        let maps = self.read();
        maps.by_name.get(target).copied().or_else(|| {
            let id = Uuid::try_parse(target).ok()?;
            maps.by_id.contains_key(&id).then_some(id)
        })
    }

    /// The id a `send` action to `target` reaches: a name, else an id; when
    /// neither is loaded, the id `target` names is looked for with the
    /// registry's [`Patience`] (the real node resolves the name once, then
    /// waits for a live sentant with that id).
    async fn resolve_waiting(&self, target: &str) -> Option<Uuid> {
        if let Some(id) = self.resolve(target) {
            return Some(id);
        }
        let id = Uuid::try_parse(target).ok();
        let patience: Patience = self.fidelity.unknown_ids;
        patience
            .find(|| id.filter(|id| self.read().by_id.contains_key(id)))
            .await
    }

    /// Queues an event for the sentant with this id, if it is still loaded.
    fn deliver(
        &self,
        id: Uuid,
        event: &str,
        parameters: Map<String, Value>,
        passthrough: Value,
        hops: u32,
    ) {
        self.with_entry(id, |entry| {
            entry.post(self, event, parameters, passthrough, hops)
        });
    }
}

/// `{}`, the passthrough of events the node itself sends.
fn empty() -> Value {
    Value::Object(Map::new())
}

/// Pending delayed sends of one sentant, by event; aborted when replaced, on
/// redefinition, and when the sentant's task ends.
#[derive(Default)]
struct Timers(HashMap<String, AbortHandle>);

impl Timers {
    fn set(&mut self, event: String, timer: AbortHandle) {
        if let Some(previous) = self.0.insert(event, timer) {
            previous.abort();
        }
    }

    fn clear(&mut self) {
        self.0.drain().for_each(|(_, timer)| timer.abort());
    }
}

impl Drop for Timers {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The task of one sentant: handles its messages in order.
async fn run(
    registry: Arc<Registry>,
    mut sentant: Arc<Sentant>,
    subscribers: Arc<Subscribers>,
    (mut inbox, queued): (mpsc::UnboundedReceiver<Message>, Arc<AtomicUsize>),
) {
    let values = registry.fidelity.values;
    let limits = Arc::clone(&registry.limits);
    let machine_for = |def: &Arc<SentantDef>| Machine::configured(Arc::clone(def), values, &limits);
    let mut machine = machine_for(&sentant.def);
    let mut timers = Timers::default();
    let mut effects = Vec::new();
    while let Some(message) = inbox.recv().await {
        match message {
            Message::Redefine(new) => {
                machine = machine_for(&new.def);
                timers.clear();
                sentant = new;
            }
            Message::Event {
                event,
                parameters,
                passthrough,
                hops,
            } => {
                queued.fetch_sub(1, Ordering::AcqRel);
                machine.handle(&event, &parameters, &mut effects);
                machine.hits().drain_into(&registry.stats);
                for effect in effects.drain(..) {
                    apply(
                        &registry,
                        &sentant,
                        &subscribers,
                        &mut timers,
                        effect,
                        (&passthrough, hops),
                    )
                    .await;
                }
            }
        }
    }
}

/// Carries out one effect of a sentant's transition. An immediate `send`
/// to a target that is not loaded holds the task (see
/// [`Registry::resolve_waiting`]).
async fn apply(
    registry: &Arc<Registry>,
    sentant: &Arc<Sentant>,
    subscribers: &Subscribers,
    timers: &mut Timers,
    effect: Effect,
    (passthrough, hops): (&Value, u32),
) {
    match effect {
        Effect::Signal { event, parameters } => {
            Stats::bump(&registry.stats.signals);
            subscribers.publish(Signal {
                sentant: Arc::clone(sentant),
                event,
                parameters,
                passthrough: passthrough.clone(),
            });
        }
        Effect::Send {
            targets,
            event,
            parameters,
            delay,
        } => {
            // Paced sends start a new chain; immediate ones add a hop.
            let hops = match delay {
                Some(delay) if delay >= MIN_PACED_DELAY => 0,
                _ if hops >= registry.limits.max_hops => {
                    Hit::Hops.count(&registry.stats);
                    return;
                }
                _ => hops + 1,
            };
            let mut ids: Vec<Uuid> = Vec::with_capacity(targets.len());
            for target in &targets {
                let id = match (target, delay) {
                    (Target::Myself, _) => Some(sentant.id),
                    (Target::NameOrId(name), None) => registry.resolve_waiting(name).await,
                    (Target::NameOrId(name), Some(_)) => registry.resolve(name),
                };
                ids.extend(id);
            }
            let send = {
                let registry = Arc::clone(registry);
                let (event, passthrough) = (event.clone(), passthrough.clone());
                move || {
                    for id in ids {
                        registry.deliver(id, &event, parameters.clone(), passthrough.clone(), hops);
                    }
                }
            };
            match delay {
                None => send(),
                Some(delay) => {
                    let timer = tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        send();
                    });
                    timers.set(event, timer.abort_handle());
                }
            }
        }
    }
}
