//! The life of one request: check framing, route, pick a backend, forward, retry when
//! it is safe, stream the response back, count.
//!
//! Per request this allocates what hyper needs and the forwarded headers; the access
//! log's entry is made only when it is on.

use super::access::{AccessLog, Logged, Outcome};
use super::body::ProxyBody;
use super::error::ProxyError;
use super::headers;
use crate::runtime::{InFlight, PoolRuntime, Runtime, Snapshot};
use crate::upstream::{self, no_body, ClientBody, ConnectError, UpBody};
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::Either;
use hyper::body::{Body as _, Incoming};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tango_core::http1;
use tango_core::policy::Pick;

/// What a connection knows about where it came from.
pub(crate) struct ConnCtx {
    pub(crate) rt: Arc<Runtime>,
    pub(crate) listener: Arc<str>,
    pub(crate) peer: SocketAddr,
    /// `peer`'s IP as a header value, for X-Forwarded-For.
    pub(crate) peer_value: HeaderValue,
    pub(crate) tls: bool,
    /// The listener's trusted proxies when the connection was accepted.
    pub(crate) trusted_proxies: Vec<tango_core::config::Cidr>,
    pub(crate) request_timeout: Duration,
    /// Told how each request that may switch protocols was answered: the framing
    /// guard holds the connection's next bytes until then.
    pub(crate) switch: Arc<super::framing::SwitchVerdict>,
    pub(crate) access_log: Option<Arc<AccessLog>>,
}

/// The backends already tried for this request, so a retry goes somewhere else.
#[derive(Default)]
pub(crate) struct Tried(u128, Vec<usize>);

impl Tried {
    pub(crate) fn contains(&self, i: usize) -> bool {
        if i < 128 {
            self.0 & (1 << i) != 0
        } else {
            self.1.contains(&i)
        }
    }

    fn insert(&mut self, i: usize) {
        if i < 128 {
            self.0 |= 1 << i;
        } else {
            self.1.push(i);
        }
    }
}

/// Where a request went: pool and backend indexes into the snapshot it used, how many
/// backends were tried, and the last one's time to its response head.
#[derive(Default, Clone, Copy)]
struct Target {
    pool: Option<usize>,
    backend: Option<usize>,
    tries: u32,
    upstream: Option<Duration>,
}

type Failure = (ProxyError, Target);

/// What a client is sent: the response as the service made it, or with the access log
/// on, wrapped to write its line once it has gone.
pub(crate) type ResponseBody = Either<ProxyBody, Box<Logged>>;

pub(crate) async fn handle(
    ctx: Arc<ConnCtx>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let request_id = match req.headers().get(&headers::X_REQUEST_ID) {
        Some(v) => v.clone(),
        None => new_request_id(),
    };
    let connect = req.method() == Method::CONNECT;
    let may_switch = req.version() <= Version::HTTP_11
        && http1::may_switch_protocols(connect, req.headers().contains_key(header::UPGRADE));
    let entry = ctx
        .access_log
        .as_ref()
        .map(|log| log.entry(&ctx.listener, ctx.peer, &req, &request_id));
    let snap = ctx.rt.current();
    let started = Instant::now();
    let bytes_in = entry.as_ref().and_then(|e| e.bytes_in());
    let (resp, target) = match proxy(&ctx, &snap, req, &request_id, bytes_in).await {
        Ok(r) => r,
        Err((e, target)) => {
            tracing::debug!(error = %e, blame = ?e.blame(), "request failed");
            (error_response(&e), target)
        }
    };
    if may_switch {
        let status = resp.status().as_u16();
        ctx.switch
            .decide(http1::switches_protocols(connect, status));
    }
    // What the client saw, apart from the tries behind it.
    if let Some(pool) = target.pool.and_then(|p| snap.pools.get(p)) {
        super::accounting::client_response(pool, target.backend, resp.status(), started.elapsed());
    }
    let Some(entry) = entry else {
        return Ok(resp.map(Either::Left));
    };
    let outcome = Outcome {
        status: resp.status().as_u16(),
        pool: target.pool,
        backend: target.backend,
        tries: target.tries,
        upstream: target.upstream,
    };
    Ok(resp.map(|body| Either::Right(entry.finish(&snap, outcome, body))))
}

