//! Examples of each rule the codec applies; `tests/` holds the property tests and the
//! checks against the `http` crate and the binary's header rules.

mod bodiless;
mod chunks;
mod edits;
mod model;
mod properties;
mod reuse;
mod writes;

use super::*;

const MAX: usize = 8192;

fn req(raw: &[u8]) -> RequestHead {
    match parse_request(raw, MAX) {
        Ok(Some(h)) => h,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(raw)),
    }
}

fn req_err(raw: &[u8]) -> HeadError {
    match parse_request(raw, MAX) {
        Err(e) => e,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(raw)),
    }
}

fn text(buf: &[u8], s: Span) -> &str {
    std::str::from_utf8(s.of(buf)).unwrap()
}

#[test]
fn a_plain_get_is_described_by_spans() {
    let raw = b"GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\nNEXT";
    let h = req(raw);
    assert_eq!(h.method, Method::Get);
    assert_eq!(text(raw, h.method_span), "GET");
    assert_eq!(text(raw, h.target), "/a/b?x=1");
    assert_eq!(text(raw, h.path), "/a/b");
    assert_eq!(text(raw, h.origin), "/a/b?x=1");
    assert_eq!(h.form, TargetForm::Origin);
    assert_eq!(h.version, Version::Http11);
    assert_eq!(&raw[h.head_len..], b"NEXT");
    assert_eq!(h.framing, RequestFraming::None);
    assert!(h.keep_alive && !h.expect_continue && h.upgrade.is_none());
    assert_eq!(text(raw, h.host.unwrap()), "example.com");
    assert_eq!(h.headers.len(), 2);
    let names: Vec<&str> = h.headers.iter().map(|f| text(raw, f.name())).collect();
    assert_eq!(names, ["Host", "User-Agent"]);
}

#[test]
fn an_incomplete_head_asks_for_more_until_the_limit() {
    let raw = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    for end in 0..raw.len() {
        assert_eq!(parse_request(&raw[..end], MAX), Ok(None), "{end}");
    }
    // A head exactly as long as the limit is taken; one byte less is not.
    assert!(parse_request(raw, raw.len()).unwrap().is_some());
    assert_eq!(parse_request(raw, raw.len() - 1), Err(HeadError::TooLarge));
    // A partial head that fills the limit will never fit.
    assert_eq!(parse_request(&raw[..10], 10), Err(HeadError::TooLarge));
    assert_eq!(parse_request(&raw[..10], 11), Ok(None));
}

#[test]
fn empty_lines_before_the_request_line_are_skipped() {
    let raw = b"\r\n\nGET / HTTP/1.0\r\n\r\n";
    let h = req(raw);
    assert_eq!(h.method_span, Span { start: 3, end: 6 });
    assert_eq!(h.head_len, raw.len());
    assert!(h.host.is_none() && !h.keep_alive);
}

#[test]
fn the_framing_guards_refusals_apply() {
    use Refusal::*;
    let cases: [(&[u8], Refusal); 9] = [
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", LengthWithTransferEncoding),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\ncontent-length: 5\r\n\r\n", LengthWithTransferEncoding),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n", BadContentLength),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n", BadContentLength),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", BadContentLength),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", BadTransferEncoding),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", BadTransferEncoding),
        (b"GET / HTTP/1.1\r\n\r\n", MissingHost),
        (b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", MultipleHost),
    ];
    for (raw, why) in cases {
        assert_eq!(
            req_err(raw),
            HeadError::Refused(why),
            "{}",
            String::from_utf8_lossy(raw)
        );
        assert_eq!(HeadError::Refused(why).status(), 400);
    }
    // Equal lengths are one length; HTTP/1.0 needs no Host.
    let h = req(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n");
    assert_eq!(h.framing, RequestFraming::Length(5));
    assert!(req(b"GET / HTTP/1.0\r\n\r\n").host.is_none());
}

