//! Several workers: connections spread over them (evenly, when held open), a reload binds a new listener on each,
//! the connection limit is one total, and shutdown drains every worker's connections.

use crate::backend::Backend;
use crate::support::*;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bounds each wait in this module; the events awaited come much sooner.
const BOUND: Duration = Duration::from_secs(15);

/// tango with two workers, logging each accepted connection with its worker.
fn two_workers(config: &str) -> Tango {
    Tango::start_env(
        config,
        &["--workers", "2"],
        &[("RUST_LOG", "info,tango::proxy::listener=debug")],
    )
}

/// One request on a connection of its own; returns the whole answer.
async fn on_new_connection(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(BOUND, s.read_to_end(&mut buf))
        .await
        .expect("answer in time")
        .unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

/// `n` requests at once, each on its own connection; every answer must be a 200.
async fn all_succeed(addr: SocketAddr, n: usize) {
    let tasks: Vec<_> = (0..n)
        .map(|_| tokio::spawn(on_new_connection(addr, "/")))
        .collect();
    for t in tasks {
        let answer = t.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
}

/// The workers that logged accepting a connection for `listener`.
fn accepting_workers(t: &Tango, listener: &str) -> BTreeSet<String> {
    let tag = format!("listener={listener} ");
    t.log()
        .lines()
        .filter(|l| l.contains(" accepted ") && l.contains(&tag))
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("worker=")))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn connections_spread_over_two_workers_and_all_succeed() {
    let b = Backend::start("a").await;
    let t = two_workers(&config("", &[("a", b.addr, 1)]));
    all_succeed(t.addr(), 64).await;
    // The kernel hashes each connection to one worker's socket: 64 connections all on
    // one of two workers would be a 1 in 2^63 chance.
    let workers = accepting_workers(&t, "main");
    assert_eq!(
        workers,
        BTreeSet::from(["worker=0".to_string(), "worker=1".to_string()]),
        "{}",
        t.log()
    );
}

#[tokio::test]
async fn connections_held_open_are_served_evenly_by_the_two_workers() {
    let b = Backend::start("a").await;
    let t = two_workers(&config("", &[("a", b.addr, 1)]));
    // One after another, each answered before the next opens, and all kept open: the
    // kernel's hash alone would put exactly 10 on each worker 1 time in 6.
    let mut held = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(t.addr()).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0; 4096];
        let n = tokio::time::timeout(BOUND, s.read(&mut buf))
            .await
            .expect("answer in time")
            .unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        );
        held.push(s);
    }
    let serving: Vec<String> = t
        .log()
        .lines()
        .filter(|l| l.contains(" accepted ") && l.contains("listener=main "))
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("serves=")))
        .map(str::to_string)
        .collect();
    let on = |w: &str| serving.iter().filter(|s| *s == w).count();
    assert_eq!((on("serves=0"), on("serves=1")), (10, 10), "{}", t.log());
    drop(held);
}

#[tokio::test]
async fn a_reload_adds_a_listener_on_every_worker() {
    let b = Backend::start("a").await;
    let cfg = config("", &[("a", b.addr, 1)]);
    let t = two_workers(&cfg);
    // A second listener on another loopback address, port 0 again.
    let added = cfg.replacen(
        "\n\n[[pool]]",
        "\n\n[[listener]]\nname = \"second\"\nlisten = \"127.0.0.2:0\"\n\n[[pool]]",
        1,
    );
    t.write_config(&added);
    let (s, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!(s, 200, "{v}");
    let status = admin_get(&t, "/api/v1/status").await;
    let second: SocketAddr = status["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "second")
        .and_then(|l| l["address"].as_str())
        .expect("the new listener in the status")
        .parse()
        .unwrap();
    assert_ne!(second.port(), 0, "the bound port is reported");
    all_succeed(second, 64).await;
    all_succeed(t.addr(), 8).await;
    assert_eq!(accepting_workers(&t, "second").len(), 2, "{}", t.log());
}

#[tokio::test]
async fn the_connection_limit_is_one_total_across_workers() {
    let b = Backend::start("a").await;
    let t = two_workers(&config("", &[("a", b.addr, 1)]).replacen(
        "\n\n[[pool]]",
        "\nmax_connections = 4\n\n[[pool]]",
        1,
    ));
    // Four connections busy with a request each, on whichever workers the kernel picks.
    let held: Vec<_> = (0..4)
        .map(|_| tokio::spawn(on_new_connection(t.addr(), "/slow?ms=3000")))
        .collect();
    let deadline = Instant::now() + BOUND;
    while b.hits() < 4 {
        assert!(Instant::now() < deadline, "held requests never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Whichever worker takes the fifth, the listener is full and nothing is idle.
    let answer = on_new_connection(t.addr(), "/").await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    for h in held {
        assert!(h.await.unwrap().starts_with("HTTP/1.1 200"));
    }
}

#[tokio::test]
async fn sigterm_drains_the_connections_of_every_worker() {
    let b = Backend::start("a").await;
    let mut t = two_workers(&config("", &[("a", b.addr, 1)]));
    let inflight: Vec<_> = (0..32)
        .map(|_| tokio::spawn(on_new_connection(t.addr(), "/slow?ms=800")))
        .collect();
    let deadline = Instant::now() + BOUND;
    while b.hits() < 32 {
        assert!(Instant::now() < deadline, "requests never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    t.signal("TERM");
    for r in inflight {
        let answer = r.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let status = t.wait_exit(BOUND).expect("tango exits after draining");
    assert!(status.success(), "{status:?}\n{}", t.log());
    let log = t.log();
    assert!(log.contains("drained"), "{log}");
    // 32 connections all on one of two workers would be a 1 in 2^31 chance.
    assert_eq!(accepting_workers(&t, "main").len(), 2, "{log}");
}
