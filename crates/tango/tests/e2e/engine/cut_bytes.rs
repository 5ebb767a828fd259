//! The access log line of a backend's answer cut in the middle of a write (the client
//! reset the connection) carries the body bytes the kernel took before the cut: not
//! the whole of a write it took only part of, not the writes before it alone.
//!
//! How much tango had handed to the kernel is known to the byte (`kernel`): what the
//! client read, and what sat in the two queues when tango's write stalled.

use super::kernel::{self, answer_len, Lines};
use super::read_request;
use crate::support::*;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A backend that answers `GET /<n>` with `n` bytes, head and body in one write, so
/// that tango reads them together and its first write to the client has both.
async fn sized_backend() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while let Some((path, _)) = read_request(&mut s, &mut buf).await {
                    let n: usize = path[1..].parse().unwrap_or(0);
                    let mut answer =
                        format!("HTTP/1.1 200 OK\r\ncontent-length: {n}\r\n\r\n").into_bytes();
                    answer.resize(answer.len() + n, b'b');
                    if s.write_all(&answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, task)
}

/// The body of each pipelined answer: with its head, well within the 16 KiB tango
/// reads a backend's answer into, so each answer goes to the client in one write.
const BODY: usize = 8000;

/// Pipelined answers of a backend, the client reading none, fill the kernel's buffers
/// until one answer's first write (its head and all its body) is taken only in part;
/// then the client resets the connection. The cut answer's line says the body bytes of
/// that write the kernel took, and the lines together all the body bytes it took.
#[tokio::test]
async fn a_backend_answer_cut_in_its_first_write_is_logged_with_the_body_bytes_taken() {
    let (addr, _task) = sized_backend().await;
    let (t, _dir, path) = start_logged(&config("", &[("a", addr, 1)]), "json", &[]);
    let req = format!("GET /{BODY} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes();
    let (len, head) = answer_len(&t, &req).await;
    assert_eq!(len - head, BODY);
    let mut lines = Lines::new(&path);
    // A cut lands in a head (no body taken) about one time in fifty.
    for _ in 0..5 {
        let (s, port) = kernel::small_window(&t).await;
        let sent = kernel::pipeline_until_stalled(&t, &s, Vec::new(), &req.repeat(100)).await;
        kernel::reset(s);
        let (whole, cut) = (sent / len as u64, sent % len as u64);
        let cut_body = cut.saturating_sub(head as u64);
        let count = whole as usize + 1;
        let got = lines.of(&t, port, count).await;
        assert_eq!(got.len(), count);
        let last = &got[count - 1];
        assert_eq!(last["status"], 200, "{last}");
        assert_eq!(last["bytes_out"], cut_body, "cut {cut} of {len}: {last}");
        let logged: u64 = got.iter().map(|v| v["bytes_out"].as_u64().unwrap()).sum();
        assert_eq!(logged, whole * BODY as u64 + cut_body);
        if cut_body > 0 {
            return;
        }
    }
    panic!("no cut landed inside a body");
}

/// An HTTP/2 backend serving `SIZE` bytes with a length, for any request.
async fn h2_big() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    use bytes::Bytes;
    use http_body_util::Full;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let body = Bytes::from(vec![b'h'; SIZE]);
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let body = body.clone();
            let svc = hyper::service::service_fn(move |_req| {
                let body = body.clone();
                async move {
                    let resp = http::Response::builder()
                        .header("content-length", SIZE)
                        .body(Full::new(body))
                        .unwrap();
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc),
            );
        }
    });
    (addr, task)
}

/// Far more than the kernel's buffers of a connection hold.
const SIZE: usize = 8 << 20;

/// The bytes the client reads before it stops: the head and some of the body.
const READ: usize = 64 * 1024;

/// An HTTP/2 backend's answer relayed to an HTTP/1.1 client, which reads [`READ`]
/// bytes, stops until tango's write stalls, and resets the connection: the line says
/// every body byte the kernel took, that of the write the reset cut too.
#[tokio::test]
async fn an_http2_backend_answer_cut_mid_body_is_logged_with_the_body_bytes_taken() {
    let (addr, _task) = h2_big().await;
    let cfg = config("protocol = \"h2\"\n", &[("a", addr, 1)]);
    let (t, _dir, path) = start_logged(&cfg, "json", &[]);
    let mut lines = Lines::new(&path);
    for _ in 0..3 {
        let (mut s, port) = kernel::small_window(&t).await;
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut got = vec![0; READ];
        tokio::time::timeout(kernel::BOUND, s.read_exact(&mut got))
            .await
            .expect("in time")
            .unwrap();
        let head = got
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a head")
            + 4;
        assert_eq!(kernel::content_length(&got[..head]), SIZE);
        let queued = kernel::stalled(&t, port, false, || {}).await;
        kernel::reset(s);
        let body = (READ - head) as u64 + queued;
        let line = &lines.of(&t, port, 1).await[0];
        assert_eq!(line["status"], 200, "{line}");
        assert_eq!(line["bytes_out"], body, "{line}");
    }
}