fn new_request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (half, n) in [crate::rng::next_u64(), crate::rng::next_u64()]
        .into_iter()
        .enumerate()
    {
        for i in 0..16 {
            out[half * 16 + i] = HEX[((n >> (60 - 4 * i)) & 0xf) as usize];
        }
    }
    HeaderValue::from_bytes(&out).expect("hex is a valid header value")
}

pub(crate) fn error_response(e: &ProxyError) -> Response<ProxyBody> {
    let mut r = Response::new(ProxyBody::text(format!("{e}\n")));
    *r.status_mut() = e.status();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if e.status() == StatusCode::BAD_REQUEST {
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

/// The Host header, or for HTTP/2 the `:authority`.
fn host_of(req: &Request<Incoming>) -> Option<&str> {
    match req.headers().get(header::HOST) {
        Some(h) => h.to_str().ok(),
        None => req.uri().authority().map(|a| a.as_str()),
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split(']').next().map(|h| &h[1..]).unwrap_or(host);
    }
    host.rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map(|(h, _)| h)
        .unwrap_or(host)
}

fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// What is sent upstream, prepared once and reused by every try.
struct Outgoing {
    method: Method,
    uri: Uri,
}

impl Outgoing {
    fn request(
        &self,
        body: UpBody,
        last_try: bool,
        headers: &mut Option<HeaderMap>,
    ) -> Request<UpBody> {
        let mut up = Request::new(body);
        *up.method_mut() = self.method.clone();
        *up.uri_mut() = self.uri.clone();
        // The last possible try takes the headers; earlier ones copy them.
        *up.headers_mut() = match (last_try, headers.take()) {
            (true, Some(h)) => h,
            (_, Some(h)) => {
                let copy = h.clone();
                *headers = Some(h);
                copy
            }
            // Every path that takes the headers either is the last try or puts
            // them back; an empty map is the safe answer should that ever change.
            (_, None) => HeaderMap::new(),
        };
        up
    }
}

async fn proxy(
    ctx: &ConnCtx,
    snap: &Snapshot,
    mut req: Request<Incoming>,
    request_id: &HeaderValue,
    bytes_in: Option<Arc<std::sync::atomic::AtomicU64>>,
) -> Result<(Response<ProxyBody>, Target), Failure> {
    let mut target = Target::default();
    if req.version() <= Version::HTTP_11 {
        headers::check_framing(req.headers()).map_err(|m| (ProxyError::BadRequest(m), target))?;
    }
    let route = {
        let host = host_of(&req).map(strip_port);
        let path = req.uri().path();
        snap.config
            .routes
            .iter()
            .find(|r| r.matches(host, path))
            .ok_or((ProxyError::NoRoute, target))?
    };
    target.pool = Some(route.pool);
    let pool = &snap.pools[route.pool];
    let key = super::keys::extract(pool, &req, ctx.peer.ip(), &ctx.trusted_proxies);
    if pool.cfg.hashing.is_some() {
        super::keys::observe(pool, &req, ctx.peer.ip(), &ctx.trusted_proxies, key);
    }

    let upgrade = if req.version() == Version::HTTP_11 {
        headers::upgrade_protocol(req.headers())
    } else {
        None
    };
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
    let host = match req.headers().get(header::HOST) {
        Some(h) => Some(h.clone()),
        None => req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
    };
    let (parts, body) = req.into_parts();
    // Origin-form as received (HTTP/1.1) is reused as is; HTTP/2's absolute form
    // becomes origin-form for the HTTP/1.1 backend.
    let uri = if parts.uri.scheme().is_none() && parts.uri.authority().is_none() {
        parts.uri
    } else {
        let pq = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        Uri::try_from(pq).map_err(|_| (ProxyError::BadRequest("invalid target"), target))?
    };
    let mut hdrs = parts.headers;
    headers::strip_hop_by_hop(&mut hdrs, upgrade.is_some());
    if let Some(h) = &host {
        if !hdrs.contains_key(header::HOST) {
            hdrs.insert(header::HOST, h.clone());
        }
    }
    headers::add_forwarded(&mut hdrs, &ctx.peer_value, ctx.tls, host);
    hdrs.insert(&headers::X_REQUEST_ID, request_id.clone());
    let has_body = !body.is_end_stream();
    let mut body = Some(if has_body {
        UpBody::Left(ClientBody::new(body, bytes_in))
    } else {
        no_body()
    });
    let retry_safe_after_send = idempotent(&parts.method) && !has_body && upgrade.is_none();
    let out = Outgoing {
        method: parts.method,
        uri,
    };
    let mut headers = Some(hdrs);

    pool.retry_budget.deposit(pool.cfg.retry_budget);
    let deadline = Instant::now() + pool.cfg.timeout.min(ctx.request_timeout);
    let mut tried = Tried::default();
    let mut last_err = ProxyError::NoneEligible;
    let mut attempt = 0;
    let mut stale_retries = 0;
    // Only a retry of a request some backend already received spends the budget: one
    // that never left tango (connect refused, every connection taken) adds no load.
    let mut resend = false;
    while attempt < pool.cfg.max_attempts {
        if std::mem::take(&mut resend) && !pool.retry_budget.try_withdraw() {
            break;
        }
        let i = match super::keys::pick(ctx.rt.as_ref(), pool, key, &tried) {
            Pick::Backend(i) => i,
            Pick::MissingKey => return Err((ProxyError::MissingKey, target)),
            Pick::NoneEligible => break,
        };
        tried.insert(i);
        target.backend = Some(i);
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            last_err = ProxyError::Timeout;
            break;
        }
        target.tries += 1;
        match try_backend(
            ctx,
            pool,
            i,
            &out,
            &mut headers,
            &mut body,
            remaining,
            attempt + 1 == pool.cfg.max_attempts,
            client_upgrade.is_some(),
            &mut target.upstream,
        )
        .await
        {
            Ok(mut resp) => {
                if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                    if let (Some(client), Some(guard)) = (
                        client_upgrade,
                        resp.extensions_mut().remove::<UpgradeGuard>(),
                    ) {
                        let upstream = hyper::upgrade::on(&mut resp);
                        tokio::spawn(tunnel(client, upstream, guard.0));
                        let (mut rparts, _) = resp.into_parts();
                        headers::strip_hop_by_hop(&mut rparts.headers, true);
                        return Ok((Response::from_parts(rparts, ProxyBody::empty()), target));
                    }
                }
                return Ok((resp, target));
            }
            Err(TryError::Stale) if stale_retries < 3 => {
                // Never written: a pooled connection the backend had just closed. Safe
                // to send again, and not the backend's fault.
                stale_retries += 1;
                tried = Tried::default();
            }
            Err(TryError::Stale) => {
                last_err = ProxyError::Connect;
                attempt += 1;
            }
            Err(TryError::Failed(e)) => {
                last_err = e;
                attempt += 1;
            }
            Err(TryError::Sent(e)) => {
                if !retry_safe_after_send {
                    return Err((e, target));
                }
                resend = true;
                body = Some(no_body());
                last_err = e;
                attempt += 1;
            }
            Err(TryError::Final(e)) => return Err((e, target)),
        }
    }
    Err((last_err, target))
}

