//! HTTPS: the node's certificate (read from PEM files, or self-signed at start
//! like the real node's `priv/cert/selfsigned.pem`) and the rustls server
//! configuration, built on the `ring` crypto provider.
//!
//! The self-signed certificate names `localhost`, `127.0.0.1`, `::1`, the
//! machine's host name (and `HOST.local`) and every interface address, and
//! is kept between starts (see [`crate::certstore`]), so phones on the same
//! network accept it once.
//!
//! # Layout
//!
//! - [`Identity`]: the certificate and key, and the rustls configuration.
//! - [`local_names`], [`lan_addresses`]: the names the certificate holds.
//! - [`CountAlpn`]: the acceptor that counts TLS connections by the
//!   protocol ALPN chose (`tls_h2`, `tls_http1` in `/r2-node/stats`).

use std::{
    future::Future,
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket},
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
};

use axum_server::{accept::Accept, tls_rustls::RustlsConfig};
#[cfg(test)]
use rcgen::{KeyPair, SanType};
use rustls::pki_types::{
    pem::{self, PemObject},
    CertificateDer, PrivateKeyDer,
};

#[cfg(test)]
use crate::certstore::san;
use crate::certstore::{load_or_make, machine_names, CertStore};
use crate::stats::Stats;
use crate::{Config, Node};

/// Why the node could not set up HTTPS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The self-signed certificate could not be made.
    #[error("cannot generate a self-signed certificate")]
    Generate(#[from] rcgen::Error),
    /// A PEM file could not be read or holds nothing usable.
    #[error("cannot read {what} from {path}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: pem::Error,
    },
    /// Only one of `--cert` and `--key` was given.
    #[error("--cert and --key must be given together")]
    HalfIdentity,
    /// The certificate store could not be used.
    #[error("the certificate store failed")]
    Store(#[source] Box<crate::certstore::CertStoreError>),
    /// rustls refused the certificate and key.
    #[error("the certificate and key do not make a TLS configuration")]
    Rustls(#[from] rustls::Error),
}

/// A certificate chain and its private key.
#[derive(Debug)]
pub struct Identity {
    pub cert_chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// Reads a PEM certificate chain and a PEM private key.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
        fn pem_error(what: &'static str, path: &Path) -> impl FnOnce(pem::Error) -> TlsError {
            let path = path.to_path_buf();
            move |source| TlsError::Pem { what, path, source }
        }
        let cert_chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(pem_error("a certificate", cert))?;
        if cert_chain.is_empty() {
            return Err(pem_error("a certificate", cert)(pem::Error::NoItemsFound));
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(pem_error("a private key", key))?;
        Ok(Identity { cert_chain, key })
    }

    /// A fresh self-signed certificate for `names` (DNS names or IP addresses;
    /// a name that is neither is left out), as [`crate::certstore::generate`]
    /// makes it.
    pub fn self_signed(names: &[String]) -> Result<Identity, TlsError> {
        let made = crate::certstore::generate(names)?;
        let cert = CertificateDer::from_pem_slice(made.cert_pem.as_bytes());
        let key = PrivateKeyDer::from_pem_slice(made.key_pem.as_bytes());
        match (cert, key) {
            (Ok(cert), Ok(key)) => Ok(Identity {
                cert_chain: vec![cert],
                key,
            }),
            (Err(source), _) | (_, Err(source)) => Err(TlsError::Pem {
                what: "the generated certificate",
                path: PathBuf::new(),
                source,
            }),
        }
    }

    /// The identity `config` asks for: its PEM files, or a self-signed one for
    /// [`machine_names`], kept in its [`CertStore`].
    pub fn for_config(config: &Config) -> Result<Identity, TlsError> {
        match (&config.cert, &config.key) {
            (Some(cert), Some(key)) => Identity::from_pem_files(cert, key),
            (None, None) => match &config.cert_store {
                CertStore::Ephemeral => Identity::self_signed(&machine_names()),
                CertStore::Dir(dir) => load_or_make(dir, &machine_names())
                    .map(|(identity, _)| identity)
                    .map_err(|e| TlsError::Store(Box::new(e))),
            },
            _ => Err(TlsError::HalfIdentity),
        }
    }

    /// The rustls server configuration (ring provider; by ALPN `h2` and
    /// `http/1.1`, as the real node: see [`crate::fidelity::Alpn`]).
    pub fn server_config(self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.cert_chain, self.key)?;
        config.alpn_protocols = crate::fidelity::Alpn::H2AndHttp1.protocols();
        Ok(Arc::new(config))
    }

    /// The configuration axum-server's rustls acceptor takes.
    pub fn rustls_config(self) -> Result<RustlsConfig, TlsError> {
        self.server_config().map(RustlsConfig::from_config)
    }
}

/// Wraps the TLS acceptor: once a handshake is done, counts the connection
/// in `tls_h2` or `tls_http1` by the protocol ALPN chose, so a client's
/// claim to speak HTTP/2 can be checked at the node.
#[derive(Clone)]
pub struct CountAlpn<A> {
    inner: A,
    node: Node,
}

