//! A request hyper's server parsed (over TLS, or HTTP/2) on its way to a backend: the
//! same tries, connections and response heads as the engine's, with the request
//! written from its header map (`send`) and the response handed to hyper as a header
//! map and a body that reads the backend's connection (`body::UpstreamBody`).

use super::early::Early;
use super::send::{self, BodyFail, Framing};
use super::stream;
use super::{HeadFail, Missed, Target, Tries};
use crate::proxy::access::TunnelLog;
use crate::proxy::accounting::{BodyEnd, Ledger, Owed};
use crate::proxy::body::ProxyBody;
use crate::proxy::bufpool::Buf;
use crate::proxy::error::ProxyError;
use crate::proxy::h1::io::{Limit, Timer};
use crate::proxy::idle::{Tunnel, TunnelGuard};
use crate::proxy::shutdown::Shutdown;
use crate::runtime::{BackendState, InFlight, PoolRuntime, Runtime};
use crate::upstream::{Origin, Upstream};
use http::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH};
use http::{HeaderMap, Method, Response, StatusCode, Uri};
use hyper::body::Incoming;
use std::io::IoSlice;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tango_core::http1::codec::{RequestFacts, ResponseHead};
use tango_core::retry::Outcome;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

/// What is sent upstream, prepared once for every try. The body goes with the first
/// try that gets the head onto the wire; the retry policy never sends such a request
/// twice.
pub(crate) struct Outgoing {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    /// The fields as the backend gets them (hop-by-hop out, forwarding in).
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Incoming>,
    pub(crate) framing: Framing,
    /// The request may be sent twice: idempotent, without a body, not an upgrade.
    pub(crate) resendable: bool,
    /// The request asks to upgrade (HTTP/1.1 `Upgrade`): a `101` may answer it.
    pub(crate) asks_upgrade: bool,
    /// The client's side of the tunnel a `101` to an upgrade, or a `2xx` to CONNECT,
    /// opens.
    pub(crate) client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    /// For a request that may open a tunnel: what the tunnel needs of the client's
    /// connection (its slot, which an open tunnel keeps busy, and the shutdown signal).
    pub(crate) tunnel: Option<Tunnel>,
    /// The access log's count of request body bytes, when it is on.
    pub(crate) counted: Option<Arc<AtomicU64>>,
    /// With the access log on, for a request that may open a tunnel: where the tunnel
    /// gets the request's entry, to write its line when it ends.
    pub(crate) tunnel_log: Option<TunnelLog>,
    /// How long a response body may stall, and a tunnel go with no byte moving.
    pub(crate) stall: Duration,
    /// The client's connection, as a PROXY header tells of it.
    pub(crate) origin: Origin,
    /// Where the answer's body is judged when it ends; taken by the try that gets a
    /// response head.
    pub(crate) ledger: Option<Ledger>,
}

impl Outgoing {
    fn facts(&self) -> RequestFacts {
        RequestFacts {
            is_head: self.method == Method::HEAD,
            is_connect: self.method == Method::CONNECT,
            upgrade: self.asks_upgrade,
        }
    }
}

/// Try backends of `pool` until one answers, within `deadline`.
pub(crate) async fn forward(
    rt: &Runtime,
    pool: &PoolRuntime,
    key: Option<u64>,
    deadline: Instant,
    out: &mut Outgoing,
    target: &mut Target,
) -> Result<Response<ProxyBody>, ProxyError> {
    let mut tries = Tries::new(rt, pool, key, deadline, out.resendable);
    let mut now = Instant::now();
    loop {
        let (i, _, remaining) = tries.next(target, now)?;
        match attempt(rt, pool, i, remaining, out, target).await {
            Ok(resp) => return Ok(resp),
            Err(Missed::Client(e) | Missed::Broken(e)) => return Err(e),
            Err(Missed::Backend(o)) => tries.failed(o)?,
        }
        now = Instant::now();
    }
}

