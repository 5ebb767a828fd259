//! The bytes the writers produce, example by example.

use super::*;

const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

fn fwd() -> Forwarding<'static> {
    Forwarding {
        peer: b"10.0.0.9",
        tls: false,
        request_id: b"rid",
        edits: None,
    }
}

fn upstream(raw: &[u8]) -> String {
    let h = req(raw);
    let mut out = Vec::new();
    write_request_head(&mut out, &h, raw, &fwd());
    String::from_utf8(out).unwrap()
}

#[test]
fn a_forwarded_request_head() {
    let raw = b"POST /p?q HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-Proto: https\r\nX-Request-Id: client\r\nContent-Length: 3\r\nAccept: */*\r\nTE: trailers\r\n\r\nabc";
    assert_eq!(
        upstream(raw),
        "POST /p?q HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nx-forwarded-for: 1.1.1.1, 10.0.0.9\r\nx-forwarded-proto: http\r\nx-forwarded-host: example.com\r\nx-request-id: rid\r\ncontent-length: 3\r\n\r\n"
    );
}

#[test]
fn chunked_and_empty_bodies_are_framed_as_received() {
    let raw = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert!(upstream(raw).ends_with("x-request-id: rid\r\ntransfer-encoding: chunked\r\n\r\n"));
    let raw = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n";
    assert!(upstream(raw).ends_with("content-length: 0\r\n\r\n"));
    let raw = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    assert!(upstream(raw).ends_with("x-request-id: rid\r\n\r\n"));
}

#[test]
fn targets_become_origin_form() {
    // (HTTP/1.1 without Host is refused even in the absolute form.)
    let raw = b"GET http://a.example:81/x?y HTTP/1.0\r\n\r\n";
    let out = upstream(raw);
    assert!(
        out.starts_with("GET /x?y HTTP/1.1\r\nhost: a.example:81\r\n"),
        "{out}"
    );
    let raw = b"GET http://a.example?y HTTP/1.0\r\n\r\n";
    assert!(upstream(raw).starts_with("GET /?y HTTP/1.1\r\nhost: a.example\r\n"));
    let raw = b"GET http://a.example HTTP/1.0\r\n\r\n";
    assert!(upstream(raw).starts_with("GET / HTTP/1.1\r\n"));
    let raw = b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n";
    assert!(upstream(raw).starts_with("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n"));
    let raw = b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n";
    assert!(upstream(raw).starts_with("OPTIONS * HTTP/1.1\r\n"));
}

#[test]
fn an_upgrade_keeps_upgrade() {
    let raw = b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n";
    let out = upstream(raw);
    assert!(
        out.contains("\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\nconnection: upgrade\r\n"),
        "{out}"
    );
    assert_eq!(out.matches("onnection").count(), 1);
}

#[test]
fn forwarded_headers_follow_add_forwarded() {
    // Named in Connection: removed before the peer is appended.
    let raw = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: x-forwarded-for\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n";
    assert!(upstream(raw).contains("x-forwarded-for: 10.0.0.9\r\n"));
    // Empty and non-text values are left out; the others are trimmed and joined.
    let raw = b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: \r\nX-Forwarded-For: a\xff\r\nX-Forwarded-For:  b , c \r\n\r\n";
    assert!(upstream(raw).contains("x-forwarded-for: b , c, 10.0.0.9\r\n"));
    // No host known (HTTP/1.0 without Host): the client's X-Forwarded-Host stays.
    let raw = b"GET / HTTP/1.0\r\nX-Forwarded-Host: theirs\r\n\r\n";
    let out = upstream(raw);
    assert!(out.contains("X-Forwarded-Host: theirs\r\n") && !out.contains("x-forwarded-host"));
    // Host named in Connection is still sent.
    let raw = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: host\r\n\r\n";
    assert!(upstream(raw).contains("\r\nHost: h\r\n"));
    let tls = Forwarding { tls: true, ..fwd() };
    let h = req(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    let mut out = Vec::new();
    write_request_head(&mut out, &h, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", &tls);
    assert!(String::from_utf8(out)
        .unwrap()
        .contains("x-forwarded-proto: https\r\n"));
}

fn client(raw: &[u8], facts: RequestFacts, c: ClientFacts) -> (String, ResponsePlan) {
    let h = parse_response(raw, MAX, facts).unwrap().unwrap();
    let mut out = Vec::new();
    let plan = write_response_head(&mut out, &h, raw, c, DATE);
    (String::from_utf8(out).unwrap(), plan)
}

const V11: ClientFacts = ClientFacts {
    version: Version::Http11,
    keep_alive: true,
    is_head: false,
};
const V10: ClientFacts = ClientFacts {
    version: Version::Http10,
    keep_alive: true,
    is_head: false,
};
const PLAIN: RequestFacts = RequestFacts {
    is_head: false,
    is_connect: false,
    upgrade: false,
};

#[test]
fn a_response_with_a_length() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok";
    let (out, plan) = client(raw, PLAIN, V11);
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 2\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"
    );
    assert_eq!(
        plan,
        ResponsePlan {
            body: BodyPlan::Length(2),
            keep_alive: true
        }
    );
    let (out, plan) = client(
        raw,
        PLAIN,
        ClientFacts {
            keep_alive: false,
            ..V11
        },
    );
    assert!(out.contains("connection: close\r\n") && !plan.keep_alive);
    let (out, plan) = client(raw, PLAIN, V10);
    assert!(out.starts_with("HTTP/1.0 200 OK\r\n") && out.contains("connection: keep-alive\r\n"));
    assert!(plan.keep_alive);
    let (out, plan) = client(
        raw,
        PLAIN,
        ClientFacts {
            keep_alive: false,
            ..V10
        },
    );
    assert!(!out.contains("onnection") && !plan.keep_alive);
}

