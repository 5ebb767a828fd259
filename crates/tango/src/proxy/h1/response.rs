//! A backend's response on its way to the client: the head rewritten by tango-core's
//! codec (hop-by-hop fields out, framing decided for this client, Date when missing),
//! then the body as the plan says: as it comes (a length, or chunks followed by
//! `ChunkedTracker`, a trailer section passed with only the fields that may be
//! trailers), framed as chunks (a close-delimited body to a keep-alive client),
//! or until the backend closes. The head and the body bytes that came with it go out in
//! one write; after that each read from the backend is written on before the next, so
//! tango never holds more of a response than one buffer. Chunk framing broken in the
//! bytes that came with the head is found before the head is written, and answered
//! `502` instead; broken later, it cuts the client's connection. A `101` (or a `2xx`
//! to CONNECT) turns the two connections into a tunnel.

use super::body::BodyIn;
use super::io::{self, Limit};
use super::own::{self, For};
use super::sent::Sent;
use super::trailing::Section;
use super::{date, Conn, Next};
use crate::proxy::accounting::{self, BodyEnd};
use crate::proxy::bufpool::{self, Buf};
use crate::proxy::conn_io::ConnIo;
use crate::proxy::error::ProxyError;
use crate::proxy::exchange::stream;
use crate::runtime::{BackendState, InFlight, PoolRuntime};
use crate::upstream::{ConnPool, Upstream};
use std::io::IoSlice;
use tango_core::http1::codec::{
    write_response_head, write_response_head_edited, BodyPlan, ChunkPrefix, ChunkedTracker,
    ClientFacts, Method, RequestHead, ResponseHead, ResponsePlan, Version, LAST_CHUNK,
};
use tango_core::rewrite::Apply;
use tokio::time::Instant;

/// A response head from a backend, with what its body needs.
pub(super) struct Answer<'p> {
    pub(super) up: Upstream<&'p ConnPool>,
    /// The response head at the start, then what came after it.
    pub(super) rbuf: Buf,
    pub(super) head: Box<ResponseHead>,
    /// The pool and backend that answered, for judging the try when its body ends.
    pub(super) pool: &'p PoolRuntime,
    pub(super) backend: usize,
    /// Kept until the response (or tunnel) is over.
    pub(super) in_flight: InFlight<&'p BackendState>,
    /// When the head was in.
    pub(super) at: Instant,
    /// The backend took the whole request (it may answer before it has, and close).
    pub(super) whole: bool,
}

/// Forward the response of `ans` to the client of the request `req` (whose body is
/// `body`), counting the body bytes the kernel takes for the client in `sent` as they
/// go (a write cut short counts what of it went, and no head or framing). Returns
/// what the connection does next, the status the client got (the backend's, or `502`
/// when its body proved unframeable before anything was sent) and how many body bytes
/// the client was sent.
pub(super) async fn forward(
    c: &mut Conn<'_>,
    buf: &mut Buf,
    req: &RequestHead,
    body: &mut BodyIn,
    sent: &mut Sent,
    ans: Answer<'_>,
    edits: Option<&Apply<'_>>,
) -> (Next, u16, u64) {
    let Answer {
        mut up,
        mut rbuf,
        head,
        pool,
        backend,
        in_flight,
        at,
        whole,
    } = ans;
    let client = ClientFacts {
        version: req.version,
        keep_alive: req.keep_alive && body.done() && !c.closing(),
        is_head: req.method == Method::Head,
    };
    let rt = c.ctx.rt.as_ref();
    if head.coded && req.version == Version::Http10 {
        // An HTTP/1.0 response cannot name a transfer coding (RFC 9112 6.1), and the
        // bytes go on as they are: the client would take coded bytes for the body.
        accounting::body_end(rt, pool, backend, head.status, BodyEnd::Backend);
        drop(in_flight);
        bufpool::unbox(head);
        return Box::pin(bad_response(c, req, body, sent, edits)).await;
    }
    // The head for the client goes after what the client's buffer holds (a pipelined
    // request, if anything), and is taken off again once written.
    let mark = buf.len();
    let plan = write_head(buf, &head, &rbuf, client, edits);
    let status = head.status;
    if plan.body == BodyPlan::Tunnel {
        let early = &rbuf[head.head_len..];
        let next = Box::pin(tunnel(c, buf, mark, body, sent, up, early)).await;
        accounting::body_end(rt, pool, backend, head.status, BodyEnd::Whole);
        drop(in_flight);
        return (next, status, sent.total());
    }
    let mut f = Flow {
        c,
        up: &mut up,
        rbuf: &mut rbuf,
        sent,
    };
    let relayed = f.relay(head.head_len, plan.body, &buf[mark..]).await;
    buf.truncate(mark);
    let end = match &relayed {
        Ok(_) => BodyEnd::Whole,
        Err(cut) if cut.by_backend => BodyEnd::Backend,
        Err(_) => BodyEnd::Client,
    };
    // Judged before the in-flight count goes: whoever sees the request over sees it
    // counted.
    accounting::body_end(rt, pool, backend, head.status, end);
    drop(in_flight);
    // A backend that answered before it took the whole body would read the rest of
    // it as the next request.
    let keep_alive = head.keep_alive && whole;
    bufpool::unbox(head);
    match relayed {
        Ok(end) => {
            // The head's time serves as the end's when the body went with it at once.
            let now = if end.waited { Instant::now() } else { at };
            c.sent_at = Some(now);
            if end.reusable && keep_alive {
                up.release(now);
            }
            let next = if plan.keep_alive {
                Next::KeepAlive
            } else {
                Next::Linger
            };
            (next, status, sent.total())
        }
        // Nothing of the response has gone out: the client can still be told.
        Err(Cut { unsent: true, .. }) => Box::pin(bad_response(c, req, body, sent, edits)).await,
        // The client has part of a response it cannot take for whole: end the
        // connection, so it knows.
        Err(_) => (Next::Close, status, sent.total()),
    }
}

