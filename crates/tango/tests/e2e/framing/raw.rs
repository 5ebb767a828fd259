//! A raw HTTP/1 client: bytes go out exactly as given, so a test can send what no
//! well-behaved client would; responses (interim ones skipped, bodies by length, chunked
//! or to the end) are parsed as they come back.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a raw client waits for the next bytes of a response.
const READ_LIMIT: Duration = Duration::from_secs(10);

/// A raw HTTP/1 connection: bytes go out exactly as given; responses are parsed as
/// they come back.
pub struct Raw<S> {
    s: S,
    buf: Vec<u8>,
}

impl Raw<TcpStream> {
    pub async fn connect(addr: SocketAddr) -> Self {
        Raw::new(TcpStream::connect(addr).await.expect("connect"))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Raw<S> {
    pub fn new(s: S) -> Self {
        Raw { s, buf: Vec::new() }
    }

    /// Send bytes; tango may have closed already, which is an answer too.
    pub async fn send(&mut self, bytes: &[u8]) {
        let _ = self.s.write_all(bytes).await;
    }

    /// Read more; false when the connection ended or nothing came in time.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout(READ_LIMIT, self.s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            _ => false,
        }
    }

    /// The status of the next response (its head is consumed, its body is not), or
    /// None if the connection ends first.
    pub async fn status(&mut self) -> Option<u16> {
        self.head().await.map(|(status, _)| status)
    }

    /// The next final response's status and how its body is framed.
    async fn head(&mut self) -> Option<(u16, BodyLen)> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(len)) = resp.parse(&self.buf) {
                let status = resp.code.unwrap_or(0);
                let header = |name: &str| {
                    resp.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
                };
                let body = match (header("transfer-encoding"), header("content-length")) {
                    (Some(_), _) => BodyLen::Chunked,
                    (None, Some(n)) => BodyLen::Bytes(n.trim().parse().unwrap_or(0)),
                    (None, None) if status == 101 || status == 204 => BodyLen::Bytes(0),
                    (None, None) => BodyLen::ToEnd,
                };
                self.buf.drain(..len);
                if (100..200).contains(&status) && status != 101 {
                    continue;
                }
                return Some((status, body));
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// The next response: status and body.
    pub async fn response(&mut self) -> Option<(u16, Vec<u8>)> {
        let (status, len) = self.head().await?;
        let body = match len {
            BodyLen::Bytes(n) => {
                while self.buf.len() < n {
                    if !self.fill().await {
                        return None;
                    }
                }
                self.buf.drain(..n).collect()
            }
            BodyLen::ToEnd => {
                while self.fill().await {}
                std::mem::take(&mut self.buf)
            }
            BodyLen::Chunked => self.chunked_body().await?,
        };
        Some((status, body))
    }

    async fn chunked_body(&mut self) -> Option<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            match httparse::parse_chunk_size(&self.buf) {
                Ok(httparse::Status::Complete((at, 0))) => {
                    while !self.buf[at..].starts_with(b"\r\n") {
                        if !self.fill().await {
                            return None;
                        }
                    }
                    self.buf.drain(..at + 2);
                    return Some(body);
                }
                Ok(httparse::Status::Complete((at, size))) => {
                    let end = at + size as usize + 2;
                    while self.buf.len() < end {
                        if !self.fill().await {
                            return None;
                        }
                    }
                    body.extend_from_slice(&self.buf[at..end - 2]);
                    self.buf.drain(..end);
                }
                Ok(httparse::Status::Partial) => {
                    if !self.fill().await {
                        return None;
                    }
                }
                Err(_) => return None,
            }
        }
    }
}

enum BodyLen {
    Bytes(usize),
    Chunked,
    ToEnd,
}
