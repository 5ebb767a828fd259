//! HTTP/2 clients at the edges of a request, written frame by frame (`raw`), against
//! backends that count what they got (`sink`): a body that does not keep its
//! content-length, a stream reset in the middle of a body either way, fields HTTP/2
//! forbids, a Host naming another authority than `:authority`, a header block that never
//! ends. What must never happen is a backend taking a request for whole that the client
//! did not send whole, or keeping a connection that carried half of one.

pub mod raw;
pub mod sink;

use crate::support::*;
use raw::{Outcome, Raw, CANCEL, PROTOCOL_ERROR};
use sink::Sink;
use std::time::Duration;

/// Bounds each wait; what is awaited comes much sooner.
const T: Duration = Duration::from_secs(10);

const NO_ERROR: u32 = 0;

/// A raw HTTP/2 connection to tango by prior knowledge.
async fn h2c(t: &Tango) -> Raw {
    let tcp = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    Raw::start(Box::new(tcp)).await
}

/// A request's fields: `extra` after the pseudo-fields.
fn fields<'a>(
    method: &'a str,
    path: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut f = vec![
        (":method", method),
        (":scheme", "http"),
        (":path", path),
        (":authority", "a.example"),
    ];
    f.extend_from_slice(extra);
    f
}

/// DATA beyond the content-length is a stream error (RFC 9113 8.1.1): in the frame
/// that would complete the length, or in one read with the frame that completes it
/// (hyper drops a reset stream's request before the completing data goes on), the
/// backend gets no whole request, and its connection, left waiting for the rest, is
/// closed.
#[tokio::test]
async fn data_beyond_the_content_length_is_a_stream_error_and_no_whole_request() {
    let s = Sink::start().await;
    let t = Tango::start(&config("", &[("a", s.addr, 1)]));
    let cases: [&[&[u8]]; 2] = [&[b"hello!"], &[b"hello", b"!"]];
    for (i, frames) in cases.iter().enumerate() {
        let mut c = h2c(&t).await;
        c.headers(1, &fields("POST", "/up", &[("content-length", "5")]), false)
            .await;
        s.until(|s| s.heads == i + 1).await;
        let mut all = Vec::new();
        for f in frames.iter() {
            all.extend_from_slice(&raw::frame(raw::DATA, 0, 1, f));
        }
        c.write(&all).await;
        assert_eq!(c.outcome(1, T).await, Outcome::Reset(PROTOCOL_ERROR));
        let seen = s.until(|s| s.closed == i + 1).await;
        assert_eq!((seen.whole, seen.cut), (0, i + 1), "{seen:?}");
    }
}

/// A body is whole once its declared length is all in: a client that sends
/// END_STREAM late (or never) gets its answer at once, from an HTTP/1.1 backend (the
/// data that completes the length goes on) and an HTTP/2 one (its stream ends), not
/// when the try's time is up; the late END_STREAM changes nothing, and the connection
/// goes on serving.
#[tokio::test]
async fn a_body_whose_declared_length_is_in_goes_without_end_stream() {
    for h2 in [false, true] {
        let s = if h2 {
            Sink::start_h2().await
        } else {
            Sink::start().await
        };
        let pool = if h2 { "protocol = \"h2\"" } else { "" };
        let t = Tango::start(&config(pool, &[("a", s.addr, 1)]));
        let mut c = h2c(&t).await;
        c.headers(1, &fields("POST", "/up", &[("content-length", "5")]), false)
            .await;
        c.data(1, b"hello", false).await;
        // try_timeout is 15 s.
        let outcome = c.outcome(1, Duration::from_secs(5)).await;
        assert_eq!(outcome, Outcome::Status(200), "h2 {h2}");
        let seen = s.until(|s| s.whole == 1).await;
        assert_eq!((seen.whole, seen.body_bytes), (1, 5), "h2 {h2}: {seen:?}");
        c.data(1, b"", true).await;
        c.headers(3, &fields("GET", "/", &[]), true).await;
        assert_eq!(c.outcome(3, T).await, Outcome::Status(200), "h2 {h2}");
        let seen = s.until(|s| s.whole == 2).await;
        assert_eq!((seen.whole, seen.cut), (2, 0), "h2 {h2}: {seen:?}");
        assert!(
            in_flight_becomes(&t, 0, T).await,
            "h2 {h2}: still in flight"
        );
    }
}

/// DATA short of the content-length, then the stream's end: a stream error, and the
/// backend's connection, left waiting for the rest, is closed.
#[tokio::test]
async fn data_short_of_the_content_length_is_a_stream_error() {
    let s = Sink::start().await;
    let t = Tango::start(&config("", &[("a", s.addr, 1)]));
    let mut c = h2c(&t).await;
    c.headers(1, &fields("POST", "/up", &[("content-length", "5")]), false)
        .await;
    c.data(1, b"hel", true).await;
    assert_eq!(c.outcome(1, T).await, Outcome::Reset(PROTOCOL_ERROR));
    let seen = s.until(|s| s.closed == 1).await;
    assert_eq!(seen.whole, 0, "{seen:?}");
}

