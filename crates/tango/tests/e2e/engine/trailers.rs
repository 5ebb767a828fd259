//! Trailer sections of chunked bodies through the engine, both ways: only the fields
//! that may be trailers go on (as on hyper's side), whether the section comes in one
//! read or straddles several, from an HTTP/1.1 backend or an HTTP/2 one; a body
//! without trailers goes on as it came.

use crate::support::*;
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BOUND: Duration = Duration::from_secs(15);

/// Fields that must not be trailers, one of each kind, after one that may.
const SECTION: &str = "x-checksum: sum\r\nContent-Length: 99\r\nhost: evil.example\r\n\
    authorization: Basic Zm9v\r\nconnection: close\r\nx-forwarded-for: 6.6.6.6\r\n\
    Set-Cookie: a=b\r\nTrailer: x-checksum\r\ntransfer-encoding: chunked\r\n\r\n";

/// What a recipient must get after the last chunk's `0\r\n`.
const FILTERED: &str = "x-checksum: sum\r\n\r\n";

/// A body of one chunk, `hello`, then the last chunk with [`SECTION`].
fn chunked_body() -> String {
    format!("5\r\nhello\r\n0\r\n{SECTION}")
}

/// A backend that keeps the bytes of each request (up to the end of its chunked body)
/// and answers each with `answer`, written in `pieces` with a pause between.
struct Keeper {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Vec<u8>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Keeper {
    async fn start(answer: Vec<u8>, pieces: usize) -> Keeper {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let kept = got.clone();
        let task = tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(keep(s, kept.clone(), answer.clone(), pieces));
            }
        });
        Keeper { addr, got, task }
    }

    /// The `n`th request's bytes (from 0), once whole.
    async fn request(&self, n: usize) -> String {
        for _ in 0..1500 {
            if let Some(r) = self.got.lock().unwrap().get(n) {
                return String::from_utf8_lossy(r).into_owned();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("request {n} never came whole");
    }
}

async fn keep(mut s: TcpStream, got: Arc<Mutex<Vec<Vec<u8>>>>, answer: Vec<u8>, pieces: usize) {
    let mut buf = Vec::new();
    loop {
        // A head, then a chunked body ending in an empty line (each request here has
        // a trailer section or an empty one, so its body's end is the first empty
        // line after the head's).
        let end = loop {
            let head = buf.windows(4).position(|w| w == b"\r\n\r\n");
            let body = head.and_then(|h| {
                buf[h + 4..]
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map(|e| h + 4 + e + 4)
            });
            if let Some(e) = body {
                break e;
            }
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk).await {
                Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return,
            }
        };
        got.lock().unwrap().push(buf.drain(..end).collect());
        let size = answer.len().div_ceil(pieces);
        for piece in answer.chunks(size) {
            if s.write_all(piece).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
}

/// An answer with the trailer section [`SECTION`].
fn answer() -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-checksum\r\n\r\n{}",
        chunked_body()
    )
    .into_bytes()
}

/// Read one chunked response from `s`: everything up to its end, as it came.
async fn chunked_response(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let whole = tokio::time::timeout(BOUND, async {
        loop {
            let text = String::from_utf8_lossy(&got);
            if let Some(h) = text.find("\r\n\r\n") {
                if text[h + 4..].contains("\r\n\r\n") {
                    return;
                }
            }
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk).await {
                Ok(n) if n > 0 => got.extend_from_slice(&chunk[..n]),
                _ => return,
            }
        }
    })
    .await;
    assert!(whole.is_ok(), "no whole response in time");
    String::from_utf8_lossy(&got).into_owned()
}

/// What follows the last chunk's `0\r\n` in `message` (a head, then a chunked body).
fn section(message: &str) -> &str {
    let body = message.find("\r\n\r\n").unwrap() + 4;
    let last = message[body..].find("\r\n0\r\n").unwrap();
    &message[body + last + 5..]
}

