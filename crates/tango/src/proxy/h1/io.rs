//! Socket reads and writes for the engine. Each tries the system call first and waits
//! for readiness only when it would block.
//!
//! A connection has one timer ([`Timer`]) for everything it waits on, one wait at a
//! time: the first byte, the idle time between requests, a request head, the backend's
//! answer, a body that stalls. A wait sets the timer's deadline rather than making a
//! timer of its own, so a wait costs no allocation in the timer wheel, and the timer
//! itself is moved only when a wait needs it earlier than it stands.
//!
//! Two kinds of limit: a deadline (upstream exchanges: the try's time, or a body's
//! inactivity), and the client's send timeout, which restarts with every write that
//! makes progress and, once it expires, resets the connection so the kernel drops what
//! the client never read.

use rustix::buffer::spare_capacity;
use rustix::net::{RecvFlags, SendAncillaryBuffer, SendFlags};
use std::future::Future;
use std::io::{self, ErrorKind, IoSlice};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;
use tango_core::http1::codec::ChunkPrefix;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

pub(crate) fn timed_out(what: &'static str) -> io::Error {
    io::Error::new(ErrorKind::TimedOut, what)
}

/// What bounds a wait on a socket.
#[derive(Clone, Copy)]
pub(crate) enum Limit {
    /// Fail at this instant.
    Until(Instant),
    /// Fail after this long without progress; the connection is then reset.
    Stall(Duration),
}

impl Limit {
    fn deadline(self) -> Instant {
        match self {
            Limit::Until(d) => d,
            Limit::Stall(d) => Instant::now() + d,
        }
    }
}

/// A connection's one timer (see the module documentation).
///
/// Moving a timer later is cheap in tokio, earlier is not (a lock and a move in the
/// timer wheel). Most waits end long before their deadline, so the timer is moved only
/// when the new deadline is earlier than where it stands; when it fires short of the
/// deadline wanted now, it is moved on to that one. Per request, where the try's
/// deadline and the idle deadline take turns, that is no move at all most of the time.
pub(crate) struct Timer<'a> {
    sleep: Pin<&'a mut Sleep>,
    /// The deadline of the wait in progress (the sleep may stand earlier).
    want: Instant,
}

impl<'a> Timer<'a> {
    /// A timer standing at the sleep's deadline.
    pub(crate) fn new(sleep: Pin<&'a mut Sleep>) -> Self {
        let want = sleep.deadline();
        Timer { sleep, want }
    }

    /// Fire at `at` (and no earlier).
    pub(crate) fn reset(&mut self, at: Instant) {
        self.want = at;
        if self.sleep.deadline() > at {
            self.sleep.as_mut().reset(at);
        }
    }

