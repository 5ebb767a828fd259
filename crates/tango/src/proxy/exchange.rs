//! The upstream side of a request, shared by every client protocol: the tries at the
//! pool's backends as tango-core's retry machine directs them, a connection for each
//! try from the backend's pool of bare sockets (with the in-flight count, the
//! `max_connections` cap and the rate-limited log of failed connects), and the
//! response head read back with tango-core's HTTP/1.1 codec.
//!
//! What goes out on a try differs by client protocol (the engine forwards the head it
//! parsed, hyper's requests are written from their header map), so the caller passes
//! the try itself to [`tries`].

pub(crate) mod early;
pub(crate) mod forward;
pub(crate) mod h2;
pub(crate) mod send;
pub(crate) mod stream;

use super::error::ProxyError;
use super::h1::io::{self, Limit};
use crate::runtime::{Full, InFlight, PoolRuntime, Runtime};
use crate::upstream::{self, ConnectError, Origin, PoolRef, Upstream};
use std::future::Future;
use std::task::Poll;
use std::time::Duration;
use tango_core::http1::codec::{parse_response_into, HeadError, RequestFacts, ResponseHead};
use tango_core::http1::head_may_end;
use tango_core::policy::Pick;
use tango_core::retry::{Failure, Outcome, Retry, Send, Step};
use tokio::time::Instant;

/// The largest response head taken from a backend (hyper's client allowed as much).
pub(crate) const MAX_RESPONSE_HEAD: usize = 8192 + 4096 * 100;

/// Where a request went: pool and backend indexes into the snapshot it used, how many
/// backends were tried, and the last one's time to its response head.
#[derive(Default, Clone, Copy, Debug)]
pub(crate) struct Target {
    pub(crate) pool: Option<usize>,
    pub(crate) backend: Option<usize>,
    /// The bounded-load cap the pick held `backend` to (hash pools with
    /// `max_load_factor`): the try counts the request in only while it holds fewer.
    pub(crate) load_cap: Option<u64>,
    pub(crate) tries: u32,
    pub(crate) upstream: Option<Duration>,
    /// The HTTP/1.1 engine: the status of the backend's answer once its head is in (0
    /// before), which a request cut while that answer is sent is logged with.
    pub(crate) status: u16,
}

/// How a try of a request that hyper's server parsed ended without a response.
pub(crate) enum Missed {
    /// The backend failed it (or its pooled connection was stale): the retry machine
    /// decides what follows.
    Backend(Outcome),
    /// The client did: its body stalled past the try's time, or broke off. The request
    /// ends with this error and the backend is not charged, since it was waiting for
    /// the body.
    Client(ProxyError),
    /// The backend answered (the try is counted with the answer's status), but the
    /// answer cannot be forwarded: its chunked body broke in the bytes that came with
    /// the head. The request ends with this error, not tried again: the backend had
    /// the request and answered it.
    Broken(ProxyError),
}

impl From<Outcome> for Missed {
    fn from(o: Outcome) -> Self {
        Missed::Backend(o)
    }
}

impl From<Failure> for ProxyError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::NoneEligible => ProxyError::NoneEligible,
            Failure::AtCapacity => ProxyError::AtCapacity,
            Failure::Connect => ProxyError::Connect,
            Failure::Reset => ProxyError::Reset,
            Failure::BadResponse => ProxyError::BadResponse,
            Failure::Timeout => ProxyError::Timeout,
        }
    }
}

/// The tries of one request at its pool's backends, as the retry machine directs them.
/// The caller loops: [`Tries::next`] names the backend to try (or the error to answer
/// with), the caller makes the try, and a failed try goes to [`Tries::failed`].
pub(crate) struct Tries<'a> {
    rt: &'a Runtime,
    pool: &'a PoolRuntime,
    key: Option<u64>,
    deadline: Instant,
    retry: Retry,
    /// The last try found its backend over-loaded: it was no try, and the next pick
    /// takes its place in the count.
    over_loaded: bool,
}

