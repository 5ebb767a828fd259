//! tango's own answers on an engine connection: a redirect (a route that answers
//! without a pool) and an error (a request no backend answered), each with the route's
//! response edits, its body bytes counted as they went even when the write is cut
//! (the client left or stopped reading past `send_timeout`, or the drain ended); and
//! the variables those edits need, kept from the request head before a streaming body
//! takes the head out of the buffer.

use super::sent::Sent;
use super::{date, io, Conn, Next};
use crate::proxy::error::ProxyError;
use std::io::IoSlice;
use tango_core::http1::codec::{write_own_response, OwnResponse, RequestHead};
use tango_core::rewrite::{host_of, Apply, Edits, Vars};

/// `$host` and `$request_id` of a request, copied for its response's edits: by the
/// time the response comes, a body longer than the buffer has taken the head's place.
/// Made only for a route with response edits.
pub(super) struct Kept {
    host: Vec<u8>,
    request_id: Vec<u8>,
}

impl Kept {
    /// The values of `head` (parsed from `buf`), with its id.
    pub(super) fn of(head: &RequestHead, buf: &[u8], request_id: &[u8]) -> Kept {
        Kept {
            host: head
                .host
                .map_or(Vec::new(), |h| host_of(h.of(buf)).to_vec()),
            request_id: request_id.to_vec(),
        }
    }

    /// `edits` with these values and the client's address.
    pub(super) fn apply<'a>(&'a self, edits: &'a Edits, client_addr: &'a [u8]) -> Apply<'a> {
        Apply {
            edits,
            vars: Vars {
                client_addr,
                request_id: &self.request_id,
                host: &self.host,
            },
        }
    }
}

/// What is known of the request an answer is for.
#[derive(Clone, Copy)]
pub(super) struct For<'a> {
    pub(super) head: &'a RequestHead,
    /// Its body has been read whole (the connection may go on).
    pub(super) body_done: bool,
    /// The route's response edits.
    pub(super) apply: Option<&'a Apply<'a>>,
}

/// Answer with a redirect to `location`. The request's body is not waited for: a
/// connection whose body is not all in closes after lingering, as after an error.
/// The body bytes sent are counted in `sent` as they go (see `answer`).
pub(super) async fn redirect(
    c: &mut Conn<'_>,
    r: For<'_>,
    sent: &mut Sent,
    status: u16,
    location: &[u8],
) -> (Next, u64) {
    answer(c, r, sent, status, Some(location), "", false).await
}

/// tango's own answer to a request it could not get answered, its body bytes counted
/// in `sent` as they go.
pub(super) async fn error_response(
    c: &mut Conn<'_>,
    r: For<'_>,
    sent: &mut Sent,
    e: &ProxyError,
) -> (Next, u64) {
    let text = format!("{e}\n");
    answer(c, r, sent, e.status().as_u16(), None, &text, e.refuses()).await
}

/// Write the answer, counting its body bytes in `sent` (which starts over: an own
/// answer is the whole response) as the kernel takes them, so that a line written
/// while the write is in progress (the drain's end drops it) has them too.
async fn answer(
    c: &mut Conn<'_>,
    r: For<'_>,
    sent: &mut Sent,
    status: u16,
    location: Option<&[u8]>,
    text: &str,
    refused: bool,
) -> (Next, u64) {
    // A body left unread closes the connection: its bytes would be taken for the next
    // request. So does a refused request (`ProxyError::refuses`).
    let keep = r.head.keep_alive && r.body_done && !refused && !c.closing();
    let mut out = Vec::with_capacity(200 + text.len() + location.map_or(0, <[u8]>::len));
    date::with(|d| {
        let own = OwnResponse {
            version: r.head.version,
            status,
            location,
            text,
            close: !keep,
            date: d,
        };
        write_own_response(&mut out, &own, r.apply);
    });
    let limit = io::Limit::Stall(c.l.send_timeout);
    let mut whole = [IoSlice::new(&out)];
    // The body is the answer's end: what of it went before a cut (the client left, or
    // stopped reading past `send_timeout`) is what the log's `bytes_out` says.
    *sent = Sent::default();
    let wrote = sent.write(out.len() - text.len(), text.len());
    let done = io::write_all(&c.s, &mut whole, limit, &mut c.timer, wrote).await;
    let sent = sent.total();
    match done {
        Ok(()) if keep => (Next::KeepAlive, sent),
        Ok(()) if r.body_done => (Next::Close, sent),
        Ok(()) => (Next::Linger, sent),
        Err(_) => (Next::Close, sent),
    }
}
