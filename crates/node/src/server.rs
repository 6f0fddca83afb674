//! Serving: [`run`] serves a [`Node`] on already-bound listeners (plain HTTP
//! and HTTPS) until a shutdown future resolves, then stops gracefully;
//! [`Running`] does the same in the background for tests, the testkit and
//! `cargo xtask run`.
//!
//! On shutdown the listeners stop accepting, every websocket is closed (1001)
//! and requests in flight get [`SHUTDOWN_GRACE`] to finish.
//!
//! Both listeners are served by axum-server through a [`Gate`], which lets
//! the `refuse_for_s` fault close connections without an answer; the
//! configuration's faults are applied before serving starts. Connections
//! are accepted through [`conn::Limited`] (caps, idle timeout) with hyper's
//! header read timeout, after the open-file limit is raised.

use std::{future::Future, io, net::SocketAddr, sync::Arc, time::Duration};

use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use axum_server::{tls_rustls::RustlsConfig, Handle};
use tokio::{net::TcpListener, sync::oneshot, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    conn::{self, Limited, Slots},
    faults::{FaultError, Gate},
    http,
    tls::{CountAlpn, Identity, TlsError},
    Config, Node,
};

/// How long requests in flight may run on after shutdown is asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the node could not serve.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// A listener's address could not be read, or it could not be handed to
    /// the TLS server.
    #[error("listener setup failed")]
    Listener(#[source] io::Error),
    /// HTTPS could not be set up.
    #[error("HTTPS setup failed")]
    Tls(#[from] TlsError),
    /// The configured faults are not valid.
    #[error("invalid faults")]
    Faults(#[from] FaultError),
    /// A server stopped with an I/O error.
    #[error("the {scheme} server failed")]
    Serve {
        scheme: &'static str,
        #[source]
        source: io::Error,
    },
    /// A server stopped although no shutdown was asked for.
    #[error("the {scheme} server stopped unexpectedly")]
    Stopped { scheme: &'static str },
    /// A server task panicked or was cancelled.
    #[error("a server task did not finish")]
    Task(#[from] tokio::task::JoinError),
    /// Neither HTTP nor HTTPS was asked for.
    #[error("no listener: configure --http or --https")]
    NoListener,
}

/// The sockets a node serves on; either may be absent.
#[derive(Debug, Default)]
pub struct Listeners {
    pub http: Option<TcpListener>,
    pub https: Option<TcpListener>,
}

impl Listeners {
    /// Binds the addresses `config` names (port 0 picks a free port).
    pub async fn bind(config: &Config) -> Result<Listeners, ServerError> {
        async fn bind(addr: Option<SocketAddr>) -> Result<Option<TcpListener>, ServerError> {
            match addr {
                None => Ok(None),
                Some(addr) => TcpListener::bind(addr)
                    .await
                    .map(Some)
                    .map_err(|source| ServerError::Bind { addr, source }),
            }
        }
        let listeners = Listeners {
            http: bind(config.http).await?,
            https: bind(config.https).await?,
        };
        if listeners.http.is_none() && listeners.https.is_none() {
            return Err(ServerError::NoListener);
        }
        Ok(listeners)
    }

    /// The bound addresses `(http, https)`.
    pub fn local_addrs(&self) -> Result<(Option<SocketAddr>, Option<SocketAddr>), ServerError> {
        let addr = |l: &Option<TcpListener>| {
            l.as_ref()
                .map(TcpListener::local_addr)
                .transpose()
                .map_err(ServerError::Listener)
        };
        Ok((addr(&self.http)?, addr(&self.https)?))
    }
}

/// `scheme://host:port` for a bound address, with an unspecified host
/// (`0.0.0.0`, `::`) written as loopback.
pub fn base_url(scheme: &str, addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => std::net::Ipv4Addr::LOCALHOST.into(),
        ip if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!("{scheme}://{}", SocketAddr::new(ip, addr.port()))
}

/// Serves `node` on `listeners` until `shutdown` resolves, then stops
/// gracefully. Fails early if HTTPS cannot be set up or a server stops.
/// The sentants behave as `node`'s fidelity says (make it with
/// [`Node::with_fidelity`] from `config.fidelity`); the transport's ALPN and
/// CORS follow `config.fidelity`.
pub async fn run(
    node: Node,
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let tls = tls_config(&config, listeners.https.is_some())?;
    node.apply_faults(config.faults)?;
    serve(node, config, listeners, tls, shutdown).await
}

/// The HTTPS configuration `config` asks for, when HTTPS is `wanted`, with
/// the ALPN protocols of its fidelity (axum-server serves HTTP/1.1 and
/// HTTP/2 on any connection; ALPN tells clients which they may use).
fn tls_config(config: &Config, wanted: bool) -> Result<Option<RustlsConfig>, ServerError> {
    if !wanted {
        return Ok(None);
    }
    let mut server = Identity::for_config(config)?.server_config()?;
    if let Some(server) = std::sync::Arc::get_mut(&mut server) {
        server.alpn_protocols = config.fidelity.alpn.protocols();
    }
    Ok(Some(RustlsConfig::from_config(server)))
}

/// The make-service axum-server wants, for the node's gated router (with
/// the peer's address, which [`crate::control`] reads).
fn make_service(
    app: Gate<axum::Router>,
) -> IntoMakeServiceWithConnectInfo<Gate<axum::Router>, SocketAddr> {
    axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<SocketAddr>(
        app,
    )
}

/// One listener's server, as axum-server runs it.
type ServerFuture = std::pin::Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// [`run`] with the HTTPS configuration already made (`tls` is needed when
/// there is an HTTPS listener).
async fn serve(
    node: Node,
    config: Config,
    listeners: Listeners,
    tls: Option<RustlsConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let closing = CancellationToken::new();
    let slots = Slots::new(&config.connections, conn::raise_open_files(), node.clone());
    let header_timeout = config.connections.header_read_timeout();
    let app = Gate::new(
        node.clone(),
        http::router(node.clone(), &config, closing.clone()),
    );
    let handle = Handle::new();
    let mut servers = JoinSet::new();
    let mut spawn = |scheme: &'static str, server: ServerFuture| {
        servers.spawn(async move {
            match server.await {
                Ok(()) => Ok(scheme),
                Err(source) => Err(ServerError::Serve { scheme, source }),
            }
        });
    };

    if let Some(listener) = listeners.http {
        let listener = listener.into_std().map_err(ServerError::Listener)?;
        let mut server = axum_server::from_tcp(listener)
            .acceptor(Limited::new(Arc::clone(&slots)))
            .handle(handle.clone());
        conn::time_heads(server.http_builder(), header_timeout);
        let server = server.serve(make_service(app.clone()));
        spawn("http", Box::pin(server));
    }
    if let (Some(listener), Some(tls)) = (listeners.https, tls) {
        let listener = listener.into_std().map_err(ServerError::Listener)?;
        let mut server = axum_server::from_tcp_rustls(listener, tls)
            .map(|tls| CountAlpn::new(tls.acceptor(Limited::new(Arc::clone(&slots))), node.clone()))
            .handle(handle.clone());
        conn::time_heads(server.http_builder(), header_timeout);
        let server = server.serve(make_service(app));
        spawn("https", Box::pin(server));
    }
    if servers.is_empty() {
        return Err(ServerError::NoListener);
    }

    let early = tokio::select! {
        () = shutdown => None,
        Some(stopped) = servers.join_next() => Some(stopped),
    };
    closing.cancel();
    handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
    if let Some(stopped) = early {
        servers.abort_all();
        return Err(match stopped? {
            Ok(scheme) => ServerError::Stopped { scheme },
            Err(e) => e,
        });
    }
    let drained = tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), async {
        while let Some(stopped) = servers.join_next().await {
            stopped??;
        }
        Ok::<(), ServerError>(())
    })
    .await;
    match drained {
        Ok(result) => result,
        // Connections that outlived the grace period are dropped.
        Err(_) => Ok(()),
    }
}

/// A node serving in the background.
pub struct Running {
    pub node: Node,
    pub http: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), ServerError>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("http", &self.http)
            .field("https", &self.https)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// Binds `config`'s addresses (port 0 picks free ports), makes a fresh
    /// [`Node`] with `config`'s fidelity and serves it until [`Running::stop`] (or until dropped: the
    /// server then shuts down by itself).
    pub async fn start(config: Config) -> Result<Running, ServerError> {
        let listeners = Listeners::bind(&config).await?;
        let (http, https) = listeners.local_addrs()?;
        // HTTPS is set up here so that its errors are reported by `start`.
        let tls = tls_config(&config, https.is_some())?;
        let node = Node::for_config(&config);
        node.apply_faults(config.faults)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            // Either a stop request or the sender being dropped.
            let _ = stopped.await;
        };
        let task = tokio::spawn(serve(node.clone(), config, listeners, tls, shutdown));
        Ok(Running {
            node,
            http,
            https,
            stop,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`, when plain HTTP is served.
    pub fn http_url(&self) -> Option<String> {
        self.http.map(|addr| base_url("http", addr))
    }

    /// `https://127.0.0.1:PORT`, when HTTPS is served.
    pub fn https_url(&self) -> Option<String> {
        self.https.map(|addr| base_url("https", addr))
    }

    /// Whether the server is still serving (it has not stopped or failed).
    pub fn is_serving(&self) -> bool {
        !self.task.is_finished()
    }

    /// Shuts the server down gracefully and reports how it ended.
    pub async fn stop(self) -> Result<(), ServerError> {
        let _ = self.stop.send(());
        self.task.await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_loopback_for_unspecified_hosts() {
        let any4: SocketAddr = "0.0.0.0:4006".parse().expect("addr");
        let any6: SocketAddr = "[::]:4005".parse().expect("addr");
        let lan: SocketAddr = "192.168.1.5:80".parse().expect("addr");
        assert_eq!(base_url("http", any4), "http://127.0.0.1:4006");
        assert_eq!(base_url("https", any6), "https://[::1]:4005");
        assert_eq!(base_url("http", lan), "http://192.168.1.5:80");
    }
}