/// Answer `502` for a backend's response that cannot be forwarded, before anything of
/// it went out.
async fn bad_response(
    c: &mut Conn<'_>,
    req: &RequestHead,
    body: &BodyIn,
    sent: &mut Sent,
    edits: Option<&Apply<'_>>,
) -> (Next, u16, u64) {
    let own = For {
        head: req,
        body_done: body.done(),
        apply: edits,
    };
    let e = ProxyError::BadResponse;
    let (next, bytes) = own::error_response(c, own, sent, &e).await;
    (next, e.status().as_u16(), bytes)
}

fn write_head(
    out: &mut Vec<u8>,
    head: &ResponseHead,
    rbuf: &[u8],
    client: ClientFacts,
    edits: Option<&Apply<'_>>,
) -> ResponsePlan {
    if head.has_date() {
        write_response_head_edited(out, head, rbuf, client, b"", edits)
    } else {
        date::with(|d| write_response_head_edited(out, head, rbuf, client, d, edits))
    }
}

/// Pass an interim (1xx) response on to the client of `req` (HTTP/1.1 clients only).
pub(super) async fn interim(c: &mut Conn<'_>, req: &RequestHead, head: &ResponseHead, rbuf: &[u8]) {
    let client = ClientFacts {
        version: req.version,
        keep_alive: req.keep_alive,
        is_head: false,
    };
    let mut out = Vec::with_capacity(head.head_len + 64);
    write_response_head(&mut out, head, rbuf, client, b"");
    if !out.is_empty() {
        let _ = io::write(&c.s, &out, Limit::Stall(c.l.send_timeout), &mut c.timer).await;
    }
}

/// How a relayed body ended (the body bytes the client was sent are in the request's
/// count, `Flow::sent`).
struct End {
    /// The response ended where its framing said and nothing followed it: the upstream
    /// connection can serve another request.
    reusable: bool,
    /// More of the body than came with the head: time passed while it was relayed.
    waited: bool,
}

/// Why a relayed body was not delivered whole.
struct Cut {
    /// The backend broke it off (a failed or timed-out read, an early end, bad chunked
    /// framing); otherwise a write to the client failed or stalled.
    by_backend: bool,
    /// Nothing was sent, not even the head: the backend's first body bytes were not
    /// chunked framing (they are judged before the head goes, as they go with it).
    unsent: bool,
}

impl Cut {
    fn client() -> Self {
        Cut {
            by_backend: false,
            unsent: false,
        }
    }

    fn backend() -> Self {
        Cut {
            by_backend: true,
            unsent: false,
        }
    }
}

