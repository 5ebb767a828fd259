//! Tunnels (a WebSocket's after a `101`, CONNECT's after a `2xx`) on every client path:
//! tango's engine, TLS HTTP/1.1, and HTTP/2 streams (h2c and TLS, CONNECT only). They
//! end at once when shutdown begins, and after the listener's `idle_timeout` with no
//! byte moving either way; a half-close is passed on each way; a reload leaves them
//! alone. The answers that must not open one are in `answers`; what follows an upgrade
//! the backend declined, in `declined`; a tunnel's access log line, in `logged`.

mod answers;
mod declined;
mod logged;
mod peers;

use crate::support::*;
use peers::{backend, every_tunnel, expect, ping, Busy, Front, Opener, Path, BOUND};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// On SIGTERM every open tunnel ends at once, whatever path it came by, and tango
/// exits long before the grace period (30 s) would have let it.
#[tokio::test]
async fn shutdown_ends_open_tunnels_at_once_on_every_path() {
    let b = backend().await;
    let mut f = Front::start_with(b.addr, "", "", &["--grace", "30s"]);
    let mut open = Vec::new();
    for (path, opener) in every_tunnel() {
        open.push((path, opener, f.open(path, opener).await));
    }
    let started = Instant::now();
    for t in f.both() {
        t.signal("TERM");
    }
    for (path, opener, mut io) in open {
        assert!(
            peers::ends_within(&mut io, Duration::from_secs(5)).await,
            "{path:?} {opener:?}: the tunnel outlived the start of shutdown by 5 s"
        );
    }
    for t in f.both() {
        let status = t.wait_exit(BOUND).expect("tango exits");
        assert!(status.success(), "{status:?}\n{}", t.log());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "tango took {:?} to exit\n{}",
            started.elapsed(),
            t.log()
        );
    }
}

/// A TLS connection hyper handed over to a tunnel is still open, and counted: at
/// `max_connections = 1` it leaves no room for a newcomer (it is busy, so it is not
/// closed to make room either), and once it ends there is room again.
#[tokio::test]
async fn a_tls_connection_that_became_a_tunnel_stays_counted() {
    let b = backend().await;
    let f = Front::start(b.addr, "max_connections = 1", "");
    let mut io = f.open(Path::TlsH1, Opener::Upgrade).await;
    let mut newcomer = tokio::net::TcpStream::connect(f.tls.addr()).await.unwrap();
    let mut buf = [0u8; 1];
    // Refused at once; one let in would wait for its handshake (the first-byte
    // timeout, 10 s).
    let r = tokio::time::timeout(Duration::from_secs(2), newcomer.read(&mut buf)).await;
    assert!(
        matches!(r, Ok(Ok(0)) | Ok(Err(_))),
        "{r:?}: a newcomer was let in"
    );
    ping(&mut io, "still open").await;
    drop(io);
    // The tunnel's end frees its place (how soon is tango's to notice: tried again).
    let deadline = Instant::now() + BOUND;
    loop {
        let tls = crate::protocols::try_tls_connect_to(f.tls.addr(), &f.ck, b"http/1.1");
        if let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(1), tls).await {
            let mut io: peers::Io = Box::new(tls);
            let (status, _) = peers::h1_request(&mut io, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
            assert_eq!(status, 200);
            break;
        }
        assert!(Instant::now() < deadline, "no room after the tunnel ended");
    }
}

/// A reload (here one that changes the tunnels' own pool: a backend added, its
/// timeouts changed) leaves every open tunnel as it was.
#[tokio::test]
async fn a_reload_leaves_open_tunnels_alone() {
    let b = backend().await;
    let other = backend().await;
    let f = Front::start(b.addr, "", "");
    let mut open = Vec::new();
    for (path, opener) in every_tunnel() {
        open.push((path, opener, f.open(path, opener).await));
    }
    for t in [&f.plain, &f.tls] {
        let text = std::fs::read_to_string(&t.config).unwrap();
        let text = text.replace("max_attempts = 1", "max_attempts = 1\ntry_timeout = \"5s\"")
            + &format!(
                "\n[[pool.backend]]\nname = \"c\"\naddress = \"{}\"\n",
                other.addr
            );
        t.write_config(&text);
        let (s, v) = admin_post(t, "/api/v1/reload").await;
        assert_eq!(s, 200, "{v}");
        let status = admin_get(t, "/api/v1/status").await;
        assert_eq!(status["pools"][0]["backends"].as_array().unwrap().len(), 2);
    }
    for (path, opener, mut io) in open {
        ping(&mut io, &format!("after the reload {path:?} {opener:?}")).await;
    }
}

