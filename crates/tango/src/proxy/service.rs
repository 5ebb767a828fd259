//! The life of one request: check framing, route, pick a backend, forward, retry when
//! it is safe, stream the response back, count.

use super::body::{InFlight, ProxyBody, UpBody};
use super::error::ProxyError;
use super::headers;
use crate::runtime::Runtime;
use crate::upstream::{self, ConnectError};
use http::{header, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body as _, Incoming};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tango_core::policy::Pick;

/// What a connection knows about where it came from.
pub(crate) struct ConnCtx {
    pub(crate) rt: Arc<Runtime>,
    pub(crate) listener: String,
    pub(crate) peer: SocketAddr,
    pub(crate) tls: bool,
    pub(crate) request_timeout: Duration,
    pub(crate) access_log: bool,
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

pub(crate) async fn handle(
    ctx: Arc<ConnCtx>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let start = Instant::now();
    let request_id = match req.headers().get(&headers::X_REQUEST_ID) {
        Some(v) => v.clone(),
        None => new_request_id(),
    };
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let (resp, pool, backend) = match proxy(&ctx, req, &request_id).await {
        Ok(r) => r,
        Err((e, pool, backend)) => {
            tracing::debug!(error = %e, blame = ?e.blame(), pool = pool.as_deref().unwrap_or("-"), "request failed");
            (error_response(&e), pool, backend)
        }
    };
    if ctx.access_log {
        tracing::info!(
            target: "tango::access",
            request_id = request_id.to_str().unwrap_or(""),
            listener = %ctx.listener,
            client = %ctx.peer,
            method = %method,
            path = %path,
            pool = pool.as_deref().unwrap_or("-"),
            backend = backend.as_deref().unwrap_or("-"),
            status = resp.status().as_u16(),
            duration_ms = start.elapsed().as_secs_f64() * 1000.0,
        );
    }
    Ok(resp)
}

fn new_request_id() -> HeaderValue {
    let n = crate::rng::next_u64() as u128 | ((crate::rng::next_u64() as u128) << 64);
    HeaderValue::from_str(&format!("{n:032x}")).expect("hex is a valid header value")
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

type Failure = (ProxyError, Option<String>, Option<String>);

fn host_of(req: &Request<Incoming>) -> Option<String> {
    let raw = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_string()))?;
    Some(raw)
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

async fn proxy(
    ctx: &ConnCtx,
    mut req: Request<Incoming>,
    request_id: &HeaderValue,
) -> Result<(Response<ProxyBody>, Option<String>, Option<String>), Failure> {
    if req.version() <= Version::HTTP_11 {
        headers::check_framing(req.headers())
            .map_err(|m| (ProxyError::BadRequest(m), None, None))?;
    }
    let host = host_of(&req);
    let snap = ctx.rt.current();
    let path = req.uri().path();
    let route = snap
        .config
        .routes
        .iter()
        .find(|r| r.matches(host.as_deref().map(strip_port), path))
        .ok_or((ProxyError::NoRoute, None, None))?;
    let pool = &snap.pools[route.pool];
    let pool_name = Some(pool.cfg.name.clone());
    let key = match crate::keys::extract(pool, &req, ctx.peer.ip(), &snap.config, &ctx.listener) {
        Ok(k) => k,
        Err(e) => return Err((e, pool_name, None)),
    };
    if pool.cfg.hashing.is_some() {
        pool.shared.keys.observe(key);
    }

    let upgrade = if req.version() == Version::HTTP_11 {
        headers::upgrade_protocol(req.headers())
    } else {
        None
    };
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let mut head = Request::builder()
        .method(parts.method.clone())
        .version(Version::HTTP_11);
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    head = head.uri(Uri::try_from(pq).map_err(|_| {
        (
            ProxyError::BadRequest("invalid target"),
            pool_name.clone(),
            None,
        )
    })?);
    let mut hdrs = parts.headers;
    headers::strip_hop_by_hop(&mut hdrs, upgrade.is_some());
    if !hdrs.contains_key(header::HOST) {
        if let Some(h) = host.as_deref().and_then(|h| HeaderValue::from_str(h).ok()) {
            hdrs.insert(header::HOST, h);
        }
    }
    headers::add_forwarded(&mut hdrs, ctx.peer.ip(), ctx.tls, host.as_deref());
    hdrs.insert(&headers::X_REQUEST_ID, request_id.clone());
    if body.is_end_stream()
        && hdrs.contains_key(header::CONTENT_LENGTH)
        && parts.version == Version::HTTP_2
    {
        hdrs.remove(header::CONTENT_LENGTH);
    }
    let has_body = !body.is_end_stream();
    let mut body = Some(if has_body {
        UpBody::Client(body)
    } else {
        UpBody::Empty
    });
    let retry_safe_after_send = idempotent(&parts.method) && !has_body && upgrade.is_none();

    pool.retry_budget.deposit(pool.cfg.retry_budget);
    let deadline = Instant::now() + pool.cfg.timeout.min(ctx.request_timeout);
    let mut tried = Tried::default();
    let mut last_err = ProxyError::NoneEligible;
    let mut last_backend = None;
    let mut attempt = 0;
    let mut stale_retries = 0;
    while attempt < pool.cfg.max_attempts {
        if attempt > 0 && !pool.retry_budget.try_withdraw() {
            break;
        }
        let i = match crate::keys::pick(ctx.rt.as_ref(), pool, key, &tried) {
            Pick::Backend(i) => i,
            Pick::MissingKey => return Err((ProxyError::MissingKey("value"), pool_name, None)),
            Pick::NoneEligible => {
                if attempt == 0 {
                    last_err = ProxyError::NoneEligible;
                }
                break;
            }
        };
        tried.insert(i);
        let backend = &pool.backends[i];
        last_backend = Some(pool.cfg.backends[i].name.clone());
        let bcfg = &pool.cfg.backends[i];
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            last_err = ProxyError::Timeout;
            break;
        }
        backend.stats.in_flight.fetch_add(1, Relaxed);
        let guard = InFlight(backend.clone());
        let mut conn = match upstream::checkout(
            backend,
            pool.cfg.connect_timeout.min(remaining),
            pool.cfg.idle_timeout,
            bcfg.max_connections,
        )
        .await
        {
            Ok(c) => c,
            Err(ConnectError::AtCapacity) => {
                last_err = ProxyError::AtCapacity;
                attempt += 1;
                continue;
            }
            Err(e) => {
                tracing::warn!(pool = %pool.cfg.name, backend = %bcfg.name, error = %e, "upstream connect failed");
                crate::accounting::record(ctx.rt.as_ref(), pool, i, None, None);
                last_err = ProxyError::Connect;
                attempt += 1;
                continue;
            }
        };
        let mut up = Request::new(body.take().unwrap_or(UpBody::Empty));
        *up.method_mut() = parts.method.clone();
        *up.uri_mut() = head.uri_ref().cloned().unwrap_or_default();
        *up.headers_mut() = hdrs.clone();
        let sent_at = Instant::now();
        let result = tokio::time::timeout(
            remaining.min(pool.cfg.try_timeout),
            conn.tx.try_send_request(up),
        )
        .await;
        match result {
            Err(_) => {
                crate::accounting::record(ctx.rt.as_ref(), pool, i, None, Some(sent_at.elapsed()));
                return Err((ProxyError::Timeout, pool_name, last_backend));
            }
            Ok(Err(mut e)) => {
                if let Some(back) = e.take_message() {
                    // Never written: a pooled connection the backend had closed. Safe to
                    // send again, and not the backend's fault.
                    body = Some(back.into_body());
                    if conn.reused && stale_retries < 3 {
                        stale_retries += 1;
                        tried = Tried::default();
                        continue;
                    }
                    last_err = ProxyError::Connect;
                    attempt += 1;
                    continue;
                }
                tracing::warn!(pool = %pool.cfg.name, backend = %bcfg.name, error = %e.into_error(), "upstream request failed");
                crate::accounting::record(ctx.rt.as_ref(), pool, i, None, Some(sent_at.elapsed()));
                last_err = ProxyError::Reset;
                if retry_safe_after_send {
                    body = Some(UpBody::Empty);
                    attempt += 1;
                    continue;
                }
                return Err((last_err, pool_name, last_backend));
            }
            Ok(Ok(mut resp)) => {
                let ttfb = sent_at.elapsed();
                crate::accounting::record(
                    ctx.rt.as_ref(),
                    pool,
                    i,
                    Some(resp.status().as_u16()),
                    Some(ttfb),
                );
                if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                    if let Some(client) = client_upgrade {
                        let upstream = hyper::upgrade::on(&mut resp);
                        tokio::spawn(tunnel(client, upstream, guard));
                        let (mut rparts, _) = resp.into_parts();
                        headers::strip_hop_by_hop(&mut rparts.headers, true);
                        return Ok((
                            Response::from_parts(rparts, ProxyBody::empty()),
                            pool_name,
                            last_backend,
                        ));
                    }
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
                return Ok((Response::from_parts(rparts, body), pool_name, last_backend));
            }
        }
    }
    Err((last_err, pool_name, last_backend))
}

async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    _guard: InFlight,
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
