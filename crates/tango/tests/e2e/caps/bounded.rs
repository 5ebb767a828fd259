//! Bounded load against workers that race: a hash pool's picks on two workers read the
//! same in-flight counts, and the cap each pick computed still holds when its request
//! is counted in.

use crate::support::*;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Bounds each wait; the events awaited come much sooner.
const BOUND: Duration = Duration::from_secs(15);

/// Backends that hold every request until the round's last one has come (to any of
/// them), counting the requests each holds and the most it held at once.
struct Gate {
    /// Requests that have come, over all the backends.
    arrived: watch::Sender<u64>,
    held: Vec<AtomicU64>,
    most: Vec<AtomicU64>,
}

/// Counts a request out of its backend's `held` when it is answered (or dropped).
struct Holding<'a>(&'a AtomicU64);

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl Gate {
    /// Backend `i`'s answer to a request that asks it to wait for `?until=N` arrivals.
    async fn hold(&self, i: usize, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
        let until: u64 = req
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("until="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let now = self.held[i].fetch_add(1, Relaxed) + 1;
        let _holding = Holding(&self.held[i]);
        self.most[i].fetch_max(now, Relaxed);
        self.arrived.send_modify(|n| *n += 1);
        let mut arrived = self.arrived.subscribe();
        // Checked at once: the value's guard must not be held while others count in.
        let all_came = tokio::time::timeout(BOUND, arrived.wait_for(|&n| n >= until))
            .await
            .is_ok_and(|r| r.is_ok());
        let status = if all_came { 200 } else { 504 };
        let mut resp = hyper::Response::new(Full::new(Bytes::from(format!("b{i}\n"))));
        *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        resp
    }
}

/// `n` gated backends on loopback, port 0.
async fn gated(n: usize) -> (Arc<Gate>, Vec<SocketAddr>) {
    let gate = Arc::new(Gate {
        arrived: watch::channel(0).0,
        held: (0..n).map(|_| AtomicU64::new(0)).collect(),
        most: (0..n).map(|_| AtomicU64::new(0)).collect(),
    });
    let mut addrs = Vec::new();
    for i in 0..n {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(listener.local_addr().unwrap());
        let gate = gate.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let gate = gate.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let gate = gate.clone();
                        async move { Ok::<_, std::convert::Infallible>(gate.hold(i, req).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc);
                    let _ = conn.await;
                });
            }
        });
    }
    (gate, addrs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_workers_never_pass_a_bounded_load_cap() {
    // As many requests at once as backends, all on one key, at the tightest factor: every
    // pick of a round is capped at one request per backend (ceil(1.0 x (T + 1) / 16)
    // with T < 16), so two workers that both took one backend's only place would show
    // as a backend holding two.
    let n = 16;
    let (gate, addrs) = gated(n).await;
    let names: Vec<String> = (0..n).map(|i| format!("b{i}")).collect();
    let spec: Vec<(&str, SocketAddr, u32)> = names
        .iter()
        .zip(&addrs)
        .map(|(name, &a)| (name.as_str(), a, 1))
        .collect();
    let policy = "policy = \"ring_hash\"\nhash_key = { source = \"header\", name = \"x-k\" }\nmax_load_factor = 1.0\n";
    let t = Tango::start_with(&config(policy, &spec), &["--workers", "2"]);
    let c = client();
    for round in 1..=600u64 {
        let url = t.url(&format!("/?until={}", round * n as u64));
        let requests: Vec<_> = (0..n)
            .map(|_| {
                let req = http::Request::get(&url)
                    .header("x-k", "hot")
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                let c = c.clone();
                tokio::spawn(async move { send(&c, req).await })
            })
            .collect();
        for r in requests {
            let (s, body) = r.await.unwrap();
            assert_eq!(s, 200, "round {round}: {body}");
        }
        // A count the proxy lets go of a moment after the client has its answer would
        // raise the next round's caps: each round starts from none in flight.
        wait_status(&t, "nothing in flight", BOUND, |s| {
            s["pools"][0]["backends"]
                .as_array()
                .is_some_and(|bs| bs.iter().all(|b| b["in_flight"] == 0))
        })
        .await;
    }
    let most: Vec<u64> = gate.most.iter().map(|m| m.load(Relaxed)).collect();
    assert_eq!(
        most,
        vec![1; n],
        "the most each backend held at once, cap 1"
    );
}
