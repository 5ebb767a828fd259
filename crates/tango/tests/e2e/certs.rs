//! A listener's certificates: picked by the server name the client asks for (SNI), read
//! again on reload, refused with line:col when a file is unreadable or its key is
//! another's, and served with a warning when expired (`expired`).

use crate::backend::Backend;
use crate::support::*;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

mod expired;

/// A self-signed certificate for `names`, valid from `from` to `until` (year, month,
/// day), written to `DIR/STEM.pem` and `DIR/STEM.key`. Returns its DER.
pub fn cert_files(
    dir: &Path,
    stem: &str,
    names: &[&str],
    from: (i32, u8, u8),
    until: (i32, u8, u8),
) -> CertificateDer<'static> {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
    params.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join(format!("{stem}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{stem}.key")), key.serialize_pem()).unwrap();
    cert.der().clone()
}

const LONG_AGO: (i32, u8, u8) = (2000, 1, 1);
const FAR_AHEAD: (i32, u8, u8) = (2099, 1, 1);

/// Accepts any certificate: these tests look at which one the server presents.
#[derive(Debug)]
struct AnyCert;

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A TLS connection to tango, asking for `name`.
async fn connect(t: &Tango, name: &str) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    connector
        .connect(ServerName::try_from(name.to_string()).unwrap(), tcp)
        .await
        .expect("TLS handshake")
}

/// The certificate tango presents to a client asking for `name`.
async fn presented(t: &Tango, name: &str) -> CertificateDer<'static> {
    let tls = connect(t, name).await;
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// A TLS listener serving `certs` (the inline array) in front of one backend.
fn tls_listener(backend: std::net::SocketAddr, certs: &str) -> String {
    config("", &[("a", backend, 1)]).replacen(
        "listen = \"127.0.0.1:0\"\n\n[[pool]]",
        &format!("listen = \"127.0.0.1:0\"\ntls = {{ certs = {certs} }}\n\n[[pool]]"),
        1,
    )
}

