//! `r2-node`: runs a Reality2-compatible node from the command line.
//!
//! `r2-node [--https ADDR] [--http ADDR] [--no-https] [--cert PEM --key PEM] [--sites DIR]
//! [--latency-ms MS] [--jitter-ms MS] [--error-rate RATE] [--drop-sockets-every-s S] [--refuse-for-s S]
//! [--lenient] [--cors] [--https-alpn h2|http1] [--cert-dir DIR] [--control-token T] [limits, see --help]`
//! (defaults `--https 0.0.0.0:4005 --http 0.0.0.0:4006`, no faults, the real
//! node's behaviour). It prints one line per listener,
//! `r2-node: http://127.0.0.1:4006/reality2`, a line for any departure from
//! the real node's behaviour, then serves until Ctrl-C, when it shuts down
//! gracefully.

use anyhow::Context;
use r2_node::{
    fidelity::{Alpn, Cors},
    server::base_url,
    tls::lan_addresses,
    Config, Fidelity, Listeners, Node,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse_args();
    let listeners = Listeners::bind(&config).await?;
    let (http, https) = listeners.local_addrs()?;
    for (scheme, addr) in [("https", https), ("http", http)] {
        if let Some(addr) = addr {
            println!(
                "r2-node: {}/reality2{}",
                base_url(scheme, addr),
                also(scheme, addr)
            );
        }
    }
    if let Some(sites) = &config.sites {
        match site_names(sites) {
            Ok(names) => println!(
                "r2-node: sites from {}: {}",
                sites.display(),
                names.join(" ")
            ),
            Err(e) => eprintln!("r2-node: cannot read sites folder {}: {e}", sites.display()),
        }
    }
    // `--lenient`, whatever `--https-alpn` chose.
    let lenient = Fidelity::lenient();
    let is_lenient = Fidelity {
        alpn: lenient.alpn,
        ..config.fidelity
    } == lenient;
    if is_lenient {
        println!("r2-node: lenient, kinder than the real node (see --help)");
    } else if config.fidelity.cors == Cors::Any {
        println!("r2-node: CORS open to any origin");
    }
    let usual_alpn = if is_lenient {
        lenient.alpn
    } else {
        Alpn::H2AndHttp1
    };
    if https.is_some() && config.fidelity.alpn != usual_alpn {
        println!(
            "r2-node: HTTPS offers {} by ALPN (--https-alpn)",
            config.fidelity.alpn.describe()
        );
    }
    if config.faults != r2_node::FaultSpec::default() {
        let faults = serde_json::to_string(&config.faults).unwrap_or_default();
        println!("r2-node: faults {faults} (change them at /r2-node/faults)");
    }
    let shutdown = async {
        // If Ctrl-C cannot be watched, run until killed.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        println!("r2-node: shutting down");
    };
    if https.is_some() && config.cert.is_none() {
        if let r2_node::certstore::CertStore::Dir(dir) = &config.cert_store {
            println!("r2-node: certificate kept in {}", dir.display());
        }
    }
    if config.control.control_token.is_none() {
        println!(
            "r2-node: /r2-node/faults answers loopback only (--control-token T to allow others)"
        );
    }
    let node = Node::for_config(&config);
    r2_node::run(node, config, listeners, shutdown)
        .await
        .context("r2-node stopped")
}

/// For a listener on every interface, its URLs on the LAN addresses too.
fn also(scheme: &str, addr: std::net::SocketAddr) -> String {
    if !addr.ip().is_unspecified() {
        return String::new();
    }
    let lan: Vec<String> = lan_addresses()
        .into_iter()
        .filter(|ip| ip.is_ipv4() == addr.is_ipv4() || addr.is_ipv6())
        .map(|ip| format!("{}/reality2", base_url(scheme, (ip, addr.port()).into())))
        .collect();
    if lan.is_empty() {
        String::new()
    } else {
        format!(" (also {})", lan.join(", "))
    }
}

/// `/NAME` for each sub-folder of the sites folder, sorted.
fn site_names(sites: &std::path::Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(sites)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            names.push(format!("/{}", entry.file_name().to_string_lossy()));
        }
    }
    names.sort();
    Ok(names)
}
