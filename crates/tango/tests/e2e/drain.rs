//! Graceful shutdown as an engine client sees it: idle keep-alive connections closed
//! at once, requests in flight answered with `Connection: close`, pipelined requests
//! never lost, uploads finished; a second signal and the end of the grace period cut
//! what is left; a listener a reload removes drains its connections.

use crate::backend::Backend;
use crate::support::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bounds each wait; the events awaited come much sooner.
const BOUND: Duration = Duration::from_secs(15);

/// How a read of the connection ended.
#[derive(Debug, PartialEq)]
enum End {
    /// The client read an orderly end of the stream.
    Eof,
    /// The connection was reset.
    Reset,
    /// Nothing within the bound.
    Open,
}

/// Read until the connection ends (or `within`): what came, and how it ended.
async fn read_to_end(s: &mut TcpStream, within: Duration) -> (String, End) {
    let mut got = Vec::new();
    let mut chunk = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), End::Open),
            Ok(Ok(0)) => return (String::from_utf8_lossy(&got).into_owned(), End::Eof),
            Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
            Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), End::Reset),
        }
    }
}

/// One whole response with a length on `s`: its head (lower case) and body.
async fn response(s: &mut TcpStream) -> (String, String) {
    let mut got = Vec::new();
    let mut chunk = [0u8; 8192];
    let read = async {
        loop {
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                let len = (head.lines())
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or_else(|| panic!("a length: {head}"));
                if got.len() >= end + 4 + len {
                    let body = String::from_utf8_lossy(&got[end + 4..end + 4 + len]);
                    return (head, body.into_owned());
                }
            }
            let n = s.read(&mut chunk).await.expect("read");
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(BOUND, read)
        .await
        .expect("an answer in time")
}

/// A keep-alive connection to `addr` that has been answered once.
async fn answered_once(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = response(&mut s).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    s
}

/// Wait until the backend has had `n` requests.
async fn hits(b: &Backend, n: u64) {
    let deadline = Instant::now() + BOUND;
    while b.hits() < n {
        assert!(Instant::now() < deadline, "requests never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Done within `secs` seconds of `started`: far sooner than the idle timeout or grace
/// period the behaviour under test would otherwise wait for (tens of seconds).
fn well_before(started: Instant, secs: u64) {
    let took = started.elapsed();
    assert!(took < Duration::from_secs(secs), "took {took:?}");
}

fn exits_cleanly(t: &mut Tango) {
    let status = t.wait_exit(BOUND).expect("tango exits");
    assert!(status.success(), "{status:?}\n{}", t.log());
}

/// An idle keep-alive connection is closed as the drain begins, not after the idle
/// timeout, and tango exits at once.
#[tokio::test]
async fn sigterm_closes_idle_keep_alive_connections_at_once() {
    let b = Backend::start("a").await;
    let mut t = Tango::start(&config("", &[("a", b.addr, 1)]));
    let mut idle = answered_once(t.addr()).await;
    let started = Instant::now();
    t.signal("TERM");
    let (got, end) = read_to_end(&mut idle, BOUND).await;
    assert_eq!((got.as_str(), end), ("", End::Eof));
    well_before(started, 2);
    exits_cleanly(&mut t);
    well_before(started, 3);
}

/// A request in flight at SIGTERM is answered, its response says `Connection: close`,
/// and the connection then closes in order.
#[tokio::test]
async fn a_request_in_flight_is_answered_with_connection_close() {
    let b = Backend::start("a").await;
    let mut t = Tango::start(&config("", &[("a", b.addr, 1)]));
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    s.write_all(b"GET /slow?ms=700 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    hits(&b, 1).await;
    t.signal("TERM");
    let (head, body) = response(&mut s).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("\r\nconnection: close"), "{head}");
    assert_eq!(body, "a\n");
    assert_eq!(read_to_end(&mut s, BOUND).await, (String::new(), End::Eof));
    exits_cleanly(&mut t);
}

/// Two requests pipelined behind each other when the drain begins: the first is
/// answered with `Connection: close`, and the second is neither forwarded nor lost
/// in a reset: the client reads the answer and an orderly close, so it knows to send
/// the second again elsewhere.
#[tokio::test]
async fn a_pipelined_request_behind_the_drain_is_not_lost() {
    let b = Backend::start("a").await;
    let mut t = Tango::start(&config("", &[("a", b.addr, 1)]));
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    s.write_all(
        b"GET /slow?ms=700 HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await
    .unwrap();
    hits(&b, 1).await;
    t.signal("TERM");
    let (head, _) = response(&mut s).await;
    assert!(head.contains("\r\nconnection: close"), "{head}");
    let (rest, end) = read_to_end(&mut s, BOUND).await;
    assert_eq!((rest.as_str(), end), ("", End::Eof));
    assert_eq!(b.hits(), 1, "the second request went nowhere");
    exits_cleanly(&mut t);
}

/// An upload in progress at SIGTERM goes on to its end and is answered.
#[tokio::test]
async fn an_upload_in_progress_finishes() {
    let b = Backend::start("a").await;
    let mut t = Tango::start(&config("", &[("a", b.addr, 1)]));
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    let total = 1_000_000usize;
    s.write_all(
        format!("POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: {total}\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let chunk = vec![b'x'; 100_000];
    s.write_all(&chunk).await.unwrap();
    hits(&b, 1).await;
    t.signal("TERM");
    for _ in 1..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        s.write_all(&chunk).await.unwrap();
    }
    let (head, body) = response(&mut s).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("\r\nconnection: close"), "{head}");
    assert_eq!(body, total.to_string());
    exits_cleanly(&mut t);
}

/// A second SIGTERM (or SIGINT) during the drain ends it at once: the requests still
/// in flight are cut, and the log says so.
#[tokio::test]
async fn a_second_signal_ends_the_drain() {
    for second in ["TERM", "INT"] {
        let b = Backend::start("a").await;
        let mut t = Tango::start_with(&config("", &[("a", b.addr, 1)]), &["--grace", "30s"]);
        let mut s = TcpStream::connect(t.addr()).await.unwrap();
        s.write_all(b"GET /slow?ms=20000 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        hits(&b, 1).await;
        t.signal("TERM");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(t.child.try_wait().unwrap().is_none(), "still draining");
        let started = Instant::now();
        t.signal(second);
        let status = t.wait_exit(BOUND).expect("tango exits");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{second}: {:?}",
            started.elapsed()
        );
        assert!(status.success(), "{status:?}\n{}", t.log());
        let (got, end) = read_to_end(&mut s, BOUND).await;
        assert!(got.is_empty() && end != End::Open, "{got:?} {end:?}");
        let log = t.log();
        assert!(
            log.contains("signalled again during the drain; closing the rest connections=1"),
            "{log}"
        );
    }
}

/// The grace period over with a request still in flight: it is cut, tango exits, and
/// the log says how many connections were cut.
#[tokio::test]
async fn the_grace_period_cuts_what_is_left() {
    let b = Backend::start("a").await;
    let mut t = Tango::start_with(&config("", &[("a", b.addr, 1)]), &["--grace", "500ms"]);
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    s.write_all(b"GET /slow?ms=20000 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    hits(&b, 1).await;
    let started = Instant::now();
    t.signal("TERM");
    let status = t.wait_exit(BOUND).expect("tango exits");
    well_before(started, 3);
    assert!(status.success(), "{status:?}");
    let (got, end) = read_to_end(&mut s, BOUND).await;
    assert!(got.is_empty() && end != End::Open, "{got:?} {end:?}");
    let log = t.log();
    assert!(
        log.contains("grace period over") && log.contains("connections=1"),
        "{log}"
    );
}

/// Two listeners; `keep` decides which of them the second configuration keeps.
fn two_listeners(backend: SocketAddr, keep_b: bool) -> String {
    let b = if keep_b {
        "[[listener]]\nname = \"b\"\nlisten = \"127.0.0.1:0\"\n"
    } else {
        ""
    };
    format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[[listener]]\nname = \"a\"\nlisten = \"127.0.0.1:0\"\n{b}\
         [[pool]]\nname = \"p\"\n[[pool.backend]]\naddress = \"{backend}\"\n\
         [guard]\nenabled = false\nrollback = false\n"
    )
}

/// A reload that removes a listener drains its connections: an idle keep-alive one is
/// closed, one with a request in flight is answered with `Connection: close` and then
/// closed; the listener kept keeps its own.
#[tokio::test]
async fn a_removed_listener_drains_its_connections() {
    let b = Backend::start("a").await;
    let t = Tango::start(&two_listeners(b.addr, true));
    let (a, gone) = (t.listeners[0].1, t.listeners[1].1);
    let mut kept = answered_once(a).await;
    let mut idle = answered_once(gone).await;
    let mut busy = TcpStream::connect(gone).await.unwrap();
    busy.write_all(b"GET /slow?ms=1500 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    hits(&b, 3).await;
    t.write_config(&two_listeners(b.addr, false));
    let (s, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!(s, 200, "{v}");
    let (got, end) = read_to_end(&mut idle, Duration::from_secs(3)).await;
    assert_eq!(
        (got.as_str(), end),
        ("", End::Eof),
        "the idle connection closes"
    );
    let (head, _) = response(&mut busy).await;
    assert!(head.contains("\r\nconnection: close"), "{head}");
    assert_eq!(
        read_to_end(&mut busy, BOUND).await,
        (String::new(), End::Eof)
    );
    kept.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = response(&mut kept).await;
    assert!(
        head.starts_with("http/1.1 200") && !head.contains("connection: close"),
        "{head}"
    );
}

/// An idle keep-alive connection of a listener a reload removed does not hold the
/// drain: SIGTERM closes it at once too.
#[tokio::test]
async fn sigterm_closes_idle_connections_of_a_removed_listener() {
    let b = Backend::start("a").await;
    let mut t = Tango::start_with(&two_listeners(b.addr, true), &["--grace", "30s"]);
    let gone = t.listeners[1].1;
    let mut idle = answered_once(gone).await;
    t.write_config(&two_listeners(b.addr, false));
    let (s, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!(s, 200, "{v}");
    let started = Instant::now();
    t.signal("TERM");
    let (got, end) = read_to_end(&mut idle, BOUND).await;
    assert_eq!((got.as_str(), end), ("", End::Eof));
    exits_cleanly(&mut t);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}\n{}",
        started.elapsed(),
        t.log()
    );
}

/// With several workers, idle keep-alive connections on every worker close at once
/// on SIGTERM.
#[tokio::test]
async fn sigterm_closes_idle_connections_on_every_worker() {
    let b = Backend::start("a").await;
    let mut t = Tango::start_with(&config("", &[("a", b.addr, 1)]), &["--workers", "3"]);
    let mut idle = Vec::new();
    for _ in 0..12 {
        idle.push(answered_once(t.addr()).await);
    }
    let started = Instant::now();
    t.signal("TERM");
    for s in &mut idle {
        assert_eq!(read_to_end(s, BOUND).await, (String::new(), End::Eof));
    }
    exits_cleanly(&mut t);
    well_before(started, 3);
}

/// An idle HTTP/2 (h2c) connection of a listener a reload removes is closed too.
#[tokio::test]
async fn a_removed_listener_closes_its_idle_h2c_connections() {
    use http_body_util::Full;
    let b = Backend::start("a").await;
    let t = Tango::start(&two_listeners(b.addr, true));
    let gone = t.listeners[1].1;
    let tcp = TcpStream::connect(gone).await.unwrap();
    let (mut h2, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    let conn = tokio::spawn(conn);
    let req = http::Request::get(format!("http://{gone}/"))
        .body(Full::new(bytes::Bytes::new()))
        .unwrap();
    let resp = h2.send_request(req).await.expect("an answer");
    assert_eq!(resp.status(), 200);
    t.write_config(&two_listeners(b.addr, false));
    let (s, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!(s, 200, "{v}");
    tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("the connection closes")
        .unwrap()
        .ok();
}
