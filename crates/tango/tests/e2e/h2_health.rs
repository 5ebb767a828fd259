//! Health checks of `h2` pools speak HTTP/2: backends that speak nothing else (hyper's
//! HTTP/2 server, as a gRPC server is) are probed by prior knowledge over TCP, or over
//! TLS offering ALPN `h2`; a backend answering 200 stays in and serves, one answering
//! 503 is taken out and gets no traffic. `kind = "grpc"` calls the standard
//! `grpc.health.v1.Health/Check` (served here by tonic, messages written by hand):
//! SERVING is healthy, NOT_SERVING is not. State is read from `/api/v1/status`, the
//! probes from the backends' own counters.

use crate::support::*;
use crate::upstream_tls::{server_config, Ca};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, AtomicU16, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};

/// Fast probing: down after 2 failed probes 100 ms apart, back after 1 pass.
const HEALTH: &str = "[pool.health]\npath = \"/health\"\ninterval = \"100ms\"\ntimeout = \"1s\"\nrise = 1\nfall = 2\njitter = 0.0\n";

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    pub service: String,
}

/// `grpc.health.v1.HealthCheckResponse`; `status` 1 is SERVING, 2 NOT_SERVING.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    pub status: i32,
}

/// The backend's gRPC health service: answers `serving` for the server as a whole
/// (`""`) and for `test.Echo`, NOT_FOUND for any other service.
struct Check(Arc<Seen>);
impl tonic::server::UnaryService<HealthCheckRequest> for Check {
    type Response = HealthCheckResponse;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<tonic::Response<HealthCheckResponse>, tonic::Status>,
                > + Send,
        >,
    >;
    fn call(&mut self, req: tonic::Request<HealthCheckRequest>) -> Self::Future {
        let st = self.0.clone();
        Box::pin(async move {
            let service = req.into_inner().service;
            st.health_hits.fetch_add(1, Relaxed);
            *st.last_probe.lock().unwrap() = format!("service={service:?}");
            if !["", "test.Echo"].contains(&service.as_str()) {
                return Err(tonic::Status::not_found("unknown service"));
            }
            let status = st.serving.load(Relaxed);
            Ok(tonic::Response::new(HealthCheckResponse { status }))
        })
    }
}

/// What an HTTP/2 backend saw.
#[derive(Default)]
struct Seen {
    health_hits: AtomicU64,
    /// What `/health` answers.
    health_status: AtomicU16,
    /// What the gRPC health service answers (1: SERVING).
    serving: AtomicI32,
    /// The last probe: method, URI (scheme and authority from HTTP/2's pseudo-header
    /// fields), version and user agent.
    last_probe: Mutex<String>,
    /// Requests for anything but `/health`.
    served: AtomicU64,
    /// TLS handshakes that chose `h2` by ALPN.
    alpn_h2: AtomicU64,
}

/// A backend that speaks only HTTP/2: `/health` answers `health_status`, anything else
/// its name.
struct H2Backend {
    addr: SocketAddr,
    seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for H2Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl H2Backend {
    /// Start on loopback, over TLS with `tls` (offering only `h2` by ALPN) when given.
    async fn start(name: &str, tls: Option<rustls::ServerConfig>) -> H2Backend {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Seen::default());
        seen.health_status.store(200, Relaxed);
        seen.serving.store(1, Relaxed);
        let acceptor = tls.map(|mut c| {
            c.alpn_protocols = vec![b"h2".to_vec()];
            tokio_rustls::TlsAcceptor::from(Arc::new(c))
        });
        let (st, name) = (seen.clone(), name.to_string());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (st, name, acceptor) = (st.clone(), name.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let Some(acceptor) = acceptor else {
                        return serve(tcp, st, name).await;
                    };
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                        st.alpn_h2.fetch_add(1, Relaxed);
                    }
                    serve(tls, st, name).await;
                });
            }
        });
        H2Backend { addr, seen, task }
    }

    fn health_hits(&self) -> u64 {
        self.seen.health_hits.load(Relaxed)
    }

    fn last_probe(&self) -> String {
        self.seen.last_probe.lock().unwrap().clone()
    }
}

/// Serve one connection with hyper's HTTP/2 server (anything else fails its preface);
/// `/grpc.health.v1.Health/Check` is the gRPC health service.
async fn serve<I>(io: I, st: Arc<Seen>, name: String)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let (st, name) = (st.clone(), name.clone());
        async move {
            if req.uri().path() == "/grpc.health.v1.Health/Check" {
                let codec =
                    tonic::codec::ProstCodec::<HealthCheckResponse, HealthCheckRequest>::default();
                let resp = tonic::server::Grpc::new(codec).unary(Check(st), req).await;
                return Ok::<_, std::convert::Infallible>(resp);
            }
            let body = tonic::body::Body::new(Full::new(Bytes::from(name)));
            let mut resp = http::Response::new(body);
            if req.uri().path() == "/health" {
                st.health_hits.fetch_add(1, Relaxed);
                let ua = req.headers().get(http::header::USER_AGENT);
                *st.last_probe.lock().unwrap() =
                    format!("{} {} {:?} {ua:?}", req.method(), req.uri(), req.version());
                let status = st.health_status.load(Relaxed);
                *resp.status_mut() = http::StatusCode::from_u16(status).unwrap();
            } else {
                st.served.fetch_add(1, Relaxed);
            }
            Ok(resp)
        }
    });
    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), svc)
        .await;
}

