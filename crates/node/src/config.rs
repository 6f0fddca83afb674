//! Command-line configuration of the node: which addresses to listen on, the
//! TLS certificate, the folder of web apps, the websocket idle timeout, the
//! faults to inject from the start, and how closely to copy the real node
//! ([`crate::fidelity`]).
//!
//! The command line is `r2-node [--https ADDR] [--http ADDR] [--no-https]
//! [--cert PEM --key PEM] [--sites DIR] [--latency-ms MS] [--jitter-ms MS]
//! [--error-rate RATE] [--drop-sockets-every-s S] [--refuse-for-s S]
//! [--lenient] [--cors] [--https-alpn h2|http1] [--cert-dir DIR] [--control-token T] [limits]`;
//! [`Config::parse_args`] reads it and [`Config::loopback`] builds the
//! configuration tests use.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{error::ErrorKind, CommandFactory, Parser};

use crate::certstore::CertStore;
use crate::conn::ConnLimits;
use crate::control::ControlAccess;
use crate::faults::FaultSpec;
use crate::fidelity::{Alpn, Cors, Fidelity};
use crate::limits::Limits;

/// How long a websocket may stay silent before the node closes it (Phoenix's
/// default `timeout` for websockets).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How many frames may wait for a slow websocket client before the node gives
/// up on it (see [`crate::ws`]).
pub const DEFAULT_SOCKET_QUEUE: usize = 1024;

/// Largest request body `/reality2` accepts; larger bodies get 413.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// Everything a server needs to know besides the [`crate::Node`] it serves.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// HTTPS listener address; `None` serves no HTTPS.
    pub https: Option<SocketAddr>,
    /// Plain HTTP listener address; `None` serves no plain HTTP.
    pub http: Option<SocketAddr>,
    /// PEM certificate chain for HTTPS (with `key`); without it a self-signed
    /// certificate is generated at start.
    pub cert: Option<PathBuf>,
    /// PEM private key matching `cert`.
    pub key: Option<PathBuf>,
    /// Folder whose sub-folders are web apps served at `/NAME`.
    pub sites: Option<PathBuf>,
    /// A websocket that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// Frames queued for one websocket before the node disconnects it.
    pub socket_queue: usize,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Faults in force from the start (`refuse_for_s` counts from then).
    pub faults: FaultSpec,
    /// Where the node copies the real node's behaviour (all of it by default).
    pub fidelity: Fidelity,
    /// Where the self-signed certificate is kept (see [`crate::certstore`]).
    pub cert_store: CertStore,
    /// Who may use `/r2-node/faults` (see [`crate::control`]).
    pub control: ControlAccess,
    /// Limits on sentants, events and documents (see [`crate::limits`]).
    pub limits: Limits,
    /// Limits and timeouts of connections (see [`crate::conn`]).
    pub connections: ConnLimits,
}

/// The real-node behaviours `--help` lists (see [`crate::fidelity`]).
const REAL_NODE_HELP: &str = "\
Behaves as the real node where that changes load or results (each on by default):
  - \"__key__\" in a vars `set` is replaced as text: sensor 42 is stored and signalled as \"42\"
  - an unknown id (sentantGet, sentantSend, sentantUnload, awaitSignal) answers after about 1 s
    (ten 100 ms retries); a `send` action to a sentant that is not loaded holds its sender 1 s
  - __internal goes to every sentant on each load, redefinition and unload, with a fresh id
    on a redefinition
  - HTTPS offers h2 and http/1.1 (HTTP/2 served; websockets use HTTP/1.1; --https-alpn http1
    offers http/1.1 only)
  - no CORS headers (--cors adds them)
  - description is \"\" when a definition has none
--lenient restores the kinder behaviour for all of them at once.";