/// A response body moving from the backend to the client.
struct Flow<'a, 'c, 'p> {
    c: &'a mut Conn<'c>,
    up: &'a mut Upstream<&'p ConnPool>,
    rbuf: &'a mut Buf,
    /// Body bytes the client was sent, in the request's own count (0 at the start).
    sent: &'a mut Sent,
}

/// Write to the client, adding to `wrote` as the kernel takes bytes (from the
/// request's count: `Sent::write`).
async fn send(c: &mut Conn<'_>, parts: &[&[u8]], wrote: &mut u64) -> Result<(), Cut> {
    let mut slices = [IoSlice::new(&[]); 4];
    for (s, p) in slices.iter_mut().zip(parts) {
        *s = IoSlice::new(p);
    }
    let limit = Limit::Stall(c.l.send_timeout);
    let n = parts.len().min(4);
    io::write_all(&c.s, &mut slices[..n], limit, &mut c.timer, wrote)
        .await
        .map_err(|_| Cut::client())
}

impl Flow<'_, '_, '_> {
    /// Send the head in `out` and the body after it. `Err` when the response could not
    /// be delivered whole.
    async fn relay(&mut self, at: usize, plan: BodyPlan, out: &[u8]) -> Result<End, Cut> {
        match plan {
            BodyPlan::None => {
                send(self.c, &[out], self.sent.write(out.len(), 0)).await?;
                Ok(End {
                    reusable: self.rbuf.len() == at,
                    waited: false,
                })
            }
            BodyPlan::Length(n) => self.length(at, n, out).await,
            BodyPlan::Chunked => self.chunked(at, out, false).await,
            BodyPlan::DechunkToClose => self.chunked(at, out, true).await,
            BodyPlan::ChunkEncode => self.until_close(at, out, true).await,
            BodyPlan::CloseDelimited => self.until_close(at, out, false).await,
            // Handled by the caller.
            BodyPlan::Tunnel => Err(Cut::client()),
        }
    }

    /// Read the next bytes of the body into the emptied buffer: how many (0 at the
    /// end of the stream). `Err` when the backend fails or stalls.
    async fn read(&mut self) -> Result<usize, Cut> {
        self.rbuf.clear();
        let limit = Limit::Stall(self.c.body_stall());
        stream::read(&mut self.up.stream, self.rbuf, limit, &mut self.c.timer)
            .await
            .map_err(|_| Cut::backend())
    }

    async fn length(&mut self, at: usize, n: u64, out: &[u8]) -> Result<End, Cut> {
        let avail = self.rbuf.len() - at;
        let first = n.min(avail as u64) as usize;
        let mut extra = avail > first;
        // The head is no body: a cut inside it sends none.
        let wrote = self.sent.write(out.len(), first);
        send(self.c, &[out, &self.rbuf[at..at + first]], wrote).await?;
        let mut left = n - first as u64;
        let waited = left > 0;
        while left > 0 {
            let got = self.read().await?;
            if got == 0 {
                // Closed short of its length: the client must not take it for whole.
                return Err(Cut::backend());
            }
            let take = left.min(got as u64) as usize;
            extra |= got > take;
            send(self.c, &[&self.rbuf[..take]], self.sent.write(0, take)).await?;
            left -= take as u64;
        }
        Ok(End {
            reusable: !extra,
            waited,
        })
    }

    /// A chunked body, forwarded as it came but for its trailer section, or
    /// (`dechunk`, to an HTTP/1.0 client) its data only. The bytes that came with the
    /// head are judged before the head goes with them, so framing broken there is told
    /// before anything is sent. A trailer section is held back until whole, then goes
    /// with only the fields that may be trailers (`trailing`).
    async fn chunked(&mut self, at: usize, out: &[u8], dechunk: bool) -> Result<End, Cut> {
        let mut t = ChunkedTracker::new();
        let mut section = Section::default();
        let mut from = at;
        let mut head = Some(out);
        loop {
            let input = &self.rbuf[from..];
            let mut data = Vec::new();
            let mut count = 0u64;
            let mut trailing = 0..0;
            let feed = t.feed_split(
                input,
                |r| {
                    count += r.len() as u64;
                    if dechunk {
                        data.extend_from_slice(&input[r]);
                    }
                },
                |r| trailing = r,
            );
            let Ok(feed) = feed else {
                return Err(Cut {
                    unsent: head.is_some(),
                    ..Cut::backend()
                });
            };
            // An HTTP/1.0 client gets no trailers at all.
            let part = if dechunk {
                &[][..]
            } else {
                &input[trailing.clone()]
            };
            let last = section.take(part, feed.done);
            let body = if dechunk {
                &data[..]
            } else {
                &input[..feed.used - trailing.len()]
            };
            // Passed on as chunks, the data and its framing interleave: what of a cut
            // write was data is not told, so the data counts once its write is through.
            // Dechunked, the data follows the head alone.
            let lead = head.map_or(0, <[u8]>::len);
            let wrote = if dechunk {
                self.sent.write(lead, body.len())
            } else {
                self.sent.write(0, 0)
            };
            match head.take() {
                Some(h) => send(self.c, &[h, body, &last], wrote).await?,
                None => send(self.c, &[body, &last], wrote).await?,
            }
            if !dechunk {
                self.sent.add(count);
            }
            if feed.done {
                return Ok(End {
                    reusable: feed.used == input.len(),
                    waited: from == 0,
                });
            }
            if self.read().await? == 0 {
                return Err(Cut::backend());
            }
            from = 0;
        }
    }

    /// A body that ends when the backend closes: as chunks (`encode`, to an HTTP/1.1
    /// client), or as it comes.
    async fn until_close(&mut self, at: usize, out: &[u8], encode: bool) -> Result<End, Cut> {
        let mut from = at;
        let mut head = Some(out);
        loop {
            let data = &self.rbuf[from..];
            let n = data.len() as u64;
            let prefix = (encode && n > 0).then(|| ChunkPrefix::new(n));
            let framed: [&[u8]; 3] = match &prefix {
                Some(p) => [p.as_bytes(), data, b"\r\n"],
                None => [data, b"", b""],
            };
            let lead = prefix.as_ref().map_or(0, |p| p.as_bytes().len());
            match head.take() {
                Some(h) => {
                    let wrote = self.sent.write(h.len() + lead, data.len());
                    send(self.c, &[h, framed[0], framed[1], framed[2]], wrote).await?;
                }
                None => send(self.c, &framed, self.sent.write(lead, data.len())).await?,
            }
            if self.read().await? == 0 {
                break;
            }
            from = 0;
        }
        if encode {
            send(self.c, &[LAST_CHUNK], self.sent.write(0, 0)).await?;
        }
        Ok(End {
            reusable: false,
            waited: true,
        })
    }
}

