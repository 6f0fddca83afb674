//! Connections: how many the node holds, for how long, and how much may wait
//! for one of them, so that idle or slow clients (slowloris, a thousand
//! half-open sockets, a websocket that never reads) cannot lock devices out.
//!
//! - A request head (the first, or the next one on a kept-alive connection)
//!   must arrive complete within `--header-read-timeout-s` (hyper's header
//!   read timeout, which also ends idle keep-alive connections); a request
//!   body within `--body-read-timeout-s` (else 408); a connection must send
//!   its first byte within the header read timeout too, and one that moves
//!   no byte either way for `--idle-connection-s` is closed (TLS handshakes
//!   have axum-server's own 10 s).
//! - At most `--max-connections` connections are held (never more than the
//!   open-file limit less [`RESERVED_FILES`]), at most
//!   `--max-connections-per-peer` from one IP address; a connection over
//!   either is closed at once and counted (`limit_connections`,
//!   `limit_connections_per_peer`).
//! - The open-file limit is raised to its hard limit at start.
//! - The subscription results waiting for one websocket may hold at most
//!   `--socket-queue-bytes` (besides the frame count of `Config::socket_queue`);
//!   over it the socket is closed as a slow client (`limit_socket_queue_bytes`).
//!
//! # Layout
//!
//! - [`ConnLimits`]: the flags.
//! - [`raise_open_files`]: the open-file limit; [`time_heads`]: hyper's
//!   header read timeout.
//! - [`Slots`] and [`Limited`]: the axum-server acceptor that counts
//!   connections per peer and wraps each in a [`Guarded`] stream (idle timer,
//!   slot given back on drop).
//! - [`body_deadline`]: the middleware that reads request bodies with a deadline.
//! - [`QueueBudget`] and [`Reservation`]: bytes waiting for one websocket.

use std::collections::HashMap;
use std::future::{ready, Future, Ready};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::{
    body::Body,
    extract::{Request, State},
    http::{Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use axum_server::accept::Accept;
use http_body_util::{BodyExt, LengthLimitError, Limited as LimitedBody};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::{http::Refusal, stats::Stats, Node};

/// File descriptors kept for everything but connections (listeners, sites,
/// the certificate store, logs).
pub const RESERVED_FILES: u64 = 64;

/// The connection flags.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ConnLimits {
    /// Limit: connections held at once (also kept below the open-file limit).
    #[arg(long, value_name = "N", default_value_t = 32_768)]
    pub max_connections: usize,
    /// Limit: connections held at once from one IP address.
    #[arg(long, value_name = "N", default_value_t = 8192)]
    pub max_connections_per_peer: usize,
    /// Timeout: seconds for a request head to arrive complete (also how long
    /// a kept-alive connection may wait for its next request).
    #[arg(long, value_name = "S", default_value_t = 10)]
    pub header_read_timeout_s: u64,
    /// Timeout: seconds for a request body to arrive complete (else 408).
    #[arg(long, value_name = "S", default_value_t = 30)]
    pub body_read_timeout_s: u64,
    /// Timeout: seconds a connection may move no byte either way.
    #[arg(long, value_name = "S", default_value_t = 75)]
    pub idle_connection_s: u64,
    /// Limit: bytes of subscription results waiting for one websocket.
    #[arg(long, value_name = "BYTES", default_value_t = 8 * 1024 * 1024)]
    pub socket_queue_bytes: usize,
}

impl Default for ConnLimits {
    /// The command line's defaults.
    fn default() -> ConnLimits {
        ConnLimits {
            max_connections: 32_768,
            max_connections_per_peer: 8192,
            header_read_timeout_s: 10,
            body_read_timeout_s: 30,
            idle_connection_s: 75,
            socket_queue_bytes: 8 * 1024 * 1024,
        }
    }
}

impl ConnLimits {
    /// `--header-read-timeout-s` as a duration.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_s.max(1))
    }
}

/// Sets hyper's header read timeout (and the timer it needs) on a server's
/// connection builder.
pub fn time_heads(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    timeout: Duration,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(timeout);
}

/// Raises the soft open-file limit to the hard limit; returns the limit now
/// in force (`None` where it cannot be read).
pub fn raise_open_files() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(_) => rlimit::Resource::NOFILE.get().ok().map(|(soft, _)| soft),
    }
}