/// The command line, as clap sees it; turned into a [`Config`].
#[derive(Debug, Parser)]
#[command(
    name = "r2-node",
    version,
    about = "A Reality2-compatible local node: GraphQL at /reality2, subscriptions at /reality2/websocket.",
    after_help = REAL_NODE_HELP
)]
struct Args {
    /// Address of the HTTPS listener.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:4005")]
    https: SocketAddr,
    /// Address of the plain HTTP listener.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:4006")]
    http: SocketAddr,
    /// Serve no HTTPS at all.
    #[arg(long, conflicts_with_all = ["https", "cert", "key"])]
    no_https: bool,
    /// PEM certificate chain for HTTPS (default: a self-signed one made at start).
    #[arg(long, value_name = "PEM", requires = "key")]
    cert: Option<PathBuf>,
    /// PEM private key for --cert.
    #[arg(long, value_name = "PEM", requires = "cert")]
    key: Option<PathBuf>,
    /// Folder of web apps: each sub-folder NAME is served at /NAME.
    #[arg(long, value_name = "DIR")]
    sites: Option<PathBuf>,
    /// Fault: delay each /reality2 answer and subscription push by this many ms.
    #[arg(long, value_name = "MS", default_value_t = 0.0)]
    latency_ms: f64,
    /// Fault: add a uniform random 0..=MS to that delay.
    #[arg(long, value_name = "MS", default_value_t = 0.0)]
    jitter_ms: f64,
    /// Fault: answer this share (0..1) of /reality2 requests with HTTP 500.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    error_rate: f64,
    /// Fault: drop every websocket on this period, in seconds.
    #[arg(long, value_name = "S", default_value_t = 0.0)]
    drop_sockets_every_s: f64,
    /// Fault: refuse connections (except /r2-node/*) for this long from start, in seconds.
    #[arg(long, value_name = "S", default_value_t = 0.0)]
    refuse_for_s: f64,
    /// Kinder than the real node: values keep their type, no 1 s wait for unknown ids or
    /// sends to missing sentants, __internal only to its listeners, description null,
    /// HTTPS HTTP/1.1 only, CORS open.
    #[arg(long)]
    lenient: bool,
    /// Answer with CORS headers for any origin (the real node sends none).
    #[arg(long)]
    cors: bool,
    /// The protocols HTTPS offers by ALPN: h2 (h2 and http/1.1, as the real node) or http1
    /// (http/1.1 only) [default: h2; http1 with --lenient].
    #[arg(long, value_name = "PROTOCOLS", value_enum)]
    https_alpn: Option<Alpn>,
    /// Folder that keeps the self-signed certificate between starts
    /// [default: $XDG_DATA_HOME/r2-node, else ~/.local/share/r2-node].
    #[arg(long, value_name = "DIR")]
    cert_dir: Option<PathBuf>,
    #[command(flatten)]
    control: ControlAccess,
    #[command(flatten)]
    limits: Limits,
    #[command(flatten)]
    connections: ConnLimits,
}

impl TryFrom<Args> for Config {
    type Error = crate::faults::FaultError;

    fn try_from(args: Args) -> Result<Config, Self::Error> {
        let faults = FaultSpec {
            latency_ms: args.latency_ms,
            jitter_ms: args.jitter_ms,
            error_rate: args.error_rate,
            drop_sockets_every_s: args.drop_sockets_every_s,
            refuse_for_s: args.refuse_for_s,
            forget: false,
        };
        faults.validate()?;
        let mut fidelity = if args.lenient {
            Fidelity::lenient()
        } else {
            Fidelity::default()
        };
        if args.cors {
            fidelity.cors = Cors::Any;
        }
        if let Some(alpn) = args.https_alpn {
            fidelity.alpn = alpn;
        }
        Ok(Config {
            https: (!args.no_https).then_some(args.https),
            http: Some(args.http),
            cert: args.cert,
            key: args.key,
            sites: args.sites,
            faults,
            fidelity,
            cert_store: args
                .cert_dir
                .map_or_else(CertStore::user_default, CertStore::Dir),
            control: args.control,
            limits: args.limits,
            connections: args.connections,
            ..Config::default()
        })
    }
}