#[test]
fn the_backends_date_is_kept() {
    let raw = b"HTTP/1.1 404 Nope\r\nDate: then\r\nContent-Length: 0\r\n\r\n";
    let (out, _) = client(raw, PLAIN, V11);
    assert_eq!(
        out,
        "HTTP/1.1 404 Nope\r\nDate: then\r\ncontent-length: 0\r\n\r\n"
    );
}

#[test]
fn body_plans_for_each_client() {
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let (out, plan) = client(chunked, PLAIN, V11);
    assert!(out.contains("transfer-encoding: chunked\r\n"));
    assert_eq!(
        plan,
        ResponsePlan {
            body: BodyPlan::Chunked,
            keep_alive: true
        }
    );
    let (out, plan) = client(chunked, PLAIN, V10);
    assert!(!out.contains("transfer-encoding") && !out.contains("onnection"));
    assert_eq!(
        plan,
        ResponsePlan {
            body: BodyPlan::DechunkToClose,
            keep_alive: false
        }
    );
    let until_close = b"HTTP/1.0 200 OK\r\n\r\n";
    let (out, plan) = client(until_close, PLAIN, V11);
    assert!(
        out.starts_with("HTTP/1.1 200 OK\r\n") && out.contains("transfer-encoding: chunked\r\n")
    );
    assert_eq!(
        plan,
        ResponsePlan {
            body: BodyPlan::ChunkEncode,
            keep_alive: true
        }
    );
    let (_, plan) = client(until_close, PLAIN, V10);
    assert_eq!(
        plan,
        ResponsePlan {
            body: BodyPlan::CloseDelimited,
            keep_alive: false
        }
    );
    // Coded and ended by the close: the codings stay named, before `chunked`.
    let coded = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n";
    let (out, plan) = client(coded, PLAIN, V11);
    assert!(
        out.contains("transfer-encoding: gzip, chunked\r\n"),
        "{out}"
    );
    assert_eq!(out.matches("ransfer-").count(), 1, "{out}");
    assert_eq!(plan.body, BodyPlan::ChunkEncode);
}

/// A chunked body with a coding before `chunked` goes on as it came, still coded: the
/// client must be told of the coding, or it takes the coded bytes for the body.
#[test]
fn a_chunked_body_s_codings_are_named() {
    for raw in [
        &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        let h = parse_response(raw, MAX, PLAIN).unwrap().unwrap();
        assert!(h.coded);
        let (out, plan) = client(raw, PLAIN, V11);
        assert!(
            out.contains("transfer-encoding: gzip, chunked\r\n"),
            "{out}"
        );
        assert_eq!(out.matches("ransfer-").count(), 1, "{out}");
        assert_eq!(plan.body, BodyPlan::Chunked);
    }
    // Plain chunked (in any case, or empty fields beside it) is no coding; nor is a
    // coding on a body that has none.
    for raw in [
        &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    ] {
        let h = parse_response(raw, MAX, PLAIN).unwrap().unwrap();
        assert!(!h.coded, "{}", String::from_utf8_lossy(raw));
    }
    let coded = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n";
    assert!(parse_response(coded, MAX, PLAIN).unwrap().unwrap().coded);
}

