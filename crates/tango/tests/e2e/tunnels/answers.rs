//! The answers that must not open a tunnel: an upgrade the backend declines (`200`) is
//! an answer like any other, and the connection goes on; a `101` nobody asked for is
//! the backend's error (`502`); CONNECT to a backend that speaks HTTP/2 is a method
//! tango does not carry there (`501`), not the client's mistake.

use super::peers::{backend, h1_body, h1_request, Front, Io, Path, BOUND, CONNECT};
use crate::upstream_tls::Ca;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;

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
    let b = backend().await;
    let f = Front::start(b.addr, "", "");
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
    let b = backend().await;
    let f = Front::start(b.addr, "", "");
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
        // The backend answered, wrongly: not a connection it closed or reset.
        assert_eq!(body, "the backend's response was malformed\n", "{path:?}");
    }
}

/// An h2c backend answering every request (`grpc::backend_request`).
async fn h2c_backend() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let svc = hyper::service::service_fn(crate::grpc::backend_request);
            let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(s), svc);
            tokio::spawn(conn);
        }
    });
    (addr, task)
}

/// CONNECT by `path`: the status and the body.
async fn connect(f: &Front, path: Path) -> (u16, String) {
    if path.h2() {
        use http_body_util::BodyExt;
        let io = TokioIo::new(f.connect(path).await);
        let (mut tx, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = http::Request::connect("echo.test:443")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = tx.send_request(req).await.expect("an answer to CONNECT");
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        return (status, String::from_utf8_lossy(&body).into_owned());
    }
    let mut io = f.h1(path).await;
    let answer = exchange(&mut io, CONNECT).await;
    // What follows a refused CONNECT may be the tunnel's first bytes, not a request.
    assert!(
        super::peers::ends_within(&mut io, BOUND).await,
        "{path:?}: the connection stays open after a refused CONNECT"
    );
    answer
}

/// CONNECT to the backends of `f`, which speak HTTP/2, is answered `501` on every path,
/// saying why; other requests still reach them.
async fn connect_is_not_implemented(f: &Front) {
    for path in Path::ALL {
        let (status, body) = connect(f, path).await;
        assert_eq!(status, 501, "{path:?}: {body}");
        assert!(
            body.contains("CONNECT") && body.contains("HTTP/2"),
            "{path:?}: {body}"
        );
    }
    let mut io = f.h1(Path::Engine).await;
    let (status, head) = h1_request(&mut io, PLAIN).await;
    assert_eq!(status, 200, "{head}");
}

#[tokio::test]
async fn connect_to_an_http2_pool_is_501_on_every_path() {
    let (addr, _b) = h2c_backend().await;
    let f = Front::start(addr, "", "protocol = \"h2\"");
    connect_is_not_implemented(&f).await;
}

#[tokio::test]
async fn connect_to_an_auto_pool_backend_that_chose_http2_is_501_on_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let b = crate::grpc_tls::TlsH2Backend::start(&ca, &[b"h2"]).await;
    let pool = format!(
        "protocol = \"auto\"\ntls = {{ ca = \"{}\", server_name = \"grpc.test\" }}",
        ca.write(dir.path(), "ca")
    );
    let f = Front::start_with(b.addr, "", &pool, &["--workers", "1"]);
    // The first request finds out that the backend speaks HTTP/2.
    let mut io = f.h1(Path::Engine).await;
    let (status, head) = h1_request(&mut io, PLAIN).await;
    assert_eq!(status, 200, "{head}");
    connect_is_not_implemented(&f).await;
}
