//! The life of one request: check framing, route, pick a backend, forward, retry when
//! it is safe, stream the response back, count.
//!
//! Per request this allocates what hyper needs and the forwarded headers; the access
//! log's entry is made only when it is on.

use super::access::{AccessLog, Entry, Logged, Outcome};
use super::accounting::Ledger;
use super::body::ProxyBody;
use super::error::ProxyError;
use super::exchange::forward::{self, Outgoing};
use super::exchange::{h2, send, Target};
use super::headers;
use crate::runtime::{RouteRules, Runtime, Snapshot};
use http::{header, HeaderValue, Method, Request, Response, Uri, Version};
use http_body_util::Either;
use hyper::body::{Body as _, Incoming};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tango_core::config::{Target as RouteTarget, UpstreamProtocol};
use tango_core::http1;
use tango_core::rewrite::{self, Vars};

/// What a connection knows about where it came from.
pub(crate) struct ConnCtx {
    pub(crate) rt: Arc<Runtime>,
    pub(crate) peer: SocketAddr,
    /// `peer`, and the address it reached: what a PROXY header to a backend tells.
    pub(crate) origin: crate::upstream::Origin,
    /// `peer`'s IP as a header value, for X-Forwarded-For.
    pub(crate) peer_value: HeaderValue,
    pub(crate) tls: bool,
    /// The listener's settings when the connection was accepted (shared by the
    /// connections accepted under one configuration): its name, trusted proxies,
    /// request timeout, and the idle timeout that also bounds a response body's silence.
    pub(crate) settings: Arc<tango_core::config::Listener>,
    /// Told how each request that may switch protocols was answered: the framing
    /// guard holds the connection's next bytes until then. Only connections read
    /// through the guard (TLS) have one.
    pub(crate) switch: Option<Arc<super::framing::SwitchVerdict>>,
    pub(crate) access_log: Option<Arc<AccessLog>>,
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
        None => HeaderValue::from_bytes(&headers::hex_id(headers::new_request_id()))
            .expect("hex is a valid header value"),
    };
    let connect = req.method() == Method::CONNECT;
    let may_switch = req.version() <= Version::HTTP_11
        && http1::may_switch_protocols(connect, req.headers().contains_key(header::UPGRADE));
    let entry = ctx
        .access_log
        .as_ref()
        .map(|log| log.entry(&ctx.settings, ctx.peer, &req, &request_id));
    let snap = ctx.rt.current();
    let started = Instant::now();
    let (to_tunnel, counting) = Counting::of(entry.as_ref(), &req);
    let grpc = super::grpc::is_grpc(req.headers());
    // The status a failure stands for (a gRPC client is answered 200 with its status).
    let mut failed = None;
    let route = (snap.config).route_index(host_of(&req).map(strip_port), req.uri().path(), ctx.tls);
    let rules = route.map(|i| &snap.routes[i]).filter(|r| !r.is_empty());
    // `$host` for the response's edits: the request is gone by then. Copied only for a
    // route with edits.
    let host = match (rules, host_of(&req)) {
        (Some(_), Some(h)) => rewrite::host_of(h.as_bytes()).to_vec(),
        _ => Vec::new(),
    };
    let vars = Vars {
        client_addr: ctx.peer_value.as_bytes(),
        request_id: request_id.as_bytes(),
        host: &host,
    };
    let routed = Routed {
        route,
        rules,
        vars,
        request_id: &request_id,
    };
    let (mut resp, target) = match answer(&ctx, &snap, req, &routed, counting).await {
        Ok(r) => r,
        Err((e, target)) => {
            tracing::debug!(error = %e, blame = ?e.blame(), "request failed");
            failed = Some(e.status());
            let resp = if grpc {
                super::grpc::error_response(&e)
            } else {
                error_response(&e)
            };
            (resp, target)
        }
    };
    if let Some(r) = rules {
        super::rules::apply(resp.headers_mut(), &r.response_map, &vars);
    }
    if let (true, Some(switch)) = (may_switch, &ctx.switch) {
        let status = resp.status().as_u16();
        switch.decide(http1::switches_protocols(connect, status));
    }
    // What the client saw, apart from the tries behind it.
    if let Some(pool) = target.pool.and_then(|p| snap.pools.get(p)) {
        let status = failed.unwrap_or(resp.status());
        super::accounting::client_response(pool, target.backend, status, started.elapsed());
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
    if let Some(tx) = to_tunnel.filter(|_| http1::switches_protocols(connect, outcome.status)) {
        // The tunnel's task writes the line when it ends; if no tunnel was opened (its
        // task is gone), the entry comes back and is written now.
        drop(tx.send(entry.tunnel_opened(&snap, outcome)));
        return Ok(resp.map(Either::Left));
    }
    Ok(resp.map(|body| Either::Right(entry.finish(&snap, outcome, body))))
}

