//! How tango manages its HTTP/2 connections to backends, against backends written on
//! the h2 crate's server so each can misbehave on purpose: a stream cap of one opens a
//! second connection for a second concurrent stream; a stream the backend refuses
//! (REFUSED_STREAM) goes to another backend; a connection the backend ends with GOAWAY
//! is left for a new one.

use crate::support::*;
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// SETTINGS_MAX_CONCURRENT_STREAMS = 1; each answer is held until as many streams
    /// as [`Streams::hold`] says have been open at once across the connections (at most
    /// 10 s).
    OneSlowStream,
    /// Every stream is refused with REFUSED_STREAM.
    Refuse,
    /// One stream answered per connection, then GOAWAY.
    GoAwayAfterOne,
}

/// A backend's streams, across its connections.
struct Streams {
    /// Opened in all.
    total: AtomicU64,
    /// Open now (opened and not yet answered).
    open: AtomicU64,
    /// The most open at once, watched: a count of those open now could rise and fall
    /// again before a held stream looked.
    peak: tokio::sync::watch::Sender<u64>,
    /// [`Mode::OneSlowStream`]: a stream is answered once this many are open at once.
    hold: AtomicU64,
}

/// The longest [`Mode::OneSlowStream`] holds an answer: far beyond any wait of the
/// test's, so that a stream left alone is answered (and the test fails on what it
/// counts) rather than hangs.
const HOLD_AT_MOST: Duration = Duration::from_secs(10);

/// An HTTP/2 backend (prior knowledge) answering its name, counting connections and
/// streams.
struct RawH2 {
    addr: SocketAddr,
    conns: Arc<AtomicU64>,
    streams: Arc<Streams>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawH2 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawH2 {
    async fn start(name: &'static str, mode: Mode) -> RawH2 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let conns = Arc::new(AtomicU64::new(0));
        let streams = Arc::new(Streams {
            total: AtomicU64::new(0),
            open: AtomicU64::new(0),
            peak: tokio::sync::watch::Sender::new(0),
            hold: AtomicU64::new(1),
        });
        let (c, s) = (conns.clone(), streams.clone());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = l.accept().await {
                c.fetch_add(1, Relaxed);
                tokio::spawn(serve(tcp, name, mode, s.clone()));
            }
        });
        RawH2 {
            addr,
            conns,
            streams,
            task,
        }
    }
}

async fn serve(tcp: tokio::net::TcpStream, name: &'static str, mode: Mode, n: Arc<Streams>) {
    let mut b = h2::server::Builder::new();
    if mode == Mode::OneSlowStream {
        b.max_concurrent_streams(1);
    }
    let Ok(mut conn) = b.handshake::<_, Bytes>(tcp).await else {
        return;
    };
    while let Some(Ok((_req, mut respond))) = conn.accept().await {
        n.total.fetch_add(1, Relaxed);
        match mode {
            Mode::Refuse => respond.send_reset(h2::Reason::REFUSED_STREAM),
            Mode::OneSlowStream => {
                let open = n.open.fetch_add(1, Relaxed) + 1;
                n.peak
                    .send_if_modified(|p| std::mem::replace(p, open.max(*p)) < open);
                let n = n.clone();
                tokio::spawn(async move {
                    let hold = n.hold.load(Relaxed);
                    let mut peak = n.peak.subscribe();
                    let _ = tokio::time::timeout(HOLD_AT_MOST, peak.wait_for(|p| *p >= hold)).await;
                    n.open.fetch_sub(1, Relaxed);
                    answer(&mut respond, name);
                });
            }
            Mode::GoAwayAfterOne => {
                answer(&mut respond, name);
                conn.graceful_shutdown();
            }
        }
    }
}

fn answer(respond: &mut h2::server::SendResponse<Bytes>, name: &str) {
    let resp = http::Response::builder().status(200).body(()).unwrap();
    if let Ok(mut send) = respond.send_response(resp, false) {
        let _ = send.send_data(Bytes::from(name.to_owned()), true);
    }
}

fn one_worker(pool_extra: &str, backends: &[(&str, SocketAddr, u32)]) -> Tango {
    let extra = format!("protocol = \"h2\"\n{pool_extra}");
    Tango::start_with(&config(&extra, backends), &["--workers", "1"])
}

#[tokio::test]
async fn a_stream_cap_of_one_opens_a_second_connection() {
    let b = RawH2::start("capped", Mode::OneSlowStream).await;
    let t = one_worker("", &[("b", b.addr, 1)]);
    let h2 = h2c(&t).await;
    // One connection first, whose SETTINGS tango has read by the time it answers.
    assert_eq!(
        h2_get(h2.clone(), &t, "/").await,
        (200, "capped".to_string())
    );
    assert_eq!(b.conns.load(Relaxed), 1);
    // The backend now answers neither of the next two until both are open at once.
    b.streams.hold.store(2, Relaxed);
    let (a, z) = tokio::join!(h2_get(h2.clone(), &t, "/"), h2_get(h2.clone(), &t, "/"));
    assert_eq!(a, (200, "capped".to_string()));
    assert_eq!(z, (200, "capped".to_string()));
    // Side by side on two connections, not one after the other on one: the second
    // stream opened while the first was still unanswered.
    assert_eq!(b.conns.load(Relaxed), 2, "upstream connections");
    assert_eq!(*b.streams.peak.borrow(), 2, "streams open at once");
    b.streams.hold.store(1, Relaxed);
    // A third, later request reuses one of them.
    assert_eq!(h2_get(h2, &t, "/").await, (200, "capped".to_string()));
    assert_eq!(b.conns.load(Relaxed), 2);
}

#[tokio::test]
async fn a_refused_stream_goes_to_another_backend() {
    let refusing = RawH2::start("refusing", Mode::Refuse).await;
    let good = RawH2::start("good", Mode::GoAwayAfterOne).await;
    let t = one_worker(
        "max_attempts = 2\n",
        &[("r", refusing.addr, 1), ("g", good.addr, 1)],
    );
    let c = client();
    for i in 0..4 {
        // From an HTTP/1.1 client (the engine) and from an h2c client (hyper) in turn.
        let got = if i % 2 == 0 {
            get(&c, &t.url("/")).await
        } else {
            h2_get(h2c(&t).await, &t, "/").await
        };
        assert_eq!(got, (200, "good".to_string()), "request {i}");
    }
    assert!(
        refusing.streams.total.load(Relaxed) >= 1,
        "the refusing backend was tried"
    );
}

#[tokio::test]
async fn after_a_goaway_the_next_request_opens_a_new_connection() {
    let b = RawH2::start("once", Mode::GoAwayAfterOne).await;
    let t = one_worker("", &[("b", b.addr, 1)]);
    let c = client();
    for i in 1..=3 {
        assert_eq!(
            get(&c, &t.url("/")).await,
            (200, "once".to_string()),
            "request {i}"
        );
        assert_eq!(
            h2_get(h2c(&t).await, &t, "/").await,
            (200, "once".to_string()),
            "request {i} over h2c"
        );
    }
    assert_eq!(b.streams.total.load(Relaxed), 6);
    assert_eq!(b.conns.load(Relaxed), 6, "one connection per stream");
}
