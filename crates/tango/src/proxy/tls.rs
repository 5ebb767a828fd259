//! TLS termination: each listener's certificates read and checked (`certs`), picked by
//! SNI (`sni`), offered with h2 and http/1.1 by ALPN. A listener's acceptor keeps its
//! resolver, whose certificates a reload replaces (`Listeners::prepare` reads them, so a
//! bad certificate rejects the reload; `commit` swaps them in).
//!
//! `check` is the same reading for `tango check`, startup and reload: it reports every
//! certificate problem as a configuration error at the key's line:col, and hands the
//! certificates' files, names and dates to the checklist (`Loaded::certificates`). A
//! certificate past its dates is not a problem here: it is served, with a warning in
//! the log each time a listener's certificates are read (`load_for`), the checklist's
//! TNG025 or TNG026, and its notAfter in `/metrics` (`expiry`).

mod certs;
mod sni;

pub(crate) use sni::{CertSet, Resolver};
use std::sync::Arc;
use tango_core::config::{CertificateFacts, Loaded, Tls};
use tango_core::diag::Diagnostic;
use tokio_rustls::rustls;

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What one certificate entry serves: for the log, the checklist and `/metrics`.
#[derive(Debug, Clone)]
pub(crate) struct Served {
    /// The certificate file.
    pub(crate) file: std::path::PathBuf,
    /// The names it answers (empty: only as the default).
    pub(crate) names: Vec<String>,
    /// notBefore and notAfter, in seconds since the Unix epoch.
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
}

/// Each entry of `tls` read: ready to serve, or its problems.
fn entries(tls: &Tls) -> Vec<Result<certs::Loaded, Vec<Diagnostic>>> {
    let provider = provider();
    (tls.certs.iter().enumerate())
        .map(|(i, e)| match certs::load(e, &provider) {
            // Only the default is served to a name no entry has.
            Ok(c) if c.names.is_empty() && i != tls.default => Err(vec![*certs::at_cert(
                e,
                format!(
                    "the certificate in {} has no DNS name and is not the default: no client would get it",
                    e.cert.display()
                ),
                "list the server names it answers in `names`, or mark it `default = true`".into(),
            )]),
            r => r,
        })
        .collect()
}

/// A listener's certificates, read and checked, whatever their dates.
pub(crate) fn load(tls: &Tls) -> Result<CertSet, Vec<Diagnostic>> {
    let (mut ok, mut errors) = (Vec::new(), Vec::new());
    for (e, r) in tls.certs.iter().zip(entries(tls)) {
        match r {
            Ok(c) => ok.push((e, c)),
            Err(d) => errors.extend(d),
        }
    }
    if !errors.is_empty() || ok.is_empty() {
        return Err(errors);
    }
    let served = (ok.iter())
        .map(|(e, c)| Served {
            file: e.cert.clone(),
            names: c.names.clone(),
            not_before: c.not_before,
            not_after: c.not_after,
        })
        .collect();
    let default = ok[tls.default.min(ok.len() - 1)].1.key.clone();
    let entries = ok.into_iter().map(|(_, c)| (c.key, c.names)).collect();
    Ok(CertSet::new(entries, default, served))
}

/// Read every listener certificate of `loaded`: the problems, as configuration errors;
/// and, for the checklist, the file, names and dates of each that read (also when
/// another of its listener's does not, so the configuration in force a reload is
/// compared with keeps every finding it has).
pub(crate) fn check(loaded: &Loaded, now: i64) -> (Vec<Diagnostic>, Vec<CertificateFacts>) {
    let (mut errors, mut facts) = (Vec::new(), Vec::new());
    for tls in (loaded.config.listeners.iter()).filter_map(|l| l.tls.as_ref()) {
        for (e, r) in tls.certs.iter().zip(entries(tls)) {
            match r {
                Ok(c) => facts.push(CertificateFacts {
                    key: e.key_path.clone(),
                    span: e.cert_span,
                    file: e.cert.display().to_string(),
                    names: c.names,
                    not_before: c.not_before,
                    not_after: c.not_after,
                    read_at: now,
                }),
                Err(d) => errors.extend(d),
            }
        }
    }
    (errors, facts)
}

/// An acceptor serving `set`, and the resolver that replaces it on reload.
pub(crate) fn acceptor(set: CertSet) -> anyhow::Result<(tokio_rustls::TlsAcceptor, Arc<Resolver>)> {
    let resolver = Arc::new(Resolver::new(set));
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("TLS protocol versions: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((tokio_rustls::TlsAcceptor::from(Arc::new(cfg)), resolver))
}

/// `load`'s problems as one error, for a listener being bound or reloaded; a
/// certificate out of its dates is served, and said in the log as a warning.
pub(crate) fn load_for(name: &str, tls: &Tls) -> anyhow::Result<CertSet> {
    let set = load(tls).map_err(|d| {
        let lines: Vec<String> = d
            .iter()
            .map(|d| format!("{}: {}", d.key, d.message))
            .collect();
        anyhow::anyhow!("listener `{name}`'s certificates: {}", lines.join("; "))
    })?;
    warn_out_of_date(name, set.served(), unix_now());
    Ok(set)
}

/// A warning for each certificate `listener` serves that has expired or is not valid
/// yet at `now`: clients that verify refuse it, so it must not pass unseen.
fn warn_out_of_date(listener: &str, served: &[Served], now: i64) {
    for s in served {
        let names = certs::names(&s.names);
        let file = s.file.display();
        if now > s.not_after {
            tracing::warn!(listener, file = %file, server_names = %names,
                not_after = %certs::date(s.not_after),
                "serving an expired certificate: clients that verify it refuse the handshake; renew it and reload");
        } else if now < s.not_before {
            tracing::warn!(listener, file = %file, server_names = %names,
                not_before = %certs::date(s.not_before), not_after = %certs::date(s.not_after),
                "serving a certificate that is not valid yet: clients that verify it refuse the handshake; check the clock");
        }
    }
}

/// (server name, notAfter) of each certificate in `served`, for `/metrics`: one per
/// name it answers; the default without a name of its own under the empty name. Two
/// entries whose certificates carry the same name serve only the first (as
/// `CertSet::new` picks), so only the first is dated: one series per name, and the
/// date of the certificate clients get.
pub(crate) fn expiry(served: &[Served]) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = Vec::new();
    for s in served {
        let names = match s.names.is_empty() {
            true => vec![String::new()],
            false => s.names.clone(),
        };
        for n in names {
            if !out.iter().any(|(seen, _)| *seen == n) {
                out.push((n, s.not_after));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{expiry, Served};

    fn served(names: &[&str], not_after: i64) -> Served {
        Served {
            file: "c.pem".into(),
            names: names.iter().map(|n| n.to_string()).collect(),
            not_before: 0,
            not_after,
        }
    }

    #[test]
    fn a_name_two_certificates_carry_is_dated_once_by_the_one_served() {
        // Two entries without `names` whose certificates both answer a.example (an RSA
        // and an ECDSA one, say): the first is served, so only its date is published.
        let got = expiry(&[
            served(&[], 10),
            served(&["a.example", "b.example"], 20),
            served(&["a.example"], 30),
        ]);
        assert_eq!(
            got,
            [
                (String::new(), 10),
                ("a.example".to_string(), 20),
                ("b.example".to_string(), 20)
            ]
        );
    }
}
