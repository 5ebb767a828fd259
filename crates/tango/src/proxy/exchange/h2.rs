//! The tries of a request at a pool whose backends speak HTTP/2 (`protocol = "h2"`),
//! for either client side: a stream lent from the backend's connection set
//! (`upstream::h2pool`), the request head sent on it, the response head awaited
//! within the try's time, and each way's failure told to the retry machine as the
//! HTTP/1 exchange tells it. For hyper's requests the body goes into the stream and the
//! answer comes back frame by frame with their trailers (`body::h2_stream`), so gRPC
//! streams both ways at once.

use super::forward::Outgoing;
use super::{HeadFail, Missed, Target, Tries};
use crate::proxy::body::h2_stream::{H2Body, Pump};
use crate::proxy::body::ProxyBody;
use crate::proxy::error::ProxyError;
use crate::runtime::{PoolRuntime, Runtime};
use crate::upstream::h2pool::{self, Stream};
use crate::upstream::{self, ConnectError};
use ::h2::client::ResponseFuture;
use ::h2::{Reason, SendStream};
use bytes::Bytes;
use http::header::{CONNECTION, HOST, TE, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, Uri};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;
use tango_core::retry::{Failure, Outcome};
use tokio::time::Instant;

/// The client asked for trailers (`te: trailers`): the one `te` HTTP/2 carries, and
/// gRPC's way to say it reads them.
pub(crate) fn te_trailers(h: &HeaderMap) -> bool {
    h.get_all(TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("trailers")
        })
}

/// A stream at backend `i` of `pool` within `remaining`: a failed connect is counted
/// and logged as the HTTP/1 exchange's are.
pub(crate) async fn open(
    rt: &Runtime,
    pool: &PoolRuntime,
    i: usize,
    remaining: Duration,
) -> Result<Stream, Outcome> {
    let bcfg = &pool.cfg.backends[i];
    let b = &pool.backends[i];
    let limits = upstream::Limits {
        connect_timeout: pool.cfg.connect_timeout.min(remaining),
        max_idle: pool.cfg.idle_timeout,
        max_connections: bcfg.max_connections,
    };
    match h2pool::checkout(&b.conns, &b.address, &pool.dial, limits).await {
        Ok(s) => Ok(s),
        Err(ConnectError::AtCapacity) => Err(Outcome::NotSent(Failure::AtCapacity)),
        // Nothing was sent, and the backend is fine: try again, by the protocol it chose.
        Err(ConnectError::Chose(_)) => Err(Outcome::Stale),
        Err(e) => Err(connect_failed(rt, pool, i, &e)),
    }
}

fn connect_failed(rt: &Runtime, pool: &PoolRuntime, i: usize, e: &ConnectError) -> Outcome {
    let name = &pool.cfg.backends[i].name;
    upstream::connect_failed(
        &pool.backends[i].conns,
        &pool.cfg.name,
        name,
        e,
        rt.now_ms(),
    );
    crate::proxy::accounting::record(rt, pool, i, None, None);
    Outcome::NotSent(Failure::Connect)
}

/// Send the request head on `stream` (`end`: it has no body). Nothing reaches the
/// backend when this fails: the connection had gone away (GOAWAY, closed), which is a
/// stale connection, or a failed connect when it was opened for this request.
pub(crate) async fn start(
    rt: &Runtime,
    pool: &PoolRuntime,
    i: usize,
    stream: &mut Stream,
    req: Request<()>,
    end: bool,
) -> Result<(ResponseFuture, SendStream<Bytes>), Outcome> {
    let sent = match std::future::poll_fn(|cx| stream.send.poll_ready(cx)).await {
        Ok(()) => stream.send.send_request(req, end),
        Err(e) => Err(e),
    };
    sent.map_err(|e| {
        if e.is_io() || e.is_go_away() || e.reason().is_some() {
            stream.connection_failed();
        }
        tracing::debug!(error = %e, "HTTP/2 request not sent");
        if stream.fresh {
            connect_failed(rt, pool, i, &ConnectError::Io(std::io::Error::other(e)))
        } else {
            Outcome::Stale
        }
    })
}

/// The final response head of a stream, the interim (1xx) heads before it counted. h2
/// queues each interim head for the caller ([`ResponseFuture::poll_informational`])
/// and skips it unseen when asked for the final one, so a backend that kept sending
/// them would hold the try until `try_timeout`: past [`super::MAX_INTERIM`] the answer
/// is invalid, as on the HTTP/1 path. They are counted, not passed on.
pub(crate) struct FinalHead {
    response: ResponseFuture,
    interim: u32,
}

/// Why a stream brought no final response head.
pub(crate) enum HeadErr {
    H2(::h2::Error),
    /// More than [`super::MAX_INTERIM`] interim heads.
    Interim,
}

