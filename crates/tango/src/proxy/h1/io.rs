//! Socket reads and writes for the engine. Each tries the system call first and waits
//! for readiness (arming a timer) only when it would block, so a read or write that
//! completes at once never touches the timer wheel.
//!
//! Two kinds of limit: a deadline (upstream exchanges: the try's time, or a body's
//! inactivity), and the client's send timeout, which restarts with every write that
//! makes progress and, once it expires, resets the connection so the kernel drops what
//! the client never read.

use std::io::{self, ErrorKind, IoSlice};
use std::time::Duration;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::Instant;

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
        let n = s.try_read_buf(buf)?;
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
/// within `limit`; `Ok(0)` is the end of the stream.
pub(crate) async fn read(s: &TcpStream, buf: &mut Vec<u8>, limit: Limit) -> io::Result<usize> {
    let mut deadline = None;
    loop {
        match try_read(s, buf) {
            Ok(n) => return Ok(n),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(e) => return Err(e),
        }
        let d = *deadline.get_or_insert_with(|| limit.deadline());
        match tokio::time::timeout_at(d, s.readable()).await {
            Ok(r) => r?,
            Err(_) => return Err(timed_out("no bytes in time")),
        }
    }
}

/// Write every byte of `bufs` (one system call when the socket takes them all), adding
/// to `wrote` as bytes go. Under [`Limit::Stall`] a stall that outlasts the limit resets
/// the connection.
pub(crate) async fn write_all(
    s: &TcpStream,
    bufs: &mut [IoSlice<'_>],
    limit: Limit,
    wrote: &mut u64,
) -> io::Result<()> {
    let mut bufs = bufs;
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match s.try_write_vectored(bufs) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => {
                *wrote += n as u64;
                IoSlice::advance_slices(&mut bufs, n);
                continue;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(e) => return Err(e),
        }
        // Each stall gets the whole limit: a slow reader that keeps taking bytes is
        // not cut off.
        if tokio::time::timeout_at(limit.deadline(), s.writable())
            .await
            .is_err()
        {
            if let Limit::Stall(_) = limit {
                let _ = s.set_zero_linger();
            }
            return Err(timed_out("the peer took nothing in time"));
        }
    }
    Ok(())
}

/// [`write_all`] of one buffer.
pub(crate) async fn write(s: &TcpStream, data: &[u8], limit: Limit) -> io::Result<()> {
    write_all(s, &mut [IoSlice::new(data)], limit, &mut 0).await
}

/// How long a closing connection keeps reading what the client still sends, so that
/// closing with unread bytes does not reset the connection before the client has read
/// the answer (a reset makes the client's kernel drop what it had received).
const LINGER: Duration = Duration::from_secs(2);
/// And how much it reads at most.
const LINGER_BYTES: usize = 256 * 1024;

/// Close after an answer the client may still be sending a request body or pipelined
/// requests behind: end our side, then read and drop what comes for a short while.
pub(crate) async fn linger_close(mut s: TcpStream) {
    use tokio::io::AsyncWriteExt;
    if s.shutdown().await.is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut sink = Vec::with_capacity(4096);
    let mut total = 0;
    while total < LINGER_BYTES {
        sink.clear();
        match read(&s, &mut sink, Limit::Until(deadline)).await {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}
