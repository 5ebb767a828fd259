//! A backend that answers before it has read a large request body (a `413`, with
//! `Connection: close` or without) and then neither reads on nor closes: tango stops
//! sending the body once the backend takes no more and its answer is there, and the
//! client gets that answer at once, not a `504` when the try's time runs out. The
//! backend is not charged with a failure, its connection is never reused, and the rest
//! of the client's body is never read as a request. On the engine (plain) and on
//! hyper's path (TLS) alike.

use crate::protocols::{tls_config, tls_connect};
use crate::scripted::one_worker;
use crate::support::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// Far more than socket buffers hold, so tango's writes upstream block.
const UPLOAD: usize = 16 << 20;

/// The try's time: an answer that waits for it comes far too late.
const TRY: Duration = Duration::from_secs(8);

/// How long the client reads on after the answer.
const AFTER: Duration = Duration::from_secs(1);

/// A request, written over and over as the upload's body: read as requests, any of it
/// would reach the backend.
const SMUGGLED: &[u8] = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";

const CLOSING: &[u8] =
    b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big\n";
const KEEPING: &[u8] = b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\r\ntoo big\n";

/// A backend that reads a request head, answers `answer` at once, then holds the
/// connection for `hold` without reading from it, and closes it. Counts its
/// connections and keeps the request line of every head it read.
struct Holding {
    addr: SocketAddr,
    conns: Arc<AtomicU64>,
    lines: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Holding {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Holding {
    async fn start(answer: &'static [u8], hold: Duration) -> Holding {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let conns = Arc::new(AtomicU64::new(0));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (counted, kept) = (conns.clone(), lines.clone());
        let task = tokio::spawn(async move {
            let mut held = tokio::task::JoinSet::new();
            while let Ok((mut s, _)) = l.accept().await {
                counted.fetch_add(1, Ordering::Relaxed);
                let kept = kept.clone();
                held.spawn(async move {
                    let mut head = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk).await {
                            Ok(n) if n > 0 => head.extend_from_slice(&chunk[..n]),
                            _ => return,
                        }
                    }
                    let line = String::from_utf8_lossy(&head);
                    let line = line.lines().next().unwrap_or_default().to_string();
                    kept.lock().unwrap().push(line);
                    let _ = s.write_all(answer).await;
                    tokio::time::sleep(hold).await;
                });
            }
        });
        Holding {
            addr,
            conns,
            lines,
            task,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

/// Upload `UPLOAD` bytes of `SMUGGLED` on `s` (tango may stop reading them) while
/// reading what comes back: the bytes read, and how long the answer's last byte (`too
/// big\n`) took to come. Reading goes on for a while after the answer (a second answer
/// would come within it), until the connection ends, or until `TRY * 2` passes.
async fn upload<S: AsyncRead + AsyncWrite + Send + 'static>(s: S) -> (String, Option<Duration>) {
    let (mut rd, mut wr) = tokio::io::split(s);
    let writer = tokio::spawn(async move {
        let head = format!("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: {UPLOAD}\r\n\r\n");
        let _ = wr.write_all(head.as_bytes()).await;
        let piece = SMUGGLED.repeat(64 * 1024 / SMUGGLED.len());
        let mut left = UPLOAD;
        while left > 0 {
            let n = left.min(piece.len());
            if wr.write_all(&piece[..n]).await.is_err() {
                return;
            }
            left -= n;
        }
    });
    let start = Instant::now();
    let mut got = Vec::new();
    let mut answered: Option<Duration> = None;
    let mut chunk = [0u8; 4096];
    while start.elapsed() < TRY * 2 {
        let wait = match answered {
            Some(at) => (at + AFTER).saturating_sub(start.elapsed()),
            None => TRY * 2 - start.elapsed(),
        };
        match tokio::time::timeout(wait, rd.read(&mut chunk)).await {
            Ok(Ok(n @ 1..)) => got.extend_from_slice(&chunk[..n]),
            _ => break,
        }
        if answered.is_none() && got.ends_with(b"too big\n") {
            answered = Some(start.elapsed());
        }
    }
    writer.abort();
    (String::from_utf8_lossy(&got).into_owned(), answered)
}

fn assert_answered(got: &str, took: Option<Duration>, case: &str) {
    assert!(got.starts_with("HTTP/1.1 413 "), "{case}: {got:.300}");
    assert_eq!(
        got.matches("HTTP/1.1 ").count(),
        1,
        "{case}: one answer: {got:.600}"
    );
    let took = took.unwrap_or_else(|| panic!("{case}: no whole answer: {got:.300}"));
    assert!(took < TRY / 2, "{case}: the answer took {took:?}");
}

async fn assert_not_blamed(t: &Tango, case: &str) {
    let v = admin_get(t, "/api/v1/status").await;
    assert_eq!(backend_entry(&v, "a")["errors"], 0, "{case}: {v}");
}

#[tokio::test]
async fn an_answer_while_the_body_waits_reaches_the_client_at_once() {
    for (answer, case) in [(CLOSING, "connection: close"), (KEEPING, "keep-alive")] {
        // Held, unread, past the try's time.
        let b = Holding::start(answer, TRY * 3).await;
        let cfg = config(
            &format!("max_attempts = 1\ntry_timeout = \"{}s\"", TRY.as_secs()),
            &[("a", b.addr, 1)],
        );
        let t = one_worker(&cfg);
        for round in 1..=2 {
            let s = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
            let (got, took) = upload(s).await;
            let case = format!("{case}, round {round}");
            assert_answered(&got, took, &case);
            // The rest of the body is unread: the client's connection closes.
            assert!(got.contains("connection: close\r\n"), "{case}: {got:.300}");
            assert_not_blamed(&t, &case).await;
        }
        // A connection whose backend did not take the whole body is never reused.
        assert_eq!(b.conns.load(Ordering::Relaxed), 2, "{case}");
        assert_eq!(b.lines(), ["POST /up HTTP/1.1"; 2], "{case}");
    }
}

#[tokio::test]
async fn over_tls_an_answer_while_the_body_waits_reaches_the_client_at_once() {
    let b = Holding::start(KEEPING, TRY * 3).await;
    let dir = tempfile::tempdir().unwrap();
    let plain = config(
        &format!("max_attempts = 1\ntry_timeout = \"{}s\"", TRY.as_secs()),
        &[("a", b.addr, 1)],
    );
    let (cfg, ck) = tls_config(&plain, dir.path());
    let t = one_worker(&cfg);
    let (got, took) = upload(tls_connect(&t, &ck, b"http/1.1").await).await;
    assert_answered(&got, took, "TLS");
    assert_not_blamed(&t, "TLS").await;
    assert_eq!(b.lines(), ["POST /up HTTP/1.1"], "TLS");
}

/// A backend that reads a request head, sends `first` (an interim answer, or the head
/// of a `2xx` it streams), waits so that tango's writes block, then reads the whole
/// body (by its Content-Length) and ends its answer with the body's length.
async fn reading_backend(first: &'static [u8]) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = vec![0u8; 64 * 1024];
                let end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match s.read(&mut chunk).await {
                        Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                        _ => return,
                    }
                };
                let mut got = buf.len() - end;
                let _ = s.write_all(first).await;
                tokio::time::sleep(Duration::from_millis(300)).await;
                while got < UPLOAD {
                    match s.read(&mut chunk).await {
                        Ok(n) if n > 0 => got += n,
                        _ => return,
                    }
                }
                let text = got.to_string();
                let rest = if first.starts_with(b"HTTP/1.1 1") {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{text}",
                        text.len()
                    )
                } else {
                    format!("{:x}\r\n{text}\r\n0\r\n\r\n", text.len())
                };
                let _ = s.write_all(rest.as_bytes()).await;
            });
        }
    });
    (addr, task)
}