/// What the access log counts of a request as it goes, when it is on.
struct Counting {
    /// The request body's bytes, for a request with a body.
    bytes_in: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// For a request that may open a tunnel: where the tunnel's task gets the entry.
    tunnel_log: Option<super::access::TunnelLog>,
}

impl Counting {
    /// What `req`'s `entry` (with the access log on) counts; for a request that may
    /// open a tunnel (CONNECT, or `Upgrade`), also where its entry goes once its
    /// answer opened one, for the tunnel to write its line when it ends.
    fn of(entry: Option<&Entry>, req: &Request<Incoming>) -> (Option<ToTunnel>, Counting) {
        let bytes_in = entry.and_then(|e| e.bytes_in());
        // Looked at only with the access log on.
        let tunnels =
            || req.method() == Method::CONNECT || req.headers().contains_key(header::UPGRADE);
        let (tx, tunnel_log) = match entry {
            Some(_) if tunnels() => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                (Some(tx), Some(rx))
            }
            _ => (None, None),
        };
        let counting = Counting {
            bytes_in,
            tunnel_log,
        };
        (tx, counting)
    }
}

/// Where a request's entry goes when its answer opens a tunnel.
type ToTunnel = tokio::sync::oneshot::Sender<Entry>;

/// Where a request goes, and what its route edits.
struct Routed<'a> {
    /// Index into the snapshot's routes.
    route: Option<usize>,
    /// The route's edits, when it has any.
    rules: Option<&'a RouteRules>,
    vars: Vars<'a>,
    request_id: &'a HeaderValue,
}

