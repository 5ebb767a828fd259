//! Header rules at the proxy boundary: framing checks, hop-by-hop removal, and the
//! X-Forwarded-* and X-Request-Id headers.

use http::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, COOKIE, TRANSFER_ENCODING, UPGRADE,
};
use std::net::IpAddr;
use tango_core::http1::codec::is_host_value;

/// Headers that describe one connection, never forwarded (RFC 9110 7.6.1). Named by
/// constant so removing them parses nothing. `Trailer` is not one (RFC 2616's list had
/// "Trailers"; RFC 9110's has no such field): it names the trailers to come, which go
/// end to end, and hyper's HTTP/1.1 server sends a client only the trailers it names.
pub(crate) const HOP_BY_HOP: [HeaderName; 7] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    http::header::TE,
    TRANSFER_ENCODING,
];

pub(crate) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Reject a request body in a transfer coding tango cannot forward faithfully.
/// The rest of framing is settled before this runs: hyper's parser refuses conflicting
/// Content-Length values and a final coding other than chunked, and the framing guard
/// refuses Content-Length with Transfer-Encoding. hyper accepts `gzip, chunked`; the
/// backend would get the gzip body without being told, so it is refused here.
pub(crate) fn check_framing(h: &HeaderMap) -> Result<(), &'static str> {
    let mut codings = h
        .get_all(TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("\u{0}").split(','))
        .map(str::trim);
    match (codings.next(), codings.next()) {
        (None, _) => Ok(()),
        (Some(c), None) if c.eq_ignore_ascii_case("chunked") => Ok(()),
        _ => Err("unsupported transfer coding"),
    }
}

/// Reject an HTTP/1 request-target whose form does not fit the method, as the engine's
/// codec does (`TargetForm::fits`, RFC 9112 3.2.3, 3.2.4): CONNECT takes the authority
/// form and nothing else takes it; only OPTIONS takes `*`.
pub(crate) fn check_target(method: &http::Method, uri: &http::Uri) -> Result<(), &'static str> {
    let authority_form = uri.scheme().is_none() && uri.authority().is_some();
    let fits = if method == http::Method::CONNECT {
        authority_form
    } else {
        !authority_form && (uri.path() != "*" || method == http::Method::OPTIONS)
    };
    if fits {
        Ok(())
    } else {
        Err("the request-target's form does not fit its method")
    }
}

/// The request's authority is one host, with no userinfo: no `user@` in its target's
/// authority or a Host field (RFC 9110 4.2.4 makes it an error: it is how a link hides
/// the host it goes to, and a backend would get it as its Host), and no second Host
/// field (RFC 9112 3.2: routing reads the first, a backend may read the last), nor one
/// that is no host and port (RFC 9112 3.2; `is_host_value`). The
/// HTTP/1.1 engine's parser and the framing guard refuse the same; to hyper, HTTP/2's
/// Host fields are just fields, so this holds for every version. On HTTP/2 a Host
/// beside `:authority` must name it too ([`check_host_agrees`]); on HTTP/1.1 an
/// absolute-form target's authority wins over Host (RFC 9112 3.2.2).
pub(crate) fn check_authority(
    version: http::Version,
    uri: &http::Uri,
    h: &HeaderMap,
) -> Result<(), &'static str> {
    let in_target = uri.authority().is_some_and(|a| a.as_str().contains('@'));
    let hosts = h.get_all(http::header::HOST);
    if in_target || hosts.iter().any(|v| v.as_bytes().contains(&b'@')) {
        return Err("userinfo in the authority");
    }
    if !hosts.iter().all(|v| is_host_value(v.as_bytes())) {
        return Err("a Host that is no host and port");
    }
    if hosts.iter().nth(1).is_some() {
        return Err("more than one Host");
    }
    if version == http::Version::HTTP_2 {
        return check_host_agrees(uri, h);
    }
    Ok(())
}

/// An HTTP/2 request's Host field, if it has one beside `:authority`, names the same
/// host and port (RFC 9113 8.3.1: a server SHOULD treat one that differs as malformed;
/// nginx answers it 400). Routing and the backend go by `:authority`, but the access log
/// and a hash key read from Host would tell of another site than the one served.
/// Compared as RFC 3986 6.2.3 says: the host without regard to case, a missing port as
/// the scheme's default.
fn check_host_agrees(uri: &http::Uri, h: &HeaderMap) -> Result<(), &'static str> {
    let (Some(a), Some(host)) = (uri.authority(), h.get(http::header::HOST)) else {
        return Ok(());
    };
    let default = match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    };
    let same = host
        .to_str()
        .ok()
        .and_then(|v| v.parse::<http::uri::Authority>().ok())
        .is_some_and(|h| {
            h.host().eq_ignore_ascii_case(a.host())
                && h.port_u16().or(default) == a.port_u16().or(default)
        });
    if same {
        Ok(())
    } else {
        Err("Host differs from :authority")
    }
}

