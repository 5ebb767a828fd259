//! The binary's header rules as they stand (`proxy/headers.rs` and the part of
//! `proxy/service.rs` that prepares the upstream request), copied onto `http::HeaderMap`,
//! as a model the request writer must agree with on random requests: the same fields
//! with the same values, whatever the order between names.

use super::*;
use http::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, HOST, TRANSFER_ENCODING, UPGRADE,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "transfer-encoding",
];

fn upgrade_protocol(h: &HeaderMap) -> Option<String> {
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

fn strip_hop_by_hop(h: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = h
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for n in named {
        if !(keep_upgrade && n == UPGRADE) {
            h.remove(n);
        }
    }
    for n in HOP_BY_HOP {
        h.remove(n);
    }
    if !keep_upgrade {
        h.remove(UPGRADE);
    }
    if keep_upgrade {
        h.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

fn add_forwarded(h: &mut HeaderMap, peer: &str, tls: bool, host: Option<HeaderValue>) {
    let prev: Vec<&str> = h
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    let xff = if prev.is_empty() {
        peer.to_string()
    } else {
        format!("{}, {peer}", prev.join(", "))
    };
    h.insert("x-forwarded-for", HeaderValue::from_str(&xff).unwrap());
    h.insert(
        "x-forwarded-proto",
        HeaderValue::from_static(if tls { "https" } else { "http" }),
    );
    if let Some(v) = host {
        h.insert("x-forwarded-host", v);
    }
}

type Fields = BTreeMap<String, Vec<Vec<u8>>>;

/// What the binary sends upstream for `raw`, framing fields aside.
fn model(raw: &[u8], fwd: &Forwarding<'_>) -> Fields {
    let mut parsed = [httparse::EMPTY_HEADER; 100];
    let mut r = httparse::Request::new(&mut parsed);
    r.parse(raw).unwrap();
    let uri = http::Uri::try_from(r.path.unwrap()).unwrap();
    let mut h = HeaderMap::new();
    for f in r.headers.iter() {
        h.append(
            HeaderName::from_bytes(f.name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(f.value).unwrap(),
        );
    }
    let upgrade = if r.version == Some(1) {
        upgrade_protocol(&h)
    } else {
        None
    };
    let from_target = uri.scheme().and(uri.authority());
    let host = match (from_target, h.get(HOST)) {
        (Some(a), _) => Some(HeaderValue::from_str(a.as_str()).unwrap()),
        (None, Some(v)) => Some(v.clone()),
        (None, None) => uri
            .authority()
            .map(|a| HeaderValue::from_str(a.as_str()).unwrap()),
    };
    strip_hop_by_hop(&mut h, upgrade.is_some());
    match &host {
        Some(v) if from_target.is_some() || !h.contains_key(HOST) => {
            h.insert(HOST, v.clone());
        }
        Some(_) => {}
        // No authority at all: HTTP/1.1 still needs Host, empty (RFC 9112 3.2).
        None => {
            h.insert(HOST, HeaderValue::from_static(""));
        }
    }
    add_forwarded(
        &mut h,
        std::str::from_utf8(fwd.peer).unwrap(),
        fwd.tls,
        host,
    );
    h.insert(
        "x-request-id",
        HeaderValue::from_bytes(fwd.request_id).unwrap(),
    );
    h.remove("content-length");
    h.remove(TRANSFER_ENCODING);
    let mut out = Fields::new();
    for (name, v) in &h {
        out.entry(name.to_string())
            .or_default()
            .push(v.as_bytes().to_vec());
    }
    out
}

/// What the writer sends, framing fields aside, and the framing fields.
fn written(out: &[u8]) -> (Fields, Vec<(String, Vec<u8>)>) {
    let mut parsed = [httparse::EMPTY_HEADER; 128];
    let mut r = httparse::Request::new(&mut parsed);
    assert!(
        r.parse(out).unwrap().is_complete(),
        "{}",
        String::from_utf8_lossy(out)
    );
    let (mut fields, mut framing) = (Fields::new(), Vec::new());
    for f in r.headers.iter() {
        let name = f.name.to_ascii_lowercase();
        if name == "content-length" || name == "transfer-encoding" {
            framing.push((name, f.value.to_vec()));
        } else {
            fields.entry(name).or_default().push(f.value.to_vec());
        }
    }
    (fields, framing)
}

/// A request built from fields likely to interact: hop-by-hop names, names the
/// Connection header lists, the forwarded fields, duplicates.
pub(super) fn request() -> impl Strategy<Value = Vec<u8>> {
    let name = prop_oneof![
        Just("Connection"),
        Just("Keep-Alive"),
        Just("TE"),
        Just("Trailer"),
        Just("Upgrade"),
        Just("X-Forwarded-For"),
        Just("X-Forwarded-Host"),
        Just("X-Forwarded-Proto"),
        Just("X-Request-Id"),
        Just("Proxy-Authorization"),
        Just("Proxy-Connection"),
        Just("X-A"),
        Just("x-b"),
        Just("Expect"),
        Just("Close"),
    ];
    let token = prop_oneof![
        Just("close"),
        Just("keep-alive"),
        Just("Upgrade"),
        Just("x-a"),
        Just("X-B"),
        Just("x-forwarded-for"),
        Just("host"),
        Just("x-request-id"),
        Just("te"),
        Just("websocket"),
        Just("h2c"),
        Just(""),
        Just(" 1.2.3.4 "),
        Just("content-length"),
        Just("x-forwarded-host"),
        Just("close"),
    ];
    let value = proptest::collection::vec(token, 0..3).prop_map(|t| t.join(","));
    let target = prop_oneof![
        Just("/p?q"),
        Just("http://a.example/x"),
        Just("https://b.example:8443"),
        Just("*"),
        Just("/#frag"),
    ];
    let version = prop_oneof![Just("1.0"), Just("1.1")];
    let framing = prop_oneof![
        Just(""),
        Just("Content-Length: 7\r\n"),
        Just("Transfer-Encoding: chunked\r\n")
    ];
    (
        target,
        version,
        any::<bool>(),
        proptest::collection::vec((name, value), 0..8),
        framing,
    )
        .prop_map(|(target, version, host, fields, framing)| {
            let mut s = format!("GET {target} HTTP/{version}\r\n");
            if host {
                s.push_str("Host: h.example\r\n");
            }
            for (n, v) in fields {
                s.push_str(&format!("{n}: {v}\r\n"));
            }
            s.push_str(framing);
            s.push_str("\r\n");
            s.into_bytes()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// The writer forwards what the binary forwards.
    #[test]
    fn the_writer_agrees_with_the_binarys_rules(raw in request(), tls in any::<bool>()) {
        let Ok(Some(h)) = parse_request(&raw, MAX) else { return Ok(()) };
        let fwd = Forwarding { peer: b"192.0.2.1", tls, request_id: b"id-1", edits: None };
        let mut out = Vec::new();
        write_request_head(&mut out, &h, &raw, &fwd);
        let (fields, framing) = written(&out);
        prop_assert_eq!(&fields, &model(&raw, &fwd), "{}", String::from_utf8_lossy(&out));
        let expect: Vec<(String, Vec<u8>)> = match h.framing {
            RequestFraming::None => vec![],
            RequestFraming::Length(n) => vec![("content-length".into(), n.to_string().into_bytes())],
            RequestFraming::Chunked => vec![("transfer-encoding".into(), b"chunked".to_vec())],
        };
        prop_assert_eq!(framing, expect);
    }
}
