//! A backend that breaks a response body off after a good head (closes or resets the
//! connection or the stream short of the declared length, frames its chunks wrongly,
//! or goes silent) has failed that try: it counts towards its ejection, its errors and
//! `tango_backend_broken_responses_total`, on each path a body is relayed (the engine
//! and hyper's server, to HTTP/1.1 and to HTTP/2 backends), while a healthy sibling
//! keeps serving. A client that leaves or stops reading in the middle of a body is not
//! the backend's failure.

mod peers;

use crate::backend::Backend;
use crate::support::*;
use bytes::Bytes;
use peers::{fetch, Break, Over, Server};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bounds each wait in this module; the events awaited come much sooner.
const BOUND: Duration = Duration::from_secs(10);

/// Failures in a row that eject a backend in these tests.
const EJECT_AFTER: u64 = 3;

/// `tango_backend_broken_responses_total` of `backend` in pool `p`, as scraped.
async fn broken_metric(t: &Tango, backend: &str) -> Option<u64> {
    let (s, text) = get(&client(), &t.admin_url("/metrics")).await;
    assert_eq!(s, 200);
    let series =
        format!("tango_backend_broken_responses_total{{pool=\"p\",backend=\"{backend}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .and_then(|v| v.trim().parse().ok())
}

/// A pool of `bad` and `good` (`protocol` its first line), round robin, one try per
/// request, ejecting after [`EJECT_AFTER`] failures; a listener whose idle timeout (which
/// bounds a response body's silence) is short.
fn cfg(protocol: &str, bad: SocketAddr, good: SocketAddr) -> String {
    let pool = format!(
        "{protocol}policy = \"round_robin\"\nmax_attempts = 1\n[pool.outlier]\nconsecutive_failures = {EJECT_AFTER}\nbase_ejection = \"60s\"\n"
    );
    config(&pool, &[("bad", bad, 1), ("good", good, 1)]).replacen(
        "name = \"main\"\n",
        "name = \"main\"\nidle_timeout = \"300ms\"\n",
        1,
    )
}

/// `got` is `good`'s whole answer.
fn assert_good(got: &peers::Got, case: &str) {
    assert_eq!(
        (got.status, got.body.as_slice(), got.whole),
        (200, &b"good\n"[..], true),
        "{case}"
    );
}

/// Requests by `over` until `bad` has broken off [`EJECT_AFTER`] bodies; then `bad` is
/// ejected with that many errors, `good` has none, and every request goes to `good`.
async fn breaking_backend_is_ejected(over: Over, protocol: &str, bad: &Server, good: SocketAddr) {
    let t = Tango::start(&cfg(protocol, bad.addr, good));
    let case = format!("{over:?} to {protocol:?}, {:?}", bad.breaks);
    for _ in 0..4 * EJECT_AFTER {
        if bad.hits() == EJECT_AFTER {
            break;
        }
        let before = bad.hits();
        let got = fetch(&t, over, "/").await;
        if bad.hits() > before {
            // Framing broken in the bytes that came with the head is found before the
            // head goes out, and answered 502; broken later, the body is cut. Either is
            // the backend's failure.
            assert!(
                !got.whole || got.status == 502,
                "{case}: a broken body passed for whole: {}",
                got.status
            );
        } else {
            assert_good(&got, &case);
        }
    }
    assert_eq!(
        bad.hits(),
        EJECT_AFTER,
        "{case}: bad never got its requests"
    );
    let s = wait_status(&t, &format!("{case}: bad ejected"), BOUND, |s| {
        backend_entry(s, "bad")["ejected"] == true
    })
    .await;
    assert_eq!(
        backend_entry(&s, "bad")["errors"],
        EJECT_AFTER,
        "{case}: {s}"
    );
    assert_eq!(backend_entry(&s, "good")["errors"], 0, "{case}: {s}");
    assert_eq!(broken_metric(&t, "bad").await, Some(EJECT_AFTER), "{case}");
    assert_eq!(broken_metric(&t, "good").await, Some(0), "{case}");
    for _ in 0..6 {
        let got = fetch(&t, over, "/").await;
        assert_good(&got, &case);
    }
    assert_eq!(
        bad.hits(),
        EJECT_AFTER,
        "{case}: an ejected backend got requests"
    );
    let journal = admin_get(&t, "/api/v1/journal").await;
    let ejections: Vec<&Value> = journal["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "ejected")
        .collect();
    assert_eq!(ejections.len(), 1, "{case}: {journal}");
    assert_eq!(ejections[0]["backend"], "bad", "{case}");
    assert_eq!(
        ejections[0]["reason"], "3 consecutive failures (ejection #1)",
        "{case}"
    );
}

/// Each way an HTTP/1.1 backend can break a body off, by a client of `over`.
async fn http1_backends_that_break_bodies_off_are_ejected(over: Over) {
    let good = Backend::start("good").await;
    for how in [Break::Cut, Break::Reset, Break::BadChunk, Break::Stall] {
        let bad = Server::breaking_h1(how).await;
        breaking_backend_is_ejected(over, "", &bad, good.addr).await;
    }
}

/// Each way an HTTP/2 backend can break a body off, by a client of `over`.
async fn http2_backends_that_break_bodies_off_are_ejected(over: Over) {
    let good = Server::h2("good", None).await;
    for how in [Break::Cut, Break::Stall] {
        let bad = Server::h2("bad", Some(how)).await;
        breaking_backend_is_ejected(over, "protocol = \"h2\"\n", &bad, good.addr).await;
    }
}

#[tokio::test]
async fn the_engine_ejects_an_http1_backend_that_breaks_bodies_off() {
    http1_backends_that_break_bodies_off_are_ejected(Over::H1).await;
}

#[tokio::test]
async fn the_engine_ejects_an_http2_backend_that_breaks_bodies_off() {
    http2_backends_that_break_bodies_off_are_ejected(Over::H1).await;
}

#[tokio::test]
async fn hyper_s_path_ejects_an_http1_backend_that_breaks_bodies_off() {
    http1_backends_that_break_bodies_off_are_ejected(Over::H2c).await;
}

#[tokio::test]
async fn hyper_s_path_ejects_an_http2_backend_that_breaks_bodies_off() {
    http2_backends_that_break_bodies_off_are_ejected(Over::H2c).await;
}

/// Start a large download by `over` from tango, read its head and a little of its body,
/// then leave (`stop` false: close the connection) or stop reading (`stop` true: the
/// connection stays open and unread). Returns what must be kept alive for stopping.
async fn abandon(t: &Tango, over: Over, stop: bool) -> Option<Box<dyn std::any::Any + Send>> {
    let path = "/source?n=1000000000";
    match over {
        Over::H1 => {
            let mut s = TcpStream::connect(t.addr()).await.unwrap();
            let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
            s.write_all(req.as_bytes()).await.unwrap();
            let mut chunk = [0u8; 1024];
            let n = tokio::time::timeout(BOUND, s.read(&mut chunk))
                .await
                .unwrap()
                .unwrap();
            assert!(
                chunk[..n].starts_with(b"HTTP/1.1 200"),
                "{:?}",
                String::from_utf8_lossy(&chunk[..n])
            );
            // Unread bytes in the socket: closing it resets the connection.
            stop.then(|| Box::new(s) as Box<dyn std::any::Any + Send>)
        }
        Over::H2c => {
            let tcp = TcpStream::connect(t.addr()).await.unwrap();
            // A window of 1 KiB: a client that stops reading lets it fill and never
            // opens it again.
            let (mut h2, conn) = h2::client::Builder::new()
                .initial_window_size(1024)
                .handshake::<_, Bytes>(tcp)
                .await
                .unwrap();
            let driven = tokio::spawn(conn);
            let req = http::Request::get(format!("http://{}{path}", t.addr()))
                .body(())
                .unwrap();
            let (resp, _) = h2.send_request(req, true).unwrap();
            let resp = tokio::time::timeout(BOUND, resp).await.unwrap().unwrap();
            assert_eq!(resp.status(), 200);
            let mut body = resp.into_body();
            let first = tokio::time::timeout(BOUND, body.data()).await.unwrap();
            assert!(matches!(first, Some(Ok(_))), "{first:?}");
            if stop {
                return Some(Box::new((h2, body, driven)));
            }
            driven.abort();
            None
        }
    }
}

/// A client that leaves in the middle of a body, or stops reading it, is not the
/// backend's failure: after more such clients than eject a backend, the backend has no
/// errors, nothing broken, and is still in the pool.
async fn leaving_clients_are_not_charged(over: Over, protocol: &str, addr: SocketAddr) {
    let pool = format!(
        "{protocol}max_attempts = 1\n[pool.outlier]\nconsecutive_failures = 2\nmax_ejected_percent = 100\nbase_ejection = \"60s\"\n"
    );
    let cfg = config(&pool, &[("a", addr, 1)]).replacen(
        "name = \"main\"\n",
        "name = \"main\"\nsend_timeout = \"300ms\"\n",
        1,
    );
    let t = Tango::start(&cfg);
    let case = format!("{over:?} to {protocol:?}");
    let mut held = Vec::new();
    for stop in [false, true, false] {
        held.push(abandon(&t, over, stop).await);
        assert!(
            in_flight_becomes(&t, 0, BOUND).await,
            "{case}: the abandoned response is still in flight"
        );
    }
    let s = admin_get(&t, "/api/v1/status").await;
    assert_eq!(backend_entry(&s, "a")["errors"], 0, "{case}: {s}");
    assert_eq!(backend_entry(&s, "a")["ejected"], false, "{case}: {s}");
    assert_eq!(broken_metric(&t, "a").await, Some(0), "{case}");
    let got = fetch(&t, over, "/source?n=10").await;
    assert_eq!((got.status, got.whole), (200, true), "{case}: still served");
    drop(held);
}

#[tokio::test]
async fn clients_that_leave_mid_body_are_not_charged_to_an_http1_backend() {
    let a = Backend::start("a").await;
    for over in [Over::H1, Over::H2c] {
        leaving_clients_are_not_charged(over, "", a.addr).await;
    }
}

#[tokio::test]
async fn clients_that_leave_mid_body_are_not_charged_to_an_http2_backend() {
    let a = Server::h2("a", None).await;
    for over in [Over::H1, Over::H2c] {
        leaving_clients_are_not_charged(over, "protocol = \"h2\"\n", a.addr).await;
    }
}
