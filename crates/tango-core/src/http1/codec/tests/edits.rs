//! A route's header edits in the heads the writers produce: after tango's own fields,
//! never on framing.

use super::*;
use crate::config::{parse_template, HeaderEdits};
use crate::rewrite::{Apply, Edits, Side, Vars};

const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

fn edits(side: Side, set: &[(&str, &str)], append: &[(&str, &str)], remove: &[&str]) -> Edits {
    let pairs = |p: &[(&str, &str)]| {
        p.iter()
            .map(|(n, v)| (n.to_string(), parse_template(v).unwrap()))
            .collect()
    };
    let e = HeaderEdits {
        set: pairs(set),
        append: pairs(append),
        remove: remove.iter().map(|n| n.to_string()).collect(),
    };
    Edits::compile(&e, side)
}

#[test]
fn request_edits_follow_tangos_fields() {
    let raw = b"POST /p HTTP/1.1\r\nHost: example.com:8080\r\nX-Debug: 1\r\nX-Tag: a\r\nContent-Length: 3\r\n\r\nabc";
    let h = req(raw);
    let e = edits(
        Side::Request,
        &[
            ("x-forwarded-proto", "https"),
            ("host", "backend"),
            ("x-client", "$client_addr $host $request_id"),
        ],
        &[("x-tag", "b")],
        &["x-debug", "content-length"],
    );
    let fwd = Forwarding {
        peer: b"10.0.0.9",
        tls: false,
        request_id: b"rid",
        edits: Some(&e),
    };
    let mut out = Vec::new();
    write_request_head(&mut out, &h, raw, &fwd);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "POST /p HTTP/1.1\r\nX-Tag: a\r\nx-forwarded-for: 10.0.0.9\r\nx-forwarded-host: example.com:8080\r\nx-request-id: rid\r\nx-forwarded-proto: https\r\nhost: backend\r\nx-client: 10.0.0.9 example.com rid\r\nx-tag: b\r\ncontent-length: 3\r\n\r\n"
    );
}

#[test]
fn response_edits_apply_to_final_heads_only() {
    let raw = b"HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 2\r\nX-A: 1\r\n\r\nok";
    let facts = RequestFacts {
        is_head: false,
        is_connect: false,
        upgrade: false,
    };
    let c = ClientFacts {
        version: Version::Http11,
        keep_alive: true,
        is_head: false,
    };
    let e = edits(
        Side::Response,
        &[("x-a", "2")],
        &[("x-id", "$request_id")],
        &["server", "date"],
    );
    let a = Apply {
        edits: &e,
        vars: Vars {
            client_addr: b"c",
            request_id: b"rid",
            host: b"h",
        },
    };
    let h = parse_response(raw, MAX, facts).unwrap().unwrap();
    let mut out = Vec::new();
    let plan = write_response_head_edited(&mut out, &h, raw, c, DATE, Some(&a));
    assert_eq!(plan.body, BodyPlan::Length(2));
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\nx-a: 2\r\nx-id: rid\r\n\r\n"
    );
    let raw = b"HTTP/1.1 103 Early Hints\r\nServer: x\r\n\r\n";
    let h = parse_response(raw, MAX, facts).unwrap().unwrap();
    let mut out = Vec::new();
    write_response_head_edited(&mut out, &h, raw, c, DATE, Some(&a));
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 103 Early Hints\r\nServer: x\r\n\r\n"
    );
}

#[test]
fn tangos_own_answers_take_edits_and_a_location() {
    let e = edits(
        Side::Response,
        &[("cache-control", "no-store")],
        &[],
        &["content-type"],
    );
    let a = Apply {
        edits: &e,
        vars: Vars::default(),
    };
    let own = OwnResponse {
        version: Version::Http11,
        status: 308,
        location: Some(b"https://a.example/p?q"),
        text: "moved",
        close: false,
        date: DATE,
    };
    let mut out = Vec::new();
    write_own_response(&mut out, &own, Some(&a));
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 308 Permanent Redirect\r\nlocation: https://a.example/p?q\r\ncontent-length: 5\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\ncache-control: no-store\r\n\r\nmoved"
    );
}