/// Poll until `a` and `b` have been probed at least `probes` times each and the status
/// API says they are `want.0` and `want.1`.
async fn wait_health(
    t: &Tango,
    a: (&str, &H2Backend),
    b: (&str, &H2Backend),
    want: (bool, bool),
    probes: u64,
) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let probed = a.1.health_hits() >= probes && b.1.health_hits() >= probes;
        let got = (healthy(t, a.0).await, healthy(t, b.0).await);
        if probed && got == (Some(want.0), Some(want.1)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "want {want:?}, got {got:?} after {} and {} probes\n{}",
            a.1.health_hits(),
            b.1.health_hits(),
            t.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `n` GETs through tango, each must succeed; how many each backend answered.
async fn spread(t: &Tango, n: usize) -> HashMap<String, usize> {
    let c = client();
    let mut seen = HashMap::new();
    for _ in 0..n {
        let (status, who) = get(&c, &t.url("/")).await;
        assert_eq!(status, 200, "{who}");
        *seen.entry(who).or_insert(0) += 1;
    }
    seen
}

#[tokio::test]
async fn h2_health_checks_speak_http2_and_a_503_takes_the_backend_out() {
    let a = H2Backend::start("a", None).await;
    let b = H2Backend::start("b", None).await;
    let t = Tango::start(&config(
        &format!("protocol = \"h2\"\n{HEALTH}"),
        &[("a", a.addr, 1), ("b", b.addr, 1)],
    ));
    // Probes reach the handler, so they spoke HTTP/2, and pass.
    wait_health(&t, ("a", &a), ("b", &b), (true, true), 3).await;
    assert_eq!(
        a.last_probe(),
        format!(
            "GET http://{}/health HTTP/2.0 Some(\"tango-health-check\")",
            a.addr
        )
    );
    let seen = spread(&t, 20).await;
    assert_eq!(
        seen.get("a").copied().unwrap_or(0) + seen.get("b").copied().unwrap_or(0),
        20,
        "{seen:?}"
    );
    assert!(seen.contains_key("a") && seen.contains_key("b"), "{seen:?}");

    b.seen.health_status.store(503, Relaxed);
    let probed = b.health_hits();
    wait_health(&t, ("a", &a), ("b", &b), (true, false), probed + 2).await;
    let served = b.seen.served.load(Relaxed);
    assert_eq!(spread(&t, 20).await.get("a"), Some(&20));
    assert_eq!(
        b.seen.served.load(Relaxed),
        served,
        "unhealthy b got traffic"
    );
    // The reason logged is the status, not a failed exchange.
    let log = t.log();
    assert!(log.contains("status 503"), "{log}");
    assert!(!log.contains("HTTP/2 handshake"), "{log}");

    // It answers 200 again: back in service.
    b.seen.health_status.store(200, Relaxed);
    let probed = b.health_hits();
    wait_health(&t, ("a", &a), ("b", &b), (true, true), probed + 1).await;
}

#[tokio::test]
async fn h2_health_checks_over_tls_offer_alpn_h2() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let id = || (*server_config(&ca.issue(&["backend.test"], false), None)).clone();
    let good = H2Backend::start("good", Some(id())).await;
    let bad = H2Backend::start("bad", Some(id())).await;
    bad.seen.health_status.store(503, Relaxed);
    let pool = format!(
        "protocol = \"h2\"\ntls = {{ ca = \"{}\", server_name = \"backend.test\" }}\n{HEALTH}",
        ca.write(dir.path(), "ca")
    );
    let t = Tango::start(&config(
        &pool,
        &[("good", good.addr, 1), ("bad", bad.addr, 1)],
    ));
    // The bad backend's probes got past the handshake and were judged by their status.
    wait_health(&t, ("good", &good), ("bad", &bad), (true, false), 3).await;
    assert_eq!(
        good.last_probe(),
        format!(
            "GET https://{}/health HTTP/2.0 Some(\"tango-health-check\")",
            good.addr
        )
    );
    assert!(good.seen.alpn_h2.load(Relaxed) >= 3);
    assert_eq!(spread(&t, 10).await.get("good"), Some(&10));
    assert_eq!(
        bad.seen.served.load(Relaxed),
        0,
        "unhealthy bad got traffic"
    );
}

#[tokio::test]
async fn grpc_health_checks_call_health_check_and_not_serving_takes_the_backend_out() {
    let up = H2Backend::start("up", None).await;
    let down = H2Backend::start("down", None).await;
    down.seen.serving.store(2, Relaxed);
    let health = "[pool.health]\nkind = \"grpc\"\nservice = \"test.Echo\"\ninterval = \"100ms\"\ntimeout = \"1s\"\nrise = 1\nfall = 2\njitter = 0.0\n";
    let t = Tango::start(&config(
        &format!("protocol = \"h2\"\n{health}"),
        &[("up", up.addr, 1), ("down", down.addr, 1)],
    ));
    wait_health(&t, ("up", &up), ("down", &down), (true, false), 3).await;
    assert_eq!(up.last_probe(), "service=\"test.Echo\"");
    assert_eq!(spread(&t, 10).await.get("up"), Some(&10));
    assert_eq!(
        down.seen.served.load(Relaxed),
        0,
        "NOT_SERVING down got traffic"
    );
    let log = t.log();
    assert!(log.contains("gRPC health NOT_SERVING"), "{log}");

    // SERVING again: back in service.
    down.seen.serving.store(1, Relaxed);
    let probed = down.health_hits();
    wait_health(&t, ("up", &up), ("down", &down), (true, true), probed + 1).await;
}
