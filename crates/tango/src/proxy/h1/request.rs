//! One request on an engine connection: its head read and judged, routed, tried at the
//! pool's backends (`tries`, with `exchange::tries`), answered, counted and logged.
//!
//! The client's buffer holds the head, then whatever followed it: body bytes, or the
//! next pipelined request. The head is written upstream from where it lies; body bytes
//! already read go in the same write. Until a body longer than the buffer starts to
//! stream, the buffer is left as it is, so a try that never reached a backend can be
//! made again from the same bytes.

mod auto;
mod head;
mod to_h2;
mod tries;

use super::body::BodyIn;
use super::own::{self, error_response, For, Kept};
use super::response::{self, Answer};
use super::sent::Sent;
use super::view::Raw;
use super::{Conn, Next};
use crate::proxy::access::{Outcome as LogOutcome, Pending};
use crate::proxy::bufpool::{self, Buf};
use crate::proxy::error::ProxyError;
use crate::proxy::exchange::Target;
use crate::runtime::{PoolRuntime, RouteRules, Snapshot};
use std::sync::Arc;
use std::time::Duration;
use tango_core::config::{Redirect, Target as RouteTarget, UpstreamProtocol};
use tango_core::http1::codec::{parse_request_into, Method, RequestFacts, RequestHead, Span};
use tango_core::rewrite::{write_location, Apply, RequestUrl};
use tokio::time::Instant;

/// The request id forwarded: the client's (where it lies in the buffer) or a new one
/// (its 128 random bits, written as 32 hex digits when sent).
#[derive(Clone, Copy)]
enum RequestId {
    Client(Span),
    New(u128),
}

impl RequestId {
    /// The id's bytes; a new one is written into `hex`.
    fn bytes<'a>(&self, buf: &'a [u8], hex: &'a mut [u8; 32]) -> &'a [u8] {
        match *self {
            RequestId::Client(s) => s.of(buf),
            RequestId::New(id) => {
                *hex = crate::proxy::headers::hex_id(id);
                hex
            }
        }
    }
}

/// A request being served.
struct Req<'h> {
    /// Boxed where `serve` keeps it: the future of a request is moved whole into the
    /// heap, and is smaller without it (the head is a few hundred bytes, its fields
    /// inline).
    head: &'h RequestHead,
    id: RequestId,
    body: BodyIn,
    /// Response body bytes sent to the client so far, counted as they go, so that a
    /// request cut in the middle of its answer (a write in progress too) is logged
    /// with them.
    sent: Sent,
}

/// A request and its access log entry, as `serve` holds them. When this is dropped
/// before the request is done (its connection's task dropped as the drain ends), the
/// entry gets the body bytes moved by then both ways, for the line it writes as it
/// goes; on the usual path the entry has been taken, and this costs that check.
struct Serving<'h> {
    r: Req<'h>,
    log: Pending,
}

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        if let Some(e) = self.log.entry.as_mut() {
            e.set_bytes_in(self.r.body.bytes_in());
            e.set_bytes_out(self.r.sent.total());
        }
    }
}

impl Req<'_> {
    /// The request may be sent twice: idempotent, without a body or an upgrade.
    fn resendable(&self) -> bool {
        self.head.method.is_idempotent() && self.body.is_empty() && self.head.upgrade.is_none()
    }

    /// What the response's framing depends on.
    fn facts(&self) -> RequestFacts {
        RequestFacts {
            is_head: self.head.method == Method::Head,
            is_connect: self.head.is_connect(),
            upgrade: self.head.upgrade.is_some(),
        }
    }
}

