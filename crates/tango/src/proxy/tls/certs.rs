//! Reading one certificate entry: the PEM chain and key, the end-entity certificate's
//! dates and names (x509-parser), and the key checked against it (rustls). Every problem
//! is a configuration error at the entry's `cert` (or `key`) with a hint, as validation
//! reports its own. Its dates are not: a certificate that has expired, or is not valid
//! yet, is read and served (the checklist warns about it, TNG025 and TNG026), so one
//! certificate past its date never keeps a listener, or a reload, from going ahead.

use std::path::Path;
use std::sync::Arc;
use tango_core::config::CertEntry;
use tango_core::diag::Diagnostic;
use tokio_rustls::rustls;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::sign::CertifiedKey;

/// A certificate entry read and checked, ready to serve.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) key: Arc<CertifiedKey>,
    /// The names it answers: the file's `names`, or the certificate's DNS names.
    pub(crate) names: Vec<String>,
    /// The end-entity certificate's notBefore, in seconds since the Unix epoch.
    pub(crate) not_before: i64,
    /// The end-entity certificate's notAfter, in seconds since the Unix epoch.
    pub(crate) not_after: i64,
}

/// Read `entry`'s files and check that they go together. Both files are read whatever
/// the other holds, so a bad certificate and a bad key are both reported.
pub(crate) fn load(
    entry: &CertEntry,
    provider: &CryptoProvider,
) -> Result<Loaded, Vec<Diagnostic>> {
    let cert = read_chain(&entry.cert)
        .map_err(|(msg, hint)| at_cert(entry, msg, hint))
        .and_then(|chain| dated(entry, chain));
    let key = read_key(&entry.key).map_err(|(msg, hint)| at_key(entry, msg, hint));
    let (
        Dated {
            chain,
            not_before,
            not_after,
            dns,
        },
        key,
    ) = match (cert, key) {
        (Ok(c), Ok(k)) => (c, k),
        (c, k) => return Err(c.err().into_iter().chain(k.err()).map(|d| *d).collect()),
    };
    let key = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        let why = match e {
            rustls::Error::InconsistentKeys(_) => String::new(),
            e => format!(": {e}"),
        };
        vec![*at_key(
            entry,
            format!(
                "the key in {} does not go with the certificate in {}{why}",
                entry.key.display(),
                entry.cert.display()
            ),
            "give the private key the certificate was issued for".into(),
        )]
    })?;
    let names = if entry.names.is_empty() {
        dns
    } else {
        entry.names.clone()
    };
    Ok(Loaded {
        key: Arc::new(key),
        names,
        not_before,
        not_after,
    })
}

/// A chain with its end-entity certificate's dates and DNS names.
struct Dated {
    chain: Vec<CertificateDer<'static>>,
    not_before: i64,
    not_after: i64,
    dns: Vec<String>,
}

/// `chain` (read from `entry.cert`) with its end-entity certificate's dates and names:
/// an error only when it does not parse.
fn dated(entry: &CertEntry, chain: Vec<CertificateDer<'static>>) -> Result<Dated, Box<Diagnostic>> {
    let (not_before, not_after, dns) =
        inspect(&chain[0]).map_err(|msg| at_cert(entry, msg, PEM_HINT.into()))?;
    Ok(Dated {
        chain,
        not_before,
        not_after,
        dns,
    })
}

const PEM_HINT: &str = "give a PEM file with the certificate first, then its chain";

/// The PEM certificate chain in `path`, leaf first.
fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, (String, String)> {
    let text = std::fs::read(path).map_err(|e| unreadable(path, &e))?;
    let chain = rustls_pemfile::certs(&mut text.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            (
                format!("{} is not PEM: {e}", path.display()),
                PEM_HINT.into(),
            )
        })?;
    if chain.is_empty() {
        return Err((
            format!("no certificate found in {}", path.display()),
            PEM_HINT.into(),
        ));
    }
    Ok(chain)
}

/// The PEM private key in `path`.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, (String, String)> {
    let text = std::fs::read(path).map_err(|e| unreadable(path, &e))?;
    let hint = "give a PEM private key (PKCS#8, PKCS#1 or SEC1)";
    rustls_pemfile::private_key(&mut text.as_slice())
        .map_err(|e| (format!("{} is not PEM: {e}", path.display()), hint.into()))?
        .ok_or_else(|| {
            (
                format!("no private key found in {}", path.display()),
                hint.into(),
            )
        })
}

fn unreadable(path: &Path, e: &std::io::Error) -> (String, String) {
    (
        format!("cannot read {}: {e}", path.display()),
        "check the path (relative paths are relative to the configuration file) and its permissions".into(),
    )
}

/// notBefore, notAfter (seconds since the Unix epoch) and the DNS names (lower case) of a
/// DER certificate.
fn inspect(der: &CertificateDer<'_>) -> Result<(i64, i64, Vec<String>), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("the certificate does not parse: {e}"))?;
    let v = cert.validity();
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("the certificate's subject alternative names do not parse: {e}"))?;
    let names = san
        .map(|s| {
            s.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => {
                        Some(d.trim_end_matches('.').to_ascii_lowercase())
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok((v.not_before.timestamp(), v.not_after.timestamp(), names))
}

/// `2026-11-29T21:59:46Z`, as the checklist writes it.
pub(crate) use tango_core::lint::certificate_date as date;

/// `a.example, *.b.example`, or `the listener's default`, as the checklist writes them.
pub(crate) use tango_core::lint::certificate_names as names;

pub(crate) fn at_cert(entry: &CertEntry, msg: String, hint: String) -> Box<Diagnostic> {
    Box::new(Diagnostic::error(&entry.key_path, Some(entry.cert_span), msg).with_hint(hint))
}

fn at_key(entry: &CertEntry, msg: String, hint: String) -> Box<Diagnostic> {
    let key = entry
        .key_path
        .strip_suffix("cert")
        .map_or_else(|| entry.key_path.clone(), |k| format!("{k}key"));
    Box::new(Diagnostic::error(&key, Some(entry.key_span), msg).with_hint(hint))
}
