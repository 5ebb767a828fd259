//! CONNECT, on every client path: forwarded to the backend as an HTTP/1.1 CONNECT, and
//! a `2xx` answer makes the client's connection (or its HTTP/2 stream) and the
//! backend's connection one tunnel, as the engine has always done; any other answer
//! is just an answer.

use crate::support::*;
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A backend that answers CONNECT to `open.test:443` with `200` and then echoes every
/// byte, each prefixed by `>`; any other request gets `403` and a close. What it was
/// asked (the request line) goes first, so a test sees it through the tunnel.
async fn tunnel_backend() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if s.read(&mut b).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap()
                    .to_string();
                if line != "CONNECT open.test:443 HTTP/1.1" {
                    let _ = s
                        .write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                    return;
                }
                let hello = format!("HTTP/1.1 200 Connection established\r\n\r\n{line}\n");
                let _ = s.write_all(hello.as_bytes()).await;
                let mut buf = [0u8; 4096];
                loop {
                    match s.read(&mut buf).await {
                        Ok(n) if n > 0 => {
                            let echo = [&b">"[..], &buf[..n]].concat();
                            if s.write_all(&echo).await.is_err() {
                                return;
                            }
                        }
                        _ => return,
                    }
                }
            });
        }
    });
    (addr, task)
}

/// Through an open tunnel: the backend's first line, then an echo of `ping`.
async fn through<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, already: &[u8]) {
    let want = b"CONNECT open.test:443 HTTP/1.1\n";
    let mut got = already.to_vec();
    let mut buf = [0u8; 256];
    while got.len() < want.len() {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("the backend's first line in time")
            .unwrap();
        assert!(n > 0, "the tunnel closed: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(&got[..], &want[..]);
    s.write_all(b"ping").await.unwrap();
    let mut echo = [0u8; 5];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut echo))
        .await
        .expect("the echo in time")
        .unwrap();
    assert_eq!(&echo, b">ping");
}

/// CONNECT to `authority`; over HTTP/1.1 with the Host every HTTP/1.1 request needs
/// (RFC 9112 3.2), which hyper's client does not add.
fn connect_request(authority: &str, h2: bool) -> http::Request<Empty<Bytes>> {
    let mut req = http::Request::connect(authority);
    if !h2 {
        req = req.header(http::header::HOST, authority);
    }
    req.body(Empty::new()).unwrap()
}

/// CONNECT over `io` with hyper's client (HTTP/2 when `h2`): the status, and the tunnel
/// when it is a `2xx`.
pub async fn hyper_connect<I>(
    io: I,
    h2: bool,
    authority: &str,
) -> (u16, Option<hyper::upgrade::Upgraded>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    let resp = if h2 {
        let (mut tx, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        tokio::spawn(conn);
        tx.send_request(connect_request(authority, h2)).await
    } else {
        let (mut tx, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn.with_upgrades());
        tx.send_request(connect_request(authority, h2)).await
    };
    let resp = resp.expect("an answer to CONNECT");
    let status = resp.status().as_u16();
    if !resp.status().is_success() {
        return (status, None);
    }
    let up = hyper::upgrade::on(resp).await.expect("the tunnel");
    (status, Some(up))
}

#[tokio::test]
async fn connect_is_a_tunnel_on_every_client_path() {
    let (addr, _b) = tunnel_backend().await;
    let cfg = config("max_attempts = 1", &[("proxy", addr, 1)]);
    let t = Tango::start(&cfg);

    // The engine (plain HTTP/1.1).
    let mut s = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    s.write_all(b"CONNECT open.test:443 HTTP/1.1\r\nHost: open.test:443\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).await.unwrap(), 1, "{head:?}");
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200 "),
        "{:?}",
        String::from_utf8_lossy(&head)
    );
    through(s, b"").await;

    // h2c: the stream is the tunnel.
    let tcp = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    let (status, up) = hyper_connect(tcp, true, "open.test:443").await;
    assert_eq!(status, 200);
    through(TokioIo::new(up.unwrap()), b"").await;

    // A backend that refuses: its answer, and no tunnel.
    let tcp = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    let (status, up) = hyper_connect(tcp, true, "closed.test:443").await;
    assert_eq!((status, up.is_none()), (403, true));

    // TLS, HTTP/1.1 and HTTP/2.
    let dir = tempfile::tempdir().unwrap();
    let (cfg, ck) = crate::protocols::tls_config(&cfg, dir.path());
    let t = Tango::start(&cfg);
    for (alpn, h2) in [(&b"http/1.1"[..], false), (b"h2", true)] {
        let tls = crate::protocols::tls_connect(&t, &ck, alpn).await;
        let (status, up) = hyper_connect(tls, h2, "open.test:443").await;
        assert_eq!(status, 200, "TLS h2={h2}");
        through(TokioIo::new(up.unwrap()), b"").await;
    }
}

/// An HTTP/2 stream that became a tunnel keeps its connection busy: the connection's
/// idle timeout (here 500 ms) does not close it under the tunnel while the tunnel is
/// in use. (A tunnel with no byte moving for as long is closed: `tunnels`.)
#[tokio::test]
async fn an_http2_tunnel_outlives_the_idle_timeout() {
    let (addr, _b) = tunnel_backend().await;
    let cfg = config("max_attempts = 1", &[("proxy", addr, 1)]).replacen(
        "listen = \"127.0.0.1:0\"\n\n[[pool]]",
        "listen = \"127.0.0.1:0\"\nidle_timeout = \"500ms\"\n\n[[pool]]",
        1,
    );
    let t = Tango::start(&cfg);
    let tcp = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    let (status, up) = hyper_connect(tcp, true, "open.test:443").await;
    assert_eq!(status, 200);
    let mut up = TokioIo::new(up.unwrap());
    let mut first = [0u8; 31];
    up.read_exact(&mut first).await.unwrap();
    // Past the idle timeout, and the 2 s a graceful close lingers, with bytes moving.
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(2600) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        up.write_all(b"tick").await.unwrap();
        let mut echo = [0u8; 5];
        tokio::time::timeout(Duration::from_secs(10), up.read_exact(&mut echo))
            .await
            .expect("the echo in time")
            .unwrap();
        assert_eq!(&echo, b">tick");
    }
    through(up, b"CONNECT open.test:443 HTTP/1.1\n").await;
}
