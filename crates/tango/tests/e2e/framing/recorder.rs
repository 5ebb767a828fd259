//! A recording backend: a real HTTP/1.1 server (hyper) that keeps every byte it is
//! sent and the body of each request, so a test can tell what reached the backend.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A real HTTP/1.1 backend (hyper) that keeps every byte it is sent, on any
/// connection, and the body of each request. It answers 200 with the body's length.
pub struct Recorder {
    pub addr: SocketAddr,
    raw: Arc<Mutex<Vec<u8>>>,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Recorder {
    pub async fn start() -> Recorder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let raw = Arc::new(Mutex::new(Vec::new()));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let (r, b) = (raw.clone(), bodies.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tap = Tap {
                    inner: stream,
                    log: r.clone(),
                };
                let b = b.clone();
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let b = b.clone();
                        async move {
                            use http_body_util::BodyExt;
                            let body = req.into_body().collect().await.map(|c| c.to_bytes());
                            let body = body.unwrap_or_default().to_vec();
                            let n = body.len();
                            b.lock().unwrap().push(body);
                            let full = http_body_util::Full::new(bytes::Bytes::from(n.to_string()));
                            Ok::<_, std::convert::Infallible>(http::Response::new(full))
                        }
                    });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tap), svc),
                );
            }
        });
        Recorder {
            addr,
            raw,
            bodies,
            task,
        }
    }

    /// How many bytes the backend has been sent, on every connection together.
    pub fn bytes_received(&self) -> usize {
        self.raw.lock().unwrap().len()
    }

    pub fn bodies(&self) -> Vec<Vec<u8>> {
        self.bodies.lock().unwrap().clone()
    }
}

/// A socket that records what is read from it.
struct Tap {
    inner: TcpStream,
    log: Arc<Mutex<Vec<u8>>>,
}

impl AsyncRead for Tap {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            let got = &buf.filled()[before..];
            self.log.lock().unwrap().extend_from_slice(got);
        }
        r
    }
}

impl AsyncWrite for Tap {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
