//! Backends that never answer, or never finish an answer: the health probes they fail
//! or pass leave no connection open, and a client that gives up on one (HTTP/1.1 or
//! HTTP/2, to an HTTP/1.1 or an HTTP/2 backend) frees its connection and its in-flight
//! place without counting against the backend.

use super::entry;
use crate::backend::Backend;
use crate::support::*;
use bytes::Bytes;
use http_body_util::Full;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// A backend address, the connections it accepted, and those it holds open.
type Counted = (std::net::SocketAddr, Arc<AtomicU64>, Arc<AtomicU64>);

/// A backend that serves each connection it accepts with `serve`, counting the
/// connections accepted and those open (until `serve` returns).
async fn counting<F, Fut>(serve: F) -> Counted
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (accepted, open) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (a, o) = (accepted.clone(), open.clone());
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            a.fetch_add(1, Relaxed);
            o.fetch_add(1, Relaxed);
            let (o, done) = (o.clone(), serve(s));
            tokio::spawn(async move {
                done.await;
                o.fetch_sub(1, Relaxed);
            });
        }
    });
    (addr, accepted, open)
}

/// A backend that accepts connections and never answers (a connection counts as open
/// until its peer closes it).
async fn silent() -> Counted {
    counting(|mut s| async move {
        let mut buf = [0u8; 4096];
        while let Ok(1..) = s.read(&mut buf).await {}
    })
    .await
}

/// Wait until at most `n` of a backend's connections are open (5 s at most).
async fn open_at_most(accepted: &AtomicU64, open: &AtomicU64, n: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while open.load(Relaxed) > n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {} connections still open",
            open.load(Relaxed),
            accepted.load(Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_probes_that_get_no_answer_fail_and_leave_no_connection_open() {
    let (addr, accepted, open) = silent().await;
    let good = Backend::start("good").await;
    let t = Tango::start(&config(
        "panic_threshold = 0.0\n[pool.health]\ninterval = \"50ms\"\ntimeout = \"100ms\"\nfall = 2\nrise = 2\njitter = 0.0\n",
        &[("mute", addr, 1), ("good", good.addr, 1)],
    ));
    wait_status(&t, "mute unhealthy", Duration::from_secs(10), |s| {
        entry(s, "mute")["healthy"] == false && accepted.load(Relaxed) >= 6
    })
    .await;
    // Each timed-out probe's connection is closed, not left behind: at most the probe
    // in progress holds one.
    open_at_most(&accepted, &open, 1).await;
    let (s, body) = get(&client(), &t.url("/")).await;
    assert_eq!((s, body.as_str()), (200, "good\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_gives_up_on_a_mute_backend_frees_its_place() {
    let (addr, accepted, open) = silent().await;
    let t = Tango::start(&config(
        "try_timeout = \"20s\"\ntimeout = \"20s\"\n",
        &[("mute", addr, 1)],
    ));
    for _ in 0..3 {
        leave_while_in_flight(&t).await;
    }
    // Its connection to the backend is closed (the backend may stop working on it), and
    // the client's leaving is not counted against the backend.
    open_at_most(&accepted, &open, 0).await;
    let s = admin_get(&t, "/api/v1/status").await;
    assert_eq!(entry(&s, "mute")["errors"], 0, "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_client_that_gives_up_on_a_mute_backend_frees_its_place() {
    let (addr, _accepted, _open) = silent().await;
    let t = Tango::start(&config(
        "try_timeout = \"20s\"\ntimeout = \"20s\"\n",
        &[("mute", addr, 1)],
    ));
    let tcp = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    let (mut h2, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    let driver = tokio::spawn(conn);
    let req = http::Request::get(t.url("/"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let pending = tokio::spawn(async move { h2.send_request(req).await.map(|_| ()) });
    assert!(
        in_flight_becomes(&t, 1, Duration::from_secs(5)).await,
        "never in flight"
    );
    pending.abort();
    driver.abort();
    assert!(
        in_flight_becomes(&t, 0, Duration::from_secs(5)).await,
        "the request of a client that left stays in flight at the backend"
    );
}

/// An HTTP/2 (h2c) backend that takes every stream and never answers one.
async fn mute_h2() -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    std::future::pending::<Result<http::Response<Full<Bytes>>, std::io::Error>>()
                        .await
                });
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                        .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_gives_up_on_a_mute_http2_backend_frees_its_place() {
    let addr = mute_h2().await;
    let t = Tango::start(&config(
        "protocol = \"h2\"\ntry_timeout = \"20s\"\ntimeout = \"20s\"\n",
        &[("mute", addr, 1)],
    ));
    leave_while_in_flight(&t).await;
}

/// A backend whose every answer is a `200` whose chunked body never ends (a connection
/// counts as open until a write to it fails).
async fn endless() -> Counted {
    counting(|mut s| async move {
        use tokio::io::AsyncWriteExt;
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).await;
        let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        let mut out = s.write_all(head).await;
        // Bounded: 20 s of chunks at most.
        for _ in 0..1000 {
            if out.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            out = s.write_all(b"5\r\nhello\r\n").await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_probes_of_an_endless_answer_pass_and_leave_no_connection_open() {
    let (addr, accepted, open) = endless().await;
    let t = Tango::start(&config(
        "[pool.health]\ninterval = \"50ms\"\ntimeout = \"300ms\"\nfall = 2\nrise = 2\njitter = 0.0\n",
        &[("stream", addr, 1)],
    ));
    wait_status(&t, "probes", Duration::from_secs(10), |_| {
        accepted.load(Relaxed) >= 6
    })
    .await;
    let s = admin_get(&t, "/api/v1/status").await;
    assert_eq!(entry(&s, "stream")["healthy"], true, "{s}");
    open_at_most(&accepted, &open, 2).await;
}

/// A client sends a GET and, once it is in flight at the backend, closes its
/// connection: the request must leave the backend's in-flight count.
async fn leave_while_in_flight(t: &Tango) {
    let mut s = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut s, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(
        in_flight_becomes(t, 1, Duration::from_secs(5)).await,
        "never in flight"
    );
    drop(s);
    assert!(
        in_flight_becomes(t, 0, Duration::from_secs(5)).await,
        "the request of a client that left stays in flight at the backend"
    );
}
