//! 502, 503 and 504 each for its cause; retries go to a different backend; a
//! response body broken before anything was sent is a 502, after that a cut.

use crate::backend::Backend;
use crate::support::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn connect_failure_is_502_naming_the_cause() {
    let t = Tango::start(&config("max_attempts = 1", &[("dead", dead_addr(), 1)]));
    let (s, body) = get(&client(), &t.url("/")).await;
    assert_eq!(s, 502);
    assert!(body.contains("could not connect"), "{body}");
    assert!(
        !body.contains("127.0.0.1"),
        "no internals in the body: {body}"
    );
}

#[tokio::test]
async fn slow_backend_is_504() {
    let b = Backend::start("slow").await;
    let t = Tango::start(&config("try_timeout = \"200ms\"", &[("slow", b.addr, 1)]));
    let (s, body) = get(&client(), &t.url("/slow?ms=3000")).await;
    assert_eq!(s, 504, "{body}");
    assert!(body.contains("did not answer in time"), "{body}");
}

#[tokio::test]
async fn every_backend_at_its_cap_is_a_quick_503() {
    let b = Backend::start("capped").await;
    let cfg = config("", &[("capped", b.addr, 1)])
        .replace("weight = 1\n", "weight = 1\nmax_in_flight = 1\n");
    let t = Tango::start(&cfg);
    let c = client();
    let slow = {
        let c = c.clone();
        let url = t.url("/slow?ms=1500");
        tokio::spawn(async move { get(&c, &url).await })
    };
    // Wait until the slow request is in flight at the backend (an event, not a sleep).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while b.hits() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "slow request never arrived"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let (s, body) = get(&c, &t.url("/")).await;
    assert_eq!(s, 503, "{body}");
    assert!(
        body.contains("every backend is at its connection or request limit"),
        "the answer says why: {body}"
    );
    // Quick, not queued: the 503 came while the request holding the cap still held it.
    assert!(!slow.is_finished(), "503 must be quick, not queued");
    assert_eq!(slow.await.unwrap().0, 200);
}

#[tokio::test]
async fn gets_retry_on_another_backend_when_one_is_down() {
    let up = Backend::start("up").await;
    // The defaults (max_attempts = 2, retry_budget = 0.2): retrying a connection that
    // was refused costs no budget, since no backend did any work.
    let t = Tango::start(&config("", &[("dead", dead_addr(), 1), ("up", up.addr, 1)]));
    let c = client();
    for _ in 0..200 {
        let (s, body) = get(&c, &t.url("/")).await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body, "up\n");
    }
    assert_eq!(up.hits(), 200);
}

/// A backend that answers every request with `head`, then (after `pause`) `rest`,
/// then closes.
async fn canned(
    head: &'static [u8],
    rest: &'static [u8],
    pause: Duration,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut chunk = [0u8; 4096];
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(n) if n > 0 => got.extend_from_slice(&chunk[..n]),
                        _ => return,
                    }
                }
                if pause.is_zero() {
                    let _ = s.write_all(&[head, rest].concat()).await;
                } else {
                    let _ = s.write_all(head).await;
                    tokio::time::sleep(pause).await;
                    let _ = s.write_all(rest).await;
                }
                let _ = s.shutdown().await;
            });
        }
    });
    (addr, task)
}

/// Send `request` on a new connection to `addr`; everything read until tango closes.
async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "tango did not close: {out:?}");
    String::from_utf8_lossy(&out).into_owned()
}