/// A client that resets its stream in the middle of its body, with any error code
/// (NO_ERROR included: hyper ends such a body as if it were whole), with or without a
/// declared length, has sent no whole request: the backend, HTTP/1.1 (the body chunked
/// when its length is unknown) or HTTP/2, does not get one, and its connection
/// (HTTP/1.1) or stream (HTTP/2) is ended.
#[tokio::test]
async fn a_client_reset_in_the_middle_of_a_body_leaves_the_backend_no_whole_request() {
    for h2 in [false, true] {
        let s = if h2 {
            Sink::start_h2().await
        } else {
            Sink::start().await
        };
        let pool = if h2 { "protocol = \"h2\"" } else { "" };
        let t = Tango::start(&config(pool, &[("a", s.addr, 1)]));
        let cases = [
            (NO_ERROR, None),
            (CANCEL, None),
            (NO_ERROR, Some(("content-length", "10"))),
            (CANCEL, Some(("content-length", "10"))),
        ];
        for (i, (code, length)) in cases.into_iter().enumerate() {
            let mut c = h2c(&t).await;
            let extra: Vec<_> = length.into_iter().collect();
            c.headers(1, &fields("POST", "/up", &extra), false).await;
            c.data(1, b"part", false).await;
            s.until(|s| s.body_bytes >= 4 * (i as u64 + 1)).await;
            c.reset(1, code).await;
            let seen = s.until(|s| s.cut > i).await;
            assert_eq!(
                (seen.whole, seen.cut),
                (0, i + 1),
                "h2 {h2}, code {code}, {length:?}: {seen:?}"
            );
        }
        assert!(
            in_flight_becomes(&t, 0, T).await,
            "h2 {h2}: still in flight"
        );
    }
}

/// Request trailers from an HTTP/2 client reach an HTTP/2 backend (gRPC's client
/// streams end so), after the body and as the stream's end.
#[tokio::test]
async fn request_trailers_reach_an_h2_backend() {
    let s = Sink::start_h2().await;
    let t = Tango::start(&config("protocol = \"h2\"", &[("a", s.addr, 1)]));
    let mut c = h2c(&t).await;
    c.headers(1, &fields("POST", "/up", &[("te", "trailers")]), false)
        .await;
    c.data(1, b"body", false).await;
    c.headers(1, &[("x-checksum", "abc")], true).await;
    assert_eq!(c.outcome(1, T).await, Outcome::Status(200));
    let seen = s.seen();
    assert_eq!((seen.whole, seen.body_bytes), (1, 4), "{seen:?}");
    assert_eq!(seen.trailers, ["abc"]);
}

/// A client that resets its stream in the middle of a download: the backend's
/// connection, with the rest of the response unread in it, is closed, not kept.
#[tokio::test]
async fn a_client_reset_in_the_middle_of_a_download_lets_the_backend_go() {
    let s = Sink::start().await;
    let t = Tango::start(&config("", &[("a", s.addr, 1)]));
    let mut c = h2c(&t).await;
    c.headers(1, &fields("GET", "/big?n=67108864", &[]), true)
        .await;
    assert_eq!(c.outcome(1, T).await, Outcome::Status(200));
    // Some of the body, up to the client's window, then the reset.
    while let Some(f) = c.next(T).await {
        if f.kind == raw::DATA {
            break;
        }
    }
    c.reset(1, CANCEL).await;
    let seen = s.until(|s| s.downloads_cut == 1).await;
    assert_eq!(seen.downloads_cut, 1, "{seen:?}");
    assert!(in_flight_becomes(&t, 0, T).await, "still in flight");
}

/// Connection-specific fields, and `te` other than `trailers`, make a request malformed
/// (RFC 9113 8.2.2): a stream error, nothing sent on. `te: trailers` is allowed.
#[tokio::test]
async fn connection_specific_fields_are_a_stream_error() {
    let s = Sink::start().await;
    let t = Tango::start(&config("", &[("a", s.addr, 1)]));
    let mut c = h2c(&t).await;
    let forbidden = [
        ("connection", "keep-alive"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "websocket"),
        ("te", "gzip"),
        ("te", "trailers, gzip"),
    ];
    let mut id = 1;
    for field in forbidden {
        c.headers(id, &fields("GET", "/", &[field]), true).await;
        assert_eq!(
            c.outcome(id, T).await,
            Outcome::Reset(PROTOCOL_ERROR),
            "{field:?}"
        );
        id += 2;
    }
    assert_eq!(s.seen().heads, 0, "a malformed request reached the backend");
    c.headers(id, &fields("GET", "/", &[("te", "trailers")]), true)
        .await;
    assert_eq!(c.outcome(id, T).await, Outcome::Status(200));
}

