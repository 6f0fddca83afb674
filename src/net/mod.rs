//! The page's one Reality2 client, over `gloo-net`: GraphQL over HTTP
//! (`gloo_net::http`) and websockets (`gloo_net::websocket`) driving
//! `r2_core`'s subscription machine. The run, device mode, the fleet, the
//! leftovers view and first contact all talk to a node through it.
//!
//! # Layout
//!
//! - [`http`]: [`Client`], one GraphQL endpoint: the WebApp's exact request
//!   bodies and headers, an optional timeout, failures as [`NetError`];
//!   each request made with `gloo-net` or by [`lean`]'s leaner path
//!   (`http=lean`), the same on the wire.
//! - [`socket`]: [`Socket`], one websocket driving a
//!   [`SocketMachine`](r2_core::subscription::SocketMachine): it carries out
//!   the machine's effects (frames, timers, reopening) and hands its owner
//!   the rest; dropping it closes the socket and stops its tasks.
//! - [`sockets`]: [`Sockets`], the one owner of a run's sockets, from which
//!   the live socket count is computed.

pub mod http;
pub mod lean;
pub mod socket;
pub mod sockets;

pub use http::{Client, NetError};
pub use socket::Socket;
pub use sockets::Sockets;

/// The websocket URL of a node given its HTTP address.
pub fn websocket_url(node: &str) -> String {
    let base = node.trim_end_matches('/');
    let base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    };
    format!("{base}/reality2/websocket")
}
