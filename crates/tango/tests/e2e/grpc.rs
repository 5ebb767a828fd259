//! HTTP/2 to backends (`protocol = "h2"`) and gRPC through tango: a real gRPC server
//! (tonic's server side over hyper's HTTP/2 server) and a real gRPC client (tonic's
//! channel), with messages and services written by hand (no protoc). Unary, server-
//! and client-streaming and bidirectional calls with their status and trailers; a
//! backend's error status passed on; tango's own answer when the backend is down; and
//! plain HTTP/1.1 and h2c clients through the same kind of pool.
// tonic's error type is its `Status` (176 bytes), and its service traits return it.
#![allow(clippy::result_large_err)]

use crate::support::*;
use bytes::Bytes;
use futures_util::StreamExt;
use http::uri::PathAndQuery;
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::codec::{ProstCodec, Streaming};
use tonic::{Code, Request, Response, Status};

pub const BOUND: Duration = Duration::from_secs(15);

/// The one message both ways.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Msg {
    #[prost(string, tag = "1")]
    pub text: String,
    #[prost(uint32, tag = "2")]
    pub n: u32,
}

type Reply<T> = Pin<Box<dyn std::future::Future<Output = Result<Response<T>, Status>> + Send>>;
type Replies = Pin<Box<dyn futures_util::Stream<Item = Result<Msg, Status>> + Send>>;

/// `/test.Echo/Unary`: the text back, upper-cased; `missing` is NOT_FOUND, `slow`
/// takes five seconds.
struct Unary;
impl tonic::server::UnaryService<Msg> for Unary {
    type Response = Msg;
    type Future = Reply<Msg>;
    fn call(&mut self, req: Request<Msg>) -> Self::Future {
        Box::pin(async move {
            let m = req.into_inner();
            if m.text == "slow" {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            if m.text == "missing" {
                return Err(Status::not_found("no such thing: missing"));
            }
            Ok(Response::new(Msg {
                text: m.text.to_uppercase(),
                n: m.n + 1,
            }))
        })
    }
}

/// `/test.Echo/Count`: `n` messages, numbered.
struct Count;
impl tonic::server::ServerStreamingService<Msg> for Count {
    type Response = Msg;
    type ResponseStream = Replies;
    type Future = Reply<Replies>;
    fn call(&mut self, req: Request<Msg>) -> Self::Future {
        Box::pin(async move {
            let n = req.into_inner().n;
            let s = futures_util::stream::iter((0..n).map(|i| {
                Ok(Msg {
                    text: format!("item {i}"),
                    n: i,
                })
            }));
            Ok(Response::new(Box::pin(s) as Replies))
        })
    }
}

/// `/test.Echo/Sum`: the sum of every message's `n`.
struct Sum;
impl tonic::server::ClientStreamingService<Msg> for Sum {
    type Response = Msg;
    type Future = Reply<Msg>;
    fn call(&mut self, req: Request<Streaming<Msg>>) -> Self::Future {
        Box::pin(async move {
            let mut s = req.into_inner();
            let (mut sum, mut count) = (0, 0);
            while let Some(m) = s.message().await? {
                sum += m.n;
                count += 1;
            }
            Ok(Response::new(Msg {
                text: format!("{count} messages"),
                n: sum,
            }))
        })
    }
}

/// `/test.Echo/Chat`: each message echoed as it comes.
struct Chat;
impl tonic::server::StreamingService<Msg> for Chat {
    type Response = Msg;
    type ResponseStream = Replies;
    type Future = Reply<Replies>;
    fn call(&mut self, req: Request<Streaming<Msg>>) -> Self::Future {
        Box::pin(async move {
            let s = req.into_inner().map(|m| {
                m.map(|m| Msg {
                    text: format!("echo {}", m.text),
                    n: m.n,
                })
            });
            Ok(Response::new(Box::pin(s) as Replies))
        })
    }
}

/// A response body with one more trailer field: the backend's own, which must reach
/// the client.
struct WithTrailer(tonic::body::Body);
impl http_body::Body for WithTrailer {
    type Data = Bytes;
    type Error = Status;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        Pin::new(&mut self.0).poll_frame(cx).map(|f| {
            f.map(|f| {
                f.map(|f| match f.into_trailers() {
                    Ok(mut t) => {
                        t.insert("x-backend-trailer", "kept".parse().unwrap());
                        Frame::trailers(t)
                    }
                    Err(f) => f,
                })
            })
        })
    }
}

pub type BoxBody = http_body_util::combinators::UnsyncBoxBody<Bytes, Status>;

fn boxed<B>(b: B) -> BoxBody
where
    B: http_body::Body<Data = Bytes, Error = Status> + Send + 'static,
{
    b.boxed_unsync()
}

