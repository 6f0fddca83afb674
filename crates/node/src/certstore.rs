//! The self-signed certificate, kept between starts so that phones accept it
//! once, not after every restart.
//!
//! It lives in the user's data directory (`$XDG_DATA_HOME/r2-node`, else
//! `~/.local/share/r2-node`; `--cert-dir` overrides it) as `cert.pem`,
//! `key.pem` (mode 0600) and `cert.json` (the names it was made for and when
//! it expires). It is made anew when a file is missing or unreadable, when it
//! expires within a day, or when the machine's names or interface addresses
//! changed. It carries the serverAuth extended key usage (iOS requires it),
//! is valid for [`VALIDITY_DAYS`] days (within the 397 days browsers accept),
//! and names `localhost`, `127.0.0.1`, `::1`, the host name and every
//! interface address. `--cert/--key` bypass the store.
//!
//! # Layout
//!
//! - [`CertStore`]: where the certificate is kept (or that it is not).
//! - [`generate`]: a fresh certificate for some names, as PEM.
//! - [`load_or_make`]: the kept certificate, renewed when needed.
//! - [`machine_names`]: the names a certificate made now must hold.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::DnsName;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::tls::{Identity, TlsError};

/// Days a made certificate is valid (browsers refuse more than 397).
pub const VALIDITY_DAYS: i64 = 397;

/// Where the self-signed certificate is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertStore {
    /// Made anew at every start and kept nowhere (tests).
    Ephemeral,
    /// Kept in this folder.
    Dir(PathBuf),
}

impl CertStore {
    /// The user's data directory for r2-node, or [`CertStore::Ephemeral`]
    /// when there is none (no `XDG_DATA_HOME` nor `HOME`).
    pub fn user_default() -> CertStore {
        default_dir().map_or(CertStore::Ephemeral, CertStore::Dir)
    }
}

/// `$XDG_DATA_HOME/r2-node`, else `$HOME/.local/share/r2-node`.
pub fn default_dir() -> Option<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("XDG_DATA_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| var("HOME").map(|home| home.join(".local").join("share")))
        .map(|data| data.join("r2-node"))
}

/// A certificate made now.
#[derive(Debug)]
pub struct Generated {
    pub cert_pem: String,
    pub key_pem: String,
    /// The names it holds.
    pub names: Vec<String>,
    /// When it expires (Unix seconds).
    pub not_after: i64,
}

/// A fresh self-signed server certificate for `names` (DNS names or IP
/// addresses; a name that is neither is left out): serverAuth EKU, digital
/// signature key usage, valid from an hour ago for [`VALIDITY_DAYS`].
pub fn generate(names: &[String]) -> Result<Generated, rcgen::Error> {
    let mut params = CertificateParams::default();
    let kept: Vec<(String, SanType)> = names
        .iter()
        .filter_map(|name| san(name).map(|san| (name.clone(), san)))
        .collect();
    params.subject_alt_names = kept.iter().map(|(_, san)| san.clone()).collect();
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, "r2-node self-signed");
    params.distinguished_name = subject;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(VALIDITY_DAYS) - Duration::hours(2);
    let not_after = params.not_after.unix_timestamp();
    let key_pair = KeyPair::generate()?;
    let cert = params.self_signed(&key_pair)?;
    Ok(Generated {
        cert_pem: cert.pem(),
        key_pem: key_pair.serialize_pem(),
        names: kept.into_iter().map(|(name, _)| name).collect(),
        not_after,
    })
}

/// The subject alternative name for `name`, if it is an IP address or a valid
/// DNS name.
pub(crate) fn san(name: &str) -> Option<SanType> {
    match name.parse::<IpAddr>() {
        Ok(ip) => Some(SanType::IpAddress(ip)),
        Err(_) => {
            DnsName::try_from(name).ok()?;
            name.to_string().try_into().ok().map(SanType::DnsName)
        }
    }
}

/// The names a certificate made now holds: [`crate::tls::local_names`] and
/// the address of every interface (IPv6 link-local ones left out: no URL a
/// phone opens names them), sorted.
pub fn machine_names() -> Vec<String> {
    let mut names: BTreeSet<String> = crate::tls::local_names().into_iter().collect();
    if let Ok(interfaces) = local_ip_address::list_afinet_netifas() {
        for (_, ip) in interfaces {
            let link_local_v6 =
                matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
            if !link_local_v6 && !ip.is_unspecified() {
                names.insert(ip.to_string());
            }
        }
    }
    names.into_iter().collect()
}

