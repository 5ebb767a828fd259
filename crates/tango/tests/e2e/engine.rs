//! The HTTP/1.1 engine on the wire: pipelined requests answered in order, `Expect:
//! 100-continue`, responses without a length (read to the backend's close), HEAD and
//! 304 without bodies, and a response far larger than any buffer, byte for byte;
//! trailer sections (`trailers`); the log lines of requests that did not end whole
//! (`cut_lines`), and the body bytes logged for an answer cut mid-write: tango's own
//! (`own_cut`) and a backend's (`cut_bytes`), measured against what the kernel took
//! (`kernel`); HTTP/1.0 clients and interim answers (`versions`).

mod cut_bytes;
mod cut_lines;
mod direct_sends;
mod kernel;
mod own_cut;
mod trailers;
mod versions;

use crate::backend::Backend;
use crate::framing::Raw;
use crate::support::*;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bounds each wait here; the events awaited come much sooner.
const BOUND: Duration = Duration::from_secs(15);

/// The 8 MiB body `/big` answers: byte `i` is `i % 251`, so a shifted, repeated or
/// missing stretch shows.
const BIG: usize = 8 << 20;

fn big_body() -> Vec<u8> {
    (0..BIG).map(|i| (i % 251) as u8).collect()
}

/// A backend that answers with canned bytes, by path:
///   /close   `200`, no length: the body ends when the backend closes
///   /304     `304 Not Modified`
///   /big     8 MiB with Content-Length, in pieces
///   /chunked 8 MiB as chunks of odd sizes
///   other    `200` with the path as body
/// Request bodies (Content-Length) are read and dropped.
struct Canned {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Canned {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Canned {
    async fn start() -> Canned {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((s, _)) = l.accept().await {
                conns.spawn(canned_conn(s));
            }
        });
        Canned { addr, task }
    }
}

async fn canned_conn(mut s: TcpStream) {
    let mut buf = Vec::new();
    loop {
        let Some((path, len)) = read_request(&mut s, &mut buf).await else {
            return;
        };
        // Drop the body.
        while buf.len() < len {
            if !fill(&mut s, &mut buf).await {
                return;
            }
        }
        buf.drain(..len);
        let close = canned_answer(&mut s, &path).await;
        if close {
            return;
        }
    }
}

/// Write the answer for `path`; true when the connection must close after it.
async fn canned_answer(s: &mut TcpStream, path: &str) -> bool {
    match path {
        "/close" => {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nx-kind: close\r\n\r\nhello, ")
                .await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = s.write_all(b"until the end").await;
            true
        }
        "/304" => {
            let _ = s
                .write_all(b"HTTP/1.1 304 Not Modified\r\netag: \"v1\"\r\n\r\n")
                .await;
            false
        }
        "/big" => {
            let body = big_body();
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {BIG}\r\n\r\n");
            let _ = s.write_all(head.as_bytes()).await;
            for piece in body.chunks(100_003) {
                if s.write_all(piece).await.is_err() {
                    return true;
                }
            }
            false
        }
        "/chunked" => {
            let body = big_body();
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                .await;
            for piece in body.chunks(77_777) {
                let mut c = format!("{:x}\r\n", piece.len()).into_bytes();
                c.extend_from_slice(piece);
                c.extend_from_slice(b"\r\n");
                if s.write_all(&c).await.is_err() {
                    return true;
                }
            }
            let _ = s.write_all(b"0\r\n\r\n").await;
            false
        }
        other => {
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", other.len());
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(other.as_bytes()).await;
            false
        }
    }
}

/// Read more into `buf`; false at the end of the stream.
async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match s.read(&mut chunk).await {
        Ok(n) if n > 0 => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
        _ => false,
    }
}

/// The next request's path and body length; its head is taken out of `buf`.
async fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, usize)> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(n)) = req.parse(buf) {
            let path = req.path.unwrap_or("/").to_string();
            let len = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .unwrap_or(0);
            buf.drain(..n);
            return Some((path, len));
        }
        if !fill(s, buf).await {
            return None;
        }
    }
}

/// Read from `s` until `want` bytes came or the stream ends.
async fn read_n(s: &mut TcpStream, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(BOUND, async {
        while got.len() < want && fill(s, &mut got).await {}
    })
    .await;
    got
}

