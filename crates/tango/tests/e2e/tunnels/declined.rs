//! What follows an upgrade the backend declined is read as the next request, and bytes
//! that cannot begin one (the WebSocket frames a client sent behind its upgrade request,
//! before the answer, or after it) are answered `400` at once, by the engine and over
//! TLS alike, rather than held until the header timeout ends the connection unanswered.

use super::peers::{backend, ends_within, h1_body, h1_request, Front, Io, Path, BOUND};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const UPGRADE_DECLINED: &str =
    "GET /refuse HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n";

/// A masked WebSocket text frame ("ping"), and a line of text that is no request line.
const NOT_HTTP: [&[u8]; 2] = [b"\x81\x84\x01\x02\x03\x04qkmc", b"hello\r\n"];

/// Far longer than a prompt answer takes: without one, the test would wait this long.
const HEADER_TIMEOUT: &str = "header_timeout = \"30s\"";

/// "At once": well within the header timeout.
const PROMPT: Duration = Duration::from_secs(3);

/// The status of the next response head on `io`, if one comes within `within`.
async fn next_status(io: &mut Io, within: Duration) -> Option<u16> {
    let read = async {
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if io.read(&mut b).await.ok()? == 0 {
                return None;
            }
            head.push(b[0]);
        }
        String::from_utf8_lossy(&head).get(9..12)?.parse().ok()
    };
    tokio::time::timeout(within, read).await.ok().flatten()
}

/// `bytes` on `io` are answered `400` at once, and the connection then ends.
async fn refused_at_once(io: &mut Io, what: &str) {
    let started = Instant::now();
    let status = next_status(io, PROMPT).await;
    assert_eq!(
        status,
        Some(400),
        "{what}: no 400 within {:?} ({:?} later)",
        PROMPT,
        started.elapsed()
    );
    assert!(
        ends_within(io, BOUND).await,
        "{what}: still open after the 400"
    );
}

#[tokio::test]
async fn non_http_bytes_behind_a_declined_upgrade_are_answered_400_at_once() {
    let b = backend().await;
    let f = Front::start(b.addr, HEADER_TIMEOUT, "");
    for path in [Path::Engine, Path::TlsH1] {
        for bytes in NOT_HTTP {
            // Sent right behind the request, before the answer came.
            let mut io = f.h1(path).await;
            let req = [UPGRADE_DECLINED.as_bytes(), bytes].concat();
            io.write_all(&req).await.unwrap();
            let what = format!("{path:?}, {bytes:?} behind the request");
            let (status, head) = h1_request(&mut io, "").await;
            assert_eq!(status, 200, "{what}: {head}");
            assert_eq!(h1_body(&mut io, &head).await, "not upgrading\n");
            refused_at_once(&mut io, &what).await;
            // Sent once the answer said there is no tunnel.
            let mut io = f.h1(path).await;
            let (status, head) = h1_request(&mut io, UPGRADE_DECLINED).await;
            assert_eq!(status, 200, "{path:?}: {head}");
            assert_eq!(h1_body(&mut io, &head).await, "not upgrading\n");
            io.write_all(bytes).await.unwrap();
            refused_at_once(&mut io, &format!("{path:?}, {bytes:?} after the answer")).await;
        }
    }
}

#[tokio::test]
async fn non_http_bytes_opening_a_connection_are_answered_400_at_once() {
    let b = backend().await;
    let f = Front::start(b.addr, HEADER_TIMEOUT, "");
    for path in [Path::Engine, Path::TlsH1] {
        for bytes in NOT_HTTP {
            let mut io = f.h1(path).await;
            io.write_all(bytes).await.unwrap();
            refused_at_once(&mut io, &format!("{path:?}, {bytes:?} first")).await;
        }
    }
}
