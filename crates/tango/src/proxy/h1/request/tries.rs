//! A request to a pool of HTTP/1.1 backends (or one of `protocol = "auto"` whose
//! backend chose HTTP/1.1): backends picked and tried until one answers (`forward`),
//! each try (`attempt`) taking an upstream connection, writing the request's head and
//! body to it and reading its answer's head, interim answers passed on
//! (`read_response`).

use super::{Abort, Req};
use crate::proxy::bufpool::Buf;
use crate::proxy::error::ProxyError;
use crate::proxy::exchange::early::Early;
use crate::proxy::exchange::{self, HeadFail, Target};
use crate::proxy::h1::body;
use crate::proxy::h1::response::{self, Answer};
use crate::proxy::h1::Conn;
use crate::runtime::{BackendState, PoolRuntime};
use crate::upstream::{ConnPool, Upstream};
use std::time::Duration;
use tango_core::http1::codec::{write_request_head, Forwarding, ResponseHead};
use tango_core::retry::{Failure, Outcome};
use tango_core::rewrite::Edits;
use tokio::time::Instant;

/// Pick and try backends of `pool`, a pool of HTTP/1.1 backends, until one answers.
#[allow(clippy::too_many_arguments)]
pub(super) async fn forward<'p>(
    c: &mut Conn<'_>,
    buf: &mut Buf,
    r: &mut Req<'_>,
    pool: &'p PoolRuntime,
    key: Option<u64>,
    edits: Option<&'p Edits>,
    target: &mut Target,
    started: Instant,
) -> Result<Answer<'p>, Abort> {
    let rt = c.ctx.rt.as_ref();
    let deadline = started + pool.cfg.timeout.min(c.ctx.settings.request_timeout);
    let mut tries = exchange::Tries::new(rt, pool, key, deadline, r.resendable());
    let mut now = started;
    loop {
        // The engine keeps the request's bytes until a body streams past the buffer,
        // so it need not be told whether the request may be sent again.
        let (i, _, remaining) = tries.next(target, now)?;
        let t = Try {
            pool,
            i,
            remaining,
            now,
            edits,
        };
        match settle(attempt(c, buf, r, t, target).await)? {
            Ok(a) => return Ok(a),
            Err(o) => tries.failed(o)?,
        }
        now = Instant::now();
    }
}

/// A try's end as the request takes it: its answer, the request ended (the client gone
/// or at fault), or the try's failure for [`exchange::Tries`] to judge.
pub(super) fn settle(t: Result<Tried<'_>, Outcome>) -> Result<Result<Answer<'_>, Outcome>, Abort> {
    match t {
        Ok(Tried::Answer(a)) => Ok(Ok(a)),
        Ok(Tried::ClientGone) => Err(Abort::ClientGone),
        Ok(Tried::BadBody) => Err(ProxyError::BadRequest("invalid chunked body").into()),
        Ok(Tried::ClientTimedOut) => Err(ProxyError::ClientTimeout.into()),
        Err(o) => Ok(Err(o)),
    }
}

/// One try: at backend `i` of `pool`, with `remaining` of the request's time at `now`.
pub(super) struct Try<'p> {
    pub(super) pool: &'p PoolRuntime,
    pub(super) i: usize,
    pub(super) remaining: Duration,
    pub(super) now: Instant,
    /// The route's request edits.
    pub(super) edits: Option<&'p Edits>,
}

/// How a try that did not fail ended.
// The answer is moved once per request; boxing it would allocate for every one.
#[allow(clippy::large_enum_variant)]
pub(super) enum Tried<'p> {
    Answer(Answer<'p>),
    ClientGone,
    BadBody,
    ClientTimedOut,
}