/// The backend: gRPC by path, and for any other path a plain answer saying what came
/// (method, forwarding fields, `te`, the body), with no length and a trailer.
pub async fn backend_request(
    req: http::Request<Incoming>,
) -> Result<http::Response<BoxBody>, Infallible> {
    let codec = || tonic::server::Grpc::new(ProstCodec::<Msg, Msg>::default());
    let path = req.uri().path().to_owned();
    let resp = match path.as_str() {
        "/test.Echo/Unary" => codec()
            .unary(Unary, req)
            .await
            .map(|b| boxed(WithTrailer(b))),
        "/test.Echo/Count" => codec().server_streaming(Count, req).await.map(boxed_tonic),
        "/test.Echo/Sum" => codec().client_streaming(Sum, req).await.map(boxed_tonic),
        "/test.Echo/Chat" => codec().streaming(Chat, req).await.map(boxed_tonic),
        _ => plain(req).await,
    };
    Ok(resp)
}

fn boxed_tonic(b: tonic::body::Body) -> BoxBody {
    boxed(b)
}

async fn plain(req: http::Request<Incoming>) -> http::Response<BoxBody> {
    let field = |n: &str| {
        req.headers()
            .get(n)
            .map_or("-".to_owned(), |v| v.to_str().unwrap().to_owned())
    };
    let head = format!(
        "{} {} authority={} xff={} proto={} te={} id={} conn={}\n",
        req.method(),
        req.uri().path(),
        req.uri().authority().map_or("-", |a| a.as_str()),
        field("x-forwarded-for"),
        field("x-forwarded-proto"),
        field("te"),
        if req.headers().contains_key("x-request-id") {
            "yes"
        } else {
            "no"
        },
        field("connection"),
    );
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let mut trailers = http::HeaderMap::new();
    trailers.insert("x-plain-trailer", "end".parse().unwrap());
    let frames: Vec<Result<Frame<Bytes>, Status>> = vec![
        Ok(Frame::data(Bytes::from(head))),
        Ok(Frame::data(body)),
        Ok(Frame::trailers(trailers)),
    ];
    http::Response::new(boxed(StreamBody::new(futures_util::stream::iter(frames))))
}

/// Start the backend (HTTP/2 with prior knowledge) on loopback.
async fn start_backend() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(backend_request);
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    (addr, task)
}

fn h2_config(backend: SocketAddr) -> String {
    config("protocol = \"h2\"\n", &[("b1", backend, 1)])
}

/// A server-streaming call of `n` messages, each in order, then a client-streaming
/// call of ten.
pub async fn one_way_streams(c: &mut Client, n: u32) {
    c.ready().await.unwrap();
    let r = c
        .server_streaming(Request::new(msg("", n)), path("/test.Echo/Count"), codec())
        .await
        .expect("server streaming");
    let mut s = r.into_inner();
    let mut got = 0;
    while let Some(m) = tokio::time::timeout(BOUND, s.message())
        .await
        .unwrap()
        .unwrap()
    {
        assert_eq!(m.n, got);
        got += 1;
    }
    assert_eq!(got, n);
    // Client streaming.
    c.ready().await.unwrap();
    let msgs = futures_util::stream::iter((1..=10).map(|i| msg("x", i)));
    let r = c
        .client_streaming(Request::new(msgs), path("/test.Echo/Sum"), codec())
        .await
        .expect("client streaming");
    assert_eq!(r.get_ref(), &msg("10 messages", 55));
}

/// A gRPC client over a tonic channel.
pub type Client = tonic::client::Grpc<tonic::transport::Channel>;

pub async fn grpc_client(t: &Tango) -> Client {
    let ch = tonic::transport::Endpoint::from_shared(t.url(""))
        .unwrap()
        .connect()
        .await
        .expect("connect to tango");
    tonic::client::Grpc::new(ch)
}

pub fn path(p: &'static str) -> PathAndQuery {
    PathAndQuery::from_static(p)
}

pub fn codec() -> ProstCodec<Msg, Msg> {
    ProstCodec::default()
}

pub fn msg(text: &str, n: u32) -> Msg {
    Msg {
        text: text.into(),
        n,
    }
}

#[tokio::test]
async fn grpc_unary_keeps_status_and_trailers() {
    let (addr, _b) = start_backend().await;
    let t = Tango::start(&h2_config(addr));
    let mut c = grpc_client(&t).await;
    unary_calls(&mut c).await;
}

/// A unary call answered with the backend's own trailer, and one answered with a
/// backend's error status and message: both must reach the client intact.
pub async fn unary_calls(c: &mut Client) {
    c.ready().await.unwrap();
    let r = tokio::time::timeout(
        BOUND,
        c.unary(
            Request::new(msg("hello", 41)),
            path("/test.Echo/Unary"),
            codec(),
        ),
    )
    .await
    .unwrap()
    .expect("unary call");
    assert_eq!(r.get_ref(), &msg("HELLO", 42));
    assert_eq!(r.metadata().get("x-backend-trailer").unwrap(), "kept");
    // A backend's error status, with its message, reaches the client.
    c.ready().await.unwrap();
    let e = c
        .unary(
            Request::new(msg("missing", 0)),
            path("/test.Echo/Unary"),
            codec(),
        )
        .await
        .expect_err("NOT_FOUND");
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert_eq!(e.message(), "no such thing: missing");
}