/// Read from `s` until what came satisfies `done` (or `BOUND` passes).
async fn read_until(s: &mut TcpStream, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(BOUND, async {
        while !done(&got) && fill(s, &mut got).await {}
    })
    .await;
    got
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let b = Backend::start("a").await;
    let t = Tango::start(&config("", &[("a", b.addr, 1)]));
    let mut c = Raw::connect(t.addr()).await;
    // Four requests in one write; the first is the slowest to answer.
    c.send(
        b"GET /slow?ms=150 HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /source?n=3 HTTP/1.1\r\nHost: x\r\n\r\n\
          POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
          GET /source?n=7 HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert_eq!(c.response().await, Some((200, b"a\n".to_vec())));
    assert_eq!(c.response().await, Some((200, b"xxx".to_vec())));
    assert_eq!(c.response().await, Some((200, b"5".to_vec())));
    assert_eq!(c.response().await, Some((200, b"xxxxxxx".to_vec())));
    // And the connection goes on.
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(c.response().await, Some((200, b"a\n".to_vec())));
    assert_eq!(b.hits(), 5);
}

#[tokio::test]
async fn a_head_sent_a_byte_at_a_time_is_answered() {
    // The engine parses a head that came in pieces again only once its empty line may
    // have arrived: this one's ends in its last two writes.
    let b = Backend::start("a").await;
    let t = Tango::start(&config("", &[("a", b.addr, 1)]));
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    s.set_nodelay(true).unwrap();
    let filler = "y".repeat(600);
    let head = format!("GET /source?n=4 HTTP/1.1\r\nHost: x\r\nX-Filler: {filler}\r\n\r\n");
    for byte in head.as_bytes() {
        s.write_all(std::slice::from_ref(byte)).await.unwrap();
    }
    let mut c = Raw::new(s);
    assert_eq!(c.response().await, Some((200, b"xxxx".to_vec())));
    assert_eq!(b.hits(), 1);
}

#[tokio::test]
async fn expect_100_continue_is_answered_before_the_body_is_sent() {
    let b = Backend::start("a").await;
    let t = Tango::start(&config("", &[("a", b.addr, 1)]));
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    s.write_all(
        b"POST /sink HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n",
    )
    .await
    .unwrap();
    let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
    let got = read_n(&mut s, interim.len()).await;
    assert_eq!(got, interim, "{}", String::from_utf8_lossy(&got));
    s.write_all(b"hello world").await.unwrap();
    let mut c = Raw::new(s);
    assert_eq!(c.response().await, Some((200, b"11".to_vec())));
}

/// A client that stops sending its body is the client's failure, not the backend's:
/// when the try's time runs out it gets `408`, and the backend, which was waiting for
/// the body, is not charged with a failure (failures count towards its ejection and its
/// alerts, so any client could otherwise take backends out). The same for a pool of
/// HTTP/2 backends.
#[tokio::test]
async fn a_client_that_stops_sending_its_body_gets_408_and_the_backend_is_not_blamed() {
    let b = Backend::start("a").await;
    let (h2, _task) = crate::rules::h2_echo().await;
    for (extra, addr) in [("", b.addr), ("protocol = \"h2\"\n", h2)] {
        let t = Tango::start(&config(
            &format!("{extra}try_timeout = \"300ms\""),
            &[("a", addr, 1)],
        ));
        let mut c = Raw::connect(t.addr()).await;
        c.send(b"POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
            .await;
        assert_eq!(c.status().await, Some(408), "{extra}");
        let v = admin_get(&t, "/api/v1/status").await;
        let a = &v["pools"][0]["backends"][0];
        assert_eq!(a["errors"], 0, "{extra}: the backend is not blamed: {v}");
    }
}

/// An absolute-form target names the host: RFC 9112 3.2.2 has a server ignore the Host
/// field then, and a proxy send the target's host on in a new Host. A request a proxy
/// in front took for `b.example` must not reach `a.example`'s pool by its Host field;
/// on the engine (plain) and on hyper's path (TLS) alike.
#[tokio::test]
async fn an_absolute_form_target_s_host_wins_over_the_host_field() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let plain = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[[listener]]\nname = \"main\"\n\
         listen = \"127.0.0.1:0\"\n\n[[pool]]\nname = \"a\"\n[[pool.backend]]\n\
         address = \"{}\"\n\n[[pool]]\nname = \"b\"\n[[pool.backend]]\naddress = \"{}\"\n\n\
         [[route]]\nhost = \"b.example\"\npool = \"b\"\n\n[[route]]\npool = \"a\"\n",
        a.addr, b.addr
    );
    let request = b"GET http://b.example/headers HTTP/1.1\r\nHost: a.example\r\n\r\n";
    let t = Tango::start(&plain);
    let mut c = Raw::connect(t.addr()).await;
    c.send(request).await;
    let answers = vec![c.response().await];
    let dir = tempfile::tempdir().unwrap();
    let (cfg, ck) = crate::protocols::tls_config(&plain, dir.path());
    let t = Tango::start(&cfg);
    let mut c = Raw::new(crate::protocols::tls_connect(&t, &ck, b"http/1.1").await);
    c.send(request).await;
    for (i, answer) in answers.into_iter().chain([c.response().await]).enumerate() {
        let (status, body) = answer.expect("an answer");
        assert_eq!(status, 200, "{i}");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["host"], "b.example", "{i}: {v}");
        assert_eq!(v["x-forwarded-host"], "b.example", "{i}: {v}");
    }
    assert_eq!((a.hits(), b.hits()), (0, 2));
}