impl<A> CountAlpn<A> {
    pub fn new(inner: A, node: Node) -> CountAlpn<A> {
        CountAlpn { inner, node }
    }
}

/// A TLS connection whose handshake is done: the protocol ALPN chose.
pub trait Negotiated {
    fn alpn_protocol(&self) -> Option<&[u8]>;
}

impl<T> Negotiated for tokio_rustls::server::TlsStream<T> {
    fn alpn_protocol(&self) -> Option<&[u8]> {
        self.get_ref().1.alpn_protocol()
    }
}

impl<A, I, S> Accept<I, S> for CountAlpn<A>
where
    A: Accept<I, S>,
    A::Stream: Negotiated + Send + 'static,
    A::Future: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = io::Result<(A::Stream, A::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let handshake = self.inner.accept(stream, service);
        let node = self.node.clone();
        Box::pin(async move {
            let (stream, service) = handshake.await?;
            let stats = node.stats();
            let counter = match stream.alpn_protocol() {
                Some(b"h2") => &stats.tls_h2,
                _ => &stats.tls_http1,
            };
            Stats::bump(counter);
            Ok((stream, service))
        })
    }
}

/// The names this machine is reached by: loopback names, the host name (also
/// with `.local`, for mDNS), and the addresses it routes from to the outside
/// (found without sending anything).
pub fn local_names() -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        Ipv4Addr::LOCALHOST.to_string(),
        Ipv6Addr::LOCALHOST.to_string(),
    ];
    if let Ok(host) = gethostname::gethostname().into_string() {
        if !host.is_empty() && host != "localhost" {
            names.push(format!("{host}.local"));
            names.push(host);
        }
    }
    names.extend(lan_addresses().iter().map(IpAddr::to_string));
    names.dedup();
    names
}

/// The local addresses the machine would use to reach the internet (IPv4 and
/// IPv6): connecting a UDP socket picks a route without sending a packet.
pub fn lan_addresses() -> Vec<IpAddr> {
    let probes: [(SocketAddr, SocketAddr); 2] = [
        (
            (Ipv4Addr::UNSPECIFIED, 0).into(),
            (Ipv4Addr::new(192, 0, 2, 1), 9).into(),
        ),
        (
            (Ipv6Addr::UNSPECIFIED, 0).into(),
            (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 9).into(),
        ),
    ];
    probes
        .into_iter()
        .filter_map(|(bind, target)| {
            let socket = UdpSocket::bind(bind).ok()?;
            socket.connect(target).ok()?;
            let ip = socket.local_addr().ok()?.ip();
            (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_certificate_builds_a_server_config() {
        let identity = Identity::self_signed(&local_names()).expect("self-signed");
        assert_eq!(identity.cert_chain.len(), 1);
        identity.server_config().expect("rustls accepts it");
    }

    #[test]
    fn local_names_include_loopback() {
        let names = local_names();
        for expected in ["localhost", "127.0.0.1", "::1"] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
    }

    #[test]
    fn invalid_names_are_left_out_of_the_certificate() {
        assert!(san("not a dns name!").is_none());
        assert!(san("ünïcode").is_none());
        assert!(matches!(san("10.0.0.1"), Some(SanType::IpAddress(_))));
        assert!(matches!(san("phone.local"), Some(SanType::DnsName(_))));
        Identity::self_signed(&["bad name".into(), "localhost".into()]).expect("skips bad");
    }

    #[test]
    fn pem_files_round_trip_and_bad_files_are_errors() {
        let dir = std::env::temp_dir().join(format!("r2-node-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let certified =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("rcgen");
        let (cert, key, junk) = (dir.join("c.pem"), dir.join("k.pem"), dir.join("j.pem"));
        std::fs::write(&cert, certified.cert.pem()).expect("write cert");
        std::fs::write(&key, certified.key_pair.serialize_pem()).expect("write key");
        std::fs::write(&junk, "not pem at all").expect("write junk");

        let identity = Identity::from_pem_files(&cert, &key).expect("valid PEM");
        identity.server_config().expect("usable");
        assert!(matches!(
            Identity::from_pem_files(&junk, &key),
            Err(TlsError::Pem {
                what: "a certificate",
                ..
            })
        ));
        assert!(matches!(
            Identity::from_pem_files(&cert, &junk),
            Err(TlsError::Pem {
                what: "a private key",
                ..
            })
        ));
        assert!(Identity::from_pem_files(&dir.join("missing.pem"), &key).is_err());
        // A key that does not match the certificate is refused by rustls.
        let other = KeyPair::generate().expect("key");
        std::fs::write(&junk, other.serialize_pem()).expect("write other key");
        let mismatched = Identity::from_pem_files(&cert, &junk).expect("reads");
        assert!(matches!(
            mismatched.server_config(),
            Err(TlsError::Rustls(_))
        ));
        std::fs::remove_dir_all(&dir).ok();
    }
}
