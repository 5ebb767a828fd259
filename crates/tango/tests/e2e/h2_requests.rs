//! HTTP/2 clients as an HTTP/1.1 backend sees them: the request's fields made into one
//! HTTP/1.1 head (cookie crumbs, Host).

use crate::backend::Backend;
use crate::support::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::time::Duration;

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