#[test]
fn bodiless_responses() {
    let head = RequestFacts {
        is_head: true,
        ..PLAIN
    };
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n";
    let (out, plan) = client(
        raw,
        head,
        ClientFacts {
            is_head: true,
            ..V11
        },
    );
    assert!(out.contains("content-length: 1234\r\n"));
    assert_eq!(plan.body, BodyPlan::None);
    let raw = b"HTTP/1.1 304 Not Modified\r\nETag: e\r\nContent-Length: 1234\r\n\r\n";
    let (out, _) = client(raw, PLAIN, V11);
    assert!(!out.contains("ength"), "{out}");
}

#[test]
fn switching_and_interim_responses() {
    let up = RequestFacts {
        upgrade: true,
        ..PLAIN
    };
    let raw = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: a\r\n\r\n";
    let (out, plan) = client(raw, up, V11);
    assert_eq!(
        out,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: a\r\nconnection: upgrade\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"
    );
    assert_eq!(
        plan,
        ResponsePlan {
            body: BodyPlan::Tunnel,
            keep_alive: false
        }
    );
    let raw = b"HTTP/1.1 100 Continue\r\n\r\n";
    let (out, plan) = client(raw, PLAIN, V11);
    assert_eq!(out, "HTTP/1.1 100 Continue\r\n\r\n");
    assert_eq!(
        plan,
        ResponsePlan {
            body: BodyPlan::None,
            keep_alive: true
        }
    );
    let (out, _) = client(raw, PLAIN, V10);
    assert_eq!(out, "", "no 1xx to an HTTP/1.0 client");
}

#[test]
fn tangos_own_answers() {
    let mut out = Vec::new();
    write_error_response(
        &mut out,
        Version::Http11,
        502,
        "could not connect to the backend\n",
        false,
        DATE,
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 33\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\ncould not connect to the backend\n"
    );
    let mut out = Vec::new();
    write_error_response(&mut out, Version::Http11, 400, "", true, DATE);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"
    );
    let mut out = Vec::new();
    write_error_response(
        &mut out,
        Version::Http10,
        503,
        "no backend is available\n",
        false,
        DATE,
    );
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.starts_with("HTTP/1.0 503 Service Unavailable\r\n")
            && out.contains("connection: keep-alive\r\n")
    );
    for s in [400, 404, 408, 413, 414, 431, 502, 503, 504] {
        assert_ne!(reason_phrase(s), "<none>", "{s}");
    }
}

#[test]
fn fields_go_out_as_name_colon_space_value_whatever_their_form() {
    // Lines already in that form are copied (runs of them at once); others are
    // rewritten: no space or two after the colon, trailing space, a bare LF, no value.
    let raw = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB:2\r\nC:  3 \r\nD: 4\nE: 5\r\nF:\r\nG: \r\nConnection: x\r\nX: gone\r\nH: 6\r\nI: 7\r\n\r\n";
    let fields =
        "Host: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: \r\nG: \r\nH: 6\r\nI: 7\r\n";
    assert_eq!(
        upstream(raw),
        format!("GET / HTTP/1.1\r\n{fields}x-forwarded-for: 10.0.0.9\r\nx-forwarded-proto: http\r\nx-forwarded-host: h\r\nx-request-id: rid\r\n\r\n")
    );
    let raw =
        b"HTTP/1.1 200 OK\r\nA: 1\r\nB:2\r\nContent-Length: 0\r\nC: 3\r\nD: 4\r\nDate: d\r\n\r\n";
    let h = parse_response(raw, MAX, RequestFacts::default())
        .unwrap()
        .unwrap();
    let mut out = Vec::new();
    let c = ClientFacts {
        version: Version::Http11,
        keep_alive: true,
        is_head: false,
    };
    write_response_head(&mut out, &h, raw, c, DATE);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nDate: d\r\ncontent-length: 0\r\n\r\n"
    );
}
