//! Fault injection: slow answers, injected errors, dropped websockets, a
//! restart's refused connections and forgotten sentants, so that the page's
//! fault handling (reconnect, resubscribe, re-create, timeouts, retries) can
//! be tested against this node.
//!
//! Faults are set at start from the command line (`--latency-ms` ...) and
//! switched at run time with `POST /r2-node/faults` (`GET` reads them back);
//! they live in the [`Node`] ([`Node::faults`], [`Node::apply_faults`]).
//! A [`FaultSpec`] is the whole set: posting one replaces the faults in
//! force, a field left out is off, and `{}` clears them all.
//!
//! | field | effect |
//! | --- | --- |
//! | `latency_ms`, `jitter_ms` | each `/reality2` HTTP answer and each subscription push waits `latency_ms` plus a uniform `0..=jitter_ms`; pushes keep their order per socket |
//! | `error_rate` | that share (0..=1) of `/reality2` GET/POST requests is answered 500 `{"errors":{"detail":"Internal Server Error"}}` without running; counted in `injected_errors` |
//! | `drop_sockets_every_s` | every open websocket is dropped on that period (0: off) |
//! | `refuse_for_s` | a restart: every open websocket is dropped now, and for that many seconds from now the node refuses connections (below) |
//! | `forget` | an action: every sentant is dropped now, as a restarted node has none (their subscriptions end); reads back `false` |
//!
//! A dropped websocket is closed abruptly, without a close frame, as when a
//! phone's Wi-Fi goes or the node process dies (a browser reports code
//! 1006); each is counted in `dropped_sockets`. Faults never apply to
//! `/r2-node/*`, nor to websocket upgrades (except while refusing).
//!
//! # Refusing connections
//!
//! A real restart refuses TCP connections, but the tests must still reach
//! `/r2-node/*` on the same port. So while refusing, the node still accepts
//! connections, serves `/r2-node/*`, and closes the connection of every
//! other request (websocket upgrades included) without an answer: [`Gate`]
//! fails the request and hyper aborts its connection. A browser sees that
//! as a network error, as it would a refused connection.
//!
//! # Cost when off
//!
//! Requests and pushes check one relaxed atomic ([`Faults::active`]); the
//! state behind the mutex is only read while a fault is on. Each websocket
//! also watches a cancellation token of [`Faults`] for drops, combined with
//! the token it already had, so that adds no work per frame.

use std::{
    convert::Infallible,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, MutexGuard, PoisonError,
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{http::Request, response::Response};
use futures::future::{ready, Either, MapErr, Ready, TryFutureExt};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::{sync::CancellationToken, task::AbortOnDropHandle};
use tower::Service;

use crate::Node;

/// Largest `latency_ms` and `jitter_ms`.
pub const MAX_DELAY_MS: f64 = 60_000.0;
/// Largest `drop_sockets_every_s` and `refuse_for_s`.
pub const MAX_PERIOD_S: f64 = 86_400.0;
/// Shortest `drop_sockets_every_s` other than 0 (off).
pub const MIN_DROP_PERIOD_S: f64 = 0.01;
/// The paths faults never touch.
pub const NODE_PATHS: &str = "/r2-node/";

/// The seed of the error and jitter draws, taken again whenever faults are
/// set, so that a test sees the same sequence each run.
const SEED: u64 = 0x7232_6e6f_6465;

/// A set of faults, as posted to `/r2-node/faults` and read back from it.
/// Numbers are 0 when off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSpec {
    /// Added to each `/reality2` answer and each subscription push, ms.
    pub latency_ms: f64,
    /// A uniform `0..=jitter_ms` added on top of `latency_ms`, ms.
    pub jitter_ms: f64,
    /// The share of `/reality2` requests answered with HTTP 500, `0..=1`.
    pub error_rate: f64,
    /// Drop every websocket on this period, s.
    pub drop_sockets_every_s: f64,
    /// Refuse connections for this long from now, s (read back: what is left).
    pub refuse_for_s: f64,
    /// Forget every sentant now (an action; read back `false`).
    pub forget: bool,
}

/// Why a set of faults was refused.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// The body is not a JSON object of the known fields.
    #[error("not a faults object {{latency_ms, jitter_ms, error_rate, drop_sockets_every_s, refuse_for_s, forget}}")]
    Body(#[source] serde_json::Error),
    /// A number is out of its range.
    #[error("{field} must be a number from {min} to {max}, not {value}")]
    OutOfRange {
        field: &'static str,
        min: f64,
        max: f64,
        value: f64,
    },
    /// A drop period so short it would be a busy loop.
    #[error("drop_sockets_every_s must be 0 (off) or at least {MIN_DROP_PERIOD_S}, not {0}")]
    DropPeriodTooShort(f64),
}