/// A chunked POST with [`SECTION`] as its trailers.
fn post() -> String {
    format!(
        "POST /up HTTP/1.1\r\nHost: x\r\nTrailer: x-checksum\r\n\
         Transfer-Encoding: chunked\r\n\r\n{}",
        chunked_body()
    )
}

#[tokio::test]
async fn the_engine_passes_only_fields_that_may_be_trailers_both_ways() {
    let b = Keeper::start(answer(), 1).await;
    let t = Tango::start(&config("", &[("a", b.addr, 1)]));
    let mut c = TcpStream::connect(t.addr()).await.unwrap();
    // Twice on one connection: what is held back leaves nothing behind.
    for n in 0..2 {
        c.write_all(post().as_bytes()).await.unwrap();
        let resp = chunked_response(&mut c).await;
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        assert!(resp.contains("hello"), "{resp}");
        assert_eq!(section(&resp), FILTERED, "{resp}");
        let req = b.request(n).await;
        assert!(req.contains("\r\n5\r\nhello\r\n"), "{req}");
        assert_eq!(section(&req), FILTERED, "{req}");
    }
}

#[tokio::test]
async fn trailer_sections_split_across_reads_are_filtered_too() {
    // The backend's answer in 7 pieces, 30 ms apart: its section straddles reads.
    let b = Keeper::start(answer(), 7).await;
    let t = Tango::start(&config("", &[("a", b.addr, 1)]));
    let mut c = TcpStream::connect(t.addr()).await.unwrap();
    let req = post();
    let (head, rest) = req.split_at(req.find("0\r\nx-checksum").unwrap() + 10);
    c.write_all(head.as_bytes()).await.unwrap();
    for piece in rest.as_bytes().chunks(17) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        c.write_all(piece).await.unwrap();
    }
    let resp = chunked_response(&mut c).await;
    assert_eq!(section(&resp), FILTERED, "{resp}");
    assert_eq!(section(&b.request(0).await), FILTERED);
    // A body without trailers still goes as it came, and the connection goes on.
    c.write_all(b"POST /plain HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        .await
        .unwrap();
    let resp = chunked_response(&mut c).await;
    assert_eq!(section(&resp), FILTERED, "{resp}");
    let req = b.request(1).await;
    assert!(req.ends_with("\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), "{req}");
}

/// An HTTP/2 backend's trailers reach an HTTP/1.1 client of the engine in the last
/// chunk, only those that may be trailers.
#[tokio::test]
async fn an_h2_backend_s_trailers_reach_an_engine_client_filtered() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let server = tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            tokio::spawn(h2_trailers(tcp));
        }
    });
    let extra = "protocol = \"h2\"\n";
    let t = Tango::start(&config(extra, &[("a", addr, 1)]));
    let mut c = TcpStream::connect(t.addr()).await.unwrap();
    c.write_all(b"GET /t HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let resp = chunked_response(&mut c).await;
    assert!(resp.contains("hello"), "{resp}");
    assert_eq!(section(&resp), "x-checksum: sum\r\n\r\n", "{resp}");
    server.abort();
}

async fn h2_trailers(tcp: TcpStream) {
    let Ok(mut conn) = h2::server::handshake(tcp).await else {
        return;
    };
    while let Some(Ok((_req, mut respond))) = conn.accept().await {
        let resp = http::Response::builder().status(200).body(()).unwrap();
        let Ok(mut send) = respond.send_response(resp, false) else {
            continue;
        };
        let _ = send.send_data(Bytes::from_static(b"hello"), false);
        let mut t = http::HeaderMap::new();
        for (n, v) in [
            ("x-checksum", "sum"),
            ("content-length", "99"),
            ("authorization", "Basic Zm9v"),
            ("x-forwarded-for", "6.6.6.6"),
            ("set-cookie", "a=b"),
        ] {
            t.insert(n, http::HeaderValue::from_static(v));
        }
        let _ = send.send_trailers(t);
    }
}
