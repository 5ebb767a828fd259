//! What a backend sends unasked, and that none of it reaches another request: bytes
//! past the end of an answer (a `200` longer than its length, a body after the answer
//! to HEAD or after a `304`), with the answer or after tango has put the connection
//! back in its idle list; a close that came while the connection sat idle, under a
//! request that may not be sent twice; and an endless run of interim (1xx) answers,
//! which ends the try as an invalid answer instead of holding it until `try_timeout`.
//!
//! The backends here are driven by hand, byte for byte, from the test: each step waits
//! for the one before it (a connection accepted, a request read, an answer received,
//! the backend's bytes acknowledged by tango's side), never for a pause.

use crate::framing::Raw;
use crate::scripted::one_worker;
use crate::support::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bounds each wait here; the events awaited come much sooner.
const BOUND: Duration = Duration::from_secs(10);

/// The next connection tango opens to the backend listening on `l`.
async fn accept(l: &TcpListener) -> TcpStream {
    let (s, _) = tokio::time::timeout(BOUND, l.accept())
        .await
        .expect("tango connects in time")
        .unwrap();
    s
}

/// The next request's line on `s`, its head and its body (by Content-Length) read;
/// `None` when the connection ends first.
async fn request(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(n)) = req.parse(&buf) {
            let line = format!("{} {}", req.method?, req.path?);
            let len: usize = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < n + len {
                fill(s, &mut buf).await?;
            }
            return Some(line);
        }
        fill(s, &mut buf).await?;
    }
}

async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 4096];
    match tokio::time::timeout(BOUND, s.read(&mut chunk)).await {
        Ok(Ok(n)) if n > 0 => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
        _ => None,
    }
}