impl FaultSpec {
    /// Reads and checks a `POST /r2-node/faults` body.
    pub fn from_json(body: &[u8]) -> Result<FaultSpec, FaultError> {
        let value: serde_json::Value = serde_json::from_slice(body).map_err(FaultError::Body)?;
        if !value.is_object() {
            // serde would also read a struct from an array.
            let error = serde::de::Error::custom(format!("expected a JSON object, not {value}"));
            return Err(FaultError::Body(error));
        }
        let spec = FaultSpec::deserialize(value).map_err(FaultError::Body)?;
        spec.validate()?;
        Ok(spec)
    }

    /// Checks every number is in its range (which also refuses NaN).
    pub fn validate(&self) -> Result<(), FaultError> {
        let check = |field: &'static str, value: f64, max: f64| {
            if (0.0..=max).contains(&value) {
                Ok(())
            } else {
                Err(FaultError::OutOfRange {
                    field,
                    min: 0.0,
                    max,
                    value,
                })
            }
        };
        check("latency_ms", self.latency_ms, MAX_DELAY_MS)?;
        check("jitter_ms", self.jitter_ms, MAX_DELAY_MS)?;
        check("error_rate", self.error_rate, 1.0)?;
        check(
            "drop_sockets_every_s",
            self.drop_sockets_every_s,
            MAX_PERIOD_S,
        )?;
        check("refuse_for_s", self.refuse_for_s, MAX_PERIOD_S)?;
        if self.drop_sockets_every_s > 0.0 && self.drop_sockets_every_s < MIN_DROP_PERIOD_S {
            return Err(FaultError::DropPeriodTooShort(self.drop_sockets_every_s));
        }
        Ok(())
    }

    /// Whether anything a request or a push checks is on (refusal apart).
    fn slows_or_fails(&self) -> bool {
        self.latency_ms > 0.0 || self.jitter_ms > 0.0 || self.error_rate > 0.0
    }
}

/// `seconds` as a duration; out-of-range values (never valid ones) are 0.
fn seconds(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds).unwrap_or_default()
}

/// What a `/reality2` request suffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestFault {
    /// Wait this long before answering.
    pub delay: Option<Duration>,
    /// Answer 500 instead of running the request.
    pub fail: bool,
}

/// Whether the node is refusing connections, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Serving,
    Until(Instant),
}

/// The faults in force, behind the mutex.
struct State {
    /// As set, with `refuse_for_s` and `forget` cleared (see `refusal`).
    spec: FaultSpec,
    refusal: Refusal,
    rng: SmallRng,
    /// The task dropping sockets on `drop_sockets_every_s`.
    dropper: Option<AbortOnDropHandle<()>>,
}

impl State {
    fn active(&self) -> bool {
        self.spec.slows_or_fails() || self.refusal != Refusal::Serving
    }

    /// `latency_ms` plus a draw of `0..=jitter_ms`, if not zero.
    fn delay(&mut self) -> Option<Duration> {
        let jitter = self.spec.jitter_ms;
        let jitter = if jitter > 0.0 {
            self.rng.random_range(0.0..=jitter)
        } else {
            0.0
        };
        let ms = self.spec.latency_ms + jitter;
        (ms > 0.0).then(|| seconds(ms / 1000.0))
    }
}

/// The faults of a node. Every method is cheap while no fault is on.
pub struct Faults {
    /// Whether a request or a push may be touched: the one check made while
    /// no fault is on.
    active: AtomicBool,
    state: Mutex<State>,
    sockets: Arc<Sockets>,
}

/// The websockets open now, as a token they all watch: cancelled (and
/// replaced) to drop them.
#[derive(Default)]
struct Sockets(Mutex<CancellationToken>);

impl Sockets {
    fn token(&self) -> CancellationToken {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn drop_all(&self) {
        let mut current = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *current).cancel();
    }
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            active: AtomicBool::new(false),
            state: Mutex::new(State {
                spec: FaultSpec::default(),
                refusal: Refusal::Serving,
                rng: SmallRng::seed_from_u64(SEED),
                dropper: None,
            }),
            sockets: Arc::default(),
        }
    }
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults")
            .field("current", &self.current())
            .finish_non_exhaustive()
    }
}