/// One try at backend `i`, with `remaining` of the request's time.
pub(crate) async fn attempt(
    rt: &Runtime,
    pool: &PoolRuntime,
    i: usize,
    remaining: Duration,
    out: &mut Outgoing,
    target: &mut Target,
) -> Result<Response<ProxyBody>, Missed> {
    let backend = pool.backends[i].clone();
    let in_flight = super::reserve(pool, i, target.load_cap, backend.clone())?;
    let origin = out.origin;
    let mut up = super::connect(rt, pool, i, backend, &origin, remaining, Instant::now()).await?;
    let sent_at = Instant::now();
    let deadline = sent_at + remaining.min(pool.cfg.try_timeout);
    let sleep = std::pin::pin!(tokio::time::sleep_until(deadline));
    let mut timer = Timer::new(sleep);
    let mut rbuf = Buf::new();
    let mut early = Early::new(out.facts());
    let to = (&mut up, &mut early);
    let sent = send_request(out, to, &mut rbuf, deadline, &mut timer).await;
    // Whether the backend took the whole request: a connection that did not is never
    // reused, whatever its answer says.
    let whole = !matches!(sent, Err(Sending::Stopped));
    let head = match sent {
        // The backend may have answered before it stopped reading the body (a `413`,
        // then a close, or nothing while it takes no more): its answer is read as any
        // other, from what came meanwhile.
        Ok(()) | Err(Sending::Stopped) => {
            rbuf.clear();
            rbuf.extend_from_slice(&early.bytes);
            read_final_head(&mut up, &mut rbuf, out.facts(), deadline, &mut timer).await
        }
        Err(Sending::Stale) => return Err(Outcome::Stale.into()),
        Err(Sending::Client(e)) => return Err(Missed::Client(e)),
        Err(Sending::Failed(why)) => Err(why),
    };
    let took = sent_at.elapsed();
    target.upstream = Some(took);
    let pooled_resendable = up.reused && out.resendable;
    let head =
        head.map_err(|why| super::failed_after_send(rt, pool, i, took, &why, pooled_resendable))?;
    crate::proxy::accounting::record(rt, pool, i, Some(head.status), Some(took));
    let owed = out.ledger.take().and_then(|l| l.owe(i, head.status));
    let resp = respond(out, up, rbuf, &head, whole, in_flight, owed);
    crate::proxy::bufpool::unbox(head);
    resp.map_err(|e| {
        tracing::warn!(pool = %pool.cfg.name, backend = %pool.cfg.backends[i].name, error = %e, "upstream response malformed");
        Missed::Broken(ProxyError::BadResponse)
    })
}

enum Sending {
    /// Nothing was written: the pooled connection had been closed by the backend.
    Stale,
    Failed(HeadFail),
    /// The backend closed or reset its side before it took the whole body, or
    /// answered while it took no more of it.
    Stopped,
    /// The client's body stalled or broke off (see [`Missed::Client`]).
    Client(ProxyError),
}

/// The head (built in `rbuf`), then the body; what the backend sends meanwhile goes in
/// `early`.
async fn send_request(
    out: &mut Outgoing,
    (up, early): (&mut Upstream<Arc<BackendState>>, &mut Early),
    rbuf: &mut Buf,
    deadline: Instant,
    timer: &mut Timer<'_>,
) -> Result<(), Sending> {
    send::write_head(rbuf, &out.method, &out.uri, &out.headers, out.framing);
    let mut wrote = 0;
    let mut head = [IoSlice::new(rbuf)];
    let limit = Limit::Until(deadline);
    if let Err(e) = stream::write_all(&mut up.stream, &mut head, limit, timer, &mut wrote).await {
        let timed_out = e.kind() == std::io::ErrorKind::TimedOut;
        return Err(match (wrote, up.reused, timed_out) {
            (0, true, false) => Sending::Stale,
            (_, _, true) => Sending::Failed(HeadFail::Timeout),
            _ => Sending::Failed(HeadFail::Closed),
        });
    }
    let Some(mut body) = out.body.take() else {
        return Ok(());
    };
    let counted = out.counted.as_deref();
    match send::body(
        &mut up.stream,
        &mut body,
        out.framing,
        deadline,
        timer,
        counted,
        early,
    )
    .await
    {
        Ok(()) => Ok(()),
        Err(BodyFail::Answered) => Err(Sending::Stopped),
        Err(BodyFail::Upstream { timed_out: true }) => Err(Sending::Failed(HeadFail::Timeout)),
        Err(BodyFail::Upstream { timed_out: false }) => Err(Sending::Stopped),
        // The backend got a part of the body and waits for the rest; the connection
        // is dropped with it, and the backend is not to blame.
        Err(BodyFail::ClientTimedOut) => Err(Sending::Client(ProxyError::ClientTimeout)),
        Err(BodyFail::Client) => Err(Sending::Client(ProxyError::BadRequest(
            "the request body broke off",
        ))),
    }
}

