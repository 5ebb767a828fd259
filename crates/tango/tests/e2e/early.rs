//! A backend may answer before it has read the whole request body (a `413` to an upload
//! too large, a `401`) and close: the client gets that answer, not a `502`, the backend
//! is not charged with a failure, and its connection is never reused (it would read the
//! rest of the body as the next request). On the engine (plain) and on hyper's path
//! (TLS) alike.

use crate::protocols::{tls_config, tls_connect};
use crate::support::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bounds each wait here; the events awaited come much sooner.
const BOUND: Duration = Duration::from_secs(15);

/// The upload: far more than socket buffers hold, so the backend's close comes while
/// tango is still sending it.
const UPLOAD: usize = 16 << 20;

const TOO_LARGE: &[u8] =
    b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big\n";

/// A backend that reads a request head, answers `413` at once and closes without
/// reading the body (so the close is a reset). Counts the connections it took.
async fn refusing_backend() -> (SocketAddr, Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let conns = Arc::new(AtomicU64::new(0));
    let counted = conns.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            counted.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut chunk = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(n) if n > 0 => head.extend_from_slice(&chunk[..n]),
                        _ => return,
                    }
                }
                let _ = s.write_all(TOO_LARGE).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            });
        }
    });
    (addr, conns, task)
}

/// Send a POST with a large body on `s` (ignoring a write refused once tango closes)
/// while reading what comes back: the response's first bytes, up to its body's end.
async fn upload<S: AsyncRead + AsyncWrite + Send + 'static>(s: S) -> String {
    let (mut rd, mut wr) = tokio::io::split(s);
    let writer = tokio::spawn(async move {
        let head = format!("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: {UPLOAD}\r\n\r\n");
        let _ = wr.write_all(head.as_bytes()).await;
        let piece = vec![b'u'; 64 * 1024];
        for _ in 0..UPLOAD / piece.len() {
            if wr.write_all(&piece).await.is_err() {
                return;
            }
        }
    });
    let mut got = Vec::new();
    let _ = tokio::time::timeout(BOUND, async {
        let mut chunk = [0u8; 4096];
        while !got.ends_with(b"too big\n") && !got.ends_with(b"\n\n") {
            match rd.read(&mut chunk).await {
                Ok(n) if n > 0 => got.extend_from_slice(&chunk[..n]),
                _ => break,
            }
        }
    })
    .await;
    writer.abort();
    String::from_utf8_lossy(&got).into_owned()
}

async fn assert_not_blamed(t: &Tango, path: &str) {
    let v = admin_get(t, "/api/v1/status").await;
    let a = backend_entry(&v, "a");
    assert_eq!(a["errors"], 0, "{path}: the backend answered: {v}");
}

#[tokio::test]
async fn an_answer_before_the_body_is_taken_reaches_the_client() {
    let (addr, conns, _task) = refusing_backend().await;
    let t = Tango::start(&config("max_attempts = 1", &[("a", addr, 1)]));
    for round in 1..=2 {
        let s = TcpStream::connect(t.addr()).await.unwrap();
        let got = upload(s).await;
        assert!(
            got.starts_with("HTTP/1.1 413 ") && got.ends_with("too big\n"),
            "round {round}: {got}"
        );
        assert!(got.contains("connection: close\r\n"), "{got}");
        assert_not_blamed(&t, "engine").await;
    }
    // A connection whose backend stopped reading is never reused.
    assert_eq!(conns.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn over_tls_an_answer_before_the_body_is_taken_reaches_the_client() {
    let (addr, _, _task) = refusing_backend().await;
    let dir = tempfile::tempdir().unwrap();
    let (cfg, ck) = tls_config(&config("max_attempts = 1", &[("a", addr, 1)]), dir.path());
    let t = Tango::start(&cfg);
    let tls = tls_connect(&t, &ck, b"http/1.1").await;
    let got = upload(tls).await;
    assert!(
        got.starts_with("HTTP/1.1 413 ") && got.ends_with("too big\n"),
        "{got}"
    );
    assert_not_blamed(&t, "tls").await;
}