/// A Host field naming another authority than `:authority` (RFC 9113 8.3.1: a server
/// SHOULD treat the request as malformed; nginx answers 400): refused, not sent on. One
/// naming the same host and port, however spelt, is no conflict.
#[tokio::test]
async fn a_host_other_than_the_authority_is_refused() {
    let s = Sink::start().await;
    let t = Tango::start(&config("", &[("a", s.addr, 1)]));
    let mut c = h2c(&t).await;
    c.headers(1, &fields("GET", "/", &[("host", "b.example")]), true)
        .await;
    assert_eq!(c.outcome(1, T).await, Outcome::Status(400));
    assert_eq!(s.seen().heads, 0, "the request reached the backend");
    for (id, same) in [(3, "a.example"), (5, "A.EXAMPLE:80")] {
        c.headers(id, &fields("GET", "/", &[("host", same)]), true)
            .await;
        assert_eq!(c.outcome(id, T).await, Outcome::Status(200), "{same}");
    }
}

/// A header list over `max_header_bytes` (64 KiB), in CONTINUATION frames, is answered
/// `431`; a header block that goes on and on ends the connection long before it is
/// held whole (the CONTINUATION flood): tango reads a bounded amount.
#[tokio::test]
async fn header_blocks_over_the_limit_are_refused() {
    let s = Sink::start().await;
    let t = Tango::start(&config("", &[("a", s.addr, 1)]));
    let mut c = h2c(&t).await;
    // 16 KiB of fields a frame: 80 KiB in five.
    let big = "x".repeat(16_000);
    let more = raw::block(&[("x-big", &big)]);
    let first = raw::block(&fields("GET", "/", &[("x-big", &big)]));
    c.send(raw::HEADERS, raw::END_STREAM, 1, &first).await;
    for last in [false, false, false, true] {
        let flags = if last { raw::END_HEADERS } else { 0 };
        c.send(raw::CONTINUATION, flags, 1, &more).await;
    }
    let outcome = c.outcome(1, T).await;
    assert!(
        matches!(outcome, Outcome::Status(431) | Outcome::Reset(_)),
        "{outcome:?}"
    );
    // 64 MiB, if tango let it all in.
    let mut c = h2c(&t).await;
    let start = raw::block(&fields("GET", "/", &[]));
    c.send(raw::HEADERS, raw::END_STREAM, 1, &start).await;
    let flood = async {
        for _ in 0..4096 {
            c.send(raw::CONTINUATION, 0, 1, &more).await;
        }
        c.outcome(1, T).await
    };
    let outcome = tokio::time::timeout(T * 3, flood).await.expect("in time");
    assert!(
        matches!(outcome, Outcome::GoAway(_) | Outcome::Closed),
        "{outcome:?}"
    );
    assert_eq!(s.seen().heads, 0);
}

/// An HTTP/2 backend's answer that ends with its head (gRPC's trailers-only answer:
/// `grpc-status` in the one HEADERS frame, with END_STREAM) reaches the client the same
/// way. grpc-go takes a head followed by an empty DATA frame with END_STREAM for a
/// stream that ended without trailers: INTERNAL, "server closed the stream without
/// sending trailers", whatever `grpc-status` the head carried.
#[tokio::test]
async fn an_h2_backend_s_answer_that_ends_with_its_head_ends_with_it_here() {
    let s = Sink::start_h2().await;
    let t = Tango::start(&config("protocol = \"h2\"", &[("a", s.addr, 1)]));
    let mut c = h2c(&t).await;
    for id in [1, 3] {
        c.headers(id, &fields("GET", "/", &[]), true).await;
        let head = loop {
            let f = c.next(T).await.expect("an answer");
            if f.kind == raw::HEADERS && f.stream == id {
                break f;
            }
        };
        assert_ne!(
            head.flags & raw::END_STREAM,
            0,
            "stream {id}: not ended by its head"
        );
    }
    assert!(in_flight_becomes(&t, 0, T).await, "still in flight");
}

/// `:path` holds the target's path and query (RFC 9113 8.3.1), or `*` for OPTIONS: an
/// absolute URI there, or a path without its leading `/`, is malformed (routes match
/// the path as it came, and the backend would get another: an absolute URI's own path,
/// past a route that matches `/admin`), and so is `*` with any other method (`GET *`
/// goes to no backend). Refused, not sent on; `OPTIONS *` goes.
#[tokio::test]
async fn a_path_that_is_not_a_path_is_refused() {
    let s = Sink::start().await;
    let t = Tango::start(&config("", &[("a", s.addr, 1)]));
    let mut c = h2c(&t).await;
    let mut id = 1;
    for (method, path) in [
        ("GET", "http://a.example/admin"),
        ("GET", "https://b.example/"),
        ("GET", "admin"),
        ("GET", "*"),
    ] {
        c.headers(id, &fields(method, path, &[]), true).await;
        let outcome = c.outcome(id, T).await;
        assert!(
            matches!(
                outcome,
                Outcome::Status(400) | Outcome::Reset(PROTOCOL_ERROR)
            ),
            "{method} {path}: {outcome:?}"
        );
        id += 2;
    }
    assert_eq!(s.seen().heads, 0, "a malformed path reached the backend");
    c.headers(id, &fields("OPTIONS", "*", &[]), true).await;
    assert_eq!(c.outcome(id, T).await, Outcome::Status(200));
}