pub(crate) fn error_response(e: &ProxyError) -> Response<ProxyBody> {
    let mut r = Response::new(ProxyBody::text(format!("{e}\n")));
    *r.status_mut() = e.status();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if e.refuses() {
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

/// The host of the request ([`request_host`]).
fn host_of(req: &Request<Incoming>) -> Option<&str> {
    headers::request_host(req.uri(), req.headers())
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

/// Origin-form as received (HTTP/1.1) is reused as is; HTTP/2's absolute form becomes
/// origin-form for the HTTP/1.1 backend.
fn origin_form(uri: Uri) -> Result<Uri, ProxyError> {
    if uri.scheme().is_none() && uri.authority().is_none() {
        return Ok(uri);
    }
    let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    Uri::try_from(pq).map_err(|_| ProxyError::BadRequest("invalid target"))
}

/// Answer the request: framing checked, then redirected or forwarded as its route says.
async fn answer(
    ctx: &ConnCtx,
    snap: &Arc<Snapshot>,
    req: Request<Incoming>,
    routed: &Routed<'_>,
    counting: Counting,
) -> Result<(Response<ProxyBody>, Target), Failure> {
    let mut target = Target::default();
    headers::check_authority(req.version(), req.uri(), req.headers())
        .map_err(|m| (ProxyError::BadRequest(m), target))?;
    // The target's form, for HTTP/2 too: its `:path` may be `*` only for OPTIONS
    // (RFC 9113 8.3.1), which h2 does not check, and a backend must not get `GET *`.
    headers::check_target(req.method(), req.uri())
        .map_err(|m| (ProxyError::BadRequest(m), target))?;
    if req.version() <= Version::HTTP_11 {
        headers::check_framing(req.headers()).map_err(|m| (ProxyError::BadRequest(m), target))?;
    }
    let route = routed.route.map(|i| &snap.config.routes[i].target);
    let pool_index = match route {
        Some(RouteTarget::Pool(p)) => *p,
        // Answered here: no pool is picked, counted or kept waiting for the body.
        Some(RouteTarget::Redirect(r)) => {
            let resp = super::rules::redirect(r, ctx.tls, host_of(&req), &req);
            if resp.is_ok() {
                ctx.rt
                    .redirects
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            return resp.map(|r| (r, target)).map_err(|e| (e, target));
        }
        None => return Err((ProxyError::NoRoute, target)),
    };
    target.pool = Some(pool_index);
    let pool = &snap.pools[pool_index];
    let key = super::keys::extract(pool, &req, ctx.peer.ip(), &ctx.settings.trusted_proxies);
    super::keys::observe(
        pool,
        &req,
        ctx.peer.ip(),
        &ctx.settings.trusted_proxies,
        key,
    );
    // HTTP/2 backends: whether the client asked for trailers, before `te` goes.
    let protocol = pool.cfg.protocol;
    let te = protocol != UpstreamProtocol::Http1 && h2::te_trailers(req.headers());
    let ledger = Ledger::new(Arc::clone(&ctx.rt), Arc::clone(snap), pool_index);
    let mut out = outgoing(ctx, req, routed, counting, ledger).map_err(|e| (e, target))?;
    let deadline = tokio::time::Instant::now() + pool.cfg.timeout.min(ctx.settings.request_timeout);
    let rt = ctx.rt.as_ref();
    let t = &mut target;
    let forwarded = match protocol {
        UpstreamProtocol::Http1 => forward::forward(rt, pool, key, deadline, &mut out, t).await,
        UpstreamProtocol::H2 => h2::forward(rt, pool, key, deadline, &mut out, te, t).await,
        UpstreamProtocol::Auto => h2::forward_auto(rt, pool, key, deadline, &mut out, te, t).await,
    };
    match forwarded {
        Ok(resp) => Ok((resp, target)),
        Err(e) => Err((e, target)),
    }
}

/// The client's request as a backend gets it: hop-by-hop headers out, HTTP/2 cookie
/// crumbs joined, forwarding headers in, then the route's edits; HTTP/2's absolute form
/// as origin-form.
fn outgoing(
    ctx: &ConnCtx,
    mut req: Request<Incoming>,
    routed: &Routed<'_>,
    counting: Counting,
    ledger: Ledger,
) -> Result<Outgoing, ProxyError> {
    let upgrade = if req.version() == Version::HTTP_11 {
        headers::upgrade_protocol(req.headers())
    } else {
        None
    };
    // CONNECT too (HTTP/1.1, or an HTTP/2 stream): a `2xx` from the backend makes the
    // client's side and the backend's connection one tunnel, as on the engine.
    let tunnels = upgrade.is_some() || req.method() == Method::CONNECT;
    let client_upgrade = tunnels.then(|| hyper::upgrade::on(&mut req));
    let tunnel = req.extensions_mut().remove::<super::idle::Tunnel>();
    let from_target = headers::target_authority(req.uri());
    let host = match (from_target, req.headers().get(header::HOST)) {
        (Some(a), _) => HeaderValue::from_str(a).ok(),
        (None, Some(h)) => Some(h.clone()),
        (None, None) => req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
    };
    let from_target = from_target.is_some();
    let (parts, body) = req.into_parts();
    let framing = send::framing(&parts.method, &parts.headers, &body);
    let uri = if parts.method == Method::CONNECT {
        parts.uri
    } else {
        origin_form(parts.uri)?
    };
    let mut hdrs = parts.headers;
    headers::strip_hop_by_hop(&mut hdrs, upgrade.is_some());
    if parts.version == Version::HTTP_2 {
        headers::join_cookies(&mut hdrs);
    }
    match &host {
        Some(h) if from_target || !hdrs.contains_key(header::HOST) => {
            hdrs.insert(header::HOST, h.clone());
        }
        Some(_) => {}
        // HTTP/1.1 requires Host, empty when there is no authority to give (RFC 9112
        // 3.2): an HTTP/2 request without `:authority`, or HTTP/1.0 without Host.
        None => {
            hdrs.insert(header::HOST, HeaderValue::from_static(""));
        }
    }
    headers::add_forwarded(&mut hdrs, &ctx.peer_value, ctx.tls, host);
    hdrs.insert(&headers::X_REQUEST_ID, routed.request_id.clone());
    if let Some(r) = routed.rules {
        super::rules::apply(&mut hdrs, &r.request_map, &routed.vars);
    }
    let has_body = !body.is_end_stream();
    Ok(Outgoing {
        resendable: idempotent(&parts.method) && !has_body && upgrade.is_none(),
        method: parts.method,
        uri,
        headers: hdrs,
        body: has_body.then_some(body),
        framing,
        asks_upgrade: upgrade.is_some(),
        client_upgrade,
        tunnel,
        counted: counting.bytes_in,
        tunnel_log: counting.tunnel_log,
        stall: ctx.settings.idle_timeout,
        origin: ctx.origin,
        ledger: Some(ledger),
    })
}