enum TryError {
    /// Nothing was sent; another backend may be tried.
    Failed(ProxyError),
    /// A pooled connection turned out closed before the request was written.
    Stale,
    /// The request was sent and then the connection failed.
    Sent(ProxyError),
    /// No retry makes sense (a timeout: the request may still be running).
    Final(ProxyError),
}

/// Marks a 101 response: carries the in-flight guard into the tunnel task.
#[derive(Clone)]
struct UpgradeGuard(Arc<InFlight>);

#[allow(clippy::too_many_arguments)]
async fn try_backend(
    ctx: &ConnCtx,
    pool: &PoolRuntime,
    i: usize,
    out: &Outgoing,
    headers: &mut Option<HeaderMap>,
    body: &mut Option<UpBody>,
    remaining: Duration,
    last_try: bool,
    upgrade: bool,
    upstream_time: &mut Option<Duration>,
) -> Result<Response<ProxyBody>, TryError> {
    let backend = &pool.backends[i];
    let bcfg = &pool.cfg.backends[i];
    *upstream_time = None;
    let guard = InFlight::new(backend.clone());
    let timeout = pool.cfg.connect_timeout.min(remaining);
    let mut conn = match upstream::checkout(
        &backend.conns,
        &backend.address,
        timeout,
        pool.cfg.idle_timeout,
        bcfg.max_connections,
    )
    .await
    {
        Ok(c) => c,
        Err(ConnectError::AtCapacity) => return Err(TryError::Failed(ProxyError::AtCapacity)),
        Err(e) => {
            upstream::connect_failed(
                &backend.conns,
                &pool.cfg.name,
                &bcfg.name,
                &e,
                ctx.rt.now_ms(),
            );
            super::accounting::record(ctx.rt.as_ref(), pool, i, None, None);
            return Err(TryError::Failed(ProxyError::Connect));
        }
    };
    let up = out.request(body.take().unwrap_or(no_body()), last_try, headers);
    let sent_at = Instant::now();
    let result = tokio::time::timeout(
        remaining.min(pool.cfg.try_timeout),
        conn.tx.try_send_request(up),
    )
    .await;
    match result {
        Err(_) => {
            *upstream_time = Some(sent_at.elapsed());
            super::accounting::record(ctx.rt.as_ref(), pool, i, None, Some(sent_at.elapsed()));
            Err(TryError::Final(ProxyError::Timeout))
        }
        Ok(Err(mut e)) => {
            if let Some(back) = e.take_message() {
                let (parts, b) = back.into_parts();
                *body = Some(b);
                *headers = Some(parts.headers);
                return Err(if conn.reused {
                    TryError::Stale
                } else {
                    TryError::Failed(ProxyError::Connect)
                });
            }
            *upstream_time = Some(sent_at.elapsed());
            tracing::warn!(pool = %pool.cfg.name, backend = %bcfg.name, error = %e.into_error(), "upstream request failed");
            super::accounting::record(ctx.rt.as_ref(), pool, i, None, Some(sent_at.elapsed()));
            Err(TryError::Sent(ProxyError::Reset))
        }
        Ok(Ok(resp)) => {
            let took = sent_at.elapsed();
            *upstream_time = Some(took);
            super::accounting::record(
                ctx.rt.as_ref(),
                pool,
                i,
                Some(resp.status().as_u16()),
                Some(took),
            );
            if upgrade && resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                // The connection becomes the tunnel: it never returns to the pool.
                let (parts, _) = resp.into_parts();
                let mut r = Response::from_parts(parts, ProxyBody::empty());
                r.extensions_mut().insert(UpgradeGuard(Arc::new(guard)));
                return Ok(r);
            }
            let (mut rparts, rbody) = resp.into_parts();
            headers::strip_hop_by_hop(&mut rparts.headers, false);
            // An empty body is never polled: the connection is free already.
            let conn = if rbody.is_end_stream() {
                conn.release();
                None
            } else {
                Some(conn)
            };
            let body = ProxyBody::Upstream {
                body: rbody,
                conn,
                _guard: Some(guard),
            };
            Ok(Response::from_parts(rparts, body))
        }
    }
}

async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    _guard: Arc<InFlight>,
) {
    let (c, u) = match tokio::try_join!(client, upstream) {
        Ok(x) => x,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade failed");
            return;
        }
    };
    let mut c = hyper_util::rt::TokioIo::new(c);
    let mut u = hyper_util::rt::TokioIo::new(u);
    if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut u).await {
        tracing::debug!(error = %e, "tunnel ended");
    }
}