#[tokio::test]
async fn the_certificate_is_picked_by_server_name_and_renewed_on_reload() {
    let b = Backend::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = cert_files(d, "a", &["a.example"], LONG_AGO, FAR_AHEAD);
    let wild = cert_files(d, "b", &["*.b.example"], LONG_AGO, FAR_AHEAD);
    let fallback = cert_files(d, "c", &["c.example"], LONG_AGO, FAR_AHEAD);
    let certs = format!(
        "[{{ cert = \"{0}/a.pem\", key = \"{0}/a.key\", names = [\"a.example\"] }}, \
         {{ cert = \"{0}/b.pem\", key = \"{0}/b.key\" }}, \
         {{ cert = \"{0}/c.pem\", key = \"{0}/c.key\", default = true }}]",
        d.display()
    );
    let t = Tango::start(&tls_listener(b.addr, &certs));
    assert_eq!(presented(&t, "a.example").await, a);
    // Names from the certificate's own subject alternative names.
    assert_eq!(presented(&t, "x.b.example").await, wild);
    assert_eq!(presented(&t, "c.example").await, fallback);
    assert_eq!(presented(&t, "unknown.example").await, fallback);
    assert_eq!(presented(&t, "y.x.b.example").await, fallback);

    // A renewed certificate is served after a reload, on the socket already bound.
    let renewed = cert_files(d, "a", &["a.example"], LONG_AGO, FAR_AHEAD);
    let (s, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(presented(&t, "a.example").await, renewed);

    // An expired one written over it is served after a reload too: the configuration
    // in force reads the same file, so the reload adds no finding for the guard to
    // refuse, and the checklist says it.
    let expired = cert_files(d, "a", &["a.example"], LONG_AGO, (2001, 1, 1));
    let (s, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!((s, &v["result"]), (200, &"applied".into()), "{v}");
    let findings = v.to_string();
    assert!(
        findings.contains("TNG025") && findings.contains("expired on 2001-01-01"),
        "{findings}"
    );
    assert_eq!(presented(&t, "a.example").await, expired);
    assert_eq!(presented(&t, "x.b.example").await, wild);
}

fn check(text: &str, dir: &Path) -> (i32, String) {
    crate::support::check_in(dir, "tango.toml", text)
}

#[test]
fn check_warns_of_an_expired_certificate_and_refuses_a_key_of_another_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cert_files(d, "old", &["old.example"], LONG_AGO, (2001, 1, 1));
    cert_files(d, "future", &["new.example"], (2098, 1, 1), FAR_AHEAD);
    cert_files(d, "good", &["good.example"], LONG_AGO, FAR_AHEAD);
    cert_files(d, "other", &["other.example"], LONG_AGO, FAR_AHEAD);
    let text = "[[listener]]\nlisten = \"127.0.0.1:0\"\ntls = { certs = [\n  \
         { cert = \"old.pem\", key = \"old.key\" },\n  \
         { cert = \"future.pem\", key = \"future.key\" },\n  \
         { cert = \"good.pem\", key = \"other.key\" },\n] }\n\
         [[pool]]\nname = \"p\"\n[[pool.backend]]\naddress = \"127.0.0.1:1\"\n";
    let (code, out) = check(text, d);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("tango.toml:6:30") && out.contains("does not go with the certificate"),
        "{out}"
    );
    assert!(out.contains("1 error"), "{out}");
    // With its own key the file is good: the dates are the checklist's warnings, each
    // with the file, the names, the date and the fix.
    let (code, out) = check(&text.replace("other.key", "good.key"), d);
    assert_eq!(code, 0, "{out}");
    let old = format!("{}/old.pem (old.example)", d.display());
    let future = format!("{}/future.pem (new.example)", d.display());
    for (at, what) in [
        (
            "warning[TNG025]",
            &*format!("{old} expired on 2001-01-01T00:00:00Z"),
        ),
        ("tango.toml:4:12", "renew it: replace "),
        (
            "warning[TNG026]",
            &*format!("{future} is not valid until 2098-01-01T00:00:00Z"),
        ),
        ("tango.toml:5:12", "check this machine's clock"),
    ] {
        assert!(
            out.contains(at) && out.contains(what),
            "{at} {what}:\n{out}"
        );
    }

    // A certificate without DNS names is reachable only as the default.
    cert_files(d, "ip", &["127.0.0.1"], LONG_AGO, FAR_AHEAD);
    let text = "[[listener]]\nlisten = \"127.0.0.1:0\"\n\
                tls = { certs = [{ cert = \"good.pem\", key = \"good.key\" }, { cert = \"ip.pem\", key = \"ip.key\" }] }\n\
                [[pool]]\nname = \"p\"\n[[pool.backend]]\naddress = \"127.0.0.1:1\"\n";
    let (code, out) = check(text, d);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("tango.toml:3:68") && out.contains("has no DNS name and is not the default"),
        "{out}"
    );
    let (code, out) = check(&text.replace("ip.key\" }", "ip.key\", default = true }"), d);
    assert_eq!(code, 0, "{out}");

    // A certificate expiring within two weeks is the checklist's warning.
    let soon = std::time::SystemTime::now() + std::time::Duration::from_secs(5 * 86_400);
    let day = humantime::format_rfc3339(soon).to_string();
    let ymd: Vec<i32> = day[..10].split('-').map(|x| x.parse().unwrap()).collect();
    cert_files(
        d,
        "soon",
        &["soon.example"],
        LONG_AGO,
        (ymd[0], ymd[1] as u8, ymd[2] as u8),
    );
    let text = "[[listener]]\nlisten = \"127.0.0.1:0\"\ntls = { cert = \"soon.pem\", key = \"soon.key\" }\n\
                [[pool]]\nname = \"p\"\n[[pool.backend]]\naddress = \"127.0.0.1:1\"\n";
    let (code, out) = check(text, d);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warning[TNG023]") && out.contains("tango.toml:3:16"),
        "{out}"
    );
}

