//! TLS to backends: a backend whose certificate a test CA issued answers through tango
//! (to an HTTP/1.1 client served by the engine and to an h2c client served by hyper);
//! one whose certificate names another host is refused as a failed connect; a backend
//! that asks for a client certificate gets one when the pool has `cert` and `key`;
//! `verify = false` reaches a self-signed backend; health checks speak TLS too.

use crate::support::*;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// A certificate authority for tests.
pub struct Ca {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

/// A certificate issued by a [`Ca`], with its key.
pub struct Issued {
    pub cert: rcgen::Certificate,
    pub key: rcgen::KeyPair,
}

impl Issued {
    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()))
    }

    /// Write `DIR/STEM.pem` and `DIR/STEM.key`; returns their paths.
    pub fn write(&self, dir: &Path, stem: &str) -> (String, String) {
        let (c, k) = (
            dir.join(format!("{stem}.pem")),
            dir.join(format!("{stem}.key")),
        );
        std::fs::write(&c, self.cert.pem()).unwrap();
        std::fs::write(&k, self.key.serialize_pem()).unwrap();
        (c.display().to_string(), k.display().to_string())
    }
}

impl Ca {
    pub fn new() -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "tango test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// A certificate for `names` (DNS names or IP addresses), for a server or (`client`)
    /// a client.
    pub fn issue(&self, names: &[&str], client: bool) -> Issued {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![if client {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Issued { cert, key }
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// Write the CA's certificate to `DIR/STEM.pem`; returns its path.
    pub fn write(&self, dir: &Path, stem: &str) -> String {
        let p = dir.join(format!("{stem}.pem"));
        std::fs::write(&p, self.cert.pem()).unwrap();
        p.display().to_string()
    }
}

/// A backend's TLS settings: its certificate, and the CA its clients' certificates
/// must come from, when it asks for one.
pub fn server_config(id: &Issued, client_ca: Option<&Ca>) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let b = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.der()).unwrap();
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            b.with_client_cert_verifier(v)
        }
        None => b.with_no_client_auth(),
    };
    Arc::new(b.with_single_cert(vec![id.der()], id.key_der()).unwrap())
}

/// An HTTPS backend: `/health` answers 200 (counted), anything else its name.
pub struct TlsBackend {
    pub addr: SocketAddr,
    pub handshakes: Arc<AtomicU64>,
    pub health_hits: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsBackend {
    pub async fn start(name: &str, cfg: Arc<rustls::ServerConfig>) -> TlsBackend {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
        let handshakes = Arc::new(AtomicU64::new(0));
        let health_hits = Arc::new(AtomicU64::new(0));
        let (hs, hh, name) = (handshakes.clone(), health_hits.clone(), name.to_string());
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                while conns.try_join_next().is_some() {}
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, hs, hh, name) =
                    (acceptor.clone(), hs.clone(), hh.clone(), name.clone());
                conns.spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    hs.fetch_add(1, Relaxed);
                    let svc = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let body = if req.uri().path() == "/health" {
                                hh.fetch_add(1, Relaxed);
                                "ok".to_string()
                            } else {
                                name.clone()
                            };
                            async move {
                                Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                                    Bytes::from(body),
                                )))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        TlsBackend {
            addr,
            handshakes,
            health_hits,
            task,
        }
    }
}

/// The backend's `/metrics` counter of tries without a response (`code="error"`).
pub async fn failed_tries(t: &Tango, backend: &str) -> u64 {
    let (_, text) = get(&client(), &t.admin_url("/metrics")).await;
    let want = format!("backend=\"{backend}\",code=\"error\"");
    text.lines()
        .filter(|l| l.starts_with("tango_backend_requests_total{") && l.contains(&want))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn an_https_backend_with_a_test_ca_answers_http1_and_h2c_clients() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let b = TlsBackend::start(
        "secure",
        server_config(&ca.issue(&["backend.test"], false), None),
    )
    .await;
    let tls = format!(
        "tls = {{ ca = \"{}\", server_name = \"backend.test\" }}",
        ca.write(dir.path(), "ca")
    );
    let t = Tango::start(&config(&tls, &[("b", b.addr, 1)]));
    let c = client();
    for _ in 0..3 {
        assert_eq!(get(&c, &t.url("/")).await, (200, "secure".to_string()));
    }
    assert_eq!(h2c_get(&t, "/").await, (200, "secure".to_string()));
    // The engine's keep-alive requests shared one TLS connection.
    assert!(
        b.handshakes.load(Relaxed) <= 2,
        "{}",
        b.handshakes.load(Relaxed)
    );
    assert_eq!(failed_tries(&t, "b").await, 0);
}

#[tokio::test]
async fn without_server_name_the_address_host_is_verified() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let b = TlsBackend::start(
        "by-ip",
        server_config(&ca.issue(&["127.0.0.1"], false), None),
    )
    .await;
    let tls = format!("tls = {{ ca = \"{}\" }}", ca.write(dir.path(), "ca"));
    let t = Tango::start(&config(&tls, &[("b", b.addr, 1)]));
    assert_eq!(
        get(&client(), &t.url("/")).await,
        (200, "by-ip".to_string())
    );
}