/// Make one try.
pub(super) async fn attempt<'p>(
    c: &mut Conn<'_>,
    buf: &mut Buf,
    r: &mut Req<'_>,
    t: Try<'p>,
    target: &mut Target,
) -> Result<Tried<'p>, Outcome> {
    let (pool, i) = (t.pool, t.i);
    let rt = c.ctx.rt.as_ref();
    let backend: &'p BackendState = &pool.backends[i];
    let in_flight = exchange::reserve(pool, i, target.load_cap, backend)?;
    let mut up = exchange::connect(
        rt,
        pool,
        i,
        &backend.conns,
        &c.ctx.origin,
        t.remaining,
        t.now,
    )
    .await?;
    // A pooled connection is at hand at once; a new one took its time.
    let sent_at = if up.reused { t.now } else { Instant::now() };
    let try_deadline = sent_at + t.remaining.min(pool.cfg.try_timeout);
    // The head for the backend goes in the buffer its answer will be read into (one
    // buffer fewer per request).
    let mut rbuf = Buf::new();
    {
        // Scoped: nothing here lives across an await, so none of it is in the future.
        let mut hex = [0; 32];
        let fwd = Forwarding {
            peer: c.ctx.peer_value.as_bytes(),
            tls: false,
            request_id: r.id.bytes(buf, &mut hex),
            edits: t.edits,
        };
        write_request_head(&mut rbuf, r.head, buf, &fwd);
    }
    // Whether the backend took the whole request: a connection that did not is never
    // reused, whatever its answer says.
    let mut whole = true;
    let mut early = Early::new(r.facts());
    let to = body::Upward {
        up: &mut up,
        early: &mut early,
        deadline: try_deadline,
    };
    match body::send(c, buf, r.head, &mut r.body, &rbuf, to).await {
        Ok(body::Sent::Whole) => {}
        // The backend may have answered before it stopped reading, or while it took
        // no more: its answer is read as any other (none, and the try failed as a
        // reset).
        Ok(body::Sent::Stopped) => whole = false,
        Ok(body::Sent::ClientGone) => return Ok(Tried::ClientGone),
        Ok(body::Sent::BadBody) => return Ok(Tried::BadBody),
        Ok(body::Sent::ClientTimedOut) => return Ok(Tried::ClientTimedOut),
        Err(body::SendError::Stale) => return Err(Outcome::Stale),
        Err(body::SendError::Upstream { timed_out }) => {
            let took = sent_at.elapsed();
            target.upstream = Some(took);
            crate::proxy::accounting::record(rt, pool, i, None, Some(took));
            return Err(if timed_out {
                Outcome::TimedOut
            } else {
                Outcome::SentFailed(Failure::Reset)
            });
        }
    }
    // The answer is read on from what came while the body was being sent, if
    // anything did.
    rbuf.clear();
    rbuf.extend_from_slice(&early.bytes);
    let watch_from = sent_at + exchange::WATCH_CLIENT_AFTER;
    let head = read_response(c, r, &mut up, &mut rbuf, (try_deadline, watch_from)).await;
    if let Err(HeadFail::ClientGone) = head {
        return Ok(Tried::ClientGone);
    }
    let at = Instant::now();
    let took = at - sent_at;
    target.upstream = Some(took);
    let resend = up.reused && r.resendable();
    let head = head.map_err(|why| exchange::failed_after_send(rt, pool, i, took, &why, resend))?;
    crate::proxy::accounting::record(rt, pool, i, Some(head.status), Some(took));
    Ok(Tried::Answer(Answer {
        up,
        rbuf,
        head,
        pool,
        backend: i,
        in_flight,
        at,
        whole,
    }))
}

/// Read the final response head, passing interim responses to the client (except 100
/// Continue, which tango answered itself when the client asked), at most
/// [`exchange::MAX_INTERIM`] of them.
async fn read_response(
    c: &mut Conn<'_>,
    r: &Req<'_>,
    up: &mut Upstream<&ConnPool>,
    rbuf: &mut Buf,
    (deadline, watch_from): (Instant, Instant),
) -> Result<Box<ResponseHead>, HeadFail> {
    let mut interim = 0;
    loop {
        let head = exchange::read_response_head(
            &mut up.stream,
            rbuf,
            r.facts(),
            deadline,
            &mut c.timer,
            Some((&c.s, watch_from)),
        )
        .await
        .map_err(|e| if interim > 0 { e.after_interim() } else { e })?;
        if !head.interim {
            return Ok(head);
        }
        exchange::count_interim(&mut interim)?;
        if head.status != 100 {
            Box::pin(response::interim(c, r.head, &head, rbuf)).await;
        }
        rbuf.drain(..head.head_len);
    }
}
