//! The access log: one line per request, written when the response has gone to the
//! client whole (or the client went away), in a combined-style text format or as JSON.
//!
//! A request's head is noted when it arrives (`AccessLog::entry`); where it went, its
//! status, tries and upstream time are added when the response head is ready
//! (`Entry::finish`); the response body is then wrapped (`Logged`) to count the bytes
//! sent, and the line is written when that body is dropped, so `total_ms` and
//! `bytes_out` cover the whole response as nginx's `$request_time` and `$bytes_sent`
//! do. The line is written when the entry is dropped, so a request cut before its
//! response is done (the drain's grace ran out, or a second signal ended it) still gets
//! one, with what was known by then (`Pending` keeps that for the HTTP/1.1 engine).
//! A request that opens a tunnel (a `101`, or a `2xx` to CONNECT) has its line written
//! when the tunnel ends, on every path: `bytes_in` and `bytes_out` count what the
//! tunnel carried each way, `total_ms` its whole life, as nginx logs a WebSocket
//! (hyper's side hands the entry to the tunnel's task, `TunnelLog`).
//! The line's format is `format`'s; lines go to a buffered sink (`sink`), flushed
//! four times a second and reopened on SIGUSR1 for logrotate. Nothing here runs when the
//! access log is off.

mod format;
mod sink;

pub(crate) use format::AccessFormat;
pub(crate) use sink::Sink;

use super::body::ProxyBody;
use super::exchange::Target;
use super::tunnel::Carried;
use crate::runtime::Snapshot;
use bytes::Bytes;
use format::{protocol, text, Fields, Ms};
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, Request, Version};
use http_body::{Body, Frame, SizeHint};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tango_core::config::Listener;

/// Where access log lines go and in which format.
pub(crate) struct AccessLog {
    format: AccessFormat,
    sink: Sink,
}

impl AccessLog {
    /// `None` (or `-`) writes to stderr; a path is opened for appending.
    pub(crate) fn open(
        path: Option<&std::path::Path>,
        format: AccessFormat,
    ) -> std::io::Result<Arc<Self>> {
        let path = path.filter(|p| p.as_os_str() != "-");
        Ok(Arc::new(AccessLog {
            format,
            sink: Sink::open(path.map(|p| p.to_path_buf()))?,
        }))
    }

    /// Write buffered lines out now (at shutdown, and from `upkeep`).
    pub(crate) fn flush(&self) {
        self.sink.flush();
    }

    /// Reopen the file (after logrotate moved it); lines go to the new file from now on.
    pub(crate) fn reopen(&self) {
        match self.sink.reopen() {
            Ok(Some(path)) => tracing::info!(path = %path.display(), "access log reopened"),
            Ok(None) => tracing::info!("the access log goes to stderr: nothing to reopen"),
            Err(e) => {
                tracing::error!(error = %e, "cannot reopen the access log; writing to the old file")
            }
        }
    }

    /// Flush every 250 ms, so lines are on disk soon after their requests without a
    /// write per request.
    pub(crate) async fn upkeep(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.flush();
        }
    }

    fn write(&self, e: &Entry) {
        let now = std::time::SystemTime::now();
        let line = format::render(self.format, &e.fields(e.bytes_out, now));
        self.sink.push(&line);
    }

    /// Note what the access log needs from a request's head, as it arrives on a
    /// connection of `listener` (its settings when the connection was accepted: the
    /// name it was accepted under) from `peer`.
    pub(crate) fn entry<B: Body>(
        self: &Arc<Self>,
        listener: &Arc<Listener>,
        peer: SocketAddr,
        req: &Request<B>,
        request_id: &HeaderValue,
    ) -> Entry {
        let h = req.headers();
        Entry {
            log: self.clone(),
            listener: listener.clone(),
            peer,
            start: Instant::now(),
            method: req.method().clone(),
            target: req.uri().path_and_query().cloned(),
            version: req.version(),
            // The host the request was routed by, as the engine logs it: an
            // absolute-form target's authority before a Host that differs.
            host: super::headers::request_host(req.uri(), h)
                .and_then(|v| HeaderValue::from_str(v).ok()),
            user_agent: h.get(http::header::USER_AGENT).cloned(),
            referer: h.get(http::header::REFERER).cloned(),
            request_id: request_id.clone(),
            bytes_in: (!req.body().is_end_stream()).then(|| Arc::new(AtomicU64::new(0))),
            bytes_out: 0,
            status: 0,
            routed: None,
            tries: 0,
            upstream: None,
        }
    }
}

