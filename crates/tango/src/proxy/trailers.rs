//! Trailer fields (RFC 9110 6.5), the rule for which may pass, and their forms on
//! hyper's side, where tango frames bodies itself (the engine passes a chunked body on
//! as it came and filters its trailer section with [`may_trail`],
//! `proxy/h1/trailing.rs`): a client's trailers go in the last chunk of the request an HTTP/1 backend gets
//! ([`last_chunk`]), and an HTTP/1 backend's trailer section is read back into a
//! header map ([`parse_section`]) for hyper, which sends it as HTTP/2 trailers or in
//! the last chunk to an HTTP/1.1 client that accepts them; an engine client's section
//! is read the same way for the trailing HEADERS of the stream it sends an HTTP/2
//! backend. Trailers to and from an HTTP/2 backend are header maps already, and are
//! filtered the same way ([`keep`]).
//!
//! Every way only fields that may be trailers go on ([`may_trail`]). RFC 9110 6.5.1:
//! a field that must be known before the content (framing, routing, authentication,
//! request modifiers, response controls, content format) must not be a trailer, and a
//! recipient that merges trailers into the header section would take it from a place
//! where no one checked it. HTTP/2 forbids connection-specific fields anywhere (RFC
//! 9113 8.2.2), so a backend's `connection` trailer would fail the client's stream.

use super::headers;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use tango_core::http1::codec::{trailer_fields, write_field};

/// The fields dropped from trailers besides the hop-by-hop ones (`headers::HOP_BY_HOP`:
/// connection-specific, RFC 9110 7.6.1, forbidden in HTTP/2, and Transfer-Encoding),
/// each for why it must not be one:
const NOT_TRAILERS: [HeaderName; 22] = [
    // framing: the body is delimited before any trailer is read;
    header::CONTENT_LENGTH,
    header::TRAILER,
    // connection-specific, kept in a head only when it switches protocols;
    header::UPGRADE,
    // routing: the request went where its head said;
    header::HOST,
    header::MAX_FORWARDS,
    // authentication and state: checked, if at all, on the head;
    header::AUTHORIZATION,
    header::WWW_AUTHENTICATE,
    header::COOKIE,
    header::SET_COOKIE,
    // request modifiers and conditionals: acted on before the content;
    header::EXPECT,
    header::RANGE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
    // response controls and content format: how the content is read or kept;
    header::CACHE_CONTROL,
    header::CONTENT_TYPE,
    header::CONTENT_ENCODING,
    header::CONTENT_RANGE,
    header::LOCATION,
    header::RETRY_AFTER,
];

/// Whether a field named `name` may go on as a trailer. Nor may tango's own forwarding
/// fields, which it sets in the head: a trailer of the same name would contradict what
/// tango vouches for to a backend that merges them.
pub(crate) fn may_trail(name: &HeaderName) -> bool {
    let forwarding = [
        &headers::X_FORWARDED_FOR,
        &headers::X_FORWARDED_PROTO,
        &headers::X_FORWARDED_HOST,
        &headers::X_REQUEST_ID,
    ];
    !(headers::HOP_BY_HOP.contains(name)
        || NOT_TRAILERS.contains(name)
        || forwarding.contains(&name))
}

/// The fields of `trailers` that may be trailers ([`may_trail`]), for an HTTP/2
/// stream either way; `None` when none may. A section every field of which may trail
/// (gRPC's status and message) goes on as it came, without a copy.
pub(crate) fn keep(trailers: HeaderMap) -> Option<HeaderMap> {
    if trailers.keys().all(may_trail) {
        return (!trailers.is_empty()).then_some(trailers);
    }
    let mut out = HeaderMap::new();
    for (name, value) in trailers.iter().filter(|(n, _)| may_trail(n)) {
        out.append(name.clone(), value.clone());
    }
    (!out.is_empty()).then_some(out)
}

