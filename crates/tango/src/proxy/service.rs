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
use tango_core::retry::{self, Retry, Step};

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
    /// guard holds the connection's next bytes until then. Only connections read
    /// through the guard (TLS) have one.
    pub(crate) switch: Option<Arc<super::framing::SwitchVerdict>>,
    pub(crate) access_log: Option<Arc<AccessLog>>,
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
    if let (true, Some(switch)) = (may_switch, &ctx.switch) {
        let status = resp.status().as_u16();
        switch.decide(http1::switches_protocols(connect, status));
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

pub(crate) fn strip_port(host: &str) -> &str {
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

/// What is sent upstream, prepared once and reused by every try. The body goes with
/// the try that sends it, and comes back when it never reached the wire; the headers
/// are copied for a try that may be followed by a re-send and moved into one that
/// cannot.
struct Outgoing {
    method: Method,
    uri: Uri,
    headers: Option<HeaderMap>,
    body: Option<UpBody>,
    /// The request may be sent twice: idempotent, without a body, not an upgrade.
    resendable: bool,
    /// The client's side of a protocol upgrade it asked for.
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
}

impl Outgoing {
    /// The client's request as a backend gets it: hop-by-hop headers out, forwarding
    /// headers in, HTTP/2's absolute form as origin-form.
    fn new(
        ctx: &ConnCtx,
        mut req: Request<Incoming>,
        request_id: &HeaderValue,
        bytes_in: Option<Arc<std::sync::atomic::AtomicU64>>,
    ) -> Result<Self, ProxyError> {
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
        let uri = origin_form(parts.uri)?;
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
        let body = if has_body {
            UpBody::Left(ClientBody::new(body, bytes_in))
        } else {
            no_body()
        };
        Ok(Outgoing {
            resendable: idempotent(&parts.method) && !has_body && upgrade.is_none(),
            method: parts.method,
            uri,
            headers: Some(hdrs),
            body: Some(body),
            client_upgrade,
        })
    }

    /// The request for one try. `may_resend`: a later try may send it again, so the
    /// headers are copied rather than moved.
    fn request(&mut self, may_resend: bool) -> Request<UpBody> {
        let mut up = Request::new(self.body.take().unwrap_or(no_body()));
        *up.method_mut() = self.method.clone();
        *up.uri_mut() = self.uri.clone();
        *up.headers_mut() = match self.headers.take() {
            Some(h) if may_resend => {
                let copy = h.clone();
                self.headers = Some(h);
                copy
            }
            Some(h) => h,
            // Every try that takes the headers either cannot be followed by another send
            // or gives them back; an empty map is the safe answer should that change.
            None => HeaderMap::new(),
        };
        up
    }

    /// A request that never reached the wire, back for the next try.
    fn give_back(&mut self, req: Request<UpBody>) {
        let (parts, body) = req.into_parts();
        self.body = Some(body);
        self.headers = Some(parts.headers);
    }
}

/// Origin-form as received (HTTP/1.1) is reused as is; HTTP/2's absolute form becomes
/// origin-form for the HTTP/1.1 backend.
fn origin_form(uri: Uri) -> Result<Uri, ProxyError> {
    if uri.scheme().is_none() && uri.authority().is_none() {
        return Ok(uri);
    }
    let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    Uri::try_from(pq).map_err(|_| ProxyError::BadRequest("invalid target"))
}

async fn proxy(
    ctx: &ConnCtx,
    snap: &Snapshot,
    req: Request<Incoming>,
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
    // Redirect routes are refused at load until they are served (`preflight`).
    let pool_index = route.pool().ok_or((ProxyError::NoRoute, target))?;
    target.pool = Some(pool_index);
    let pool = &snap.pools[pool_index];
    let key = super::keys::extract(pool, &req, ctx.peer.ip(), &ctx.trusted_proxies);
    if pool.cfg.hashing.is_some() {
        super::keys::observe(pool, &req, ctx.peer.ip(), &ctx.trusted_proxies, key);
    }
    let mut out = Outgoing::new(ctx, req, request_id, bytes_in).map_err(|e| (e, target))?;
    match forward(ctx, pool, key, &mut out, &mut target).await {
        Ok(resp) => Ok((open_tunnel(resp, out.client_upgrade), target)),
        Err(e) => Err((e, target)),
    }
}

/// Tries backends until one answers or the retry policy (`tango_core::retry`) gives up.
async fn forward(
    ctx: &ConnCtx,
    pool: &PoolRuntime,
    key: Option<u64>,
    out: &mut Outgoing,
    target: &mut Target,
) -> Result<Response<ProxyBody>, ProxyError> {
    pool.retry_budget.deposit(pool.cfg.retry_budget);
    let deadline = Instant::now() + pool.cfg.timeout.min(ctx.request_timeout);
    let mut retry = Retry::new(pool.cfg.max_attempts, out.resendable);
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(proxy_error(retry.out_of_time()));
        }
        let backend = match super::keys::pick(ctx.rt.as_ref(), pool, key, retry.tried()) {
            Pick::Backend(i) => i,
            Pick::MissingKey => return Err(ProxyError::MissingKey),
            Pick::NoneEligible => return Err(proxy_error(retry.none_eligible())),
        };
        let send = retry.send(backend);
        if send.spend_budget && !pool.retry_budget.try_withdraw() {
            return Err(proxy_error(retry.budget_refused()));
        }
        target.backend = Some(backend);
        target.tries += 1;
        let t = Try {
            ctx,
            pool,
            backend,
            remaining,
            may_resend: send.may_resend,
        };
        match try_backend(&t, out, &mut target.upstream).await {
            Ok(resp) => return Ok(resp),
            Err(outcome) => {
                if let Step::GiveUp(f) = retry.record(outcome) {
                    return Err(proxy_error(f));
                }
            }
        }
    }
}