/// Every bad certificate, key and CA path is reported at once, each at its key's
/// line:col: a listener's certificate and its key, a pool's CA, client certificate and
/// key. `tango check` and a reload read the files the same way.
#[tokio::test]
async fn every_bad_tls_path_is_reported_at_once_each_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[[listener]]\nlisten = \"127.0.0.1:0\"\n\
                tls = { cert = \"gone.pem\", key = \"gone.key\" }\n\
                [[pool]]\nname = \"p\"\n\
                tls = { ca = \"no-ca.pem\", cert = \"no-client.pem\", key = \"no-client.key\" }\n\
                [[pool.backend]]\naddress = \"127.0.0.1:1\"\n";
    let want = [
        ("tango.toml:3:16", "gone.pem"),
        ("tango.toml:3:34", "gone.key"),
        ("tango.toml:6:14", "no-ca.pem"),
        ("tango.toml:6:34", "no-client.pem"),
        ("tango.toml:6:57", "no-client.key"),
    ];
    let (code, out) = check(text, dir.path());
    assert_eq!(code, 1, "{out}");
    for (at, file) in want {
        assert!(
            out.contains(at) && out.contains(&format!("/{file}: No such file")),
            "{at} {file}:\n{out}"
        );
    }
    assert!(out.contains("5 errors"), "{out}");

    let b = crate::backend::Backend::start("a").await;
    let t = Tango::start(&config("", &[("a", b.addr, 1)]));
    t.write_config(text);
    let (s, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!(s, 422, "{v}");
    let errors = v["errors"].to_string();
    for (at, file) in want {
        assert!(
            errors.contains(at) && errors.contains(file),
            "{at} {file}: {errors}"
        );
    }
}

/// `redirect = { scheme = "https" }` sends plain requests to https (tested in
/// rules.rs) and lets requests already on https through to the next route: it would
/// send them where they are, again and again.
#[tokio::test]
async fn a_redirect_to_https_lets_https_requests_through() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let b = Backend::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cert_files(d, "a", &["a.example"], LONG_AGO, FAR_AHEAD);
    let certs = format!(
        "[{{ cert = \"{0}/a.pem\", key = \"{0}/a.key\" }}]",
        d.display()
    );
    let routes =
        "\n[[route]]\nredirect = { scheme = \"https\", status = 308 }\n\n[[route]]\npool = \"p\"\n";
    let t = Tango::start(&(tls_listener(b.addr, &certs) + routes));
    let mut tls = connect(&t, "a.example").await;
    tls.write_all(b"GET /x?y=1 HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(b.hits(), 1, "{answer}");
}

/// Whether the peer closes `s` within 5 s, reading and dropping anything before.
async fn closes<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 512];
    let read = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), read)
        .await
        .is_ok()
}

/// GET / over a TLS connection already open: the answer's status line.
async fn tls_get(tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tls.write_all(b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tls.read(&mut buf).await.expect("an answer");
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    text.lines().next().unwrap_or_default().to_string()
}

/// A reload turns a listener's TLS on, then off again: the port stays, new connections
/// are served in the new mode, and those opened before close (they were idle).
#[tokio::test]
async fn a_reload_turns_tls_on_and_off_on_the_same_port() {
    let b = Backend::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cert = cert_files(d, "a", &["a.example"], LONG_AGO, FAR_AHEAD);
    let plain = config("", &[("a", b.addr, 1)]);
    let certs = format!(
        "[{{ cert = \"{0}/a.pem\", key = \"{0}/a.key\" }}]",
        d.display()
    );
    let t = Tango::start(&plain);
    let mut before = crate::listeners::KeepAlive::open(t.addr()).await;
    assert_eq!(before.get().await, "a\n");

    t.write_config(&tls_listener(b.addr, &certs));
    let (s, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!((s, &v["result"]), (200, &"applied".into()), "{v}");
    let mut tls = connect(&t, "a.example").await;
    assert_eq!(tls.get_ref().1.peer_certificates().unwrap()[0], cert);
    assert_eq!(tls_get(&mut tls).await, "HTTP/1.1 200 OK");
    assert!(closes(&mut before.0).await, "the plain connection drained");
    assert!(
        t.log().contains("listener's TLS turned on or off"),
        "{}",
        t.log()
    );

    t.write_config(&plain);
    let (s, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!((s, &v["result"]), (200, &"applied".into()), "{v}");
    assert_eq!(get(&client(), &t.url("/")).await, (200, "a\n".to_string()));
    assert!(closes(&mut tls).await, "the TLS connection drained");
}
