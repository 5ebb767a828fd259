//! A backend's answer that comes while its request body is still being written: a
//! `413` to an upload too large, a `401`, sent after the head and before the body is
//! read (RFC 9110 10.1.1, RFC 9112 9.3). A backend that then neither reads on nor
//! closes would leave the body's write blocked until the try's time ran out.
//!
//! So a body write watches the connection for the backend's bytes, only while the
//! connection takes no more (a write that goes at once costs nothing more). The bytes
//! are read into [`Early`] and judged: interim answers (a `100 Continue` to the
//! client's `Expect`) and a head not complete yet let the body go on; a final answer
//! stops it, unless it is a `2xx` that keeps the connection (the backend says it reads
//! the rest: a stream that answers as it reads). The caller then reads the answer on
//! from these bytes as any other, and never reuses the connection, whose backend did
//! not take the whole request.

use super::stream::{self, deadline};
use super::MAX_RESPONSE_HEAD;
use crate::proxy::h1::io::{self, Limit, Timer};
use crate::upstream::Stream;
use std::io::{ErrorKind, IoSlice};
use std::task::Poll;
use tango_core::http1::codec::{parse_response, RequestFacts};
use tango_core::http1::head_may_end;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// What a backend sent while its request was being written.
pub(crate) struct Early {
    /// The bytes read, from the start of the response (empty unless a write waited and
    /// the backend had something to say).
    pub(crate) bytes: Vec<u8>,
    facts: RequestFacts,
    /// Where the next head starts (past the interim ones).
    at: usize,
    /// How far the head at `at` was looked at for its end.
    scanned: usize,
    /// A final answer came that says the backend reads on: watching is over.
    reads_on: bool,
}

impl Early {
    /// Nothing read yet, for a request described by `facts`. Allocates nothing.
    pub(crate) fn new(facts: RequestFacts) -> Early {
        Early {
            bytes: Vec::new(),
            facts,
            at: 0,
            scanned: 0,
            reads_on: false,
        }
    }

    /// Judge the bytes read so far: whether the body stops here (a final answer that
    /// does not say the backend reads on, a head tango would not take, or more than a
    /// head's worth of interim answers).
    fn stops(&mut self) -> bool {
        loop {
            if self.bytes.len() >= MAX_RESPONSE_HEAD {
                return true;
            }
            let rest = &self.bytes[self.at..];
            // Parsed again only once its end may have come: a backend trickling a
            // head costs linear work.
            if self.scanned > self.at && !head_may_end(rest, self.scanned - self.at) {
                self.scanned = self.bytes.len();
                return false;
            }
            match parse_response(rest, MAX_RESPONSE_HEAD, self.facts) {
                Ok(None) => {
                    self.scanned = self.bytes.len();
                    return false;
                }
                Ok(Some(h)) if h.interim => {
                    self.at += h.head_len;
                    self.scanned = self.at;
                }
                Ok(Some(h)) => {
                    self.reads_on = (200..300).contains(&h.status) && h.keep_alive;
                    return !self.reads_on;
                }
                Err(_) => return true,
            }
        }
    }

    /// Read what a plain connection has: whether the body stops (see
    /// [`Early::stops`]; the backend's close or an error stops it too).
    fn read_plain(&mut self, s: &TcpStream) -> bool {
        io::grow_if_full(&mut self.bytes);
        match io::try_read(s, &mut self.bytes) {
            Ok(0) => true,
            Ok(_) => self.stops(),
            // Readiness can be spurious.
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => false,
            Err(_) => true,
        }
    }
}

