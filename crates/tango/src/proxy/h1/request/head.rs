//! A request head that did not come whole with its first read: reading the rest of it
//! (parsed again only when its end may have come), and the answers to a head or body
//! framing that cannot be taken.

use super::super::{date, io, Conn, Next};
use crate::proxy::bufpool::{self, Buf};
use tango_core::http1::codec::{
    parse_request_into, write_error_response, HeadError, RequestHead, Version,
};
use tango_core::http1::head_may_end;
use tokio::time::Instant;

/// Read until the request head at the start of `buf` is complete, within the header
/// timeout from `now` (its first byte is here already), parsing it into `head`. A head
/// that cannot be taken is answered here.
pub(super) async fn read_head(
    c: &mut Conn<'_>,
    buf: &mut Buf,
    now: Instant,
    mut head: Box<RequestHead>,
) -> Result<Box<RequestHead>, Next> {
    let deadline = now + c.l.header_timeout;
    // Parsed again only once its end may have come (or the size limit): a client
    // trickling a head costs linear work. A head that is bad from its first line is so
    // refused at its end, its size limit or the header timeout, not at once.
    let mut scanned = 0;
    loop {
        if scanned == 0 || head_may_end(buf, scanned) || buf.len() >= c.max_head {
            match parse_request_into(buf, c.max_head, &mut head) {
                Ok(true) => return Ok(head),
                Ok(false) => {}
                Err(e) => {
                    bufpool::unbox(head);
                    return Err(Box::pin(refuse(c, e)).await);
                }
            }
        }
        scanned = buf.len();
        if buf.len() == buf.capacity() {
            let more = buf.capacity().min(c.max_head);
            buf.reserve(more);
        }
        match io::read(&c.s, buf, io::Limit::Until(deadline), &mut c.timer).await {
            Ok(0) => return Err(Next::Close),
            Ok(_) => {}
            Err(e) => {
                if e.kind() == std::io::ErrorKind::TimedOut {
                    tracing::debug!("request head not complete in time; closing");
                }
                return Err(Next::Close);
            }
        }
    }
}

/// Answer a head that cannot be taken, and close.
async fn refuse(c: &mut Conn<'_>, e: HeadError) -> Next {
    tracing::debug!(error = ?e, "request refused before forwarding");
    let mut out = Vec::with_capacity(160);
    date::with(|d| write_error_response(&mut out, Version::Http11, e.status(), e.text(), true, d));
    let _ = io::write(&c.s, &out, io::Limit::Stall(c.l.send_timeout), &mut c.timer).await;
    Next::Linger
}

/// A request whose body framing broke before anything was forwarded.
pub(super) fn bad_request(c: &mut Conn<'_>, version: Version) -> Next {
    let mut out = Vec::with_capacity(160);
    date::with(|d| write_error_response(&mut out, version, 400, "", true, d));
    // Best effort and at once: the connection is closing.
    let _ = c.s.try_write(&out);
    Next::Linger
}