/// After a `101` (or a `2xx` to CONNECT): the head to the client (in `buf` from
/// `head`), then the tunnel (`proxy::tunnel`). The client side keeps its send timeout.
/// The bytes it carries count as the request's: to the client in `sent`, from it in
/// `body`'s count, for the access log line written when it ends.
async fn tunnel(
    c: &mut Conn<'_>,
    buf: &mut Buf,
    head: usize,
    body: &mut BodyIn,
    sent: &mut Sent,
    mut up: Upstream<&ConnPool>,
    early: &[u8],
) -> Next {
    let mut first = [IoSlice::new(&buf[head..]), IoSlice::new(early)];
    let limit = Limit::Stall(c.l.send_timeout);
    let wrote = sent.write(buf.len() - head, early.len());
    if io::write_all(&c.s, &mut first, limit, &mut c.timer, wrote)
        .await
        .is_err()
    {
        return Next::Close;
    }
    buf.truncate(head);
    // What the client sent after its request already belongs to the new protocol.
    body.finish(buf);
    let stall = Limit::Stall(c.body_stall());
    if stream::write(&mut up.stream, buf, stall, &mut c.timer)
        .await
        .is_err()
    {
        return Next::Close;
    }
    body.carried(buf.len() as u64);
    buf.clear();
    let shutdown = c.shutdown;
    let mut client = ConnIo::new(&mut c.s, None, Some((c.l.send_timeout, c.slot.clone())));
    let idle = c.l.idle_timeout;
    let carried = crate::proxy::tunnel::relay(&mut client, &mut up.stream, idle, shutdown).await;
    sent.add(carried.to_client);
    body.carried(carried.to_upstream);
    Next::Close
}
