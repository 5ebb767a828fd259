//! HTTP/1.1 and HTTP/2 downstream, TLS, WebSocket, header rules, streaming bodies.

use crate::backend::Backend;
use crate::support::*;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::Arc;

#[tokio::test]
async fn hop_by_hop_headers_are_removed_and_forwarded_headers_set() {
    let b = Backend::start("a").await;
    let t = Tango::start(&config("", &[("a", b.addr, 1)]));
    let req = http::Request::get(t.url("/headers"))
        .header("host", "shop.example")
        .header("connection", "x-private, keep-alive")
        .header("x-private", "secret")
        .header("keep-alive", "timeout=5")
        .header("te", "trailers")
        .header("proxy-authorization", "Basic Zm9v")
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-kept", "yes")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (s, body) = send(&client(), req).await;
    assert_eq!(s, 200, "{body}");
    let h: serde_json::Value = serde_json::from_str(&body).unwrap();
    for gone in ["x-private", "keep-alive", "te", "proxy-authorization"] {
        assert!(h.get(gone).is_none(), "{gone} reached the backend: {h}");
    }
    assert_eq!(h["x-kept"], "yes");
    assert_eq!(h["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "shop.example");
    assert_eq!(h["host"], "shop.example");
    assert_eq!(
        h["x-request-id"].as_str().map(str::len),
        Some(32),
        "a request id is added: {h}"
    );

    // A request id the client sent is kept.
    let req = http::Request::get(t.url("/headers"))
        .header("x-request-id", "abc-123")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (_, body) = send(&client(), req).await;
    assert!(body.contains("\"x-request-id\":\"abc-123\""), "{body}");
}

#[tokio::test]
async fn h2_prior_knowledge_client_reaches_an_http1_backend() {
    let b = Backend::start("h1-backend").await;
    let t = Tango::start(&config("", &[("a", b.addr, 1)]));
    let c: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http();
    for _ in 0..3 {
        let resp = c
            .get(t.url("/").parse().unwrap())
            .await
            .expect("h2 response");
        assert_eq!(resp.version(), http::Version::HTTP_2);
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"h1-backend\n");
    }
    let resp = c.get(t.url("/headers").parse().unwrap()).await.unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let h: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        h["host"].as_str(),
        Some(t.addr().to_string().as_str()),
        "authority becomes Host: {h}"
    );
}

pub fn tls_config(addr_cfg: &str, dir: &std::path::Path) -> (String, rcgen::CertifiedKey) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.key_pair.serialize_pem()).unwrap();
    let cfg = addr_cfg.replacen(
        "listen = \"127.0.0.1:0\"\n\n[[pool]]",
        &format!(
            "listen = \"127.0.0.1:0\"\ntls = {{ cert = \"{}\", key = \"{}\" }}\n\n[[pool]]",
            dir.join("cert.pem").display(),
            dir.join("key.pem").display()
        ),
        1,
    );
    (cfg, ck)
}

pub async fn tls_connect(
    t: &Tango,
    ck: &rcgen::CertifiedKey,
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    tls_connect_to(t.addr(), ck, alpn).await
}

/// A TLS connection to `addr` (a listener with `ck`'s certificate), offering `alpn`.
pub async fn tls_connect_to(
    addr: std::net::SocketAddr,
    ck: &rcgen::CertifiedKey,
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    try_tls_connect_to(addr, ck, alpn)
        .await
        .expect("TLS handshake")
}

/// [`tls_connect_to`], with the handshake's failure for an answer.
pub async fn try_tls_connect_to(
    addr: std::net::SocketAddr,
    ck: &rcgen::CertifiedKey,
    alpn: &[u8],
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await
}

