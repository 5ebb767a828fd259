//! A listener behind a proxy that speaks the PROXY protocol: the address in the header
//! is the client's (X-Forwarded-For at the backend), before HTTP and before TLS; a peer
//! outside `trusted`, or one without a header, is refused.

use crate::backend::Backend;
use crate::support::*;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// One pool of `backend` behind a listener taking PROXY headers from `trusted`.
fn behind_proxy(backend: std::net::SocketAddr, trusted: &str, tls: &str) -> String {
    config("", &[("a", backend, 1)]).replacen(
        "listen = \"127.0.0.1:0\"\n\n[[pool]]",
        &format!(
            "listen = \"127.0.0.1:0\"\nproxy_protocol = {{ trusted = [\"{trusted}\"] }}\n{tls}\n[[pool]]"
        ),
        1,
    )
}

/// A v2 PROXY header, written out by hand: TCP over IPv4 from `src` to 10.0.0.1:443, with
/// a NOOP TLV after the addresses.
fn v2_header(src: [u8; 4], port: u16) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12 + 4]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&[10, 0, 0, 1]);
    h.extend_from_slice(&port.to_be_bytes());
    h.extend_from_slice(&443u16.to_be_bytes());
    h.extend_from_slice(&[0x04, 0, 1, 0]);
    h
}

/// Send `GET /headers` on `io` and return everything that comes back until it closes.
async fn headers_over<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S) -> String {
    let req = b"GET /headers HTTP/1.1\r\nhost: shop.example\r\nconnection: close\r\n\r\n";
    let _ = io.write_all(req).await;
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), io.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "tango neither answered nor closed");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn the_address_in_a_v2_header_reaches_the_backend() {
    let b = Backend::start("a").await;
    let t = Tango::start(&behind_proxy(b.addr, "127.0.0.0/8", ""));
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    // The header arrives in two pieces, the request right after it.
    let h = v2_header([203, 0, 113, 9], 40000);
    s.write_all(&h[..7]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.write_all(&h[7..]).await.unwrap();
    let got = headers_over(&mut s).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(got.contains("\"x-forwarded-for\":\"203.0.113.9\""), "{got}");

    // Version 1 on the same listener.
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    s.write_all(b"PROXY TCP4 198.51.100.4 10.0.0.1 5555 80\r\n")
        .await
        .unwrap();
    let got = headers_over(&mut s).await;
    assert!(
        got.contains("\"x-forwarded-for\":\"198.51.100.4\""),
        "{got}"
    );

    // From a trusted peer, a connection without a header is refused.
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    let got = headers_over(&mut s).await;
    assert_eq!(got, "", "answered without a PROXY header");
}

#[tokio::test]
async fn a_peer_outside_trusted_is_refused() {
    let b = Backend::start("a").await;
    let t = Tango::start(&behind_proxy(b.addr, "10.0.0.0/8", ""));
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    s.write_all(&v2_header([203, 0, 113, 9], 40000))
        .await
        .unwrap();
    let got = headers_over(&mut s).await;
    assert_eq!(got, "", "a peer outside trusted was served");
    assert_eq!(b.state.hits.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[tokio::test]
async fn the_header_comes_before_tls() {
    let b = Backend::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    let tls = format!(
        "tls = {{ cert = \"{}\", key = \"{}\" }}\n",
        cert.display(),
        key.display()
    );
    let t = Tango::start(&behind_proxy(b.addr, "127.0.0.1", &tls));
    let mut tcp = TcpStream::connect(t.addr()).await.unwrap();
    tcp.write_all(&v2_header([192, 0, 2, 33], 1234))
        .await
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut s = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .expect("TLS handshake after the PROXY header");
    let got = headers_over(&mut s).await;
    assert!(got.contains("\"x-forwarded-for\":\"192.0.2.33\""), "{got}");
    assert!(got.contains("\"x-forwarded-proto\":\"https\""), "{got}");
}
