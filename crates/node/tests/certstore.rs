//! The self-signed certificate kept between starts (`r2_node::certstore`),
//! as a TLS client sees it over a real socket: the same certificate after a
//! restart, verified against the kept `cert.pem` for `localhost`, with the
//! serverAuth extended key usage, a validity of at most 397 days and the
//! subject alternative names of every interface address; the key file is
//! mode 0600. Also the sites server's refusal of dotfiles and of symlinks
//! that leave its folder.

mod common;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{ensure, Context, Result};
use common::TestNode;
use r2_node::{certstore::CertStore, Config, Running};
use tokio_rustls::{
    rustls::{self, pki_types::CertificateDer, pki_types::ServerName, RootCertStore},
    TlsConnector,
};
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};

fn scratch(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("r2-node-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The certificate the node at `running` serves, checked by a client that
/// trusts only the kept `cert.pem`, for the name `localhost`.
async fn served_certificate(running: &Running, store: &Path) -> Result<CertificateDer<'static>> {
    let pem = std::fs::read(store.join("cert.pem")).context("kept cert.pem")?;
    let mut roots = RootCertStore::empty();
    for cert in rustls_pemfile_certs(&pem)? {
        roots.add(cert)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let addr = running.https.context("https listener")?;
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let stream = TlsConnector::from(Arc::new(tls))
        .connect(ServerName::try_from("localhost")?, tcp)
        .await
        .context("the served certificate is the kept one, valid for localhost")?;
    let (_, session) = stream.get_ref();
    let chain = session.peer_certificates().context("no certificate")?;
    Ok(chain[0].clone().into_owned())
}

/// The certificates of a PEM file.
fn rustls_pemfile_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    Ok(CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>()?)
}

fn config(store: &Path) -> Config {
    Config {
        cert_store: CertStore::Dir(store.to_path_buf()),
        ..Config::loopback().with_loopback_https()
    }
}

#[tokio::test]
async fn the_certificate_survives_a_restart_with_server_auth_and_every_address() -> Result<()> {
    let store = scratch("certstore")?;
    let first = Running::start(config(&store)).await?;
    let served = served_certificate(&first, &store).await?;
    first.stop().await?;
    let second = Running::start(config(&store)).await?;
    let again = served_certificate(&second, &store).await?;
    second.stop().await?;
    assert_eq!(
        served, again,
        "same certificate (same fingerprint) after a restart"
    );

    let (_, cert) = X509Certificate::from_der(served.as_ref())?;
    let mut server_auth = false;
    let mut names: Vec<String> = Vec::new();
    for extension in cert.extensions() {
        match extension.parsed_extension() {
            ParsedExtension::ExtendedKeyUsage(eku) => server_auth = eku.server_auth,
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    match name {
                        GeneralName::DNSName(dns) => names.push((*dns).to_string()),
                        GeneralName::IPAddress(bytes) => {
                            let ip = match bytes.len() {
                                4 => IpAddr::from(<[u8; 4]>::try_from(*bytes)?),
                                _ => IpAddr::from(<[u8; 16]>::try_from(*bytes)?),
                            };
                            names.push(ip.to_string());
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    assert!(server_auth, "serverAuth extended key usage");
    for expected in ["localhost", "127.0.0.1", "::1"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    for (_, ip) in local_ip_address::list_afinet_netifas()?
        .into_iter()
        .filter(|(_, ip)| ip.is_ipv4())
    {
        assert!(
            names.contains(&ip.to_string()),
            "interface {ip} in {names:?}"
        );
    }
    let validity = cert.validity();
    let days = (validity.not_after.timestamp() - validity.not_before.timestamp()) / 86_400;
    ensure!((1..=397).contains(&days), "valid for {days} days");
    eprintln!("certificate: {} names, valid {days} days", names.len());

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(store.join("key.pem"))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "key.pem mode");
    }
    std::fs::remove_dir_all(&store).ok();
    Ok(())
}

#[tokio::test]
async fn the_sites_server_refuses_dotfiles_and_symlinks_leaving_its_folder() -> Result<()> {
    let base = scratch("sites-confine")?;
    let (sites, outside) = (base.join("sites"), base.join("outside"));
    std::fs::create_dir_all(sites.join("app/.git"))?;
    std::fs::create_dir_all(&outside)?;
    std::fs::write(sites.join("app/index.html"), "<p>app</p>")?;
    std::fs::write(sites.join("app/.env"), "TOKEN=secret")?;
    std::fs::write(sites.join("app/.git/config"), "secret")?;
    std::fs::write(outside.join("secret.txt"), "secret")?;
    std::os::unix::fs::symlink(&outside, sites.join("app/out"))?;
    std::os::unix::fs::symlink(outside.join("secret.txt"), sites.join("app/leak.txt"))?;
    std::os::unix::fs::symlink(sites.join("app/index.html"), sites.join("app/same.html"))?;
    let node = TestNode::with_config(Config {
        sites: Some(sites.clone()),
        ..Config::loopback()
    })
    .await?;
    let get = |path: &str| {
        let url = format!("{}{path}", node.base);
        let client = node.http.clone();
        async move {
            let response = client.get(url).send().await?;
            Ok::<_, anyhow::Error>((response.status().as_u16(), response.text().await?))
        }
    };
    assert_eq!(get("/app").await?, (200, "<p>app</p>".to_string()));
    assert_eq!(
        get("/app/same.html").await?.0,
        200,
        "a symlink inside is served"
    );
    for refused in [
        "/app/.env",
        "/app/%2eenv",
        "/app/.git/config",
        "/app/out/secret.txt",
        "/app/leak.txt",
        "/app/../outside/secret.txt",
    ] {
        let (status, body) = get(refused).await?;
        assert_eq!(status, 404, "{refused}: {body}");
        assert!(!body.contains("secret"), "{refused}: {body}");
    }
    std::fs::remove_dir_all(&base).ok();
    Ok(())
}