#[tokio::test]
async fn grpc_streams_both_ways() {
    let (addr, _b) = start_backend().await;
    let t = Tango::start(&h2_config(addr));
    let mut c = grpc_client(&t).await;
    one_way_streams(&mut c, 50).await;
    // Bidirectional, one message at a time: each reply must come back before the next
    // message is sent, which a proxy that buffered either body would never allow.
    c.ready().await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<Msg>(1);
    tx.send(msg("0", 0)).await.unwrap();
    let r = c
        .streaming(
            Request::new(tokio_stream::wrappers::ReceiverStream::new(rx)),
            path("/test.Echo/Chat"),
            codec(),
        )
        .await
        .expect("bidi");
    let mut replies = r.into_inner();
    for i in 0..5u32 {
        let m = tokio::time::timeout(BOUND, replies.message())
            .await
            .expect("a reply before the next message")
            .unwrap()
            .unwrap();
        assert_eq!(m, msg(&format!("echo {i}"), i));
        tx.send(msg(&(i + 1).to_string(), i + 1)).await.unwrap();
    }
    drop(tx);
    let last = replies.message().await.unwrap().unwrap();
    assert_eq!(last.n, 5);
    assert!(replies.message().await.unwrap().is_none());
}

#[tokio::test]
async fn grpc_to_a_dead_backend_is_unavailable() {
    let t = Tango::start(&h2_config(dead_addr()));
    let mut c = grpc_client(&t).await;
    c.ready().await.unwrap();
    let e = tokio::time::timeout(
        BOUND,
        c.unary(
            Request::new(msg("hello", 1)),
            path("/test.Echo/Unary"),
            codec(),
        ),
    )
    .await
    .unwrap()
    .expect_err("no backend");
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(e.message().contains("connect"), "{e:?}");
}

#[tokio::test]
async fn grpc_past_the_try_timeout_is_deadline_exceeded() {
    let (addr, _b) = start_backend().await;
    let cfg = config(
        "protocol = \"h2\"\ntry_timeout = \"300ms\"\n",
        &[("b1", addr, 1)],
    );
    let t = Tango::start(&cfg);
    let mut c = grpc_client(&t).await;
    c.ready().await.unwrap();
    let e = tokio::time::timeout(
        BOUND,
        c.unary(
            Request::new(msg("slow", 1)),
            path("/test.Echo/Unary"),
            codec(),
        ),
    )
    .await
    .unwrap()
    .expect_err("timed out");
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    // The connection is still good for the next call.
    c.ready().await.unwrap();
    let r = c
        .unary(
            Request::new(msg("again", 1)),
            path("/test.Echo/Unary"),
            codec(),
        )
        .await
        .expect("unary after a timeout");
    assert_eq!(r.get_ref().text, "AGAIN");
}

#[tokio::test]
async fn http1_client_through_an_h2_pool() {
    let (addr, _b) = start_backend().await;
    let t = Tango::start(&h2_config(addr));
    // Content-Length, through the engine.
    let c = client();
    let req = http::Request::post(t.url("/plain?q=1"))
        .header("te", "trailers")
        .header("x-forwarded-for", "203.0.113.7")
        .body(Full::new(Bytes::from_static(b"sized body")))
        .unwrap();
    let (status, body) = send(&c, req).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with("POST /plain authority=127.0.0.1:"),
        "{body}"
    );
    assert!(
        body.contains("xff=203.0.113.7, 127.0.0.1 proto=http te=trailers id=yes conn=-"),
        "{body}"
    );
    assert!(body.ends_with("sized body"), "{body}");
    // Chunked, on a raw socket: the answer comes back chunked, with the trailer.
    let (got, _) = crate::operator::raw(t.addr(), "POST /raw HTTP/1.1\r\nhost: example.test\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").await;
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
    assert!(got.contains("transfer-encoding: chunked\r\n"), "{got}");
    assert!(got.contains("authority=example.test"), "{got}");
    assert!(
        got.contains("hello world\r\n0\r\nx-plain-trailer: end\r\n\r\n"),
        "{got}"
    );
}

#[tokio::test]
async fn h2c_client_through_an_h2_pool() {
    let (addr, _b) = start_backend().await;
    let t = Tango::start(&h2_config(addr));
    let c: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http();
    let req = http::Request::post(t.url("/h2c"))
        .body(Full::new(Bytes::from_static(b"over h2c")))
        .unwrap();
    let resp = tokio::time::timeout(BOUND, c.request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let collected = resp.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().expect("trailers");
    assert_eq!(trailers["x-plain-trailer"], "end");
    let body = String::from_utf8_lossy(&collected.to_bytes()).into_owned();
    assert!(body.starts_with("POST /h2c authority=127.0.0.1:"), "{body}");
    assert!(body.ends_with("over h2c"), "{body}");
}

#[tokio::test]
async fn grpc_from_an_http1_client_to_a_dead_backend_is_answered_as_grpc() {
    let t = Tango::start(&h2_config(dead_addr()));
    let (got, _) = crate::operator::raw(t.addr(), "POST /test.Echo/Unary HTTP/1.1\r\nhost: x\r\ncontent-type: application/grpc\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
    assert!(got.contains("grpc-status: 14\r\n"), "{got}");
    assert!(got.contains("content-length: 0\r\n"), "{got}");
}