impl<'a> Tries<'a> {
    /// `deadline` bounds every try together; `resendable`: the request may be sent
    /// twice (idempotent, no body, no upgrade).
    pub(crate) fn new(
        rt: &'a Runtime,
        pool: &'a PoolRuntime,
        key: Option<u64>,
        deadline: Instant,
        resendable: bool,
    ) -> Self {
        pool.retry_budget.deposit(pool.cfg.retry_budget);
        Tries {
            rt,
            pool,
            key,
            deadline,
            retry: Retry::new(pool.cfg.max_attempts, resendable),
            over_loaded: false,
        }
    }

    /// The backend to try next, how, and the time left for it; `Err`: stop, answering
    /// with this error. `now` is the time (the caller may have it at hand). The backend
    /// and the bounded-load cap its pick holds it to go in `target`, for [`reserve`].
    pub(crate) fn next(
        &mut self,
        target: &mut Target,
        now: Instant,
    ) -> Result<(usize, Send, Duration), ProxyError> {
        let placed = super::keys::pick(self.rt, self.pool, self.key, self.retry.tried());
        let i = match placed.pick {
            Pick::Backend(i) => i,
            Pick::MissingKey => return Err(ProxyError::MissingKey),
            Pick::NoneEligible => {
                return Err(match self.retry.none_eligible() {
                    // Nothing tried and nothing eligible: say so when caps are the reason.
                    Failure::NoneEligible if super::keys::full(self.pool, self.retry.tried()) => {
                        ProxyError::AtCapacity
                    }
                    f => f.into(),
                });
            }
        };
        target.backend = Some(i);
        target.load_cap = placed.cap;
        let remaining = self.deadline.saturating_duration_since(now);
        if remaining.is_zero() {
            return Err(self.retry.out_of_time().into());
        }
        let send = self.retry.send(i);
        // A re-send of a request a backend already received spends the budget; one
        // that never left tango adds no load and costs nothing.
        if send.spend_budget && !self.pool.retry_budget.try_withdraw() {
            return Err(self.retry.budget_refused().into());
        }
        if !std::mem::take(&mut self.over_loaded) {
            target.tries += 1;
        }
        target.upstream = None;
        Ok((i, send, remaining))
    }

    /// The try failed this way: `Ok` to try again, `Err` to answer with the error.
    pub(crate) fn failed(&mut self, o: Outcome) -> Result<(), ProxyError> {
        self.over_loaded = o == Outcome::OverLoaded;
        match self.retry.record(o) {
            Step::Pick => Ok(()),
            Step::GiveUp(f) => Err(f.into()),
        }
    }
}

/// Backend `i` of `pool` (reached through `backend`) takes this try in: counted in its
/// in-flight requests, or `NotSent(AtCapacity)` when it is at its `max_in_flight`, or
/// `OverLoaded` when it holds `load_cap`, the bounded-load cap its pick computed
/// ([`Target::load_cap`]): the retry machine then has the request picked again, at no
/// cost, with the counts as they are now.
pub(crate) fn reserve<P: std::ops::Deref<Target = crate::runtime::BackendState>>(
    pool: &PoolRuntime,
    i: usize,
    load_cap: Option<u64>,
    backend: P,
) -> Result<InFlight<P>, Outcome> {
    InFlight::reserve(backend, pool.cfg.backends[i].max_in_flight, load_cap).map_err(|full| {
        match full {
            Full::MaxInFlight => Outcome::NotSent(Failure::AtCapacity),
            Full::LoadCap => Outcome::OverLoaded,
        }
    })
}