impl Faults {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether latency, errors or a refusal may be on (one relaxed load).
    #[inline]
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// The faults in force, `refuse_for_s` being the seconds left of a
    /// refusal and `forget` false.
    pub fn current(&self) -> FaultSpec {
        let state = self.state();
        let left = match state.refusal {
            Refusal::Until(until) => until.saturating_duration_since(Instant::now()),
            Refusal::Serving => Duration::ZERO,
        };
        FaultSpec {
            refuse_for_s: left.as_secs_f64(),
            ..state.spec
        }
    }

    /// Replaces the faults with `spec` (already validated; `forget` is the
    /// node's business): restarts the drop timer, starts a refusal and drops
    /// every socket if `refuse_for_s` is set. Call it inside a tokio runtime.
    pub(crate) fn set(&self, spec: &FaultSpec) {
        let mut state = self.state();
        state.spec = FaultSpec {
            refuse_for_s: 0.0,
            forget: false,
            ..*spec
        };
        state.rng = SmallRng::seed_from_u64(SEED);
        let refusing = spec.refuse_for_s > 0.0;
        state.refusal = if refusing {
            Refusal::Until(Instant::now() + seconds(spec.refuse_for_s))
        } else {
            Refusal::Serving
        };
        state.dropper = (spec.drop_sockets_every_s > 0.0).then(|| {
            dropper(
                Arc::clone(&self.sockets),
                seconds(spec.drop_sockets_every_s),
            )
        });
        self.active.store(state.active(), Ordering::Relaxed);
        drop(state);
        if refusing {
            self.drop_sockets();
        }
    }

    /// What the next `/reality2` request suffers, if anything.
    pub fn request(&self) -> Option<RequestFault> {
        if !self.active() {
            return None;
        }
        let mut state = self.state();
        let rate = state.spec.error_rate;
        let fail = rate > 0.0 && state.rng.random::<f64>() < rate;
        let delay = state.delay();
        (fail || delay.is_some()).then_some(RequestFault { delay, fail })
    }

    /// How long the next subscription push waits, if at all.
    pub fn delivery_delay(&self) -> Option<Duration> {
        if !self.active() {
            return None;
        }
        self.state().delay()
    }

    /// Whether connections are refused now (ends a refusal whose time is up).
    pub fn refusing(&self) -> bool {
        if !self.active() {
            return false;
        }
        let mut state = self.state();
        match state.refusal {
            Refusal::Until(until) if Instant::now() < until => true,
            Refusal::Until(_) => {
                state.refusal = Refusal::Serving;
                self.active.store(state.active(), Ordering::Relaxed);
                false
            }
            Refusal::Serving => false,
        }
    }

    /// A token cancelled when the sockets open now are dropped; a new socket
    /// takes one when it starts.
    pub(crate) fn socket_token(&self) -> CancellationToken {
        self.sockets.token()
    }

    /// Drops every websocket open now (they count themselves in
    /// `dropped_sockets`).
    pub fn drop_sockets(&self) {
        self.sockets.drop_all();
    }
}

/// Drops every socket each `period`, until aborted (when the faults change
/// or are dropped).
fn dropper(sockets: Arc<Sockets>, period: Duration) -> AbortOnDropHandle<()> {
    AbortOnDropHandle::new(tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            sockets.drop_all();
        }
    }))
}

/// The error that makes hyper close a connection without answering.
#[derive(Debug, thiserror::Error)]
#[error("r2-node is refusing connections (fault injection)")]
pub struct Refused;

fn never(never: Infallible) -> Refused {
    match never {}
}

/// The node's router as the servers run it: while the node refuses
/// connections, a request outside `/r2-node/` fails with [`Refused`], and
/// hyper then closes its connection without an answer.
#[derive(Clone)]
pub struct Gate<S> {
    inner: S,
    node: Node,
}

impl<S> Gate<S> {
    /// `inner`, gated by `node`'s faults.
    pub fn new(node: Node, inner: S) -> Gate<S> {
        Gate { inner, node }
    }
}

