//! HTTP/2 clients that ask for more than they may, or ask oddly: more concurrent
//! streams than the connection allows, malformed pseudo-header fields, extended
//! CONNECT that was never offered, content-lengths that are no length, HEAD, and GET
//! with a body, an HPACK bomb, a rapid reset flood. Written frame by frame (`h2_edges::raw`) where a well-behaved client
//! library would refuse to send it.

use crate::h2_edges::raw::{self, Outcome, Raw, PROTOCOL_ERROR};
use crate::h2_edges::sink::Sink;
use crate::support::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::time::Duration;

/// Bounds each wait; what is awaited comes much sooner.
const T: Duration = Duration::from_secs(10);

const REFUSED_STREAM: u32 = 0x7;
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// The concurrent streams tango's HTTP/2 server allows a connection (hyper's default).
const MAX_STREAMS: u32 = 200;

async fn h2c_raw(t: &Tango) -> Raw {
    let tcp = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    Raw::start(Box::new(tcp)).await
}

fn post(path: &str) -> Vec<(&str, &str)> {
    vec![
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "a.example"),
        ("content-length", "2"),
    ]
}

/// Streams past the connection's limit, each a request whose body has not come yet:
/// those beyond it are refused (REFUSED_STREAM: the client may send them again), the
/// others are served once their bodies come, and nothing stays in flight.
#[tokio::test]
async fn streams_beyond_the_limit_are_refused_and_the_rest_served() {
    let s = Sink::start().await;
    let t = Tango::start(&config("", &[("a", s.addr, 1)]));
    let mut c = h2c_raw(&t).await;
    let extra = 10;
    let ids: Vec<u32> = (0..MAX_STREAMS + extra).map(|i| 2 * i + 1).collect();
    for &id in &ids {
        c.headers(id, &post("/up"), false).await;
    }
    // The refusals come at once; then each of the others gets its body, and its answer.
    let mut refused = std::collections::HashSet::new();
    while refused.len() < extra as usize {
        let f = c.next(T).await.expect("the refusals");
        if f.kind == raw::RST_STREAM {
            let code = u32::from_be_bytes(f.payload[..4].try_into().unwrap());
            assert_eq!(code, REFUSED_STREAM, "stream {}", f.stream);
            refused.insert(f.stream);
        }
    }
    s.until(|s| s.heads >= MAX_STREAMS as usize).await;
    for id in ids.iter().filter(|id| !refused.contains(id)) {
        c.data(*id, b"ok", true).await;
    }
    let mut served = std::collections::HashSet::new();
    while served.len() < MAX_STREAMS as usize {
        let f = c.next(T).await.expect("an answer for every stream served");
        assert_ne!(f.kind, raw::RST_STREAM, "stream {} reset", f.stream);
        if f.kind == raw::HEADERS {
            served.insert(f.stream);
        }
    }
    assert!(served.is_disjoint(&refused));
    let seen = s.until(|s| s.whole == MAX_STREAMS as usize).await;
    assert_eq!(
        (seen.whole, seen.cut),
        (MAX_STREAMS as usize, 0),
        "{seen:?}"
    );
    assert!(in_flight_becomes(&t, 0, T).await, "still in flight");
}