// ---------------------------------------------------------------- acceptor

/// Connections held now, in all and per peer; shared by both listeners.
pub struct Slots {
    max: usize,
    max_per_peer: usize,
    idle: Duration,
    first_byte: Duration,
    held: Mutex<(usize, HashMap<IpAddr, usize>)>,
    node: Node,
}

impl std::fmt::Debug for Slots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slots")
            .field("max", &self.max)
            .field("max_per_peer", &self.max_per_peer)
            .field("idle", &self.idle)
            .finish_non_exhaustive()
    }
}

impl Slots {
    /// Slots for `limits`, the total kept under `open_files`.
    pub fn new(limits: &ConnLimits, open_files: Option<u64>, node: Node) -> Arc<Slots> {
        let by_files = open_files
            .map(|n| usize::try_from(n.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX))
            .unwrap_or(usize::MAX)
            .max(1);
        Arc::new(Slots {
            max: limits.max_connections.min(by_files).max(1),
            max_per_peer: limits.max_connections_per_peer.max(1),
            idle: Duration::from_secs(limits.idle_connection_s.max(1)),
            first_byte: limits.header_read_timeout(),
            held: Mutex::default(),
            node,
        })
    }

    /// The most connections held at once.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Takes a slot for `peer`, or counts why not.
    fn take(self: &Arc<Self>, peer: IpAddr) -> Option<Slot> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let (total, per_peer) = &mut *held;
        let stats = self.node.stats();
        if *total >= self.max {
            Stats::bump(&stats.limit_connections);
            return None;
        }
        let mine = per_peer.entry(peer).or_default();
        if *mine >= self.max_per_peer {
            Stats::bump(&stats.limit_connections_per_peer);
            return None;
        }
        *mine += 1;
        *total += 1;
        Some(Slot {
            slots: Arc::clone(self),
            peer,
        })
    }
}

/// One held connection; gives its slot back when dropped.
#[derive(Debug)]
struct Slot {
    slots: Arc<Slots>,
    peer: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self
            .slots
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (total, per_peer) = &mut *held;
        *total = total.saturating_sub(1);
        if let Some(mine) = per_peer.get_mut(&self.peer) {
            *mine = mine.saturating_sub(1);
            if *mine == 0 {
                per_peer.remove(&self.peer);
            }
        }
    }
}

/// The acceptor that applies [`Slots`] (innermost: TLS wraps it).
#[derive(Debug, Clone)]
pub struct Limited {
    slots: Arc<Slots>,
}

impl Limited {
    pub fn new(slots: Arc<Slots>) -> Limited {
        Limited { slots }
    }
}

impl<S> Accept<TcpStream, S> for Limited {
    type Stream = Guarded;
    type Service = S;
    type Future = Ready<io::Result<(Guarded, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let peer = stream
            .peer_addr()
            .map(|addr: SocketAddr| addr.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        ready(match self.slots.take(peer) {
            Some(slot) => {
                let guarded = Guarded::new(stream, slot, self.slots.first_byte, self.slots.idle);
                Ok((guarded, service))
            }
            None => Err(io::Error::other("connection limit")),
        })
    }
}

/// A connection holding its slot, closed when it moves no byte for a
/// while: the header read timeout until its first byte arrives (hyper's own
/// header timeout starts only once it knows the HTTP version, which needs a
/// byte), then the idle timeout.
#[derive(Debug)]
pub struct Guarded {
    stream: TcpStream,
    _slot: Slot,
    idle: Duration,
    /// How long the connection may stay silent now.
    limit: Duration,
    last: Instant,
    timer: Pin<Box<Sleep>>,
}

impl Guarded {
    fn new(stream: TcpStream, slot: Slot, first_byte: Duration, idle: Duration) -> Guarded {
        let now = Instant::now();
        Guarded {
            stream,
            _slot: slot,
            idle,
            limit: first_byte,
            last: now,
            timer: Box::pin(tokio::time::sleep_until(now + first_byte)),
        }
    }

