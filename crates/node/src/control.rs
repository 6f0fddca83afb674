//! Who may use the node's control endpoints (`/r2-node/faults`, which can
//! break every connection and forget every sentant): the node listens on
//! every interface, so anyone on the network could reach them.
//!
//! Without `--control-token` only loopback peers (127.0.0.0/8, `::1`, and
//! IPv4-mapped loopback) are answered; with `--control-token T` any peer
//! that sends `Authorization: Bearer T` (compared in constant time) is, and
//! no other. Either way a request that a browser marks as coming from
//! another origin (`Origin` naming another host than `Host`) is refused, so
//! a web page open on the node's own machine cannot use them either; and a
//! `POST` must be `application/json`, which no form or `no-cors` request can
//! send. Refusals are 403 (415 for the content type) with
//! `{"errors":{"detail": ...}}`, counted as `control_refused`.
//! `/r2-node/stats` is not guarded.
//!
//! # Layout
//!
//! - [`ControlAccess`]: the `--control-token` flag.
//! - [`Denied`]: why a request was refused, rendered as the 403/415.
//! - [`check`]: the decision, pure; [`guard`]: the axum middleware.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{header, HeaderMap, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::{stats::Stats, Node};

/// The `--control-token` flag.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct ControlAccess {
    /// Let peers other than loopback use /r2-node/faults when they send
    /// `Authorization: Bearer T` (default: no token; loopback peers only).
    #[arg(long, value_name = "T")]
    pub control_token: Option<String>,
}

/// Why a control request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No token is configured and the peer is not loopback (or unknown).
    #[error(
        "/r2-node/faults answers only loopback peers; start r2-node with \
         --control-token T and send Authorization: Bearer T to use it from elsewhere"
    )]
    NotLoopback,
    /// A token is configured and the request does not carry it.
    #[error("/r2-node/faults needs the header Authorization: Bearer <the --control-token>")]
    BadToken,
    /// A browser sent it from a page of another origin.
    #[error("/r2-node/faults refuses requests from web pages of another origin")]
    CrossOrigin,
    /// A `POST` that is not JSON.
    #[error("/r2-node/faults takes a POST only as Content-Type: application/json")]
    NotJson,
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        let status = match self {
            Denied::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::FORBIDDEN,
        };
        (
            status,
            Json(json!({ "errors": { "detail": self.to_string() } })),
        )
            .into_response()
    }
}

/// Whether `ip` is a loopback address (IPv4-mapped IPv6 included).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Whether a request from `peer` with `headers` and `method` may use the
/// control endpoints under `access`.
pub fn check(
    access: &ControlAccess,
    peer: Option<SocketAddr>,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(), Denied> {
    match &access.control_token {
        Some(token) => {
            let sent = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            if !bool::from(sent.as_bytes().ct_eq(token.as_bytes())) {
                return Err(Denied::BadToken);
            }
        }
        None if peer.is_some_and(|peer| is_loopback(peer.ip())) => {}
        None => return Err(Denied::NotLoopback),
    }
    if cross_origin(headers) {
        return Err(Denied::CrossOrigin);
    }
    if method == Method::POST && !is_json(headers) {
        return Err(Denied::NotJson);
    }
    Ok(())
}

/// An `Origin` header whose `host[:port]` is not the `Host` header.
fn cross_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, host)| host.trim_end_matches('/'));
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (origin_host, host) {
        (Some(origin), Some(host)) => !origin.eq_ignore_ascii_case(host),
        _ => true,
    }
}

/// A JSON `Content-Type` (`application/json` or `*/*+json`).
fn is_json(headers: &HeaderMap) -> bool {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// What the middleware needs.
#[derive(Clone)]
pub(crate) struct Guard {
    pub access: Arc<ControlAccess>,
    pub node: Node,
}

/// The axum middleware: passes allowed requests on, answers the others.
pub(crate) async fn guard(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    match check(&guard.access, peer, request.method(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(denied) => {
            Stats::bump(&guard.node.stats().control_refused);
            denied.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), HeaderValue::from_static(value)))
            .collect()
    }

    #[test]
    fn loopback_includes_the_whole_v4_block_v6_and_mapped_v4() {
        for ip in ["127.0.0.1", "127.9.8.7", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ip.parse().expect("ip")), "{ip}");
        }
        for ip in [
            "10.250.0.2",
            "192.168.1.5",
            "::ffff:10.0.0.1",
            "fe80::1",
            "0.0.0.0",
        ] {
            assert!(!is_loopback(ip.parse().expect("ip")), "{ip}");
        }
    }

    #[test]
    fn without_a_token_only_loopback_peers_pass() {
        let open = ControlAccess::default();
        let json = headers(&[(header::CONTENT_TYPE, "application/json")]);
        let local = Some("127.0.0.1:5000".parse().expect("addr"));
        let lan = Some("10.250.0.2:5000".parse().expect("addr"));
        assert_eq!(check(&open, local, &Method::POST, &json), Ok(()));
        assert_eq!(
            check(&open, lan, &Method::GET, &json),
            Err(Denied::NotLoopback)
        );
        assert_eq!(
            check(&open, None, &Method::GET, &json),
            Err(Denied::NotLoopback)
        );
    }

    #[test]
    fn with_a_token_it_is_required_from_everyone() {
        let access = ControlAccess {
            control_token: Some("s3cret".into()),
        };
        let lan = Some("10.250.0.2:5000".parse().expect("addr"));
        let local = Some("127.0.0.1:5000".parse().expect("addr"));
        let good = headers(&[
            (header::AUTHORIZATION, "Bearer s3cret"),
            (header::CONTENT_TYPE, "application/json; charset=utf-8"),
        ]);
        assert_eq!(check(&access, lan, &Method::POST, &good), Ok(()));
        for bad in [
            "Bearer s3cre",
            "Bearer s3cret2",
            "s3cret",
            "Basic s3cret",
            "",
        ] {
            let h = headers(&[(header::AUTHORIZATION, bad)]);
            assert_eq!(
                check(&access, local, &Method::GET, &h),
                Err(Denied::BadToken),
                "{bad}"
            );
        }
    }

    #[test]
    fn forms_and_other_origins_are_refused() {
        let open = ControlAccess::default();
        let local = Some("127.0.0.1:5000".parse().expect("addr"));
        for form in [
            "application/x-www-form-urlencoded",
            "text/plain",
            "multipart/form-data",
        ] {
            let h = headers(&[(header::CONTENT_TYPE, form)]);
            assert_eq!(
                check(&open, local, &Method::POST, &h),
                Err(Denied::NotJson),
                "{form}"
            );
        }
        let foreign = headers(&[
            (header::ORIGIN, "http://evil.example"),
            (header::HOST, "127.0.0.1:4006"),
            (header::CONTENT_TYPE, "application/json"),
        ]);
        assert_eq!(
            check(&open, local, &Method::POST, &foreign),
            Err(Denied::CrossOrigin)
        );
        let same = headers(&[
            (header::ORIGIN, "http://127.0.0.1:4006"),
            (header::HOST, "127.0.0.1:4006"),
            (header::CONTENT_TYPE, "application/json"),
        ]);
        assert_eq!(check(&open, local, &Method::POST, &same), Ok(()));
    }
}