/// A connection to backend `i` of `pool` (`conns` reaches its connection pool) for a
/// request from `origin`, within `remaining` of `now`. A failed TLS handshake fails
/// like a failed connect.
pub(crate) async fn connect<P: PoolRef>(
    rt: &Runtime,
    pool: &PoolRuntime,
    i: usize,
    conns: P,
    origin: &Origin,
    remaining: Duration,
    now: Instant,
) -> Result<Upstream<P>, Outcome> {
    let bcfg = &pool.cfg.backends[i];
    let b = &pool.backends[i];
    let limits = upstream::Limits {
        connect_timeout: pool.cfg.connect_timeout.min(remaining),
        max_idle: pool.cfg.idle_timeout,
        max_connections: bcfg.max_connections,
    };
    match upstream::checkout_socket(conns, &b.address, limits, &pool.dial, origin, now).await {
        Ok(up) => Ok(up),
        Err(ConnectError::AtCapacity) => Err(Outcome::NotSent(Failure::AtCapacity)),
        // Nothing was sent, and the backend is fine: try again, by the protocol it chose.
        Err(ConnectError::Chose(_)) => Err(Outcome::Stale),
        Err(e) => {
            upstream::connect_failed(&b.conns, &pool.cfg.name, &bcfg.name, &e, rt.now_ms());
            super::accounting::record(rt, pool, i, None, None);
            Err(Outcome::NotSent(Failure::Connect))
        }
    }
}

/// The most interim (1xx) answers one try takes before its final answer. A backend
/// sends one or two (a `100 Continue`, a `103 Early Hints`, now and then a `102`); one
/// that kept sending them would hold the try, its in-flight place and its connection
/// until `try_timeout`, each of them passed on to the client (a few bytes of the
/// backend's making a head tango writes out). Past this many the answer is invalid, as
/// any answer tango does not forward is, and the backend is charged for it.
pub(crate) const MAX_INTERIM: u32 = 32;

/// Why no response head came back.
pub(crate) enum HeadFail {
    /// Not within the try's time.
    Timeout,
    /// The backend closed or reset the connection after sending part of a response.
    Closed,
    /// The backend closed or reset the connection without a byte of a response: on a
    /// pooled connection, a close while it was idle may have crossed the request.
    Silent,
    /// What came back is not a response head tango forwards.
    Bad(HeadError),
    /// More than [`MAX_INTERIM`] interim answers came before a final one.
    Interim,
    /// The client closed its connection while the answer was awaited: the request is
    /// the client's to end, not the backend's failure.
    ClientGone,
}

impl HeadFail {
    /// The connection ended with `got` read of a response.
    fn closed(got: &[u8]) -> HeadFail {
        if got.is_empty() {
            HeadFail::Silent
        } else {
            HeadFail::Closed
        }
    }

    /// After an interim answer came, a close is no longer silent.
    pub(crate) fn after_interim(self) -> HeadFail {
        match self {
            HeadFail::Silent => HeadFail::Closed,
            other => other,
        }
    }
}

/// One more interim answer of a try, `seen` counting them: `Err` past
/// [`MAX_INTERIM`].
pub(crate) fn count_interim(seen: &mut u32) -> Result<(), HeadFail> {
    *seen += 1;
    if *seen > MAX_INTERIM {
        return Err(HeadFail::Interim);
    }
    Ok(())
}

impl std::fmt::Display for HeadFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadFail::Timeout => f.write_str("no response head in time"),
            HeadFail::Closed => f.write_str("the connection closed before a response head"),
            HeadFail::Silent => f.write_str("the connection closed before a response"),
            HeadFail::Bad(e) => write!(f, "an invalid response head ({e:?})"),
            HeadFail::Interim => write!(f, "more than {MAX_INTERIM} interim answers"),
            HeadFail::ClientGone => f.write_str("the client left before a response head"),
        }
    }
}

/// How long a backend may keep a response head waiting before the client's
/// connection is watched for the client leaving. Answers quicker than this (nearly
/// all) pay nothing for the watch: the read's one timer is set to this instead of the
/// try's deadline.
pub(crate) const WATCH_CLIENT_AFTER: Duration = Duration::from_millis(250);