    /// After an I/O poll: notes activity, or fails once idle too long.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(result) => {
                self.last = Instant::now();
                Poll::Ready(result)
            }
            Poll::Pending => loop {
                if self.timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let due = self.last + self.limit;
                if Instant::now() >= due {
                    return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
                }
                self.timer.as_mut().reset(due);
            },
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.limit = self.idle;
        }
        self.watch(cx, polled)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.watch(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_flush(cx);
        self.watch(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

// ---------------------------------------------------------------- bodies

/// What [`body_deadline`] needs.
#[derive(Clone)]
pub(crate) struct BodyDeadline {
    pub timeout: Duration,
    pub limit: usize,
    pub node: Node,
}

/// Reads the body of a request that has one within the deadline (408
/// otherwise), no longer than the body limit (413), before the handler runs.
pub(crate) async fn body_deadline(
    State(deadline): State<BodyDeadline>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let read = LimitedBody::new(body, deadline.limit).collect();
    match tokio::time::timeout(deadline.timeout, read).await {
        Ok(Ok(collected)) => {
            let request = Request::from_parts(parts, Body::from(collected.to_bytes()));
            next.run(request).await
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Refusal::Phoenix(StatusCode::PAYLOAD_TOO_LARGE).into_response()
        }
        Ok(Err(_)) => Refusal::Phoenix(StatusCode::BAD_REQUEST).into_response(),
        Err(_) => {
            Stats::bump(&deadline.node.stats().limit_body_timeout);
            Refusal::Phoenix(StatusCode::REQUEST_TIMEOUT).into_response()
        }
    }
}

// ---------------------------------------------------------------- queues

/// Bytes waiting for one websocket, against its budget.
#[derive(Debug)]
pub struct QueueBudget {
    used: AtomicUsize,
    max: usize,
}

impl QueueBudget {
    pub fn new(max: usize) -> Arc<QueueBudget> {
        Arc::new(QueueBudget {
            used: AtomicUsize::new(0),
            max: max.max(1),
        })
    }

    /// Reserves `bytes`, or `None` when they would exceed the budget (a
    /// single item larger than the whole budget is refused too).
    pub fn reserve(self: &Arc<Self>, bytes: usize) -> Option<Reservation> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let next = used.checked_add(bytes).filter(|next| *next <= self.max)?;
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Some(Reservation {
                        budget: Some(Arc::clone(self)),
                        bytes,
                    })
                }
                Err(now) => used = now,
            }
        }
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// Bytes held in a [`QueueBudget`] until dropped.
#[derive(Debug, Default)]
pub struct Reservation {
    budget: Option<Arc<QueueBudget>>,
    bytes: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_budget_refuses_past_its_bytes_and_gets_them_back() {
        let budget = QueueBudget::new(100);
        let a = budget.reserve(60).expect("fits");
        assert!(budget.reserve(50).is_none());
        let b = budget.reserve(40).expect("fits exactly");
        assert_eq!(budget.used(), 100);
        drop(a);
        assert_eq!(budget.used(), 40);
        drop(b);
        assert_eq!(budget.used(), 0);
        assert!(budget.reserve(101).is_none(), "one item over the budget");
    }

    #[tokio::test]
    async fn slots_are_shared_per_peer_and_given_back() {
        let limits = ConnLimits {
            max_connections: 3,
            max_connections_per_peer: 2,
            ..ConnLimits::default()
        };
        let node = Node::new();
        let slots = Slots::new(&limits, Some(1_000_000), node.clone());
        let (a, b) = (
            "10.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
        );
        let a1 = slots.take(a).expect("first");
        let _a2 = slots.take(a).expect("second");
        assert!(slots.take(a).is_none(), "a's share is 2");
        let _b1 = slots.take(b).expect("b has its own share");
        assert!(slots.take(b).is_none(), "the total is 3");
        drop(a1);
        assert!(slots.take(b).is_some(), "a slot came back");
        let stats = node.stats_json();
        assert_eq!(stats["limit_connections_per_peer"], 1);
        assert_eq!(stats["limit_connections"], 1);
        let roomy = ConnLimits {
            max_connections: 50,
            ..limits
        };
        assert_eq!(
            Slots::new(&roomy, Some(70), node).max(),
            70 - 64,
            "kept below the files"
        );
    }

    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        let now = raise_open_files().expect("readable");
        let (soft, hard) = rlimit::Resource::NOFILE.get().expect("readable");
        assert_eq!(now, soft);
        assert!(soft == hard || soft >= 1024, "soft {soft}, hard {hard}");
    }
}
