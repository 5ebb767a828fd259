//! HTTP/1.1 over TLS at the edges of a connection: requests pipelined in one write
//! come back answered in order on a connection that stays open; a TLS handshake that
//! never finishes, however slowly its bytes come, is given up at the header timeout;
//! a handshake a client fails is counted on the listener, one that is only closed is not.

use crate::backend::Backend;
use crate::support::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// tango with a TLS listener (`listener_extra` added to it) in front of `backend`, the
/// certificate its clients trust, and the directory of its files.
fn tls_front(
    backend: std::net::SocketAddr,
    listener_extra: &str,
) -> (Tango, rcgen::CertifiedKey, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    let cfg = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[[listener]]\nname = \"main\"\n\
         listen = \"127.0.0.1:0\"\ntls = {{ cert = \"{}\", key = \"{}\" }}\n{listener_extra}\n\n\
         [[pool]]\nname = \"p\"\n\n[[pool.backend]]\nname = \"a\"\naddress = \"{backend}\"\n",
        cert.display(),
        key.display()
    );
    (Tango::start(&cfg), ck, dir)
}

/// Each response on `bytes` (a connection's whole answer): status and body, by
/// Content-Length.
fn responses(mut bytes: &[u8]) -> Vec<(u16, String)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut r = httparse::Response::new(&mut headers);
        let Ok(httparse::Status::Complete(n)) = r.parse(bytes) else {
            panic!("not a response: {}", String::from_utf8_lossy(bytes));
        };
        let len: usize = r
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .map_or(0, |h| {
                std::str::from_utf8(h.value).unwrap().parse().unwrap()
            });
        let body = String::from_utf8_lossy(&bytes[n..n + len]).into_owned();
        out.push((r.code.unwrap(), body));
        bytes = &bytes[n + len..];
    }
    out
}

#[tokio::test]
async fn requests_pipelined_over_tls_are_answered_in_order_and_the_connection_kept() {
    let b = Backend::start("a").await;
    let (t, ck, _dir) = tls_front(b.addr, "");
    let mut io = crate::protocols::tls_connect(&t, &ck, b"http/1.1").await;
    let pipelined = "GET /first HTTP/1.1\r\nHost: x\r\n\r\n\
                     POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
                     GET /slow?ms=200 HTTP/1.1\r\nHost: x\r\n\r\n\
                     GET /last HTTP/1.1\r\nHost: x\r\n\r\n";
    io.write_all(pipelined.as_bytes()).await.unwrap();
    // Kept alive: one more request on it after the four, which closes it.
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while responses_complete(&got) < 4 {
        let n = tokio::time::timeout(Duration::from_secs(10), io.read(&mut buf))
            .await
            .expect("answers in time")
            .unwrap();
        assert!(n > 0, "closed after {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    io.write_all(b"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), io.read_to_end(&mut got))
        .await
        .expect("the last answer in time")
        .unwrap();
    let want = ["a\n", "5", "a\n", "a\n", "a\n"].map(|b| (200, b.to_string()));
    assert_eq!(responses(&got), want);
}

/// How many whole responses `bytes` holds (each with a Content-Length).
fn responses_complete(mut bytes: &[u8]) -> usize {
    let mut n = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut r = httparse::Response::new(&mut headers);
        let Ok(httparse::Status::Complete(head)) = r.parse(bytes) else {
            return n;
        };
        let len: usize = r
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .map_or(0, |h| {
                std::str::from_utf8(h.value).unwrap().parse().unwrap()
            });
        if bytes.len() < head + len {
            return n;
        }
        bytes = &bytes[head + len..];
        n += 1;
    }
}

/// A client that begins a TLS handshake and never finishes it (here, a ClientHello sent
/// a byte at a time, slower than it could ever end): closed at the header timeout,
/// though it keeps sending and the first-byte timeout is far off.
#[tokio::test]
async fn a_tls_handshake_that_never_finishes_is_closed_at_the_header_timeout() {
    let b = Backend::start("a").await;
    let (t, _ck, _dir) = tls_front(
        b.addr,
        "header_timeout = \"1s\"\nfirst_byte_timeout = \"30s\"",
    );
    let mut s = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    // A handshake record announcing 512 bytes, of which a few come each 100 ms.
    let hello = [
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    let started = Instant::now();
    let mut closed = false;
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(5) {
        let byte = hello.get(sent).copied().unwrap_or(0x42);
        if s.write_all(&[byte]).await.is_err() {
            closed = true;
            break;
        }
        sent += 1;
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            _ => {}
        }
    }
    assert!(
        closed,
        "the handshake was still open after {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed only after {:?}",
        started.elapsed()
    );
}

/// The listener's failed-handshake count as `/metrics` shows it.
async fn handshake_failures(t: &Tango) -> String {
    let (status, text) = get(&client(), &t.admin_url("/metrics")).await;
    assert_eq!(status, 200);
    let series = "tango_tls_handshake_failures_total{listener=\"main\"} ";
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .unwrap_or_else(|| panic!("no {series}in:\n{text}"))
        .to_string()
}

/// Connect to `t`, send `bytes` and read until tango closes (bounded by 5 s).
async fn until_closed(t: &Tango, bytes: &[u8]) {
    let mut s = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    if bytes.is_empty() {
        s.shutdown().await.unwrap();
    } else {
        s.write_all(bytes).await.unwrap();
    }
    let mut sink = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut sink)).await;
    assert!(read.is_ok(), "tango did not close the connection");
}

#[tokio::test]
async fn a_failed_tls_handshake_is_counted_once_and_a_silent_close_not_at_all() {
    let b = Backend::start("a").await;
    let (t, _ck, _dir) = tls_front(b.addr, "");
    assert_eq!(handshake_failures(&t).await, "0");
    // A client that connects and closes without a byte (a port check) is no failure.
    until_closed(&t, b"").await;
    // Plain HTTP to a TLS port is.
    until_closed(&t, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    // tango closes the socket as it gives up, a moment before it counts.
    let deadline = Instant::now() + Duration::from_secs(5);
    while handshake_failures(&t).await == "0" && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(handshake_failures(&t).await, "1");
}