/// The host of a request: an absolute-form target's authority, or HTTP/2's
/// `:authority`, whatever Host says (RFC 9112 3.2.2, RFC 9113 8.3.1); otherwise the
/// Host header, or CONNECT's authority. Routing and the access log both go by it.
pub(crate) fn request_host<'a>(uri: &'a http::Uri, h: &'a http::HeaderMap) -> Option<&'a str> {
    match (target_authority(uri), h.get(http::header::HOST)) {
        (Some(a), _) => Some(a),
        (None, Some(h)) => h.to_str().ok(),
        (None, None) => uri.authority().map(|a| a.as_str()),
    }
}

/// The authority of an absolute-form target (a scheme with it), as HTTP/2's
/// `:authority` is too.
pub(crate) fn target_authority(uri: &http::Uri) -> Option<&str> {
    uri.scheme().and(uri.authority()).map(|a| a.as_str())
}

/// What the client asked to upgrade to, if it is something tango tunnels.
/// `h2c` is never passed on: tango speaks h2c itself, with prior knowledge.
pub(crate) fn upgrade_protocol(h: &HeaderMap) -> Option<String> {
    let up = h.get(UPGRADE)?.to_str().ok()?.trim().to_ascii_lowercase();
    let conn_says_upgrade = h
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    (conn_says_upgrade && !up.is_empty() && !up.split(',').any(|p| p.trim().starts_with("h2c")))
        .then_some(up)
}

