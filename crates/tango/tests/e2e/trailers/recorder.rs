//! A raw HTTP/1.1 backend that keeps every request's bytes as they came (head, body,
//! and a chunked body's trailer section) and answers each with a chunked body whose
//! trailer section carries `x-checksum: abc`; and the chunked decoding the tests read
//! both sides' bodies with.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The answer to a path starting `/undeclared`: trailers without a `Trailer` field
/// naming them first.
const UNDECLARED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\
    Content-Type: text/plain\r\n\r\n5\r\nhello\r\n0\r\nx-checksum: abc\r\n\r\n";

/// The answer to any other path: the `Trailer` field names the trailer to come, and
/// the trailer section also holds fields that must not be trailers (framing and
/// connection fields), which a proxy drops.
const DECLARED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\
    Trailer: x-checksum\r\nContent-Type: text/plain\r\n\r\n5\r\nhello\r\n\
    0\r\nx-checksum: abc\r\ncontent-length: 99\r\nconnection: close\r\n\r\n";

pub struct Recorder {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Recorder {
    pub async fn start() -> Recorder {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((c, _)) = l.accept().await {
                tokio::spawn(serve(c, Arc::clone(&s)));
            }
        });
        Recorder { addr, seen }
    }

    /// The `n`th request's bytes (from 0), once it has come whole.
    pub async fn request(&self, n: usize) -> Vec<u8> {
        for _ in 0..1000 {
            if let Some(r) = self.seen.lock().unwrap().get(n) {
                return r.clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("request {n} never came whole");
    }
}

/// Requests on one connection, each recorded whole, then answered.
async fn serve(mut c: TcpStream, seen: Arc<Mutex<Vec<Vec<u8>>>>) {
    let mut buf = Vec::new();
    loop {
        let Some(n) = read_request(&mut c, &mut buf).await else {
            return;
        };
        let req: Vec<u8> = buf.drain(..n).collect();
        let path = |p: &[u8]| req.windows(p.len()).any(|w| w == p);
        let (undeclared, huge) = (path(b"/undeclared"), path(b"/huge"));
        seen.lock().unwrap().push(req);
        if huge {
            return answer_huge(&mut c).await;
        }
        let answer = if undeclared { UNDECLARED } else { DECLARED };
        if c.write_all(answer).await.is_err() {
            return;
        }
    }
}

/// A body begun, then (after the head and data have gone on) a trailer section over
/// the 16 KiB a trailer section may take.
async fn answer_huge(c: &mut TcpStream) {
    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
    if c.write_all(head).await.is_err() {
        return;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let section = format!("0\r\nx-big: {}\r\n\r\n", "v".repeat(17 * 1024));
    let _ = c.write_all(section.as_bytes()).await;
}

/// Read until `buf` holds a whole request (its head and body by its framing); its
/// length. `None` when the connection ends first.
async fn read_request(c: &mut TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(n) = whole_request(buf) {
            return Some(n);
        }
        let mut more = [0u8; 8192];
        let n = c.read(&mut more).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&more[..n]);
    }
}

/// The length of the request at the start of `b`, once it is all there.
fn whole_request(b: &[u8]) -> Option<usize> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(head) = r.parse(b).ok()? else {
        return None;
    };
    let field = |name: &str| {
        r.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
    };
    if field("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return decode(&b[head..]).map(|d| head + d.len);
    }
    let len: usize = field("content-length").map_or(0, |v| v.trim().parse().unwrap());
    (b.len() >= head + len).then_some(head + len)
}

/// A chunked body, decoded.
#[derive(Debug)]
pub struct Decoded {
    /// Its length on the wire, final CRLF included.
    pub len: usize,
    pub data: Vec<u8>,
    /// The trailer section's field lines as they came (each with its CRLF).
    pub trailers: String,
}

/// The chunked body at the start of `b`, once it is all there.
pub fn decode(b: &[u8]) -> Option<Decoded> {
    let line_end = |at: usize| {
        b.get(at..)?
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|p| at + p)
    };
    let (mut at, mut data) = (0, Vec::new());
    loop {
        let end = line_end(at)?;
        let size = std::str::from_utf8(&b[at..end]).unwrap();
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        at = end + 2;
        if size == 0 {
            break;
        }
        data.extend_from_slice(b.get(at..at + size)?);
        at += size + 2;
    }
    let start = at;
    loop {
        let end = line_end(at)?;
        if end == at {
            let trailers = String::from_utf8_lossy(&b[start..at]).into_owned();
            return Some(Decoded {
                len: end + 2,
                data,
                trailers,
            });
        }
        at = end + 2;
    }
}

/// A response's head (as text, lowercased) and its chunked body, read from `io` until
/// the body is whole.
pub async fn read_chunked_response(
    io: &mut (impl tokio::io::AsyncRead + Unpin),
) -> (String, Decoded) {
    let mut got = Vec::new();
    let mut more = [0u8; 8192];
    loop {
        if let Some(head) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            if let Some(d) = decode(&got[head + 4..]) {
                let text = String::from_utf8_lossy(&got[..head + 4]).to_ascii_lowercase();
                return (text, d);
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), io.read(&mut more))
            .await
            .expect("the answer in time")
            .unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&more[..n]);
    }
}
