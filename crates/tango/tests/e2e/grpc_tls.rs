//! HTTP/2 to backends over TLS: gRPC through a pool with `protocol = "h2"` and `tls`
//! (the backend's certificate from a test CA, ALPN `h2`), unary and streaming calls
//! with their status and trailers; and `protocol = "auto"`, which speaks what each
//! backend chose by ALPN, to a backend that speaks only HTTP/2 and to one that speaks
//! only HTTP/1.1, from HTTP/1.1 and h2c clients.

use crate::grpc::{backend_request, codec, grpc_client, msg, path};
use crate::support::*;
use crate::upstream_tls::{server_config, Ca};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use tonic::Request;

/// A TLS backend offering `alpn`: HTTP/2 on connections that chose `h2`, HTTP/1.1 on
/// the others, each answered by the gRPC test backend. Counts the connections whose
/// handshake completed, by the protocol they chose.
pub struct TlsH2Backend {
    pub addr: SocketAddr,
    pub h2_conns: Arc<AtomicU64>,
    pub h1_conns: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsH2Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsH2Backend {
    pub async fn start(ca: &Ca, alpn: &[&[u8]]) -> TlsH2Backend {
        let mut cfg = (*server_config(&ca.issue(&["grpc.test"], false), None)).clone();
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (h2_conns, h1_conns) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (h2c, h1c) = (h2_conns.clone(), h1_conns.clone());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = l.accept().await {
                let (acceptor, h2c, h1c) = (acceptor.clone(), h2c.clone(), h1c.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(backend_request);
                    if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                        h2c.fetch_add(1, Relaxed);
                        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(tls), svc)
                            .await;
                    } else {
                        h1c.fetch_add(1, Relaxed);
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tls), svc)
                            .await;
                    }
                });
            }
        });
        TlsH2Backend {
            addr,
            h2_conns,
            h1_conns,
            task,
        }
    }
}

/// A pool of `protocol` over TLS to `b`, verified against `ca`.
pub fn tls_pool(dir: &std::path::Path, ca: &Ca, protocol: &str, b: SocketAddr) -> String {
    let extra = format!(
        "protocol = \"{protocol}\"\ntls = {{ ca = \"{}\", server_name = \"grpc.test\" }}\n",
        ca.write(dir, "ca")
    );
    config(&extra, &[("b1", b, 1)])
}

#[tokio::test]
async fn grpc_over_tls_keeps_status_and_trailers() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let b = TlsH2Backend::start(&ca, &[b"h2"]).await;
    let t = Tango::start(&tls_pool(dir.path(), &ca, "h2", b.addr));
    let mut c = grpc_client(&t).await;
    crate::grpc::unary_calls(&mut c).await;
    crate::grpc::one_way_streams(&mut c, 20).await;
    // Every call went over one TLS connection, HTTP/2 by ALPN.
    assert_eq!(b.h2_conns.load(Relaxed), 1);
    assert_eq!(b.h1_conns.load(Relaxed), 0);
}

/// HTTP/1.1 (the engine) and h2c (hyper) clients, three requests each, all answered.
async fn both_clients(t: &Tango) {
    let c = client();
    for i in 0..3 {
        let (status, body) = get(&c, &t.url(&format!("/h1/{i}"))).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.starts_with(&format!("GET /h1/{i} ")), "{body}");
        let (status, body) = h2c_get(t, &format!("/h2c/{i}")).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.starts_with(&format!("GET /h2c/{i} ")), "{body}");
    }
}

#[tokio::test]
async fn an_auto_pool_speaks_h2_to_a_backend_that_chooses_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let b = TlsH2Backend::start(&ca, &[b"h2"]).await;
    let cfg = tls_pool(dir.path(), &ca, "auto", b.addr);
    let t = Tango::start_with(&cfg, &["--workers", "1"]);
    both_clients(&t).await;
    // gRPC too, with its trailers.
    let mut c = grpc_client(&t).await;
    c.ready().await.unwrap();
    let r = c
        .unary(
            Request::new(msg("auto", 1)),
            path("/test.Echo/Unary"),
            codec(),
        )
        .await
        .expect("unary call through an auto pool");
    assert_eq!(r.get_ref(), &msg("AUTO", 2));
    assert_eq!(r.metadata().get("x-backend-trailer").unwrap(), "kept");
    // The connection the first request opened (for HTTP/1.1, before the choice was
    // known) went on as HTTP/2: one connection for everything.
    assert_eq!(b.h2_conns.load(Relaxed), 1);
    assert_eq!(b.h1_conns.load(Relaxed), 0);
    assert_eq!(failed_tries(&t).await, 0);
}

#[tokio::test]
async fn an_auto_pool_speaks_http1_to_a_backend_that_chooses_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let b = TlsH2Backend::start(&ca, &[b"http/1.1"]).await;
    let cfg = tls_pool(dir.path(), &ca, "auto", b.addr);
    let t = Tango::start_with(&cfg, &["--workers", "1"]);
    both_clients(&t).await;
    assert_eq!(b.h2_conns.load(Relaxed), 0);
    assert!(b.h1_conns.load(Relaxed) >= 1);
    assert_eq!(failed_tries(&t).await, 0);
}

async fn failed_tries(t: &Tango) -> u64 {
    crate::upstream_tls::failed_tries(t, "b1").await
}