/// A client that half-closes its side of a tunnel: the backend sees the end of the
/// stream, and what it sends after that still reaches the client, then the end of
/// the backend's side.
#[tokio::test]
async fn a_client_half_close_is_passed_on_on_every_path() {
    let b = backend().await;
    let f = Front::start(b.addr, "", "");
    for (path, opener) in every_tunnel() {
        let mut io = f.open(path, opener).await;
        io.shutdown().await.unwrap();
        // The backend's answer to the end of the stream: it got the 4 bytes of `ping`.
        expect(&mut io, b"eof after 4\n").await;
        let mut rest = Vec::new();
        let r = tokio::time::timeout(BOUND, io.read_to_end(&mut rest)).await;
        assert!(
            matches!(r, Ok(Ok(0))),
            "{path:?} {opener:?}: {r:?} {rest:?}"
        );
    }
    // Each tunnel's request is over once both sides have ended.
    for t in [&f.plain, &f.tls] {
        assert!(
            in_flight_becomes(t, 0, BOUND).await,
            "a tunnel is still in flight"
        );
    }
}

/// A backend that half-closes its side of a tunnel: the client sees the end of the
/// stream, and what it sends after that still reaches the backend, then the end of
/// the client's side.
#[tokio::test]
async fn a_backend_half_close_is_passed_on_on_every_path() {
    let b = backend().await;
    let f = Front::start(b.addr, "", "");
    for (i, (path, opener)) in every_tunnel().into_iter().enumerate() {
        let mut io = f.open(path, opener).await;
        // The backend echoes it and closes its side.
        ping(&mut io, "fin").await;
        let mut rest = Vec::new();
        let r = tokio::time::timeout(BOUND, io.read_to_end(&mut rest)).await;
        assert!(
            matches!(r, Ok(Ok(0))),
            "{path:?} {opener:?}: {r:?} {rest:?}"
        );
        io.write_all(b"after the end").await.unwrap();
        io.shutdown().await.unwrap();
        let deadline = Instant::now() + BOUND;
        while b.heard.lock().unwrap().len() <= i {
            assert!(
                Instant::now() < deadline,
                "{path:?} {opener:?}: the backend heard no end"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let heard = b.heard.lock().unwrap()[i].clone();
        assert_eq!(heard, "after fin: 13", "{path:?} {opener:?}");
    }
}

/// Bytes a client sends right behind its upgrade or CONNECT, before the answer, belong
/// to the tunnel: the backend gets them once it is open.
#[tokio::test]
async fn bytes_sent_behind_the_request_go_through_the_tunnel() {
    let b = backend().await;
    let f = Front::start(b.addr, "", "");
    for path in [Path::Engine, Path::TlsH1] {
        for (req, want) in [(peers::UPGRADE, 101), (peers::CONNECT, 200)] {
            let mut io = f.h1(path).await;
            let (status, _) = peers::h1_request(&mut io, &format!("{req}early")).await;
            assert_eq!(status, want, "{path:?}");
            expect(&mut io, b"hello\n>early").await;
        }
    }
}

/// A tunnel with no byte moving either way for the listener's `idle_timeout` is
/// closed; one in use outlives it as long as bytes keep moving.
#[tokio::test]
async fn an_idle_tunnel_is_closed_after_the_idle_timeout() {
    let b = backend().await;
    let idle = Duration::from_millis(600);
    let f = Front::start(b.addr, "idle_timeout = \"600ms\"", "");
    let mut quiet = Vec::new();
    let mut busy = Vec::new();
    for (path, opener) in every_tunnel() {
        quiet.push((path, opener, f.open(path, opener).await));
        // In use from the moment it is open: a ping every sixth of an idle timeout.
        let io = f.open(path, opener).await;
        busy.push(Busy::start(io, idle / 6, format!("{path:?} {opener:?}")));
    }
    // Three idle timeouts after the last one opened.
    tokio::time::sleep(idle * 3).await;
    for (path, opener, mut io) in quiet {
        assert!(
            peers::ends_within(&mut io, idle).await,
            "{path:?} {opener:?}: an idle tunnel outlived three idle timeouts"
        );
    }
    // Only the busy ones are still in flight (counted while they are still in use).
    let busy_at = |tls: bool| {
        every_tunnel()
            .iter()
            .filter(|(p, _)| p.tls() == tls)
            .count() as u64
    };
    let plain = in_flight_becomes(&f.plain, busy_at(false), BOUND).await;
    let tls = in_flight_becomes(&f.tls, busy_at(true), BOUND).await;
    for t in busy {
        t.stop().await.unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(plain && tls, "in flight: plain {plain}, TLS {tls}");
}
