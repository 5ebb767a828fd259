//! tango's own answer to a gRPC request it could not get answered (no backend, a
//! failed connect, a timeout): as gRPC answers, and as Envoy does, an HTTP `200` whose
//! head carries `grpc-status` and `grpc-message` and ends the stream (a Trailers-Only
//! response), since gRPC clients read the outcome there and not in the HTTP status.
//! The status follows gRPC's HTTP mapping (UNAVAILABLE for a proxy's 502 and 503),
//! except a timeout, which is DEADLINE_EXCEEDED so that clients do not retry it.

use super::body::ProxyBody;
use super::error::ProxyError;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Response};

/// The request is gRPC (`application/grpc`, `application/grpc+proto`, ...).
pub(crate) fn is_grpc(h: &HeaderMap) -> bool {
    h.get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// The gRPC status code for a failure of tango's.
pub(crate) fn status_of(e: &ProxyError) -> u8 {
    match e {
        // INTERNAL and UNIMPLEMENTED: gRPC's mapping of 400, and of 404 and 501.
        ProxyError::BadRequest(_) | ProxyError::MissingKey => 13,
        ProxyError::NoRoute | ProxyError::NotImplemented(_) => 12,
        // DEADLINE_EXCEEDED: the request did not arrive in time.
        ProxyError::Timeout | ProxyError::ClientTimeout => 4,
        ProxyError::NoneEligible
        | ProxyError::AtCapacity
        | ProxyError::Connect
        | ProxyError::Reset
        | ProxyError::BadResponse => 14,
    }
}

/// The Trailers-Only answer for `e`.
pub(crate) fn error_response(e: &ProxyError) -> Response<ProxyBody> {
    let mut r = Response::new(ProxyBody::empty());
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.insert("grpc-status", HeaderValue::from(u16::from(status_of(e))));
    if let Ok(m) = HeaderValue::from_str(&percent_encode(&e.to_string())) {
        h.insert("grpc-message", m);
    }
    r
}

/// `grpc-message` is percent-encoded: bytes outside printable ASCII, and `%`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_answer_as_grpc() {
        let r = error_response(&ProxyError::Connect);
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["grpc-status"], "14");
        assert_eq!(r.headers()["content-type"], "application/grpc");
        assert_eq!(status_of(&ProxyError::Timeout), 4);
        assert_eq!(percent_encode("a%b\u{e9}"), "a%25b%C3%A9");
    }

    #[test]
    fn grpc_requests_are_known_by_content_type() {
        let mut h = HeaderMap::new();
        assert!(!is_grpc(&h));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/grpc+proto"),
        );
        assert!(is_grpc(&h));
    }
}