/// Write every byte of `bufs` (a request body's) as [`stream::write_all`] does, but
/// while the connection takes no more, read what the backend sends into `early`:
/// `Ok(false)` when that stops the body (see the module documentation), `Ok(true)`
/// once all is written.
pub(crate) async fn write_all(
    s: &mut Stream,
    bufs: &mut [IoSlice<'_>],
    limit: Limit,
    t: &mut Timer<'_>,
    wrote: &mut u64,
    early: &mut Early,
) -> std::io::Result<bool> {
    let mut bufs = bufs;
    loop {
        if early.reads_on {
            return stream::write_all(s, bufs, limit, t, wrote)
                .await
                .map(|()| true);
        }
        match s {
            Stream::Plain(tcp) => {
                if io::write_watching(tcp, &mut bufs, limit, t, wrote).await? {
                    return Ok(true);
                }
                if early.read_plain(tcp) {
                    return Ok(false);
                }
            }
            Stream::Tls(tls) => return write_all_tls(tls, bufs, limit, t, wrote, early).await,
        }
    }
}

/// [`write_all`] of one buffer.
pub(crate) async fn write(
    s: &mut Stream,
    data: &[u8],
    limit: Limit,
    t: &mut Timer<'_>,
    early: &mut Early,
) -> std::io::Result<bool> {
    write_all(s, &mut [IoSlice::new(data)], limit, t, &mut 0, early).await
}

/// [`write_all`] over TLS: the session is read when its write is pending.
async fn write_all_tls(
    tls: &mut TlsStream<TcpStream>,
    mut bufs: &mut [IoSlice<'_>],
    limit: Limit,
    t: &mut Timer<'_>,
    wrote: &mut u64,
    early: &mut Early,
) -> std::io::Result<bool> {
    IoSlice::advance_slices(&mut bufs, 0);
    t.reset(deadline(limit));
    std::future::poll_fn(|cx| loop {
        if let Poll::Ready(r) = stream::poll_write_tls(tls, cx, &mut bufs, limit, t, wrote) {
            return Poll::Ready(r.map(|()| true));
        }
        if !early.reads_on {
            match stream::poll_read_tls(tls, cx, &mut early.bytes) {
                Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(Ok(false)),
                Poll::Ready(Ok(_)) if early.stops() => return Poll::Ready(Ok(false)),
                Poll::Ready(Ok(_)) => continue,
                Poll::Pending => {}
            }
        }
        if t.poll_fired(cx) {
            return Poll::Ready(Err(io::timed_out("the peer took nothing in time")));
        }
        return Poll::Pending;
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stops(facts: RequestFacts, pieces: &[&[u8]]) -> Vec<bool> {
        let mut e = Early::new(facts);
        pieces
            .iter()
            .map(|p| {
                e.bytes.extend_from_slice(p);
                e.stops()
            })
            .collect()
    }

    #[test]
    fn a_final_answer_stops_the_body_and_interim_ones_do_not() {
        let f = RequestFacts::default();
        let cont = b"HTTP/1.1 100 Continue\r\n\r\n";
        assert_eq!(stops(f, &[cont]), [false]);
        assert_eq!(
            stops(
                f,
                &[cont, b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n"]
            ),
            [false, false]
        );
        let refused = b"HTTP/1.1 413 Too Large\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(
            stops(f, &[cont, &refused[..10], &refused[10..]]),
            [false, false, true]
        );
        let closing = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(stops(f, &[closing]), [true]);
        // Not a response at all: stop, and let the reader say why.
        assert_eq!(stops(f, &[b"garbage\r\n\r\n"]), [true]);
    }

    #[test]
    fn a_2xx_that_keeps_the_connection_lets_the_body_go_on() {
        let f = RequestFacts::default();
        let streaming = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        let mut e = Early::new(f);
        e.bytes.extend_from_slice(streaming);
        assert!(!e.stops());
        assert!(e.reads_on, "watching is over");
    }

    #[test]
    fn a_head_that_comes_a_byte_at_a_time_is_judged_once_whole() {
        let f = RequestFacts::default();
        let head = b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n";
        let pieces: Vec<&[u8]> = head.chunks(1).collect();
        let got = stops(f, &pieces);
        assert!(got[..got.len() - 1].iter().all(|s| !s), "{got:?}");
        assert_eq!(got.last(), Some(&true));
    }
}