impl AccessLog {
    /// [`AccessLog::entry`] from a head's parts (the HTTP/1.1 engine's heads are not
    /// `http::Request`s).
    pub(crate) fn entry_from_parts(
        self: &Arc<Self>,
        listener: &Arc<Listener>,
        peer: SocketAddr,
        head: HeadParts,
    ) -> Entry {
        Entry {
            log: self.clone(),
            listener: listener.clone(),
            peer,
            start: Instant::now(),
            method: head.method,
            target: head.target,
            version: head.version,
            host: head.host,
            user_agent: head.user_agent,
            referer: head.referer,
            request_id: head.request_id,
            bytes_in: head.has_body.then(|| Arc::new(AtomicU64::new(0))),
            bytes_out: 0,
            status: 0,
            routed: None,
            tries: 0,
            upstream: None,
        }
    }
}

/// A request head's fields the access log keeps, however the head was parsed.
pub(crate) struct HeadParts {
    pub(crate) method: Method,
    pub(crate) target: Option<PathAndQuery>,
    pub(crate) version: Version,
    pub(crate) host: Option<HeaderValue>,
    pub(crate) user_agent: Option<HeaderValue>,
    pub(crate) referer: Option<HeaderValue>,
    pub(crate) request_id: HeaderValue,
    pub(crate) has_body: bool,
}

/// One request, from its arrival to its last byte. Its line is written when it is
/// dropped: when the response is done, or when the request is cut.
pub(crate) struct Entry {
    log: Arc<AccessLog>,
    listener: Arc<Listener>,
    peer: SocketAddr,
    start: Instant,
    method: Method,
    target: Option<PathAndQuery>,
    version: Version,
    host: Option<HeaderValue>,
    user_agent: Option<HeaderValue>,
    referer: Option<HeaderValue>,
    request_id: HeaderValue,
    /// Request body bytes read from the client, counted by the body sent upstream;
    /// `None` for a request without a body (most of them), which needs no counter.
    bytes_in: Option<Arc<AtomicU64>>,
    /// Response body bytes sent so far.
    bytes_out: u64,
    /// 0 until the response's status is known.
    status: u16,
    /// The snapshot the request used, with its pool and backend indexes.
    routed: Option<(Arc<Snapshot>, usize, Option<usize>)>,
    tries: u32,
    upstream: Option<Duration>,
}

/// Where a request went, as the service knows it when the response head is ready.
pub(crate) struct Outcome {
    pub(crate) status: u16,
    pub(crate) pool: Option<usize>,
    pub(crate) backend: Option<usize>,
    pub(crate) tries: u32,
    pub(crate) upstream: Option<Duration>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.log.write(self);
    }
}

impl Entry {
    /// Write the line now: the response has gone out (`bytes_out` body bytes of it), or
    /// the client went away.
    pub(crate) fn write_now(mut self, snap: &Arc<Snapshot>, o: Outcome, bytes_out: u64) {
        self.record(snap, o);
        self.bytes_out = bytes_out;
        // Dropped here, which writes the line.
    }

    fn record(&mut self, snap: &Arc<Snapshot>, o: Outcome) {
        self.status = o.status;
        self.routed = o.pool.map(|p| (snap.clone(), p, o.backend));
        self.tries = o.tries;
        self.upstream = o.upstream;
    }

    /// Set the request body bytes read, counted by the caller (with the bytes a tunnel
    /// the request opened carried from the client).
    pub(crate) fn set_bytes_in(&mut self, n: u64) {
        match &self.bytes_in {
            Some(c) => c.store(n, std::sync::atomic::Ordering::Relaxed),
            // A request without a body that opened a tunnel.
            None if n > 0 => self.bytes_in = Some(Arc::new(AtomicU64::new(n))),
            None => {}
        }
    }

    /// Record the outcome of a request whose answer opens a tunnel: its line waits
    /// for the tunnel's end ([`Entry::tunnel_ended`]).
    pub(crate) fn tunnel_opened(mut self, snap: &Arc<Snapshot>, o: Outcome) -> Entry {
        self.record(snap, o);
        self
    }

