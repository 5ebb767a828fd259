//! Fuzz the proxy engine's sans-I/O codec (`tango_core::http1::codec`) with any bytes:
//! as a request head, as a response head (for each kind of request it may answer) and
//! as a chunked body fed in pieces. Besides not panicking, it checks:
//! - a head's length is within the input and the limit, and every span within the head;
//! - a head found in a prefix of the input is the head found in all of it, and an
//!   error in a prefix is the error of all of it (reads may split a head anywhere);
//! - what the writers make of a head parses back (the request as a request with the
//!   same framing, the response as a response in the client's version);
//! - parsing into a head that held another one (the engine reuses its head boxes) gives
//!   what parsing into a fresh one gives, for requests and responses;
//! - a chunked body's verdict (where it ends, or the offset of the bad byte) is the same
//!   whether fed whole or in pieces, never uses more than it was given, and hands out
//!   data ranges in order inside each piece.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tango_core::http1::codec::{
    parse_request, parse_request_into, parse_response, parse_response_into, write_request_head,
    write_response_head, ChunkedTracker, ClientFacts, Forwarding, HeadError, Refusal, RequestFacts,
    RequestHead, ResponseHead, Span, Version,
};

fn within(s: Span, end: usize) -> bool {
    s.start <= s.end && s.end as usize <= end
}

fn request_spans(h: &RequestHead) -> bool {
    let facts = [h.method_span, h.target, h.path, h.origin]
        .into_iter()
        .chain(h.upgrade)
        .chain(h.host)
        .chain(h.request_id);
    let fields = h.headers.iter().flat_map(|f| [f.name(), f.value()]);
    facts.chain(fields).all(|s| within(s, h.head_len))
}

fn request(input: &[u8], max_head: usize, cut: usize) {
    let whole = parse_request(input, max_head);
    match parse_request(&input[..cut], max_head) {
        Ok(None) => {}
        part => assert_eq!(part, whole, "a prefix decides as the whole"),
    }
    let Ok(Some(h)) = whole else { return };
    assert!(h.head_len <= input.len().min(max_head));
    assert!(request_spans(&h));
    let fwd = Forwarding {
        peer: b"192.0.2.1",
        tls: cut % 2 == 0,
        request_id: b"0123456789abcdef",
        edits: None,
    };
    let mut out = Vec::new();
    write_request_head(&mut out, &h, input, &fwd);
    match parse_request(&out, out.len()) {
        Ok(Some(back)) => {
            assert_eq!(back.head_len, out.len());
            assert_eq!(back.framing, h.framing);
            assert_eq!(back.upgrade.is_some(), h.upgrade.is_some());
        }
        // The fields tango adds may pass the limit; without a Host none is sent.
        Err(HeadError::TooLarge) => assert!(h.headers.len() > 90),
        Err(HeadError::Refused(Refusal::MissingHost)) => assert!(h.host.is_none()),
        other => panic!("a written request head does not parse back: {other:?}"),
    }
}

fn response(input: &[u8], max_head: usize, cut: usize, facts: RequestFacts) {
    let whole = parse_response(input, max_head, facts);
    match parse_response(&input[..cut], max_head, facts) {
        Ok(None) => {}
        part => assert_eq!(part, whole, "a prefix decides as the whole"),
    }
    let Ok(Some(r)) = whole else { return };
    assert!(r.head_len <= input.len().min(max_head));
    assert!(within(r.reason, r.head_len));
    assert!(r
        .headers
        .iter()
        .all(|f| within(f.name(), r.head_len) && within(f.value(), r.head_len)));
    for version in [Version::Http10, Version::Http11] {
        let client = ClientFacts {
            version,
            keep_alive: cut % 3 != 0,
            is_head: facts.is_head,
        };
        let mut out = Vec::new();
        write_response_head(
            &mut out,
            &r,
            input,
            client,
            b"Sun, 06 Nov 1994 08:49:37 GMT",
        );
        if out.is_empty() {
            assert!(r.interim && version == Version::Http10);
            continue;
        }
        match parse_response(
            &out,
            out.len(),
            RequestFacts {
                upgrade: true,
                ..facts
            },
        ) {
            Ok(Some(back)) => {
                assert_eq!(back.head_len, out.len());
                assert_eq!(back.version, version);
                assert_eq!(back.status, r.status);
            }
            Err(HeadError::TooLarge) => assert!(r.headers.len() > 95),
            other => panic!("a written response head does not parse back: {other:?}"),
        }
    }
}