/// The final response head (interim ones are not passed on: hyper answers
/// `Expect: 100-continue` itself on HTTP/1.1, and its HTTP/2 server sends no interim
/// answers).
async fn read_final_head(
    up: &mut Upstream<Arc<BackendState>>,
    rbuf: &mut Buf,
    facts: RequestFacts,
    deadline: Instant,
    timer: &mut Timer<'_>,
) -> Result<Box<ResponseHead>, HeadFail> {
    let mut interim = 0;
    loop {
        let head = super::read_response_head(&mut up.stream, rbuf, facts, deadline, timer, None)
            .await
            .map_err(|e| if interim > 0 { e.after_interim() } else { e })?;
        if !head.interim {
            return Ok(head);
        }
        super::count_interim(&mut interim)?;
        rbuf.drain(..head.head_len);
    }
}

/// The response for hyper: the head's fields, and a body that reads the rest from the
/// connection (judging the try by how it ends, `owed`); after a `101` to an upgrade or
/// a `2xx` to CONNECT the connections become a tunnel (a success for `owed`). A
/// connection whose backend did not take the whole request (`whole`) is not reused. `Err`
/// when the body that came with the head is not chunked framing (see
/// [`ProxyBody::upstream`]).
fn respond(
    out: &mut Outgoing,
    up: Upstream<Arc<BackendState>>,
    rbuf: Buf,
    head: &ResponseHead,
    whole: bool,
    in_flight: InFlight,
    owed: Option<Owed>,
) -> std::io::Result<Response<ProxyBody>> {
    if head.coded {
        // hyper frames the body itself and cannot name a transfer coding (HTTP/2 has
        // none), and the bytes go on as they are: the client would take coded bytes
        // for the body. A 502, as nginx and Envoy answer any coding but chunked.
        if let Some(mut o) = owed {
            o.ended(BodyEnd::Unsent);
        }
        drop(in_flight);
        return Err(std::io::Error::other(
            "a transfer coding the client cannot be told of",
        ));
    }
    let mut resp = Response::new(ProxyBody::empty());
    *resp.status_mut() = StatusCode::from_u16(head.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let fields = resp.headers_mut();
    for f in head.headers.iter().filter(|f| !f.is_hop_by_hop()) {
        let name = HeaderName::from_bytes(f.name().of(&rbuf));
        let value = HeaderValue::from_bytes(f.value().of(&rbuf));
        if let (Ok(n), Ok(v)) = (name, value) {
            fields.append(n, v);
        }
    }
    if head.switching {
        if head.status == 101 {
            fields.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        } else {
            // A 2xx to CONNECT has no body (RFC 9110 9.3.6); hyper's HTTP/2 server
            // resets a stream whose CONNECT answer claims one.
            fields.remove(CONTENT_LENGTH);
        }
        if let (Some(client), Some(t)) = (out.client_upgrade.take(), out.tunnel.take()) {
            let early = rbuf[head.head_len..].to_vec();
            let held = (in_flight, t.start());
            let ends = (out.stall, t.shutdown, out.tunnel_log.take());
            tokio::spawn(tunnel(client, up, early, ends, held));
        }
        return Ok(resp);
    }
    let body = ProxyBody::upstream(
        up,
        rbuf,
        head.head_len,
        head.framing,
        head.keep_alive && whole,
        out.stall,
        in_flight,
        owed,
    )?;
    *resp.body_mut() = body;
    Ok(resp)
}

/// After a `101` or a `2xx` to CONNECT: bytes both ways between the client (once hyper
/// hands its connection, or HTTP/2 stream, over) and the backend, the backend's first
/// bytes (`early`) first, until either side ends it, no byte moves for the idle time,
/// or shutdown begins (`ends`). Held until it ends: the backend's in-flight count and
/// the client connection's busy count. With the access log on, the request's line is
/// written then, with the bytes the tunnel carried (a tunnel that never opened drops
/// `log`, and the line is written as the entry comes, or goes).
async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    mut up: Upstream<Arc<BackendState>>,
    early: Vec<u8>,
    (idle, shutdown, log): (Duration, Shutdown, Option<TunnelLog>),
    _held: (InFlight, TunnelGuard),
) {
    let c = match client.await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade failed");
            return;
        }
    };
    let mut c = hyper_util::rt::TokioIo::new(c);
    if c.write_all(&early).await.is_err() {
        return;
    }
    let mut carried = crate::proxy::tunnel::relay(&mut c, &mut up.stream, idle, &shutdown).await;
    carried.to_client += early.len() as u64;
    // The service hands the entry over as soon as the answer is made, before hyper
    // sends it, so it is here (or gone with the request) long before the tunnel ends.
    if let Some(rx) = log {
        if let Ok(entry) = rx.await {
            entry.tunnel_ended(carried);
        }
    }
}