/// Serve the request at the start of `buf`. On return `buf` holds only what the client
/// sent after it.
pub(super) async fn serve(c: &mut Conn<'_>, buf: &mut Buf) -> Next {
    // The clock is read once here and once when the answer is in; the deadlines of
    // the request are reckoned from this.
    let started = Instant::now();
    // A head that came whole (the usual case) is parsed here; reading the rest of one
    // is boxed, to keep its future out of every request's.
    let mut head = bufpool::fresh::<RequestHead>();
    let head = match parse_request_into(buf, c.max_head, &mut head) {
        Ok(true) => head,
        _ => match Box::pin(head::read_head(c, buf, started, head)).await {
            Ok(h) => h,
            Err(next) => return next,
        },
    };
    let id = match head.request_id {
        Some(s) => RequestId::Client(s),
        None => RequestId::New(crate::proxy::headers::new_request_id()),
    };
    // Before the entry: a request refused here has no line, as one whose head did not
    // read has none.
    let body = match BodyIn::start(&head, buf) {
        Ok(b) => b,
        Err(()) => return head::bad_request(c, head.version),
    };
    let entry = c.ctx.access_log.as_ref().map(|log| {
        let raw = Raw {
            head: &head,
            buf,
            peer: c.ctx.peer.ip(),
        };
        // Boxed, to keep the request's future small when the log is off.
        let mut hex = [0; 32];
        let parts = raw.parts(id.bytes(buf, &mut hex));
        Box::new(log.entry_from_parts(&c.ctx.settings, c.ctx.peer, parts))
    });
    // Made in place: the two are a few hundred bytes, moved for nothing otherwise.
    let mut s = Serving {
        r: Req {
            head: &head,
            id,
            body,
            sent: Sent::default(),
        },
        // The snapshot is held across the request's awaits: a plain reference count,
        // since the lock-free guard's per-thread slots run out with many requests in
        // progress.
        log: Pending {
            entry,
            snap: Arc::clone(&c.ctx.rt.current()),
            target: Target::default(),
        },
    };
    let (r, p) = (&mut s.r, &mut s.log);
    let (next, status, bytes_out) = dispatch(c, buf, r, &p.snap, &mut p.target, started).await;
    r.body.finish(buf);
    if let Some(mut entry) = p.entry.take() {
        entry.set_bytes_in(r.body.bytes_in());
        let t = p.target;
        let o = LogOutcome {
            status,
            pool: t.pool,
            backend: t.backend,
            tries: t.tries,
            upstream: t.upstream,
        };
        entry.write_now(&p.snap, o, bytes_out);
    }
    drop(s);
    bufpool::unbox(head);
    next
}

/// Route the request and answer it: with a redirect, a backend's answer or tango's
/// error, each with the route's response edits. Returns what the connection does next,
/// the status and the body bytes sent.
async fn dispatch(
    c: &mut Conn<'_>,
    buf: &mut Buf,
    r: &mut Req<'_>,
    snap: &Arc<Snapshot>,
    target: &mut Target,
    started: Instant,
) -> (Next, u16, u64) {
    let route = {
        let raw = Raw {
            head: r.head,
            buf,
            peer: c.ctx.peer.ip(),
        };
        snap.config.route_index(raw.host(), raw.path(), false)
    };
    // A route without edits costs this check and nothing else.
    let rules = route.map(|i| &snap.routes[i]).filter(|x| !x.is_empty());
    let kept = rules.filter(|x| !x.wire.response.is_empty()).map(|_| {
        let mut hex = [0; 32];
        Box::new(Kept::of(r.head, buf, r.id.bytes(buf, &mut hex)))
    });
    let ctx = c.ctx;
    let apply = match (rules, &kept) {
        (Some(x), Some(k)) => Some(k.apply(&x.wire.response, ctx.peer_value.as_bytes())),
        _ => None,
    };
    let pool_i = match route.map(|i| &snap.config.routes[i].target) {
        Some(RouteTarget::Pool(p)) => *p,
        Some(RouteTarget::Redirect(red)) => {
            return Box::pin(redirect(c, buf, r, red, apply.as_ref(), target)).await;
        }
        None => {
            let answer = own_answer(r, apply.as_ref());
            // Set before the answer goes, for the line of one cut by the drain's end.
            target.status = 404;
            let e = &ProxyError::NoRoute;
            let (next, bytes) = Box::pin(error_response(c, answer, &mut r.sent, e)).await;
            return (next, 404, bytes);
        }
    };
    let route = Route {
        rules,
        apply: apply.as_ref(),
    };
    let result = forward(c, buf, r, snap, pool_i, route, target, started).await;
    match result {
        Ok(ans) => {
            let status = ans.head.status;
            target.status = status;
            if let Some(pool) = target.pool.and_then(|p| snap.pools.get(p)) {
                client_response(pool, target.backend, status, ans.at - started);
            }
            let (body, sent) = (&mut r.body, &mut r.sent);
            response::forward(c, buf, r.head, body, sent, ans, apply.as_ref()).await
        }
        Err(Abort::ClientGone) => (Next::Close, 499, 0),
        Err(Abort::Served {
            next,
            status,
            bytes,
        }) => {
            if let Some(pool) = target.pool.and_then(|p| snap.pools.get(p)) {
                client_response(pool, target.backend, status, started.elapsed());
            }
            (next, status, bytes)
        }
        Err(Abort::Failed(e)) => {
            tracing::debug!(error = %e, blame = ?e.blame(), "request failed");
            let status = e.status().as_u16();
            if let Some(pool) = target.pool.and_then(|p| snap.pools.get(p)) {
                client_response(pool, target.backend, status, started.elapsed());
            }
            // Boxed, as every path that is not the common one, to keep the future of
            // a request small: it is moved into the heap for every request.
            let answer = own_answer(r, apply.as_ref());
            target.status = status;
            let (next, bytes) = Box::pin(error_response(c, answer, &mut r.sent, &e)).await;
            (next, status, bytes)
        }
    }
}

