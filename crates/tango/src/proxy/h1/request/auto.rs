//! An engine request to a pool with `protocol = "auto"`: each try goes by the protocol
//! its backend chose by ALPN (`ConnPool::speaks_h2`), HTTP/1.1 until that is known. A
//! new connection made for one protocol whose backend chose the other is handed to
//! that protocol's connections, and the request is tried again (`Outcome::Stale`, no
//! attempt counted), now by the right path.

use super::to_h2::{self, Translated};
use super::tries::{attempt, settle, Try};
use super::{Abort, Req, Route};
use crate::proxy::bufpool::Buf;
use crate::proxy::exchange::h2 as up;
use crate::proxy::exchange::{Target, Tries};
use crate::proxy::h1::response::Answer;
use crate::proxy::h1::Conn;
use crate::runtime::PoolRuntime;
use tokio::time::Instant;

/// Pick and try backends of `pool` until one answers: an HTTP/1.1 answer comes back
/// to be forwarded, an HTTP/2 one is written here (`Abort::Served`).
#[allow(clippy::too_many_arguments)]
pub(super) async fn forward<'p>(
    c: &mut Conn<'_>,
    buf: &mut Buf,
    r: &mut Req<'_>,
    pool: &'p PoolRuntime,
    key: Option<u64>,
    route: Route<'p, '_>,
    started: Instant,
    target: &mut Target,
) -> Result<Answer<'p>, Abort> {
    let rt = c.ctx.rt.as_ref();
    let edits = route.rules.map(|x| &x.wire.request);
    let deadline = started + pool.cfg.timeout.min(c.ctx.settings.request_timeout);
    let mut tries = Tries::new(rt, pool, key, deadline, r.resendable());
    // The HTTP/2 form of the request, made the first time a backend speaks it.
    let mut h2: Option<Translated> = None;
    let mut now = started;
    loop {
        let (i, _, remaining) = tries.next(target, now)?;
        let failed = if pool.backends[i].conns.speaks_h2() {
            let t = match &h2 {
                Some(t) => t,
                None => h2.insert(to_h2::translate(c, buf, r, route.rules)?),
            };
            let (method, path, authority, fields, te) = t;
            let address = &pool.backends[i].address;
            let req = up::head(method, path, authority.as_deref(), address, fields, *te)?;
            let apply = route.apply;
            match to_h2::attempt(c, buf, r, pool, i, remaining, req, apply, target).await {
                Ok(served) => return Err(served),
                Err(o) => o,
            }
        } else {
            let t = Try {
                pool,
                i,
                remaining,
                now,
                edits,
            };
            match settle(attempt(c, buf, r, t, target).await)? {
                Ok(a) => return Ok(a),
                Err(o) => o,
            }
        };
        tries.failed(failed)?;
        now = Instant::now();
    }
}
