//! Backends that keep count of what they got: request heads, body bytes, bodies that
//! came whole and those that ended before they did. The HTTP/1.1 one reads bodies by
//! their Content-Length or chunks, answers each whole request `200 ok`, and answers
//! `GET /big?n=N` with N bytes, written as fast as they are taken, noting when the
//! connection goes away first. The HTTP/2 one (h2c) takes a body as whole only when its
//! stream ended with END_STREAM, and then answers `200`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub heads: usize,
    pub body_bytes: u64,
    /// Requests whose body arrived whole.
    pub whole: usize,
    /// Connections that ended in the middle of a request body.
    pub cut: usize,
    /// Downloads (`/big`) whose connection went away before the last byte.
    pub downloads_cut: usize,
    /// Connections ended, by either side.
    pub closed: usize,
    /// Requests that came with trailers (HTTP/2), by their first field's value.
    pub trailers: Vec<String>,
}

pub struct Sink {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sink {
    /// The HTTP/1.1 backend.
    pub async fn start() -> Sink {
        Sink::listen(|c, s| async move { serve(c, &s).await }).await
    }

    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }

    /// The HTTP/2 backend (h2c, prior knowledge).
    pub async fn start_h2() -> Sink {
        Sink::listen(|c, s| async move {
            if let Ok(mut conn) = h2::server::handshake(c).await {
                while let Some(Ok((req, respond))) = conn.accept().await {
                    tokio::spawn(h2_request(req, respond, s.clone()));
                }
            }
        })
        .await
    }

    /// Accept on 127.0.0.1, port 0, serving each connection with `conn` and counting
    /// its close.
    async fn listen<F, Fut>(conn: F) -> Sink
    where
        F: Fn(TcpStream, Arc<Mutex<Seen>>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((c, _)) = l.accept().await {
                let s = s.clone();
                let served = conn(c, s.clone());
                tokio::spawn(async move {
                    served.await;
                    s.lock().unwrap().closed += 1;
                });
            }
        });
        Sink { addr, seen, task }
    }

    /// Wait (up to 10 s) until what was seen satisfies `what`.
    pub async fn until(&self, what: impl Fn(&Seen) -> bool) -> Seen {
        let end = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let s = self.seen();
            if what(&s) || tokio::time::Instant::now() > end {
                return s;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

async fn serve(mut c: TcpStream, seen: &Mutex<Seen>) {
    let mut buf = Vec::new();
    loop {
        let Some(head) = read_head(&mut c, &mut buf).await else {
            return;
        };
        seen.lock().unwrap().heads += 1;
        let line = head.lines().next().unwrap_or_default().to_string();
        if let Some(n) = line
            .strip_prefix("GET /big?n=")
            .and_then(|r| r.split(' ').next())
        {
            return download(&mut c, n.parse().unwrap_or(0), seen).await;
        }
        let whole = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            read_chunked(&mut c, &mut buf, seen).await
        } else {
            read_length(&mut c, &mut buf, content_length(&head), seen).await
        };
        if !whole {
            seen.lock().unwrap().cut += 1;
            return;
        }
        seen.lock().unwrap().whole += 1;
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        if c.write_all(ok).await.is_err() {
            return;
        }
    }
}

/// One HTTP/2 request: whole when its body ends with the stream's END_STREAM.
async fn h2_request(
    req: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<bytes::Bytes>,
    seen: Arc<Mutex<Seen>>,
) {
    seen.lock().unwrap().heads += 1;
    let mut body = req.into_body();
    while let Some(data) = body.data().await {
        let Ok(data) = data else {
            seen.lock().unwrap().cut += 1;
            return;
        };
        let _ = body.flow_control().release_capacity(data.len());
        seen.lock().unwrap().body_bytes += data.len() as u64;
    }
    match body.trailers().await {
        Ok(Some(t)) => {
            let first = t
                .values()
                .next()
                .map(|v| v.to_str().unwrap_or("?").to_string());
            seen.lock()
                .unwrap()
                .trailers
                .push(first.unwrap_or_default());
        }
        Ok(None) => {}
        Err(_) => {
            seen.lock().unwrap().cut += 1;
            return;
        }
    }
    seen.lock().unwrap().whole += 1;
    let _ = respond.send_response(http::Response::new(()), true);
}

/// Read more from `c` into `buf` until it holds `n` bytes; false at the end first.
async fn fill(c: &mut TcpStream, buf: &mut Vec<u8>, n: usize) -> bool {
    let mut chunk = [0u8; 16 << 10];
    while buf.len() < n {
        match c.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
    }
    true
}

/// A body of `len` bytes, counted as it comes; whether it came whole.
async fn read_length(c: &mut TcpStream, buf: &mut Vec<u8>, len: u64, seen: &Mutex<Seen>) -> bool {
    let mut left = len as usize;
    while left > 0 {
        if buf.is_empty() && !fill(c, buf, 1).await {
            return false;
        }
        let k = buf.len().min(left);
        buf.drain(..k);
        left -= k;
        seen.lock().unwrap().body_bytes += k as u64;
    }
    true
}

/// A chunked body (no trailers), counted as it comes; whether it came whole.
async fn read_chunked(c: &mut TcpStream, buf: &mut Vec<u8>, seen: &Mutex<Seen>) -> bool {
    loop {
        let line_end = loop {
            if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                break i;
            }
            if !fill(c, buf, buf.len() + 1).await {
                return false;
            }
        };
        let size = std::str::from_utf8(&buf[..line_end])
            .ok()
            .and_then(|l| usize::from_str_radix(l.split(';').next()?.trim(), 16).ok());
        let Some(size) = size else {
            return false;
        };
        buf.drain(..line_end + 2);
        if !fill(c, buf, size + 2).await {
            seen.lock().unwrap().body_bytes += buf.len().min(size) as u64;
            return false;
        }
        buf.drain(..size + 2);
        seen.lock().unwrap().body_bytes += size as u64;
        if size == 0 {
            return true;
        }
    }
}

/// A request head from `c`, after what `buf` holds; what came after it stays in `buf`.
async fn read_head(c: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            buf.drain(..end + 4);
            return Some(head);
        }
        if !fill(c, buf, buf.len() + 1).await {
            return None;
        }
    }
}

fn content_length(head: &str) -> u64 {
    head.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
}

async fn download(c: &mut TcpStream, n: u64, seen: &Mutex<Seen>) {
    let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {n}\r\n\r\n");
    let chunk = vec![b'x'; 16 << 10];
    let mut left = n;
    let mut ok = c.write_all(head.as_bytes()).await.is_ok();
    while ok && left > 0 {
        let k = left.min(chunk.len() as u64) as usize;
        ok = c.write_all(&chunk[..k]).await.is_ok();
        left -= k as u64;
    }
    if !ok {
        seen.lock().unwrap().downloads_cut += 1;
    }
}
