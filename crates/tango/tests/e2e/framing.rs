//! Requests that are ambiguous to frame get 400 and never reach a backend.

use crate::backend::Backend;
use crate::support::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Send raw bytes; return the status code of the first response (0 if the connection
/// closed without one).
async fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    // tango may close before reading everything; that is an answer too.
    let _ = s.write_all(bytes).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

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
        let (code, text) = raw(t.addr(), bytes).await;
        assert_eq!(code, 400, "{what}: {text}");
    }
    assert_eq!(b.hits(), 0, "a rejected request reached the backend");
    // A well-framed request on the same listener still works.
    let (code, _) = raw(t.addr(), b"POST /sink HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n").await;
    assert_eq!(code, 200);
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
    let (code, text) = raw(t.addr(), big.as_bytes()).await;
    assert_eq!(code, 431, "{text}");
    assert_eq!(b.hits(), 0);
}