#[test]
fn only_plain_chunked_is_forwarded() {
    for te in ["gzip, chunked", "chunked, chunked", "deflate,chunked"] {
        let raw = format!("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {te}\r\n\r\n");
        assert_eq!(
            req_err(raw.as_bytes()),
            HeadError::UnsupportedCoding,
            "{te}"
        );
    }
    let raw = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(req_err(raw), HeadError::UnsupportedCoding);
    assert_eq!(
        HeadError::UnsupportedCoding.text(),
        "bad request: unsupported transfer coding\n"
    );
    let h = req(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:  CHUNKED \r\n\r\n");
    assert_eq!(h.framing, RequestFraming::Chunked);
}

#[test]
fn heads_hyper_refused_are_refused() {
    // Too many fields: 431.
    let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..99 {
        raw.extend_from_slice(format!("x-{i}: v\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    assert_eq!(req(&raw).headers.len(), 100);
    let mut more = raw[..raw.len() - 2].to_vec();
    more.extend_from_slice(b"x-last: v\r\n\r\n");
    assert_eq!(req_err(&more), HeadError::TooLarge);
    // Bad syntax, a bad target, a target too long, a length hyper cannot hold.
    assert_eq!(
        req_err(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
        HeadError::Malformed
    );
    assert_eq!(
        req_err(b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n"),
        HeadError::Malformed
    );
    assert_eq!(
        req_err(b"GET /a<b HTTP/1.1\r\nHost: x\r\n\r\n"),
        HeadError::Malformed
    );
    assert_eq!(
        req_err(b"GET a/b HTTP/1.1\r\nHost: x\r\n\r\n"),
        HeadError::Malformed
    );
    let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(65534));
    assert_eq!(
        parse_request(long.as_bytes(), 1 << 20),
        Err(HeadError::UriTooLong)
    );
    assert_eq!(HeadError::UriTooLong.status(), 414);
    let huge = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\n";
    assert_eq!(req_err(huge), HeadError::TooLarge);
    let name = format!(
        "GET / HTTP/1.1\r\nHost: x\r\n{}: v\r\n\r\n",
        "n".repeat(65536)
    );
    assert_eq!(
        parse_request(name.as_bytes(), 1 << 20),
        Err(HeadError::TooLarge)
    );
}

/// RFC 9112 3.2.3, 3.2.4: CONNECT takes the authority form, and only CONNECT does;
/// only OPTIONS takes `*`. Anything else is refused, never forwarded on a guess.
#[test]
fn a_target_s_form_must_fit_its_method() {
    for raw in [
        &b"GET x.example:80 HTTP/1.1\r\nHost: x.example\r\n\r\n"[..],
        b"POST x.example:80 HTTP/1.1\r\nHost: x.example\r\nContent-Length: 0\r\n\r\n",
        b"CONNECT / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"CONNECT http://x.example/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"CONNECT * HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        assert_eq!(
            parse_request(raw, MAX),
            Err(HeadError::Malformed),
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
    for raw in [
        &b"CONNECT x.example:443 HTTP/1.1\r\nHost: x.example:443\r\n\r\n"[..],
        b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
        b"OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET http://x.example/ HTTP/1.1\r\nHost: y\r\n\r\n",
    ] {
        assert!(req(raw).head_len > 0);
    }
}

/// Userinfo in the authority (`http://user:pass@host/`, in the target or in Host) is
/// refused (RFC 9110 4.2.4: a recipient treats it as an error; it is how a phishing
/// link hides the host it goes to). Forwarded, `u:p@host` went on as the backend's Host.
#[test]
fn userinfo_in_the_authority_is_refused() {
    for raw in [
        &b"GET http://u:p@x.example/ HTTP/1.1\r\nHost: x.example\r\n\r\n"[..],
        b"GET http://x.example@evil.example/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"CONNECT u@x.example:443 HTTP/1.1\r\nHost: x.example:443\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: u:p@x.example\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost: x.example@evil.example\r\n\r\n",
    ] {
        assert_eq!(
            parse_request(raw, MAX),
            Err(HeadError::Malformed),
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
    // An `@` in the path or query is no userinfo.
    assert!(req(b"GET /a@b?c=d@e HTTP/1.1\r\nHost: x\r\n\r\n").head_len > 0);
    assert!(req(b"GET http://x.example/@me HTTP/1.1\r\nHost: x\r\n\r\n").head_len > 0);
}

/// A Host that is no host and port is refused (RFC 9112 3.2); hosts of every form,
/// and an empty Host, are taken.
#[test]
fn a_host_that_is_no_host_is_refused() {
    for host in [
        &b"a b"[..],
        b"x.example/evil",
        b"x.example?q",
        b"x.example#f",
        b"x\\y",
        b"x\"y",
        b"x<y>",
        b"caf\xc3\xa9.example",
    ] {
        let raw = [&b"GET / HTTP/1.1\r\nHost: "[..], host, b"\r\n\r\n"].concat();
        assert_eq!(
            parse_request(&raw, MAX),
            Err(HeadError::Malformed),
            "{}",
            String::from_utf8_lossy(host)
        );
    }
    for host in [
        &b"x.example"[..],
        b"x.example:8080",
        b"[::1]:80",
        b"[v1.x]",
        b"10.0.0.1",
        b"xn--caf-dma.example",
        b"a%2db_c~d!$&'()*+,;=",
        b"",
    ] {
        let raw = [&b"GET / HTTP/1.1\r\nHost: "[..], host, b" \r\n\r\n"].concat();
        assert!(req(&raw).head_len > 0, "{}", String::from_utf8_lossy(host));
    }
}

#[test]
fn keep_alive_follows_the_version_and_connection() {
    let cases: [(&str, &str, bool); 8] = [
        ("1.1", "", true),
        ("1.1", "Connection: close\r\n", false),
        ("1.1", "Connection: keep-alive, Close\r\n", false),
        (
            "1.1",
            "Connection: close\r\nConnection: keep-alive\r\n",
            false,
        ),
        ("1.0", "", false),
        ("1.0", "Connection: Keep-Alive\r\n", true),
        (
            "1.0",
            "Connection: keep-alive\r\nConnection: close\r\n",
            false,
        ),
        ("1.0", "Connection: x-other\r\n", false),
    ];
    for (v, conn, keep) in cases {
        let raw = format!("GET / HTTP/{v}\r\nHost: x\r\n{conn}\r\n");
        assert_eq!(req(raw.as_bytes()).keep_alive, keep, "{v} {conn:?}");
    }
}

#[test]
fn expect_continue_counts_on_http11_only() {
    let h = req(b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n");
    assert!(h.expect_continue);
    let h = req(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n");
    assert!(!h.expect_continue);
}

#[test]
fn upgrades_tango_tunnels() {
    let raw = b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade:  websocket \r\n\r\n";
    assert_eq!(text(raw, req(raw).upgrade.unwrap()), "websocket");
    for raw in [
        &b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: foo, H2C-x\r\n\r\n",
        b"GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
    ] {
        let h = req(raw);
        assert_eq!(h.upgrade, None, "{}", String::from_utf8_lossy(raw));
        // Not tunnelled: Upgrade is hop-by-hop.
        assert!(h
            .headers
            .iter()
            .filter(|f| f.kind() == fields::Kind::Upgrade)
            .all(Header::is_hop_by_hop));
    }
}

#[test]
fn the_absolute_form_gives_host_and_origin() {
    let raw = b"GET http://Example.com:8080/p?q#frag HTTP/1.1\r\nHost: h\r\n\r\n";
    let h = req(raw);
    assert_eq!(h.form, TargetForm::Absolute);
    // RFC 9112 3.2.2: the target's authority, whatever Host says.
    assert_eq!(
        text(raw, h.host.unwrap()),
        "Example.com:8080",
        "the target wins"
    );
    assert_eq!(text(raw, h.origin), "/p?q");
    assert_eq!(text(raw, h.path), "/p");
    let raw = b"GET https://a.example HTTP/1.0\r\n\r\n";
    let h = req(raw);
    assert_eq!(text(raw, h.host.unwrap()), "a.example");
    assert!(h.origin.is_empty());
    let raw = b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n";
    let h = req(raw);
    assert!(h.is_connect());
    assert_eq!(h.form, TargetForm::Authority);
    let h = req(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.form, TargetForm::Asterisk);
}

#[test]
fn a_fragment_is_not_forwarded() {
    let raw = b"GET /a#b<c HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(text(raw, req(raw).origin), "/a");
}

#[test]
fn the_first_request_id_and_every_forwarded_for() {
    let raw = b"GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: one\r\nx-forwarded-for: 1.1.1.1\r\nx-request-id: two\r\nX-Forwarded-For: 2.2.2.2, 3.3.3.3\r\n\r\n";
    let h = req(raw);
    assert_eq!(text(raw, h.request_id.unwrap()), "one");
    let xff: Vec<&str> = h.x_forwarded_for().map(|s| text(raw, s)).collect();
    assert_eq!(xff, ["1.1.1.1", "2.2.2.2, 3.3.3.3"]);
}

#[test]
fn hop_by_hop_fields_are_marked() {
    let raw = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Secret\r\nx-secret: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nProxy-Authorization: p\r\nX-Keep: 1\r\n\r\n";
    let h = req(raw);
    let kept: Vec<&str> = h
        .headers
        .iter()
        .filter(|f| !f.is_hop_by_hop())
        .map(|f| text(raw, f.name()))
        .collect();
    assert_eq!(kept, ["Host", "X-Keep"]);
}

#[test]
fn no_allocation_up_to_the_inline_fields() {
    // A head's only heap storage is the overflow of its field list: a head with up
    // to INLINE_HEADERS fields leaves it unallocated (parsing itself uses the stack).
    let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 1..INLINE_HEADERS {
        raw.extend_from_slice(format!("x-{i}: v\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    let h = req(&raw);
    assert_eq!(h.headers.len(), INLINE_HEADERS);
    assert_eq!(h.headers.more.capacity(), 0);
    assert!(std::mem::size_of::<RequestHead>() < 600);
}

fn resp(raw: &[u8], facts: RequestFacts) -> Result<Option<ResponseHead>, HeadError> {
    parse_response(raw, MAX, facts)
}

fn framing(raw: &[u8], facts: RequestFacts) -> ResponseFraming {
    resp(raw, facts).unwrap().unwrap().framing
}

#[test]
fn response_framing_is_decided_as_hypers_client_did() {
    use ResponseFraming::*;
    let plain = RequestFacts::default();
    let head = RequestFacts {
        is_head: true,
        ..plain
    };
    let connect = RequestFacts {
        is_connect: true,
        ..plain
    };
    assert_eq!(
        framing(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", plain),
        Length(3)
    );
    assert_eq!(
        framing(b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n", plain),
        Length(3)
    );
    assert_eq!(
        framing(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", head),
        NoBody
    );
    assert_eq!(
        framing(
            b"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n",
            plain
        ),
        NoBody
    );
    assert_eq!(framing(b"HTTP/1.1 304 Not Modified\r\n\r\n", plain), NoBody);
    assert_eq!(
        framing(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            plain
        ),
        Chunked
    );
    assert_eq!(
        framing(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", plain),
        CloseDelimited
    );
    assert_eq!(framing(b"HTTP/1.1 200 OK\r\n\r\n", plain), CloseDelimited);
    assert_eq!(framing(b"HTTP/1.0 200 OK\r\n\r\n", plain), CloseDelimited);
    let tunnel = resp(b"HTTP/1.1 200 Connection established\r\n\r\n", connect)
        .unwrap()
        .unwrap();
    assert!(tunnel.switching && !tunnel.keep_alive && tunnel.framing == NoBody);
    let refused = resp(
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
        connect,
    )
    .unwrap()
    .unwrap();
    assert!(!refused.switching && refused.framing == Length(0));
}

#[test]
fn bad_response_framing_is_the_backends_fault() {
    let plain = RequestFacts::default();
    let bad: [(&[u8], HeadError); 6] = [
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            HeadError::Refused(Refusal::BadContentLength),
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\n",
            HeadError::Refused(Refusal::BadContentLength),
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            HeadError::Refused(Refusal::LengthWithTransferEncoding),
        ),
        (
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            HeadError::UnexpectedResponse,
        ),
        (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
            HeadError::UnexpectedResponse,
        ),
        (b"HTTP/1.1 099 Low\r\n\r\n", HeadError::Malformed),
    ];
    for (raw, e) in bad {
        assert_eq!(resp(raw, plain), Err(e), "{}", String::from_utf8_lossy(raw));
    }
    assert_eq!(resp(b"HTTP/1.1 200 OK\r\nX: y\r\n", plain), Ok(None));
    assert_eq!(
        parse_response(b"HTTP/1.1 200 OK\r\nX: y\r\n", 10, plain),
        Err(HeadError::TooLarge)
    );
}

#[test]
fn interim_and_switching_responses() {
    let up = RequestFacts {
        upgrade: true,
        ..RequestFacts::default()
    };
    let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let h = resp(raw, up).unwrap().unwrap();
    assert!(h.interim && !h.switching && h.framing == ResponseFraming::NoBody);
    let next = resp(&raw[h.head_len..], up).unwrap().unwrap();
    assert_eq!(next.status, 200);
    let raw =
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    let h = resp(raw, up).unwrap().unwrap();
    assert!(h.switching && !h.interim && !h.keep_alive);
    let kept: Vec<&str> = h
        .headers
        .iter()
        .filter(|f| !f.is_hop_by_hop())
        .map(|f| text(raw, f.name()))
        .collect();
    assert_eq!(kept, ["Upgrade"]);
}

#[test]
fn upstream_keep_alive() {
    let plain = RequestFacts::default();
    let ka = |raw: &[u8]| resp(raw, plain).unwrap().unwrap().keep_alive;
    assert!(ka(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    assert!(!ka(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    ));
    assert!(!ka(b"HTTP/1.1 200 OK\r\n\r\n"), "close-delimited");
    assert!(!ka(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
    assert!(ka(
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
    ));
}

#[test]
fn the_reason_phrase_is_kept_as_sent() {
    let raw = b"HTTP/1.1 200 Fine Thanks\r\nContent-Length: 0\r\n\r\n";
    let h = resp(raw, RequestFacts::default()).unwrap().unwrap();
    assert_eq!(text(raw, h.reason), "Fine Thanks");
    let raw = b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n";
    let h = resp(raw, RequestFacts::default()).unwrap().unwrap();
    assert!(h.reason.is_empty());
}