#[tokio::test]
async fn a_response_without_a_length_is_read_to_the_backends_close() {
    let b = Canned::start().await;
    let t = Tango::start(&config("", &[("a", b.addr, 1)]));
    // HTTP/1.1: framed as chunks, and the client's connection goes on.
    let mut c = Raw::connect(t.addr()).await;
    c.send(b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(
        c.response().await,
        Some((200, b"hello, until the end".to_vec()))
    );
    c.send(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(c.response().await, Some((200, b"/next".to_vec())));
    // HTTP/1.0: as it came, and the connection closes after it.
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    s.write_all(b"GET /close HTTP/1.0\r\n\r\n").await.unwrap();
    let got = read_n(&mut s, usize::MAX).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.0 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nhello, until the end"), "{text}");
    assert!(
        !text.to_ascii_lowercase().contains("transfer-encoding"),
        "{text}"
    );
}

#[tokio::test]
async fn head_and_304_answers_have_no_body() {
    let a = Backend::start("a").await;
    let t = Tango::start(&config("", &[("a", a.addr, 1)]));
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    s.write_all(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // The HEAD answer is a head alone (with the length a GET would have); the next
    // bytes are the GET's answer.
    let got = read_until(&mut s, |b| b.ends_with(b"\r\n\r\na\n")).await;
    let text = String::from_utf8_lossy(&got).into_owned();
    let heads: Vec<&str> = text.split("HTTP/1.1 200 OK\r\n").collect();
    assert_eq!(heads.len(), 3, "two answers: {text}");
    assert!(heads[1].ends_with("\r\n\r\n"), "no body after HEAD: {text}");
    assert!(heads[1].contains("content-length: 2\r\n"), "{text}");
    drop(s);

    let b = Canned::start().await;
    let t = Tango::start(&config("", &[("b", b.addr, 1)]));
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    s.write_all(b"GET /304 HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let got = read_until(&mut s, |b| b.ends_with(b"/after")).await;
    let text = String::from_utf8_lossy(&got).into_owned();
    let (first, second) = text
        .split_once("HTTP/1.1 200 OK\r\n")
        .unwrap_or_else(|| panic!("two answers: {text}"));
    assert!(first.starts_with("HTTP/1.1 304 Not Modified\r\n"), "{text}");
    assert!(first.ends_with("\r\n\r\n"), "no body after 304: {text}");
    assert!(first.contains("etag: \"v1\"\r\n"), "{text}");
    assert!(second.ends_with("\r\n\r\n/after"), "{text}");
}

#[tokio::test]
async fn a_response_larger_than_any_buffer_arrives_byte_for_byte() {
    let b = Canned::start().await;
    let t = Tango::start(&config(
        "try_timeout = \"60s\"\ntimeout = \"60s\"",
        &[("b", b.addr, 1)],
    ));
    let want = big_body();
    let mut c = Raw::connect(t.addr()).await;
    for path in ["/big", "/chunked", "/big"] {
        c.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await;
        let (status, body) = tokio::time::timeout(Duration::from_secs(60), c.response())
            .await
            .expect("in time")
            .expect("a response");
        assert_eq!(status, 200, "{path}");
        assert_eq!(body.len(), want.len(), "{path}");
        assert!(body == want, "{path}: the body differs");
    }
}

/// HTTP/2 and TLS clients (served by hyper) get their answers through the same
/// upstream exchange: a body without a length, a chunked 8 MiB one and a sized 8 MiB
/// one arrive whole, and the upstream connections are reused.
#[tokio::test]
async fn h2_and_tls_clients_get_whole_bodies_from_the_same_exchange() {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let b = Canned::start().await;
    let dir = tempfile::tempdir().unwrap();
    let plain = config(
        "try_timeout = \"60s\"\ntimeout = \"60s\"",
        &[("b", b.addr, 1)],
    );
    let (cfg, ck) = crate::protocols::tls_config(&plain, dir.path());
    let t = Tango::start(&cfg);
    let want = big_body();
    let tls = crate::protocols::tls_connect(&t, &ck, b"h2").await;
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let tls = crate::protocols::tls_connect(&t, &ck, b"http/1.1").await;
    let (mut h1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    for (path, expected) in [
        ("/close", b"hello, until the end".to_vec()),
        ("/chunked", want.clone()),
        ("/big", want.clone()),
        ("/304", Vec::new()),
    ] {
        let req = || {
            http::Request::get(format!("https://localhost{path}"))
                .header("host", "localhost")
                .body(Full::new(bytes::Bytes::new()))
                .unwrap()
        };
        let over_h2 = h2.send_request(req()).await.expect("h2 answer");
        // hyper's HTTP/1 client sends the origin form.
        let mut r1 = req();
        *r1.uri_mut() = path.parse().unwrap();
        let over_h1 = h1.send_request(r1).await.expect("TLS HTTP/1.1 answer");
        for resp in [over_h2, over_h1] {
            let status = resp.status().as_u16();
            let body = tokio::time::timeout(Duration::from_secs(60), resp.into_body().collect())
                .await
                .expect("in time")
                .expect("a whole body")
                .to_bytes();
            assert_eq!(status, if path == "/304" { 304 } else { 200 }, "{path}");
            assert_eq!(body.len(), expected.len(), "{path}");
            assert!(body == expected, "{path}: the body differs");
        }
    }
}