/// Wait until the peer has acknowledged everything `s` sent, its FIN too when it shut
/// its writing side: then those bytes, or that end, are in tango's socket. The kernel
/// tells no event for it, so its table of TCP sockets is read until it says so (a
/// loopback peer acknowledges at once, unless the machine is busy). A socket tango
/// reset has left the table: tango had its bytes, unread, when it closed.
async fn acked(s: &TcpStream) {
    let (local, peer) = (s.local_addr().unwrap(), s.peer_addr().unwrap());
    let key = format!(
        "0100007F:{:04X} 0100007F:{:04X} ",
        local.port(),
        peer.port()
    );
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        // "st tx_queue:rx_queue ...": 04 is FIN_WAIT1 (the FIN not acknowledged yet).
        let row = table.lines().find_map(|l| {
            let row = l.trim_start().split_once(": ")?.1.strip_prefix(&key)?;
            Some(row[..2] != *"04" && row[3..].starts_with("00000000:"))
        });
        match row {
            Some(true) => return,
            // The table is read in pieces while it changes, so a row may be missed.
            None if s.take_error().unwrap().is_some() => return,
            _ => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not acknowledged in time: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A fake answer a broken backend sends after its real one.
const STRAY: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray";

/// Each case: the request, the backend's answer, whether the fake answer comes in the
/// same write (already in hand when the answer ends) or later, and the status the
/// client gets.
const LATE: [(&str, &[u8], bool, u16); 4] = [
    (
        "GET /long",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        false,
        200,
    ),
    (
        "GET /together",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray",
        true,
        200,
    ),
    (
        "HEAD /head",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
        false,
        200,
    ),
    (
        "GET /304",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
        false,
        304,
    ),
];

/// A client's connection: plain (the engine) or TLS (hyper's side).
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// Each client path: tango with `cfg` (its pool's one backend) on one worker, and how
/// to connect to it.
struct Path {
    t: Tango,
    /// The listener's certificate, for hyper's side; `None` for the engine.
    tls: Option<rcgen::CertifiedKey>,
    _dir: Option<tempfile::TempDir>,
}

impl Path {
    fn both(cfg: &str) -> [Path; 2] {
        let dir = tempfile::tempdir().unwrap();
        let (tls_cfg, ck) = crate::protocols::tls_config(cfg, dir.path());
        [
            Path {
                t: one_worker(cfg),
                tls: None,
                _dir: None,
            },
            Path {
                t: one_worker(&tls_cfg),
                tls: Some(ck),
                _dir: Some(dir),
            },
        ]
    }

    async fn connect(&self) -> Raw<Box<dyn Io>> {
        match &self.tls {
            None => Raw::new(Box::new(TcpStream::connect(self.t.addr()).await.unwrap())),
            Some(ck) => Raw::new(Box::new(
                crate::protocols::tls_connect(&self.t, ck, b"http/1.1").await,
            )),
        }
    }

    fn name(&self) -> &'static str {
        if self.tls.is_some() {
            "TLS"
        } else {
            "plain"
        }
    }
}

/// The backend answers, the client has the answer (so tango has read all of it and is
/// done with the connection), and only then the backend sends more: a fake answer
/// that, read as the next request's, would hand one client's bytes to another. The
/// next request goes on a new connection, and gets its own answer; so too when the
/// fake answer came with the real one. On the engine and on hyper's side.
#[tokio::test]
async fn bytes_a_backend_sends_late_past_its_answer_are_never_the_next_answer() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cfg = config("max_attempts = 1", &[("a", l.local_addr().unwrap(), 1)]);
    for p in Path::both(&cfg) {
        for (line, answer, together, status) in LATE {
            let line_said = format!("{} {line}", p.name());
            let mut c = p.connect().await;
            c.send(format!("{line} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await;
            let mut b = accept(&l).await;
            assert_eq!(request(&mut b).await.as_deref(), Some(line));
            b.write_all(answer).await.unwrap();
            if line.starts_with("GET /") && status == 200 {
                assert_eq!(c.response().await, Some((200, b"hello".to_vec())));
            } else {
                assert_eq!(c.status().await, Some(status), "{line_said}");
            }
            if !together {
                // In tango's socket before the next request leaves the client.
                b.write_all(STRAY).await.unwrap();
                acked(&b).await;
            }
            c.send(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n").await;
            // A new connection carries it; the old one sees nothing more.
            let mut fresh = tokio::select! {
                s = accept(&l) => s,
                r = request(&mut b) => {
                    assert_eq!(r, None, "{line_said}: the next request came on the same connection");
                    accept(&l).await
                }
            };
            assert_eq!(request(&mut fresh).await.as_deref(), Some("GET /next"));
            // Not kept: the next case's request opens a connection of its own.
            let real = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 4\r\n\r\nreal";
            fresh.write_all(real).await.unwrap();
            assert_eq!(
                c.response().await,
                Some((200, b"real".to_vec())),
                "{line_said}: the next request's own answer"
            );
        }
    }
}

/// The backend answers one request, saying it keeps the connection, and then closes it:
/// its close is in tango's socket, the connection idle in tango's list, before the next
/// request comes. A POST (which is never sent twice) then goes on a new connection
/// instead of meeting the close and failing. On the engine and on hyper's side.
#[tokio::test]
async fn a_post_never_takes_a_connection_the_backend_closed_while_idle() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cfg = config("max_attempts = 1", &[("a", l.local_addr().unwrap(), 1)]);
    for p in Path::both(&cfg) {
        let mut c = p.connect().await;
        for round in 0..3 {
            let said = format!("{} {round}", p.name());
            c.send(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n").await;
            let mut b = accept(&l).await;
            assert_eq!(request(&mut b).await.as_deref(), Some("GET /first"));
            let ok = b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok";
            b.write_all(ok).await.unwrap();
            assert_eq!(c.response().await, Some((200, b"ok".to_vec())), "{said}");
            // The FIN in tango's socket before the POST leaves the client.
            b.shutdown().await.unwrap();
            acked(&b).await;
            c.send(b"POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
                .await;
            let mut fresh = tokio::select! {
                s = accept(&l) => s,
                status = c.status() => panic!("{said}: answered {status:?} without a new connection"),
            };
            assert_eq!(request(&mut fresh).await.as_deref(), Some("POST /post"));
            let made =
                b"HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Length: 4\r\n\r\nmade";
            fresh.write_all(made).await.unwrap();
            assert_eq!(c.response().await, Some((201, b"made".to_vec())), "{said}");
        }
        let v = admin_get(&p.t, "/api/v1/status").await;
        assert_eq!(backend_entry(&v, "a")["errors"], 0, "{}: {v}", p.name());
    }
}

/// The pool's one backend listens on `l`; it may keep an answer waiting 8 s.
fn flood_config(l: &TcpListener) -> String {
    config(
        "max_attempts = 1\ntry_timeout = \"8s\"",
        &[("a", l.local_addr().unwrap(), 1)],
    )
}

/// A request for `/flood` is read from the next connection to `l`, and answered with a
/// thousand interim answers and nothing else; the connection is returned, still open.
async fn flood(l: &TcpListener) -> TcpStream {
    let mut b = accept(l).await;
    assert_eq!(request(&mut b).await.as_deref(), Some("GET /flood"));
    let one = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n";
    // tango may close the connection before it has taken them all.
    let _ = b.write_all(&one.repeat(1000)).await;
    b
}

const FLOOD: &[u8] = b"GET /flood HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

/// A thousand interim answers, and then nothing: the try ends at the cap on interim
/// answers as an invalid answer (`502`, charged to the backend), not at `try_timeout`,
/// and the client is passed no more interim answers than the cap.
#[tokio::test]
async fn an_endless_run_of_interim_answers_is_an_invalid_answer() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let t = one_worker(&flood_config(&l));
    let client = tokio::spawn(crate::scripted::exchange(t.addr(), FLOOD));
    let _b = flood(&l).await;
    let got = tokio::time::timeout(BOUND, client).await.unwrap().unwrap();
    let interim = got.matches("HTTP/1.1 103 ").count();
    assert!(interim <= 32, "{interim} interim answers passed on");
    let last = got.rsplit("HTTP/1.1 ").next().unwrap_or("");
    let end = &got[got.len().saturating_sub(300)..];
    assert!(last.starts_with("502 "), "{end}");
    let v = admin_get(&t, "/api/v1/status").await;
    assert_eq!(backend_entry(&v, "a")["errors"], 1, "{v}");
}

/// The same on hyper's side (a TLS client), which passes no interim answers on.
#[tokio::test]
async fn an_endless_run_of_interim_answers_is_an_invalid_answer_over_tls() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cfg, ck) = crate::protocols::tls_config(&flood_config(&l), dir.path());
    let t = one_worker(&cfg);
    let mut c = crate::protocols::tls_connect(&t, &ck, b"http/1.1").await;
    c.write_all(FLOOD).await.unwrap();
    let _b = flood(&l).await;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(BOUND, c.read_to_end(&mut got)).await;
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 502 "), "{got}");
    let v = admin_get(&t, "/api/v1/status").await;
    assert_eq!(backend_entry(&v, "a")["errors"], 1, "{v}");
}
