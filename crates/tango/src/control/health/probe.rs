//! One health probe of a backend: a new connection opened as the pool's requests open
//! theirs (its PROXY header telling of the probe's own addresses, then TLS with the
//! pool's settings), then for `kind = "http"` one request in the pool's protocol:
//! HTTP/1.1, or HTTP/2 for an `h2` pool (prior knowledge over TCP, ALPN `h2` over TLS,
//! as the pool's dialer offers it), so a backend that speaks only HTTP/2 is judged by
//! its answer instead of failing every probe. For `kind = "grpc"` (h2 pools only, as
//! validation requires) it is the standard `grpc.health.v1.Health/Check` call instead.
//! Whether the answer passes is tango-core's decision (`evaluate_http`,
//! `evaluate_grpc`).

use crate::upstream::{self, Dialer, Stream};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tango_core::config::{HealthCheck, HealthKind, Pool, UpstreamProtocol};
use tango_core::health::{evaluate_grpc, evaluate_http, grpc, Probe};

type Request = http::Request<Full<Bytes>>;

/// What a probe speaks to a pool's backends, from the pool's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Wire {
    /// HTTP/2 (`protocol = "h2"`), else HTTP/1.1.
    h2: bool,
    /// Over TLS: an HTTP/2 request says scheme `https`.
    tls: bool,
}

impl Wire {
    pub(super) fn of(pool: &Pool) -> Wire {
        Wire {
            h2: pool.protocol == UpstreamProtocol::H2,
            tls: pool.tls.is_some(),
        }
    }

    /// The scheme an HTTP/2 request names.
    fn scheme(self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }
}

/// Probe the backend at `address`, the whole probe (connect, handshakes, answer)
/// bounded by the check's timeout.
pub(super) async fn probe(address: &str, cfg: &HealthCheck, dial: &Dialer, wire: Wire) -> Probe {
    match tokio::time::timeout(cfg.timeout, probe_once(address, cfg, dial, wire)).await {
        Ok(p) => p,
        Err(_) => Probe::fail(format!(
            "no answer within {}",
            humantime::format_duration(cfg.timeout)
        )),
    }
}

async fn probe_once(address: &str, cfg: &HealthCheck, dial: &Dialer, wire: Wire) -> Probe {
    // A probe that speaks HTTP/1.1 offers only it by ALPN (`protocol = "auto"`); one
    // that speaks HTTP/2, or only connects, offers what the pool offers.
    let http1_only = cfg.kind != HealthKind::Tcp && !wire.h2;
    let stream = match upstream::open(address, dial, None, cfg.timeout, http1_only).await {
        Ok(s) => s,
        Err(e) => return Probe::fail(format!("connect: {e}")),
    };
    match cfg.kind {
        HealthKind::Tcp => return Probe::Pass,
        HealthKind::Grpc if !wire.h2 => return Probe::fail("gRPC needs protocol = \"h2\""),
        HealthKind::Grpc => return grpc_check(stream, address, cfg, wire).await,
        HealthKind::Http => {}
    }
    let Ok(req) = request(address, cfg, wire) else {
        return Probe::fail("invalid health check request");
    };
    let status = if wire.h2 {
        exchange_h2(stream, req).await.map(|r| r.status().as_u16())
    } else {
        exchange_h1(stream, req).await
    };
    match status {
        Ok(s) => evaluate_http(s, &cfg.expect),
        Err(why) => Probe::fail(why),
    }
}

/// `grpc.health.v1.Health/Check` for `cfg.service`: the answer read to its end, since
/// the verdict is in its message and its trailers (or, for an answer that is trailers
/// only, in its headers).
async fn grpc_check(stream: Stream, address: &str, cfg: &HealthCheck, wire: Wire) -> Probe {
    let host = cfg.host.as_deref().unwrap_or(address);
    let req = http::Request::post(format!("{}://{host}{}", wire.scheme(), grpc::CHECK_PATH))
        .version(http::Version::HTTP_2)
        .header(http::header::USER_AGENT, "tango-health-check")
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .body(Full::new(Bytes::from(grpc::check_request(&cfg.service))));
    let Ok(req) = req else {
        return Probe::fail("invalid health check request");
    };
    let resp = match exchange_h2(stream, req).await {
        Ok(r) => r,
        Err(why) => return Probe::fail(why),
    };
    let (head, body) = resp.into_parts();
    let body = match body.collect().await {
        Ok(b) => b,
        Err(e) => return Probe::fail(format!("gRPC answer: {e}")),
    };
    let trailers = body.trailers().cloned().unwrap_or_default();
    let field = |name: &str| {
        trailers
            .get(name)
            .or_else(|| head.headers.get(name))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (status, message) = (field("grpc-status"), field("grpc-message"));
    evaluate_grpc(
        head.status.as_u16(),
        status.as_deref(),
        message.as_deref(),
        &body.to_bytes(),
    )
}

/// The probe request. HTTP/1.1 names the host in `Host` and closes the connection after
/// the answer; HTTP/2 names scheme and host in its pseudo-header fields (from an
/// absolute URI) and has no `Connection` field (RFC 9113 8.2.2 makes it malformed):
/// its connection closes when the probe lets go of it.
fn request(address: &str, cfg: &HealthCheck, wire: Wire) -> http::Result<Request> {
    let host = cfg.host.as_deref().unwrap_or(address);
    let b = http::Request::builder()
        .method(cfg.method.as_str())
        .header(http::header::USER_AGENT, "tango-health-check");
    let b = if wire.h2 {
        b.version(http::Version::HTTP_2)
            .uri(format!("{}://{host}{}", wire.scheme(), cfg.path))
    } else {
        b.uri(cfg.path.as_str())
            .header(http::header::HOST, host)
            .header(http::header::CONNECTION, "close")
    };
    b.body(Full::new(Bytes::new()))
}

/// Send `req` over HTTP/1.1 on `stream`; the answer's status.
async fn exchange_h1(stream: Stream, req: Request) -> Result<u16, String> {
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    let resp = tx
        .send_request(req)
        .await
        .map_err(|e| format!("request: {e}"))?;
    Ok(resp.status().as_u16())
}

/// Send `req` over HTTP/2 on `stream` (the connection preface and SETTINGS first); the
/// answer, its body still to read. The connection's task ends once the handle and the
/// answer are dropped (hyper then sends GOAWAY), or when a timeout drops the probe.
async fn exchange_h2(stream: Stream, req: Request) -> Result<http::Response<Incoming>, String> {
    let (mut tx, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
    tokio::spawn(conn);
    let resp = tx
        .send_request(req)
        .await
        .map_err(|e| format!("HTTP/2 request: {e}"))?;
    Ok(resp)
}