    /// Wait until `s` is readable (or writable, with `write`): true; or until the timer
    /// fires: false.
    pub(crate) async fn ready(&mut self, s: &TcpStream, write: bool) -> io::Result<bool> {
        std::future::poll_fn(|cx| {
            let r = if write {
                s.poll_write_ready(cx)
            } else {
                s.poll_read_ready(cx)
            };
            if let Poll::Ready(r) = r {
                return Poll::Ready(r.map(|()| true));
            }
            if self.poll_fired(cx) {
                Poll::Ready(Ok(false))
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// Poll whether the deadline wanted has passed.
    pub(crate) fn poll_fired(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        loop {
            if self.sleep.as_mut().poll(cx).is_pending() {
                return false;
            }
            if self.sleep.deadline() >= self.want {
                return true;
            }
            // It stood earlier than the wait in progress wants: on to that deadline.
            self.sleep.as_mut().reset(self.want);
        }
    }
}

/// Double a buffer that has no room left, so the next read has somewhere to go.
pub(crate) fn grow_if_full(buf: &mut Vec<u8>) {
    if buf.len() == buf.capacity() {
        buf.reserve(buf.capacity().max(4096));
    }
}

/// Read what the socket has into `buf`'s spare room (the caller makes some), without
/// waiting; `Ok(0)` is the end of the stream.
///
/// A read that leaves room in the buffer took everything the socket had, so the
/// socket's readiness is cleared as if a further read had returned `WouldBlock`: the
/// next wait for readability then waits, instead of costing a system call that finds
/// nothing. That is safe because readiness is edge-triggered: bytes that arrive after
/// the read make a new event, and tokio does not clear readiness that an event newer
/// than the read has set.
pub(crate) fn try_read(s: &TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    let room = buf.capacity() - buf.len();
    let mut got = None;
    let r = s.try_io(Interest::READABLE, || {
        let (n, _) = rustix::net::recv(s, spare_capacity(buf), RecvFlags::empty())?;
        got = Some(n);
        if n > 0 && n < room {
            Err(ErrorKind::WouldBlock.into())
        } else {
            Ok(n)
        }
    });
    match (r, got) {
        (_, Some(n)) => Ok(n),
        (Err(e), None) => Err(e),
        (Ok(n), None) => Ok(n),
    }
}

/// Read what the socket has into `buf`'s spare room (the caller makes some), waiting
/// within `limit` on `t`; `Ok(0)` is the end of the stream.
pub(crate) async fn read(
    s: &TcpStream,
    buf: &mut Vec<u8>,
    limit: Limit,
    t: &mut Timer<'_>,
) -> io::Result<usize> {
    let mut armed = false;
    loop {
        match try_read(s, buf) {
            Ok(n) => return Ok(n),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(e) => return Err(e),
        }
        if !std::mem::replace(&mut armed, true) {
            t.reset(limit.deadline());
        }
        if !t.ready(s, false).await? {
            return Err(timed_out("no bytes in time"));
        }
    }
}

/// Write every byte of `bufs` (one system call when the socket takes them all), adding
/// to `wrote` as bytes go, waiting within `limit` on `t`. Under [`Limit::Stall`] a
/// stall that outlasts the limit resets the connection.
pub(crate) async fn write_all(
    s: &TcpStream,
    bufs: &mut [IoSlice<'_>],
    limit: Limit,
    t: &mut Timer<'_>,
    wrote: &mut u64,
) -> io::Result<()> {
    let mut bufs = bufs;
    send_all(s, &mut bufs, limit, t, wrote, false)
        .await
        .map(|_| ())
}

/// [`write_all`] for a request body on its way to a backend, which may answer before it
/// has taken the whole body: `bufs` is advanced past what is written, and while the
/// socket takes no more, its readability is watched too. `Ok(true)`: all written;
/// `Ok(false)`: the socket had bytes to read (or its end) first, and the caller reads
/// them before going on. A write that never waits costs what [`write_all`] costs.
pub(crate) async fn write_watching(
    s: &TcpStream,
    bufs: &mut &mut [IoSlice<'_>],
    limit: Limit,
    t: &mut Timer<'_>,
    wrote: &mut u64,
) -> io::Result<bool> {
    send_all(s, bufs, limit, t, wrote, true).await
}

/// The loop of [`write_all`] and [`write_watching`]: send what the socket takes, and
/// while it takes nothing wait for it to take more (or, when `watch`, for bytes to
/// read: `Ok(false)`) within `limit`.
async fn send_all(
    s: &TcpStream,
    bufs: &mut &mut [IoSlice<'_>],
    limit: Limit,
    t: &mut Timer<'_>,
    wrote: &mut u64,
    watch: bool,
) -> io::Result<bool> {
    IoSlice::advance_slices(bufs, 0);
    // An empty last slice (a body with nothing in it yet) is no use to the kernel.
    while bufs.len() > 1 && bufs[bufs.len() - 1].is_empty() {
        let n = bufs.len() - 1;
        let all = std::mem::take(bufs);
        *bufs = &mut all[..n];
    }
    // The first try of a small write goes through the worker's ring, batched with the
    // other tasks' (see `ring`); a write that must be tried again goes directly, so
    // that its wait uses tokio's readiness as any other.
    let mut first = ring_send(s, bufs).await;
    while !bufs.is_empty() {
        match first.take().unwrap_or_else(|| send(s, bufs)) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => {
                *wrote += n as u64;
                IoSlice::advance_slices(bufs, n);
                continue;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(e) => return Err(e),
        }
        // Each stall gets the whole limit: a slow reader that keeps taking bytes is
        // not cut off.
        t.reset(limit.deadline());
        let woke = if watch {
            writable_or_readable(s, t).await?
        } else {
            t.ready(s, true).await?.then_some(true)
        };
        match woke {
            Some(true) => {}
            Some(false) => return Ok(false),
            None => {
                if let Limit::Stall(_) = limit {
                    let _ = s.set_zero_linger();
                }
                return Err(timed_out("the peer took nothing in time"));
            }
        }
    }
    Ok(true)
}

/// [`send`] of `bufs` through the worker's ring when they are small enough to be
/// joined and the worker has a ring with room; `None` otherwise (and when a ring send
/// would have blocked, so that the direct send that follows arms tokio's readiness).
async fn ring_send(s: &TcpStream, bufs: &[IoSlice<'_>]) -> Option<io::Result<usize>> {
    let total: usize = bufs.iter().map(|b| b.len()).sum();
    if total == 0 || total > COALESCE {
        return None;
    }
    let r = super::ring::send(std::os::fd::AsRawFd::as_raw_fd(s), bufs)?.await;
    match &r {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => None,
        _ => Some(r),
    }
}

/// Wait until `s` takes more (`Some(true)`), has bytes or its end to read
/// (`Some(false)`), or `t` fires (`None`).
async fn writable_or_readable(s: &TcpStream, t: &mut Timer<'_>) -> io::Result<Option<bool>> {
    std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = s.poll_write_ready(cx) {
            return Poll::Ready(r.map(|()| Some(true)));
        }
        if let Poll::Ready(r) = s.poll_read_ready(cx) {
            return Poll::Ready(r.map(|()| Some(false)));
        }
        if t.poll_fired(cx) {
            Poll::Ready(Ok(None))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Pieces adding up to at most this many bytes are copied together and sent as one,
/// through the worker's ring when it has one (so a ring slot holds what one `send` would).
const COALESCE: usize = 4096;

thread_local! {
    /// Where [`send`] joins small pieces: one per worker thread, kept, since a zeroed
    /// stack array of `COALESCE` bytes would cost a 4 KiB memset on every send.
    static JOINED: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(COALESCE));
}

/// One system call's worth of `bufs`: `send` for one slice, or for several small ones
/// copied together (a response head and a small body, a chunk and its framing), since
/// the kernel takes one piece more cheaply than a `sendmsg` of several; `sendmsg` for
/// the rest. The socket calls, not `write`/`writev`, which reach the same TCP code
/// through the file layer's extra steps (position lock, checks, notifications):
/// measurable when two of the four system calls a proxied request costs are writes.
fn send(s: &TcpStream, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    s.try_io(Interest::WRITABLE, || {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        Ok(match bufs {
            [one] => rustix::net::send(s, one, SendFlags::NOSIGNAL)?,
            _ if total <= COALESCE => JOINED.with_borrow_mut(|joined| {
                joined.clear();
                for b in bufs {
                    joined.extend_from_slice(b);
                }
                rustix::net::send(s, joined, SendFlags::NOSIGNAL)
            })?,
            _ => {
                let mut none = SendAncillaryBuffer::default();
                rustix::net::sendmsg(s, bufs, &mut none, SendFlags::NOSIGNAL)?
            }
        })
    })
}

/// `data` as it goes on the wire: one chunk (size line, data, CRLF) when `prefix` is
/// given, else the bytes alone (the two empty slices are dropped by [`write_all`]).
pub(crate) fn framed<'a>(prefix: Option<&'a ChunkPrefix>, data: &'a [u8]) -> [IoSlice<'a>; 3] {
    match prefix {
        Some(p) => [
            IoSlice::new(p.as_bytes()),
            IoSlice::new(data),
            IoSlice::new(b"\r\n"),
        ],
        None => [IoSlice::new(data), IoSlice::new(&[]), IoSlice::new(&[])],
    }
}

/// [`write_all`] of one buffer.
pub(crate) async fn write(
    s: &TcpStream,
    data: &[u8],
    limit: Limit,
    t: &mut Timer<'_>,
) -> io::Result<()> {
    write_all(s, &mut [IoSlice::new(data)], limit, t, &mut 0).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    async fn fired(t: &mut Timer<'_>) -> bool {
        poll_fn(|cx| Poll::Ready(t.poll_fired(cx))).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_deadline_is_kept_until_the_timer_fires_and_then_waited_for() {
        let start = Instant::now();
        let sleep = std::pin::pin!(tokio::time::sleep_until(start + Duration::from_secs(1)));
        let mut t = Timer::new(sleep);
        t.reset(start + Duration::from_secs(3));
        assert_eq!(
            t.sleep.deadline(),
            start + Duration::from_secs(1),
            "not moved later"
        );
        tokio::time::sleep_until(start + Duration::from_millis(1500)).await;
        assert!(
            !fired(&mut t).await,
            "fired at 1 s, short of the 3 s wanted"
        );
        assert_eq!(t.sleep.deadline(), start + Duration::from_secs(3));
        tokio::time::sleep_until(start + Duration::from_millis(3100)).await;
        assert!(fired(&mut t).await);
    }

    #[tokio::test]
    async fn pieces_small_and_large_arrive_whole_and_in_order() {
        use tokio::io::AsyncReadExt;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let s = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (mut peer, _) = l.accept().await.unwrap();
        let sleep = std::pin::pin!(tokio::time::sleep(Duration::from_secs(10)));
        let mut t = Timer::new(sleep);
        let big = vec![b'x'; COALESCE];
        // Under COALESCE in all (copied together), then over it (sendmsg).
        for pieces in [
            vec![&b"head "[..], b"body", b"\r\n"],
            vec![&b"head "[..], &big, b"end"],
        ] {
            let want: Vec<u8> = pieces.concat();
            let mut slices: Vec<IoSlice<'_>> = pieces.iter().map(|p| IoSlice::new(p)).collect();
            let mut wrote = 0;
            let limit = Limit::Stall(Duration::from_secs(10));
            write_all(&s, &mut slices, limit, &mut t, &mut wrote)
                .await
                .unwrap();
            assert_eq!(wrote, want.len() as u64);
            let mut got = vec![0; want.len()];
            peer.read_exact(&mut got).await.unwrap();
            assert_eq!(got, want);
        }
    }

    /// An idle upstream connection's liveness check reads this readiness and makes a
    /// system call only when it is set: after the read of a whole answer it must be
    /// clear, and set again by bytes that come later.
    #[tokio::test]
    async fn a_read_that_takes_all_the_socket_had_leaves_it_not_readable() {
        use tokio::io::AsyncWriteExt;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let s = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (mut peer, _) = l.accept().await.unwrap();
        let readable = |s: &TcpStream| {
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            s.poll_read_ready(&mut cx).is_ready()
        };
        peer.write_all(b"an answer").await.unwrap();
        s.readable().await.unwrap();
        let mut buf = Vec::with_capacity(4096);
        assert_eq!(try_read(&s, &mut buf).unwrap(), 9);
        assert!(
            !readable(&s),
            "readiness cleared by a read short of the room"
        );
        peer.write_all(b"late").await.unwrap();
        s.readable().await.unwrap();
        assert!(readable(&s));
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_moves_the_timer() {
        let start = Instant::now();
        let sleep = std::pin::pin!(tokio::time::sleep_until(start + Duration::from_secs(60)));
        let mut t = Timer::new(sleep);
        t.reset(start + Duration::from_secs(1));
        tokio::time::sleep_until(start + Duration::from_millis(1100)).await;
        assert!(fired(&mut t).await);
    }
}
