//! Tunnels (a WebSocket's after a `101`, CONNECT's after a `2xx`) on every client path:
//! tango's engine, TLS HTTP/1.1, and HTTP/2 streams (h2c and TLS, CONNECT only). A
//! half-close is passed on each way; a reload leaves them alone. The answers that must
//! not open one are in `answers`.

mod answers;
mod peers;

use crate::support::*;
use peers::{backend, every_tunnel, expect, ping, Front, BOUND};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A reload (here one that changes the tunnels' own pool: a backend added, its
/// timeouts changed) leaves every open tunnel as it was.
#[tokio::test]
async fn a_reload_leaves_open_tunnels_alone() {
    let (addr, _b) = backend().await;
    let (other, _o) = backend().await;
    let f = Front::start(addr, "", "");
    let mut open = Vec::new();
    for (path, opener) in every_tunnel() {
        open.push((path, opener, f.open(path, opener).await));
    }
    for t in [&f.plain, &f.tls] {
        let text = std::fs::read_to_string(&t.config).unwrap();
        let text = text.replace("max_attempts = 1", "max_attempts = 1\ntry_timeout = \"5s\"")
            + &format!("\n[[pool.backend]]\nname = \"c\"\naddress = \"{other}\"\n");
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
async fn a_half_close_is_passed_on_both_ways_on_every_path() {
    let (addr, _b) = backend().await;
    let f = Front::start(addr, "", "");
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
}
