//! A response body in a transfer coding other than chunked (`gzip, chunked`) goes on
//! as it came, still coded: an HTTP/1.1 client of the engine is told the codings; a
//! client that cannot be told (HTTP/1.0, or hyper's path, which frames bodies itself)
//! gets a `502`, as nginx and Envoy answer such a response, never the coded bytes as if
//! they were the body.

use crate::framing::Raw;
use crate::support::*;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CODED: &[u8] =
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";

/// A backend that answers every request head with `CODED`.
async fn coded_backend() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        got.drain(..end + 4);
                        if s.write_all(CODED).await.is_err() {
                            return;
                        }
                    }
                    match s.read(&mut chunk).await {
                        Ok(n) if n > 0 => got.extend_from_slice(&chunk[..n]),
                        _ => return,
                    }
                }
            });
        }
    });
    (addr, task)
}

/// What tango sends back for `request`, up to its close or a quiet second.
async fn exchange(t: &Tango, request: &[u8]) -> String {
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(1), s.read(&mut chunk)).await {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn a_coded_body_is_named_or_refused() {
    let (addr, _task) = coded_backend().await;
    let t = Tango::start(&config("", &[("a", addr, 1)]));
    let got = exchange(&t, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(got.starts_with("HTTP/1.1 200 "), "{got}");
    assert!(
        got.to_ascii_lowercase()
            .contains("transfer-encoding: gzip, chunked\r\n"),
        "{got}"
    );
    let mut c = Raw::connect(t.addr()).await;
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(c.response().await, Some((200, b"hello".to_vec())));
    let got = exchange(&t, b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(got.starts_with("HTTP/1.0 502 "), "{got}");
    assert!(!got.contains("hello"), "{got}");
    let (status, body) = h2c_get(&t, "/").await;
    assert_eq!(status, 502, "{body}");
}
