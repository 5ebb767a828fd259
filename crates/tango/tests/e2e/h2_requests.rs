//! HTTP/2 clients as an HTTP/1.1 backend sees them, and as they see tango close: the
//! request's fields made into one HTTP/1.1 head (cookie crumbs, Host), and a connection
//! closed gracefully while a response is still on its way.

use crate::backend::Backend;
use crate::support::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The request headers `/headers` saw, from `h2` (an HTTP/2 connection to tango).
async fn headers_seen(
    mut h2: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    req: http::Request<Full<Bytes>>,
) -> (u16, serde_json::Value) {
    let resp = tokio::time::timeout(Duration::from_secs(10), h2.send_request(req))
        .await
        .expect("an answer in time")
        .expect("an answer");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

/// HTTP/2 clients send each cookie as a field of its own, for HPACK (RFC 9113 8.2.3);
/// an HTTP/1.1 backend must get them as one Cookie field joined with "; ". Sent as
/// repeated fields, a backend reads only the first, or joins them with ", " (as the
/// test backend does), which is not a cookie separator: the session cookie after it is
/// lost.
#[tokio::test]
async fn an_h2_clients_cookie_crumbs_reach_an_http1_backend_as_one_field() {
    let b = Backend::start("a").await;
    let t = Tango::start(&config("", &[("a", b.addr, 1)]));
    let req = http::Request::get(t.url("/headers"))
        .header("cookie", "theme=dark")
        .header("x-between", "1")
        .header("cookie", "sid=42")
        .header("cookie", "lang=en")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, h) = headers_seen(h2c(&t).await, req).await;
    assert_eq!(status, 200, "{h}");
    assert_eq!(h["cookie"], "theme=dark; sid=42; lang=en", "{h}");
    assert_eq!(h["x-between"], "1", "{h}");
}

/// An HTTP/2 request without `:authority` names its host with Host; two Host fields
/// are refused as HTTP/1.1's are (RFC 9112 3.2): tango routes by the first, and an
/// HTTP/1.1 backend that takes the last would serve another site's request.
#[tokio::test]
async fn an_h2_request_with_two_host_fields_is_refused() {
    let b = Backend::start("a").await;
    let t = Tango::start(&config("", &[("a", b.addr, 1)]));
    let tcp = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    let (mut h2, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    // Origin-form, as HTTP/1.1: the h2 crate sends `:scheme` and `:path`, no
    // `:authority`, and the Host fields as they are.
    let req = http::Request::get("/headers")
        .header("host", "public.example")
        .header("host", "internal.example")
        .body(())
        .unwrap();
    let (resp, _) = h2.send_request(req, true).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), resp)
        .await
        .expect("an answer in time")
        .expect("an answer");
    assert_eq!(resp.status(), 400);
    assert_eq!(b.hits(), 0, "the request reached the backend");

    // One Host is the request's authority, as before.
    let req = http::Request::get("/headers")
        .header("host", "public.example")
        .body(())
        .unwrap();
    let (resp, _) = h2.send_request(req, true).unwrap();
    let resp = resp.await.unwrap();
    assert_eq!(resp.status(), 200);
}

/// The most a [`Throttled`] connection reads at once.
const CHUNK: usize = 16 << 10;

/// A client's side of a connection that reads it at most `CHUNK` bytes every
/// millisecond (16 MB/s): a client that takes its response as it comes, with the kernel's
/// buffers between it and tango full, as a browser's on a slower link.
struct Throttled<S> {
    inner: S,
    pause: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<S> Throttled<S> {
    fn new(inner: S) -> Self {
        Throttled { inner, pause: None }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Throttled<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(p) = self.pause.as_mut() {
            ready!(p.as_mut().poll(cx));
            self.pause = None;
        }
        let mut tmp = [0u8; CHUNK];
        let room = buf.remaining().min(CHUNK);
        let mut part = ReadBuf::new(&mut tmp[..room]);
        ready!(Pin::new(&mut self.inner).poll_read(cx, &mut part))?;
        buf.put_slice(part.filled());
        self.pause = Some(Box::pin(tokio::time::sleep(Duration::from_millis(1))));
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Throttled<S> {
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

/// An HTTP/2 client on `io` that lets tango send up to 8 MB ahead of what it has read
/// (browsers allow 6 to 15 MB).
async fn h2_over<S>(io: S) -> hyper::client::conn::http2::SendRequest<Full<Bytes>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (h2, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(8 << 20)
        .initial_connection_window_size(8 << 20)
        .handshake(TokioIo::new(Throttled::new(io)))
        .await
        .unwrap();
    tokio::spawn(conn);
    h2
}

/// A 16 MB download over one HTTP/2 connection, during which tango is told to shut
/// down: the response is already in flight, so the drain lets it finish, and the client
/// gets every byte. hyper ends the connection once it has written the last bytes to the
/// socket, while megabytes of them still wait in the kernel's buffers and the client,
/// reading them, keeps sending WINDOW_UPDATEs; a socket closed with bytes arriving is
/// reset by the kernel, and the reset throws away what it had not sent. For h2c and for
/// h2 over TLS.
#[tokio::test]
async fn a_download_in_flight_at_shutdown_arrives_whole_over_http2() {
    const N: usize = 16 << 20;
    let b = Backend::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let plain = config("", &[("a", b.addr, 1)]);
    let (tls_cfg, ck) = crate::protocols::tls_config(&plain, dir.path());
    for over_tls in [false, true] {
        let mut t = Tango::start(if over_tls { &tls_cfg } else { &plain });
        let mut h2 = if over_tls {
            h2_over(crate::protocols::tls_connect(&t, &ck, b"h2").await).await
        } else {
            h2_over(tokio::net::TcpStream::connect(t.addr()).await.unwrap()).await
        };
        let req = http::Request::get(format!("http://localhost/source?n={N}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = h2.send_request(req).await.expect("a response head");
        assert_eq!(resp.status(), 200);
        let mut body = resp.into_body();
        let mut got = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.unwrap_or_else(|e| {
                panic!("tls {over_tls}: the body broke off after {got} of {N} bytes: {e}")
            });
            let before = got;
            got += frame.data_ref().map_or(0, Bytes::len);
            if before < 1 << 20 && got >= 1 << 20 {
                t.signal("TERM");
            }
        }
        assert_eq!(got, N, "tls {over_tls}");
        // The client closes its connection, as one does after a GOAWAY once its streams
        // are over, and tango's lingering close ends with it.
        drop(h2);
        assert!(
            t.wait_exit(Duration::from_secs(10)).is_some(),
            "tls {over_tls}: tango exits once the connection is over"
        );
    }
}
