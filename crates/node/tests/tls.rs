//! HTTPS and `wss://`: the self-signed certificate made at start, a
//! certificate given as PEM files (verified by the client, websocket
//! included), PEM files that are not usable, and ALPN: `h2` with HTTP/2
//! served by default (websockets on HTTP/1.1), `http/1.1` only with
//! `--lenient`; the node counts TLS connections by the protocol ALPN chose.

mod common;

use std::sync::Arc;

use anyhow::{ensure, Context, Result};
use common::{
    answer, device_definition, id_of, load_variables, send_variables, view_definition, webapp_post,
    Socket, SENTANT_ALL, SENTANT_LOAD, SENTANT_SEND,
};
use r2_core::phoenix::Vsn;
use r2_node::{server::ServerError, Config, Running};
use serde_json::json;
use tokio_rustls::{
    rustls::{self, pki_types::ServerName, RootCertStore},
    TlsConnector,
};

/// Loads `device 0001` through `base` with `client`; returns its id.
async fn load_device(client: &reqwest::Client, base: &str) -> Result<String> {
    let definition = device_definition("device 0001");
    let (status, loaded) =
        webapp_post(client, base, SENTANT_LOAD, &load_variables(&definition)).await?;
    ensure!(status == 200, "{loaded}");
    id_of(&loaded["data"]["sentantLoad"])
}

/// A scratch folder for this test's PEM files.
fn scratch(name: &str) -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("r2-node-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[tokio::test]
async fn https_with_a_self_signed_certificate_beside_plain_http() -> Result<()> {
    let running = Running::start(Config::loopback().with_loopback_https()).await?;
    let https = running.https_url().context("https listener")?;
    let http = running.http_url().context("http listener")?;
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()?;
    let id = load_device(&client, &https).await?;
    // Both listeners serve the same node.
    let (_, all) = answer(
        client
            .post(format!("{http}/reality2"))
            .json(&json!({ "query": SENTANT_ALL }))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(all["data"]["sentantAll"][0]["id"], json!(id));
    // A client that checks certificates refuses the self-signed one.
    let strict = reqwest::Client::new();
    assert!(load_device(&strict, &https).await.is_err());
    running.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_given_certificate_serves_https_and_wss() -> Result<()> {
    let (running, certified, dir) = certified("pem", Config::loopback()).await?;

    // HTTPS, verifying the certificate.
    let client = verifying_client(&certified)?;
    let https = running.https_url().context("https url")?;
    // `view` first, so that the device's update is not held for it.
    let (status, _) = webapp_post(
        &client,
        &https,
        SENTANT_LOAD,
        &load_variables(&view_definition()),
    )
    .await?;
    assert_eq!(status, 200);
    let id = load_device(&client, &https).await?;

    // wss://, verifying the certificate.
    let (stream, _) = tls_offering(&running, &certified, &[]).await?;
    let port = running.https.context("https listener")?.port();
    let url = format!("wss://localhost:{port}/reality2/websocket");
    let (ws, _) = tokio_tungstenite::client_async(url, stream).await?;
    let mut socket = Socket::over(ws, Vsn::V1);
    socket.join().await?;
    let sub = socket.subscribe(&id, "update").await?;
    let (status, _) = webapp_post(
        &client,
        &https,
        SENTANT_SEND,
        &send_variables(&id, "update", &json!({})),
    )
    .await?;
    assert_eq!(status, 200);
    assert_eq!(
        socket.signal(&sub).await?["parameters"]["name"],
        "device 0001"
    );

    running.stop().await?;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

#[tokio::test]
async fn unusable_pem_files_stop_the_start() -> Result<()> {
    let dir = scratch("bad-pem")?;
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "no certificate here")?;
    let config = Config {
        cert: Some(junk.clone()),
        key: Some(dir.join("missing.pem")),
        ..Config::loopback().with_loopback_https()
    };
    let error = Running::start(config)
        .await
        .expect_err("junk is not a certificate");
    assert!(matches!(error, ServerError::Tls(_)), "{error:?}");
    let half = Config {
        cert: Some(junk),
        ..Config::loopback().with_loopback_https()
    };
    assert!(matches!(
        Running::start(half).await,
        Err(ServerError::Tls(_))
    ));
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// A node on HTTPS with a certificate for `localhost` given as PEM files;
/// returns it, the certificate (to verify with) and the scratch folder.
async fn certified(
    name: &str,
    config: Config,
) -> Result<(Running, rcgen::CertifiedKey, std::path::PathBuf)> {
    let dir = scratch(name)?;
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem())?;
    std::fs::write(&key, certified.key_pair.serialize_pem())?;
    let config = Config {
        cert: Some(cert),
        key: Some(key),
        ..config.with_loopback_https()
    };
    Ok((Running::start(config).await?, certified, dir))
}

/// An HTTP client that trusts `certified` (and offers h2, as browsers do).
fn verifying_client(certified: &rcgen::CertifiedKey) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(
            certified.cert.pem().as_bytes(),
        )?)
        .build()?)
}