impl<S, B> Service<Request<B>> for Gate<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Refused;
    type Future =
        Either<MapErr<S::Future, fn(Infallible) -> Refused>, Ready<Result<Response, Refused>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Refused>> {
        self.inner.poll_ready(cx).map_err(never)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if self.node.faults().refusing() && !request.uri().path().starts_with(NODE_PATHS) {
            return Either::Right(ready(Err(Refused)));
        }
        Either::Left(self.inner.call(request).map_err(never as fn(_) -> _))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_read_strictly() {
        let spec = FaultSpec::from_json(br#"{"latency_ms": 5, "error_rate": 0.5}"#).expect("valid");
        assert_eq!(spec.latency_ms, 5.0);
        assert_eq!(spec.error_rate, 0.5);
        assert_eq!(spec.jitter_ms, 0.0);
        assert_eq!(
            FaultSpec::from_json(b"{}").expect("empty"),
            FaultSpec::default()
        );
        for bad in [
            &br#"{"latency": 5}"#[..],
            br#"{"latency_ms": "5"}"#,
            br#"{"latency_ms": null}"#,
            b"[]",
            b"[5]",
            b"null",
            b"",
            b"{",
        ] {
            assert!(
                matches!(FaultSpec::from_json(bad), Err(FaultError::Body(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn numbers_out_of_range_are_named() {
        let out = |body: &str| match FaultSpec::from_json(body.as_bytes()) {
            Err(FaultError::OutOfRange { field, .. }) => field,
            other => panic!("{body}: {other:?}"),
        };
        assert_eq!(out(r#"{"error_rate": 1.5}"#), "error_rate");
        assert_eq!(out(r#"{"latency_ms": -1}"#), "latency_ms");
        assert_eq!(out(r#"{"jitter_ms": 1e300}"#), "jitter_ms");
        assert_eq!(out(r#"{"refuse_for_s": -0.5}"#), "refuse_for_s");
        assert_eq!(
            out(r#"{"drop_sockets_every_s": 1e9}"#),
            "drop_sockets_every_s"
        );
        assert!(matches!(
            FaultSpec::from_json(br#"{"drop_sockets_every_s": 0.001}"#),
            Err(FaultError::DropPeriodTooShort(_))
        ));
        let nan = FaultSpec {
            error_rate: f64::NAN,
            ..FaultSpec::default()
        };
        assert!(nan.validate().is_err());
    }

    #[tokio::test]
    async fn nothing_is_touched_until_a_fault_is_set_and_after_it_is_cleared() {
        let node = Node::new();
        let faults = node.faults();
        assert!(!faults.active());
        assert_eq!(faults.request(), None);
        assert_eq!(faults.delivery_delay(), None);
        let always = FaultSpec {
            latency_ms: 10.0,
            error_rate: 1.0,
            ..FaultSpec::default()
        };
        node.apply_faults(always).expect("valid");
        assert!(faults.active());
        let fault = faults.request().expect("a fault");
        assert!(fault.fail);
        assert_eq!(fault.delay, Some(Duration::from_millis(10)));
        node.apply_faults(FaultSpec::default()).expect("valid");
        assert!(!faults.active());
        assert_eq!(faults.request(), None);
    }

    #[tokio::test]
    async fn error_rate_and_jitter_follow_their_settings() {
        let node = Node::new();
        let spec = FaultSpec {
            error_rate: 0.25,
            latency_ms: 100.0,
            jitter_ms: 50.0,
            ..FaultSpec::default()
        };
        node.apply_faults(spec).expect("valid");
        let draws: Vec<RequestFault> = (0..4000).filter_map(|_| node.faults().request()).collect();
        assert_eq!(draws.len(), 4000, "every request is delayed");
        let failed = draws.iter().filter(|d| d.fail).count();
        assert!((800..1200).contains(&failed), "{failed} of 4000 failed");
        let delays: Vec<Duration> = draws.iter().filter_map(|d| d.delay).collect();
        let (min, max) = (delays.iter().min(), delays.iter().max());
        assert!(min >= Some(&Duration::from_millis(100)), "{min:?}");
        assert!(max <= Some(&Duration::from_millis(150)), "{max:?}");
        assert!(
            max > Some(&Duration::from_millis(140)),
            "jitter spreads: {max:?}"
        );
    }

    #[tokio::test]
    async fn a_refusal_reads_back_its_time_left_and_ends_by_itself() {
        let node = Node::new();
        let spec = FaultSpec {
            refuse_for_s: 0.2,
            forget: true,
            ..FaultSpec::default()
        };
        node.apply_faults(spec).expect("valid");
        assert!(node.faults().refusing());
        let current = node.faults().current();
        assert!(current.refuse_for_s > 0.0 && current.refuse_for_s <= 0.2);
        assert!(!current.forget);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(!node.faults().refusing());
        assert!(!node.faults().active(), "back to the one-load path");
        assert_eq!(node.faults().current(), FaultSpec::default());
    }

    #[tokio::test]
    async fn dropping_cancels_the_tokens_of_sockets_open_now_only() {
        let faults = Faults::default();
        let before = faults.socket_token();
        faults.drop_sockets();
        let after = faults.socket_token();
        assert!(before.is_cancelled());
        assert!(!after.is_cancelled());
    }
}