fn own_answer<'a>(r: &Req<'a>, apply: Option<&'a Apply<'a>>) -> For<'a> {
    For {
        head: r.head,
        body_done: r.body.done(),
        apply,
    }
}

/// Answer a redirect route: the Location from the request, no pool touched. The
/// status goes in `target` before the answer, for the line of one cut by the drain.
async fn redirect(
    c: &mut Conn<'_>,
    buf: &[u8],
    r: &mut Req<'_>,
    red: &Redirect,
    apply: Option<&Apply<'_>>,
    target: &mut Target,
) -> (Next, u16, u64) {
    let url = RequestUrl {
        tls: false,
        authority: r.head.host.map(|h| h.of(buf)),
        target: r.head.origin.of(buf),
    };
    let mut location = Vec::with_capacity(64 + url.target.len());
    let answer = own_answer(r, apply);
    if write_location(red, &url, &mut location).is_err() {
        let e = ProxyError::BadRequest("no host to redirect to");
        target.status = 400;
        let (next, bytes) = own::error_response(c, answer, &mut r.sent, &e).await;
        return (next, 400, bytes);
    }
    c.ctx
        .rt
        .redirects
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    target.status = red.status;
    let (next, bytes) = own::redirect(c, answer, &mut r.sent, red.status, &location).await;
    (next, red.status, bytes)
}

fn client_response(pool: &PoolRuntime, backend: Option<usize>, status: u16, took: Duration) {
    let status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
    crate::proxy::accounting::client_response(pool, backend, status, took);
}

/// Why a request got no answer from a backend.
pub(super) enum Abort {
    /// tango answers with this error.
    Failed(ProxyError),
    /// The client went away in the middle of its request body: nobody to answer.
    ClientGone,
    /// Answered apart (a pool of HTTP/2 backends): how the connection goes on, the
    /// status and the body bytes sent.
    Served { next: Next, status: u16, bytes: u64 },
}

impl From<ProxyError> for Abort {
    fn from(e: ProxyError) -> Self {
        Abort::Failed(e)
    }
}

/// The route's header edits, as a request to a pool takes them.
#[derive(Clone, Copy)]
struct Route<'p, 'a> {
    rules: Option<&'p RouteRules>,
    /// The response's edits with their values (a route with response edits).
    apply: Option<&'a Apply<'a>>,
}

/// Pick and try backends of pool `pool_i` until one answers, by the pool's protocol.
#[allow(clippy::too_many_arguments)]
async fn forward<'p>(
    c: &mut Conn<'_>,
    buf: &mut Buf,
    r: &mut Req<'_>,
    snap: &'p Arc<Snapshot>,
    pool_i: usize,
    route: Route<'p, '_>,
    target: &mut Target,
    started: Instant,
) -> Result<Answer<'p>, Abort> {
    let edits = route.rules.map(|x| &x.wire.request);
    target.pool = Some(pool_i);
    let pool = &snap.pools[pool_i];
    let key = {
        let raw = Raw {
            head: r.head,
            buf,
            peer: c.ctx.peer.ip(),
        };
        let trusted = &c.ctx.settings.trusted_proxies;
        let key = crate::proxy::keys::extract_view(pool, &raw, trusted);
        crate::proxy::keys::observe_view(pool, &raw, trusted, key, |client| raw.sample(client));
        key
    };
    match pool.cfg.protocol {
        UpstreamProtocol::Http1 => {
            tries::forward(c, buf, r, pool, key, edits, target, started).await
        }
        // Boxed: their futures stay out of the HTTP/1 request's.
        UpstreamProtocol::H2 => {
            let serve = to_h2::serve(c, buf, r, pool, key, route, started, target);
            Err(Box::pin(serve).await)
        }
        UpstreamProtocol::Auto => {
            let serve = auto::forward(c, buf, r, pool, key, route, started, target);
            Box::pin(serve).await
        }
    }
}
