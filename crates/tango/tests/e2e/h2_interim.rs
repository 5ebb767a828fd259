//! Interim (1xx) answers from an HTTP/2 backend are capped as an HTTP/1 backend's are
//! (`exchange::MAX_INTERIM`, 32): the 33rd makes the answer invalid (`502`), from
//! either client side, where a backend that kept sending them held the try until
//! `try_timeout` (h2 skips them unseen when asked for the final head).

use crate::support::*;
use bytes::Bytes;
use std::net::SocketAddr;

/// An h2c backend that answers `/n/K` with K `103 Early Hints` heads, then `200` "ok".
struct Hinting {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Hinting {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Hinting {
    async fn start() -> Hinting {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((c, _)) = l.accept().await {
                tokio::spawn(async move {
                    let Ok(mut conn) = h2::server::handshake(c).await else {
                        return;
                    };
                    while let Some(Ok((req, respond))) = conn.accept().await {
                        tokio::spawn(answer(req, respond));
                    }
                });
            }
        });
        Hinting { addr, task }
    }
}

async fn answer(req: http::Request<h2::RecvStream>, mut respond: h2::server::SendResponse<Bytes>) {
    let hints: usize = req
        .uri()
        .path()
        .strip_prefix("/n/")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    for _ in 0..hints {
        let early = http::Response::builder()
            .status(103)
            .header("link", "</style.css>; rel=preload")
            .body(())
            .unwrap();
        if respond.send_informational(early).is_err() {
            return;
        }
    }
    let Ok(mut send) = respond.send_response(http::Response::new(()), false) else {
        return;
    };
    let _ = send.send_data(Bytes::from_static(b"ok"), true);
}

fn tango(b: &Hinting) -> Tango {
    Tango::start(&config("protocol = \"h2\"", &[("a", b.addr, 1)]))
}

#[tokio::test]
async fn the_33rd_interim_answer_of_an_h2_backend_is_a_502_for_an_engine_client() {
    let b = Hinting::start().await;
    let t = tango(&b);
    let c = client();
    let url = |n: u32| format!("http://{}/n/{n}", t.addr());
    assert_eq!(get(&c, &url(32)).await, (200, "ok".into()));
    let (status, _) = get(&c, &url(33)).await;
    assert_eq!(status, 502);
    assert_eq!(get(&c, &url(1)).await, (200, "ok".into()));
}

#[tokio::test]
async fn the_33rd_interim_answer_of_an_h2_backend_is_a_502_for_an_h2_client() {
    let b = Hinting::start().await;
    let t = tango(&b);
    assert_eq!(h2c_get(&t, "/n/32").await, (200, "ok".into()));
    let (status, _) = h2c_get(&t, "/n/33").await;
    assert_eq!(status, 502);
    assert_eq!(h2c_get(&t, "/n/1").await, (200, "ok".into()));
}