/// Interim answers (a `100 Continue` to the client's `Expect`) and a `2xx` that keeps
/// its connection (a backend that answers as it reads) do not stop the body.
#[tokio::test]
async fn an_interim_answer_or_a_streaming_2xx_lets_the_body_go_on() {
    for first in [
        &b"HTTP/1.1 100 Continue\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        let case = String::from_utf8_lossy(&first[..12]).into_owned();
        let (addr, _task) = reading_backend(first).await;
        let cfg = config("max_attempts = 1", &[("a", addr, 1)]);
        let t = one_worker(&cfg);
        let s = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
        let mut c = crate::framing::Raw::new(s);
        let head = format!(
            "POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {UPLOAD}\r\n\r\n"
        );
        c.send(head.as_bytes()).await;
        // Bounded: a tango that stopped the body would stop reading it too.
        let body = vec![b'u'; UPLOAD];
        let got = match tokio::time::timeout(TRY, c.send(&body)).await {
            Ok(()) => tokio::time::timeout(TRY, c.response()).await.ok().flatten(),
            Err(_) => None,
        };
        let want = Some((200, UPLOAD.to_string().into_bytes()));
        assert_eq!(got, want, "{case}");
    }
}

/// A backend that answers a `413`, then closes with the body unread (a reset), while
/// the client is still sending it. The body's last bytes, written after the reset,
/// fail to go: they are body all the same, and a keep-alive client's next request is
/// only what follows them, never they themselves.
#[tokio::test]
async fn the_body_s_last_bytes_are_never_read_as_a_request_when_their_write_fails() {
    let b = Holding::start(CLOSING, Duration::ZERO).await;
    let t = one_worker(&config("max_attempts = 1", &[("a", b.addr, 1)]));
    let mut s = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    let first = vec![b'u'; 64 * 1024];
    let len = first.len() + SMUGGLED.len();
    let head = format!("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n");
    s.write_all(&[head.as_bytes(), &first].concat())
        .await
        .unwrap();
    // The backend has answered and reset the connection by now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.write_all(SMUGGLED).await.unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(Ok(n @ 1..)) = tokio::time::timeout(AFTER, s.read(&mut chunk)).await {
        got.extend_from_slice(&chunk[..n]);
    }
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 413 "), "{got}");
    assert_eq!(got.matches("HTTP/1.1 ").count(), 1, "one answer: {got}");
    assert_eq!(b.lines(), ["POST /up HTTP/1.1"]);
}