/// Why the certificate store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CertStoreError {
    #[error("cannot write the certificate store {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make the certificate")]
    Generate(#[from] rcgen::Error),
    #[error("the kept certificate is not usable")]
    Tls(#[from] TlsError),
}

/// What `cert.json` holds.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Kept {
    names: Vec<String>,
    not_after: i64,
}

/// Whether [`load_or_make`] reused the kept certificate or made one, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Reused,
    Made(&'static str),
}

/// The certificate kept in `dir` for `names`, made (and kept) anew when
/// there is none, it expires within a day, or `names` changed.
pub fn load_or_make(dir: &Path, names: &[String]) -> Result<(Identity, Outcome), CertStoreError> {
    let (cert, key, meta) = (
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("cert.json"),
    );
    let wanted: BTreeSet<&str> = names
        .iter()
        .filter(|n| san(n).is_some())
        .map(String::as_str)
        .collect();
    let kept = fs::read(&meta)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Kept>(&bytes).ok());
    let why = match &kept {
        None => Some("no certificate was kept"),
        Some(kept) if kept.not_after - 86_400 <= OffsetDateTime::now_utc().unix_timestamp() => {
            Some("the kept certificate expires")
        }
        Some(kept)
            if kept
                .names
                .iter()
                .map(String::as_str)
                .collect::<BTreeSet<_>>()
                != wanted =>
        {
            Some("the machine's names or addresses changed")
        }
        Some(_) => None,
    };
    if why.is_none() {
        if let Ok(identity) = Identity::from_pem_files(&cert, &key) {
            return Ok((identity, Outcome::Reused));
        }
    }
    let made = generate(names)?;
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CertStoreError::Write { path, source }
    };
    fs::create_dir_all(dir).map_err(write_error(dir))?;
    write_private(&key, made.key_pem.as_bytes()).map_err(write_error(&key))?;
    fs::write(&cert, &made.cert_pem).map_err(write_error(&cert))?;
    let record = Kept {
        names: made.names.clone(),
        not_after: made.not_after,
    };
    let json = serde_json::to_vec_pretty(&record).unwrap_or_default();
    fs::write(&meta, json).map_err(write_error(&meta))?;
    let identity = Identity::from_pem_files(&cert, &key)?;
    Ok((
        identity,
        Outcome::Made(why.unwrap_or("the kept files could not be read")),
    ))
}

/// Writes `bytes` to `path` readable by its owner only (mode 0600 from the
/// start: the key is never readable by others, even briefly).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mut file = options.open(path)?;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)
    }
    #[cfg(not(unix))]
    {
        options.open(path)?.write_all(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("r2-node-certstore-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_kept_certificate_is_reused_until_the_names_change() {
        let dir = temp_dir("reuse");
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let (first, outcome) = load_or_make(&dir, &names).expect("made");
        assert_eq!(outcome, Outcome::Made("no certificate was kept"));
        let (second, outcome) = load_or_make(&dir, &names).expect("reused");
        assert_eq!(outcome, Outcome::Reused);
        assert_eq!(first.cert_chain, second.cert_chain);
        let more = vec![names[0].clone(), names[1].clone(), "10.9.8.7".to_string()];
        let (third, outcome) = load_or_make(&dir, &more).expect("remade");
        assert_eq!(
            outcome,
            Outcome::Made("the machine's names or addresses changed")
        );
        assert_ne!(first.cert_chain, third.cert_chain);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join("key.pem"))
                .expect("key")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn an_expiring_or_broken_store_is_renewed() {
        let dir = temp_dir("expiry");
        let names = vec!["localhost".to_string()];
        load_or_make(&dir, &names).expect("made");
        let meta = dir.join("cert.json");
        let expiring = Kept {
            names: names.clone(),
            not_after: OffsetDateTime::now_utc().unix_timestamp() + 3600,
        };
        fs::write(&meta, serde_json::to_vec(&expiring).expect("json")).expect("write");
        let (_, outcome) = load_or_make(&dir, &names).expect("renewed");
        assert_eq!(outcome, Outcome::Made("the kept certificate expires"));
        fs::write(dir.join("cert.pem"), "junk").expect("write");
        let (_, outcome) = load_or_make(&dir, &names).expect("renewed");
        assert_eq!(outcome, Outcome::Made("the kept files could not be read"));
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn machine_names_hold_loopback_and_every_interface_address() {
        let names = machine_names();
        for expected in ["localhost", "127.0.0.1", "::1"] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
        let interfaces = local_ip_address::list_afinet_netifas().expect("interfaces");
        for (_, ip) in interfaces.iter().filter(|(_, ip)| ip.is_ipv4()) {
            assert!(names.contains(&ip.to_string()), "{ip} in {names:?}");
        }
    }
}