/// Read a response head into `rbuf` (which may already hold its start), as the answer
/// to a request described by `facts`. The head is at the start of `rbuf`; what follows
/// it is body. Boxed: it is a few hundred bytes, moved through several futures.
///
/// `client`: the client's connection, when the caller owns it (the HTTP/1.1 engine),
/// and when to start watching it: [`WATCH_CLIENT_AFTER`] past the moment the request
/// went, which the caller has read the clock for already. A backend that keeps the
/// head waiting past then while the client
/// closes its connection ends the try as [`HeadFail::ClientGone`], as nginx and Envoy
/// end it: otherwise the request held its in-flight place (and `max_in_flight`), and
/// the backend its connection, until `try_timeout`, and clients retrying a stuck
/// backend piled their abandoned requests on it.
pub(crate) async fn read_response_head(
    s: &mut upstream::Stream,
    rbuf: &mut Vec<u8>,
    facts: RequestFacts,
    deadline: Instant,
    timer: &mut io::Timer<'_>,
    client: Option<(&tokio::net::TcpStream, Instant)>,
) -> Result<Box<ResponseHead>, HeadFail> {
    // Parsed again only once its end may have come: a backend trickling a head costs
    // linear work.
    let mut scanned = 0;
    // Parsed in place into a pooled box: the head is never copied whole.
    let mut head = super::bufpool::fresh::<ResponseHead>();
    let mut watch = client.map_or(Watch::Off, |(_, from)| Watch::From(from));
    loop {
        let may_end = scanned == 0 || head_may_end(rbuf, scanned);
        if !rbuf.is_empty() && (may_end || rbuf.len() >= MAX_RESPONSE_HEAD) {
            match parse_response_into(rbuf, MAX_RESPONSE_HEAD, facts, &mut head) {
                Ok(true) => return Ok(head),
                Ok(false) => {}
                Err(e) => return Err(HeadFail::Bad(e)),
            }
        }
        scanned = rbuf.len();
        // A full buffer without a whole head: a larger one (parsing stops at
        // MAX_RESPONSE_HEAD).
        io::grow_if_full(rbuf);
        let read = match (watch, client) {
            (Watch::From(at), _) => {
                stream::read(s, rbuf, Limit::Until(at.min(deadline)), timer).await
            }
            (Watch::Now, Some((c, _))) => {
                match read_or_client_left(s, rbuf, deadline, timer, c).await {
                    Some(r) => r,
                    None => return Err(HeadFail::ClientGone),
                }
            }
            _ => stream::read(s, rbuf, Limit::Until(deadline), timer).await,
        };
        match read {
            Ok(0) => return Err(HeadFail::closed(rbuf)),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                if !matches!(watch, Watch::From(at) if at < deadline) {
                    return Err(HeadFail::Timeout);
                }
                watch = Watch::Now;
            }
            Err(_) => return Err(HeadFail::closed(rbuf)),
        }
    }
}

/// `head` (a try's wait for its response head, on the HTTP/1.1 engine's way to an
/// HTTP/2 backend) within `deadline`, or `None` when the client closed its connection
/// first: watched from `watch_from` on, as [`read_response_head`] watches it.
pub(crate) async fn head_unless_client_left<F: Future>(
    head: F,
    deadline: Instant,
    (client, watch_from): (&tokio::net::TcpStream, Instant),
) -> Option<Result<F::Output, tokio::time::error::Elapsed>> {
    let mut head = std::pin::pin!(head);
    match tokio::time::timeout_at(watch_from.min(deadline), head.as_mut()).await {
        Ok(v) => return Some(Ok(v)),
        Err(e) if watch_from >= deadline => return Some(Err(e)),
        Err(_) => {}
    }
    let watched = unless_client_left(head, client);
    match tokio::time::timeout_at(deadline, watched).await {
        Ok(Some(v)) => Some(Ok(v)),
        Ok(None) => None,
        Err(e) => Some(Err(e)),
    }
}