/// GET `/` over `io` as `version` (HTTP/1.1 or HTTP/2): the status, or the error.
async fn get_over<I>(io: I, h2: bool) -> Result<(u16, String), String>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let io = hyper_util::rt::TokioIo::new(io);
    let req = http::Request::get("https://localhost/")
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = if h2 {
        let exec = hyper_util::rt::TokioExecutor::new();
        let (mut tx, conn) = hyper::client::conn::http2::handshake(exec, io)
            .await
            .unwrap();
        tokio::spawn(conn);
        tx.send_request(req).await
    } else {
        let (mut tx, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        tx.send_request(req).await
    };
    let resp = resp.map_err(|e| format!("no response: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await;
    let body = body.map_err(|e| format!("{status}, then the body broke: {e}"))?;
    Ok((
        status,
        String::from_utf8_lossy(&body.to_bytes()).into_owned(),
    ))
}

const CHUNKED_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

/// A chunked body whose framing is broken in its first bytes, read with the head,
/// before anything of the response went to the client: the client gets a 502 naming
/// the cause, on every client path (the engine's HTTP/1.1 and 1.0, h2c, and TLS with
/// HTTP/1.1 and HTTP/2), as for any response tango cannot forward.
#[tokio::test]
async fn a_chunked_body_broken_in_its_first_bytes_is_a_502_on_every_client_path() {
    let (addr, _b) = canned(CHUNKED_HEAD, b"ZZZ\r\n", Duration::ZERO).await;
    let cfg = config("max_attempts = 1", &[("bad", addr, 1)]);
    let t = Tango::start(&cfg);
    for request in [
        &b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..],
        b"GET / HTTP/1.0\r\n\r\n",
    ] {
        let got = raw_exchange(t.addr(), request).await;
        assert!(got.starts_with("HTTP/1."), "{got}");
        assert_eq!(&got[9..12], "502", "{got}");
        assert!(got.contains("malformed"), "{got}");
    }
    let (s, body) = h2c_get(&t, "/").await;
    assert_eq!(s, 502, "h2c: {body}");
    assert!(body.contains("malformed"), "{body}");

    let dir = tempfile::tempdir().unwrap();
    let (cfg, ck) = crate::protocols::tls_config(&cfg, dir.path());
    let t = Tango::start(&cfg);
    for (alpn, h2) in [(&b"http/1.1"[..], false), (b"h2", true)] {
        let tls = crate::protocols::tls_connect(&t, &ck, alpn).await;
        let (s, body) = get_over(tls, h2).await.unwrap();
        assert_eq!(s, 502, "TLS h2={h2}: {body}");
        assert!(body.contains("malformed"), "{body}");
    }
}

/// The same break after the head has gone out (the backend sent the head alone and the
/// broken chunk later): the client has part of a response, so its connection (or
/// HTTP/2 stream) is cut, never ended as if whole.
#[tokio::test]
async fn a_chunked_body_broken_after_the_head_went_out_is_cut() {
    let pause = Duration::from_millis(200);
    let (addr, _b) = canned(CHUNKED_HEAD, b"ZZZ\r\n", pause).await;
    let t = Tango::start(&config("max_attempts = 1", &[("bad", addr, 1)]));
    let got = raw_exchange(t.addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
    assert!(!got.ends_with("0\r\n\r\n"), "ended as if whole: {got}");
    let tcp = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    let got = get_over(tcp, true).await;
    assert!(
        got.as_ref().is_err_and(|e| e.starts_with("200, then")),
        "{got:?}"
    );
}

/// A response head tango cannot forward (a `101` the request did not ask for, or a
/// head that is not HTTP) is the backend's failure, told as such: a request that may
/// be sent twice (a GET) goes to the next backend as after a reset, and one that may
/// not (a POST) is answered `502` saying the response was malformed, not that the
/// backend reset the connection.
#[tokio::test]
async fn a_bad_response_head_is_retried_as_a_reset_and_told_as_malformed() {
    let good = crate::backend::Backend::start("good").await;
    for bad_head in [
        &b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n"[..],
        b"HTTP/1.1 abc\r\n\r\n",
    ] {
        let what = String::from_utf8_lossy(bad_head).into_owned();
        let (bad, _b) = canned(bad_head, b"", Duration::ZERO).await;
        let cfg = config(
            "policy = \"round_robin\"",
            &[("bad", bad, 1), ("good", good.addr, 1)],
        );
        let t = Tango::start(&cfg);
        let c = client();
        for _ in 0..6 {
            let (s, body) = get(&c, &t.url("/")).await;
            assert_eq!((s, body.as_str()), (200, "good\n"), "GET, {what:?}");
        }
        let status = admin_get(&t, "/api/v1/status").await;
        assert!(
            status["pools"][0]["backends"][0]["errors"].as_u64() > Some(0),
            "the GETs tried the bad backend first half the time: {status}"
        );
        let mut refused = 0;
        for _ in 0..4 {
            let post = http::Request::post(t.url("/"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            match send(&c, post).await {
                (200, body) => assert_eq!(body, "good\n"),
                (502, body) => {
                    assert_eq!(body, "the backend's response was malformed\n", "{what:?}");
                    refused += 1;
                }
                other => panic!("POST, {what:?}: {other:?}"),
            }
        }
        assert_eq!(
            refused, 2,
            "round robin: every other POST went to the bad backend"
        );
    }
}