#[tokio::test]
async fn tls_termination_with_http1_and_h2_by_alpn() {
    let b = Backend::start("tls-backend").await;
    let dir = tempfile::tempdir().unwrap();
    let (cfg, ck) = tls_config(&config("", &[("a", b.addr, 1)]), dir.path());
    let t = Tango::start(&cfg);

    let tls = tls_connect(&t, &ck, b"http/1.1").await;
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = tx
        .send_request(
            http::Request::get("/headers")
                .header("host", "localhost")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let h: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(h["x-forwarded-proto"], "https", "{h}");

    let tls = tls_connect(&t, &ck, b"h2").await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut tx, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let resp = tx
        .send_request(
            http::Request::get("https://localhost/")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"tls-backend\n");
}

#[tokio::test]
async fn websocket_echo_through_the_proxy() {
    let b = Backend::start("ws").await;
    let t = Tango::start(&config("", &[("a", b.addr, 1)]));
    let (mut ws, resp) = tokio_tungstenite::connect_async(format!("ws://{}/ws", t.addr()))
        .await
        .expect("websocket handshake through tango");
    assert_eq!(resp.status(), 101);
    for i in 0..5 {
        let msg = format!("hello {i}");
        ws.send(tokio_tungstenite::tungstenite::Message::text(msg.clone()))
            .await
            .unwrap();
        let echo = ws.next().await.expect("echo").expect("frame");
        assert_eq!(echo.into_text().unwrap().as_str(), msg);
    }
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn upgrade_h2c_is_not_passed_on() {
    let b = Backend::start("a").await;
    let t = Tango::start(&config("", &[("a", b.addr, 1)]));
    let req = http::Request::get(t.url("/headers"))
        .header("connection", "Upgrade, HTTP2-Settings")
        .header("upgrade", "h2c")
        .header("http2-settings", "AAMAAABkAARAAAAAAAIAAAAA")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (s, body) = send(&client(), req).await;
    assert_eq!(s, 200);
    let h: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        h.get("upgrade").is_none() && h.get("http2-settings").is_none(),
        "{h}"
    );
}

const BIG: u64 = 50 * 1024 * 1024;

#[tokio::test]
async fn fifty_megabytes_stream_each_way_in_bounded_memory() {
    let b = Backend::start("big").await;
    let t = Tango::start(&config(
        "try_timeout = \"60s\"\ntimeout = \"60s\"",
        &[("a", b.addr, 1)],
    ));
    let c = client();
    // Warm up, then take the baseline.
    let _ = get(&c, &t.url("/")).await;
    let before = t.peak_rss_kib();

    // Upload: a streamed body the backend counts.
    let chunk = Bytes::from(vec![b'u'; 256 * 1024]);
    let chunks = (BIG / chunk.len() as u64) as usize;
    let stream = futures_util::stream::iter(
        (0..chunks).map(move |_| Ok::<_, std::convert::Infallible>(Frame::data(chunk.clone()))),
    );
    let stream_client: hyper_util::client::legacy::Client<_, StreamBody<_>> =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http();
    let resp = stream_client
        .request(
            http::Request::post(t.url("/sink"))
                .body(StreamBody::new(stream))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let n = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(String::from_utf8_lossy(&n), BIG.to_string());

    // Download: counted frame by frame, never held whole here either.
    let resp = c
        .get(t.url(&format!("/source?n={BIG}")).parse().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut got = 0u64;
    while let Some(f) = body.frame().await {
        got += f.unwrap().data_ref().map(|d| d.len() as u64).unwrap_or(0);
    }
    assert_eq!(got, BIG);

    let after = t.peak_rss_kib();
    let grew_mib = (after.saturating_sub(before)) as f64 / 1024.0;
    assert!(
        grew_mib < 16.0,
        "tango's peak RSS grew by {grew_mib:.1} MiB moving 2 x 50 MiB"
    );
}

#[tokio::test]
async fn upstream_connections_are_reused() {
    let b = Backend::start("a").await;
    let t = Tango::start(&config("", &[("a", b.addr, 1)]));
    let c = client();
    for path in ["/", "/source?n=100000", "/headers"] {
        for _ in 0..100 {
            let (s, _) = get(&c, &t.url(path)).await;
            assert_eq!(s, 200);
        }
    }
    let conns = b.state.conns.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        conns <= 2,
        "300 sequential requests opened {conns} upstream connections"
    );
}

/// An HTTP/2 backend that reads each request's whole body before it answers.
async fn h2_sink() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let svc = hyper::service::service_fn(
                |req: http::Request<hyper::body::Incoming>| async move {
                    let got = req.into_body().collect().await.map(|b| b.to_bytes().len());
                    let body = Full::new(Bytes::from(format!("{got:?}")));
                    Ok::<_, std::convert::Infallible>(http::Response::new(body))
                },
            );
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc),
            );
        }
    });
    (addr, task)
}