fn proxy_error(f: retry::Failure) -> ProxyError {
    match f {
        retry::Failure::NoneEligible => ProxyError::NoneEligible,
        retry::Failure::AtCapacity => ProxyError::AtCapacity,
        retry::Failure::Connect => ProxyError::Connect,
        retry::Failure::Reset => ProxyError::Reset,
        retry::Failure::Timeout => ProxyError::Timeout,
    }
}

/// A 101 answer to an upgrade the client asked for: the two connections become a
/// tunnel, and the client gets the answer's head.
fn open_tunnel(
    mut resp: Response<ProxyBody>,
    client: Option<hyper::upgrade::OnUpgrade>,
) -> Response<ProxyBody> {
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return resp;
    }
    let (Some(client), Some(guard)) = (client, resp.extensions_mut().remove::<UpgradeGuard>())
    else {
        return resp;
    };
    let upstream = hyper::upgrade::on(&mut resp);
    tokio::spawn(tunnel(client, upstream, guard.0));
    let (mut rparts, _) = resp.into_parts();
    headers::strip_hop_by_hop(&mut rparts.headers, true);
    Response::from_parts(rparts, ProxyBody::empty())
}

/// One try: the backend picked, the time left for it, and whether the request must be
/// kept for a re-send.
struct Try<'a> {
    ctx: &'a ConnCtx,
    pool: &'a PoolRuntime,
    backend: usize,
    remaining: Duration,
    may_resend: bool,
}

/// Marks a 101 response: carries the in-flight guard into the tunnel task.
#[derive(Clone)]
struct UpgradeGuard(Arc<InFlight>);

/// Sends the request to one backend. A failure says how far the request got, which is
/// what the retry policy decides on; `upstream_time` is the time to the response head.
async fn try_backend(
    t: &Try<'_>,
    out: &mut Outgoing,
    upstream_time: &mut Option<Duration>,
) -> Result<Response<ProxyBody>, retry::Outcome> {
    let (rt, pool, i) = (t.ctx.rt.as_ref(), t.pool, t.backend);
    *upstream_time = None;
    let guard = InFlight::new(pool.backends[i].clone());
    let mut conn = checkout(t).await?;
    let up = out.request(t.may_resend);
    let sent_at = Instant::now();
    let result = tokio::time::timeout(
        t.remaining.min(pool.cfg.try_timeout),
        conn.tx.try_send_request(up),
    )
    .await;
    let resp = match result {
        Err(_) => {
            *upstream_time = Some(sent_at.elapsed());
            super::accounting::record(rt, pool, i, None, Some(sent_at.elapsed()));
            return Err(retry::Outcome::TimedOut);
        }
        Ok(Err(mut e)) => {
            if let Some(back) = e.take_message() {
                out.give_back(back);
                return Err(if conn.reused {
                    retry::Outcome::Stale
                } else {
                    retry::Outcome::NotSent(retry::Failure::Connect)
                });
            }
            *upstream_time = Some(sent_at.elapsed());
            let (p, b) = (&pool.cfg.name, &pool.cfg.backends[i].name);
            tracing::warn!(pool = %p, backend = %b, error = %e.into_error(), "upstream request failed");
            super::accounting::record(rt, pool, i, None, Some(sent_at.elapsed()));
            return Err(retry::Outcome::SentFailed(retry::Failure::Reset));
        }
        Ok(Ok(resp)) => resp,
    };
    let took = sent_at.elapsed();
    *upstream_time = Some(took);
    super::accounting::record(rt, pool, i, Some(resp.status().as_u16()), Some(took));
    Ok(relay(resp, conn, guard, out.client_upgrade.is_some()))
}

/// A connection to the try's backend, pooled or new; a failure means nothing was sent.
async fn checkout(t: &Try<'_>) -> Result<upstream::Pooled, retry::Outcome> {
    let (pool, i) = (t.pool, t.backend);
    let (backend, bcfg) = (&pool.backends[i], &pool.cfg.backends[i]);
    let timeout = pool.cfg.connect_timeout.min(t.remaining);
    match upstream::checkout(
        &backend.conns,
        &backend.address,
        timeout,
        pool.cfg.idle_timeout,
        bcfg.max_connections,
    )
    .await
    {
        Ok(c) => Ok(c),
        Err(ConnectError::AtCapacity) => Err(retry::Outcome::NotSent(retry::Failure::AtCapacity)),
        Err(e) => {
            let now_ms = t.ctx.rt.now_ms();
            upstream::connect_failed(&backend.conns, &pool.cfg.name, &bcfg.name, &e, now_ms);
            super::accounting::record(t.ctx.rt.as_ref(), pool, i, None, None);
            Err(retry::Outcome::NotSent(retry::Failure::Connect))
        }
    }
}

/// The backend's response as it goes to the client: its body carries the connection
/// (back to the pool when the body ends) and the in-flight guard.
fn relay(
    resp: Response<Incoming>,
    conn: upstream::Pooled,
    guard: InFlight,
    upgrade: bool,
) -> Response<ProxyBody> {
    if upgrade && resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        // The connection becomes the tunnel: it never returns to the pool.
        let (parts, _) = resp.into_parts();
        let mut r = Response::from_parts(parts, ProxyBody::empty());
        r.extensions_mut().insert(UpgradeGuard(Arc::new(guard)));
        return r;
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
    Response::from_parts(rparts, body)
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
