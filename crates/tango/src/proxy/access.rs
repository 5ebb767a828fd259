//! The access log: one line per request, written when the response has gone to the
//! client whole (or the client went away), in a combined-style text format or as JSON.
//!
//! A request's head is noted when it arrives (`Entry::start`); where it went, its
//! status, tries and upstream time are added when the response head is ready
//! (`Entry::finish`); the response body is then wrapped (`Logged`) to count the bytes
//! sent, and the line is written when that body is dropped, so `total_ms` and
//! `bytes_out` cover the whole response as nginx's `$request_time` and `$bytes_sent`
//! do. Lines go to a buffered sink (`sink`), flushed four times a second and reopened
//! on SIGUSR1 for logrotate. Nothing here runs when the access log is off.

mod format;
mod sink;

pub(crate) use sink::Sink;

use super::body::ProxyBody;
use super::service::ConnCtx;
use crate::runtime::Snapshot;
use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, Request, Version};
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The access log's line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum AccessFormat {
    /// nginx's `combined` format, then tango's fields as `key=value`: readable by the
    /// tools that read web server logs (and by `tango simulate --access-log`).
    Combined,
    /// One JSON object per line.
    Json,
}

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

    fn write(&self, e: &Entry, bytes_out: u64) {
        let line = format::line(self.format, e, bytes_out, std::time::SystemTime::now());
        self.sink.push(&line);
    }
}

/// One request, from its arrival to its last byte.
pub(crate) struct Entry {
    log: Arc<AccessLog>,
    ctx: Arc<ConnCtx>,
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

impl Entry {
    /// Note what the access log needs from a request's head. `None` when it is off.
    pub(crate) fn start<B: Body>(
        ctx: &Arc<ConnCtx>,
        req: &Request<B>,
        request_id: &HeaderValue,
    ) -> Option<Entry> {
        let log = ctx.access_log.clone()?;
        let h = req.headers();
        Some(Entry {
            log,
            ctx: ctx.clone(),
            start: Instant::now(),
            method: req.method().clone(),
            target: req.uri().path_and_query().cloned(),
            version: req.version(),
            host: h.get(http::header::HOST).cloned().or_else(|| {
                req.uri()
                    .authority()
                    .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            }),
            user_agent: h.get(http::header::USER_AGENT).cloned(),
            referer: h.get(http::header::REFERER).cloned(),
            request_id: request_id.clone(),
            bytes_in: (!req.body().is_end_stream()).then(|| Arc::new(AtomicU64::new(0))),
            status: 0,
            routed: None,
            tries: 0,
            upstream: None,
        })
    }

    /// The counter the request body adds to as it is read, when it has one.
    pub(crate) fn bytes_in(&self) -> Option<Arc<AtomicU64>> {
        self.bytes_in.clone()
    }

    /// Record the outcome and wrap the response body; the line is written when the
    /// body is done.
    pub(crate) fn finish(mut self, snap: &Arc<Snapshot>, o: Outcome, body: ProxyBody) -> ProxyBody {
        self.status = o.status;
        self.routed = o.pool.map(|p| (snap.clone(), p, o.backend));
        self.tries = o.tries;
        self.upstream = o.upstream;
        ProxyBody::Logged(Box::new(Logged {
            body,
            entry: self,
            sent: 0,
        }))
    }
}

/// A response body that counts what it sends and writes the access log line when
/// dropped: hyper drops it once it is sent whole, or when the client goes away.
pub(crate) struct Logged {
    body: ProxyBody,
    entry: Entry,
    sent: u64,
}

impl Drop for Logged {
    fn drop(&mut self) {
        self.entry.log.write(&self.entry, self.sent);
    }
}

impl Logged {
    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let r = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &r {
            if let Some(d) = f.data_ref() {
                self.sent += d.len() as u64;
            }
        }
        r
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    pub(crate) fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