/// A TLS connection to `running`'s HTTPS port offering `alpn`; returns it
/// with the protocol the server picked.
async fn tls_offering(
    running: &Running,
    certified: &rcgen::CertifiedKey,
    alpn: &[&[u8]],
) -> Result<(
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    Option<Vec<u8>>,
)> {
    let mut roots = RootCertStore::empty();
    roots.add(certified.cert.der().clone())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(running.https.context("https listener")?).await?;
    let stream = TlsConnector::from(Arc::new(tls))
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    let picked = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    Ok((stream, picked))
}

/// The node's TLS connections so far: `(tls_h2, tls_http1)`.
fn alpn_counts(running: &Running) -> (u64, u64) {
    let stats = running.node.stats();
    let read = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    (read(&stats.tls_h2), read(&stats.tls_http1))
}

#[tokio::test]
async fn https_offers_h2_and_serves_http2_while_wss_stays_on_http1() -> Result<()> {
    let (running, certified, dir) = certified("h2", Config::loopback()).await?;
    let https = running.https_url().context("https url")?;

    // A client that offers h2 (as browsers do) gets it, and /reality2 answers
    // over HTTP/2, many requests on one connection.
    let client = verifying_client(&certified)?;
    let (_, picked) = tls_offering(&running, &certified, &[b"h2", b"http/1.1"]).await?;
    assert_eq!(picked.as_deref(), Some(&b"h2"[..]));
    let id = load_device(&client, &https).await?;
    let requests = (0..20).map(|_| {
        client
            .post(format!("{https}/reality2"))
            .header("accept", "*/*")
            .header("content-type", "application/json")
            .body(common::webapp_body(
                SENTANT_SEND,
                &send_variables(&id, "update", &json!({})),
            ))
            .send()
    });
    for response in futures::future::try_join_all(requests).await? {
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        let (status, body) = answer(response).await?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["sentantSend"]["id"], json!(id));
    }
    assert_eq!(
        running
            .node
            .stats()
            .requests
            .load(std::sync::atomic::Ordering::Relaxed),
        21
    );

    // A websocket client offers http/1.1 only (browsers do, unless the server
    // advertises RFC 8441): wss works as before.
    let (stream, picked) = tls_offering(&running, &certified, &[b"http/1.1"]).await?;
    assert_eq!(picked.as_deref(), Some(&b"http/1.1"[..]));
    let url = format!(
        "wss://localhost:{}/reality2/websocket",
        running.https.context("https")?.port()
    );
    let (ws, _) = tokio_tungstenite::client_async(url, stream).await?;
    let mut socket = Socket::over(ws, Vsn::V1);
    socket.join().await?;
    let sub = socket.subscribe(&id, "debug").await?;
    socket.heartbeat().await?;
    assert!(sub.starts_with("__absinthe__:doc:"));
    // The bare h2 handshake and the client's one connection; the websocket's.
    assert_eq!(alpn_counts(&running), (2, 1));

    running.stop().await?;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

#[tokio::test]
async fn leniently_https_offers_http1_only() -> Result<()> {
    let (running, certified, dir) = certified("h1", Config::loopback().lenient()).await?;
    let (_, picked) = tls_offering(&running, &certified, &[b"h2", b"http/1.1"]).await?;
    assert_eq!(picked.as_deref(), Some(&b"http/1.1"[..]));
    let client = verifying_client(&certified)?;
    let https = running.https_url().context("https url")?;
    let response = client
        .post(format!("{https}/reality2"))
        .json(&json!({ "query": SENTANT_ALL }))
        .send()
        .await?;
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(answer(response).await?.0, 200);
    assert_eq!(alpn_counts(&running), (0, 2));
    running.stop().await?;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