/// Remove hop-by-hop headers, including every header the Connection header names.
/// When `keep_upgrade` is set (a tunnelled upgrade), Connection: upgrade and Upgrade stay.
pub(crate) fn strip_hop_by_hop(h: &mut HeaderMap, keep_upgrade: bool) {
    if h.contains_key(CONNECTION) {
        let named: Vec<HeaderName> = h
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect();
        for n in named {
            if keep_upgrade && n == UPGRADE {
                continue;
            }
            h.remove(n);
        }
    }
    // Most messages carry none of them: one pass over the (few) names present is
    // cheaper than a lookup per hop-by-hop name.
    if h.keys().any(|k| *k == UPGRADE || HOP_BY_HOP.contains(k)) {
        for n in &HOP_BY_HOP {
            h.remove(n);
        }
        if !keep_upgrade {
            h.remove(UPGRADE);
        }
    }
    if keep_upgrade {
        h.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// An HTTP/2 request's cookie crumbs as one Cookie field, joined with "; " (RFC 9113
/// 8.2.3). HTTP/2 clients split cookies into a field each so HPACK can index them; an
/// HTTP/1.1 backend must get them in one line, since RFC 6265 allows a client only one
/// Cookie field and HTTP/1.1 servers read one (or join repeats with ", ", which is not a
/// cookie separator). HTTP/2 backends take one field as well as many, so every backend
/// gets them joined, as nginx does.
pub(crate) fn join_cookies(h: &mut HeaderMap) {
    let mut crumbs = h.get_all(COOKIE).iter();
    let (Some(first), Some(_)) = (crumbs.next(), crumbs.next()) else {
        return;
    };
    let mut joined = first.as_bytes().to_vec();
    for c in h.get_all(COOKIE).iter().skip(1) {
        joined.extend_from_slice(b"; ");
        joined.extend_from_slice(c.as_bytes());
    }
    // Each crumb was a valid field value, and "; " is too.
    if let Ok(v) = HeaderValue::from_bytes(&joined) {
        h.insert(COOKIE, v);
    }
}

/// The peer's address as a header value, made once per connection.
pub(crate) fn peer_value(peer: IpAddr) -> HeaderValue {
    HeaderValue::from_str(&peer.to_canonical().to_string())
        .expect("an IP address is a valid header value")
}

/// Append the peer to X-Forwarded-For (keeping what the client sent) and set
/// X-Forwarded-Proto and X-Forwarded-Host.
pub(crate) fn add_forwarded(
    h: &mut HeaderMap,
    peer: &HeaderValue,
    tls: bool,
    host: Option<HeaderValue>,
) {
    let prev: Vec<&str> = h
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    let xff = if prev.is_empty() {
        Some(peer.clone())
    } else {
        let peer = peer.to_str().unwrap_or("");
        HeaderValue::from_str(&format!("{}, {peer}", prev.join(", "))).ok()
    };
    if let Some(v) = xff {
        h.insert(&X_FORWARDED_FOR, v);
    }
    h.insert(
        &X_FORWARDED_PROTO,
        HeaderValue::from_static(if tls { "https" } else { "http" }),
    );
    if let Some(v) = host {
        h.insert(&X_FORWARDED_HOST, v);
    }
}

/// A new request id: 128 bits from the thread's random source (both engines use it),
/// sent as [`hex_id`] writes it. Kept as a number until sent: the engine writes it
/// straight into the upstream head.
pub(crate) fn new_request_id() -> u128 {
    (u128::from(crate::rng::next_u64()) << 64) | u128::from(crate::rng::next_u64())
}

/// A request id as it is sent: 32 hex digits.
pub(crate) fn hex_id(id: u128) -> [u8; 32] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    // A byte at a time: shifting the 128-bit id for every digit costs several times more.
    for (pair, b) in out.chunks_exact_mut(2).zip(id.to_be_bytes()) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0xf)];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_id_is_its_32_hex_digits_most_significant_first() {
        let id = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210_u128;
        assert_eq!(&hex_id(id), b"0123456789abcdeffedcba9876543210");
        assert_eq!(&hex_id(0), &[b'0'; 32]);
        assert_eq!(&hex_id(u128::MAX), &[b'f'; 32]);
    }

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn framing() {
        assert!(check_framing(&map(&[("content-length", "5")])).is_ok());
        assert!(check_framing(&map(&[("transfer-encoding", "chunked")])).is_ok());
        assert!(check_framing(&map(&[("transfer-encoding", "Chunked")])).is_ok());
        assert!(check_framing(&map(&[("transfer-encoding", "gzip, chunked")])).is_err());
        assert!(check_framing(&map(&[
            ("transfer-encoding", "gzip"),
            ("transfer-encoding", "chunked")
        ]))
        .is_err());
        // Content-Length with Transfer-Encoding, and conflicting lengths, never get
        // here: the framing guard and hyper's parser refuse them (e2e `framing`).
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "1"),
            ("keep-alive", "5"),
            ("te", "trailers"),
            ("x-keep", "1"),
            ("trailer", "x-checksum"),
        ]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.get("trailer").unwrap(), "x-checksum", "not hop-by-hop");
        assert!(
            h.get("x-secret").is_none() && h.get("keep-alive").is_none() && h.get("te").is_none()
        );
        assert!(h.get("connection").is_none());
        assert_eq!(h.get("x-keep").unwrap(), "1");
    }

    #[test]
    fn cookie_crumbs_become_one_field() {
        let mut h = map(&[
            ("cookie", "a=1"),
            ("x", "y"),
            ("cookie", "b=2"),
            ("cookie", "c=3"),
        ]);
        join_cookies(&mut h);
        let all: Vec<_> = h.get_all("cookie").iter().collect();
        assert_eq!(all, ["a=1; b=2; c=3"]);
        let mut one = map(&[("cookie", "a=1; b=2")]);
        join_cookies(&mut one);
        assert_eq!(one.get("cookie").unwrap(), "a=1; b=2");
        let mut none = map(&[("x", "y")]);
        join_cookies(&mut none);
        assert!(none.get("cookie").is_none());
    }

    #[test]
    fn an_h2_host_must_name_the_authority() {
        let agrees = |uri: &str, host: &str| {
            check_host_agrees(&uri.parse().unwrap(), &map(&[("host", host)])).is_ok()
        };
        assert!(agrees("https://a.example/x", "a.example"));
        assert!(agrees("https://a.example/x", "A.Example:443"));
        assert!(agrees("http://a.example:80/x", "a.example"));
        assert!(agrees("https://[::1]:8443/", "[::1]:8443"));
        assert!(!agrees("https://a.example/x", "b.example"));
        assert!(!agrees("https://a.example/x", "a.example:80"));
        assert!(!agrees("http://a.example:8080/", "a.example"));
        assert!(!agrees("https://a.example/", ""));
        // No Host, or no authority (origin form): nothing to compare.
        let none = HeaderMap::new();
        assert!(check_host_agrees(&"https://a.example/".parse().unwrap(), &none).is_ok());
        assert!(agrees("/x", "b.example"));
    }

    #[test]
    fn upgrades() {
        assert_eq!(
            upgrade_protocol(&map(&[("connection", "Upgrade"), ("upgrade", "websocket")]))
                .as_deref(),
            Some("websocket")
        );
        assert_eq!(
            upgrade_protocol(&map(&[
                ("connection", "Upgrade, HTTP2-Settings"),
                ("upgrade", "h2c")
            ])),
            None
        );
        assert_eq!(upgrade_protocol(&map(&[("upgrade", "websocket")])), None);
    }

    #[test]
    fn forwarded_appends() {
        let mut h = map(&[("x-forwarded-for", "203.0.113.9")]);
        let peer = peer_value("127.0.0.1".parse().unwrap());
        add_forwarded(
            &mut h,
            &peer,
            false,
            Some(HeaderValue::from_static("example.com")),
        );
        assert_eq!(h.get("x-forwarded-for").unwrap(), "203.0.113.9, 127.0.0.1");
        assert_eq!(h.get("x-forwarded-proto").unwrap(), "http");
        assert_eq!(h.get("x-forwarded-host").unwrap(), "example.com");
    }
}
