//! TLS termination: each listener's certificates read and checked (`certs`), picked by
//! SNI (`sni`), offered with h2 and http/1.1 by ALPN. A listener's acceptor keeps its
//! resolver, whose certificates a reload replaces (`Listeners::prepare` reads them, so a
//! bad certificate rejects the reload; `commit` swaps them in).
//!
//! `check` is the same reading for `tango check`, startup and reload: it reports every
//! certificate problem as a configuration error at the key's line:col, and hands the
//! certificates' dates to the checklist (`Loaded::certificates`).

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

/// A listener's certificates, read and checked at `now`, with each entry's notAfter.
pub(crate) fn load(tls: &Tls, now: i64) -> Result<(CertSet, Vec<i64>), Vec<Diagnostic>> {
    let provider = provider();
    let (mut ok, mut errors) = (Vec::new(), Vec::new());
    for (i, e) in tls.certs.iter().enumerate() {
        match certs::load(e, &provider, now) {
            // Only the default is served to a name no entry has.
            Ok(c) if c.names.is_empty() && i != tls.default => errors.push(*certs::at_cert(
                e,
                format!(
                    "the certificate in {} has no DNS name and is not the default: no client would get it",
                    e.cert.display()
                ),
                "list the server names it answers in `names`, or mark it `default = true`".into(),
            )),
            Ok(c) => ok.push(c),
            Err(d) => errors.extend(d),
        }
    }
    if !errors.is_empty() || ok.is_empty() {
        return Err(errors);
    }
    let dates = ok.iter().map(|c| c.not_after).collect();
    let default = ok[tls.default.min(ok.len() - 1)].key.clone();
    let set = CertSet::new(ok.into_iter().map(|c| (c.key, c.names)).collect(), default);
    Ok((set, dates))
}

/// Read every listener certificate of `loaded`: the problems, as configuration errors;
/// and, for the checklist, the dates of those that read.
pub(crate) fn check(loaded: &Loaded, now: i64) -> (Vec<Diagnostic>, Vec<CertificateFacts>) {
    let (mut errors, mut facts) = (Vec::new(), Vec::new());
    for tls in loaded
        .config
        .listeners
        .iter()
        .filter_map(|l| l.tls.as_ref())
    {
        match load(tls, now) {
            Ok((_, dates)) => {
                facts.extend(
                    tls.certs
                        .iter()
                        .zip(dates)
                        .map(|(e, not_after)| CertificateFacts {
                            key: e.key_path.clone(),
                            span: e.cert_span,
                            not_after,
                            read_at: now,
                        }),
                )
            }
            Err(d) => errors.extend(d),
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

/// `load`'s problems as one error, for a listener being bound or reloaded.
pub(crate) fn load_for(name: &str, tls: &Tls) -> anyhow::Result<CertSet> {
    load(tls, unix_now()).map(|(set, _)| set).map_err(|d| {
        let lines: Vec<String> = d
            .iter()
            .map(|d| format!("{}: {}", d.key, d.message))
            .collect();
        anyhow::anyhow!("listener `{name}`'s certificates: {}", lines.join("; "))
    })
}
