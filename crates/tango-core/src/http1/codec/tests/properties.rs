//! Property tests: the request-target rules are `http::Uri`'s; requests are framed as
//! the framing guard frames them; any bytes are safe and give spans inside the head,
//! however they arrive; a chunked body's end does not depend on how it is split; what
//! the writers produce parses back.

use super::super::super::head::{self as guard, Judged, Length};
use super::chunks::track;
use super::*;
use proptest::prelude::*;

/// Bytes httparse lets through in a request-target, weighted towards URI syntax.
fn target_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => proptest::sample::select(&b"/?#:@[]%.azAZ09-_~!$&'()*+,;=\"{}|<>\\^`"[..]).prop_map(|b| vec![b]),
        1 => (0x21u8..0x7f).prop_map(|b| vec![b]),
        1 => (0x80u8..=0xff).prop_map(|b| vec![b]),
        1 => Just("é".as_bytes().to_vec()),
        2 => proptest::sample::select(vec!["http://", "https://", "HTTP://", "a+b://", "://", "[::1]", "ex.com", ":80"])
            .prop_map(|s| s.as_bytes().to_vec()),
    ];
    proptest::collection::vec(piece, 1..12).prop_map(|p| p.concat())
}

/// A request head with the fields that decide framing and routing, in any mix.
pub(super) fn framing_head() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        Just("Host: x"),
        Just("host: y"),
        Just("Content-Length: 5"),
        Just("content-length: 05"),
        Just("Content-Length: 6"),
        Just("Content-Length: -1"),
        Just("Content-Length: 1,1"),
        Just("Transfer-Encoding: chunked"),
        Just("Transfer-Encoding: gzip"),
        Just("Transfer-Encoding: gzip, chunked"),
        Just("transfer-encoding: Chunked "),
        Just("Transfer-Encoding: chunked, gzip"),
        Just("Connection: close"),
        Just("Upgrade: websocket"),
        Just("X-Other: 1"),
        Just("Transfer-Encoding: \u{e9}chunked"),
    ];
    (
        prop_oneof![Just("1.0"), Just("1.1")],
        prop_oneof![
            Just("/"),
            Just("http://a/b"),
            Just("a:1"),
            Just("/<"),
            Just("*")
        ],
        proptest::collection::vec(field, 0..6),
    )
        .prop_map(|(v, t, fields)| {
            let mut s = format!("POST {t} HTTP/{v}\r\n");
            for f in fields {
                s.push_str(f);
                s.push_str("\r\n");
            }
            s.push_str("\r\n");
            s.into_bytes()
        })
}

/// A well-formed chunked body: chunks with or without extensions, trailers.
fn chunked_body() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(
            (
                "[a-z]{1,40}",
                "(;[a-z]{1,5}(=[a-z0-9]{0,5})?)?",
                any::<bool>(),
            ),
            0..5,
        ),
        proptest::collection::vec("[A-Za-z-]{1,8}: [ -~]{0,10}", 0..3),
    )
        .prop_map(|(chunks, trailers)| {
            let mut s = String::new();
            for (data, ext, upper) in chunks {
                let size = if upper {
                    format!("{:X}", data.len())
                } else {
                    format!("{:x}", data.len())
                };
                s.push_str(&format!("{size}{ext}\r\n{data}\r\n"));
            }
            s.push_str("0\r\n");
            for t in trailers {
                s.push_str(&t);
                s.push_str("\r\n");
            }
            s.push_str("\r\n");
            s.into_bytes()
        })
}