/// Pseudo-header fields HTTP/2 forbids or requires (RFC 9113 8.3): each a stream error,
/// none reaching the backend.
#[tokio::test]
async fn malformed_pseudo_header_fields_are_stream_errors() {
    let s = Sink::start().await;
    let t = Tango::start(&config("", &[("a", s.addr, 1)]));
    let base = [
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "a.example"),
    ];
    let without = |name: &str| -> Vec<(&str, &str)> {
        base.iter().copied().filter(|(n, _)| *n != name).collect()
    };
    let with = |more: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> {
        base.iter().chain(more).copied().collect()
    };
    let mut after_regular = vec![("x-a", "1")];
    after_regular.extend_from_slice(&base);
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("no :method", without(":method")),
        ("no :scheme", without(":scheme")),
        ("no :path", without(":path")),
        (
            "empty :path",
            [without(":path"), vec![(":path", "")]].concat(),
        ),
        ("two :path", with(&[(":path", "/admin")])),
        (":status", with(&[(":status", "200")])),
        ("unknown pseudo", with(&[(":foo", "bar")])),
        ("pseudo after regular", after_regular),
        ("upper-case name", with(&[("X-Upper", "1")])),
        (
            "extended CONNECT not offered",
            vec![
                (":method", "CONNECT"),
                (":protocol", "websocket"),
                (":scheme", "http"),
                (":path", "/chat"),
                (":authority", "a.example"),
            ],
        ),
    ];
    // h2 ends the connection for an unknown pseudo-header field (GOAWAY) where RFC
    // 9113 8.1.1 asks only for a stream error: stricter, and as safe. A connection each.
    for (what, fields) in &cases {
        let mut c = h2c_raw(&t).await;
        c.headers(1, fields, true).await;
        let outcome = c.outcome(1, T).await;
        assert!(
            matches!(
                outcome,
                Outcome::Reset(PROTOCOL_ERROR)
                    | Outcome::Status(400)
                    | Outcome::GoAway(PROTOCOL_ERROR)
            ),
            "{what}: {outcome:?}"
        );
    }
    assert_eq!(s.seen().heads, 0, "a malformed request reached the backend");
    let mut c = h2c_raw(&t).await;
    c.headers(1, &base, true).await;
    assert_eq!(c.outcome(1, T).await, Outcome::Status(200));
}

/// HEAD over HTTP/2 gets the head a GET would (its content-length) and no body; a GET
/// with a body has it forwarded with its length.
#[tokio::test]
async fn head_has_no_body_and_a_get_s_body_goes_on() {
    let b = crate::backend::Backend::start("a").await;
    let t = Tango::start(&config("", &[("a", b.addr, 1)]));
    let mut h2 = h2c(&t).await;
    let (status, body) = h2_get(h2.clone(), &t, "/").await;
    assert_eq!(status, 200);
    let req = http::Request::head(format!("http://{}/", t.addr()))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tokio::time::timeout(T, h2.send_request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let length = body.len().to_string();
    assert_eq!(
        resp.headers().get("content-length").unwrap(),
        length.as_str()
    );
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(body.is_empty(), "{} bytes", body.len());
    let req = http::Request::get(format!("http://{}/sink", t.addr()))
        .body(Full::new(Bytes::from_static(b"twelve bytes")))
        .unwrap();
    let resp = tokio::time::timeout(T, h2.send_request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "12");
}

/// A header block a few KiB long that decodes to 40 MB (an HPACK bomb: one 4 KB field
/// put in the dynamic table, then named by its index ten thousand times, a byte each):
/// refused by its decoded size (h2 ends such a connection with ENHANCE_YOUR_CALM), and
/// tango serves on.
#[tokio::test]
async fn a_header_block_that_decodes_to_megabytes_is_refused() {
    let s = Sink::start().await;
    let t = Tango::start(&config("", &[("a", s.addr, 1)]));
    let mut c = h2c_raw(&t).await;
    let big = "x".repeat(4000);
    let mut block = raw::block(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "a.example"),
    ]);
    // A literal with incremental indexing (0x40) rather than without (0x00): the
    // first entry of the dynamic table, index 62, an indexed field 0x80 | 62.
    let mut indexed = raw::block(&[("x-bomb", &big)]);
    indexed[0] = 0x40;
    block.extend_from_slice(&indexed);
    block.extend(std::iter::repeat_n(0x80 | 62, 10_000));
    c.send(raw::HEADERS, raw::END_HEADERS | raw::END_STREAM, 1, &block)
        .await;
    let outcome = c.outcome(1, T).await;
    assert!(
        matches!(
            outcome,
            Outcome::Status(431) | Outcome::Reset(_) | Outcome::GoAway(_)
        ),
        "{outcome:?}"
    );
    assert_eq!(s.seen().heads, 0);
    let (status, _) = h2c_get(&t, "/").await;
    assert_eq!(status, 200);
}

