//! The two ends of the cut-body tests: backends that break their response bodies off
//! in each way a backend can (HTTP/1.1 and HTTP/2), and clients that read a response
//! to its end, by tango's engine (plain HTTP/1.1) or by hyper's server (h2c).

use super::BOUND;
use crate::support::Tango;
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The client side a request comes in by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Over {
    /// Plain HTTP/1.1: tango's own engine.
    H1,
    /// HTTP/2 by prior knowledge: hyper's server.
    H2c,
}

/// How a breaking backend ends each response, after a `200` head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Break {
    /// 10 of the 100,000 bytes its Content-Length declares, then the connection's end
    /// (HTTP/1.1) or a reset of the stream (HTTP/2).
    Cut,
    /// 10 bytes, then a reset connection (HTTP/1.1 only).
    Reset,
    /// A chunk, then chunked framing that is not (HTTP/1.1 only).
    BadChunk,
    /// 10 bytes, then nothing, the connection held open.
    Stall,
}

/// A backend on loopback, counting the requests it got; stopped when dropped.
pub struct Server {
    pub addr: SocketAddr,
    /// How it breaks its bodies, if it does.
    pub breaks: Option<Break>,
    hits: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub fn hits(&self) -> u64 {
        self.hits.load(Relaxed)
    }

    /// An HTTP/1.1 backend that breaks every response as `how` says.
    pub async fn breaking_h1(how: Break) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let hits = Arc::new(AtomicU64::new(0));
        let n = hits.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((s, _)) = l.accept().await {
                while conns.try_join_next().is_some() {}
                conns.spawn(break_one(s, how, n.clone()));
            }
        });
        Server {
            addr,
            breaks: Some(how),
            hits,
            task,
        }
    }

    /// An HTTP/2 backend (prior knowledge): `/source?n=N` streams N bytes; any other
    /// path is broken off as `how` says, or without it answered with `name`.
    pub async fn h2(name: &'static str, how: Option<Break>) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let hits = Arc::new(AtomicU64::new(0));
        let n = hits.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((s, _)) = l.accept().await {
                while conns.try_join_next().is_some() {}
                let n = n.clone();
                let svc = hyper::service::service_fn(move |req| {
                    n.fetch_add(1, Relaxed);
                    async move { Ok::<_, std::convert::Infallible>(h2_answer(&req, name, how)) }
                });
                conns.spawn(
                    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(s), svc),
                );
            }
        });
        Server {
            addr,
            breaks: how,
            hits,
            task,
        }
    }
}

/// One request on a connection to a breaking HTTP/1.1 backend, answered as `how` says.
async fn break_one(mut s: TcpStream, how: Break, hits: Arc<AtomicU64>) {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
    }
    hits.fetch_add(1, Relaxed);
    let answer: &[u8] = match how {
        Break::BadChunk => {
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"
        }
        _ => b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n0123456789",
    };
    if s.write_all(answer).await.is_err() {
        return;
    }
    match how {
        // Dropped with nothing unread: a FIN.
        Break::Cut => {}
        Break::Reset => {
            let _ = s.set_zero_linger();
        }
        // Held until tango gives up on it.
        Break::BadChunk | Break::Stall => {
            let _ = s.read(&mut chunk).await;
        }
    }
}

type H2Body = BoxBody<Bytes, std::io::Error>;

fn h2_answer(
    req: &http::Request<hyper::body::Incoming>,
    name: &str,
    how: Option<Break>,
) -> http::Response<H2Body> {
    let first = || Ok(Frame::data(Bytes::from_static(b"0123456789")));
    if req.uri().path() == "/source" {
        let n = req
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("n="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0u64);
        return http::Response::new(source(n));
    }
    let body = match how {
        None => {
            return http::Response::new(
                Full::new(Bytes::from(format!("{name}\n")))
                    .map_err(|e| match e {})
                    .boxed(),
            )
        }
        // A body that fails: hyper resets the stream. Not at once, or the reset would
        // overtake the head and the first bytes (h2 drops a reset stream's queued frames).
        Some(Break::Cut | Break::Reset | Break::BadChunk) => {
            let cut = futures_util::stream::once(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(std::io::Error::other("cut"))
            });
            let frames = futures_util::stream::iter([first()]);
            StreamBody::new(futures_util::StreamExt::chain(frames, cut)).boxed()
        }
        Some(Break::Stall) => {
            let frames = futures_util::stream::iter([first()]);
            StreamBody::new(futures_util::StreamExt::chain(
                frames,
                futures_util::stream::pending(),
            ))
            .boxed()
        }
    };
    http::Response::builder()
        .header("content-length", "100000")
        .body(body)
        .unwrap()
}

/// A body of `n` bytes in 64 KiB frames.
pub fn source(n: u64) -> H2Body {
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    let stream = futures_util::stream::unfold(n, move |left| {
        let chunk = chunk.clone();
        async move {
            let take = left.min(chunk.len() as u64);
            (take > 0).then(|| (Ok(Frame::data(chunk.slice(..take as usize))), left - take))
        }
    });
    StreamBody::new(stream).boxed()
}

/// A response as a client got it: the status (0 when no head came) and the body, and
/// whether the body came whole.
pub struct Got {
    pub status: u16,
    pub body: Vec<u8>,
    pub whole: bool,
}

/// GET `path` from tango over a new connection, by `over`, reading to the response's end.
pub async fn fetch(t: &Tango, over: Over, path: &str) -> Got {
    let got = async {
        match over {
            Over::H1 => h1_fetch(t.addr(), path).await,
            Over::H2c => h2c_fetch(t.addr(), path).await,
        }
    };
    tokio::time::timeout(BOUND, got)
        .await
        .unwrap_or_else(|_| panic!("{over:?} {path}: the response did not end in time"))
}

async fn h1_fetch(addr: SocketAddr, path: &str) -> Got {
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut all = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => all.extend_from_slice(&chunk[..n]),
        }
    }
    let mut fields = [httparse::EMPTY_HEADER; 32];
    let mut head = httparse::Response::new(&mut fields);
    let Ok(httparse::Status::Complete(len)) = head.parse(&all) else {
        return Got {
            status: 0,
            body: Vec::new(),
            whole: false,
        };
    };
    let body = all[len..].to_vec();
    let field = |name: &str| {
        head.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    let whole = match (field("transfer-encoding"), field("content-length")) {
        (Some(_), _) => body.ends_with(b"0\r\n\r\n"),
        (None, Some(n)) => n.trim().parse() == Ok(body.len()),
        (None, None) => true,
    };
    Got {
        status: head.code.unwrap_or(0),
        body,
        whole,
    }
}

async fn h2c_fetch(addr: SocketAddr, path: &str) -> Got {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut h2, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(format!("http://{addr}{path}"))
        .body(())
        .unwrap();
    let (resp, _) = h2.send_request(req, true).unwrap();
    let Ok(resp) = resp.await else {
        return Got {
            status: 0,
            body: Vec::new(),
            whole: false,
        };
    };
    let status = resp.status().as_u16();
    let mut recv = resp.into_body();
    let mut body = Vec::new();
    let whole = loop {
        match recv.data().await {
            Some(Ok(d)) => {
                let _ = recv.flow_control().release_capacity(d.len());
                body.extend_from_slice(&d);
            }
            Some(Err(_)) => break false,
            None => break true,
        }
    };
    Got {
        status,
        body,
        whole,
    }
}
