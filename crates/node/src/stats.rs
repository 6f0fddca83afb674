//! Counters since the node started, served as JSON at `/r2-node/stats`.
//!
//! Every counter is a plain `AtomicU64` field of [`Stats`], declared once in the
//! `counters!` list below: adding a name there adds the field and its entry in
//! [`Stats::snapshot`] (so fault injection can add `injected_errors` and
//! `dropped_sockets` with one line each). "Now" counters (sockets,
//! subscriptions) are held up by a [`Gauge`], which decrements on drop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{Map, Value};

/// Declares [`Stats`] and the list of its counters in one place.
macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// The node's counters. Who counts what: the sentant engine counts
        /// `loads`, `unloads`, `sends`, `sends_rejected`, `signals`,
        /// `subscriptions`, `updates` and `internal_casts`; the transport
        /// counts `sockets`, `deliveries`, `injected_errors`,
        /// `dropped_sockets`, `requests`, `requests_in_flight` (and its
        /// `_max`), `sockets_opened`, `heartbeats`,
        /// `tls_h2` and `tls_http1`.
        #[derive(Debug, Default)]
        pub struct Stats {
            $($(#[$doc])* pub $name: AtomicU64,)*
        }

        impl Stats {
            /// Every counter with its JSON name, in declaration order.
            pub fn counters(&self) -> impl Iterator<Item = (&'static str, &AtomicU64)> {
                [$((stringify!($name), &self.$name),)*].into_iter()
            }
        }
    };
}

counters! {
    /// Sentant definitions loaded (new or redefined, including swarm members).
    loads,
    /// Sentants unloaded.
    unloads,
    /// `sentantSend` calls accepted.
    sends,
    /// `sentantSend` calls refused (unknown id, event not public, bad parameters).
    sends_rejected,
    /// Signals published by sentants (`signal` and `debug` actions).
    signals,
    /// Subscription frames pushed to websockets (counted by the transport).
    deliveries,
    /// Websockets open now (counted by the transport).
    sockets,
    /// `awaitSignal` streams alive now.
    subscriptions,
    /// `/reality2` requests answered 500 by the `error_rate` fault.
    injected_errors,
    /// Websockets dropped by the `drop_sockets_every_s` and `refuse_for_s` faults.
    dropped_sockets,
    /// `/reality2` HTTP requests answered (any method and status, faults included).
    requests,
    /// `/reality2` HTTP requests being answered now (body read to answer made) ...
    requests_in_flight,
    /// ... and the most at once since start.
    requests_in_flight_max,
    /// Websockets opened since start (`sockets` is how many are open now).
    sockets_opened,
    /// Heartbeat frames received (`phoenix` topic, `heartbeat` event).
    heartbeats,
    /// `sentantSend` calls accepted whose event is `update`.
    updates,
    /// `__internal` events queued to sentants (one per receiving sentant per
    /// load, redefinition or unload).
    internal_casts,
    /// Sends dropped by `--max-hops` (see [`crate::limits`], as are the next ones).
    limit_hops,
    /// Events dropped because a sentant's inbox held `--max-inbox`.
    limit_inbox,
    /// Actions failed by `--max-value-bytes`.
    limit_value_bytes,
    /// Sends and signals refused by `--max-parameters-bytes`.
    limit_parameters_bytes,
    /// Loads refused by `--max-sentants`.
    limit_sentants,
    /// Swarms refused by `--max-swarm`.
    limit_swarm,
    /// Subscriptions refused by `--max-subscriptions-per-socket` or `-per-sentant`.
    limit_subscriptions,
    /// Documents refused for their aliases, depth or complexity.
    limit_query,
    /// Answers replaced because they exceeded `--max-response-bytes`.
    limit_response_bytes,
    /// Connections refused by `--max-connections` (see [`crate::conn`]).
    limit_connections,
    /// Connections refused by `--max-connections-per-peer`.
    limit_connections_per_peer,
    /// Websockets closed because their queue exceeded `--socket-queue-bytes`.
    limit_socket_queue_bytes,
    /// Request bodies abandoned by `--body-read-timeout-s`.
    limit_body_timeout,
    /// Control requests (`/r2-node/faults`) refused (see [`crate::control`]).
    control_refused,
    /// TLS connections on which ALPN chose `h2` (see [`crate::tls::CountAlpn`]).
    tls_h2,
    /// TLS connections on HTTP/1.1: ALPN chose `http/1.1`, or the client
    /// offered no protocol (websockets, as Chromium opens them, included).
    tls_http1,
}

impl Stats {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// All counters as a JSON object of numbers.
    pub fn snapshot(&self) -> Map<String, Value> {
        self.counters()
            .map(|(name, counter)| {
                (
                    name.to_owned(),
                    Value::from(counter.load(Ordering::Relaxed)),
                )
            })
            .collect()
    }

    /// Raises the peak `max` to what `now` holds, if higher.
    pub fn peak(max: &AtomicU64, now: &AtomicU64) {
        max.fetch_max(now.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Increments the counter `pick` selects now and decrements it when the
    /// returned [`Gauge`] is dropped.
    pub fn gauge(self: &Arc<Self>, pick: fn(&Stats) -> &AtomicU64) -> Gauge {
        Stats::bump(pick(self));
        Gauge {
            stats: Arc::clone(self),
            pick,
        }
    }
}

/// Holds a "now" counter up by one while it lives.
#[derive(Debug)]
pub struct Gauge {
    stats: Arc<Stats>,
    pick: fn(&Stats) -> &AtomicU64,
}

impl Drop for Gauge {
    fn drop(&mut self) {
        (self.pick)(&self.stats).fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_lists_every_counter_with_its_value() {
        let stats = Stats::default();
        Stats::bump(&stats.sends);
        Stats::bump(&stats.sends);
        Stats::bump(&stats.sockets);
        let snapshot = stats.snapshot();
        let names: Vec<&str> = snapshot.keys().map(String::as_str).collect();
        for expected in [
            "loads",
            "unloads",
            "sends",
            "sends_rejected",
            "signals",
            "deliveries",
            "sockets",
            "subscriptions",
            "injected_errors",
            "dropped_sockets",
            "requests",
            "requests_in_flight",
            "requests_in_flight_max",
            "sockets_opened",
            "heartbeats",
            "updates",
            "internal_casts",
            "limit_hops",
            "limit_connections",
            "control_refused",
            "tls_h2",
            "tls_http1",
        ] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
        assert_eq!(snapshot.len(), 33);
        assert_eq!(snapshot["sends"], 2);
        assert_eq!(snapshot["sockets"], 1);
        assert_eq!(snapshot["loads"], 0);
    }

    #[test]
    fn gauge_goes_back_down_when_dropped() {
        let stats = Arc::new(Stats::default());
        let first = stats.gauge(|s| &s.subscriptions);
        let second = stats.gauge(|s| &s.subscriptions);
        assert_eq!(stats.subscriptions.load(Ordering::Relaxed), 2);
        drop(first);
        assert_eq!(stats.subscriptions.load(Ordering::Relaxed), 1);
        drop(second);
        assert_eq!(stats.subscriptions.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_peak_keeps_the_highest_value_seen() {
        let stats = Arc::new(Stats::default());
        let one = stats.gauge(|s| &s.requests_in_flight);
        let two = stats.gauge(|s| &s.requests_in_flight);
        Stats::peak(&stats.requests_in_flight_max, &stats.requests_in_flight);
        drop((one, two));
        Stats::peak(&stats.requests_in_flight_max, &stats.requests_in_flight);
        assert_eq!(stats.requests_in_flight_max.load(Ordering::Relaxed), 2);
    }
}
