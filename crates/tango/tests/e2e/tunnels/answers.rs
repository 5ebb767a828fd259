//! The answers that must not open a tunnel: an upgrade the backend declines (`200`) is
//! an answer like any other, and the connection goes on; a `101` nobody asked for is
//! the backend's error (`502`).

use super::peers::{backend, h1_body, h1_request, Front, Io, Path};

const UPGRADE_REFUSED: &str =
    "GET /refuse HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n";
const PLAIN: &str = "GET /plain HTTP/1.1\r\nHost: x\r\n\r\n";
const UNASKED: &str = "GET /unasked HTTP/1.1\r\nHost: x\r\n\r\n";

/// One request and its whole answer on an HTTP/1.1 connection: status and body.
async fn exchange(io: &mut Io, req: &str) -> (u16, String) {
    let (status, head) = h1_request(io, req).await;
    (status, h1_body(io, &head).await)
}

#[tokio::test]
async fn an_upgrade_answered_200_is_an_answer_and_the_connection_goes_on() {
    let (addr, _b) = backend().await;
    let f = Front::start(addr, "", "");
    for path in [Path::Engine, Path::TlsH1] {
        let mut io = f.h1(path).await;
        let (status, body) = exchange(&mut io, UPGRADE_REFUSED).await;
        assert_eq!(
            (status, body.as_str()),
            (200, "not upgrading\n"),
            "{path:?}"
        );
        // Not a tunnel: the next request on the connection is a request.
        let (status, body) = exchange(&mut io, PLAIN).await;
        assert_eq!((status, body.as_str()), (200, "plain\n"), "{path:?}");
    }
}

#[tokio::test]
async fn a_101_nobody_asked_for_is_a_502_on_every_path() {
    let (addr, _b) = backend().await;
    let f = Front::start(addr, "", "");
    for path in Path::ALL {
        let (status, body) = if path.h2() {
            f.h2_get(path, "/unasked").await
        } else {
            let mut io = f.h1(path).await;
            let got = exchange(&mut io, UNASKED).await;
            // The connection is still the client's to use.
            let (status, body) = exchange(&mut io, PLAIN).await;
            assert_eq!((status, body.as_str()), (200, "plain\n"), "{path:?}");
            got
        };
        assert_eq!(status, 502, "{path:?}: {body}");
    }
}
