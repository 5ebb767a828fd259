//! Picking a listener's certificate by the server name the client asks for (SNI): an
//! exact name first, then a wildcard one label up, then the default. The set in force
//! sits behind an `ArcSwap`, so a reload replaces it for new handshakes without
//! rebinding the listener.

use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::Arc;
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

/// A listener's certificates, by name.
#[derive(Debug)]
pub(crate) struct CertSet {
    /// Exact names (lower case).
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// Wildcard names by the part after `*.` (`*.b.example` under `b.example`).
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    /// For a name no entry has, or no SNI at all.
    default: Arc<CertifiedKey>,
    /// Each entry's file, names and dates, for the log and `/metrics`.
    served: Vec<super::Served>,
}

impl CertSet {
    /// `entries`: each certificate with its names; the first name's owner wins a name
    /// given twice (validation refuses that in a file).
    pub(crate) fn new(
        entries: Vec<(Arc<CertifiedKey>, Vec<String>)>,
        default: Arc<CertifiedKey>,
        served: Vec<super::Served>,
    ) -> Self {
        let (mut exact, mut wildcard) = (HashMap::new(), HashMap::new());
        for (key, names) in entries {
            for n in names {
                let map = match n.strip_prefix("*.") {
                    Some(rest) => wildcard.entry(rest.to_string()),
                    None => exact.entry(n),
                };
                map.or_insert_with(|| key.clone());
            }
        }
        Self {
            exact,
            wildcard,
            default,
            served,
        }
    }

    /// Each entry's file, names and dates.
    pub(crate) fn served(&self) -> &[super::Served] {
        &self.served
    }

    /// The certificate for `name` (as the client sent it).
    pub(crate) fn pick(&self, name: Option<&str>) -> &Arc<CertifiedKey> {
        let Some(name) = name else {
            return &self.default;
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(k) = self.exact.get(&name) {
            return k;
        }
        // A wildcard covers exactly one label: `*.b.example` is `x.b.example`'s.
        name.split_once('.')
            .and_then(|(_, parent)| self.wildcard.get(parent))
            .unwrap_or(&self.default)
    }
}

/// The resolver a listener's TLS configuration holds; `swap` replaces its certificates.
#[derive(Debug)]
pub(crate) struct Resolver {
    set: ArcSwap<CertSet>,
}

impl Resolver {
    pub(crate) fn new(set: CertSet) -> Self {
        Self {
            set: ArcSwap::from_pointee(set),
        }
    }

    /// Serve `set` to every handshake from now on.
    pub(crate) fn swap(&self, set: CertSet) {
        self.set.store(Arc::new(set));
    }

    /// (server name, notAfter) of the certificates served now (`super::expiry`).
    pub(crate) fn expiry(&self) -> Vec<(String, i64)> {
        super::expiry(self.set.load().served())
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.set.load().pick(hello.server_name()).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_rustls::rustls::crypto::ring::default_provider;
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    fn key() -> Arc<CertifiedKey> {
        let ck = rcgen::generate_simple_self_signed(vec!["x".to_string()]).unwrap();
        let der = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
        let signer = default_provider()
            .key_provider
            .load_private_key(der)
            .unwrap();
        Arc::new(CertifiedKey::new(vec![ck.cert.der().clone()], signer))
    }

    #[test]
    fn exact_then_one_wildcard_label_then_the_default() {
        let (a, b, d) = (key(), key(), key());
        let set = CertSet::new(
            vec![
                (a.clone(), vec!["a.example".into()]),
                (b.clone(), vec!["*.b.example".into(), "b.example".into()]),
            ],
            d.clone(),
            Vec::new(),
        );
        let is = |name: Option<&str>, want: &Arc<CertifiedKey>| {
            assert!(Arc::ptr_eq(set.pick(name), want), "{name:?}");
        };
        is(Some("a.example"), &a);
        is(Some("A.Example."), &a);
        is(Some("b.example"), &b);
        is(Some("x.b.example"), &b);
        is(Some("y.x.b.example"), &d);
        is(Some("x.a.example"), &d);
        is(Some("other.example"), &d);
        is(None, &d);
    }
}