impl FinalHead {
    pub(crate) fn new(response: ResponseFuture) -> FinalHead {
        FinalHead {
            response,
            interim: 0,
        }
    }
}

impl Future for FinalHead {
    type Output = Result<Response<::h2::RecvStream>, HeadErr>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        // Pending here means nothing is queued, so the final head is not in either.
        loop {
            match this.response.poll_informational(cx) {
                Poll::Ready(Some(Ok(_))) => {
                    if super::count_interim(&mut this.interim).is_err() {
                        return Poll::Ready(Err(HeadErr::Interim));
                    }
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(HeadErr::H2(e))),
                Poll::Ready(None) => break,
                Poll::Pending => return Poll::Pending,
            }
        }
        Pin::new(&mut this.response).poll(cx).map_err(HeadErr::H2)
    }
}

/// How a stream that brought no final head ended (`e`), counted for backend `i`, as
/// [`failed`] says, or as an invalid answer for too many interim heads (dropping the
/// stream resets it).
pub(crate) fn head_failed(
    rt: &Runtime,
    pool: &PoolRuntime,
    i: usize,
    stream: &Stream,
    took: Duration,
    e: &HeadErr,
    resendable: bool,
) -> Outcome {
    match e {
        HeadErr::H2(e) => failed(rt, pool, i, stream, took, e, resendable),
        HeadErr::Interim => super::failed_after_send(rt, pool, i, took, &HeadFail::Interim, false),
    }
}

/// How a stream that brought no response head ended, counted for backend `i`.
/// `resendable`: the request can be made again from what is kept (its body, if any,
/// was not taken). A stream the backend refused (REFUSED_STREAM), or one past the last
/// its GOAWAY said it would process, never reached the application (RFC 9113 8.7): it
/// goes to another backend whatever its method.
pub(crate) fn failed(
    rt: &Runtime,
    pool: &PoolRuntime,
    i: usize,
    stream: &Stream,
    took: Duration,
    e: &::h2::Error,
    resendable: bool,
) -> Outcome {
    crate::proxy::accounting::record(rt, pool, i, None, Some(took));
    let unprocessed =
        e.reason() == Some(Reason::REFUSED_STREAM) || (e.is_go_away() && e.is_remote());
    if e.is_io() || e.is_go_away() {
        stream.connection_failed();
    }
    tracing::warn!(pool = %pool.cfg.name, backend = %pool.cfg.backends[i].name, error = %e, "upstream HTTP/2 request failed");
    if unprocessed && resendable {
        Outcome::NotSent(Failure::Reset)
    } else {
        Outcome::SentFailed(Failure::Reset)
    }
}

/// The request's head for an HTTP/2 backend: the target with its authority (the Host,
/// or the backend's address for a request without one), the fields minus Host and the
/// connection-specific ones HTTP/2 forbids, `te: trailers` when the client asked.
pub(crate) fn head(
    method: &Method,
    path: &str,
    authority: Option<&str>,
    address: &str,
    fields: &HeaderMap,
    te: bool,
) -> Result<Request<()>, ProxyError> {
    let uri = Uri::builder()
        .scheme("http")
        .authority(authority.unwrap_or(address))
        .path_and_query(path)
        .build()
        .map_err(|_| ProxyError::BadRequest("invalid target"))?;
    let mut req = Request::new(());
    *req.method_mut() = method.clone();
    *req.uri_mut() = uri;
    *req.version_mut() = http::Version::HTTP_2;
    let h = req.headers_mut();
    h.reserve(fields.len() + 1);
    for (name, value) in fields {
        if !(name == HOST || name == CONNECTION || name == UPGRADE || name == TE) {
            h.append(name.clone(), value.clone());
        }
    }
    if te {
        h.insert(TE, HeaderValue::from_static("trailers"));
    }
    Ok(req)
}

/// Try backends of `pool` until one answers, within `deadline` (hyper's requests).
pub(crate) async fn forward(
    rt: &Runtime,
    pool: &PoolRuntime,
    key: Option<u64>,
    deadline: Instant,
    out: &mut Outgoing,
    te: bool,
    target: &mut Target,
) -> Result<Response<ProxyBody>, ProxyError> {
    if out.method == Method::CONNECT {
        return Err(crate::proxy::error::CONNECT_TO_H2);
    }
    let mut tries = Tries::new(rt, pool, key, deadline, out.resendable);
    let mut now = Instant::now();
    loop {
        let (i, _, remaining) = tries.next(target, now)?;
        match attempt(rt, pool, i, remaining, out, te, target).await {
            Ok(resp) => return Ok(resp),
            Err(Missed::Client(e) | Missed::Broken(e)) => return Err(e),
            Err(Missed::Backend(o)) => tries.failed(o)?,
        }
        now = Instant::now();
    }
}

