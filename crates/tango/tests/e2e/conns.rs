//! Connection hygiene: silent connections, idle connections at the connection limit,
//! and clients that stop reading.

use crate::backend::Backend;
use crate::support::*;
use bytes::Bytes;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bounds each wait in this module; the events awaited come much sooner.
const BOUND: Duration = Duration::from_secs(15);

/// `extra` lines at the end of the (one) listener's section.
fn with_listener(cfg: &str, extra: &str) -> String {
    cfg.replacen("\n\n[[pool]]", &format!("\n{extra}\n\n[[pool]]"), 1)
}

/// Wait for tango to close `s` (end of stream or reset), reading whatever comes first.
async fn closed(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let r = tokio::time::timeout(BOUND, async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(r.is_ok(), "connection still open after {BOUND:?}");
    got
}

/// One request on a keep-alive connection; returns the status line.
async fn request(s: &mut TcpStream) -> String {
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(BOUND, s.read(&mut buf))
        .await
        .expect("response in time")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    text.lines().next().unwrap_or_default().to_string()
}

/// Write `chunk` again and again without ever reading, until the connection fails (the
/// awaited event) or `BOUND` passes. Returns the error.
async fn write_until_closed(s: &mut TcpStream, chunk: &[u8]) -> std::io::Error {
    let r = tokio::time::timeout(BOUND, async {
        // 100,000 chunks is far more than the socket buffers on both sides hold.
        for _ in 0..100_000 {
            if let Err(e) = s.write_all(chunk).await {
                return Some(e);
            }
        }
        None
    })
    .await;
    match r {
        Ok(Some(e)) => e,
        Ok(None) => panic!("every write was taken: the client was never made to wait"),
        Err(_) => panic!("still open after {BOUND:?} of not reading"),
    }
}

#[tokio::test]
async fn silent_connections_at_the_cap_make_room_for_a_request() {
    const CAP: usize = 2000;
    // Each silent connection is a descriptor here as well as in tango.
    rlimit::increase_nofile_limit(u64::MAX).expect("raise the open-file limit");
    let b = Backend::start("a").await;
    // One worker: several accept from queues of their own, so across them connections
    // are admitted in nearly, not exactly, the order they arrived in.
    let t = Tango::start_with(
        &with_listener(
            &config("", &[("a", b.addr, 1)]),
            &format!(
                "max_connections = {CAP}\nfirst_byte_timeout = \"60s\"\nheader_timeout = \"60s\""
            ),
        ),
        &["--workers", "1"],
    );
    let mut silent = Vec::with_capacity(CAP);
    for _ in 0..CAP {
        silent.push(TcpStream::connect(t.addr()).await.expect("connect"));
    }
    // One worker accepts in arrival order, so by the time it sees this request every
    // silent connection is open and the listener is at its cap.
    let c = client();
    let r = tokio::time::timeout(Duration::from_secs(2), get(&c, &t.url("/"))).await;
    let (status, body) = r.expect("a response within 2 s");
    assert_eq!((status, body.as_str()), (200, "a\n"));
    // The room was made by closing the connection silent longest: the first one.
    assert_eq!(closed(&mut silent[0]).await, b"");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_makes_room_at_the_cap() {
    let b = Backend::start("a").await;
    let t = Tango::start(&with_listener(
        &config("", &[("a", b.addr, 1)]),
        "max_connections = 2",
    ));
    let mut a = TcpStream::connect(t.addr()).await.unwrap();
    let mut k = TcpStream::connect(t.addr()).await.unwrap();
    assert_eq!(request(&mut a).await, "HTTP/1.1 200 OK");
    assert_eq!(request(&mut k).await, "HTTP/1.1 200 OK");
    // Both are idle between requests: a third client is served, not refused.
    let c = client();
    let r = tokio::time::timeout(Duration::from_secs(2), get(&c, &t.url("/"))).await;
    assert_eq!(r.expect("a response within 2 s").0, 200);
    // One of the two idle connections was closed for it; the other still serves.
    let (gone, kept) = tokio::select! {
        got = closed(&mut a) => (got, &mut k),
        got = closed(&mut k) => (got, &mut a),
    };
    assert_eq!(gone, b"");
    assert_eq!(request(kept).await, "HTTP/1.1 200 OK");
}

#[tokio::test]
async fn a_response_still_being_delivered_is_not_cut_to_make_room() {
    const BODY: usize = 64 << 20;
    let b = Backend::start("a").await;
    let t = Tango::start(&with_listener(
        &config("", &[("a", b.addr, 1)]),
        "max_connections = 1",
    ));
    let mut a = TcpStream::connect(t.addr()).await.unwrap();
    a.write_all(
        format!("GET /source?n={BODY} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    // The response has begun; far more of it than the socket buffers hold is still to come.
    let mut got = vec![0u8; 4096];
    let n = tokio::time::timeout(BOUND, a.read(&mut got))
        .await
        .expect("response begins")
        .unwrap();
    got.truncate(n);
    // Nothing is idle: the newcomer is refused. It is answered at accept, before any
    // request is read, so the client reads the answer without sending one (an HTTP
    // client would take a response before its request as a protocol error).
    let mut newcomer = TcpStream::connect(t.addr()).await.unwrap();
    let refused = closed(&mut newcomer).await;
    assert!(
        refused.starts_with(b"HTTP/1.1 503 "),
        "{}",
        String::from_utf8_lossy(&refused)
    );
    // And the response arrives whole.
    got.extend(closed(&mut a).await);
    let text_end = &got[got.len().saturating_sub(5)..];
    assert_eq!(text_end, b"0\r\n\r\n", "chunked body ends properly");
    assert!(got.len() > BODY, "{} bytes", got.len());
}

#[tokio::test]
async fn a_connection_silent_past_the_first_byte_timeout_is_closed() {
    let b = Backend::start("a").await;
    let t = Tango::start(&with_listener(
        &config("", &[("a", b.addr, 1)]),
        "first_byte_timeout = \"300ms\"\nheader_timeout = \"10s\"\nidle_timeout = \"60s\"",
    ));
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    assert_eq!(closed(&mut s).await, b"");
    // The first byte in time, the rest of the head later: the header timeout applies.
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    s.write_all(b"G").await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    s.write_all(b"ET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let got = closed(&mut s).await;
    let text = String::from_utf8_lossy(&got);
    assert_eq!(text.lines().next(), Some("HTTP/1.1 200 OK"), "{text}");
    assert_eq!(b.hits(), 1);
}

#[tokio::test]
async fn a_tls_connection_silent_after_its_handshake_is_closed() {
    let b = Backend::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let (cfg, ck) = crate::protocols::tls_config(&config("", &[("a", b.addr, 1)]), dir.path());
    let t = Tango::start(&with_listener(
        &cfg,
        "first_byte_timeout = \"300ms\"\nheader_timeout = \"10s\"",
    ));
    let mut tls = crate::protocols::tls_connect(&t, &ck, b"http/1.1").await;
    let mut buf = [0u8; 64];
    let r = tokio::time::timeout(BOUND, tls.read(&mut buf)).await;
    assert!(
        matches!(r, Ok(Ok(0)) | Ok(Err(_))),
        "still open after {BOUND:?}: {r:?}"
    );
}

#[tokio::test]
async fn an_http1_client_that_pipelines_and_never_reads_is_closed() {
    let b = Backend::start("a").await;
    let t = Tango::start(&with_listener(
        &config("", &[("a", b.addr, 1)]),
        "send_timeout = \"1s\"\nidle_timeout = \"60s\"\nrequest_timeout = \"60s\"",
    ));
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    // Requests for 4 MiB each, a thousand at a time, never reading an answer.
    let one = b"GET /source?n=4194304 HTTP/1.1\r\nHost: x\r\n\r\n";
    let chunk: Vec<u8> = one.iter().copied().cycle().take(one.len() * 1000).collect();
    assert_reset(write_until_closed(&mut s, &chunk).await);
}

#[tokio::test]
async fn an_h2_client_that_pings_and_never_reads_is_closed() {
    let b = Backend::start("a").await;
    let t = Tango::start(&with_listener(
        &config("", &[("a", b.addr, 1)]),
        "send_timeout = \"1s\"\nidle_timeout = \"60s\"",
    ));
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    // The connection preface and an empty SETTINGS frame, then PING after PING: each
    // one tango must answer with a PING ACK, which the client never reads.
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let ping = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00pingpong";
    let chunk: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 4000)
        .collect();
    assert_reset(write_until_closed(&mut s, &chunk).await);
}

/// HTTP/2's way of not reading: a window of zero. The client answers PINGs and its
/// socket is always read, so no write ever blocks; only the response bodies wait. Past
/// `send_timeout` the connection is closed, and the backend connections its streams
/// held are let go (they were held for as long as the client liked).
#[tokio::test]
async fn an_h2_client_that_never_opens_its_window_is_closed() {
    let b = Backend::start("a").await;
    let t = Tango::start(&with_listener(
        &config("", &[("a", b.addr, 1)]),
        "send_timeout = \"1s\"\nidle_timeout = \"60s\"\nrequest_timeout = \"60s\"",
    ));
    let tcp = TcpStream::connect(t.addr()).await.unwrap();
    let (mut h2, conn) = h2::client::Builder::new()
        .initial_window_size(0)
        .handshake::<_, Bytes>(tcp)
        .await
        .unwrap();
    let driven = tokio::spawn(conn);
    let mut bodies = Vec::new();
    for _ in 0..5 {
        let req = http::Request::get(format!("http://{}/source?n=4194304", t.addr()))
            .body(())
            .unwrap();
        let (resp, _) = h2.send_request(req, true).unwrap();
        let resp = tokio::time::timeout(BOUND, resp).await.unwrap().unwrap();
        assert_eq!(resp.status(), 200);
        bodies.push(resp.into_body());
    }
    assert!(in_flight_becomes(&t, 5, BOUND).await);
    assert!(
        in_flight_becomes(&t, 0, BOUND).await,
        "the streams still held the backend {BOUND:?} after the client stopped reading"
    );
    let ended = tokio::time::timeout(BOUND, driven).await;
    assert!(ended.is_ok(), "the connection is still open");
}

/// The write failed because tango closed the connection (abortively, so the kernel
/// dropped what the client never read).
fn assert_reset(e: std::io::Error) {
    assert!(
        matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        "{e:?}"
    );
}