fn spans_in_head(h: &RequestHead) -> bool {
    let end = h.head_len as u32;
    let fields = h.headers.iter().flat_map(|f| [f.name(), f.value()]);
    let facts = [h.method_span, h.target, h.path, h.origin]
        .into_iter()
        .chain(h.upgrade)
        .chain(h.host)
        .chain(h.request_id);
    facts
        .chain(fields)
        .all(|s| s.start <= s.end && s.end <= end)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    /// A target is taken exactly when `http::Uri` takes it, and means the same.
    #[test]
    fn targets_are_read_as_http_uri_reads_them(t in target_bytes()) {
        let ours = target::classify(&t);
        let theirs = http::Uri::try_from(&t[..]);
        prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "{:?} {:?}", ours, theirs);
        let (Ok(ours), Ok(uri)) = (ours, theirs) else { return Ok(()) };
        let slice = |(s, e): (usize, usize)| std::str::from_utf8(&t[s..e]).unwrap();
        prop_assert_eq!(ours.authority.map(slice), uri.authority().map(|a| a.as_str()));
        match ours.form {
            TargetForm::Origin | TargetForm::Asterisk => {
                prop_assert_eq!(Some(slice(ours.origin)), uri.path_and_query().map(|p| p.as_str()));
            }
            TargetForm::Absolute => {
                let pq = slice(ours.origin);
                prop_assert!(uri.scheme().is_some());
                let want = uri.path_and_query().map_or("", |p| p.as_str());
                prop_assert!(pq == want || (pq.is_empty() && want == "/"), "{} {}", pq, want);
            }
            TargetForm::Authority => prop_assert!(uri.scheme().is_none() && uri.path_and_query().is_none()),
        }
        if ours.form != TargetForm::Authority {
            let path = slice((ours.origin.0, ours.path_end));
            prop_assert!(path == uri.path() || (path.is_empty() && uri.path() == "/"));
        }
    }

    /// The framing guard and the parser agree on every refusal and every body.
    #[test]
    fn requests_are_framed_as_the_guard_frames_them(raw in framing_head()) {
        let ours = parse_request(&raw, MAX);
        match (guard::judge(&raw), ours) {
            (Judged::Refused { why, .. }, ours) => prop_assert_eq!(ours, Err(HeadError::Refused(why))),
            (Judged::Request { len, length, .. }, Ok(Some(h))) => {
                prop_assert_eq!(h.head_len, len);
                let same = match (length, h.framing) {
                    (Length::None, RequestFraming::None | RequestFraming::Length(0)) => true,
                    (Length::Bytes(n), RequestFraming::Length(m)) => n == m,
                    (Length::Chunked, RequestFraming::Chunked) => true,
                    _ => false,
                };
                prop_assert!(same, "{:?} {:?}", length, h.framing);
            }
            // Beyond the guard: hyper's target checks and the coding check.
            (Judged::Request { .. }, Err(e)) => {
                prop_assert!(matches!(e, HeadError::Malformed | HeadError::UnsupportedCoding), "{:?}", e);
            }
            (j, ours) => prop_assert!(false, "{:?} {:?}", j, ours),
        }
    }

    /// Any bytes: no panic; a head's spans lie inside it; a head found in a prefix is
    /// the head found in the whole; an error in a prefix is the error of the whole.
    #[test]
    fn any_bytes_are_safe_however_they_arrive(
        raw in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            (framing_head(), proptest::collection::vec(any::<u8>(), 0..40)).prop_map(|(h, t)| [h, t].concat()),
        ],
        cut in any::<prop::sample::Index>(),
        max_head in 16usize..400,
    ) {
        let whole = parse_request(&raw, max_head);
        if let Ok(Some(h)) = &whole {
            prop_assert!(h.head_len <= raw.len().min(max_head));
            prop_assert!(spans_in_head(h));
        }
        let part = parse_request(&raw[..cut.index(raw.len() + 1)], max_head);
        match part {
            Ok(None) => {}
            other => prop_assert_eq!(other, whole),
        }
        let facts = RequestFacts { is_head: cut.index(2) == 0, is_connect: cut.index(3) == 0, upgrade: cut.index(5) == 0 };
        let whole = parse_response(&raw, max_head, facts);
        if let Ok(Some(r)) = &whole {
            prop_assert!(r.head_len <= raw.len().min(max_head) && r.reason.end as usize <= r.head_len);
            prop_assert!(r.headers.iter().all(|f| f.value().end as usize <= r.head_len));
        }
        match parse_response(&raw[..cut.index(raw.len() + 1)], max_head, facts) {
            Ok(None) => {}
            other => prop_assert_eq!(other, whole),
        }
    }

    /// A chunked body ends where it ends, however it is split, and the data ranges
    /// are its data.
    #[test]
    fn chunked_bodies_end_where_they_end(
        body in chunked_body(),
        after in proptest::collection::vec(any::<u8>(), 0..20),
        step in 1usize..50,
    ) {
        let input = [body.clone(), after].concat();
        prop_assert_eq!(track(&input, step), Ok((body.len(), true)));
        prop_assert_eq!(track(&input, input.len()), Ok((body.len(), true)));
    }

    /// Any bytes fed to the tracker: the same verdict at any split, `used` never
    /// beyond the input.
    #[test]
    fn any_bytes_track_the_same_at_any_split(
        input in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            (chunked_body(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(mut b, i, x)| {
                let at = i.index(b.len());
                b[at] = x;
                b
            }),
        ],
        step in 1usize..50,
    ) {
        prop_assert_eq!(track(&input, step), track(&input, input.len().max(1)));
        let mut t = ChunkedTracker::new();
        if let Ok(f) = t.feed(&input) {
            prop_assert!(f.used <= input.len());
        }
    }

    /// What the writers produce parses back, with the same request line facts.
    #[test]
    fn written_heads_parse_back(raw in framing_head(), date in "[A-Za-z0-9 ,:]{0,29}") {
        // Without a Host (HTTP/1.0), none is sent: as today, and not an HTTP/1.1 head.
        let Ok(Some(h)) = parse_request(&raw, MAX) else { return Ok(()) };
        if h.host.is_none() {
            return Ok(());
        }
        let mut out = Vec::new();
        let fwd = Forwarding { peer: b"::1", tls: false, request_id: b"x", edits: None };
        write_request_head(&mut out, &h, &raw, &fwd);
        let back = parse_request(&out, MAX).unwrap().unwrap();
        prop_assert_eq!(back.head_len, out.len());
        prop_assert_eq!(back.framing, h.framing);
        prop_assert_eq!(back.form, if h.form == TargetForm::Asterisk { TargetForm::Asterisk } else if h.is_connect() { TargetForm::Authority } else { TargetForm::Origin });
        let resp = "HTTP/1.1 200 OK\r\nX: y\r\nConnection: x\r\nContent-Length: 0\r\n\r\n";
        let r = parse_response(resp.as_bytes(), MAX, RequestFacts::default()).unwrap().unwrap();
        for version in [Version::Http10, Version::Http11] {
            let mut out = Vec::new();
            let c = ClientFacts { version, keep_alive: true, is_head: false };
            write_response_head(&mut out, &r, resp.as_bytes(), c, date.as_bytes());
            let back = parse_response(&out, MAX, RequestFacts::default()).unwrap().unwrap();
            prop_assert_eq!(back.head_len, out.len());
            prop_assert_eq!(back.version, version);
        }
    }
}