/// Rapid reset (CVE-2023-44487): twenty thousand streams, each reset right after its
/// request, in one write. Each would cost a backend request were it served; the
/// connection is ended (ENHANCE_YOUR_CALM) with next to none having reached one.
#[tokio::test]
async fn a_rapid_reset_flood_ends_the_connection() {
    let s = Sink::start().await;
    let t = Tango::start(&config("", &[("a", s.addr, 1)]));
    let mut c = h2c_raw(&t).await;
    let block = raw::block(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "a.example"),
    ]);
    let n = 20_000;
    let mut all = Vec::new();
    for id in (0..n).map(|i| 2 * i + 1) {
        let flags = raw::END_HEADERS | raw::END_STREAM;
        all.extend_from_slice(&raw::frame(raw::HEADERS, flags, id, &block));
        all.extend_from_slice(&raw::frame(
            raw::RST_STREAM,
            0,
            id,
            &raw::CANCEL.to_be_bytes(),
        ));
    }
    c.write(&all).await;
    let goaway = loop {
        let f = c.next(T).await.expect("a GOAWAY");
        if f.kind == raw::GOAWAY {
            break u32::from_be_bytes(f.payload[4..8].try_into().unwrap());
        }
    };
    assert_eq!(goaway, ENHANCE_YOUR_CALM);
    let heads = s.seen().heads;
    assert!(heads < 100, "{heads} of {n} requests reached the backend");
    assert!(in_flight_becomes(&t, 0, T).await, "still in flight");
}

/// A content-length the stream cannot keep, or that is no length (RFC 9113 8.1.1,
/// RFC 9110 8.6): declared over an empty body (END_STREAM on the head), not a number,
/// negative, or given twice over. A stream error each, before a backend has anything.
#[tokio::test]
async fn content_lengths_that_are_no_length_are_stream_errors() {
    let s = Sink::start().await;
    let t = Tango::start(&config("", &[("a", s.addr, 1)]));
    let cases: [(&[(&str, &str)], bool); 5] = [
        (&[("content-length", "5")], true),
        (&[("content-length", "abc")], false),
        (&[("content-length", "-1")], false),
        (&[("content-length", "5"), ("content-length", "6")], false),
        (&[("content-length", "5, 5")], false),
    ];
    for (extra, ends_with_head) in cases {
        let mut c = h2c_raw(&t).await;
        let fields = [post("/up")[..4].to_vec(), extra.to_vec()].concat();
        c.headers(1, &fields, ends_with_head).await;
        if !ends_with_head {
            c.data(1, b"hello", true).await;
        }
        let outcome = c.outcome(1, T).await;
        assert_eq!(outcome, Outcome::Reset(PROTOCOL_ERROR), "{extra:?}");
    }
    assert_eq!(s.seen().heads, 0, "such a request reached the backend");
}

/// A request without `:authority` whose Host is no authority (a space, a path, a query,
/// an unclosed IPv6 bracket in it), to a pool of HTTP/2 backends, where Host must
/// become `:authority`: the request's mistake, answered `400` as the engine answers it,
/// not a `502` counted as the backend's failure to its clients.
#[tokio::test]
async fn a_host_that_is_no_authority_is_refused_for_an_h2_pool() {
    let s = Sink::start_h2().await;
    let t = Tango::start(&config("protocol = \"h2\"", &[("a", s.addr, 1)]));
    for host in ["a b", "a/b", "a?b", "[::1"] {
        let mut c = h2c_raw(&t).await;
        let fields = [
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            ("host", host),
        ];
        c.headers(1, &fields, true).await;
        assert_eq!(c.outcome(1, T).await, Outcome::Status(400), "{host:?}");
    }
    assert_eq!(s.seen().heads, 0);
    let status = admin_get(&t, "/api/v1/status").await;
    assert_eq!(status["pools"][0]["backends"][0]["errors"], 0, "{status}");
}
