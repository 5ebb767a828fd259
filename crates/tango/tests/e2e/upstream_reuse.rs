//! When tango uses a backend's connection again, and what it takes from it: a
//! connection the backend closes, or says it will close, carries no other request; one
//! the backend closed while it was idle costs the client nothing, even when the close
//! crosses the next request on the wire (that request goes again on a new connection
//! when it may be sent twice); interim answers reach HTTP/1.1 clients only; and the
//! bytes a broken backend sends after an answer that has no body (a `204` announcing
//! one, or any such answer with bytes past its head) are never read as the next
//! answer, while an answer to HEAD announcing the representation's length keeps its
//! connection.

use crate::framing::Raw;
use crate::protocols::{tls_config, tls_connect};
use crate::scripted::{exchange, one_worker, send, Scripted, Seen, Step};
use crate::support::*;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()
}

/// Whether any request came on the connection of the request to `path` after it.
fn used_after(seen: &[Seen], path: &str) -> bool {
    seen.iter()
        .filter(|s| s.path() == path)
        .any(|s| seen.iter().any(|o| o.conn == s.conn && o.nth > s.nth))
}

#[tokio::test]
async fn a_connection_the_backend_says_it_closes_is_not_reused() {
    // The backend keeps every connection open: a request tango sent on one it should
    // have dropped would be answered, and seen.
    let b = Scripted::start(|s| match s.path() {
        "/close" => vec![send(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        )],
        "/http10" => vec![send(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")],
        "/http10-keep" => vec![send(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
        )],
        _ => vec![send(OK)],
    })
    .await;
    let t = one_worker(&config("", &[("a", b.addr, 1)]));
    let mut c = Raw::connect(t.addr()).await;
    for path in ["/close", "/a", "/http10", "/b", "/http10-keep", "/c"] {
        c.send(&get(path)).await;
        assert_eq!(c.response().await, Some((200, b"ok".to_vec())), "{path}");
    }
    let seen = b.seen();
    assert!(!used_after(&seen, "/close"), "{seen:?}");
    assert!(!used_after(&seen, "/http10"), "{seen:?}");
    assert!(used_after(&seen, "/http10-keep"), "{seen:?}");
}

#[tokio::test]
async fn a_connection_the_backend_closed_while_idle_costs_the_client_nothing() {
    let b = Scripted::start(|_| {
        vec![
            send(OK),
            Step::Pause(Duration::from_millis(50)),
            Step::Close,
        ]
    })
    .await;
    let t = one_worker(&config("max_attempts = 1", &[("a", b.addr, 1)]));
    let mut c = Raw::connect(t.addr()).await;
    for path in ["/a", "/b", "/c"] {
        c.send(&get(path)).await;
        assert_eq!(c.response().await, Some((200, b"ok".to_vec())), "{path}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(b.conns(), 3);
    let v = admin_get(&t, "/api/v1/status").await;
    assert_eq!(backend_entry(&v, "a")["errors"], 0, "{v}");
}

/// The backend answers a connection's first request and closes the connection when the
/// next one comes: as a backend whose idle timeout ends a connection just as tango
/// sends on it. A GET goes again on a new connection (as nginx and Go's client do
/// after a pooled connection's close), and the backend is not blamed; a POST, which
/// the backend may have acted on, is not sent twice.
#[tokio::test]
async fn a_close_crossing_a_request_on_a_pooled_connection_is_retried_when_safe() {
    let b = Scripted::start(|s| match s.nth {
        1 => vec![send(OK)],
        _ => vec![Step::Close],
    })
    .await;
    let plain = config("", &[("a", b.addr, 1)]);
    let t = one_worker(&plain);
    let mut c = Raw::connect(t.addr()).await;
    for path in ["/a", "/b", "/c"] {
        c.send(&get(path)).await;
        assert_eq!(c.response().await, Some((200, b"ok".to_vec())), "{path}");
    }
    let v = admin_get(&t, "/api/v1/status").await;
    assert_eq!(backend_entry(&v, "a")["errors"], 0, "{v}");
    c.send(b"POST /d HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .await;
    assert_eq!(c.status().await, Some(502), "a POST is not sent twice");
    let posts = b.seen().iter().filter(|s| s.path() == "/d").count();
    assert_eq!(posts, 1);

    // hyper's path (TLS) retries the same way.
    let dir = tempfile::tempdir().unwrap();
    let (cfg, ck) = tls_config(&plain, dir.path());
    let t = one_worker(&cfg);
    let mut c = Raw::new(tls_connect(&t, &ck, b"http/1.1").await);
    for path in ["/e", "/f", "/g"] {
        c.send(&get(path)).await;
        assert_eq!(
            c.response().await,
            Some((200, b"ok".to_vec())),
            "TLS {path}"
        );
    }
}

#[tokio::test]
async fn interim_answers_reach_http_1_1_clients_only() {
    let b = Scripted::start(|_| {
        let pause = Step::Pause(Duration::from_millis(30));
        vec![
            send(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"),
            pause.clone(),
            send(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"),
            pause,
            send(OK),
        ]
    })
    .await;
    let t = one_worker(&config("", &[("a", b.addr, 1)]));
    let got = exchange(
        t.addr(),
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let want = "HTTP/1.1 102 Processing\r\n\r\n\
                HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n\
                HTTP/1.1 200 OK\r\n";
    assert!(got.starts_with(want), "{got}");
    assert!(got.ends_with("\r\n\r\nok"), "{got}");
    let got = exchange(t.addr(), b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(got.starts_with("HTTP/1.0 200 OK\r\n"), "{got}");
    assert_eq!(got.matches("HTTP/1.").count(), 1, "{got}");
}

/// A fake answer a broken backend sends as the body of an answer that has none.
const FAKE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nsmuggle";

fn bodiless(s: &Seen) -> Vec<Step> {
    let head: &[u8] = match s.path() {
        "/head" => b"HTTP/1.1 200 OK\r\nContent-Length: 45\r\n\r\n",
        "/204" | "/204-later" => b"HTTP/1.1 204 No Content\r\nContent-Length: 45\r\n\r\n",
        "/304" | "/304-later" => b"HTTP/1.1 304 Not Modified\r\nContent-Length: 45\r\n\r\n",
        _ => return vec![send(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal")],
    };
    if s.path().ends_with("-later") {
        vec![
            send(head),
            Step::Pause(Duration::from_millis(50)),
            send(FAKE),
        ]
    } else {
        vec![Step::Send([head, FAKE].concat())]
    }
}

#[tokio::test]
async fn a_body_sent_after_an_answer_that_has_none_is_never_the_next_answer() {
    let b = Scripted::start(bodiless).await;
    let t = one_worker(&config("max_attempts = 1", &[("a", b.addr, 1)]));
    for path in ["/head", "/204", "/304", "/204-later"] {
        let mut s = TcpStream::connect(t.addr()).await.unwrap();
        let method = if path.starts_with("/head") {
            "HEAD"
        } else {
            "GET"
        };
        let req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut c = Raw::new(s);
        let want = if path.starts_with("/head") {
            200
        } else {
            path[1..4].parse().unwrap()
        };
        assert_eq!(c.status().await, Some(want), "{path}");
        // At once, on the same client connection (and so the same worker).
        c.send(&get("/next")).await;
        assert_eq!(
            c.response().await,
            Some((200, b"real".to_vec())),
            "{path}: the next request's own answer"
        );
    }
}

#[tokio::test]
async fn an_answer_to_head_announcing_a_length_keeps_its_connection() {
    // A well-behaved backend: the HEAD's answer tells the representation's length and
    // sends nothing after its head.
    let b = Scripted::start(|s| match s.path() {
        "/h" => vec![send(b"HTTP/1.1 200 OK\r\nContent-Length: 45\r\n\r\n")],
        _ => vec![send(OK)],
    })
    .await;
    let t = one_worker(&config("", &[("a", b.addr, 1)]));
    let mut c = Raw::connect(t.addr()).await;
    c.send(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(c.status().await, Some(200));
    c.send(&get("/after")).await;
    assert_eq!(c.response().await, Some((200, b"ok".to_vec())));
    let seen = b.seen();
    assert!(
        used_after(&seen, "/h"),
        "the HEAD's connection carried /after: {seen:?}"
    );
}