    /// The tunnel is over, having carried `c`: the line is written now.
    pub(crate) fn tunnel_ended(mut self, c: Carried) {
        let body = self
            .bytes_in
            .as_ref()
            .map_or(0, |n| n.load(std::sync::atomic::Ordering::Relaxed));
        self.set_bytes_in(body + c.to_upstream);
        self.bytes_out = c.to_client;
        // Dropped here, which writes the line.
    }

    /// Set the response body bytes sent so far (a request cut before its response is
    /// done: the HTTP/1.1 engine counts them as they go).
    pub(crate) fn set_bytes_out(&mut self, n: u64) {
        self.bytes_out = n;
    }

    /// The counter the request body adds to as it is read, when it has one.
    pub(crate) fn bytes_in(&self) -> Option<Arc<AtomicU64>> {
        self.bytes_in.clone()
    }

    /// Record the outcome and wrap the response body; the line is written when the
    /// body is done.
    pub(crate) fn finish(
        mut self,
        snap: &Arc<Snapshot>,
        o: Outcome,
        body: ProxyBody,
    ) -> Box<Logged> {
        self.record(snap, o);
        Box::new(Logged { body, entry: self })
    }

    /// The line's fields, with `bytes_out` sent by `now`.
    fn fields(&self, bytes_out: u64, now: std::time::SystemTime) -> Fields<'_> {
        let routed = self.routed.as_ref().map(|(snap, p, b)| {
            let pool = &snap.pools[*p].cfg;
            let backend = b.map(|b| &pool.backends[b]);
            (
                pool.name.as_str(),
                backend.map(|b| b.name.as_str()),
                backend.map(|b| b.address.as_str()),
            )
        });
        Fields {
            ts: humantime::format_rfc3339_millis(now).to_string(),
            request_id: text(&self.request_id),
            listener: &self.listener.name,
            client: self.peer.ip(),
            client_port: self.peer.port(),
            method: self.method.as_str(),
            path: self.target.as_ref().map_or("", |t| t.path()),
            query: self.target.as_ref().and_then(|t| t.query()),
            protocol: protocol(self.version),
            host: self.host.as_ref().map(text),
            status: self.status,
            bytes_in: self
                .bytes_in
                .as_ref()
                .map_or(0, |c| c.load(std::sync::atomic::Ordering::Relaxed)),
            bytes_out,
            user_agent: self.user_agent.as_ref().map(text),
            referer: self.referer.as_ref().map(text),
            pool: routed.map(|r| r.0),
            backend: routed.and_then(|r| r.1),
            backend_address: routed.and_then(|r| r.2),
            tries: self.tries,
            upstream_ms: self.upstream.map(|d| Ms(d.as_secs_f64() * 1000.0)),
            total_ms: Ms(self.start.elapsed().as_secs_f64() * 1000.0),
        }
    }
}

/// Where a request that may open a tunnel (HTTP/1.1 with `Upgrade`, or CONNECT) on
/// hyper's side gets its entry once its answer opened one: the tunnel's task writes the
/// line when the tunnel ends. Made only with the access log on.
pub(crate) type TunnelLog = tokio::sync::oneshot::Receiver<Entry>;

/// A response body that counts what it sends; its entry writes the access log line
/// when it is dropped: hyper drops it once it is sent whole, or when the client goes
/// away.
pub(crate) struct Logged {
    body: ProxyBody,
    entry: Entry,
}

impl Body for Logged {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &r {
            if let Some(d) = f.data_ref() {
                this.entry.bytes_out += d.len() as u64;
            }
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request's entry as the HTTP/1.1 engine holds it while serving the request, with
/// the snapshot it uses and where it has gone so far. The engine writes the line when
/// the request is done; a request cut before that (its connection's task dropped as the
/// drain ends) is logged when this is dropped, with the status of an answer that had
/// begun (0 if none had), where it went, its tries, and the body bytes the engine had
/// moved each way by then (set on the entry before this is dropped). Without the access
/// log, `entry` is `None` and dropping this costs that check.
pub(crate) struct Pending {
    pub(crate) entry: Option<Box<Entry>>,
    pub(crate) snap: Arc<Snapshot>,
    pub(crate) target: Target,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(e) = self.entry.as_mut() {
            let t = self.target;
            let o = Outcome {
                status: t.status,
                pool: t.pool,
                backend: t.backend,
                tries: t.tries,
                upstream: t.upstream,
            };
            e.record(&self.snap, o);
        }
    }
}