impl Default for Config {
    /// The command line's defaults: HTTPS on `0.0.0.0:4005`, HTTP on `0.0.0.0:4006`.
    fn default() -> Config {
        Config {
            https: Some(SocketAddr::from(([0, 0, 0, 0], 4005))),
            http: Some(SocketAddr::from(([0, 0, 0, 0], 4006))),
            cert: None,
            key: None,
            sites: None,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            socket_queue: DEFAULT_SOCKET_QUEUE,
            body_limit: DEFAULT_BODY_LIMIT,
            faults: FaultSpec::default(),
            fidelity: Fidelity::default(),
            cert_store: CertStore::user_default(),
            control: ControlAccess::default(),
            limits: Limits::default(),
            connections: ConnLimits::default(),
        }
    }
}

impl Config {
    /// Reads the process's command line; prints help or an error and exits
    /// the process when it is not valid (clap's usual behaviour).
    pub fn parse_args() -> Config {
        Config::try_parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// Reads a command line given as words (the first is the program name).
    pub fn try_parse_from<I, T>(words: I) -> Result<Config, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args = Args::try_parse_from(words)?;
        Config::try_from(args).map_err(|e| {
            Args::command().error(ErrorKind::ValueValidation, format!("invalid fault: {e}"))
        })
    }

    /// Plain HTTP on `127.0.0.1:0` (a free port), no HTTPS, a certificate
    /// kept nowhere, behaving as the real node: what tests use.
    pub fn loopback() -> Config {
        Config {
            https: None,
            http: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            cert_store: CertStore::Ephemeral,
            ..Config::default()
        }
    }

    /// This configuration with the kinder behaviour of `--lenient`.
    pub fn lenient(self) -> Config {
        Config {
            fidelity: Fidelity::lenient(),
            ..self
        }
    }