/// The last chunk carrying the fields of `trailers` that may be trailers: `0`, the
/// trailer section, and the CRLF that ends the body.
pub(crate) fn last_chunk(trailers: &HeaderMap) -> Vec<u8> {
    let mut out = b"0\r\n".to_vec();
    for (name, value) in trailers.iter().filter(|(n, _)| may_trail(n)) {
        write_field(&mut out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Each field of a trailer section (its field lines and the final CRLF, as the chunked
/// tracker hands it on, so within its limits: 16 KiB, 100 lines) that may be a trailer:
/// its name, that name as it came, and its value. `None` when the section is not whole.
pub(crate) fn fields_that_may_trail(
    section: &[u8],
    mut each: impl FnMut(HeaderName, &[u8], &[u8]),
) -> Option<()> {
    trailer_fields(section, |raw, value| {
        if let Ok(name) = HeaderName::from_bytes(raw) {
            if may_trail(&name) {
                each(name, raw, value);
            }
        }
    })
}

/// The fields of a trailer section that may be trailers, as a header map: a backend's
/// for hyper, or an engine client's for an HTTP/2 backend; `None` when none may, or
/// the section is not whole.
pub(crate) fn parse_section(section: &[u8]) -> Option<HeaderMap> {
    let mut out = HeaderMap::new();
    fields_that_may_trail(section, |name, _, value| {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            out.append(name, v);
        }
    })?;
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), HeaderValue::from_str(v).unwrap()))
            .collect()
    }

    #[test]
    fn only_fields_that_may_trail_go_in_the_last_chunk() {
        let t = map(&[
            ("x-checksum", "abc"),
            ("content-length", "9"),
            ("host", "evil.example"),
            ("x-forwarded-for", "6.6.6.6"),
            ("grpc-status", "0"),
            ("authorization", "Basic Zm9v"),
            ("connection", "close"),
        ]);
        let got = last_chunk(&t);
        let got = String::from_utf8(got).unwrap();
        assert!(
            got.starts_with("0\r\n") && got.ends_with("\r\n\r\n"),
            "{got:?}"
        );
        let mut lines: Vec<_> = got.lines().skip(1).filter(|l| !l.is_empty()).collect();
        lines.sort_unstable();
        assert_eq!(lines, ["grpc-status: 0", "x-checksum: abc"]);
        // Nothing that may trail: the plain last chunk.
        assert_eq!(last_chunk(&map(&[("te", "trailers")])), b"0\r\n\r\n");
        assert_eq!(last_chunk(&HeaderMap::new()), b"0\r\n\r\n");
    }

    #[test]
    fn an_h2_trailer_section_keeps_only_what_may_trail() {
        let grpc = map(&[("grpc-status", "0"), ("grpc-message", "ok")]);
        assert_eq!(keep(grpc.clone()), Some(grpc));
        let mixed = map(&[
            ("grpc-status", "13"),
            ("content-length", "9"),
            ("set-cookie", "a=b"),
            ("x-forwarded-for", "6.6.6.6"),
        ]);
        let kept = keep(mixed).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept.get("grpc-status").unwrap(), "13");
        assert_eq!(keep(map(&[("content-type", "text/html")])), None);
        assert_eq!(keep(HeaderMap::new()), None);
    }

    #[test]
    fn a_backend_s_section_is_read_and_filtered() {
        let s = b"X-Checksum: abc\r\nContent-Length: 99\r\nx-many: 1\r\nx-many: 2\r\n\r\n";
        let got = parse_section(s).unwrap();
        assert_eq!(got.get("x-checksum").unwrap(), "abc");
        let many: Vec<_> = got.get_all("x-many").iter().collect();
        assert_eq!(many, ["1", "2"]);
        assert_eq!(got.len(), 3);
        // Only fields that must not be trailers, or no whole section: no trailers.
        assert!(parse_section(b"Transfer-Encoding: chunked\r\nTrailer: x\r\n\r\n").is_none());
        assert!(parse_section(b"X-Checksum: abc\r\n").is_none());
        assert!(parse_section(b"").is_none());
    }

    #[test]
    fn every_name_hyper_refuses_as_a_trailer_is_dropped() {
        // hyper's HTTP/1.1 server leaves these out of the trailers it writes; tango
        // drops them for HTTP/2 clients and backends alike.
        for n in [
            "authorization",
            "cache-control",
            "content-encoding",
            "content-length",
            "content-range",
            "content-type",
            "host",
            "max-forwards",
            "set-cookie",
            "trailer",
            "transfer-encoding",
            "te",
        ] {
            assert!(!may_trail(&n.parse().unwrap()), "{n}");
        }
        assert!(may_trail(&"grpc-message".parse().unwrap()));
        assert!(may_trail(&"server-timing".parse().unwrap()));
    }
}