/// Try backends of `pool` (`protocol = "auto"`) until one answers, within `deadline`:
/// each try by the protocol its backend chose by ALPN, HTTP/1.1 until it is known.
pub(crate) async fn forward_auto(
    rt: &Runtime,
    pool: &PoolRuntime,
    key: Option<u64>,
    deadline: Instant,
    out: &mut Outgoing,
    te: bool,
    target: &mut Target,
) -> Result<Response<ProxyBody>, ProxyError> {
    let mut tries = Tries::new(rt, pool, key, deadline, out.resendable);
    let mut now = Instant::now();
    loop {
        let (i, _, remaining) = tries.next(target, now)?;
        let tried = if pool.backends[i].conns.speaks_h2() {
            if out.method == Method::CONNECT {
                return Err(crate::proxy::error::CONNECT_TO_H2);
            }
            attempt(rt, pool, i, remaining, out, te, target).await
        } else {
            super::forward::attempt(rt, pool, i, remaining, out, target).await
        };
        match tried {
            Ok(resp) => return Ok(resp),
            Err(Missed::Client(e) | Missed::Broken(e)) => return Err(e),
            Err(Missed::Backend(o)) => tries.failed(o)?,
        }
        now = Instant::now();
    }
}

/// One try at backend `i`, with `remaining` of the request's time.
async fn attempt(
    rt: &Runtime,
    pool: &PoolRuntime,
    i: usize,
    remaining: Duration,
    out: &mut Outgoing,
    te: bool,
    target: &mut Target,
) -> Result<Response<ProxyBody>, Missed> {
    let backend = pool.backends[i].clone();
    let authority = out.headers.get(HOST).and_then(|h| h.to_str().ok());
    let path = out.uri.path_and_query().map_or("/", |p| p.as_str());
    // A Host that is no authority (`:authority` must be one) is the request's mistake,
    // as on the engine's path: `400`, not a backend's failure.
    let req = head(
        &out.method,
        path,
        authority,
        &backend.address,
        &out.headers,
        te,
    )
    .map_err(Missed::Client)?;
    let in_flight = super::reserve(pool, i, target.load_cap, backend)?;
    let mut stream = open(rt, pool, i, remaining).await?;
    let sent_at = Instant::now();
    let deadline = sent_at + remaining.min(pool.cfg.try_timeout);
    let (response, send) = start(rt, pool, i, &mut stream, req, out.body.is_none()).await?;
    let mut response = FinalHead::new(response);
    let had_body = out.body.is_some();
    let mut pump = out
        .body
        .take()
        .map(|b| Pump::new(b, send, out.framing.length(), out.counted.clone()));
    let mut client_broke = false;
    let got = tokio::time::timeout_at(
        deadline,
        std::future::poll_fn(|cx| {
            if let Some(p) = &mut pump {
                if let Poll::Ready(r) = p.poll(cx) {
                    // Not `client_at_fault`: a pump that failed with nothing pending
                    // may have failed on the stream (the backend's reset).
                    client_broke = r.is_err() && p.client_broke();
                    pump = None;
                }
            }
            Pin::new(&mut response).poll(cx)
        }),
    )
    .await;
    let took = sent_at.elapsed();
    target.upstream = Some(took);
    let resp = match got {
        Ok(Ok(resp)) => resp,
        // The stream was reset because the client's body broke off: not the backend's.
        Ok(Err(_)) if client_broke => {
            return Err(Missed::Client(ProxyError::BadRequest(
                "the request body broke off",
            )))
        }
        Ok(Err(e)) => return Err(head_failed(rt, pool, i, &stream, took, &e, !had_body).into()),
        // Still waiting for the client's body: the backend was waiting for it too.
        Err(_) if pump.as_ref().is_some_and(Pump::client_at_fault) => {
            if let Some(p) = pump.as_mut() {
                p.cancel();
            }
            return Err(Missed::Client(ProxyError::ClientTimeout));
        }
        Err(_) => {
            crate::proxy::accounting::record(rt, pool, i, None, Some(took));
            return Err(Outcome::TimedOut.into());
        }
    };
    let status = resp.status();
    crate::proxy::accounting::record(rt, pool, i, Some(status.as_u16()), Some(took));
    let owed = out.ledger.take().and_then(|l| l.owe(i, status.as_u16()));
    let (parts, recv) = resp.into_parts();
    let body = H2Body::new(recv, pump, out.stall, (stream, in_flight), owed);
    let mut r = Response::new(ProxyBody::H2(Box::new(body)));
    *r.status_mut() = status;
    *r.headers_mut() = parts.headers;
    Ok(r)
}