    /// This configuration with HTTPS also on `127.0.0.1:0`.
    pub fn with_loopback_https(self) -> Config {
        Config {
            https: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_real_node() {
        let config = Config::try_parse_from(["r2-node"]).expect("no arguments is valid");
        assert_eq!(config.https, Some("0.0.0.0:4005".parse().expect("addr")));
        assert_eq!(config.http, Some("0.0.0.0:4006".parse().expect("addr")));
        assert_eq!(config.idle_timeout, Duration::from_secs(60));
        assert_eq!(config.fidelity, Fidelity::default());
        assert_eq!(config, Config::default());
    }

    #[test]
    fn every_flag_is_read() {
        let config = Config::try_parse_from([
            "r2-node",
            "--https",
            "127.0.0.1:8443",
            "--http",
            "[::1]:8080",
            "--cert",
            "c.pem",
            "--key",
            "k.pem",
            "--sites",
            "www",
        ])
        .expect("valid command line");
        assert_eq!(config.https, Some("127.0.0.1:8443".parse().expect("addr")));
        assert_eq!(config.http, Some("[::1]:8080".parse().expect("addr")));
        assert_eq!(config.cert, Some(PathBuf::from("c.pem")));
        assert_eq!(config.key, Some(PathBuf::from("k.pem")));
        assert_eq!(config.sites, Some(PathBuf::from("www")));
    }

    #[test]
    fn fault_flags_are_read_and_checked() {
        let config = Config::try_parse_from([
            "r2-node",
            "--latency-ms",
            "120",
            "--jitter-ms",
            "30.5",
            "--error-rate",
            "0.1",
            "--drop-sockets-every-s",
            "20",
            "--refuse-for-s",
            "3",
        ])
        .expect("valid faults");
        let expected = FaultSpec {
            latency_ms: 120.0,
            jitter_ms: 30.5,
            error_rate: 0.1,
            drop_sockets_every_s: 20.0,
            refuse_for_s: 3.0,
            forget: false,
        };
        assert_eq!(config.faults, expected);
        assert_eq!(Config::default().faults, FaultSpec::default());
        for words in [
            &["r2-node", "--error-rate", "1.5"][..],
            &["r2-node", "--latency-ms=-5"],
            &["r2-node", "--refuse-for-s", "NaN"],
            &["r2-node", "--drop-sockets-every-s", "0.0001"],
        ] {
            let refused = Config::try_parse_from(words).expect_err("out of range");
            assert_eq!(refused.kind(), ErrorKind::ValueValidation, "{words:?}");
        }
    }

    #[test]
    fn lenient_and_cors_are_read() {
        let lenient = Config::try_parse_from(["r2-node", "--lenient"]).expect("valid");
        assert_eq!(lenient.fidelity, Fidelity::lenient());
        let cors = Config::try_parse_from(["r2-node", "--cors"]).expect("valid");
        assert_eq!(
            cors.fidelity,
            Fidelity {
                cors: Cors::Any,
                ..Fidelity::default()
            }
        );
        let both = Config::try_parse_from(["r2-node", "--lenient", "--cors"]).expect("valid");
        assert_eq!(both.fidelity, Fidelity::lenient());
        assert_eq!(Config::loopback().fidelity, Fidelity::default());
        assert_eq!(Config::loopback().lenient().fidelity, Fidelity::lenient());
    }

    #[test]
    fn https_alpn_overrides_the_fidelity_s_choice() {
        let http1 = Config::try_parse_from(["r2-node", "--https-alpn", "http1"]).expect("valid");
        assert_eq!(
            http1.fidelity,
            Fidelity {
                alpn: Alpn::Http1,
                ..Fidelity::default()
            }
        );
        let h2 =
            Config::try_parse_from(["r2-node", "--lenient", "--https-alpn", "h2"]).expect("valid");
        assert_eq!(
            h2.fidelity,
            Fidelity {
                alpn: Alpn::H2AndHttp1,
                ..Fidelity::lenient()
            }
        );
        assert!(Config::try_parse_from(["r2-node", "--https-alpn", "h3"]).is_err());
    }

    #[test]
    fn hardening_flags_are_read() {
        let config = Config::try_parse_from([
            "r2-node",
            "--cert-dir",
            "/tmp/certs",
            "--control-token",
            "t",
            "--max-hops",
            "7",
            "--max-query-aliases",
            "9",
            "--max-connections-per-peer",
            "11",
            "--socket-queue-bytes",
            "4096",
        ])
        .expect("valid");
        assert_eq!(
            config.cert_store,
            CertStore::Dir(PathBuf::from("/tmp/certs"))
        );
        assert_eq!(config.control.control_token.as_deref(), Some("t"));
        assert_eq!(
            (config.limits.max_hops, config.limits.max_query_aliases),
            (7, 9)
        );
        assert_eq!(config.connections.max_connections_per_peer, 11);
        assert_eq!(config.connections.socket_queue_bytes, 4096);
        assert_eq!(Config::loopback().cert_store, CertStore::Ephemeral);
    }

    #[test]
    fn no_https_turns_the_tls_listener_off() {
        let config = Config::try_parse_from(["r2-node", "--no-https"]).expect("valid");
        assert_eq!(config.https, None);
        assert!(config.http.is_some());
    }

    #[test]
    fn contradictory_or_incomplete_flags_are_refused() {
        for words in [
            &["r2-node", "--no-https", "--https", "0.0.0.0:1"][..],
            &["r2-node", "--cert", "c.pem"],
            &["r2-node", "--key", "k.pem"],
            &["r2-node", "--http", "not-an-address"],
            &["r2-node", "--bogus"],
        ] {
            assert!(
                Config::try_parse_from(words).is_err(),
                "{words:?} should be refused"
            );
        }
    }

    #[test]
    fn loopback_is_http_only_on_a_free_port() {
        let config = Config::loopback();
        assert_eq!(config.https, None);
        assert_eq!(config.http, Some("127.0.0.1:0".parse().expect("addr")));
        let both = config.with_loopback_https();
        assert_eq!(both.https, Some("127.0.0.1:0".parse().expect("addr")));
    }
}
