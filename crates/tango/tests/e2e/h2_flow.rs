//! HTTP/2 flow control through tango to an HTTP/2 backend (`protocol = "h2"`): a
//! client that stops reading a large answer holds back that answer alone. Its stream
//! backs up to the backend (tango reads no further ahead than the client takes, plus
//! bounded buffers), and the other streams that share the backend's connection with
//! it go on at full speed. A client that gives up on its download mid-way has the
//! backend's stream reset.

use crate::support::*;
use bytes::Bytes;
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// Bounds each wait; what is awaited comes much sooner.
const T: Duration = Duration::from_secs(10);

/// An h2c backend that answers `GET /big?n=N` with N bytes, sent as fast as the
/// stream's flow control lets them go, counting the bytes it got to send and the
/// answers whose stream was reset before their end.
struct Source {
    addr: SocketAddr,
    sent: Arc<AtomicU64>,
    cut: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Source {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Source {
    async fn start() -> Source {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (sent, cut) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let counts = (sent.clone(), cut.clone());
        let task = tokio::spawn(async move {
            while let Ok((c, _)) = l.accept().await {
                let _ = c.set_nodelay(true);
                let counts = counts.clone();
                tokio::spawn(async move {
                    let Ok(mut conn) = h2::server::handshake(c).await else {
                        return;
                    };
                    while let Some(Ok((req, respond))) = conn.accept().await {
                        tokio::spawn(source(req, respond, counts.clone()));
                    }
                });
            }
        });
        Source {
            addr,
            sent,
            cut,
            task,
        }
    }
}

async fn source(
    req: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    (sent, cut): (Arc<AtomicU64>, Arc<AtomicU64>),
) {
    let n: u64 = req
        .uri()
        .query()
        .and_then(|q| q.strip_prefix("n="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let Ok(mut send) = respond.send_response(http::Response::new(()), false) else {
        return;
    };
    let chunk = Bytes::from(vec![b'x'; 16 << 10]);
    let mut left = n;
    while left > 0 {
        send.reserve_capacity(chunk.len().min(left as usize));
        let granted = match std::future::poll_fn(|cx| send.poll_capacity(cx)).await {
            Some(Ok(k)) if k > 0 => k,
            Some(Ok(_)) => continue,
            _ => {
                cut.fetch_add(1, Relaxed);
                return;
            }
        };
        if send.send_data(chunk.slice(..granted), false).is_err() {
            cut.fetch_add(1, Relaxed);
            return;
        }
        left -= granted as u64;
        sent.fetch_add(granted as u64, Relaxed);
    }
    let _ = send.send_data(Bytes::new(), true);
}

/// One client takes the head of a 16 MiB answer and reads none of its body; another,
/// on another connection of the same worker (so its stream shares the backend's
/// connection), downloads 4 MiB in full meanwhile. The stalled answer backs up to the
/// backend within a few MiB (the windows and buffers between), and holds back nothing
/// else: with the connection's window no larger than a stream's, the stalled stream's
/// unread bytes would use it all up, and every other stream on that connection would
/// wait for the slow client (until `send_timeout` closed it).
#[tokio::test]
async fn a_client_that_stops_reading_holds_back_its_own_answer_only() {
    let b = Source::start().await;
    let t = Tango::start_with(
        &config("protocol = \"h2\"", &[("a", b.addr, 1)]),
        &["--workers", "1"],
    );
    let url = |n: u64| format!("http://{}/big?n={n}", t.addr());
    let mut slow = h2c(&t).await;
    let req = http::Request::get(url(16 << 20))
        .body(http_body_util::Full::new(Bytes::new()))
        .unwrap();
    let stalled = tokio::time::timeout(T, slow.send_request(req))
        .await
        .expect("a head in time")
        .unwrap();
    assert_eq!(stalled.status(), 200);
    // Time for the stalled answer to fill what lies between.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let backed_up = b.sent.load(Relaxed);
    assert!(
        backed_up < 4 << 20,
        "read {backed_up} bytes ahead of the client"
    );
    let fast = tokio::time::timeout(T, h2_get(h2c(&t).await, &t, "/big?n=4194304"))
        .await
        .expect("the other download held back by the stalled one");
    assert_eq!((fast.0, fast.1.len()), (200, 4 << 20));
    // The stalled answer is still whole once read.
    let body = tokio::time::timeout(T * 3, stalled.into_body().collect())
        .await
        .expect("the stalled answer in time")
        .unwrap();
    assert_eq!(body.to_bytes().len(), 16 << 20);
}

/// A client that resets its stream in the middle of a download from an HTTP/2
/// backend: the backend's stream is reset too (its answer is not read to the end into
/// nowhere), and the request is no longer in flight.
#[tokio::test]
async fn a_client_reset_mid_download_resets_the_backend_s_stream() {
    let b = Source::start().await;
    let t = Tango::start(&config("protocol = \"h2\"", &[("a", b.addr, 1)]));
    let mut h2 = h2c(&t).await;
    let req = http::Request::get(format!("http://{}/big?n={}", t.addr(), 64 << 20))
        .body(http_body_util::Full::new(Bytes::new()))
        .unwrap();
    let resp = tokio::time::timeout(T, h2.send_request(req))
        .await
        .expect("a head in time")
        .unwrap();
    let mut body = resp.into_body();
    let first = tokio::time::timeout(T, body.frame()).await.expect("data");
    assert!(first.is_some_and(|f| f.is_ok()));
    // Dropping an unfinished body resets its stream (CANCEL).
    drop(body);
    let end = tokio::time::Instant::now() + T;
    while b.cut.load(Relaxed) == 0 && tokio::time::Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(b.cut.load(Relaxed), 1, "the backend's stream went on");
    assert!(b.sent.load(Relaxed) < 64 << 20);
    assert!(in_flight_becomes(&t, 0, T).await, "still in flight");
}