/// On hyper's path (a TLS client), as on the engine's: a client that sends part of its
/// body and stops gets `408` once the try's time runs out, and one whose body breaks
/// off (it closes mid-body) gets nothing; in neither case is the backend, which was
/// waiting for the body, charged with a failure (failures eject backends and raise
/// alerts). For a pool of HTTP/1.1 backends and one of HTTP/2 backends.
#[tokio::test]
async fn over_tls_a_body_that_stalls_or_breaks_off_is_not_the_backends_failure() {
    let b = Backend::start("a").await;
    let (h2, _task) = h2_sink().await;
    let dir = tempfile::tempdir().unwrap();
    let partial = b"POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc";
    for (extra, addr) in [("", b.addr), ("protocol = \"h2\"\n", h2)] {
        let plain = config(
            &format!("{extra}try_timeout = \"300ms\""),
            &[("a", addr, 1)],
        );
        let (cfg, ck) = tls_config(&plain, dir.path());
        let t = Tango::start(&cfg);
        let mut c = crate::framing::Raw::new(tls_connect(&t, &ck, b"http/1.1").await);
        c.send(partial).await;
        assert_eq!(c.status().await, Some(408), "{extra}");
        let mut c = crate::framing::Raw::new(tls_connect(&t, &ck, b"http/1.1").await);
        c.send(partial).await;
        assert!(
            in_flight_becomes(&t, 1, std::time::Duration::from_secs(5)).await,
            "{extra}: the request reached the backend"
        );
        drop(c);
        assert!(
            in_flight_becomes(&t, 0, std::time::Duration::from_secs(5)).await,
            "{extra}: the request ended"
        );
        let v = admin_get(&t, "/api/v1/status").await;
        let a = &v["pools"][0]["backends"][0];
        assert_eq!(a["errors"], 0, "{extra}: the backend is not blamed: {v}");
    }
}

/// A request with no authority at all (HTTP/1.0 without Host, here on the engine's path
/// and over TLS on hyper's) goes to the backend as HTTP/1.1, which requires Host: it
/// gets an empty one (RFC 9112 3.2), not none, which a backend must answer with 400.
#[tokio::test]
async fn a_request_without_an_authority_reaches_the_backend_with_an_empty_host() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    async fn headers_seen<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
        mut s: S,
    ) -> serde_json::Value {
        s.write_all(b"GET /headers HTTP/1.0\r\n\r\n").await.unwrap();
        let mut got = Vec::new();
        let read = s.read_to_end(&mut got);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), read).await;
        let text = String::from_utf8_lossy(&got);
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        serde_json::from_str(body).unwrap_or_else(|_| panic!("{text}"))
    }
    let b = Backend::start("a").await;
    let t = Tango::start(&config("", &[("a", b.addr, 1)]));
    let tcp = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    let h = headers_seen(tcp).await;
    assert_eq!(h["host"], "", "{h}");

    let dir = tempfile::tempdir().unwrap();
    let (cfg, ck) = tls_config(&config("", &[("a", b.addr, 1)]), dir.path());
    let t = Tango::start(&cfg);
    let h = headers_seen(tls_connect(&t, &ck, b"http/1.1").await).await;
    assert_eq!(h["host"], "", "{h}");
}
