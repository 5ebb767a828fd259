//! How tango frames what a backend sends, by RFC 9112 6.3 and 7.1: a response whose
//! length is ambiguous (Content-Length with Transfer-Encoding, two lengths that differ,
//! a length that is not plain digits), whose chunked framing is broken or overflows, or
//! whose head is too large or cut off is a `502`, and its connection is never used
//! again; chunk extensions and trailers pass; a body broken off after its head went out
//! cuts the client's connection rather than ending as if whole.

use crate::scripted::{exchange, one_worker, send, Scripted, Seen, Step};
use crate::support::*;
use std::time::Duration;

/// Response heads and the body bytes sent with them, by request path.
const CASES: &[(&str, &[u8], u16, &str)] = &[
    (
        "/cl-te",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        502,
        "",
    ),
    (
        "/te-cl",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 16\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        502,
        "",
    ),
    (
        "/cl-differ",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        502,
        "",
    ),
    (
        "/cl-list-differ",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!",
        502,
        "",
    ),
    (
        "/cl-same",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        200,
        "hello",
    ),
    ("/cl-plus", b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello", 502, ""),
    ("/cl-minus", b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello", 502, ""),
    ("/cl-inner", b"HTTP/1.1 200 OK\r\nContent-Length: 5 5\r\n\r\nhello", 502, ""),
    ("/cl-hex", b"HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nhello", 502, ""),
    ("/cl-empty", b"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\nhello", 502, ""),
    (
        "/cl-overflow",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nhello",
        502,
        "",
    ),
    (
        "/cl-padded",
        b"HTTP/1.1 200 OK\r\nContent-Length:   5  \r\n\r\nhello",
        200,
        "hello",
    ),
    (
        "/chunk-overflow",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n",
        502,
        "",
    ),
    (
        "/chunk-negative",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
        502,
        "",
    ),
    (
        "/chunk-bare-lf",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n",
        502,
        "",
    ),
    (
        "/chunk-ext",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=\"v\"\r\nhello\r\n0\r\n\r\n",
        200,
        "hello",
    ),
    (
        "/chunk-trailer",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-t: 1\r\n\r\n",
        200,
        "hello",
    ),
    (
        "/te-on-1.0",
        b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        502,
        "",
    ),
    ("/not-http", b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", 502, ""),
];

/// A head larger than tango takes from a backend (its fields alone are 500 KB).
fn huge_head() -> Vec<u8> {
    let mut h = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..90 {
        h.extend_from_slice(format!("x-pad-{i}: {}\r\n", "p".repeat(5600)).as_bytes());
    }
    h.extend_from_slice(b"Content-Length: 5\r\n\r\nhello");
    h
}

fn script(seen: &Seen) -> Vec<Step> {
    let path = seen.path();
    if let Some((_, bytes, _, _)) = CASES.iter().find(|c| c.0 == path) {
        return vec![send(bytes)];
    }
    match path {
        "/huge-head" => vec![Step::Send(huge_head())],
        "/mid-head" => vec![send(b"HTTP/1.1 200 OK\r\nContent-Le"), Step::Close],
        "/mid-length" => vec![
            send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"),
            Step::Pause(Duration::from_millis(100)),
            Step::Close,
        ],
        "/mid-chunk" => vec![
            send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"),
            Step::Pause(Duration::from_millis(100)),
            Step::Close,
        ],
        _ => vec![send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")],
    }
}

fn status(got: &str) -> u16 {
    got.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn ambiguous_or_broken_response_framing_is_a_502_and_the_connection_is_dropped() {
    let b = Scripted::start(script).await;
    let t = one_worker(&config("max_attempts = 1", &[("a", b.addr, 1)]));
    let mut cases: Vec<(&str, u16, &str)> = CASES.iter().map(|c| (c.0, c.2, c.3)).collect();
    cases.extend([("/huge-head", 502, ""), ("/mid-head", 502, "")]);
    for &(path, want, body) in &cases {
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let got = exchange(t.addr(), req.as_bytes()).await;
        assert_eq!(status(&got), want, "{path}: {got:.400}");
        assert!(got.contains(body), "{path}: {got:.400}");
        // Whatever more the backend sent, the client got one answer.
        assert_eq!(got.matches("HTTP/1.").count(), 1, "{path}: {got:.400}");
    }
    // A connection whose answer was refused carries no other request. (Those whose
    // answers were good may.)
    let seen = b.seen();
    for s in &seen {
        let refused = cases.iter().any(|c| c.0 == s.path() && c.1 == 502);
        let later = seen.iter().filter(|o| o.conn == s.conn && o.nth > s.nth);
        assert!(
            !refused || later.count() == 0,
            "{s:?} was refused, yet its connection was used again: {seen:?}"
        );
    }
}

#[tokio::test]
async fn a_body_cut_off_after_its_head_went_out_cuts_the_client_s_connection() {
    let b = Scripted::start(script).await;
    let t = one_worker(&config("max_attempts = 1", &[("a", b.addr, 1)]));
    for (path, end) in [("/mid-length", "hello"), ("/mid-chunk", "5\r\nhel")] {
        // Keep-alive: tango would answer another request on it, but closes instead.
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        let got = exchange(t.addr(), req.as_bytes()).await;
        assert_eq!(status(&got), 200, "{path}: {got}");
        assert!(
            got.ends_with(end),
            "{path}: cut where the backend broke off: {got}"
        );
    }
}

/// An HTTP/1.0 client cannot take chunks: it gets the data alone, and the end of the
/// body is told by closing. Trailers go nowhere.
#[tokio::test]
async fn a_chunked_answer_to_an_http_1_0_client_is_its_data_then_a_close() {
    let b = Scripted::start(script).await;
    let t = one_worker(&config("max_attempts = 1", &[("a", b.addr, 1)]));
    for path in ["/chunk-trailer", "/chunk-ext"] {
        let req = format!("GET {path} HTTP/1.0\r\n\r\n");
        let got = exchange(t.addr(), req.as_bytes()).await;
        assert!(got.starts_with("HTTP/1.0 200 OK\r\n"), "{path}: {got}");
        assert!(got.ends_with("\r\n\r\nhello"), "{path}: {got}");
        assert!(!got.to_ascii_lowercase().contains("x-t:"), "{path}: {got}");
    }
}
