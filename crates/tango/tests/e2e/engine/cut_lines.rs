//! The access log line of an engine request that did not end whole carries the body
//! bytes moved by then, both ways: cut at the end of the drain in the middle of its
//! upload or of its answer, or left by its client in the middle of either.

use crate::backend::Backend;
use crate::scripted::{send, Scripted, Step};
use crate::support::*;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BOUND: Duration = Duration::from_secs(15);

/// Body bytes each test moves before the request stalls.
const SOME: usize = 5000;

/// tango in front of `addr`, logging JSON lines to a file, with `args`.
fn logged(addr: SocketAddr, args: &[&str]) -> (Tango, tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let mut all = vec![
        "--access-log",
        path.to_str().unwrap(),
        "--access-log-format",
        "json",
    ];
    all.extend_from_slice(args);
    let t = Tango::start_with(&config("", &[("a", addr, 1)]), &all);
    (t, dir, path)
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

/// An upload of 1 MB promised, [`SOME`] bytes sent, with request id `id`; returns once
/// the backend has the request.
async fn stalling_upload(t: &Tango, b: &Backend, id: &str) -> TcpStream {
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    let head = format!(
        "POST /sink HTTP/1.1\r\nHost: x\r\nX-Request-Id: {id}\r\nContent-Length: 1000000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&[b'y'; SOME]).await.unwrap();
    let deadline = Instant::now() + BOUND;
    while b.hits() < 1 {
        assert!(Instant::now() < deadline, "the request never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The bytes sent have gone on by the time the backend's body stalls.
    tokio::time::sleep(Duration::from_millis(200)).await;
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
    let b = Backend::start("a").await;
    let (mut t, _dir, path) = logged(b.addr, &["--grace", "300ms"]);
    let _s = stalling_upload(&t, &b, "cut-up").await;
    t.signal("TERM");
    assert!(t.wait_exit(BOUND).is_some(), "tango exits");
    let v = line_of(&t, &path, "cut-up").await;
    assert_eq!(v["status"], 0, "{v}");
    assert_eq!(v["bytes_in"], SOME as u64, "{v}");
}

#[tokio::test]
async fn a_client_leaving_mid_upload_is_logged_with_the_bytes_read() {
    let b = Backend::start("a").await;
    let (t, _dir, path) = logged(b.addr, &[]);
    drop(stalling_upload(&t, &b, "left-up").await);
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
