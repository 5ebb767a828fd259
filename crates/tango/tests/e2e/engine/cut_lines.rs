//! The access log line of an engine request that did not end whole carries the body
//! bytes moved by then, both ways: cut at the end of the drain in the middle of its
//! upload or of its answer, or left by its client in the middle of either.

use crate::scripted::{send, Scripted, Step};
use crate::support::*;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BOUND: Duration = Duration::from_secs(15);

/// Body bytes each test moves before the request stalls.
const SOME: usize = 5000;

/// tango in front of `addr`, logging JSON lines to a file, with `args`.
fn logged(addr: SocketAddr, args: &[&str]) -> (Tango, tempfile::TempDir, PathBuf) {
    start_logged(&config("", &[("a", addr, 1)]), "json", args)
}

/// The JSON line with request id `id`, waiting (while tango runs, or after it exited)
/// until it is there.
async fn line_of(t: &Tango, path: &Path, id: &str) -> Value {
    let deadline = Instant::now() + BOUND;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains(id)) {
            return serde_json::from_str(l).expect("a JSON line");
        }
        assert!(
            Instant::now() < deadline,
            "no line for {id}:\n{text}\n{}",
            t.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A backend that answers a head promising 1 MB, then [`SOME`] bytes of it, then
/// nothing for 30 s.
async fn stalling_answer() -> Scripted {
    Scripted::start(|_| {
        let mut a = b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n".to_vec();
        a.extend_from_slice(&[b'x'; SOME]);
        vec![Step::Send(a), Step::Pause(Duration::from_secs(30))]
    })
    .await
}

/// Read from `s` until [`SOME`] body bytes of the answer have come.
async fn read_some(s: &mut TcpStream) {
    let mut got = Vec::new();
    let done = tokio::time::timeout(BOUND, async {
        loop {
            let head = got.windows(4).position(|w| w == b"\r\n\r\n");
            if head.is_some_and(|h| got.len() >= h + 4 + SOME) {
                return;
            }
            let mut chunk = [0u8; 8192];
            match s.read(&mut chunk).await {
                Ok(n) if n > 0 => got.extend_from_slice(&chunk[..n]),
                _ => panic!("the answer ended early"),
            }
        }
    })
    .await;
    assert!(done.is_ok(), "the answer's first bytes never came");
}

/// A backend that reads what it is sent and never answers: its address, and the body
/// bytes (those after the request's head) it has read so far.
async fn reader() -> (SocketAddr, Arc<AtomicU64>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let got = Arc::new(AtomicU64::new(0));
    let g = got.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let g = g.clone();
            tokio::spawn(async move {
                let (mut head, mut buf) = (Vec::new(), [0u8; 8192]);
                let mut in_body = false;
                while let Ok(n @ 1..) = s.read(&mut buf).await {
                    if in_body {
                        g.fetch_add(n as u64, Relaxed);
                        continue;
                    }
                    head.extend_from_slice(&buf[..n]);
                    if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                        in_body = true;
                        g.fetch_add((head.len() - end - 4) as u64, Relaxed);
                    }
                }
            });
        }
    });
    (addr, got)
}

/// An upload of 1 MB promised, [`SOME`] bytes sent, with request id `id`; returns once
/// the backend (a [`reader`]) has read all of them, so tango has them counted.
async fn stalling_upload(t: &Tango, got: &AtomicU64, id: &str) -> TcpStream {
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    let head = format!(
        "POST /sink HTTP/1.1\r\nHost: x\r\nX-Request-Id: {id}\r\nContent-Length: 1000000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&[b'y'; SOME]).await.unwrap();
    let deadline = Instant::now() + BOUND;
    while got.load(Relaxed) < SOME as u64 {
        assert!(
            Instant::now() < deadline,
            "the body never reached the backend"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    s
}

#[tokio::test]
async fn a_download_cut_by_the_drain_is_logged_with_the_bytes_sent() {
    let b = stalling_answer().await;
    let (mut t, _dir, path) = logged(b.addr, &["--grace", "300ms"]);
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    s.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\nX-Request-Id: cut-down\r\n\r\n")
        .await
        .unwrap();
    read_some(&mut s).await;
    t.signal("TERM");
    assert!(t.wait_exit(BOUND).is_some(), "tango exits");
    let v = line_of(&t, &path, "cut-down").await;
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(v["bytes_out"], SOME as u64, "{v}");
}

#[tokio::test]
async fn an_upload_cut_by_the_drain_is_logged_with_the_bytes_read() {
    let (addr, got) = reader().await;
    let (mut t, _dir, path) = logged(addr, &["--grace", "300ms"]);
    let _s = stalling_upload(&t, &got, "cut-up").await;
    t.signal("TERM");
    assert!(t.wait_exit(BOUND).is_some(), "tango exits");
    let v = line_of(&t, &path, "cut-up").await;
    assert_eq!(v["status"], 0, "{v}");
    assert_eq!(v["bytes_in"], SOME as u64, "{v}");
}

#[tokio::test]
async fn a_client_leaving_mid_upload_is_logged_with_the_bytes_read() {
    let (addr, got) = reader().await;
    let (t, _dir, path) = logged(addr, &[]);
    drop(stalling_upload(&t, &got, "left-up").await);
    let v = line_of(&t, &path, "left-up").await;
    assert_eq!(v["bytes_in"], SOME as u64, "{v}");
}

#[tokio::test]
async fn a_client_leaving_mid_answer_is_logged_with_the_bytes_sent() {
    // The rest of the answer comes after the client has left: writing it fails.
    let b = Scripted::start(|_| {
        let mut a = b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n".to_vec();
        a.extend_from_slice(&[b'x'; SOME]);
        let pause = Step::Pause(Duration::from_millis(300));
        vec![Step::Send(a), pause, send(&[b'z'; 1000000 - SOME])]
    })
    .await;
    let (t, _dir, path) = logged(b.addr, &[]);
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    s.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\nX-Request-Id: left-down\r\n\r\n")
        .await
        .unwrap();
    read_some(&mut s).await;
    drop(s);
    let v = line_of(&t, &path, "left-down").await;
    assert_eq!(v["status"], 200, "{v}");
    let sent = v["bytes_out"].as_u64().unwrap();
    assert!((SOME as u64..1000000).contains(&sent), "{v}");
}