#[tokio::test]
async fn a_backend_certificate_for_another_name_is_a_failed_connect() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let b = TlsBackend::start(
        "wrong",
        server_config(&ca.issue(&["other.test"], false), None),
    )
    .await;
    let tls = format!(
        "tls = {{ ca = \"{}\", server_name = \"backend.test\" }}",
        ca.write(dir.path(), "ca")
    );
    let t = Tango::start(&config(&tls, &[("b", b.addr, 1)]));
    let (status, body) = get(&client(), &t.url("/")).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("could not connect"), "{body}");
    assert_eq!(h2c_get(&t, "/").await.0, 502);
    assert!(failed_tries(&t, "b").await >= 2);
    let log = t.log();
    assert!(log.contains("upstream connect failed"), "{log}");
    assert!(log.contains("TLS handshake failed"), "{log}");
}

#[tokio::test]
async fn a_backend_asking_for_a_client_certificate_gets_the_pools() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let clients = Ca::new();
    let cfg = server_config(&ca.issue(&["backend.test"], false), Some(&clients));
    let b = TlsBackend::start("mtls", cfg).await;
    let ca_path = ca.write(dir.path(), "ca");
    let without = format!("tls = {{ ca = \"{ca_path}\", server_name = \"backend.test\" }}");
    let t = Tango::start(&config(&without, &[("b", b.addr, 1)]));
    assert_eq!(get(&client(), &t.url("/")).await.0, 502);
    assert!(failed_tries(&t, "b").await >= 1);
    drop(t);

    let (cert, key) = clients
        .issue(&["tango.test"], true)
        .write(dir.path(), "client");
    let with = format!(
        "tls = {{ ca = \"{ca_path}\", server_name = \"backend.test\", cert = \"{cert}\", key = \"{key}\" }}"
    );
    let t = Tango::start(&config(&with, &[("b", b.addr, 1)]));
    assert_eq!(get(&client(), &t.url("/")).await, (200, "mtls".to_string()));
    assert_eq!(h2c_get(&t, "/").await, (200, "mtls".to_string()));
}

#[tokio::test]
async fn verify_false_reaches_a_self_signed_backend() {
    // A certificate that is its own issuer, for a name no pool asks for.
    let ck = rcgen::generate_simple_self_signed(vec!["nobody.test".to_string()]).unwrap();
    let id = Issued {
        cert: ck.cert,
        key: ck.key_pair,
    };
    let b = TlsBackend::start("anyone", server_config(&id, None)).await;
    let t = Tango::start(&config("tls = { verify = false }", &[("b", b.addr, 1)]));
    assert_eq!(
        get(&client(), &t.url("/")).await,
        (200, "anyone".to_string())
    );
}

#[tokio::test]
async fn health_checks_speak_the_pools_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let good = TlsBackend::start(
        "good",
        server_config(&ca.issue(&["backend.test"], false), None),
    )
    .await;
    let bad = TlsBackend::start(
        "bad",
        server_config(&ca.issue(&["other.test"], false), None),
    )
    .await;
    let pool = format!(
        "tls = {{ ca = \"{}\", server_name = \"backend.test\" }}\n[pool.health]\npath = \"/health\"\ninterval = \"100ms\"\nfall = 2\nrise = 1\n",
        ca.write(dir.path(), "ca")
    );
    let t = Tango::start(&config(
        &pool,
        &[("good", good.addr, 1), ("bad", bad.addr, 1)],
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let probed = good.health_hits.load(Relaxed) >= 3;
        let (g, b) = (healthy(&t, "good").await, healthy(&t, "bad").await);
        if probed && g == Some(true) && b == Some(false) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "good: {g:?} after {} probes, bad: {b:?}\n{}",
            good.health_hits.load(Relaxed),
            t.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The bad backend's probes never got past the handshake.
    assert_eq!(bad.health_hits.load(Relaxed), 0);
    assert!(t.log().contains("TLS handshake failed"), "{}", t.log());
}

#[test]
fn unreadable_or_bad_pem_files_are_errors_at_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("junk.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let (cert, _) = Ca::new()
        .issue(&["tango.test"], true)
        .write(dir.path(), "client");
    let text = format!(
        r#"[[listener]]
listen = "127.0.0.1:0"

[[route]]
pool = "a"

[[pool]]
name = "a"
tls = {{ ca = "{}" }}
[[pool.backend]]
address = "10.0.0.1:443"

[[pool]]
name = "b"
tls = {{ cert = "{cert}", key = "missing.key" }}
[[pool.backend]]
address = "10.0.0.2:443"
"#,
        not_pem.display(),
    );
    let (code, out) = check_in(dir.path(), "bad.toml", &text);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("bad.toml:9:14"), "{out}");
    assert!(out.contains("no certificate found"), "{out}");
    let at_key = format!("bad.toml:15:{}", 26 + cert.len());
    assert!(out.contains(&at_key), "missing {at_key} in:\n{out}");
    assert!(out.contains("cannot read"), "{out}");
}
