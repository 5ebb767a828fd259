//! Trailer fields through tango to and from an HTTP/1.1 backend that records what it
//! got (`recorder`): on hyper's side (HTTP/2 clients, TLS HTTP/1.1 clients) a client's
//! trailers go in the last chunk, and a backend's come back as HTTP/2 trailers, or in
//! an HTTP/1.1 client's last chunk when it said `TE: trailers`; fields that must not
//! be trailers stay behind, and the `Trailer` field announcing them goes through, on
//! the engine too. The same to and from HTTP/2 backends (`h2`).

mod h2_backend;
mod recorder;

use crate::support::*;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use recorder::{decode, read_chunked_response, Recorder};
use std::convert::Infallible;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The request body of the HTTP/2 tests: "hello", then trailers.
type Frames =
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

/// tango with a TLS listener in front of `b`; the certificate its clients trust, and
/// the directory its files are in.
fn tls_front(b: &Recorder) -> (Tango, rcgen::CertifiedKey, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, ck) = crate::protocols::tls_config(&config("", &[("a", b.addr, 1)]), dir.path());
    (Tango::start(&cfg), ck, dir)
}

/// The trailers an HTTP/2 client sends: one to forward, and fields that must not be
/// trailers (framing, routing, tango's own forwarding fields).
fn client_trailers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-checksum", HeaderValue::from_static("req"));
    h.insert("content-length", HeaderValue::from_static("99"));
    h.insert("host", HeaderValue::from_static("evil.example"));
    h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
    h
}

/// An HTTP/2 connection to tango over TLS (ALPN `h2`).
async fn h2_connect(
    t: &Tango,
    ck: &rcgen::CertifiedKey,
) -> hyper::client::conn::http2::SendRequest<Frames> {
    let tls = crate::protocols::tls_connect(t, ck, b"h2").await;
    let (h2, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    h2
}

/// POST `path` over HTTP/2 (TLS, ALPN `h2`) with "hello" and [`client_trailers`],
/// declaring its length when `length`: the answer's head, data and trailers.
async fn h2_post(
    t: &Tango,
    ck: &rcgen::CertifiedKey,
    path: &str,
    length: bool,
) -> (HeaderMap, Bytes, HeaderMap) {
    let mut h2 = h2_connect(t, ck).await;
    let frames = vec![
        Ok(Frame::data(Bytes::from_static(b"hello"))),
        Ok(Frame::trailers(client_trailers())),
    ];
    let mut req = http::Request::post(format!("https://localhost{path}"))
        .header("trailer", "x-checksum")
        .header("te", "trailers");
    if length {
        req = req.header("content-length", "5");
    }
    let req = req
        .body(StreamBody::new(futures_util::stream::iter(frames)))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), h2.send_request(req))
        .await
        .expect("an answer in time")
        .expect("an answer");
    assert_eq!(resp.status(), 200);
    let (parts, body) = resp.into_parts();
    let got = tokio::time::timeout(Duration::from_secs(10), body.collect())
        .await
        .expect("the body in time")
        .expect("a whole body");
    let trailers = got.trailers().cloned().unwrap_or_default();
    (parts.headers, got.to_bytes(), trailers)
}

/// The request's head (lowercased) and its chunked body, decoded.
fn split_request(raw: &[u8]) -> (String, recorder::Decoded) {
    let head = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let text = String::from_utf8_lossy(&raw[..head]).to_ascii_lowercase();
    let body = decode(&raw[head..]).unwrap_or_else(|| panic!("not chunked: {text}"));
    (text, body)
}

/// What the backend must get of a client's body with trailers: the data, and of the
/// trailers only `x-checksum`, in the last chunk; the `Trailer` field kept.
fn assert_forwarded(raw: &[u8]) {
    let (head, body) = split_request(raw);
    assert!(head.contains("transfer-encoding: chunked\r\n"), "{head}");
    assert_eq!(body.data, b"hello");
    assert_eq!(body.trailers, "x-checksum: req\r\n", "{head}");
    assert!(head.contains("\r\ntrailer: x-checksum\r\n"), "{head}");
}

#[tokio::test]
async fn an_h2_client_s_trailers_reach_an_http1_backend_and_the_backend_s_come_back() {
    let b = Recorder::start().await;
    let (t, ck, _dir) = tls_front(&b);
    let (head, data, trailers) = h2_post(&t, &ck, "/up", false).await;
    assert_eq!(data, "hello");
    // Only the field that may be a trailer: content-length and connection stay behind
    // (HTTP/2 forbids a connection field anywhere).
    let want: HeaderMap = [(
        "x-checksum".parse().unwrap(),
        HeaderValue::from_static("abc"),
    )]
    .into_iter()
    .collect();
    assert_eq!(trailers, want);
    assert_eq!(head.get("trailer").unwrap(), "x-checksum");
    assert_forwarded(&b.request(0).await);
}

