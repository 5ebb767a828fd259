//! Trailer fields to and from an HTTP/2 backend (`protocol = "h2"`, h2c) that records
//! the trailers it got and answers every request with data and a trailer section that
//! holds fields that must not be trailers: the same fields stay behind both ways as on
//! the HTTP/1 path, for HTTP/2 clients (hyper's side) and HTTP/1.1 clients (the engine).

use super::recorder::read_chunked_response;
use super::{client_trailers, Frames};
use crate::support::*;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The trailers the backend answers with: one to forward, and fields that must not be
/// trailers (framing, state, content format, tango's own forwarding fields).
fn backend_trailers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-checksum", HeaderValue::from_static("abc"));
    h.insert("content-length", HeaderValue::from_static("99"));
    h.insert("set-cookie", HeaderValue::from_static("session=evil"));
    h.insert("content-type", HeaderValue::from_static("text/html"));
    h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
    h
}

/// An h2c backend: each request's trailers recorded (an empty map for none), each
/// answered `200` with "hello" and [`backend_trailers`].
struct TrailingH2 {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<HeaderMap>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TrailingH2 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TrailingH2 {
    async fn start() -> TrailingH2 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        let task = tokio::spawn(async move {
            while let Ok((c, _)) = l.accept().await {
                let g = g.clone();
                tokio::spawn(async move {
                    let Ok(mut conn) = h2::server::handshake(c).await else {
                        return;
                    };
                    while let Some(Ok((req, respond))) = conn.accept().await {
                        tokio::spawn(answer(req, respond, g.clone()));
                    }
                });
            }
        });
        TrailingH2 { addr, got, task }
    }

    /// The trailers of the backend's `n`th request, once it has had them.
    async fn trailers(&self, n: usize) -> HeaderMap {
        for _ in 0..1000 {
            if let Some(t) = self.got.lock().unwrap().get(n) {
                return t.clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no request {n}");
    }
}

async fn answer(
    req: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    got: Arc<Mutex<Vec<HeaderMap>>>,
) {
    let mut body = req.into_body();
    while let Some(Ok(d)) = body.data().await {
        let _ = body.flow_control().release_capacity(d.len());
    }
    let trailers = body.trailers().await.ok().flatten().unwrap_or_default();
    got.lock().unwrap().push(trailers);
    let Ok(mut send) = respond.send_response(http::Response::new(()), false) else {
        return;
    };
    let _ = send.send_data(Bytes::from_static(b"hello"), false);
    let _ = send.send_trailers(backend_trailers());
}

fn only_the_checksum(t: &HeaderMap, value: &'static str) {
    let want: HeaderMap = [(
        "x-checksum".parse().unwrap(),
        HeaderValue::from_static(value),
    )]
    .into_iter()
    .collect();
    assert_eq!(*t, want);
}

/// An HTTP/2 client's trailers reach the backend, and the backend's come back, each
/// without the fields that must not be trailers.
#[tokio::test]
async fn trailers_to_and_from_an_h2_backend_keep_only_what_may_trail() {
    let b = TrailingH2::start().await;
    let t = Tango::start(&config("protocol = \"h2\"", &[("a", b.addr, 1)]));
    let tcp = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = vec![
        Ok(Frame::data(Bytes::from_static(b"hello"))),
        Ok(Frame::trailers(client_trailers())),
    ];
    let req: http::Request<Frames> = http::Request::post(format!("http://{}/up", t.addr()))
        .header("te", "trailers")
        .body(StreamBody::new(futures_util::stream::iter(frames)))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), h2.send_request(req))
        .await
        .expect("an answer in time")
        .expect("an answer");
    assert_eq!(resp.status(), 200);
    let got = tokio::time::timeout(Duration::from_secs(10), resp.into_body().collect())
        .await
        .expect("the body in time")
        .expect("a whole body");
    only_the_checksum(&got.trailers().cloned().unwrap_or_default(), "abc");
    assert_eq!(got.to_bytes(), "hello");
    only_the_checksum(&b.trailers(0).await, "req");
}

/// An HTTP/1.1 client of the engine gets the backend's trailers in the last chunk, as
/// filtered as from an HTTP/1 backend.
#[tokio::test]
async fn an_http1_client_gets_only_what_may_trail_from_an_h2_backend() {
    let b = TrailingH2::start().await;
    let t = Tango::start(&config("protocol = \"h2\"", &[("a", b.addr, 1)]));
    let mut io = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    io.write_all(b"GET /down HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: TE\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = read_chunked_response(&mut io).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(body.data, b"hello");
    assert_eq!(body.trailers, "x-checksum: abc\r\n", "{head}");
}

/// An HTTP/1.1 client's chunked request through the engine: its trailers reach the
/// backend as the stream's trailing HEADERS, without the fields that must not be
/// trailers, whether the section comes with the data or in a later read; a chunked
/// body without trailers ends the stream with its data, as before.
#[tokio::test]
async fn an_http1_client_s_trailers_reach_an_h2_backend_filtered() {
    let b = TrailingH2::start().await;
    let t = Tango::start(&config("protocol = \"h2\"", &[("a", b.addr, 1)]));
    let mut io = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    let head = "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
                Trailer: x-checksum\r\n\r\n";
    let section = "X-Checksum: req\r\nContent-Length: 99\r\nHost: evil.example\r\n\
                   X-Forwarded-For: 6.6.6.6\r\n\r\n";
    // All in one write.
    io.write_all(format!("{head}5\r\nhello\r\n0\r\n{section}").as_bytes())
        .await
        .unwrap();
    let (resp, body) = read_chunked_response(&mut io).await;
    assert!(resp.starts_with("http/1.1 200"), "{resp}");
    assert_eq!(body.data, b"hello");
    only_the_checksum(&b.trailers(0).await, "req");
    // The section in a read of its own, after the data has gone.
    io.write_all(format!("{head}5\r\nhello\r\n").as_bytes())
        .await
        .unwrap();
    io.flush().await.unwrap();
    io.write_all(format!("0\r\n{section}").as_bytes())
        .await
        .unwrap();
    let (resp, _) = read_chunked_response(&mut io).await;
    assert!(resp.starts_with("http/1.1 200"), "{resp}");
    only_the_checksum(&b.trailers(1).await, "req");
    // Nothing that may trail: no trailers.
    io.write_all(format!("{head}5\r\nhello\r\n0\r\nContent-Type: text/html\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let (resp, _) = read_chunked_response(&mut io).await;
    assert!(resp.starts_with("http/1.1 200"), "{resp}");
    assert!(b.trailers(2).await.is_empty());
    // No section at all.
    io.write_all(format!("{head}5\r\nhello\r\n0\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let (resp, body) = read_chunked_response(&mut io).await;
    assert!(resp.starts_with("http/1.1 200"), "{resp}");
    assert_eq!(body.data, b"hello");
    assert!(b.trailers(3).await.is_empty());
}