/// The head of `input[cut..]`, parsed into a head that first took whatever `input`
/// holds, is the head parsed into a fresh one: nothing of the first stays behind.
fn reuse(input: &[u8], max_head: usize, cut: usize, facts: RequestFacts) {
    let next = &input[cut..];
    let mut req = RequestHead::default();
    let _ = parse_request_into(input, max_head, &mut req);
    let again = parse_request_into(next, max_head, &mut req);
    let fresh = parse_request(next, max_head);
    match (again, fresh) {
        (Ok(true), Ok(Some(h))) => {
            assert_eq!(req, h, "a reused request head");
            // What is kept beside the fields (kinds present, Connection's tokens) shows
            // in what is written.
            let fwd = Forwarding {
                peer: b"192.0.2.1",
                tls: false,
                request_id: b"0123456789abcdef",
                edits: None,
            };
            let (mut a, mut b) = (Vec::new(), Vec::new());
            write_request_head(&mut a, &req, next, &fwd);
            write_request_head(&mut b, &h, next, &fwd);
            assert_eq!(a, b, "a reused request head is written the same");
        }
        (Ok(false), Ok(None)) => {}
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("a reused request head decides otherwise: {a:?} against {b:?}"),
    }
    let mut resp = ResponseHead::default();
    let _ = parse_response_into(input, max_head, facts, &mut resp);
    let again = parse_response_into(next, max_head, facts, &mut resp);
    let fresh = parse_response(next, max_head, facts);
    match (again, fresh) {
        (Ok(true), Ok(Some(h))) => {
            assert_eq!(resp, h, "a reused response head");
            assert_eq!(resp.has_date(), h.has_date());
            let client = ClientFacts {
                version: Version::Http11,
                keep_alive: true,
                is_head: facts.is_head,
            };
            let (mut a, mut b) = (Vec::new(), Vec::new());
            write_response_head(
                &mut a,
                &resp,
                next,
                client,
                b"Sun, 06 Nov 1994 08:49:37 GMT",
            );
            write_response_head(&mut b, &h, next, client, b"Sun, 06 Nov 1994 08:49:37 GMT");
            assert_eq!(a, b, "a reused response head is written the same");
        }
        (Ok(false), Ok(None)) => {}
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("a reused response head decides otherwise: {a:?} against {b:?}"),
    }
}

/// The verdict of feeding `input` in pieces of `step`: bytes used and whether done, or
/// the bad byte's offset in `input`.
fn track(input: &[u8], step: usize) -> Result<(usize, bool), usize> {
    let mut t = ChunkedTracker::new();
    let mut used = 0;
    for (k, piece) in input.chunks(step).enumerate() {
        let mut last = 0;
        let fed = t.feed_data(piece, |r| {
            assert!(r.start >= last && r.start <= r.end && r.end <= piece.len());
            last = r.end;
        });
        match fed {
            Ok(f) => {
                assert!(f.used <= piece.len() && last <= f.used);
                used += f.used;
                if f.done {
                    return Ok((used, true));
                }
                assert_eq!(f.used, piece.len());
            }
            Err(e) => {
                assert!(e.at < piece.len());
                return Err(k * step + e.at);
            }
        }
    }
    Ok((used, false))
}

fuzz_target!(|data: &[u8]| {
    // The first two bytes choose the request facts, the head limit, the prefix and the
    // read size.
    let [a, b, input @ ..] = data else { return };
    let max_head = 16 + 64 * usize::from(*b);
    let cut = if input.is_empty() {
        0
    } else {
        usize::from(*a) * 257 % (input.len() + 1)
    };
    request(input, max_head, cut);
    let facts = RequestFacts {
        is_head: a & 1 != 0,
        is_connect: a & 2 != 0,
        upgrade: a & 4 != 0,
    };
    response(input, max_head, cut, facts);
    reuse(input, max_head, cut, facts);
    let step = 1 + usize::from(*b % 64);
    let pieces = track(input, step);
    assert_eq!(
        pieces,
        track(input, input.len().max(1)),
        "the same at any split"
    );
    if let Ok((used, _)) = pieces {
        assert!(used <= input.len());
    }
});