/// Whether the client closed (or reset) its connection: `Ready(false)` when it sent
/// bytes instead (a pipelined request), which are left for the engine to read and
/// after which a close cannot be seen without reading them.
fn client_left(client: &tokio::net::TcpStream, cx: &mut std::task::Context<'_>) -> Poll<bool> {
    let mut byte = [0u8; 1];
    let mut b = tokio::io::ReadBuf::new(&mut byte);
    match client.poll_peek(cx, &mut b) {
        Poll::Ready(Ok(0) | Err(_)) => Poll::Ready(true),
        Poll::Ready(Ok(_)) => Poll::Ready(false),
        Poll::Pending => Poll::Pending,
    }
}

/// Whether a head read watches the client's connection.
#[derive(Clone, Copy)]
enum Watch {
    Off,
    /// From this moment on.
    From(Instant),
    Now,
}

/// A read of the backend's answer, or `None` when the client closed its connection
/// (or reset it) first.
async fn read_or_client_left(
    s: &mut upstream::Stream,
    rbuf: &mut Vec<u8>,
    deadline: Instant,
    timer: &mut io::Timer<'_>,
    c: &tokio::net::TcpStream,
) -> Option<std::io::Result<usize>> {
    let read = stream::read(s, rbuf, Limit::Until(deadline), timer);
    unless_client_left(std::pin::pin!(read), c).await
}

/// `fut`'s output, or `None` when the client closed its connection (or reset it)
/// first. Bytes the client sends meanwhile (a pipelined request) are left for the
/// engine, and `fut` goes on unwatched, since a close behind them cannot be seen
/// without reading them.
async fn unless_client_left<F: Future + Unpin>(
    mut fut: F,
    client: &tokio::net::TcpStream,
) -> Option<F::Output> {
    let mut watching = true;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = std::pin::Pin::new(&mut fut).poll(cx) {
            return Poll::Ready(Some(v));
        }
        match watching.then(|| client_left(client, cx)) {
            Some(Poll::Ready(true)) => Poll::Ready(None),
            Some(Poll::Ready(false)) => {
                watching = false;
                Poll::Pending
            }
            _ => Poll::Pending,
        }
    })
    .await
}

/// Count a try that sent its request and got no response back, and say how it ended.
///
/// `pooled_resendable`: the connection came from the pool and the request may be sent
/// twice. Such a connection closed without a byte of an answer was most likely closed
/// by the backend while idle, its close crossing the request on the wire (a backend's
/// idle timeout a little shorter than the pool's): the try is stale, not the backend's
/// failure, and the request goes again on another connection, as nginx and Go's
/// client send it again. A request that may not be sent twice is not: the backend may
/// have acted on it.
pub(crate) fn failed_after_send(
    rt: &Runtime,
    pool: &PoolRuntime,
    i: usize,
    took: Duration,
    why: &HeadFail,
    pooled_resendable: bool,
) -> Outcome {
    if pooled_resendable && matches!(why, HeadFail::Silent) {
        return Outcome::Stale;
    }
    if matches!(why, HeadFail::ClientGone) {
        // The client's doing, not the backend's: nothing is counted against it, and
        // the request is not sent again (the backend may be working on it).
        return Outcome::TimedOut;
    }
    super::accounting::record(rt, pool, i, None, Some(took));
    let failure = match why {
        HeadFail::Timeout => return Outcome::TimedOut,
        HeadFail::Closed | HeadFail::Silent => Failure::Reset,
        HeadFail::Bad(_) | HeadFail::Interim => Failure::BadResponse,
        HeadFail::ClientGone => return Outcome::TimedOut,
    };
    tracing::warn!(pool = %pool.cfg.name, backend = %pool.cfg.backends[i].name, error = %why, "upstream request failed");
    Outcome::SentFailed(failure)
}
