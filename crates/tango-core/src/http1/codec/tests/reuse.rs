//! The engine parses each head into a box it reuses: a head parsed into one that held
//! another (longer, shorter, refused) must be what a new head gets. And field names are
//! classified a word at a time: that must be exactly a comparison in any case.

use super::super::fields::Kind;
use super::model::request;
use super::properties::framing_head;
use super::*;
use proptest::prelude::*;

/// The names the codec acts on, and their kinds.
const NAMES: [(&str, Kind); 16] = [
    ("te", Kind::Te),
    ("host", Kind::Host),
    ("date", Kind::Date),
    ("expect", Kind::Expect),
    ("upgrade", Kind::Upgrade),
    ("connection", Kind::Connection),
    ("keep-alive", Kind::KeepAlive),
    ("x-request-id", Kind::XRequestId),
    ("content-length", Kind::ContentLength),
    ("x-forwarded-for", Kind::XForwardedFor),
    ("proxy-connection", Kind::ProxyConnection),
    ("x-forwarded-host", Kind::XForwardedHost),
    ("transfer-encoding", Kind::TransferEncoding),
    ("x-forwarded-proto", Kind::XForwardedProto),
    ("proxy-authenticate", Kind::ProxyAuthenticate),
    ("proxy-authorization", Kind::ProxyAuthorization),
];

/// The kind by the plain rule: equal to a known name, ignoring ASCII case.
fn kind_by_bytes(name: &[u8]) -> Kind {
    NAMES
        .iter()
        .find(|(n, _)| name.eq_ignore_ascii_case(n.as_bytes()))
        .map_or(Kind::Other, |&(_, k)| k)
}

/// A known name with some bytes changed: case flipped, or any byte put in (the bytes
/// next to a letter's case, `-` and its neighbours, CR, bytes past ASCII).
fn near_name() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        any::<u8>(),
        proptest::sample::select(&b"-\r\x0d\x2c\x2e\x0d@[`{\xc1\xe1AaZz09"[..]),
    ];
    (
        proptest::sample::select(&NAMES[..]),
        proptest::collection::vec(
            (any::<proptest::sample::Index>(), any::<bool>(), byte),
            0..3,
        ),
    )
        .prop_map(|((n, _), edits)| {
            let mut b = n.as_bytes().to_vec();
            for (i, flip, c) in edits {
                let i = i.index(b.len());
                b[i] = if flip { b[i] ^ 0x20 } else { c };
            }
            b
        })
}

/// Parse `second` into a head that first took `first`, and into a new head: the same.
fn same_as_new(first: &[u8], second: &[u8]) -> Result<(), TestCaseError> {
    let mut head = RequestHead::default();
    let _ = parse_request_into(first, MAX, &mut head);
    let reused = parse_request_into(second, MAX, &mut head);
    let new = parse_request(second, MAX);
    prop_assert_eq!(reused, new.as_ref().map(Option::is_some).map_err(|e| *e));
    if let Ok(Some(new)) = new {
        prop_assert_eq!(&head, &new);
        prop_assert_eq!(format!("{head:?}"), format!("{new:?}"));
    }
    Ok(())
}

/// A head with more fields than are kept inline.
fn long_head() -> Vec<u8> {
    let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: a-1\r\nUpgrade: w\r\n".to_vec();
    for i in 0..INLINE_HEADERS + 5 {
        raw.extend_from_slice(format!("a-{i}: v\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    raw
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    /// Kinds are what a byte-by-byte comparison in any case gives.
    #[test]
    fn kinds_are_equality_in_any_case(name in prop_oneof![near_name(), proptest::collection::vec(any::<u8>(), 0..26)]) {
        prop_assert_eq!(Kind::of(&name), kind_by_bytes(&name), "{:?}", String::from_utf8_lossy(&name));
    }

    /// A reused request head is overwritten whole.
    #[test]
    fn a_reused_request_head_is_a_new_one(
        first in prop_oneof![request(), framing_head(), Just(long_head())],
        second in prop_oneof![request(), framing_head(), Just(long_head())],
    ) {
        same_as_new(&first, &second)?;
    }

    /// A reused response head is overwritten whole.
    #[test]
    fn a_reused_response_head_is_a_new_one(
        first in proptest::collection::vec(response_field(), 0..30),
        second in proptest::collection::vec(response_field(), 0..30),
        upgrade in any::<bool>(),
    ) {
        let facts = RequestFacts { upgrade, ..RequestFacts::default() };
        let (first, second) = (response(&first), response(&second));
        let mut head = ResponseHead::default();
        let _ = parse_response_into(&first, MAX, facts, &mut head);
        let reused = parse_response_into(&second, MAX, facts, &mut head);
        let new = parse_response(&second, MAX, facts);
        prop_assert_eq!(reused, new.as_ref().map(Option::is_some).map_err(|e| *e));
        if let Ok(Some(new)) = new {
            prop_assert_eq!(&head, &new);
        }
    }
}

/// Response fields, the status line among them (a field line picked as the first is
/// the status line: an invalid head now and then is meant).
fn response_field() -> proptest::sample::Select<&'static str> {
    proptest::sample::select(
        &[
            "HTTP/1.1 101 Switching",
            "HTTP/1.0 200 OK",
            "Content-Length: 3",
            "Transfer-Encoding: chunked",
            "Connection: close, x-a",
            "Connection: keep-alive",
            "Upgrade: websocket",
            "Date: today",
            "x-a: 1",
            "Server: s",
        ][..],
    )
}

fn response(lines: &[&str]) -> Vec<u8> {
    let mut s = String::from("HTTP/1.1 200 OK\r\n");
    for l in lines {
        s.push_str(l);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s.into_bytes()
}

#[test]
fn a_long_head_then_a_short_one_keeps_no_stale_field() {
    let mut head = RequestHead::default();
    assert_eq!(parse_request_into(&long_head(), MAX, &mut head), Ok(true));
    assert!(head.headers.len() > INLINE_HEADERS);
    let short = b"GET /a HTTP/1.1\r\nHost: y\r\n\r\n";
    assert_eq!(parse_request_into(short, MAX, &mut head), Ok(true));
    assert_eq!(head.headers.len(), 1);
    assert_eq!(head.headers.iter().count(), 1);
    assert_eq!(head, parse_request(short, MAX).unwrap().unwrap());
}