/// HTTP/2 carries trailers whether or not the head named them.
#[tokio::test]
async fn an_h2_client_gets_trailers_the_backend_did_not_announce() {
    let b = Recorder::start().await;
    let (t, ck, _dir) = tls_front(&b);
    let (head, data, trailers) = h2_post(&t, &ck, "/undeclared", false).await;
    assert_eq!(data, "hello");
    assert!(head.get("trailer").is_none());
    assert_eq!(trailers.get("x-checksum").unwrap(), "abc");
    assert_eq!(trailers.len(), 1);
}

/// A request that announces trailers goes chunked even with a declared length: only
/// the last chunk can carry them to an HTTP/1.1 backend.
#[tokio::test]
async fn an_h2_client_s_trailers_after_a_declared_length_reach_the_backend() {
    let b = Recorder::start().await;
    let (t, ck, _dir) = tls_front(&b);
    let (_, data, trailers) = h2_post(&t, &ck, "/up", true).await;
    assert_eq!(data, "hello");
    assert_eq!(trailers.get("x-checksum").unwrap(), "abc");
    let raw = b.request(0).await;
    assert_forwarded(&raw);
    assert!(!String::from_utf8_lossy(&raw)
        .to_ascii_lowercase()
        .contains("content-length"));
}

/// A backend's trailer section past the limit (16 KiB, as hyper's) is bad framing:
/// the client's stream, begun, is cut rather than ended as if whole.
#[tokio::test]
async fn a_trailer_section_past_the_limit_cuts_the_h2_client_s_stream() {
    let b = Recorder::start().await;
    let (t, ck, _dir) = tls_front(&b);
    let mut h2 = h2_connect(&t, &ck).await;
    let req = http::Request::get("https://localhost/huge")
        .body(StreamBody::new(futures_util::stream::iter(vec![])))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), h2.send_request(req))
        .await
        .expect("an answer in time")
        .expect("an answer");
    assert_eq!(resp.status(), 200);
    let got = tokio::time::timeout(Duration::from_secs(10), resp.into_body().collect())
        .await
        .expect("the body's end in time");
    assert!(
        got.is_err(),
        "ended as if whole: {:?}",
        got.map(|c| c.trailers().cloned())
    );
}

/// A chunked request with trailers that must not all be forwarded, over `io`
/// (HTTP/1.1), with `te` among its fields.
async fn h1_post(io: &mut (impl tokio::io::AsyncWrite + Unpin), te: &str) {
    let req = format!(
        "POST /up HTTP/1.1\r\nHost: localhost\r\n{te}Trailer: x-checksum\r\n\
         Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-checksum: req\r\n\
         host: evil.example\r\ncontent-length: 99\r\nx-forwarded-for: 6.6.6.6\r\n\r\n"
    );
    io.write_all(req.as_bytes()).await.unwrap();
}

/// hyper's HTTP/1.1 server sends trailers to a client that said `TE: trailers`, those
/// the response's `Trailer` field names: so that field must reach it.
#[tokio::test]
async fn a_tls_http1_client_that_accepts_trailers_gets_them_and_its_own_go_on() {
    let b = Recorder::start().await;
    let (t, ck, _dir) = tls_front(&b);
    let mut io = crate::protocols::tls_connect(&t, &ck, b"http/1.1").await;
    h1_post(&mut io, "TE: trailers\r\nConnection: TE\r\n").await;
    let (head, body) = read_chunked_response(&mut io).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(body.data, b"hello");
    assert_eq!(body.trailers, "x-checksum: abc\r\n", "{head}");
    assert!(head.contains("\r\ntrailer: x-checksum\r\n"), "{head}");
    assert_forwarded(&b.request(0).await);
}

/// A client that did not say `TE: trailers` gets the body whole, ended by an empty
/// last chunk (RFC 9112 7.1.2: a recipient that removes the chunked coding may discard
/// trailers), and its connection stays usable.
#[tokio::test]
async fn a_tls_http1_client_that_did_not_ask_gets_a_whole_body_without_trailers() {
    let b = Recorder::start().await;
    let (t, ck, _dir) = tls_front(&b);
    let mut io = crate::protocols::tls_connect(&t, &ck, b"http/1.1").await;
    for n in 0..2 {
        h1_post(&mut io, "").await;
        let (head, body) = read_chunked_response(&mut io).await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert_eq!(body.data, b"hello");
        assert_eq!(body.trailers, "");
        assert_forwarded(&b.request(n).await);
    }
}

/// The engine passes chunked bodies on as they came but for their trailer sections,
/// which keep only the fields that may be trailers (`engine::trailers`); the `Trailer`
/// field announcing them goes with them both ways.
#[tokio::test]
async fn the_engine_passes_the_trailer_field_both_ways() {
    let b = Recorder::start().await;
    let t = Tango::start(&config("", &[("a", b.addr, 1)]));
    let mut io = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    io.write_all(
        b"POST /up HTTP/1.1\r\nHost: x\r\nTrailer: x-checksum\r\n\
          Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-checksum: req\r\n\r\n",
    )
    .await
    .unwrap();
    let (head, body) = read_chunked_response(&mut io).await;
    assert!(head.contains("\r\ntrailer: x-checksum\r\n"), "{head}");
    assert!(body.trailers.starts_with("x-checksum: abc\r\n"), "{body:?}");
    assert_forwarded(&b.request(0).await);
}
