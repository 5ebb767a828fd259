//! Requests that are ambiguous to frame get 400 and never reach a backend, on plain and
//! TLS connections, whatever came before them on the connection; well-framed bodies
//! pass intact however they are chunked. The raw HTTP/1 client (`raw.rs`) and the
//! recording backend (`recorder.rs`) live beside them, for these tests and others.

mod raw;
mod recorder;

pub use raw::Raw;
pub use recorder::Recorder;

use crate::backend::Backend;
use crate::support::*;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// Send raw bytes on a new connection; return the status of the first response (0 if
/// the connection closed without one).
async fn raw(addr: SocketAddr, bytes: &[u8]) -> u16 {
    let mut c = Raw::connect(addr).await;
    c.send(bytes).await;
    c.status().await.unwrap_or(0)
}

const SMUGGLED: &[u8] = b"POST /smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";

#[tokio::test]
async fn ambiguous_framing_is_rejected_before_forwarding() {
    let b = Backend::start("a").await;
    let t = Tango::start(&config("", &[("a", b.addr, 1)]));
    let cases: [(&str, &[u8]); 7] = [
        ("CL then TE", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"),
        ("TE then CL", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\nConnection: close\r\n\r\n0\r\n\r\n"),
        ("conflicting CL", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello!"),
        ("unknown coding", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"),
        ("coding not chunked", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n"),
        ("space before colon", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length : 0\r\nConnection: close\r\n\r\n"),
        ("control char in target", b"GET /a\x01b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    ];
    for (what, bytes) in cases {
        assert_eq!(raw(t.addr(), bytes).await, 400, "{what}");
    }
    assert_eq!(b.hits(), 0, "a rejected request reached the backend");
    // A well-framed request on the same listener still works.
    let ok = b"POST /sink HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    assert_eq!(raw(t.addr(), ok).await, 200);
    assert_eq!(b.hits(), 1);
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let b = Backend::start("a").await;
    let cfg = config("", &[("a", b.addr, 1)]).replacen(
        "listen = \"127.0.0.1:0\"\n\n[[pool]]",
        "listen = \"127.0.0.1:0\"\nmax_header_bytes = 8192\n\n[[pool]]",
        1,
    );
    let t = Tango::start(&cfg);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(20_000)
    );
    assert_eq!(raw(t.addr(), big.as_bytes()).await, 431);
    assert_eq!(b.hits(), 0);
}

/// An `Upgrade` header used to switch the guard off for the rest of the connection,
/// even when no 101 came back, so a request with both lengths could follow it.
#[tokio::test]
async fn an_upgrade_answered_without_101_leaves_the_guard_on() {
    let b = Backend::start("a").await;
    let t = Tango::start(&config("", &[("a", b.addr, 1)]));
    let upgrade = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n";
    // The backend answers 200 (its "/" is no WebSocket). Sent one after the other,
    // then both in one write, so the second arrives while the first is in flight.
    for pipelined in [false, true] {
        let mut c = Raw::connect(t.addr()).await;
        c.send(upgrade).await;
        if pipelined {
            c.send(SMUGGLED).await;
        }
        let (status, body) = c.response().await.expect("an answer to the upgrade");
        assert_eq!(
            (status, &body[..]),
            (200, &b"a\n"[..]),
            "pipelined: {pipelined}"
        );
        if !pipelined {
            c.send(SMUGGLED).await;
        }
        assert_eq!(c.status().await, Some(400), "pipelined: {pipelined}");
    }
    assert_eq!(
        b.hits(),
        2,
        "only the two upgrade requests reached the backend"
    );
}

/// Framing is linear in the input: a body of 200,000 one-byte chunks (1.2 MB on the
/// wire) goes through whole. Speed is the benchmarks' business; this checks the bytes.
#[tokio::test]
async fn a_body_of_one_byte_chunks_reaches_the_backend_intact() {
    const CHUNKS: usize = 200_000;
    let rec = Recorder::start().await;
    let t = Tango::start(&config("", &[("a", rec.addr, 1)]));
    let expected: Vec<u8> = (0..CHUNKS).map(|i| b'a' + (i % 26) as u8).collect();
    let mut wire = b"POST /sink HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for &b in &expected {
        wire.extend_from_slice(b"1\r\n");
        wire.push(b);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    let mut c = Raw::connect(t.addr()).await;
    let exchange = async {
        c.send(&wire).await;
        c.response().await
    };
    let resp = tokio::time::timeout(Duration::from_secs(120), exchange)
        .await
        .expect("the upload finishes");
    assert_eq!(resp, Some((200, CHUNKS.to_string().into_bytes())));
    assert_eq!(rec.bodies(), vec![expected]);
}

/// RFC 9112 3.2: an HTTP/1.1 request without Host, or any with two, gets 400.
#[tokio::test]
async fn host_is_required_on_http11_and_never_twice() {
    let b = Backend::start("a").await;
    let t = Tango::start(&config("", &[("a", b.addr, 1)]));
    for bytes in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        b"GET http://x/ HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost: x\r\nHost: y\r\n\r\n",
    ] {
        assert_eq!(
            raw(t.addr(), bytes).await,
            400,
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
    assert_eq!(b.hits(), 0);
    // HTTP/1.0 has no Host requirement.
    assert_eq!(raw(t.addr(), b"GET / HTTP/1.0\r\n\r\n").await, 200);
    assert_eq!(b.hits(), 1);
}

/// A chunk-size line longer than the guard's buffer used to switch it to pass-through.
#[tokio::test]
async fn a_padded_chunk_size_line_does_not_switch_the_guard_off() {
    let b = Backend::start("a").await;
    let t = Tango::start(&config("", &[("a", b.addr, 1)]));
    let mut first =
        b"POST /sink HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    first.extend(std::iter::repeat_n(b'0', 10_000));
    first.extend_from_slice(b"3\r\nabc\r\n0\r\n\r\n");
    let mut c = Raw::connect(t.addr()).await;
    c.send(&[&first[..], SMUGGLED].concat()).await;
    assert_eq!(c.response().await, Some((200, b"3".to_vec())));
    assert_eq!(c.status().await, Some(400));
    assert_eq!(b.hits(), 1);
}

#[tokio::test]
async fn tls_connections_are_guarded_too() {
    let b = Backend::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let (cfg, ck) = crate::protocols::tls_config(&config("", &[("a", b.addr, 1)]), dir.path());
    let t = Tango::start(&cfg);
    // Its own client, which offers no ALPN at all (`tls_connect` always offers one).
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(client))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            TcpStream::connect(t.addr()).await.unwrap(),
        )
        .await
        .expect("TLS handshake");
    let mut c = Raw::new(tls);
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(c.response().await, Some((200, b"a\n".to_vec())));
    c.send(SMUGGLED).await;
    assert_eq!(c.status().await, Some(400));
    assert_eq!(b.hits(), 1);
}

/// A backend and a plain tango in front of it, after each of `cases` was refused
/// `400` there and over TLS (HTTP/1.1), with none of them reaching the backend.
async fn refused_on_plain_and_tls(cases: &[&[u8]]) -> (Backend, Tango) {
    let b = Backend::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let plain = Tango::start(&config("", &[("a", b.addr, 1)]));
    let (cfg, ck) = crate::protocols::tls_config(&config("", &[("a", b.addr, 1)]), dir.path());
    let tls = Tango::start(&cfg);
    for bytes in cases {
        let what = String::from_utf8_lossy(bytes);
        assert_eq!(raw(plain.addr(), bytes).await, 400, "{what}");
        let mut c = Raw::new(crate::protocols::tls_connect(&tls, &ck, b"http/1.1").await);
        c.send(bytes).await;
        assert_eq!(c.status().await, Some(400), "over TLS: {what}");
    }
    assert_eq!(b.hits(), 0, "a refused request reached the backend");
    (b, plain)
}

/// RFC 9112 3.2.3, 3.2.4: CONNECT takes the authority form and only CONNECT does;
/// only OPTIONS takes `*`. Anything else is refused on both paths, never forwarded
/// (`GET x:80` went on as `GET /`, and `CONNECT /` as a tunnel request).
#[tokio::test]
async fn a_target_whose_form_does_not_fit_its_method_is_refused() {
    let (_b, plain) = refused_on_plain_and_tls(&[
        b"GET x.example:80 HTTP/1.1\r\nHost: x.example\r\n\r\n",
        b"CONNECT / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"CONNECT http://x.example/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
    ])
    .await;
    assert_eq!(
        raw(plain.addr(), b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n").await,
        200
    );
}

/// Userinfo in the authority is refused on every client path, as RFC 9110 4.2.4 asks
/// (a link's `user@` hides the host it goes to): in an absolute-form target, in Host,
/// and in an HTTP/2 `:authority`. It used to go on to the backend as its Host.
#[tokio::test]
async fn userinfo_in_the_authority_is_refused_on_every_path() {
    let (b, plain) = refused_on_plain_and_tls(&[
        b"GET http://u:p@x.example/ HTTP/1.1\r\nHost: x.example\r\n\r\n",
        b"GET http://x.example@evil.example/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: u:p@x.example\r\n\r\n",
    ])
    .await;
    let mut h2 = h2c(&plain).await;
    let req = http::Request::get("http://u:p@x.example/")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let resp = h2.send_request(req).await.expect("an answer");
    assert_eq!(resp.status(), 400, "over h2c");
    assert_eq!(b.hits(), 0, "a refused request reached the backend");
    assert_eq!(
        raw(plain.addr(), b"GET /a@b HTTP/1.1\r\nHost: x\r\n\r\n").await,
        200
    );
}

/// A Host that is no host and port is refused on both HTTP/1.1 paths (RFC 9112 3.2:
/// `400`), as an HTTP/2 `:authority` is: it went on to the backend as its Host and
/// X-Forwarded-Host. Hosts of every form still go.
#[tokio::test]
async fn a_host_that_is_no_host_is_refused() {
    let (b, plain) = refused_on_plain_and_tls(&[
        b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x.example/evil?\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\"><y\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost: x\\y\r\n\r\n",
    ])
    .await;
    for host in ["x.example:8080", "[::1]:80", "10.0.0.1", ""] {
        let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        assert_eq!(raw(plain.addr(), req.as_bytes()).await, 200, "{host}");
    }
    assert_eq!(b.hits(), 4);
}
