//! Connections and the process: slow clients, connection limits, graceful shutdown.

use crate::backend::Backend;
use crate::support::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn with_listener(cfg: &str, extra: &str) -> String {
    cfg.replacen(
        "listen = \"127.0.0.1:0\"\n\n[[pool]]",
        &format!("listen = \"127.0.0.1:0\"\n{extra}\n\n[[pool]]"),
        1,
    )
}

#[tokio::test]
async fn slow_client_is_closed_by_the_header_timeout() {
    let b = Backend::start("a").await;
    let t = Tango::start(&with_listener(
        &config("", &[("a", b.addr, 1)]),
        "header_timeout = \"300ms\"",
    ));
    let mut s = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    // Half a request head, then nothing.
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    // The event awaited is tango closing the connection; 10 s bounds the test only.
    let r = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    assert!(r.is_ok(), "connection still open after 10 s");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed after {:?}",
        started.elapsed()
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    assert_eq!(b.hits(), 0);
}

#[tokio::test]
async fn over_the_connection_limit_is_a_quick_503() {
    let b = Backend::start("a").await;
    let t = Tango::start(&with_listener(
        &config("", &[("a", b.addr, 1)]),
        "max_connections = 2",
    ));
    // Two connections held open with a request in progress each.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
        s.write_all(b"GET /slow?ms=2000 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        held.push(s);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.hits() < 2 {
        assert!(Instant::now() < deadline, "held requests never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut s = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(
        String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 503"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    // Quick, not queued for a slot: neither held request has been answered yet.
    for h in &held {
        let r = h.try_read(&mut [0u8; 1]);
        assert!(
            matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "a held request was answered before the 503: {r:?}"
        );
    }
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests() {
    let b = Backend::start("a").await;
    let mut t = Tango::start(&config("", &[("a", b.addr, 1)]));
    let c = client();
    let inflight: Vec<_> = (0..4)
        .map(|_| {
            let c = c.clone();
            let url = t.url("/slow?ms=800");
            tokio::spawn(async move { get(&c, &url).await })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.hits() < 4 {
        assert!(Instant::now() < deadline, "requests never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    t.signal("TERM");
    // New connections are refused once the listener has stopped...
    let refused_deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if tokio::net::TcpStream::connect(t.addr()).await.is_err() {
            break;
        }
        assert!(
            Instant::now() < refused_deadline,
            "still accepting after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ...while every request already in flight completes.
    for r in inflight {
        let (s, body) = r.await.unwrap();
        assert_eq!(s, 200, "{body}");
    }
    let status = t
        .wait_exit(Duration::from_secs(10))
        .expect("tango exits after draining");
    assert!(status.success(), "{status:?}\n{}", t.log());
    assert!(t.log().contains("drained"), "{}", t.log());
}

#[tokio::test]
async fn keep_alive_outlives_the_header_timeout_until_the_idle_timeout() {
    let b = Backend::start("a").await;
    let t = Tango::start(&with_listener(
        &config("", &[("a", b.addr, 1)]),
        "header_timeout = \"300ms\"\nidle_timeout = \"1s\"",
    ));
    let mut s = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    for _ in 0..2 {
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        );
        // Idle for longer than the header timeout, shorter than the idle timeout.
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    // Past the idle timeout the connection is closed: the event awaited is EOF.
    let started = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await;
    assert!(matches!(r, Ok(Ok(0))), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}
